"""Estimated marginal means (mixedmodels.inference.marginal_means and .reference_grid) against R's
emmeans 1.8.4 (``tests/reference/inference/<case>.json``, blocks ``emmeans`` and
``emmeans_by``): the reference grid (``linfct``, ``pairs_linfct``, levels, offset) of every case
that has one, the asymptotic means and pairwise comparisons (Tukey and unadjusted) of the lmer
cases, and the link- and response-scale means and comparisons of the glmer cases. Holm and
Bonferroni p-values are R's ``p.adjust`` definitions applied to emmeans' unadjusted p-values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import ReferenceFits
from mixedmodels.inference import MarginalMeans, PairwiseComparisons, emmeans
from mixedmodels.inference.marginal_means import contrast_degrees_of_freedom
from mixedmodels.inference.reference_grid import reference_grid
from reference_cases import lme4_name, load_case
from tolerances import DEGREES_OF_FREEDOM, LMM, P_VALUES, TEST_STATISTICS, WALD_BOUNDS, Tolerance, assert_close

INFERENCE_DIR = Path(__file__).parent / "reference" / "inference"
LINFCT = Tolerance(absolute=1e-12)
# A covariate's mean may differ from R's in the last bits (cHEIGHT is centred: its mean is 3e-16).
COVARIATE_MEANS = Tolerance(relative=1e-12, absolute=1e-12)
# Our insteval_ml fit's own fixed-effect SEs differ from lme4's by 1.07e-4 relative (within the LMM
# SE tolerance that test_lmer_reference holds them to), so the SEs of its means cannot agree more
# closely than that: they are held to the fit's SE tolerance.
STANDARD_ERRORS = {"insteval_ml": LMM.standard_errors}


def inference(case_id: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((INFERENCE_DIR / f"{case_id}.json").read_text(encoding="utf-8"))
    return loaded


def blocks(key: str) -> list[str]:
    return sorted(p.stem for p in INFERENCE_DIR.glob("*.json") if "reference_grid" in (inference(p.stem).get(key) or {}))


EMMEANS_CASES = blocks("emmeans")
BY_CASES = blocks("emmeans_by")
GRID_BLOCKS = [(c, "emmeans") for c in EMMEANS_CASES] + [(c, "emmeans_by") for c in BY_CASES]
LMM_BLOCKS = [(c, k) for c, k in GRID_BLOCKS if load_case(c)["kind"] == "lmer"]
GLMM_CASES = [c for c in EMMEANS_CASES if load_case(c)["kind"] == "glmer"]
# Every LMM block with each d.f. method emmeans computed. Kenward-Roger: REML fits only, and not
# synth_weighted_lmm, whose pbkrtest numbers ignore the prior weights (test_kenward_roger checks it
# against pbkrtest run with the weights).
LMM_DDF_BLOCKS = [
    (c, k, ddf)
    for c, k in LMM_BLOCKS
    for ddf in ("satterthwaite", "kenward-roger", "asymptotic")
    if "emmeans" in inference(c)[k].get(ddf, {}) and not (ddf == "kenward-roger" and load_case(c)["weights"])
]


def block_of(case_id: str, key: str) -> dict[str, Any]:
    block: dict[str, Any] = inference(case_id)[key]
    return block


def arguments(case_id: str, key: str) -> tuple[str, str | None, dict[str, list[Any]] | None]:
    """The spec factor, the by variable and its ``at`` values of the reference block."""
    block = block_of(case_id, key)
    spec = block["factor"] if key == "emmeans" else re.match(r"~\s*(\w+)", block["spec"]).group(1)  # type: ignore[union-attr]
    by = block.get("by")
    at = {by: block["at"]} if by is not None and block.get("at") is not None else None
    return spec, by, at


def means_of(reference_fits: ReferenceFits, case_id: str, key: str, **options: Any) -> MarginalMeans:
    spec, by, at = arguments(case_id, key)
    return emmeans(reference_fits.fit(case_id), spec, by, at=at, **options)


def in_r_order(frame: pd.DataFrame, case_id: str) -> np.ndarray:
    """Columns of a linfct frame in lme4's fixef order."""
    names = [lme4_name(n) for n in frame.columns]
    order = [names.index(name) for name in inference(case_id)["fixef_names"]]
    return frame.to_numpy()[:, order]


