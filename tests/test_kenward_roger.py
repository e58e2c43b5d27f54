"""Kenward and Roger's method (pbkrtest 0.5.2 through lmerTest 3.1-3 and emmeans 1.8.4) against R:
the KR coefficient table of every REML case (`kenward_roger` in the case JSON: `summary(m, ddf =
"Kenward-Roger")`, the adjusted SE), the type III KR ANOVA (`anova_type3_kenward_roger` in
reference/inference/<case>.json) also through `contest`, and reference/kenward_roger/*.json
(generate_kenward_roger.R): synth_crossed_slopes_reml's coefficient table, which the shared
generator skipped, and the prior-weights models computed by pbkrtest's own `vcovAdj_internal` with
the weighted Σ (pbkrtest itself ignores lmer's prior weights: the shared synth_weighted_lmm KR
numbers give about 2,400 denominator df for 500 observations, so they are not compared). The
emmeans KR blocks of the shared references are checked in test_marginal_means."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import ReferenceFits
from reference_cases import case_ids, load_case, load_case_data
from test_anova_table import assert_table, reference_matrix
from test_satterthwaite import compare_coefficients, inference_reference, p_value_scale, statistic_tolerance
from tolerances import DEGREES_OF_FREEDOM, P_VALUES, TEST_STATISTICS, WALD_BOUNDS, assert_close

KR_DIR = Path(__file__).parent / "reference" / "kenward_roger"
# pbkrtest ignores prior weights (see the module docstring); these cases are checked against
# reference/kenward_roger instead.
WEIGHTED = {case for case in case_ids("lmer") if load_case(case)["weights"]}
SUMMARY_CASES = [case for case in case_ids("lmer") if "df" in (load_case(case).get("kenward_roger") or {}) and case not in WEIGHTED]
ANOVA_CASES = [
    case
    for case in case_ids("lmer")
    if (Path(__file__).parent / "reference" / "inference" / f"{case}.json").exists()
    and "table" in inference_reference(case).get("anova_type3_kenward_roger", {})
    and case not in WEIGHTED
]
WEIGHTED_REFERENCES = sorted(path.stem for path in KR_DIR.glob("*.json") if json.loads(path.read_text())["case"] in WEIGHTED)


def kr_reference(case_id: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((KR_DIR / f"{case_id}.json").read_text())
    return loaded


def as_columns(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """reference/kenward_roger's coefficient rows as lmerTest's summary columns."""
    keys = {"df": "df", "t": "t value", "se": "Std. Error", "p": "Pr(>|t|)"}
    return {ours: {row["term"]: row[theirs] for row in rows} for ours, theirs in keys.items()}


def refit_reml(case_id: str) -> mm.LmerResult:
    """The case's model refitted by REML with its prior weights (as generate_kenward_roger.R)."""
    meta = load_case(case_id)
    data = load_case_data(case_id)
    return mm.lmer(meta["formula"], data, REML=True, weights=data[meta["weights"]])


def test_the_references_cover_vector_terms_singular_fits_and_weights() -> None:
    assert {"sleepstudy_reml", "dyestuff2_reml", "synth_factor_re_reml", "penicillin_reml", "cake_reml"} <= set(SUMMARY_CASES)
    assert len(SUMMARY_CASES) == 16
    assert {"cake_reml", "synth_crossed_slopes_reml", "synth_offset_lmm"} <= set(ANOVA_CASES)
    assert WEIGHTED_REFERENCES == ["synth_weighted_lmm", "synth_weighted_slopes_ml"]


