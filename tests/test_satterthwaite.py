"""Satterthwaite's degrees of freedom (lmerTest 3.1-3) against R: every LMM case's coefficient
table (`satterthwaite` in the case JSON: `summary(as_lmerModLmerTest(m), ddf = "Satterthwaite")`)
and `contest` (reference/inference/<case>.json, `contest`), plus asymptotic and GLMM tables and
the refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from conftest import ReferenceFits
from reference_cases import case_ids, lme4_name
from tolerances import DEGREES_OF_FREEDOM, LMM, P_VALUES, TEST_STATISTICS, Tolerance, assert_close

INFERENCE_DIR = Path(__file__).parent / "reference" / "inference"
LMER_CASES = case_ids("lmer")
# t and SE are the fit's own numbers. InstEval's intercept SE rests on the weakly determined dept
# variance: our optimum is 7e-7 higher in log-likelihood than lme4's and θ_dept differs by 2e-4
# relative, which moves the intercept's SE by 1.1e-4 relative; held to the fit's SE tolerance.
FIT_LIMITED = {"insteval_ml": LMM.standard_errors}
CONTEST_CASES = sorted(path.stem for path in INFERENCE_DIR.glob("*.json") if "contest" in json.loads(path.read_text()))


def inference_reference(case_id: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((INFERENCE_DIR / f"{case_id}.json").read_text())
    return result


def statistic_tolerance(case_id: str) -> Tolerance:
    return FIT_LIMITED.get(case_id, TEST_STATISTICS)


def p_value_scale(p_value: np.ndarray, statistic: np.ndarray, df: np.ndarray) -> np.ndarray:
    """What P_VALUES' relative tolerance is relative to: p, times how many times faster than t
    it changes (|d log p / d log t|, 30 and more for |t| > 5), so that a t within its 1e-4 does
    not fail its p-value; at least p itself."""
    t = np.abs(np.asarray(statistic, dtype=float))
    p = np.asarray(p_value, dtype=float)
    elasticity = 2 * stats.t.pdf(t, np.asarray(df, dtype=float)) * t / p
    return np.asarray(p * np.maximum(1.0, elasticity))


@pytest.mark.parametrize("case_id", LMER_CASES)
def test_coefficient_table_matches_lmertest(case_id: str, reference_fits: ReferenceFits) -> None:
    expected = reference_fits.case(case_id)["satterthwaite"]
    table = reference_fits.lmer(case_id).coef_table()
    names = [lme4_name(name) for name in table.index]
    assert table.columns.tolist() == ["estimate", "std_error", "df", "statistic", "p_value"]
    theirs = {key: np.array([expected[key][name] for name in names]) for key in ("df", "t", "se", "p")}
    assert_close(table["df"], theirs["df"], DEGREES_OF_FREEDOM, f"{case_id} df")
    assert_close(table["statistic"], theirs["t"], statistic_tolerance(case_id), f"{case_id} t")
    assert_close(table["std_error"], theirs["se"], statistic_tolerance(case_id), f"{case_id} se")
    scale = p_value_scale(theirs["p"], theirs["t"], theirs["df"])
    assert_close(table["p_value"], theirs["p"], P_VALUES, f"{case_id} p", scale=scale)