def test_the_references_cover_lmms_glmms_and_a_by_variable() -> None:
    kinds = {(load_case(c)["kind"], load_case(c).get("family")) for c in EMMEANS_CASES}
    assert {("lmer", None), ("glmer", "binomial"), ("glmer", "poisson")} <= kinds
    assert len(EMMEANS_CASES) == 9
    assert BY_CASES == ["cake_reml"]


# ----- reference grid ------------------------------------------------------------------------


@pytest.mark.parametrize(("case_id", "key"), GRID_BLOCKS)
def test_reference_grid_matches_emmeans(reference_fits: ReferenceFits, case_id: str, key: str) -> None:
    expected = block_of(case_id, key)["reference_grid"]
    spec, by, at = arguments(case_id, key)
    grid = reference_grid(reference_fits.fit(case_id), spec, by, at)
    assert_close(in_r_order(grid.linfct, case_id), expected["linfct"], LINFCT, f"{case_id} {key} linfct")
    assert sorted(grid.averaged_over) == sorted(expected["averaged_over"])
    rows = pd.DataFrame(expected["emmeans_rows"])
    for name in grid.rows.columns:
        assert grid.rows[name].astype(str).tolist() == rows[name].astype(str).tolist(), name
    offset = expected["ref_grid_offset"]
    if offset is None:
        assert grid.offset is None
    else:
        assert_close(grid.offset, offset[0], COVARIATE_MEANS, f"{case_id} offset")
    offset_variables = set(re.findall(r"\w+", " ".join(re.findall(r"offset\((.*?)\)\s*(?:\+|$)", load_case(case_id)["formula"]))))
    assert set(expected["ref_grid_levels"]) - set(grid.levels) <= {".offset.", *offset_variables}
    for name, values in grid.levels.items():
        reference = expected["ref_grid_levels"][name]
        if isinstance(values[0], float):
            assert_close(values, reference, COVARIATE_MEANS, f"{case_id} grid values of {name}")
        else:
            assert [str(v) for v in values] == reference, name


@pytest.mark.parametrize(("case_id", "key"), GRID_BLOCKS)
def test_pairwise_contrasts_match_emmeans(reference_fits: ReferenceFits, case_id: str, key: str) -> None:
    expected = block_of(case_id, key)["reference_grid"]
    pairs = means_of(reference_fits, case_id, key).pairs()
    assert_close(in_r_order(pairs.linfct, case_id), expected["pairs_linfct"], LINFCT, f"{case_id} {key} pairs linfct")
    assert pairs.table["contrast"].tolist() == expected["pairs_labels"]


# ----- linear mixed models, asymptotic d.f. -----------------------------------------------------


def on_its_uncertainty(values: pd.Series, standard_errors: pd.Series) -> np.ndarray:
    """The scale of an estimate or a limit as for the fixed effects (TOLERANCES.md): max(|value|,
    R's SE), so that a value near 0 (a difference of equal means) is compared on its uncertainty."""
    return np.maximum(np.abs(values.to_numpy(dtype=float)), standard_errors.to_numpy(dtype=float))


def compare_means(table: pd.DataFrame, rows: list[dict[str, Any]], estimate: str, what: str, case_id: str) -> None:
    """Means against emmeans' rows: asymptotic ones (df NA, ``asymp.LCL``) or with finite d.f."""
    expected = pd.DataFrame(rows)
    se = expected["SE"]
    assert_close(table["emmean"], expected[estimate], TEST_STATISTICS, f"{what} emmean", scale=on_its_uncertainty(expected[estimate], se))
    assert_close(table["std_error"], se, STANDARD_ERRORS.get(case_id, TEST_STATISTICS), f"{what} SE")
    compare_df(table["df"], expected["df"], what)
    low, high = ("asymp.LCL", "asymp.UCL") if "asymp.LCL" in expected else ("lower.CL", "upper.CL")
    assert_close(table["lower"], expected[low], WALD_BOUNDS, f"{what} lower", scale=on_its_uncertainty(expected[low], se))
    assert_close(table["upper"], expected[high], WALD_BOUNDS, f"{what} upper", scale=on_its_uncertainty(expected[high], se))


