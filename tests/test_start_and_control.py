"""lme4's ``start=`` and ``control=`` (issue 13, section 4).

The model from lme4's own tests that lme4 fits only with start values and
``nAGQ0initStep = FALSE`` (a cloglog binomial with an offset and weights,
``tests/testthat/test-glmer.R`` "bad start case") is ``tests/reference/cases_extra/fakesim_cloglog.json``
(a copy of the shared reference, made by ``generate_fakesim_cloglog.R`` there with lme4 1.1-31:
its README says how), its data ``tests/reference/data/fakesim.csv``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import ReferenceFits
from mixedmodels.inference.fixed_term_deletion import drop1
from reference_cases import lme4_name
from tolerances import GLMM, LMM, assert_close, assert_loglik

REFERENCE_DIR = Path(__file__).parent / "reference"
CLOGLOG: dict[str, Any] = json.loads((REFERENCE_DIR / "cases_extra" / "fakesim_cloglog.json").read_text())
FORMULA = "prop ~ R0 - 1 + offset(logIN) + (1 | R0:trial)"
LME4_START = {"fixef": [0, 0, 0], "theta": [1]}
LME4_CONTROL = {"optimizer": "bobyqa", "nAGQ0initStep": False}


@pytest.fixture(scope="module")
def fakesim() -> pd.DataFrame:
    data = pd.read_csv(REFERENCE_DIR / "data" / "fakesim.csv")
    return data.assign(R0=pd.Categorical(data["R0"].astype(str), categories=["1", "2", "3"]), trial=data["trial"].astype(str))


def cloglog(data: pd.DataFrame, **kwargs: Any) -> mm.GlmerResult:
    return mm.glmer(FORMULA, data, family="binomial", link="cloglog", weights="S", **kwargs)


def test_lme4s_defaults_fail_on_the_cloglog_model_as_lme4s_do(fakesim: pd.DataFrame) -> None:
    assert "PIRLS step-halvings failed" in CLOGLOG["default_fit"]["error"]
    with pytest.raises(mm.ConvergenceError, match="PIRLS step-halvings failed"):
        cloglog(fakesim, compat="lme4")


def test_the_cloglog_model_fits_with_lme4s_start_and_control(fakesim: pd.DataFrame) -> None:
    g = cloglog(fakesim, compat="lme4", start=LME4_START, control=LME4_CONTROL)
    assert g.converged
    assert_loglik(g.llf, CLOGLOG["logLik"], GLMM.log_likelihood, "logLik")
    names = [lme4_name(name) for name in g.params.index]
    standard_errors = [CLOGLOG["fixef_se"][name] for name in names]
    scale = np.maximum(np.abs([CLOGLOG["fixef"][name] for name in names]), standard_errors)
    assert_close(g.params, [CLOGLOG["fixef"][name] for name in names], GLMM.fixed_effects, "fixef", scale=scale)
    assert_close(g.bse, standard_errors, GLMM.standard_errors, "SE")
    assert_close(g.theta, CLOGLOG["theta"], GLMM.theta, "theta")
    # lme4's test: expect_equal(exp(fixef), ..., tolerance = 1e-5), i.e. all.equal's mean
    # relative difference, sum|ours - expected| / sum|expected|.
    expected = CLOGLOG["lme4_test_expected"]
    target = np.array(list(expected["value"].values()))
    assert np.sum(np.abs(np.exp(g.params.to_numpy()) - target)) / np.sum(np.abs(target)) < expected["tolerance"]
    # Stage two started where lme4's did: θ = 1, β = 0.
    assert g.optimization.theta_start == (1.0, 0.0, 0.0, 0.0)


def test_the_exact_laplace_fit_of_the_cloglog_model(fakesim: pd.DataFrame) -> None:
    """cloglog is not canonical: the exact Laplace with PIRLS's (Fisher) weights at the modes is
    lme4's value there to 9.4e-8 (the reference's R check), glmmTMB's observed-information Laplace
    another objective (1.1e-3 higher), so the lme4 reference is the one to compare with."""
    g = cloglog(fakesim, start=LME4_START, control=LME4_CONTROL)
    assert_loglik(g.llf, CLOGLOG["logLik"], GLMM.log_likelihood, "logLik")
    assert_close(g.theta, CLOGLOG["theta"], GLMM.theta, "theta")


def test_lmer_starts_where_it_is_told_and_reaches_lme4s_optimum(reference_fits: ReferenceFits) -> None:
    case = reference_fits.case("sleepstudy_reml")
    data = reference_fits.data("sleepstudy_reml")
    for start in ([0.5, 0.1, 0.3], {"theta": [2.0, -0.5, 1.0]}):
        m = mm.lmer(case["formula"], data, start=start)
        expected_start = start["theta"] if isinstance(start, dict) else start
        assert np.allclose(m.optimization.theta_start, expected_start)
        assert_close(m.theta, case["theta"], LMM.theta, "theta")
        assert_loglik(m.llf, case["logLik"], LMM.log_likelihood, "logLik")


def test_glmer_start_values_reach_lme4s_optimum(reference_fits: ReferenceFits) -> None:
    case = reference_fits.case("cbpp_binomial")
    g = mm.glmer(case["formula"], reference_fits.data("cbpp_binomial"), family="binomial", compat="lme4", start={"theta": [0.3], "fixef": [-1, -1, -1, -1]})
    assert g.optimization.theta_start[1:] == (-1.0, -1.0, -1.0, -1.0)
    assert_loglik(g.llf, case["logLik"], GLMM.log_likelihood, "logLik")
    assert_close(g.theta, case["theta"], GLMM.theta, "theta")


@pytest.mark.filterwarnings("ignore::mixedmodels.ConvergenceWarning")  # the budget runs out on purpose
def test_the_evaluation_budget_and_radii_under_lme4s_names(reference_fits: ReferenceFits) -> None:
    case = reference_fits.case("sleepstudy_reml")
    data = reference_fits.data("sleepstudy_reml")
    short = mm.lmer(case["formula"], data, control={"optCtrl": {"maxfun": 5}})
    assert "budget" in short.optimization.status
    assert mm.lmer(case["formula"], data, control={"optCtrl": {"maxeval": 7}}).model.max_evaluations == 7
    default = mm.lmer(case["formula"], data)
    coarse = mm.lmer(case["formula"], data, control={"optCtrl": {"rhobeg": 0.5, "rhoend": 1e-2}})
    fine = mm.lmer(case["formula"], data, control={"optCtrl": {"rhoend": 1e-8}})
    assert coarse.optimization.n_evaluations < default.optimization.n_evaluations < fine.optimization.n_evaluations
    assert_loglik(fine.llf, case["logLik"], LMM.log_likelihood, "logLik")


def test_tol_pwrss_is_pirls_tolerance(reference_fits: ReferenceFits) -> None:
    case = reference_fits.case("cbpp_binomial")
    data = reference_fits.data("cbpp_binomial")
    tight = mm.glmer(case["formula"], data, family="binomial", compat="lme4", control={"tolPwrss": 1e-12})
    assert_loglik(tight.llf, case["logLik"], GLMM.log_likelihood, "logLik")
    # With PIRLS converged this tightly lme4's objective is within 1e-8 of the exact one (the
    # log-determinant of the penultimate iterate is that of the modes).
    exact = mm.glmer(case["formula"], data, family="binomial")
    assert tight.llf == pytest.approx(exact.llf, abs=1e-6)


@pytest.mark.parametrize(
    ("kind", "start", "control", "message"),
    [
        ("lmer", None, {"nAGQ0initStep": False}, "'nAGQ0initStep' not supported for lmer"),
        ("lmer", None, {"optCtrl": {"xtol": 1}}, "optCtrl 'xtol' not supported"),
        ("lmer", None, {"optimizer": "simplex"}, "unknown optimizer 'simplex'"),
        ("lmer", None, {"optCtrl": {"maxfun": 0}}, "maxfun must be a whole number"),
        ("lmer", None, {"optCtrl": {"rhobeg": 1e-3, "rhoend": 1e-2}}, "rhoend <= rhobeg"),
        ("lmer", [1.0, 0.0], None, "must have 3 values"),
        ("lmer", [-1.0, 0.0, 1.0], None, "must be >= 0"),
        ("lmer", {"theta": [1, 0, 1], "fixef": [250, 10]}, None, "lmer profiles the fixed effects out"),
        ("lmer", {"sigma": 1.0}, None, "unknown components"),
        ("glmer", {"fixef": [0.0]}, None, "must have 2 values"),
        ("glmer", None, {"tolPwrss": -1}, "tolPwrss must be a positive number"),
        ("glmer", None, {"nAGQ0initStep": "no"}, "nAGQ0initStep must be True or False"),
        ("glmer", None, ["nAGQ0initStep"], "control must be a mapping"),
    ],
)
def test_bad_start_and_control_are_refused(
    reference_fits: ReferenceFits, kind: str, start: object, control: Any, message: str
) -> None:
    data = reference_fits.data("sleepstudy_reml")
    with pytest.raises(mm.SpecificationError, match=message):
        if kind == "lmer":
            mm.lmer("Reaction ~ Days + (Days | Subject)", data, start=start, control=control)
        else:
            mm.glmer("I(Reaction > 300) ~ Days + (1 | Subject)", data, family="binomial", start=start, control=control)


def test_nagq0_takes_no_fixed_effects_and_needs_its_stage(reference_fits: ReferenceFits) -> None:
    case = reference_fits.case("cbpp_binomial")
    data = reference_fits.data("cbpp_binomial")
    with pytest.raises(mm.SpecificationError, match="takes no starting fixed effects"):
        mm.glmer(case["formula"], data, family="binomial", nAGQ=0, start={"fixef": [0, 0, 0, 0]})
    with pytest.raises(mm.SpecificationError, match="cannot be turned off"):
        mm.glmer(case["formula"], data, family="binomial", nAGQ=0, control={"nAGQ0initStep": False})


def test_reduced_models_drop_the_start_values(reference_fits: ReferenceFits) -> None:
    case = reference_fits.case("cbpp_binomial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        g = mm.glmer(case["formula"], reference_fits.data("cbpp_binomial"), family="binomial", start={"theta": [0.5], "fixef": [0, 0, 0, 0]})
        table = drop1(g).table
    assert "period" in table.index
