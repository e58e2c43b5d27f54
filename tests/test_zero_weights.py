"""Prior weights of 0: the row carries no information. Against reference/zero_weights.json
(generate_zero_weights.R, lme4 1.1-31). lme4's glmer fits such rows directly: estimates, SEs and
logLik are those without the rows, while nobs(), df.residual(), BIC() and a dispersion family's
sigma() count them; their deviance and Pearson residuals are 0 and a binomial row's response is
taken as 0. lme4's lmer cannot fit them (its criterion adds −Σ log wᵢ = ∞ at every θ, so it stays
at its start with logLik −∞); the LMM reference is lme4's fit to the rows of positive weight, the
zero-weight rows' fitted values from predict() on it, and nobs as lme4 counts them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from reference_cases import lme4_name, load_case_data
from tolerances import GLMM, LMM, ModelTolerances, assert_close, assert_loglik, loosened

REFERENCE: dict[str, Any] = json.loads((Path(__file__).parent / "reference" / "zero_weights.json").read_text())


def zero_rows(case: dict[str, Any], key: str = "zero_rows") -> np.ndarray:
    return np.asarray(case[key], dtype=int) - 1  # R counts from 1


def assert_estimates(result: mm.GlmerResult | mm.LmerResult, expected: dict[str, Any], tolerances: ModelTolerances, what: str) -> None:
    names = [lme4_name(name) for name in result.params.index]
    assert_close(result.params, [expected["fixef"][name] for name in names], tolerances.fixed_effects, f"{what} fixef")
    assert_close(result.theta, np.atleast_1d(expected["theta"]), tolerances.theta, f"{what} theta")
    assert_loglik(result.llf, expected["logLik"], tolerances.log_likelihood, f"{what} logLik")
    assert_close(result.aic, expected["AIC"], tolerances.criteria, f"{what} AIC")
    assert result.nobs == expected["nobs"]
    assert result.nobs - result.df_modelwc == expected["df_residual"]


@pytest.mark.parametrize("criterion", ["REML", "ML"])
def test_an_lmm_leaves_out_the_rows_of_weight_zero(criterion: str) -> None:
    case = REFERENCE["sleepstudy"]
    expected = case[criterion]
    m = mm.lmer(case["formula"], load_case_data("sleepstudy_reml"), weights=np.array(case["weights"]), REML=criterion == "REML")
    assert_estimates(m, expected, LMM, criterion)
    assert_close(m.bse, expected["se"], LMM.standard_errors, f"{criterion} SEs")
    assert_close(m.sigma, expected["sigma"], LMM.variances.times(0.5), f"{criterion} sigma")
    assert_close(m.deviance_ml, expected["deviance"], LMM.criteria, f"{criterion} deviance")
    if criterion == "REML":
        assert_close(m.REMLcrit, expected["REMLcrit"], LMM.criteria, "REMLcrit")
    # BIC as lme4's glmer forms it, with nobs counting every row.
    assert m.bic == pytest.approx(-2 * m.llf + np.log(expected["nobs"]) * m.df_modelwc)
    rows = zero_rows(case)
    assert_close(m.fittedvalues.to_numpy()[rows], expected["fitted_zero"], LMM.fitted, f"{criterion} fitted", scale=expected["sigma"])
    assert_close(m.resid.to_numpy()[rows], expected["residual_zero"], LMM.fitted, f"{criterion} residuals", scale=expected["sigma"])
    assert np.all(m.residuals("pearson").to_numpy()[rows] == 0)
    assert np.isinf(float(expected["lmer_direct"]["logLik"]))  # what lme4's own lmer makes of these weights


def glmer_case(name: str) -> tuple[mm.GlmerResult, dict[str, Any], np.ndarray]:
    case = REFERENCE[name]
    if name == "cbpp_weights":
        g = mm.glmer(case["formula"], load_case_data("cbpp_binomial"), family="binomial", compat="lme4", weights=np.array(case["weights"], dtype=float))
    elif name == "cbpp_cbind_no_trials":
        rows = zero_rows(case, "no_trial_rows")
        data = load_case_data("cbpp_binomial")
        data.loc[rows, ["incidence", "size"]] = 0
        return mm.glmer(case["formula"], data, family="binomial", compat="lme4"), case, rows
    elif name == "grouseticks":
        g = mm.glmer(case["formula"], load_case_data("grouseticks_poisson"), family="poisson", compat="lme4", weights=np.array(case["weights"]))
    else:
        g = mm.glmer(case["formula"], load_case_data("synth_gamma_log"), family=mm.families.Gamma(link="log"), compat="lme4", weights=np.array(case["weights"]))
    return g, case, zero_rows(case)


@pytest.mark.parametrize("name", ["cbpp_weights", "cbpp_cbind_no_trials", "grouseticks"])
def test_a_glmm_fits_rows_of_weight_zero_as_lme4(name: str) -> None:
    g, expected, rows = glmer_case(name)
    assert_estimates(g, expected, GLMM, name)
    assert_close(g.bse, expected["se"], GLMM.standard_errors, f"{name} SEs")
    assert_close(g.deviance, expected["deviance"], GLMM.deviance, f"{name} deviance")
    assert_close(g.bic, expected["BIC"], GLMM.criteria, f"{name} BIC")
    assert_close(g.fittedvalues.to_numpy()[rows], expected["fitted_zero"], GLMM.fitted, f"{name} fitted")
    assert_close(g.predict().to_numpy()[rows], expected["eta_zero"], GLMM.fitted, f"{name} eta")
    for kind, values in expected["residual_zero"].items():
        scale = np.maximum(np.abs(values), 1.0)
        assert_close(g.residuals(kind).to_numpy()[rows], values, GLMM.fitted, f"{name} {kind} residuals", scale=scale)


def test_a_dispersion_family_counts_the_rows_of_weight_zero_in_sigma() -> None:
    """lme4's glmer on synth_gamma_log stops short of its optimum (tolerances.IMPRECISE_REFERENCE),
    so the estimates are compared at that case's loosened tolerances and its SEs not at all."""
    g, expected, rows = glmer_case("synth_gamma")
    names = [lme4_name(name) for name in g.params.index]
    assert_close(g.params, [expected["fixef"][n] for n in names], loosened("synth_gamma_log", GLMM.fixed_effects), "Gamma fixef")
    assert_close(g.theta, np.atleast_1d(expected["theta"]), loosened("synth_gamma_log", GLMM.theta), "Gamma theta")
    assert_close(g.sigma, expected["sigma"], loosened("synth_gamma_log", GLMM.variances.times(0.5)), "Gamma sigma")
    assert abs(g.llf - expected["logLik"]) < GLMM.log_likelihood.absolute
    assert g.nobs == expected["nobs"]
    assert np.all(g.residuals("deviance").to_numpy()[rows] == 0)