def compare_df(ours: pd.Series, theirs: pd.Series, what: str) -> None:
    """Infinite where emmeans' are NA (asymptotic), else Satterthwaite's or Kenward-Roger's, within
    the policy's 1e-3."""
    if theirs.isna().all():
        assert np.isinf(ours).all(), what
    else:
        assert_close(ours, theirs.astype(float), DEGREES_OF_FREEDOM, f"{what} df")


# R's ptukey integrates numerically to about 1e-10 absolute: in synth_weighted_lmm (Satterthwaite,
# A - B, t = 7.51 on 476 df) emmeans' Tukey p is 3.9e-11, above its own Bonferroni bound 3 x the
# unadjusted 2.95e-13; ours is 8.85e-13, within it (as R's integrate of the definition: see
# test_studentized_range).
TUKEY_P_VALUES = P_VALUES.or_absolute(1e-10)


def compare_pairs(pairs: PairwiseComparisons, rows: list[dict[str, Any]], estimate: str, what: str, case_id: str, p_values: Tolerance = P_VALUES) -> None:
    expected = pd.DataFrame(rows)
    se = expected["SE"]
    assert pairs.table["contrast"].tolist() == expected["contrast"].tolist()
    assert_close(pairs.table["estimate"], expected[estimate], TEST_STATISTICS, f"{what} estimate", scale=on_its_uncertainty(expected[estimate], se))
    assert_close(pairs.table["std_error"], se, STANDARD_ERRORS.get(case_id, TEST_STATISTICS), f"{what} SE")
    # z or t = estimate / SE: a statistic near 0 is compared on the scale of its uncertainty, 1.
    statistic = expected["z.ratio"] if "z.ratio" in expected else expected["t.ratio"]
    assert_close(pairs.table["statistic"], statistic, TEST_STATISTICS, f"{what} statistic", scale=np.maximum(np.abs(statistic), 1.0))
    assert_close(pairs.table["p_value"], expected["p.value"], p_values, f"{what} p")
    compare_df(pairs.table["df"], expected["df"], what)


@pytest.mark.parametrize(("case_id", "key", "ddf"), LMM_DDF_BLOCKS)
def test_lmm_means_match_emmeans(reference_fits: ReferenceFits, case_id: str, key: str, ddf: str) -> None:
    expected = block_of(case_id, key)[ddf]
    means = means_of(reference_fits, case_id, key, ddf=ddf)
    compare_means(means.table, expected["emmeans"], "emmean", f"{case_id} {key}", case_id)
    rows = pd.DataFrame(expected["emmeans"])
    for name in means.grid.rows.columns:
        assert means.table[name].astype(str).tolist() == rows[name].astype(str).tolist()


@pytest.mark.parametrize(("case_id", "key", "ddf"), LMM_DDF_BLOCKS)
@pytest.mark.parametrize("adjust", ["tukey", "none"])
def test_lmm_pairs_match_emmeans(reference_fits: ReferenceFits, case_id: str, key: str, adjust: str, ddf: str) -> None:
    expected = block_of(case_id, key)[ddf][f"pairs_{adjust}"]
    pairs = means_of(reference_fits, case_id, key, ddf=ddf).pairs(adjust=adjust)  # type: ignore[arg-type]
    p_values = TUKEY_P_VALUES if adjust == "tukey" else P_VALUES
    compare_pairs(pairs, expected, "estimate", f"{case_id} {key} {adjust} {ddf}", case_id, p_values)
    by = block_of(case_id, key).get("by")
    if by is not None:
        assert pairs.table[by].astype(str).tolist() == [str(row[by]) for row in expected]


