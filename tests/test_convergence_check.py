"""lme4's post-fit convergence check (checkConv) against lme4 1.1-31.

References: ``reference/convergence_check.json`` (``generate_convergence_check.R``: lme4's
derivatives ``optinfo$derivs``, its check's messages and warnings for 13 fits, among them badly
scaled models on which lme4 warns) and the warnings every shared reference case recorded.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import ReferenceFits
from mixedmodels.results.optimization import check_convergence
from reference_cases import case_ids, load_case, load_case_data
from tolerances import GLMM, LMM, Tolerance, assert_close, assert_loglik, derivative_tolerances

REFERENCE = json.loads((Path(__file__).parent / "reference" / "convergence_check.json").read_text())
FITS: dict[str, dict[str, Any]] = {fit["id"]: fit for fit in REFERENCE["fits"]}
WITH_DERIVATIVES = [fit_id for fit_id, fit in FITS.items() if fit["gradient"] is not None]
SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"
# lme4's messages of checkConv (its other warnings, e.g. check.scaleX's, are not this check's).
CHECK_PREFIXES = ("Model failed to converge", "Model is nearly unidentifiable", "unable to evaluate scaled gradient", "Hessian is numerically")


def same_input(hessian: np.ndarray) -> Tolerance:
    """Linear algebra on lme4's H and g (numpy's against R's LAPACK), which the JSON holds to 15
    significant digits: an error of 1e-15 relative grows by up to the condition number of H."""
    eigenvalues = np.abs(np.linalg.eigvalsh(hessian))
    return Tolerance(relative=max(1e-9, 1e-14 * eigenvalues.max() / eigenvalues.min()), absolute=1e-12)


def as_vector(value: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=float))


def as_matrix(value: Any) -> np.ndarray:
    matrix = np.asarray(value, dtype=float)
    return matrix.reshape(1, 1) if matrix.ndim < 2 else matrix


def without_component(message: str) -> str:
    """lme4 1.1-31 always names component 1 (``which.max`` of the maximum itself); we name the
    component where the maximum is."""
    return re.sub(r", component \d+\)", ")", message)


def without_value(message: str) -> str:
    """The message without max|grad|'s value: two fits stopped at different points."""
    return re.sub(r"max\|grad\| = \S+ \(tol = 0.002, component \d+\)", "max|grad| > tol", message)


def check_warnings(messages: list[str]) -> list[str]:
    return [m for m in messages if m.startswith(CHECK_PREFIXES)]


def fit_data(fit: dict[str, Any]) -> pd.DataFrame:
    data = load_case_data(fit["case"])
    for derived in fit["derived"]:
        data[derived["column"]] = data[derived["from"]] * derived["scale"] + derived["shift"]
    return data


def model_of(fit: dict[str, Any]) -> mm.LinearMixedModel | mm.GeneralizedLinearMixedModel:
    data = fit_data(fit)
    if fit["kind"] == "lmer":
        return mm.LinearMixedModel.from_formula(fit["formula"], data, REML=fit["REML"])
    family = mm.families.resolve(fit["family"], link=fit["link"])
    return mm.GeneralizedLinearMixedModel.from_formula(fit["formula"], data, family=family, nAGQ=fit["nAGQ"], compat="lme4")


@pytest.mark.parametrize("fit_id", WITH_DERIVATIVES)
def test_derivatives_at_lme4s_parameters_match_lme4s(fit_id: str) -> None:
    """Our central differences of our objective at lme4's optimum against lme4's ``optinfo$derivs``."""
    fit = FITS[fit_id]
    model = model_of(fit)
    parameters = as_vector(fit["par"])
    if isinstance(model, mm.LinearMixedModel):
        gradient, hessian = model.objective_derivatives(parameters)
    else:
        n_theta = fit["n_theta"]
        gradient, hessian = model.objective_derivatives(parameters[:n_theta], parameters[n_theta:])
    gradient_tolerance, hessian_tolerance = derivative_tolerances(fit["objective"])
    assert_close(gradient, as_vector(fit["gradient"]), gradient_tolerance, f"{fit_id} gradient")
    assert_close(hessian, as_matrix(fit["hessian"]), hessian_tolerance, f"{fit_id} Hessian")


@pytest.mark.parametrize("fit_id", WITH_DERIVATIVES)
def test_check_of_lme4s_derivatives_gives_lme4s_messages(fit_id: str) -> None:
    """checkConv's rules on lme4's own derivatives: the same numbers, messages and warnings."""
    fit = FITS[fit_id]
    n_theta = fit["n_theta"]
    theta_lower = as_vector(fit["lower"])[:n_theta]
    check = check_convergence(as_vector(fit["gradient"]), as_matrix(fit["hessian"]), as_vector(fit["par"]), theta_lower)
    lme4_messages = fit["conv_messages"] if isinstance(fit["conv_messages"], list) else [fit["conv_messages"]]
    assert check.singular == (SINGULAR_MESSAGE in lme4_messages)
    assert [without_component(m) for m in check.messages] == [without_component(m) for m in lme4_messages if m != SINGULAR_MESSAGE]
    lme4_warnings = fit["warnings"] if isinstance(fit["warnings"], list) else [fit["warnings"]]
    assert [without_component(m) for m in check.warnings] == [without_component(m) for m in check_warnings(lme4_warnings)]
    if check.singular:
        return
    tolerance = same_input(check.hessian)
    if fit["scaled_gradient"] is None:
        assert check.scaled_gradient is None and check.max_gradient is None
    else:
        assert check.scaled_gradient is not None and check.max_gradient is not None
        assert_close(check.scaled_gradient, as_vector(fit["scaled_gradient"]), tolerance, f"{fit_id} scaled gradient")
        assert_close(check.max_gradient, fit["max_grad"], tolerance, f"{fit_id} max|grad|")
    assert check.hessian_eigenvalues is not None
    eigenvalues = as_vector(fit["hessian_eigenvalues"])
    # Eigenvalues move by up to the entries' error, 1e-15 of the largest.
    scale = np.full(eigenvalues.shape, np.abs(eigenvalues).max())
    assert_close(check.hessian_eigenvalues, eigenvalues, Tolerance(relative=1e-12), f"{fit_id} eigenvalues", scale=scale)