def test_zero_weights_give_the_fit_without_those_rows() -> None:
    """Beyond lme4: the estimates equal those of the model fitted to the other rows."""
    case = REFERENCE["sleepstudy"]
    data = load_case_data("sleepstudy_reml")
    weights = np.array(case["weights"])
    m = mm.lmer(case["formula"], data, weights=weights)
    kept = mm.lmer(case["formula"], data[weights > 0], weights=weights[weights > 0])
    assert_close(m.params, kept.params, LMM.fixed_effects, "fixef")
    assert_close(m.llf, kept.llf, LMM.log_likelihood, "logLik")
    refit = m.model.refit(data["Reaction"], weights=np.where(weights > 0, 1.0, 0.0))
    assert refit.nobs == 180 and np.isfinite(refit.llf)


def test_negative_and_all_zero_weights_are_refused() -> None:
    data = load_case_data("sleepstudy_reml")
    with pytest.raises(mm.DataError, match="non-negative"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, weights=np.where(data.index == 3, -1.0, 1.0))
    with pytest.raises(mm.DataError, match="all weights are 0"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data, weights=np.zeros(len(data)))
    m = mm.lmer("Reaction ~ Days + (1 | Subject)", data)
    with pytest.raises(mm.DataError, match="non-negative"):
        m.refit(data["Reaction"], weights=np.full(len(data), -1.0))
    with pytest.raises(mm.DataError, match="all new weights are 0"):
        m.refit(data["Reaction"], weights=np.zeros(len(data)))
    ticks = load_case_data("grouseticks_poisson")
    with pytest.raises(mm.DataError, match="all weights are 0"):
        mm.glmer("TICKS ~ YEAR + (1 | BROOD)", ticks, family="poisson", weights=np.zeros(len(ticks)))
    positive = ticks.assign(y=ticks["TICKS"] + 1.0)
    with pytest.raises(mm.DataError, match="gaussian family needs positive weights"):
        mm.glmer("y ~ YEAR + (1 | BROOD)", positive, family=mm.families.Gaussian(link="log"), weights=np.where(ticks.index == 0, 0.0, 1.0))


def test_a_binomial_row_of_no_trials_carries_no_information() -> None:
    g, case, rows = glmer_case("cbpp_cbind_no_trials")
    assert np.all(g.prior_weights[rows] == 0) and np.all(g.y[rows] == 0)
    data = load_case_data("cbpp_binomial")
    kept = mm.glmer(case["formula"], data.drop(index=pd.Index(rows)), family="binomial", compat="lme4")
    assert_close(g.params, kept.params, GLMM.fixed_effects, "fixef without the rows")
