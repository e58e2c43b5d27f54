"""The ANOVA table of the fixed-effect terms (lmerTest 3.1-3's `anova(m, type = 3 | 2)` with
Satterthwaite's df: `anova_type3_satterthwaite`, `anova_type2_satterthwaite` in
reference/inference/<case>.json, tables and hypothesis matrices) and lme4's sequential
`anova(m)` (`anova_lme4`) against our type 1, on every LMM case that has them; asymptotic tables
against the Wald test of lme4's estimates; bad input."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from conftest import ReferenceFits
from mixedmodels.inference.anova_table import anova_table, fixed_terms
from reference_cases import lme4_name
from test_satterthwaite import INFERENCE_DIR, inference_reference, p_value_scale, statistic_tolerance
from tolerances import DEGREES_OF_FREEDOM, P_VALUES, TEST_STATISTICS, assert_close

# Every LMM case with inference references (all carry the anova blocks).
LMER_CASES = sorted(path.stem for path in INFERENCE_DIR.glob("*.json") if "anova_lme4" in json.loads(path.read_text()))
TYPES = {3: "anova_type3_satterthwaite", 2: "anova_type2_satterthwaite"}
# lmerTest's hypotheses are printed through zapsmall(), 7 significant digits (1/6 as 0.1666667).
HYPOTHESIS_DIGITS = 1e-6
# lmerTest's type 1 hypotheses come from XᵀX (get_contrasts_type1), lme4's anova from R_X, the
# factor of XᵀV⁻¹X: they agree for the last term, and for every term of a balanced design, but
# not here, where x precedes trt in a weighted, unbalanced fit (1088.5 against lme4's 1076.5).
# lme4's number is the sequential test in the GLS metric, checked as such below.
LME4_SEQUENTIAL_IN_GLS_METRIC = {("synth_weighted_lmm", "x")}


def reference_matrix(m: mm.LmerResult, entry: dict[str, Any], fixef_names: list[str]) -> np.ndarray:
    """lmerTest's L with its columns in our ``params`` order."""
    theirs = pd.DataFrame(np.array(entry["L"], dtype=float).reshape(len(entry["rownames"]), -1), columns=fixef_names)
    return theirs[[lme4_name(name) for name in m.params.index]].to_numpy()


def assert_table(ours: pd.DataFrame, expected: list[dict[str, Any]], case_id: str, what: str, *, p_values: bool = True) -> None:
    assert ours.index.tolist() == [row["term"] for row in expected], what
    tolerance = statistic_tolerance(case_id)
    for row in expected:
        term = row["term"]
        mine = ours.loc[term]
        where = f"{case_id} {what} {term}"
        assert mine["num_df"] == row.get("NumDF", row.get("npar")), where
        assert_close(mine[["sum_sq", "mean_sq"]], [row["Sum Sq"], row["Mean Sq"]], tolerance, f"{where} sums of squares")
        assert_close(mine["F"], row["F value"], tolerance, f"{where} F")
        if p_values:
            assert_close(mine["den_df"], row["DenDF"], DEGREES_OF_FREEDOM, f"{where} den df")
            scale = p_value_scale(row["Pr(>F)"], row["F value"], row["DenDF"], row["NumDF"])
            assert_close(mine["p_value"], row["Pr(>F)"], P_VALUES, f"{where} p", scale=scale)


@pytest.mark.parametrize("kind", sorted(TYPES))
@pytest.mark.parametrize("case_id", LMER_CASES)
def test_anova_matches_lmertest(case_id: str, kind: int, reference_fits: ReferenceFits) -> None:
    reference = inference_reference(case_id)
    expected = reference[TYPES[kind]]
    m = reference_fits.lmer(case_id)
    anova = m.anova(type=kind)
    assert (anova.type, anova.ddf) == (kind, "satterthwaite")
    assert anova.table.columns.tolist() == ["sum_sq", "mean_sq", "num_df", "den_df", "F", "p_value"]
    if "skipped" in expected:  # intercept-only models: no terms
        assert anova.table.empty and not anova.hypotheses
        return
    assert_table(anova.table, expected["table"], case_id, f"type {kind}")
    assert list(anova.hypotheses) == list(expected["hypotheses"])
    for term, entry in expected["hypotheses"].items():
        ours = anova.hypotheses[term]
        assert ours.columns.equals(m.params.index)
        assert [lme4_name(name) for name in ours.index] == entry["rownames"]
        # Our construction is lmerTest's: the same matrices, not just the same row space.
        theirs = reference_matrix(m, entry, reference["fixef_names"])
        np.testing.assert_allclose(ours.to_numpy(), theirs, rtol=0, atol=HYPOTHESIS_DIGITS, err_msg=f"{case_id} type {kind} {term}")


