"""Nakagawa's R² and the ICC (mixedmodels.inference.variance_explained) against R's performance
0.10.2 and insight 0.19.0: ``r2_nakagawa`` and ``icc`` of every reference case that has them
(the case JSON), and for the glmer cases the variance components ``insight::get_variance`` and
the warnings (``tests/reference/inference/<case>.json``, block ``performance``)."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mixedmodels as mm
from conftest import ReferenceFits
from mixedmodels import DistributionVarianceWarning
from mixedmodels.inference import IntraclassCorrelation, RSquared, icc, r2, variance_decomposition
from reference_cases import case_ids, load_case
from tolerances import ICC_AND_R2, Tolerance, assert_close

INFERENCE_DIR = Path(__file__).parent / "reference" / "inference"
COMPONENTS = Tolerance(relative=1e-3)  # the variance components themselves
COMPONENT_NAMES = ("var_fixed", "var_random", "var_residual", "var_distribution", "var_dispersion")

# lme4 stops at a better optimum of grouseticks' null model TICKS ~ 1 + (1 | BROOD) + (1 | INDEX)
# + (1 | LOCATION) than our glmer does: lme4's intercept gives deviance 1874.2485, ours stops at
# 1874.2575 (μ = 1.551 against lme4's 1.525), so the Poisson's distribution-specific variance
# log1p(1/μ) is 1.3% low and the ICC 2e-3 high. A defect of the null-model fit, not of this module.
NULL_MODEL_SHORT_OF_LME4 = pytest.mark.xfail(
    strict=True, reason="our glmer stops short of lme4's optimum of the grouseticks null model (deviance 0.009 higher)"
)
NULL_MODEL_DEPENDENT = {"grouseticks_poisson": NULL_MODEL_SHORT_OF_LME4}

WITH_REFERENCE = [c for c in case_ids() if load_case(c).get("r2_nakagawa")]
SINGULAR = [c for c in WITH_REFERENCE if load_case(c)["r2_nakagawa"]["conditional"] is None]
REGULAR = [c for c in WITH_REFERENCE if c not in SINGULAR]
WITH_PERFORMANCE_BLOCK = sorted(p.stem for p in INFERENCE_DIR.glob("*.json") if "performance" in json.loads(p.read_text()))


def performance(case_id: str) -> dict[str, Any]:
    block: dict[str, Any] = json.loads((INFERENCE_DIR / f"{case_id}.json").read_text(encoding="utf-8"))["performance"]
    return block


def null_model_marks(case_ids: list[str]) -> list[Any]:
    return [pytest.param(c, marks=NULL_MODEL_DEPENDENT[c]) if c in NULL_MODEL_DEPENDENT else c for c in case_ids]


def quietly(function: Any, result: Any) -> Any:
    """``function(result)`` with the warnings the references expect (checked in their own tests)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DistributionVarianceWarning)
        return function(result)


def test_the_references_cover_lmms_and_both_glmm_families() -> None:
    kinds = {(load_case(c)["kind"], load_case(c).get("family")) for c in REGULAR}
    assert {("lmer", None), ("glmer", "binomial"), ("glmer", "poisson")} <= kinds
    assert SINGULAR == ["dyestuff2_reml"]
    assert len(WITH_PERFORMANCE_BLOCK) == 8


@pytest.mark.parametrize("case_id", null_model_marks(REGULAR))
def test_r2_matches_performance(reference_fits: ReferenceFits, case_id: str) -> None:
    expected = load_case(case_id)["r2_nakagawa"]
    ours = quietly(r2, reference_fits.fit(case_id))
    assert_close(ours.marginal, expected["marginal"], ICC_AND_R2, f"{case_id} marginal R²")
    assert_close(ours.conditional, expected["conditional"], ICC_AND_R2, f"{case_id} conditional R²")


INTERCEPT_ONLY = [c for c in REGULAR if load_case(c)["r2_nakagawa"]["marginal"] == 0]


def test_an_intercept_only_fixed_part_explains_exactly_nothing(reference_fits: ReferenceFits) -> None:
    """R's var() of the constant Xβ̂ is exactly 0 (performance's marginal R² 0); ours was the
    rounding of n equal values' mean (1.3e-29 on Penicillin), printed as such."""
    assert INTERCEPT_ONLY, "the references have intercept-only models (penicillin, dyestuff...)"
    for case_id in INTERCEPT_ONLY:
        components = quietly(variance_decomposition, reference_fits.fit(case_id))
        assert components.var_fixed == 0.0, case_id
        assert quietly(r2, reference_fits.fit(case_id)).marginal == 0.0, case_id
    assert "fixed           0\n" in repr(quietly(r2, reference_fits.fit(INTERCEPT_ONLY[0])))


@pytest.mark.parametrize("case_id", null_model_marks(REGULAR))
def test_icc_matches_performance(reference_fits: ReferenceFits, case_id: str) -> None:
    expected = load_case(case_id)["icc"]
    ours = quietly(icc, reference_fits.fit(case_id))
    for name in ("adjusted", "unadjusted", "conditional"):
        assert_close(getattr(ours, name), expected[name], ICC_AND_R2, f"{case_id} {name} ICC")


@pytest.mark.parametrize("case_id", WITH_PERFORMANCE_BLOCK)
def test_variance_components_match_insight(reference_fits: ReferenceFits, case_id: str) -> None:
    """What does not depend on the null model: Xβ̂'s variance, the random and the
    observation-level (dispersion) variances, the intercept and slope variances."""
    expected = performance(case_id)["variance_components"]
    ours = quietly(variance_decomposition, reference_fits.glmer(case_id))
    for name in ("var_fixed", "var_random", "var_dispersion"):
        assert_close(getattr(ours, name), expected[name], COMPONENTS.or_absolute(1e-12), f"{case_id} {name}")
    assert sorted(ours.var_intercept) == sorted(expected["var_intercept"])
    for group, value in expected["var_intercept"].items():
        assert_close(ours.var_intercept[group], value, COMPONENTS, f"{case_id} var_intercept[{group}]")
    assert sorted(ours.var_slope) == sorted(expected["var_slope"] or {})
    for name, value in (expected["var_slope"] or {}).items():
        assert_close(ours.var_slope[name], value, COMPONENTS, f"{case_id} var_slope[{name}]")


