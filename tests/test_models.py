"""The model layer: a model's objective at any parameters (lme4's ``devFunOnly``), refits of new
responses, fits of row subsets and the residual types, each checked against lme4 1.1-31: the
reference fits in reference/cases and the residuals and from-scratch group-deletion refits in
reference/diagnostics (made by reference/generate_diagnostics.R)."""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import mixedmodels as mm
from reference_cases import REFERENCE_DIR, as_list, case_ids, lme4_name, load_case, load_case_data
from tolerances import GLMM, LMM, assert_close, assert_loglik

if TYPE_CHECKING:
    from conftest import ReferenceFits

LMER_CASES = case_ids("lmer")
GLMER_CASES = case_ids("glmer")
DIAGNOSTICS_DIR = REFERENCE_DIR / "diagnostics"
DIAGNOSTICS_CASES = sorted(path.stem for path in DIAGNOSTICS_DIR.glob("*.json"))
GROUP_DELETION_CASES = [c for c in DIAGNOSTICS_CASES if c in LMER_CASES]
# How many deletion units of each case are refitted (the first ones in lme4's level order).
DELETION_UNITS = 6


@pytest.fixture
def fit(reference_fits: ReferenceFits) -> Callable[[str], mm.LmerResult | mm.GlmerResult]:
    """The session's reference fit of a case (conftest.py)."""
    return reference_fits.fit


@cache
def diagnostics(case_id: str) -> dict[str, Any]:
    return json.loads((DIAGNOSTICS_DIR / f"{case_id}.json").read_text(encoding="utf-8"))


# ----- the objective -------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", LMER_CASES)
def test_linear_objective_at_the_estimates_is_the_fits_criterion(case_id: str, fit: Callable[[str], Any]) -> None:
    m = fit(case_id)
    assert isinstance(m, mm.LmerResult)
    assert m.model.objective(m.theta) == pytest.approx(m.deviance, rel=1e-10, abs=1e-10)
    if m.reml:
        assert m.model.objective(m.theta, REML=False) == pytest.approx(m.deviance_ml, rel=1e-10)


@pytest.mark.parametrize("case_id", LMER_CASES)
def test_linear_objective_at_lme4s_theta_is_lme4s_criterion(case_id: str, fit: Callable[[str], Any]) -> None:
    """The objective is lme4's function: evaluated at lme4's θ̂ it gives lme4's REML criterion
    (or −2 log L) to the digits lme4 reports."""
    case = load_case(case_id)
    m = fit(case_id)
    expected = case["REMLcrit"] if case["REML"] else case["deviance"]
    assert m.model.objective(np.asarray(as_list(case["theta"]), dtype=float)) == pytest.approx(expected, rel=1e-9)


def test_ml_criterion_from_a_reml_model_is_lme4s_deviance_at_the_reml_estimates(fit: Callable[[str], Any]) -> None:
    case = load_case("sleepstudy_reml")
    m = fit("sleepstudy_reml")
    assert m.model.objective(np.asarray(case["theta"], dtype=float), REML=False) == pytest.approx(
        case["deviance_REML_FALSE"], rel=1e-9
    )


@pytest.mark.parametrize("case_id", GLMER_CASES)
def test_generalized_objective_at_the_estimates_is_the_fits_objective(case_id: str, fit: Callable[[str], Any]) -> None:
    g = fit(case_id)
    assert isinstance(g, mm.GlmerResult)
    if g.n_agq == 0:
        assert g.model.objective(g.theta) == pytest.approx(g.objective, rel=1e-10)
    else:
        assert g.model.objective(g.theta, g.params) == pytest.approx(g.objective, rel=1e-10)


@pytest.mark.parametrize("case_id", [c for c in GLMER_CASES if load_case(c)["nAGQ"] == 1])
def test_generalized_objective_at_lme4s_estimates_is_lme4s_laplace_deviance(case_id: str, fit: Callable[[str], Any]) -> None:
    """lme4's Laplace objective is −2 log L; at lme4's (θ̂, β̂) ours gives lme4's value, within the
    policy's log-likelihood tolerance (PIRLS stops on a 1e-7 relative change of the penalised
    deviance in both programs, 4e-4 on the negative binomial cases' 4,300)."""
    case = load_case(case_id)
    g = fit(case_id)
    names = [lme4_name(n) for n in g.params.index]
    beta = [case["fixef"][name] for name in names]
    theta = np.asarray(as_list(case["theta"]), dtype=float)
    assert_close(g.model.objective(theta, beta), case["minus2logLik"], GLMM.log_likelihood.times(2), case_id)


@pytest.mark.parametrize(
    ("theta", "message"), [("abc", "theta must be numbers"), ([np.nan, 0.0, 1.0], "theta has missing or non-finite values")]
)
def test_objective_rejects_parameters_that_are_not_finite_numbers(theta: Any, message: str, fit: Callable[[str], Any]) -> None:
    with pytest.raises(mm.DataError, match=message):
        fit("sleepstudy_reml").model.objective(theta)
    g = fit("cbpp_binomial")
    with pytest.raises(mm.DataError, match="beta must be numbers"):
        g.model.objective(g.theta, "abcd")


