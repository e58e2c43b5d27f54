"""The exact Laplace objective (the default of ``glmer``) against glmmTMB, and lme4 1.1's (``compat="lme4"``).

glmmTMB evaluates the Laplace approximation by TMB's automatic differentiation, at the converged
conditional modes; ``tests/reference/glmmtmb/`` (a copy of the shared references, made by
``generate_glmmtmb.R`` there) holds its fits of every binomial and Poisson Laplace case, with
``polished`` the optimum of the same objective to near machine precision, and both objectives
at lme4's estimates. The lme4 reference cases themselves are compared in ``compat="lme4"`` mode by
every other GLMM test (``conftest.ReferenceFits``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mixedmodels as mm
from conftest import ReferenceFits, family_of
from reference_cases import lme4_name, load_case
from tolerances import Tolerance, assert_close

GLMMTMB_DIR = Path(__file__).parent / "reference" / "glmmtmb"
CASES = sorted(path.stem for path in GLMMTMB_DIR.glob("*.json"))

# glmmTMB's polished optimum is exact to ~1e-9 in log-likelihood (its README); ours too, so the
# policy's 1e-4 (issue 13) is met with room: these are 100x tighter than the policy and still pass.
LOG_LIKELIHOOD = Tolerance(relative=0.0, absolute=1e-6)
ESTIMATES = Tolerance(relative=1e-4)
STANDARD_ERRORS = Tolerance(relative=1e-4)
# glmmTMB's conditional modes are those of its default stop, up to 1.5e-5 from the polished optimum.
MODES = Tolerance(relative=0.0, absolute=2e-4)


def glmmtmb(case_id: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((GLMMTMB_DIR / f"{case_id}.json").read_text())
    return result


def exact_fit(reference_fits: ReferenceFits, case_id: str, compat: mm.models.base.Compat = None) -> mm.GlmerResult:
    case = load_case(case_id)
    return mm.glmer(
        case.get("formula_python", case["formula"]),
        reference_fits.data(case_id),
        family=family_of(case),
        weights=case["weights"],
        offset=case["offset"],
        nAGQ=case["nAGQ"],
        compat=compat,
    )


@pytest.fixture(scope="module")
def fits(reference_fits: ReferenceFits) -> dict[str, mm.GlmerResult]:
    return {case_id: exact_fit(reference_fits, case_id) for case_id in CASES}


def test_every_binomial_and_poisson_laplace_case_has_a_glmmtmb_reference() -> None:
    assert len(CASES) == 7
    assert {glmmtmb(c)["family"] for c in CASES} == {"binomial", "poisson"}


@pytest.mark.parametrize("case_id", CASES)
def test_the_default_fit_is_glmmtmbs_exact_laplace_optimum(fits: dict[str, mm.GlmerResult], case_id: str) -> None:
    g, reference = fits[case_id], glmmtmb(case_id)["polished"]
    assert_close(g.llf, reference["logLik"], LOG_LIKELIHOOD, "logLik")
    names = [lme4_name(name) for name in g.params.index]
    standard_errors = [reference["fixef_se"][name] for name in names]
    scale = np.maximum(np.abs([reference["fixef"][name] for name in names]), standard_errors)
    assert_close(g.params, [reference["fixef"][name] for name in names], ESTIMATES, "fixef", scale=scale)
    assert_close(g.bse, standard_errors, STANDARD_ERRORS, "fixef SE (Hessian of the exact objective, as TMB's sdreport)")
    theta_scale = np.maximum(np.abs(reference["theta_lme4_scale"]), 0.1)
    assert_close(g.theta, reference["theta_lme4_scale"], ESTIMATES, "theta", scale=theta_scale)


@pytest.mark.parametrize("case_id", CASES)
def test_the_conditional_modes_are_glmmtmbs(fits: dict[str, mm.GlmerResult], case_id: str) -> None:
    ours, reference = fits[case_id].ranef(), glmmtmb(case_id)["ranef"]
    for group, levels in reference.items():
        table = ours[group]
        table.columns = [lme4_name(c) for c in table.columns]
        expected = np.array([[by_term[term] for term in table.columns] for by_term in levels.values()])
        assert_close(table.loc[list(levels)].to_numpy(), expected, MODES, f"{group} modes")


@pytest.mark.parametrize("case_id", CASES)
def test_both_objectives_at_lme4s_estimates(reference_fits: ReferenceFits, case_id: str) -> None:
    """At lme4's estimates the exact objective is TMB's value there and the lme4-compatible one is
    lme4's logLik: the gap between the two objectives at one point, as the reference measures it."""
    case, at_lme4 = load_case(case_id), glmmtmb(case_id)["exact_laplace_at_lme4_estimates"]
    lme4_fit = reference_fits.glmer(case_id)
    beta = [case["fixef"][lme4_name(name)] for name in lme4_fit.params.index]
    exact_model = exact_fit(reference_fits, case_id).model
    exact = -0.5 * exact_model.objective(case["theta"], beta)
    lme4 = -0.5 * lme4_fit.model.objective(case["theta"], beta)
    assert_close(exact, at_lme4["logLik_exact"], LOG_LIKELIHOOD, "exact Laplace at lme4's estimates")
    assert_close(lme4, at_lme4["lme4_logLik"], LOG_LIKELIHOOD, "lme4's objective at its estimates")
    assert_close(exact - lme4, at_lme4["exact_minus_lme4"], LOG_LIKELIHOOD, "the gap between the objectives")


def test_the_summary_names_the_objective(reference_fits: ReferenceFits, fits: dict[str, mm.GlmerResult]) -> None:
    assert "(Laplace Approximation)" in str(fits["cbpp_binomial"].summary())
    assert "Laplace Approximation (lme4 1.1's objective)" in str(reference_fits.glmer("cbpp_binomial").summary())


def test_compat_is_checked(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="compat must be None or 'lme4'"):
        exact_fit(reference_fits, "cbpp_binomial", compat="glmmTMB")  # type: ignore[arg-type]