@pytest.mark.parametrize("case_id", SUMMARY_CASES)
def test_coefficient_table_matches_lmertest(case_id: str, reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer(case_id)
    table = m.coef_table(ddf="kenward-roger")
    compare_coefficients(table, load_case(case_id)["kenward_roger"], case_id)
    # bse stays lme4's unadjusted SE; lmerTest's spelling of the method is accepted.
    assert_close(m.bse, np.sqrt(np.diag(m.kenward_roger.beta_covariance)), TEST_STATISTICS, f"{case_id} bse")
    pd.testing.assert_frame_equal(m.coef_table(ddf="Kenward-Roger"), table)


def test_a_coefficient_table_pbkrtest_takes_half_a_minute_for(reference_fits: ReferenceFits) -> None:
    expected = kr_reference("synth_crossed_slopes_reml")
    assert expected["time_s"] > 20
    table = reference_fits.lmer("synth_crossed_slopes_reml").coef_table(ddf="kenward-roger")
    compare_coefficients(table, as_columns(expected["coefficients"]), "synth_crossed_slopes_reml")


@pytest.mark.parametrize("case_id", ANOVA_CASES)
def test_anova_matches_lmertest(case_id: str, reference_fits: ReferenceFits) -> None:
    reference = inference_reference(case_id)
    expected = reference["anova_type3_kenward_roger"]
    m = reference_fits.lmer(case_id)
    anova = m.anova(ddf="kenward-roger")
    assert anova.ddf == "kenward-roger"
    assert anova.heading == "Type III Analysis of Variance Table with Kenward-Roger's method"
    assert_table(anova.table, expected["table"], case_id, "type 3 KR")
    # The same hypotheses through contest: joint F-tests of lmerTest's matrices.
    for row in expected["table"]:
        contrast = reference_matrix(m, expected["hypotheses"][row["term"]], reference["fixef_names"])
        test = m.contest(contrast, ddf="kenward-roger", joint=True).iloc[0]
        where = f"{case_id} contest {row['term']}"
        assert_close(test["den_df"], row["DenDF"], DEGREES_OF_FREEDOM, f"{where} den df")
        assert_close(test["F"], row["F value"], statistic_tolerance(case_id), f"{where} F")


@pytest.mark.parametrize("case_id", WEIGHTED_REFERENCES)
def test_prior_weights_enter_the_covariance_of_the_data(case_id: str) -> None:
    expected = kr_reference(case_id)
    m = refit_reml(case_id)
    assert m.reml
    assert_close(m.theta, np.atleast_1d(expected["theta"]), TEST_STATISTICS, f"{case_id} theta")
    compare_coefficients(m.coef_table(ddf="kenward-roger"), as_columns(expected["coefficients"]), case_id)
    anova = m.anova(ddf="kenward-roger").table
    for row in expected["anova_type3"]:
        mine = anova.loc[row["term"]]
        where = f"{case_id} {row['term']}"
        assert_close(mine["den_df"], row["DenDF"], DEGREES_OF_FREEDOM, f"{where} den df")
        assert_close(mine[["F", "mean_sq", "sum_sq"]], [row["F value"], row["Mean Sq"], row["Sum Sq"]], TEST_STATISTICS, f"{where} F")
        scale = p_value_scale(row["Pr(>F)"], row["F value"], row["DenDF"], row["NumDF"])
        assert_close(mine["p_value"], row["Pr(>F)"], P_VALUES, f"{where} p", scale=scale)


def test_weighted_marginal_means_and_their_differences() -> None:
    expected = kr_reference("synth_weighted_lmm")["emmeans"]
    means = mm.emmeans(refit_reml("synth_weighted_lmm"), expected["spec"], ddf="kenward-roger")
    for ours, rows in ((means.table, expected["emmeans"]), (means.pairs(adjust="none").table, expected["pairs_none"])):
        theirs = pd.DataFrame(rows)
        estimate = "emmean" if "emmean" in ours else "estimate"
        what = f"synth_weighted_lmm {estimate}"
        scale = np.maximum(np.abs(theirs["estimate"]), theirs["SE"])
        assert_close(ours[estimate], theirs["estimate"], TEST_STATISTICS, what, scale=scale)
        assert_close(ours["std_error"], theirs["SE"], TEST_STATISTICS, f"{what} SE")
        assert_close(ours["df"], theirs["df"], DEGREES_OF_FREEDOM, f"{what} df")
        if estimate == "emmean":
            assert_close(ours["lower"], theirs["lower.CL"], WALD_BOUNDS, f"{what} lower", scale=scale)
            assert_close(ours["upper"], theirs["upper.CL"], WALD_BOUNDS, f"{what} upper", scale=scale)
        else:
            assert ours["contrast"].tolist() == theirs["label"].tolist()
            assert_close(ours["p_value"], theirs["p.value"], P_VALUES, f"{what} p", scale=p_value_scale(theirs["p.value"], theirs["t.ratio"], theirs["df"]))


def test_one_contrast_is_the_coefficient_test(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    expected = load_case("sleepstudy_reml")["kenward_roger"]
    test = m.contest([0, 1], ddf="kenward-roger").iloc[0]
    assert_close(test[["df", "statistic", "std_error"]], [expected["df"]["Days"], expected["t"]["Days"], expected["se"]["Days"]], TEST_STATISTICS, "Days")


def test_the_adjustment_is_computed_once(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("penicillin_reml")
    assert m.kenward_roger is m.kenward_roger


def test_an_ml_fit_is_refused(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_ml")
    for call in (lambda: m.coef_table(ddf="kenward-roger"), lambda: m.anova(ddf="kenward-roger"), lambda: m.contest([0, 1], ddf="kenward-roger")):
        with pytest.raises(mm.SpecificationError, match="Kenward-Roger's method needs a REML fit"):
            call()


def test_a_glmm_has_no_kenward_roger_tests(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="ddf must be one of 'asymptotic' for a generalized linear mixed model, not 'kenward-roger'"):
        reference_fits.glmer("cbpp_binomial").coef_table(ddf="kenward-roger")


def test_the_summary_shows_the_kenward_roger_table(reference_fits: ReferenceFits) -> None:
    """lmerTest's summary(m, ddf = "Kenward-Roger"): the adjusted SE, KR df, t and p."""
    summary = reference_fits.lmer("sleepstudy_reml").summary(ddf="kenward-roger")
    table = summary.tables.fixed.rename(columns={"Estimate": "estimate", "Std. Error": "std_error", "t value": "statistic", "Pr(>|t|)": "p_value"})
    table.index = pd.Index(["Intercept", "Days"])
    compare_coefficients(table, load_case("sleepstudy_reml")["kenward_roger"], "sleepstudy_reml summary")
    assert "Kenward-Roger's degrees of freedom" in str(summary)
    with pytest.raises(mm.SpecificationError, match="needs a REML fit"):
        str(reference_fits.lmer("sleepstudy_ml").summary(ddf="kenward-roger"))