def test_a_new_response_or_weights_that_are_not_numbers_are_refused(fit: Callable[[str], Any]) -> None:
    model = fit("sleepstudy_reml").model
    with pytest.raises(mm.DataError, match="the new response must be numbers"):
        model.with_response(["a"] * model.nobs)
    with pytest.raises(mm.DataError, match="new weights must be numbers"):
        model.with_response(model.design.y, weights=["w"] * model.nobs)
    g = fit("cbpp_binomial")
    with pytest.raises(mm.DataError, match="the new response must be numbers"):
        g.refit(["a"] * g.nobs)


def test_objective_rejects_parameters_of_the_wrong_length(fit: Callable[[str], Any]) -> None:
    m = fit("sleepstudy_reml")
    with pytest.raises(mm.DataError, match="theta must have 3 values"):
        m.model.objective([1.0])
    g = fit("cbpp_binomial")
    assert isinstance(g, mm.GlmerResult)
    with pytest.raises(mm.DataError, match="beta must have 4 values"):
        g.model.objective(g.theta, [0.0])


def test_an_unfitted_generalized_model_evaluates_lme4s_stage_two_objective(fit: Callable[[str], Any]) -> None:
    """As lme4's ``devFunOnly``, a fresh model first runs the nAGQ = 0 stage, so its objective at
    the estimates is the fitted one."""
    g = fit("cbpp_binomial")
    case = load_case("cbpp_binomial")
    fresh = mm.GeneralizedLinearMixedModel.from_formula(case["formula"], load_case_data("cbpp_binomial"), "binomial", compat="lme4")
    assert fresh.objective(g.theta, g.params) == pytest.approx(g.objective, rel=1e-10)


# ----- refits and subsets -------------------------------------------------------------------


def test_a_new_response_shares_the_compiled_structure(fit: Callable[[str], Any]) -> None:
    m = fit("sleepstudy_reml")
    model = m.model.with_response(m.design.y * 2)
    assert model._core is m.model._core
    refitted = model.fit()
    assert refitted.model is model
    assert np.allclose(refitted.params, 2 * m.params, rtol=1e-6)


@pytest.mark.parametrize("case_id", GROUP_DELETION_CASES)
def test_subsets_fit_as_lme4_fits_the_data_without_a_group(case_id: str, fit: Callable[[str], Any]) -> None:
    """``model.subset`` leaves a grouping factor's level out; lme4 refitted each such subset from
    scratch (reference/diagnostics, ``case_deletion.groups``)."""
    reference = diagnostics(case_id)
    deletion = reference["case_deletion"]["groups"]
    m = fit(case_id)
    term = next(t for t in m.design.terms if t.group_name == reference["grouping_factor"])
    levels = list(term.factor.levels)
    names = [lme4_name(n) for n in m.params.index]
    order = [as_list(reference["fixef_names"]).index(name) for name in names]
    for unit in range(min(DELETION_UNITS, len(deletion["deleted"]))):
        keep = term.factor.codes != levels.index(deletion["deleted"][unit])
        assert int((~keep).sum()) == deletion["n_rows_deleted"][unit]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mm.MixedModelWarning)
            part = m.model.subset(keep).fit()
        assert part.nobs == m.nobs - deletion["n_rows_deleted"][unit]
        what = f"{case_id} without {deletion['deleted'][unit]}"
        assert_loglik(part.llf, deletion["logLik"][unit], LMM.log_likelihood, what)
        expected = np.asarray(deletion["fixef"][unit])[order]
        assert_close(part.params.to_numpy(), expected, LMM.fixed_effects, what, scale=np.abs(expected).max())
        assert_close(part.sigma, deletion["sigma"][unit], LMM.standard_errors, what)


def test_a_subset_drops_levels_without_rows_and_reorders_terms_as_lme4(fit: Callable[[str], Any]) -> None:
    pen = mm.datasets.load("Penicillin")
    model = mm.LinearMixedModel.from_formula("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    keep = np.isin(pen["plate"].astype(str).to_numpy(), ["a", "b"])
    part = model.subset(keep)
    assert [t.group_name for t in part.design.terms] == ["sample", "plate"]  # 6 samples, 2 plates
    assert [t.n_levels for t in part.design.terms] == [6, 2]
    assert list(part.design.terms[1].factor.levels) == ["a", "b"]
    with pytest.warns(mm.SingularFitWarning):  # two plates: the plate variance is estimated as 0
        direct = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen[keep])
    with pytest.warns(mm.SingularFitWarning):
        fitted = part.fit()
    assert fitted.llf == pytest.approx(direct.llf, abs=1e-9)
    assert np.allclose(fitted.theta, direct.theta, rtol=1e-8)