@pytest.mark.parametrize("case_id", LMER_CASES)
def test_type1_is_lme4s_sequential_anova(case_id: str, reference_fits: ReferenceFits) -> None:
    expected = inference_reference(case_id)["anova_lme4"]["table"]
    m = reference_fits.lmer(case_id)
    table = m.anova(type=1).table
    agreeing = [row for row in expected if (case_id, row["term"]) not in LME4_SEQUENTIAL_IN_GLS_METRIC]
    assert table.index.tolist() == [row["term"] for row in expected]
    assert_table(table.loc[[row["term"] for row in agreeing]], agreeing, case_id, "type 1", p_values=False)
    terms = fixed_terms(m)
    for row in expected:
        if (case_id, row["term"]) in LME4_SEQUENTIAL_IN_GLS_METRIC:
            # Sequential rows of the Cholesky factor of Cov(β̂)⁻¹ ∝ XᵀV⁻¹X, in R's column order.
            order = terms.order
            factor = np.linalg.cholesky(np.linalg.inv(m.cov_params().to_numpy())[np.ix_(order, order)]).T
            rows = np.zeros_like(factor)
            rows[np.ix_(order, order)] = factor
            test = m.contest(rows[terms.columns[terms.labels.index(row["term"])]], joint=True).iloc[0]
            assert_close(test[["sum_sq", "F"]], [row["Sum Sq"], row["F value"]], TEST_STATISTICS, f"{case_id} {row['term']} GLS")
            assert not np.isclose(table.loc[row["term"], "F"], row["F value"], rtol=1e-3)


@pytest.mark.parametrize("case_id", ["cake_reml", "synth_weighted_lmm", "sleepstudy_reml"])
def test_asymptotic_table_is_the_wald_test(case_id: str, reference_fits: ReferenceFits) -> None:
    # W = (Lβ̂)ᵀ (L V Lᵀ)⁻¹ (Lβ̂) with lmerTest's L and lme4's β̂ and V; F = W/q on (q, ∞) df.
    case = reference_fits.case(case_id)
    reference = inference_reference(case_id)
    m = reference_fits.lmer(case_id)
    names = [lme4_name(name) for name in m.params.index]
    position = [case["vcov_names"].index(name) for name in names]
    beta = np.array([case["fixef"][name] for name in names])
    covariance = np.array(case["vcov"], dtype=float)[np.ix_(position, position)]
    table = m.anova(ddf="asymptotic").table
    assert np.isinf(table["den_df"]).all()
    for term, entry in reference["anova_type3_satterthwaite"]["hypotheses"].items():
        contrast = reference_matrix(m, entry, reference["fixef_names"])
        estimate = contrast @ beta
        wald = float(estimate @ np.linalg.solve(contrast @ covariance @ contrast.T, estimate))
        q = contrast.shape[0]
        assert table.loc[term, "num_df"] == q
        assert_close(table.loc[term, "F"], wald / q, TEST_STATISTICS, f"{case_id} {term} Wald F")
        p = stats.chi2.sf(wald, q)
        scale = p * max(1.0, stats.chi2.pdf(wald, q) * wald / p)  # as p_value_scale, for χ²
        assert_close(table.loc[term, "p_value"], p, P_VALUES, f"{case_id} {term} Wald p", scale=scale)


def test_type3_needs_treatment_coding(reference_fits: ReferenceFits) -> None:
    data = reference_fits.data("cake_reml")
    m = mm.lmer("angle ~ C(recipe, Sum) * temperature + (1 | recipe:replicate)", data)
    with pytest.raises(mm.SpecificationError, match="treatment-coded"):
        m.anova()
    # Types 1 and 2 do not depend on the coding of a balanced design's main effects.
    expected = inference_reference("cake_reml")["anova_type2_satterthwaite"]["table"]
    table = m.anova(type=2).table.rename(index={"C(recipe, Sum)": "recipe", "C(recipe, Sum):temperature": "recipe:temperature"})
    assert_table(table, expected, "cake_reml", "type 2, sum coding")


def test_the_table_reads_well(reference_fits: ReferenceFits) -> None:
    anova = reference_fits.lmer("cake_reml").anova()
    assert repr(anova).startswith("Type III Analysis of Variance Table with Satterthwaite's method\n")
    assert "recipe:temperature" in repr(anova) and "<table" in anova._repr_html_()
    assert "Type I Analysis" in repr(reference_fits.lmer("cake_reml").anova(type="I", ddf="asymptotic"))
    assert mm.anova(reference_fits.lmer("cake_reml")).table.equals(anova.table)


def test_a_term_without_columns_has_no_test(reference_fits: ReferenceFits) -> None:
    data = reference_fits.data("sleepstudy_reml").assign(Weeks=lambda d: d["Days"] / 7)
    with pytest.warns(mm.errors.RankDeficiencyWarning):
        m = mm.lmer("Reaction ~ Days + Weeks + (Days | Subject)", data)
    table = m.anova(type=1).table
    assert np.isnan(table.loc["Weeks"]).all()
    assert_close(table.loc["Days", "F"], inference_reference("sleepstudy_reml")["anova_lme4"]["table"][0]["F value"], TEST_STATISTICS, "Days F")


@pytest.mark.parametrize("kind", [0, 4, "IV", 3.0, True, None])
def test_unknown_types_are_refused(kind: Any, reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="type must be 1, 2 or 3"):
        reference_fits.lmer("sleepstudy_reml").anova(type=kind)


def test_unknown_ddf_lists_the_accepted_ones(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="'satterthwaite', 'kenward-roger', 'asymptotic'.*'containment'"):
        reference_fits.lmer("sleepstudy_reml").anova(ddf="containment")


def test_a_glmm_has_no_f_table(reference_fits: ReferenceFits) -> None:
    g = reference_fits.glmer("cbpp_binomial")
    assert not hasattr(g, "anova")
    with pytest.raises(mm.MixedModelError, match="GlmerResult has no single-model anova table; pass two or more models"):
        mm.anova(g)
    with pytest.raises(mm.SpecificationError, match="needs a linear mixed model fit, not a GlmerResult"):
        anova_table(g)  # type: ignore[arg-type]