def r_p_adjust(p: np.ndarray, method: str) -> np.ndarray:
    """R's p.adjust(p, "holm" | "bonferroni") of one family (its definition, as the expected value)."""
    m = len(p)
    if method == "bonferroni":
        return np.minimum(1.0, m * p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted


@pytest.mark.parametrize(("case_id", "key"), LMM_BLOCKS)
@pytest.mark.parametrize("adjust", ["holm", "bonferroni"])
def test_holm_and_bonferroni_adjust_within_each_by_group(reference_fits: ReferenceFits, case_id: str, key: str, adjust: str) -> None:
    unadjusted = pd.DataFrame(block_of(case_id, key)["asymptotic"]["pairs_none"])
    by = block_of(case_id, key).get("by")
    groups = unadjusted.groupby(by, sort=False).indices.values() if by else [np.arange(len(unadjusted))]
    expected = np.empty(len(unadjusted))
    for rows in groups:
        expected[rows] = r_p_adjust(unadjusted["p.value"].to_numpy()[rows], adjust)
    pairs = means_of(reference_fits, case_id, key, ddf="asymptotic").pairs(adjust=adjust)  # type: ignore[arg-type]
    assert_close(pairs.table["p_value"], expected, P_VALUES, f"{case_id} {key} {adjust}")


def test_lmm_response_scale_is_the_identity(reference_fits: ReferenceFits) -> None:
    link = emmeans(reference_fits.lmer("cake_reml"), "recipe")
    response = emmeans(reference_fits.lmer("cake_reml"), "recipe", type="response")
    pd.testing.assert_frame_equal(link.table, response.table)
    pd.testing.assert_frame_equal(link.pairs().table, response.pairs().table)


# ----- generalized linear mixed models -------------------------------------------------------


@pytest.mark.parametrize("case_id", GLMM_CASES)
@pytest.mark.parametrize("scale", ["link", "response"])
def test_glmm_means_match_emmeans(reference_fits: ReferenceFits, case_id: str, scale: str) -> None:
    expected = block_of(case_id, "emmeans")["asymptotic"][f"emmeans_{scale}"]
    means = means_of(reference_fits, case_id, "emmeans", type=scale)
    estimate = "emmean" if scale == "link" else {"binomial": "prob", "poisson": "rate"}[load_case(case_id)["family"]]
    compare_means(means.table, expected, estimate, f"{case_id} {scale}", case_id)


@pytest.mark.parametrize("case_id", GLMM_CASES)
@pytest.mark.parametrize("scale", ["link", "response"])
@pytest.mark.parametrize("adjust", ["tukey", "none"])
def test_glmm_pairs_match_emmeans(reference_fits: ReferenceFits, case_id: str, scale: str, adjust: str) -> None:
    expected = block_of(case_id, "emmeans")["asymptotic"][f"pairs_{adjust}_{scale}"]
    pairs = means_of(reference_fits, case_id, "emmeans", type=scale).pairs(adjust=adjust)  # type: ignore[arg-type]
    estimate = "estimate" if scale == "link" else {"logit": "odds.ratio", "log": "ratio"}[load_case(case_id)["link"]]
    compare_pairs(pairs, expected, estimate, f"{case_id} {scale} {adjust}", case_id)


# ----- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "problem"),
    [("Days", "'Days' is not a factor of the model's fixed part"), ("Subject", "'Subject' is not a factor"), ("Nobody", "'Nobody' is not a column")],
)
def test_a_spec_that_is_not_a_factor_of_the_fixed_part_is_refused(reference_fits: ReferenceFits, spec: str, problem: str) -> None:
    with pytest.raises(mm.SpecificationError, match=problem):
        emmeans(reference_fits.lmer("sleepstudy_reml"), spec)


def test_a_by_variable_outside_the_fixed_part_is_refused(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="'replicate' is not a variable of the model's fixed part"):
        emmeans(reference_fits.lmer("cake_reml"), "recipe", by="replicate")


