"""The core's objective functions against the reference fits: at a fit's estimates they give the
fit's objective, so they are the functions the optimisers minimised (lme4's devfun; for GLMMs its
``glmer(..., devFunOnly = TRUE)``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from reference_cases import case_ids, load_case, load_case_data

RELATIVE = 1e-10


def family_of(case: dict) -> mm.families.Family:
    if case["family"].startswith("Negative Binomial"):
        return mm.families.NegativeBinomial(theta=case["nb_theta"])
    return mm.families.resolve(case["family"], link=case["link"])


def fit_case(case_id: str) -> mm.LmerResult | mm.GlmerResult:
    case = load_case(case_id)
    formula = case.get("formula_python", case["formula"])
    data, weights, offset = load_case_data(case_id), case["weights"], case["offset"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.SingularFitWarning)
        if case["kind"] == "lmer":
            return mm.lmer(formula, data, REML=case["REML"], weights=weights, offset=offset)
        return mm.glmer(formula, data, family=family_of(case), weights=weights, offset=offset, nAGQ=case["nAGQ"])


@pytest.mark.parametrize("case_id", case_ids("lmer"))
def test_the_lmm_objective_at_the_estimates_is_the_fits_objective(case_id: str) -> None:
    m = fit_case(case_id)
    assert isinstance(m, mm.LmerResult)
    design = m.design
    response = design.y - design.offset if design.offset is not None else design.y
    value = m._model.objective(np.ascontiguousarray(response, dtype=float), m.theta, m.reml)
    assert value == pytest.approx(m.deviance, rel=RELATIVE)


@pytest.mark.parametrize(
    "case_id", ["cbpp_binomial", "cbpp_binomial_agq9", "grouseticks_poisson", "synth_bernoulli_crossed", "synth_gamma_log"]
)
def test_the_glmm_objective_at_the_estimates_is_the_fits_objective(case_id: str) -> None:
    g = fit_case(case_id)
    assert isinstance(g, mm.GlmerResult)
    value = g._model.objective(g.theta, g._beta, g.n_agq)
    assert value == pytest.approx(g.objective, rel=RELATIVE)


@pytest.mark.parametrize("case_id", ["cbpp_binomial_nagq0", "grouseticks_poisson_nagq0"])
def test_without_fixed_effects_the_glmm_objective_is_stage_ones(case_id: str) -> None:
    g = fit_case(case_id)
    assert isinstance(g, mm.GlmerResult) and g.n_agq == 0
    assert g._model.objective(g.theta) == pytest.approx(g.objective, rel=RELATIVE)


def test_a_glmm_objective_that_cannot_be_evaluated_is_an_error() -> None:
    g = fit_case("cbpp_binomial")
    core = g._model
    with pytest.raises(mm.SpecificationError):
        core.objective(g.theta, None, 9)
    with pytest.raises(mm.SpecificationError):
        core.objective(g.theta, g._beta, 0)
    with pytest.raises(mm.DataError):
        core.objective(g.theta, g._beta[:-1], 1)
    with pytest.raises(mm.DataError):
        core.objective([1.0, 1.0], g._beta, 1)