@pytest.mark.parametrize("case_id", null_model_marks(WITH_PERFORMANCE_BLOCK))
def test_distribution_variance_matches_insight(reference_fits: ReferenceFits, case_id: str) -> None:
    block = performance(case_id)
    expected = block["variance_components"]
    ours = quietly(variance_decomposition, reference_fits.glmer(case_id))
    for name in ("var_residual", "var_distribution"):
        assert_close(getattr(ours, name), expected[name], COMPONENTS, f"{case_id} {name}")
    family = block["approximation"].split(":")[0]
    assert ours.approximation.startswith(family)
    for name, value in block["r2_nakagawa"].items():
        if name != "warnings":
            assert_close(getattr(quietly(r2, reference_fits.glmer(case_id)), name), value, ICC_AND_R2, f"{case_id} {name} R²")


@pytest.mark.parametrize("case_id", null_model_marks(WITH_PERFORMANCE_BLOCK))
def test_warnings_match_performance(reference_fits: ReferenceFits, case_id: str) -> None:
    """performance's 'mu of <μ> is too close to zero' warning, with the same μ to one decimal,
    as a DistributionVarianceWarning with performance's text; none where performance gave none.
    (The reference's other warnings are lme4's convergence warnings of its null-model refit.)"""
    block = performance(case_id)
    for function, key in ((r2, "r2_nakagawa"), (icc, "icc")):
        expected = [m for m in block[key]["warnings"] if m.startswith("mu of")]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            function(reference_fits.glmer(case_id))
        ours = [str(w.message) for w in caught if issubclass(w.category, mm.MixedModelWarning)]
        assert all(issubclass(w.category, DistributionVarianceWarning) for w in caught if str(w.message).startswith("mu of"))
        assert ours == [" ".join(m.split()).removesuffix(".") for m in expected]


def test_singular_fit_gives_nan_with_a_warning(reference_fits: ReferenceFits) -> None:
    """performance on a near-singular fit (θ = 0): R² leaves the random effects out, the
    conditional R² is NA, and icc() returns NA; both warn that the variances can't be computed."""
    case_id = "dyestuff2_reml"
    expected = load_case(case_id)
    m = reference_fits.lmer(case_id)
    with pytest.warns(mm.SingularFitWarning, match="Can't compute random effect variances"):
        ours = r2(m)
    assert_close(ours.marginal, expected["r2_nakagawa"]["marginal"], ICC_AND_R2, "marginal R²")
    assert math.isnan(ours.conditional) and math.isnan(ours.components.var_random)
    assert expected["r2_nakagawa"]["warnings"].startswith("Can't compute random effect variances")
    assert expected.get("icc") is None
    with pytest.warns(mm.SingularFitWarning, match="Can't compute random effect variances"):
        intraclass = icc(m)
    assert np.isnan([intraclass.adjusted, intraclass.unadjusted, intraclass.conditional]).all()


def test_results_forward_to_the_analyses(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    expected = load_case("sleepstudy_reml")
    assert isinstance(m.icc(), IntraclassCorrelation) and isinstance(m.r2(), RSquared)
    assert_close(m.icc().adjusted, expected["icc"]["adjusted"], ICC_AND_R2, "m.icc().adjusted")
    assert_close(m.r2().conditional, expected["r2_nakagawa"]["conditional"], ICC_AND_R2, "m.r2().conditional")


def test_repr_shows_the_values_and_the_approximation(reference_fits: ReferenceFits) -> None:
    g = reference_fits.glmer("cbpp_binomial")
    expected = load_case("cbpp_binomial")
    text = repr(icc(g))
    assert re.search(rf"Adjusted ICC: {expected['icc']['adjusted']:.3f}", text)
    assert "binomial(logit): pi^2/3" in text
    assert f"Marginal R²: {expected['r2_nakagawa']['marginal']:.3f}" in repr(r2(g))


@pytest.mark.parametrize(("case_id", "variance"), [("synth_binomial_probit", 1.0), ("synth_binomial_cloglog", math.pi**2 / 6)])
def test_other_binomial_links_use_insights_constants(reference_fits: ReferenceFits, case_id: str, variance: float) -> None:
    """No R reference computed these (performance was not installed for the extra cases); the
    constants are insight 0.19.0's (R/compute_variances.R: probit 1, cloglog pi^2/6)."""
    ours = variance_decomposition(reference_fits.glmer(case_id))
    assert ours.var_distribution == variance and ours.var_residual == variance


def test_not_a_result_is_refused(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="needs a fitted mixed model.*not LinearMixedModel"):
        icc(reference_fits.lmer("sleepstudy_reml").model)
    with pytest.raises(mm.SpecificationError, match="not DataFrame"):
        r2(reference_fits.data("sleepstudy_reml"))


@pytest.mark.parametrize("case_id", ["synth_gamma_log", "synth_negbin", "synth_inverse_gaussian", "synth_gaussian_log"])
def test_families_without_an_approximation_are_refused(reference_fits: ReferenceFits, case_id: str) -> None:
    family = reference_fits.glmer(case_id).family
    assert family is not None
    with pytest.raises(mm.SpecificationError, match=rf"distribution-specific variance of the {re.escape(family.display_name)}"):
        r2(reference_fits.glmer(case_id))