def test_bad_options_are_refused(reference_fits: ReferenceFits) -> None:
    m = reference_fits.lmer("cake_reml")
    with pytest.raises(mm.SpecificationError, match=r"ddf must be one of \['satterthwaite', 'kenward-roger', 'asymptotic'\], not 'kr'"):
        emmeans(m, "recipe", ddf="kr")  # type: ignore[arg-type]
    with pytest.raises(mm.SpecificationError, match="no Kenward-Roger degrees of freedom"):
        emmeans(reference_fits.glmer("cbpp_binomial"), "period", ddf="kenward-roger")
    with pytest.raises(mm.SpecificationError, match="no Satterthwaite degrees of freedom"):
        emmeans(reference_fits.glmer("cbpp_binomial"), "period", ddf="satterthwaite")
    with pytest.raises(mm.SpecificationError, match=r"adjust must be one of \['tukey', 'holm', 'bonferroni', 'none'\], not 'scheffe'"):
        emmeans(m, "recipe").pairs(adjust="scheffe")  # type: ignore[arg-type]
    with pytest.raises(mm.SpecificationError, match="type must be one of"):
        emmeans(m, "recipe", type="probability")  # type: ignore[arg-type]
    with pytest.raises(mm.SpecificationError, match="level must be between 0 and 1"):
        emmeans(m, "recipe", level=95)
    with pytest.raises(mm.SpecificationError, match="level must be between 0 and 1, not 'high'"):
        emmeans(m, "recipe", level="high")  # type: ignore[arg-type]
    with pytest.raises(mm.SpecificationError, match="specs must be a variable name or a non-empty list of names, not 5"):
        emmeans(m, 5)  # type: ignore[arg-type]
    with pytest.raises(mm.SpecificationError, match="by must be a variable name or a non-empty list of names, not 3"):
        emmeans(m, "recipe", by=3)  # type: ignore[arg-type]
    with pytest.raises(mm.SpecificationError, match="in both specs and by"):
        emmeans(m, "recipe", by="recipe")
    with pytest.raises(mm.SpecificationError, match=r"at\['temperature'\] has values \['300'\]"):
        emmeans(m, "recipe", at={"temperature": ["300"]})
    with pytest.raises(mm.SpecificationError, match="at names 'replicate'"):
        emmeans(m, "recipe", at={"replicate": ["1"]})
    with pytest.raises(mm.SpecificationError, match="ddf must be one of"):
        contrast_degrees_of_freedom(m, np.eye(len(m.params)), "containment")


def test_response_scale_of_a_transformed_lmm_response_is_refused(reference_fits: ReferenceFits) -> None:
    data = reference_fits.data("cake_reml")
    m = mm.lmer("np.log(angle) ~ recipe + temperature + (1 | recipe:replicate)", data)
    with pytest.raises(mm.SpecificationError, match=r"transformed response 'np.log\(angle\)'"):
        emmeans(m, "recipe", type="response")


# ----- grids emmeans builds the same way ---------------------------------------------------------


def test_two_spec_factors_give_the_cells_of_the_by_grid(reference_fits: ReferenceFits) -> None:
    # emmeans' ~ recipe * temperature has the cells of ~ recipe | temperature, in the same order.
    expected = block_of("cake_reml", "emmeans_by")
    means = emmeans(reference_fits.lmer("cake_reml"), ["recipe", "temperature"], ddf="asymptotic")
    assert_close(in_r_order(means.grid.linfct, "cake_reml"), expected["reference_grid"]["linfct"], LINFCT, "cake cells linfct")
    compare_means(means.table, expected["asymptotic"]["emmeans"], "emmean", "cake cells", "cake_reml")
    assert means.grid.averaged_over == []


def test_a_numeric_by_variable_is_evaluated_at_the_given_values(reference_fits: ReferenceFits) -> None:
    data = reference_fits.data("sleepstudy_reml")
    data["third"] = pd.Categorical(np.asarray(["a", "b", "c"])[data["Subject"].cat.codes % 3])
    m = mm.lmer("Reaction ~ Days * third + (1 | Subject)", data)
    means = emmeans(m, "third", by="Days", at={"Days": [0, 9]})
    assert means.table["Days"].tolist() == [0.0] * 3 + [9.0] * 3
    assert means.grid.linfct["Days"].tolist() == means.table["Days"].tolist()
    assert (means.pairs().table["Days"] == np.repeat([0.0, 9.0], 3)).all()
    with pytest.raises(mm.SpecificationError, match=r"at\['Days'\] must hold numbers"):
        emmeans(m, "third", at={"Days": ["late"]})


def test_means_a_rank_deficient_fit_cannot_estimate_are_nan(reference_fits: ReferenceFits) -> None:
    # Without the cell recipe C at 225 degrees, recipe C's mean over temperatures is not estimable
    # (emmeans reports it as nonEst); the other means and their difference still are.
    data = reference_fits.data("cake_reml")
    data = data[~((data["recipe"] == "C") & (data["temperature"] == "225"))]
    with pytest.warns(mm.RankDeficiencyWarning):
        m = mm.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)", data)
    means = emmeans(m, "recipe")
    assert means.table["emmean"].isna().tolist() == [False, False, True]
    assert means.pairs().table["p_value"].isna().tolist() == [False, True, True]
