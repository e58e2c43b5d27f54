"""Satterthwaite's degrees of freedom (lmerTest 3.1-3) against R: every LMM case's coefficient
table (`satterthwaite` in the case JSON: `summary(as_lmerModLmerTest(m), ddf = "Satterthwaite")`)
and `contest` (reference/inference/<case>.json, `contest`), plus asymptotic and GLMM tables and
the refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from conftest import ReferenceFits
from reference_cases import case_ids, lme4_name
from tolerances import DEGREES_OF_FREEDOM, GLMM, LMM, P_VALUES, TEST_STATISTICS, WALD_BOUNDS, Tolerance, assert_close

INFERENCE_DIR = Path(__file__).parent / "reference" / "inference"
LMER_CASES = case_ids("lmer")
# t and SE are the fit's own numbers. InstEval's intercept SE rests on the weakly determined dept
# variance: our optimum is 7e-7 higher in log-likelihood than lme4's and θ_dept differs by 2e-4
# relative, which moves the intercept's SE by 1.1e-4 relative; held to the fit's SE tolerance.
FIT_LIMITED = {"insteval_ml": LMM.standard_errors}
CONTEST_CASES = sorted(path.stem for path in INFERENCE_DIR.glob("*.json") if isinstance(json.loads(path.read_text()).get("contest"), list))


def inference_reference(case_id: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((INFERENCE_DIR / f"{case_id}.json").read_text())
    return result


def statistic_tolerance(case_id: str) -> Tolerance:
    return FIT_LIMITED.get(case_id, TEST_STATISTICS)


def p_value_scale(p_value: Any, statistic: Any, df: Any, num_df: float | None = None) -> np.ndarray:
    """What P_VALUES' relative tolerance is relative to: p, times how many times faster than the
    statistic it changes (|d log p / d log t| or |d log p / d log F|, 30 and more for |t| > 5), so
    that a statistic within its 1e-4 does not fail its p-value; at least p itself."""
    value = np.abs(np.asarray(statistic, dtype=float))
    p = np.asarray(p_value, dtype=float)
    if num_df is None:
        elasticity = 2 * stats.t.pdf(value, np.asarray(df, dtype=float)) * value / p
    else:
        elasticity = stats.f.pdf(value, num_df, np.asarray(df, dtype=float)) * value / p
    return np.asarray(p * np.maximum(1.0, elasticity))


def compare_coefficients(table: pd.DataFrame, expected: dict[str, dict[str, float]], case_id: str) -> None:
    """A coefficient table against lmerTest's summary columns (df, t, se, p keyed by lme4's names)."""
    names = [lme4_name(name) for name in table.index]
    assert table.columns.tolist() == ["estimate", "std_error", "df", "statistic", "p_value"]
    theirs = {key: np.array([expected[key][name] for name in names]) for key in ("df", "t", "se", "p")}
    assert_close(table["df"], theirs["df"], DEGREES_OF_FREEDOM, f"{case_id} df")
    assert_close(table["statistic"], theirs["t"], statistic_tolerance(case_id), f"{case_id} t")
    assert_close(table["std_error"], theirs["se"], statistic_tolerance(case_id), f"{case_id} se")
    scale = p_value_scale(theirs["p"], theirs["t"], theirs["df"])
    assert_close(table["p_value"], theirs["p"], P_VALUES, f"{case_id} p", scale=scale)


@pytest.mark.parametrize("case_id", LMER_CASES)
def test_coefficient_table_matches_lmertest(case_id: str, reference_fits: ReferenceFits) -> None:
    expected = reference_fits.case(case_id)["satterthwaite"]
    m = reference_fits.lmer(case_id)
    compare_coefficients(m.coef_table(), expected, case_id)
    # The result's own p-values are these (lmerTest's summary).
    names = [lme4_name(name) for name in m.params.index]
    p = np.array([expected["p"][name] for name in names])
    scale = p_value_scale(p, [expected["t"][name] for name in names], [expected["df"][name] for name in names])
    assert_close(m.pvalues, p, P_VALUES, f"{case_id} pvalues", scale=scale)


def our_contrast(result: mm.LmerResult, entry: dict[str, Any]) -> pd.DataFrame:
    """The reference's L as a DataFrame named by our fixed effects, columns reversed (contest
    puts them back in order)."""
    names = {lme4_name(name): name for name in result.params.index}
    frame = pd.DataFrame(entry["L"], columns=[names[name] for name in entry["L_colnames"]], dtype=float)
    return frame[frame.columns[::-1]]


@pytest.mark.parametrize("case_id", CONTEST_CASES)
def test_contest_matches_lmertest(case_id: str, reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer(case_id)
    tolerance = statistic_tolerance(case_id)
    for entry in inference_reference(case_id)["contest"]:
        what = f"{case_id} {entry['name']}"
        contrast = our_contrast(m, entry)
        if "t_test" in entry:
            expected = entry["t_test"]
            ours = m.contest(contrast).iloc[0]
            assert_close(ours["estimate"], expected["Estimate"], tolerance, f"{what} estimate")
            assert_close(ours["std_error"], expected["Std. Error"], tolerance, f"{what} se")
            assert_close(ours["df"], expected["df"], DEGREES_OF_FREEDOM, f"{what} df")
            assert_close(ours["statistic"], expected["t value"], tolerance, f"{what} t")
            assert_close(ours[["lower", "upper"]], [expected["lower"], expected["upper"]], tolerance, f"{what} interval")
            scale = p_value_scale(expected["Pr(>|t|)"], expected["t value"], expected["df"])
            assert_close(ours["p_value"], expected["Pr(>|t|)"], P_VALUES, f"{what} p", scale=scale)
        expected = entry["F_test"]
        table = m.contest(contrast[m.params.index].to_numpy(), joint=True)
        assert table.columns.tolist() == ["sum_sq", "mean_sq", "num_df", "den_df", "F", "p_value"]
        ours = table.iloc[0]
        assert ours["num_df"] == expected["NumDF"]
        assert_close(ours[["sum_sq", "mean_sq"]], [expected["Sum Sq"], expected["Mean Sq"]], tolerance, f"{what} sums of squares")
        assert_close(ours["den_df"], expected["DenDF"], DEGREES_OF_FREEDOM, f"{what} den df")
        assert_close(ours["F"], expected["F value"], tolerance, f"{what} F")
        scale = p_value_scale(expected["Pr(>F)"], expected["F value"], expected["DenDF"], expected["NumDF"])
        assert_close(ours["p_value"], expected["Pr(>F)"], P_VALUES, f"{what} F p", scale=scale)


@pytest.mark.parametrize("case_id", CONTEST_CASES)
def test_asymptotic_intervals_are_lme4s_wald_intervals(case_id: str, reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer(case_id)
    intervals = inference_reference(case_id)["confint_wald"]["intervals"]
    table = m.coef_table("asymptotic")
    assert np.isinf(table["df"]).all()
    for position, name in enumerate(m.params.index):
        row = m.contest(np.eye(m.params.size)[position], ddf="asymptotic").iloc[0]
        assert row["statistic"] == pytest.approx(table["statistic"].iloc[position], rel=1e-12)
        assert_close(row[["lower", "upper"]], intervals[lme4_name(name)], WALD_BOUNDS, f"{case_id} {name} Wald interval")


def test_asymptotic_joint_test_is_the_wald_chi_square(reference_fits: ReferenceFits) -> None:
    # With L = I the Wald χ² is β̂ᵀ Cov(β̂)⁻¹ β̂ (lme4's numbers), F = χ²/p on (p, ∞) df.
    case = reference_fits.case("sleepstudy_reml")
    m = reference_fits.lmer("sleepstudy_reml")
    beta = np.array([case["fixef"][name] for name in case["vcov_names"]])
    wald = float(beta @ np.linalg.solve(np.array(case["vcov"], dtype=float), beta))
    table = m.contest(np.eye(2), ddf="asymptotic").iloc[0]
    assert_close(table["F"], wald / 2, TEST_STATISTICS, "Wald F")
    assert table["den_df"] == np.inf
    assert_close(table["p_value"], stats.chi2.sf(wald, 2), P_VALUES, "Wald p")


@pytest.mark.parametrize("case_id", ["cbpp_binomial", "grouseticks_poisson"])
def test_glmm_coefficient_table_is_asymptotic(case_id: str, reference_fits: ReferenceFits) -> None:
    case = reference_fits.case(case_id)
    m = reference_fits.glmer(case_id)
    table = m.coef_table()
    names = [lme4_name(name) for name in table.index]
    assert_close(table["estimate"], [case["fixef"][name] for name in names], GLMM.fixed_effects, "estimate")
    assert_close(table["std_error"], [case["fixef_se"][name] for name in names], GLMM.standard_errors, "se")
    assert np.isinf(table["df"]).all()
    with pytest.raises(mm.SpecificationError, match="'asymptotic'"):
        m.coef_table("satterthwaite")


def test_results_are_computed_once(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    assert m.satterthwaite is m.satterthwaite
    first = m.coef_table()
    first.loc["Days", "df"] = 0.0  # the caller's copy
    assert m.coef_table().loc["Days", "df"] > 16


def test_unknown_ddf_lists_the_accepted_ones(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    with pytest.raises(mm.SpecificationError, match="'satterthwaite', 'kenward-roger', 'asymptotic'.*'lme4'"):
        m.coef_table("lme4")
    with pytest.raises(mm.SpecificationError, match="'satterthwaite', 'kenward-roger', 'asymptotic'.*'KR'"):
        m.contest([0, 1], ddf="KR")
    with pytest.raises(mm.SpecificationError, match="not 3"):
        m.coef_table(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("contrast", "message"),
    [
        (np.array([1.0, 0.0, 0.0]), "2 columns"),
        (np.zeros((0, 2)), "at least one row"),
        (np.array([np.nan, 1.0]), "non-finite"),
        (["a", "b"], "numeric"),
        (pd.DataFrame({"Days": [1.0], "Slope": [0.0]}), r"unknown fixed effects \['Slope'\]; missing fixed effects \['Intercept'\]"),
        (pd.DataFrame({"Days": [1.0]}), r"missing fixed effects \['Intercept'\]"),
    ],
)
def test_bad_contrasts_are_refused(contrast: Any, message: str, reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    with pytest.raises(mm.DataError, match=message):
        m.contest(contrast)


def test_bad_contest_options_are_refused(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    with pytest.raises(mm.DataError, match="level"):
        m.contest([0, 1], level=1.5)
    with pytest.raises(mm.DataError, match="level must be between 0 and 1, not 'high'"):
        m.contest([0, 1], level="high")  # type: ignore[arg-type]
    with pytest.raises(mm.DataError, match="joint=False"):
        m.contest(np.eye(2), joint=False)


def test_a_series_contrast_is_one_row(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("sleepstudy_reml")
    expected = reference_fits.case("sleepstudy_reml")["satterthwaite"]
    row = m.contest(pd.Series({"Days": 1.0, "Intercept": 0.0})).iloc[0]
    assert_close(row["df"], expected["df"]["Days"], DEGREES_OF_FREEDOM, "df")
