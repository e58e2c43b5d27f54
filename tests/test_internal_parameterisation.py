"""Fits do not depend on where a covariate is centred or on its scale (issue 13, section 2).

Shifting a random-slope covariate by s or multiplying it by c does not change the model, so every
fit must reach the optimum of the centred model: its likelihood, its fitted values, and its
estimates mapped to the shifted or scaled columns. References (``generate_internal_parameterisation.R``
→ ``reference/internal_parameterisation.json``): lme4's fits of the centred models, glmmTMB's
exact-Laplace fit of the Poisson model, and lme4's own fits of shifted versions, which stop short
(the issue's table: sleepstudy with Days + 100 at −881.705 and + 2000 at −893.224 against −871.814).
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
from mixedmodels.models.internal_parameterisation import InternalParameterisation
from reference_cases import lme4_name
from tolerances import GLMM, LMM, Tolerance, assert_close, assert_loglik

REFERENCE: dict[str, Any] = json.loads((Path(__file__).parent / "reference" / "internal_parameterisation.json").read_text())
SHIFTS = [100.0, 2000.0, 1e4, 1e6]
SCALES = [1e-6, 1e-3, 1e3, 1e6]
# The bar: the centred optimum to 1e-6 (log-likelihood absolute; fitted values, σ and
# standard errors relative).
INVARIANT = Tolerance(relative=1e-6, absolute=1e-6)


def fit_quietly(fit: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        return fit()


def sleepstudy_fit(data: pd.DataFrame, covariate: pd.Series, reml: bool) -> mm.LmerResult:
    return fit_quietly(lambda: mm.lmer("Reaction ~ D + (D | Subject)", data.assign(D=covariate), REML=reml))


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_sleepstudy_reaches_the_centred_optimum_for_any_shift(sleepstudy: pd.DataFrame, reml: bool) -> None:
    expected = REFERENCE["sleepstudy"]["reml" if reml else "ml"]
    centred = sleepstudy_fit(sleepstudy, sleepstudy["Days"], reml)
    assert_loglik(centred.llf, expected["centred"]["logLik"], LMM.log_likelihood, "centred logLik")
    assert_close(centred.bse["D"], expected["centred"]["fixef_se"]["Days"], LMM.standard_errors, "centred SE(Days)")
    for shift in SHIFTS:
        shifted = sleepstudy_fit(sleepstudy, sleepstudy["Days"] + shift, reml)
        what = f"Days + {shift:g}"
        assert_close(shifted.llf, centred.llf, INVARIANT, f"{what} logLik")
        assert_close(shifted.bse["D"], centred.bse["D"], INVARIANT, f"{what} SE(D)")
        assert_close(shifted.sigma, centred.sigma, INVARIANT, f"{what} sigma")
        assert_close(shifted.fittedvalues, centred.fittedvalues, INVARIANT, f"{what} fitted values")
        # The intercept absorbs the shift: β₀ = β₀(centred) − s·β₁, to the digits the shift leaves.
        assert_close(shifted.params["Intercept"] + shift * shifted.params["D"], centred.params["Intercept"], INVARIANT, f"{what} intercept")
        assert shifted.converged and not shifted.is_singular
        # Inference runs in the same parameterisation: Satterthwaite's and Kenward-Roger's df,
        # and the conditional variances of the slopes, are the centred model's.
        assert_close(shifted.coef_table().loc["D", "df"], centred.coef_table().loc["D", "df"], INVARIANT, f"{what} Satterthwaite df")
        slope_variances = [fit.model.conditional_covariances(fit.theta, fit.sigma)[0][:, 1, 1] for fit in (shifted, centred)]
        assert_close(slope_variances[0], slope_variances[1], INVARIANT, f"{what} conditional variances of the slopes")
        if reml:
            kenward_roger = [fit.coef_table(ddf="kenward-roger").loc["D"] for fit in (shifted, centred)]
            assert_close(kenward_roger[0]["std_error"], kenward_roger[1]["std_error"], INVARIANT, f"{what} Kenward-Roger SE")
            # B⁻¹ has entries of the size of the shift: 1e-4 relative at 1e6.
            assert_close(kenward_roger[0]["df"], kenward_roger[1]["df"], Tolerance(relative=1e-4), f"{what} Kenward-Roger df")
        if shift in (100.0, 2000.0):  # lme4 stops short here (the table)
            assert expected[f"lme4_shift_{shift:g}"]["logLik"] < centred.llf - 1


def test_sleepstudy_reaches_the_centred_optimum_on_any_scale(sleepstudy: pd.DataFrame) -> None:
    # Maximum likelihood: the REML criterion itself changes with the scale of X (log|R_X|²).
    centred = sleepstudy_fit(sleepstudy, sleepstudy["Days"], reml=False)
    for scale in SCALES:
        scaled = sleepstudy_fit(sleepstudy, sleepstudy["Days"] * scale, reml=False)
        what = f"Days × {scale:g}"
        assert_close(scaled.llf, centred.llf, INVARIANT, f"{what} logLik")
        assert_close(scaled.bse["D"] * scale, centred.bse["D"], INVARIANT, f"{what} SE(D)")
        assert_close(scaled.params["D"] * scale, centred.params["D"], INVARIANT, f"{what} slope")
        assert_close(scaled.fittedvalues, centred.fittedvalues, INVARIANT, f"{what} fitted values")
        slope_sd = scaled.random_effects_covariance.terms[0].sd[1] * scale
        assert_close(slope_sd, centred.random_effects_covariance.terms[0].sd[1], INVARIANT, f"{what} slope SD")


def test_the_reml_criterion_moves_by_log_det_b_as_lme4s_does(sleepstudy: pd.DataFrame) -> None:
    """REML's log|R_X|² grows by 2 log c when a fixed-effects column is multiplied by c (lme4's too)."""
    centred = sleepstudy_fit(sleepstudy, sleepstudy["Days"], reml=True)
    scaled = sleepstudy_fit(sleepstudy, sleepstudy["Days"] * 1e3, reml=True)
    assert_close(scaled.REMLcrit - centred.REMLcrit, 2 * np.log(1e3), INVARIANT, "REML criterion")


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_grouseticks_height_uncentred_gives_the_centred_optimum(shipped_data: Any, reml: bool) -> None:
    expected = REFERENCE["grouseticks_lmm"]["reml" if reml else "ml"]
    ticks = shipped_data("grouseticks")
    centred = fit_quietly(lambda: mm.lmer("log1p(TICKS) ~ YEAR + cHEIGHT + (1 + cHEIGHT | BROOD)", ticks, REML=reml))
    assert_loglik(centred.llf, expected["centred"]["logLik"], LMM.log_likelihood, "centred logLik")
    uncentred = fit_quietly(lambda: mm.lmer("log1p(TICKS) ~ YEAR + HEIGHT + (1 + HEIGHT | BROOD)", ticks, REML=reml))
    assert_loglik(uncentred.llf, expected["centred"]["logLik"], LMM.log_likelihood, "HEIGHT logLik")
    # lme4 stops short on the uncentred model.
    assert expected["lme4_uncentred"]["logLik"] < expected["centred"]["logLik"] - 1
    assert_close(uncentred.llf, centred.llf, INVARIANT, "HEIGHT against cHEIGHT logLik")
    assert_close(uncentred.fittedvalues, centred.fittedvalues, INVARIANT, "fitted values")
    assert_close(uncentred.bse["HEIGHT"], centred.bse["cHEIGHT"], INVARIANT, "SE(HEIGHT)")


def test_a_poisson_glmm_reaches_the_centred_exact_laplace_optimum(shipped_data: Any) -> None:
    expected = REFERENCE["grouseticks_poisson_slope"]
    ticks = shipped_data("grouseticks")
    centred = fit_quietly(lambda: mm.glmer(expected["formula"], ticks, family="poisson"))
    assert_close(centred.llf, expected["logLik"], Tolerance(relative=0.0, absolute=1e-4), "centred logLik against glmmTMB")
    names = [lme4_name(name) for name in centred.params.index]
    assert_close(centred.params, [expected["fixef"][name] for name in names], GLMM.fixed_effects, "fixef", scale=[expected["fixef_se"][n] for n in names])
    assert_close(centred.bse, [expected["fixef_se"][name] for name in names], GLMM.standard_errors, "SE")
    for shift, scale in [(1e3, 1.0), (1e6, 1.0), (0.0, 1e-6), (0.0, 1e6), (500.0, 1e-3)]:
        covariate = (ticks["cHEIGHT"] + shift) * scale
        moved = fit_quietly(lambda c=covariate: mm.glmer("TICKS ~ YEAR + H + (1 + H | BROOD)", ticks.assign(H=c), family="poisson"))
        what = f"(cHEIGHT + {shift:g}) × {scale:g}"
        assert_close(moved.llf, centred.llf, INVARIANT, f"{what} logLik")
        assert_close(moved.fittedvalues, centred.fittedvalues, INVARIANT, f"{what} fitted values")
        assert_close(moved.bse["H"] * scale, centred.bse["cHEIGHT"], Tolerance(relative=1e-5), f"{what} SE(H)")


def test_the_lme4_compatible_mode_keeps_lme4s_parameterisation(shipped_data: Any) -> None:
    ticks = shipped_data("grouseticks")
    model = mm.GeneralizedLinearMixedModel.from_formula("TICKS ~ YEAR + cHEIGHT + (1 + cHEIGHT | BROOD)", ticks, "poisson", compat="lme4")
    assert model._fitting_core is model._core
    default = mm.GeneralizedLinearMixedModel.from_formula("TICKS ~ YEAR + cHEIGHT + (1 + cHEIGHT | BROOD)", ticks, "poisson")
    assert default._fitting_core is not default._core


def test_the_maps_are_exact_inverses(sleepstudy: pd.DataFrame) -> None:
    model = mm.LinearMixedModel.from_formula("Reaction ~ D + (D | Subject)", sleepstudy.assign(D=sleepstudy["Days"] + 50))
    internal = InternalParameterisation.of(model.design)
    theta = np.array([[1.2, -0.4, 0.3], [0.0, 0.0, 0.5], [2.0, 1.0, 0.0]])
    back = internal.theta_to_user(internal.theta_to_internal(theta))
    # θ → Σ: at a zero diagonal θ is not unique (lme4's neither), Σ is.
    def covariances(values: np.ndarray) -> np.ndarray:
        factors = np.zeros((len(values), 2, 2))
        factors[:, [0, 1, 1], [0, 0, 1]] = values
        return factors @ np.swapaxes(factors, 1, 2)

    assert_close(covariances(back), covariances(theta), Tolerance(relative=1e-9, absolute=1e-12), "θ round trip")
    assert_close(back[0], theta[0], Tolerance(relative=1e-9), "θ round trip of a regular factor")
    beta = np.array([250.0, 10.0])
    assert_close(internal.beta_to_user(internal.beta_to_internal(beta)), beta, Tolerance(relative=1e-12), "β round trip")
    # Σ = T Λ'Λ'ᵀ Tᵀ: the user factor reproduces the covariance the internal one implies.
    transform = internal.term_transforms[0]
    inner = np.array([[0.9, 0.0], [0.2, 0.4]])
    user = internal.theta_to_user(inner[[0, 1, 1], [0, 0, 1]])
    factor = np.array([[user[0], 0.0], [user[1], user[2]]])
    assert_close(factor @ factor.T, transform @ inner @ inner.T @ transform.T, Tolerance(relative=1e-12, absolute=1e-12), "Σ")
    # Intercept-only designs are left alone.
    assert InternalParameterisation.of(mm.LinearMixedModel.from_formula("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff")).design).is_identity
