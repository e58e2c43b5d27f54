"""GlmerResult.refit(y), as lme4's refit(m, newresp), against reference/glmm_refit.json
(generate_glmm_refit.R): responses simulated by lme4 from cbpp's cbind() model (refitted to the
two-column matrix of successes and failures, whose row sums lme4 takes as the new weights), from
cbpp's proportion model (proportions, the trials kept) and from grouseticks' Poisson model.
lme4's refit starts at the old estimates, ours afresh; both reach the same optimum. Standard
errors are compared with lme4's fresh glmer() fit of the new response (fresh_se): refit()'s own
finite-difference Hessian gives SEs up to 1% apart from that fit's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from reference_cases import lme4_name, load_case_data
from tolerances import GLMM, assert_close, assert_loglik

REFERENCE: dict[str, Any] = json.loads((Path(__file__).parent / "reference" / "glmm_refit.json").read_text())


def assert_refit(result: mm.GlmerResult, expected: dict[str, Any], what: str) -> None:
    names = [lme4_name(name) for name in result.params.index]
    assert_close(result.params, [expected["fixef"][name] for name in names], GLMM.fixed_effects, f"{what} fixef")
    assert_close(result.bse, expected["fresh_se"], GLMM.standard_errors, f"{what} SEs")
    assert_close(result.theta, np.atleast_1d(expected["theta"]), GLMM.theta, f"{what} theta")
    assert_loglik(result.llf, expected["logLik"], GLMM.log_likelihood, f"{what} logLik")
    assert_close(result.deviance, expected["deviance"], GLMM.deviance, f"{what} deviance")


def cbpp() -> pd.DataFrame:
    return load_case_data("cbpp_binomial")


@pytest.mark.parametrize("as_frame", [False, True])
def test_a_cbind_model_refits_successes_and_failures(as_frame: bool) -> None:
    case = REFERENCE["cbpp_cbind"]
    data = cbpp()
    g = mm.glmer(case["formula"], data, family="binomial", compat="lme4")
    counts = np.column_stack([case["successes"], case["failures"]])
    new: np.ndarray | pd.DataFrame = pd.DataFrame(counts, index=data.index).iloc[::-1] if as_frame else counts
    refit = g.refit(new)
    assert_refit(refit, case, "cbind")
    assert np.array_equal(refit.prior_weights, counts.sum(axis=1))


def test_a_proportion_model_refits_proportions_with_its_trials() -> None:
    case = REFERENCE["cbpp_proportions"]
    g = mm.glmer(case["formula"], cbpp(), family="binomial", compat="lme4", weights=case["weights"])
    refit = g.refit(np.array(case["response"]))
    assert_refit(refit, case, "proportions")
    assert np.array_equal(refit.prior_weights, g.prior_weights)


def test_a_poisson_model_refits_new_counts() -> None:
    case = REFERENCE["grouseticks"]
    g = mm.glmer(case["formula"], load_case_data("grouseticks_poisson"), family="poisson", compat="lme4")
    assert_refit(g.refit(np.array(case["response"])), case, "poisson")


def test_bad_two_column_responses_are_refused() -> None:
    case = REFERENCE["cbpp_cbind"]
    g = mm.glmer(case["formula"], cbpp(), family="binomial", compat="lme4")
    counts = np.column_stack([case["successes"], case["failures"]]).astype(float)
    with pytest.raises(mm.DataError, match="failures must be non-negative whole numbers; row 1"):
        g.refit(np.column_stack([counts[:, 0], np.r_[-1.0, counts[1:, 1]]]))
    with pytest.raises(mm.DataError, match="successes must be non-negative whole numbers"):
        g.refit(counts + 0.5)
    with pytest.raises(mm.DataError, match="shape"):
        g.refit(counts[:, :1].repeat(3, axis=1))
    with pytest.raises(mm.DataError, match="index is not the model's"):
        g.refit(pd.DataFrame(counts, index=np.arange(len(counts)) + 1000))
    poisson = mm.glmer("TICKS ~ YEAR + (1 | BROOD)", load_case_data("grouseticks_poisson"), family="poisson", compat="lme4")
    with pytest.raises(mm.DataError, match="shape"):
        poisson.refit(np.ones((poisson.nobs, 2)))