def test_subsets_reject_bad_rows(fit: Callable[[str], Any]) -> None:
    model = fit("sleepstudy_reml").model
    with pytest.raises(mm.DataError, match="no rows"):
        model.subset(np.zeros(model.nobs, dtype=bool))
    with pytest.raises(mm.DataError, match="boolean mask of 180"):
        model.subset(np.ones(5, dtype=bool))
    with pytest.raises(mm.DataError, match="positions below 180"):
        model.subset(np.array([0, 500]))


def test_a_generalized_subset_and_refit(fit: Callable[[str], Any]) -> None:
    g = fit("cbpp_binomial")
    assert isinstance(g, mm.GlmerResult)
    keep = g.design.terms[0].factor.codes != 0
    part = g.model.subset(keep)
    assert part.nobs == int(keep.sum())
    assert part.design.terms[0].n_levels == 14
    assert np.array_equal(part.response, g.y[keep])
    data = load_case_data("cbpp_binomial")
    direct = mm.glmer(load_case("cbpp_binomial")["formula"], data[keep], family="binomial", compat="lme4")
    assert part.fit().llf == pytest.approx(direct.llf, abs=1e-9)
    assert g.refit(g.y).llf == pytest.approx(g.llf, abs=1e-9)


# ----- residuals -------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", DIAGNOSTICS_CASES)
def test_residual_types_are_lme4s(case_id: str, fit: Callable[[str], Any]) -> None:
    reference = diagnostics(case_id)["residuals"]
    m = fit(case_id)
    kinds = {"pearson_scaled": ("pearson", True)}
    for key, expected in reference.items():
        kind, scaled = kinds.get(key, (key, False))
        got = m.residuals(kind, scaled=scaled).to_numpy()  # type: ignore[arg-type]
        want = np.asarray(expected, dtype=float)
        tolerance = LMM.fixed_effects if isinstance(m, mm.LmerResult) else GLMM.fixed_effects
        assert_close(got, want, tolerance, f"{case_id} {key} residuals", scale=np.abs(want).max())


def test_linear_residual_defaults(fit: Callable[[str], Any]) -> None:
    m = fit("synth_weighted_lmm")
    assert isinstance(m, mm.LmerResult)
    assert np.array_equal(m.residuals(), m.resid)
    assert np.allclose(m.residuals("pearson"), m.resid * np.sqrt(m.design.weights))
    assert np.array_equal(m.residuals("deviance"), m.residuals("pearson"))
    assert np.array_equal(m.residuals("working"), m.resid)
    with pytest.raises(ValueError, match="type must be one of"):
        m.residuals("raw")  # type: ignore[arg-type]


# ----- options, pickling and display ---------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 0, 2.5, True, "many"])
def test_max_evaluations_must_be_a_positive_whole_number(bad: Any) -> None:
    with pytest.raises(mm.SpecificationError, match="max_evaluations"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", mm.datasets.load("sleepstudy"), max_evaluations=bad)


def test_factorization_must_be_known() -> None:
    with pytest.raises(mm.SpecificationError, match="factorization"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", mm.datasets.load("sleepstudy"), factorization="dense")  # type: ignore[arg-type]


def test_a_pickled_model_rebuilds_its_structure(fit: Callable[[str], Any]) -> None:
    m = fit("sleepstudy_reml")
    model = pickle.loads(pickle.dumps(m.model))
    assert model._core_model is None
    again = model.fit()
    assert again.llf == pytest.approx(m.llf, abs=1e-10)
    assert np.allclose(again.theta, m.theta, rtol=1e-12)


def test_an_unpickled_result_keeps_a_working_model(fit: Callable[[str], Any]) -> None:
    m = fit("sleepstudy_reml")
    restored = pickle.loads(pickle.dumps(m))
    y = m.design.y[::-1].copy()
    assert np.array_equal(restored.refit(y).params, m.refit(y).params)
    assert restored.model.objective(m.theta) == pytest.approx(m.deviance, rel=1e-12)


def test_summary_renderings_share_one_set_of_tables(fit: Callable[[str], Any]) -> None:
    m = fit("sleepstudy_reml")
    summary = m.summary()
    text, markdown, page = str(summary), summary.to_markdown(), summary._repr_html_()
    for row in summary.tables.random:
        for cell in row:
            assert cell in text and cell.replace("|", "\\|") in markdown and cell in page
    assert summary.tables.groups in text and summary.tables.groups in markdown


def test_variance_components_agree_with_lme4(fit: Callable[[str], Any]) -> None:
    case = load_case("sleepstudy_reml")
    vc = fit("sleepstudy_reml").random_effects_covariance
    (term,) = vc.terms
    expected = {(row["var1"], row["var2"]): row for row in case["varcorr"]}
    assert term.covariance[0, 0] == pytest.approx(expected["(Intercept)", None]["vcov"], rel=2e-3)
    assert term.covariance[1, 1] == pytest.approx(expected["Days", None]["vcov"], rel=2e-3)
    assert term.correlation[1, 0] == pytest.approx(expected["(Intercept)", "Days"]["sdcor"], abs=2e-3)
    assert vc.residual_sd == pytest.approx(case["sigma"], rel=1e-3)