# Fits on which our check and lme4's disagree, because the two optimisers stopped at different
# points; each says why and what is asserted in place of equal warnings.
OUR_FIT_DIFFERS = {
    "sleepstudy_days_x10": "better optimum: lme4 stopped where max|grad| = 0.0087; ours is higher and its gradient small",
    "sleepstudy_days_x100": (
        "better optimum: lme4 stopped short (max|grad| 2.8, very large eigenvalue); ours, optimised on centred and "
        "scaled columns, is the optimum of the unscaled model and its gradient small"
    ),
    "sleepstudy_days_plus200": (
        "better optimum: lme4 stopped 6.7 log-likelihood units short, where its Hessian is not positive definite; "
        "ours, optimised on centred columns, is the optimum of the unshifted model and its gradient small"
    ),
    "synth_gamma_log": "lme4's Nelder-Mead stopped where max|grad| = 0.02; ours is its bobyqa refit's optimum (alt_optimizer_check)",
}


@pytest.mark.parametrize("fit_id", list(FITS))
def test_our_fit_warns_as_lme4(fit_id: str) -> None:
    fit = FITS[fit_id]
    model = model_of(fit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = model.fit()
    ours = [str(w.message) for w in caught if issubclass(w.category, mm.ConvergenceWarning)]
    check = result.optimization.convergence_check
    if fit["gradient"] is None:  # nAGQ = 0: lme4 computes no derivatives and checks nothing
        assert check is None and ours == []
        return
    assert check is not None and list(check.warnings) == ours
    lme4_warnings = fit["warnings"] if isinstance(fit["warnings"], list) else [fit["warnings"]]
    tolerances = LMM if fit["kind"] == "lmer" else GLMM
    if fit_id not in OUR_FIT_DIFFERS:
        assert [without_value(m) for m in ours] == [without_value(m) for m in check_warnings(lme4_warnings)]
        return
    assert check_warnings(lme4_warnings) and ours == []
    assert check.max_gradient is not None and check.max_gradient < 2e-3
    if fit_id == "synth_gamma_log":
        alternative = load_case(fit_id)["alt_optimizer_check"]
        assert_loglik(result.llf, alternative["logLik"], tolerances.log_likelihood, f"{fit_id} against lme4's bobyqa refit")
    else:
        assert_loglik(result.llf, fit["logLik"], tolerances.log_likelihood, fit_id, better_optimum=OUR_FIT_DIFFERS[fit_id])
        assert result.llf > fit["logLik"]


# Shared reference cases whose recorded warnings our fits do not repeat.
CASE_DIFFERS = {"synth_gamma_log": OUR_FIT_DIFFERS["synth_gamma_log"]}


@pytest.mark.parametrize("case_id", case_ids())
def test_reference_cases_warn_as_lme4(reference_fits: ReferenceFits, case_id: str) -> None:
    """Every shared case: our check warns exactly where lme4's did (no case but synth_gamma_log
    recorded a warning of this check)."""
    case = reference_fits.case(case_id)
    check = reference_fits.fit(case_id).optimization.convergence_check
    ours = list(check.warnings) if check is not None else []
    expected = [] if case_id in CASE_DIFFERS else check_warnings(case["warnings"])
    assert [without_value(m) for m in ours] == [without_value(m) for m in expected]
    if case_id in CASE_DIFFERS:
        assert check_warnings(case["warnings"])
    if case["kind"] == "glmer" and case["nAGQ"] == 0:
        assert check is None


# A fit stopped early (the trust region's final radius 0.1, not 1e-5) so that the check has
# something to report.
EARLY_STOP = {"optCtrl": {"rhoend": 0.1}}


def test_the_check_can_be_turned_off(sleepstudy: pd.DataFrame) -> None:
    """lme4's ``calc.derivs = FALSE``: no derivatives, no check, the same estimates."""
    model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", sleepstudy, control=EARLY_STOP)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mm.ConvergenceWarning)
        result = model.fit(check_convergence=False)
    assert result.optimization.convergence_check is None
    with pytest.warns(mm.ConvergenceWarning) as record:
        checked = model.fit()
    assert [str(w.message).split(" = ")[0] for w in record] == ["Model failed to converge with max|grad|"]
    np.testing.assert_array_equal(checked.theta, result.theta)
    with warnings.catch_warnings():
        warnings.simplefilter("error", mm.ConvergenceWarning)
        mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", sleepstudy, control={**EARLY_STOP, "calc.derivs": False}).fit()


def test_summary_notes_the_messages(sleepstudy: pd.DataFrame) -> None:
    with pytest.warns(mm.ConvergenceWarning):
        result = mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy, control=EARLY_STOP)
    assert "Model failed to converge with max|grad|" in str(result.summary())


def test_derivatives_reject_bad_parameters(sleepstudy: pd.DataFrame, cbpp: pd.DataFrame) -> None:
    model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", sleepstudy)
    with pytest.raises(mm.DataError, match="theta must have 3 values"):
        model.objective_derivatives([1.0])
    glmm = mm.GeneralizedLinearMixedModel.from_formula("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial", compat="lme4")
    with pytest.raises(mm.DataError, match="beta has missing or non-finite values"):
        glmm.objective_derivatives([1.0], [0.0, np.nan, 0.0, 0.0])
