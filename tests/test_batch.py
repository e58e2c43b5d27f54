"""mm.lmer_many against lme4 + lmerTest fitted gene by gene (reference/batch: 60 genes × 120
samples with voom-like precision weights, a constant gene, a gene with missing values, a singular
gene and a gene with a huge outlier; generate_batch.R), and against mm.lmer on each gene."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import BATCH_REFERENCE
from test_satterthwaite import p_value_scale
from tolerances import DEGREES_OF_FREEDOM, LMM, P_VALUES, TEST_STATISTICS, Tolerance, assert_close, assert_loglik

FORMULA = "~ condition + age + (1 | donor) + (1 | batch)"
# lme4's coefficient names → ours.
COEFFICIENTS = {"(Intercept)": "Intercept", "conditiontreat": "condition[T.treat]", "age": "age"}
CONSTANT_GENE = "G005"
# Unweighted G050: lme4's REML optimum is 9e-8 above ours (checked below), its θ 5e-5 off ours on a
# flat criterion; the intercept's t (6.5 on 18.5 df) moves by 4e-5 and its p-value (3.6e-6) by
# 1.1e-3 relative, so the tests are compared at twice the usual tolerances for that gene.
IMPRECISE_UNWEIGHTED = {"G050": 2.0}


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    with open(BATCH_REFERENCE / "results.json") as handle:
        return dict(json.load(handle))


@pytest.fixture(scope="module")
def batch(samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame) -> mm.BatchResult:
    return mm.lmer_many(FORMULA, samples, expression, weights=weights)


def fitted_genes(reference: dict[str, Any]) -> list[dict[str, Any]]:
    """The reference genes whose lme4 numbers are references (not the constant gene's noise)."""
    return [gene for gene in reference["genes"] if gene["gene"] != CONSTANT_GENE]


def rows_of(batch: mm.BatchResult, gene: str) -> pd.DataFrame:
    return batch.table[batch.table["gene"] == gene].set_index("coef")


def test_every_gene_matches_lme4_and_lmertest(batch: mm.BatchResult, reference: dict[str, Any]) -> None:
    for gene in fitted_genes(reference):
        name = gene["gene"]
        rows = rows_of(batch, name)
        ours = [COEFFICIENTS[c] for c in gene["fixef"]]
        se = np.array(list(gene["se"].values()))
        scale = np.maximum(np.abs(list(gene["fixef"].values())), se)
        assert_close(batch.fixef.loc[name, ours], list(gene["fixef"].values()), LMM.fixed_effects, f"{name} fixef", scale=scale)
        assert_close(batch.std_errors.loc[name, ours], se, LMM.standard_errors, f"{name} SE")
        assert_close(
            batch.beta_covariance[batch.genes.get_loc(name)],  # same coefficient order as lme4's
            np.array(gene["vcov"]),
            LMM.fixed_effect_covariances,
            f"{name} vcov",
            scale=np.outer(se, se),
        )
        theta = np.array(gene["theta"])
        assert_close(batch.theta.loc[name, gene["theta_names"]], theta, LMM.theta, f"{name} theta", scale=1 + np.abs(theta))
        assert_close(rows["sigma"].iloc[0], gene["sigma"], Tolerance(relative=LMM.variances.relative / 2), f"{name} sigma")
        assert_loglik(float(rows["loglik"].iloc[0]), gene["logLik"], LMM.log_likelihood, f"{name} logLik")
        assert rows["n_obs"].iloc[0] == gene["n_used"]
        assert bool(rows["singular"].iloc[0]) == gene["isSingular"], name
        assert pd.isna(rows["error"].iloc[0]) and bool(rows["converged"].iloc[0])
        satterthwaite = gene["satterthwaite"]
        lme4_order = list(gene["fixef"])
        ours_rows = rows.loc[ours]
        assert_close(ours_rows["df"], [satterthwaite["df"][c] for c in lme4_order], DEGREES_OF_FREEDOM, f"{name} df")
        assert_close(ours_rows["statistic"], [satterthwaite["t"][c] for c in lme4_order], TEST_STATISTICS, f"{name} t")
        assert_close(ours_rows["p_value"], [satterthwaite["p"][c] for c in lme4_order], P_VALUES, f"{name} p")


def test_unweighted_genes_match_lme4_and_lmertest(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    # Genes without weights refit one shared structure (G017, with missing values, its own).
    with open(BATCH_REFERENCE / "results_unweighted.json") as handle:
        reference = json.load(handle)
    batch = mm.lmer_many(FORMULA, samples, expression)
    for gene in reference["genes"]:
        name = gene["gene"]
        rows = rows_of(batch, name)
        ours = [COEFFICIENTS[c] for c in gene["fixef"]]
        se = np.array(list(gene["se"].values()))
        scale = np.maximum(np.abs(list(gene["fixef"].values())), se)
        assert_close(batch.fixef.loc[name, ours], list(gene["fixef"].values()), LMM.fixed_effects, f"{name} fixef", scale=scale)
        assert_close(batch.std_errors.loc[name, ours], se, LMM.standard_errors, f"{name} SE")
        theta = np.array(gene["theta"])
        assert_close(batch.theta.loc[name, gene["theta_names"]], theta, LMM.theta, f"{name} theta", scale=1 + np.abs(theta))
        assert_close(rows["sigma"].iloc[0], gene["sigma"], Tolerance(relative=LMM.variances.relative / 2), f"{name} sigma")
        assert_loglik(float(rows["loglik"].iloc[0]), gene["logLik"], LMM.log_likelihood, f"{name} logLik")
        assert rows["n_obs"].iloc[0] == gene["n_used"] and bool(rows["singular"].iloc[0]) == gene["isSingular"], name
        lme4_order = list(gene["fixef"])
        factor = IMPRECISE_UNWEIGHTED.get(name, 1.0)
        for column, key, tolerance in (("df", "df", DEGREES_OF_FREEDOM), ("statistic", "t", TEST_STATISTICS), ("p_value", "p", P_VALUES)):
            expected = [gene["satterthwaite"][key][c] for c in lme4_order]
            assert_close(rows.loc[ours, column], expected, tolerance.times(factor), f"{name} {column}")
    for name in IMPRECISE_UNWEIGHTED:
        single = mm.lmer("y " + FORMULA, samples.assign(y=expression.loc[name]))
        lme4_theta = next(gene["theta"] for gene in reference["genes"] if gene["gene"] == name)
        assert single.model.objective(lme4_theta) > single.REMLcrit, name


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
def test_kenward_roger_tests_match_pbkrtest(samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame, weighted: bool) -> None:
    # reference/batch/kenward_roger.json (generate_batch_kenward_roger.R): lmerTest's KR table
    # without weights; with dream's weights, pbkrtest's vcovAdj on the weighted covariance.
    with open(BATCH_REFERENCE / "kenward_roger.json") as handle:
        reference = json.load(handle)
    batch = mm.lmer_many(FORMULA, samples, expression, weights=weights if weighted else None, ddf="kenward-roger")
    key = "weighted" if weighted else "unweighted"
    for gene in reference["genes"]:
        name, expected = gene["gene"], gene[key]
        rows = rows_of(batch, name)
        lme4_order = list(expected["fixef"])
        ours = rows.loc[[COEFFICIENTS[c] for c in lme4_order]]
        factor = 1.0 if weighted else IMPRECISE_UNWEIGHTED.get(name, 1.0)
        assert_close(ours["std_error"], [expected["se"][c] for c in lme4_order], LMM.standard_errors.times(factor), f"{name} KR SE")
        for column, entry, tolerance in (("df", "df", DEGREES_OF_FREEDOM), ("statistic", "t", TEST_STATISTICS), ("p_value", "p", P_VALUES)):
            values = [expected[entry][c] for c in lme4_order]
            assert_close(ours[column], values, tolerance.times(factor), f"{name} KR {column}")
    assert batch.table["error"].notna().sum() == len(COEFFICIENTS)  # the constant gene's rows only


@pytest.mark.parametrize(("weighted", "ddf"), [(True, "satterthwaite"), (False, "satterthwaite"), (False, "kenward_roger")])
def test_contrasts_match_lmertests_contest1d(samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame, weighted: bool, ddf: str) -> None:
    # reference/batch/contrasts.json (generate_batch_contrasts.R): lmerTest's contest1D per gene.
    with open(BATCH_REFERENCE / "contrasts.json") as handle:
        reference = json.load(handle)
    lme4_names = reference["coefficients"]
    rows, labels = [row["row"] for row in reference["L"]], [row["name"] for row in reference["L"]]
    contrasts = pd.DataFrame(rows, index=labels, columns=[COEFFICIENTS[c] for c in lme4_names])
    batch = mm.lmer_many(FORMULA, samples, expression, weights=weights if weighted else None, contrasts=contrasts, ddf=ddf.replace("_", "-"))
    as_array = mm.lmer_many(FORMULA, samples, expression.iloc[:3], contrasts=contrasts.to_numpy(), ddf=ddf.replace("_", "-"))
    assert as_array.table["coef"].tolist()[:2] == ["L1", "L2"]
    for gene in reference["genes"]:
        name = gene["gene"]
        rows = rows_of(batch, name)
        expected = pd.DataFrame(gene["weighted" if weighted else "unweighted"][ddf]).set_index("contrast")
        ours = rows.loc[expected.index]
        factor = 1.0 if weighted else IMPRECISE_UNWEIGHTED.get(name, 1.0)
        scale = np.maximum(np.abs(expected["estimate"]), expected["se"])
        assert_close(ours["estimate"], expected["estimate"], LMM.fixed_effects, f"{name} Lβ", scale=scale)
        assert_close(ours["std_error"], expected["se"], LMM.standard_errors.times(factor), f"{name} SE(Lβ)")
        assert_close(ours["df"], expected["df"], DEGREES_OF_FREEDOM.times(factor), f"{name} {ddf} df")
        # t of an estimate near 0 (G035's 0.003) is compared on the scale of one SE, as the estimate.
        t_scale = np.maximum(np.abs(expected["t"]), 1.0)
        assert_close(ours["statistic"], expected["t"], TEST_STATISTICS.times(factor), f"{name} {ddf} t", scale=t_scale)
        # |t| up to 25 here: p moves ~|t|² times faster than t (see p_value_scale).
        scale = p_value_scale(expected["p"], expected["t"], expected["df"])
        assert_close(ours["p_value"], expected["p"], P_VALUES.times(factor), f"{name} {ddf} p", scale=scale)


def test_contrasts_are_checked(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    Y = expression.iloc[:2]
    with pytest.raises(mm.SpecificationError, match="not both"):
        mm.lmer_many(FORMULA, samples, Y, coef="age", contrasts=np.array([[0, 1, 0]]))
    with pytest.raises(mm.SpecificationError, match="not coefficients: \\['conditiontreat'\\]"):
        mm.lmer_many(FORMULA, samples, Y, contrasts=pd.Series({"conditiontreat": 1.0}, name="c"))
    with pytest.raises(mm.SpecificationError, match="a column per coefficient"):
        mm.lmer_many(FORMULA, samples, Y, contrasts=np.array([[0, 1]]))
    with pytest.raises(mm.SpecificationError, match="no row of zeros"):
        mm.lmer_many(FORMULA, samples, Y, contrasts=np.zeros((1, 3)))
    # A Series is one contrast named by its name; missing coefficients count 0.
    one = mm.lmer_many(FORMULA, samples, Y, contrasts=pd.Series({"age": 2.0}, name="twice age"))
    by_coef = mm.lmer_many(FORMULA, samples, Y, coef="age")
    assert one.table["coef"].unique().tolist() == ["twice age"]
    np.testing.assert_allclose(one.table["estimate"], 2 * by_coef.table["estimate"], rtol=1e-14)
    np.testing.assert_allclose(one.table["p_value"], by_coef.table["p_value"], rtol=1e-12)


def test_variance_fractions_are_the_references(batch: mm.BatchResult, reference: dict[str, Any]) -> None:
    for gene in fitted_genes(reference):
        fractions = gene["variance_fractions"]
        expected = [fractions[c] for c in ("donor", "batch", "Residual")]
        assert_close(
            batch.variance_fractions.loc[gene["gene"], ["donor", "batch", "Residual"]],
            expected,
            Tolerance(relative=LMM.variances.relative, absolute=1e-8),
            f"{gene['gene']} variance fractions",
        )


def test_the_constant_gene_is_an_error_row_where_lme4_returns_noise(batch: mm.BatchResult, reference: dict[str, Any]) -> None:
    # lme4 1.1-31 returns a degenerate fit with convergence warnings (sigma 4e-14, Satterthwaite
    # df 3e-14): reference["constant_gene_behaviour"]. We refuse the gene as mm.lmer refuses a
    # constant response (DataError), as dream refuses it ('response variance < 1e-05').
    assert reference["constant_gene_behaviour"]["lme4_error"] is None
    rows = rows_of(batch, CONSTANT_GENE)
    assert rows["error"].str.contains("constant").all()
    assert rows[["estimate", "std_error", "df", "p_value", "p_adj", "sigma"]].isna().all().all()
    assert not rows["converged"].any() and (rows["n_obs"] == 120).all()
    assert batch.fixef.loc[CONSTANT_GENE].isna().all()
    with pytest.raises(mm.DataError, match="constant"):
        mm.lmer("y ~ condition + (1 | donor)", pd.DataFrame({"y": 7.25, "condition": ["a", "b"] * 6, "donor": list("abcdef") * 2}))


def test_edge_genes(batch: mm.BatchResult, reference: dict[str, Any]) -> None:
    by_gene = {gene["gene"]: gene for gene in reference["genes"]}
    assert rows_of(batch, "G017")["n_obs"].iloc[0] == by_gene["G017"]["n_used"] == 115
    assert rows_of(batch, "G033")["singular"].all() and batch.theta.loc["G033", "donor.(Intercept)"] == 0.0
    assert rows_of(batch, "G048")["singular"].all()
    # Every gene but the constant one has an estimate.
    assert batch.table["error"].notna().groupby(batch.table["gene"]).all().sum() == 1


def test_benjamini_hochberg_and_z_std(batch: mm.BatchResult) -> None:
    from scipy import stats

    table = batch.table
    for coef, rows in table.groupby("coef"):
        p = rows["p_value"].to_numpy()
        finite = ~np.isnan(p)
        # R's p.adjust(p, "BH") over the genes with a p-value.
        order = np.argsort(p[finite])
        m = finite.sum()
        expected = np.minimum.accumulate((p[finite][order] * m / np.arange(1, m + 1))[::-1])[::-1].clip(max=1)
        assert_close(rows["p_adj"].to_numpy()[finite][order], expected, Tolerance(relative=1e-12), f"{coef} p_adj")
    z = np.sign(table["statistic"]) * stats.norm.isf(table["p_value"] / 2)
    assert_close(table["z_std"].dropna(), z.dropna(), Tolerance(relative=1e-10), "z_std")


@pytest.mark.filterwarnings("ignore::mixedmodels.SingularFitWarning")
def test_each_gene_is_mm_lmer_on_its_rows(batch: mm.BatchResult, samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame) -> None:
    for gene in ("G001", "G017", "G033", "G048"):
        w = weights.loc[gene].to_numpy()
        data = samples.assign(y=expression.loc[gene], w=w / w.mean()).dropna(subset=["y"])
        single = mm.lmer("y " + FORMULA, data, weights="w")
        names = list(single.params.index)
        rows = rows_of(batch, gene)
        # Genes on all their samples are optimised in the same parameterisation; a gene with missing
        # values in one centred on all samples, so it reaches the same optimum to the optimiser's precision.
        tolerance = Tolerance(relative=1e-10) if len(data) == 120 else Tolerance(relative=1e-6)
        assert_close(batch.fixef.loc[gene, names], single.params, tolerance, f"{gene} fixef", scale=np.maximum(np.abs(single.params), single.bse))
        assert_close(batch.std_errors.loc[gene, names], single.bse, tolerance, f"{gene} SE")
        assert_close(batch.theta.loc[gene], single.theta, tolerance, f"{gene} theta", scale=1 + np.abs(single.theta))
        assert_close(rows["sigma"].iloc[0], single.sigma, tolerance, f"{gene} sigma")
        assert_close(rows["loglik"].iloc[0], single.llf, tolerance, f"{gene} logLik")
        tests = single.satterthwaite.coefficient_tests
        assert_close(rows.loc[names, "df"], tests["df"], Tolerance(relative=1e-6 if len(data) < 120 else 1e-9), f"{gene} df")
        assert_close(rows.loc[names, "p_value"], tests["p_value"], Tolerance(relative=1e-5, absolute=1e-300), f"{gene} p")
        assert bool(rows["singular"].iloc[0]) == single.is_singular


def test_results_do_not_depend_on_the_number_of_threads(samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame) -> None:
    subset = expression.iloc[:20]
    for w in (None, weights.iloc[:20]):
        one = mm.lmer_many(FORMULA, samples, subset, weights=w, n_jobs=1)
        two = mm.lmer_many(FORMULA, samples, subset, weights=w, n_jobs=2)
        pd.testing.assert_frame_equal(one.table, two.table, check_exact=True)
        pd.testing.assert_frame_equal(one.theta, two.theta, check_exact=True)


def test_unweighted_genes_are_their_single_fits(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    # Genes without weights of their own share one structure; a gene with missing values has its own.
    res = mm.lmer_many(FORMULA, samples, expression.loc[["G001", "G017", "G040"]], coef="condition[T.treat]")
    assert list(res.table["coef"]) == ["condition[T.treat]"] * 3
    for gene in ("G001", "G040"):
        single = mm.lmer("y " + FORMULA, samples.assign(y=expression.loc[gene]))
        assert_close(res.fixef.loc[gene], single.params, Tolerance(relative=1e-10), f"{gene} fixef", scale=np.maximum(np.abs(single.params), single.bse))
        assert_close(res.theta.loc[gene], single.theta, Tolerance(relative=1e-10), f"{gene} theta", scale=1 + np.abs(single.theta))
        row = res.table[res.table["gene"] == gene].iloc[0]
        test = single.satterthwaite.t_tests([[0, 1, 0]])
        assert_close(row["df"], test["df"][0], Tolerance(relative=1e-9), f"{gene} df")
    assert res.table["n_obs"].tolist() == [120, 115, 120]


def test_numpy_input_equals_the_dataframe_and_asymptotic_tests(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    frame = expression.iloc[:3]
    shuffled = frame[list(reversed(frame.columns))]
    from_frame = mm.lmer_many(FORMULA, samples, shuffled)
    from_array = mm.lmer_many(FORMULA, samples, frame.to_numpy())
    assert_close(from_array.fixef.to_numpy(), from_frame.fixef.to_numpy(), Tolerance(), "fixef")
    assert list(from_array.genes) == [0, 1, 2] and list(from_frame.genes) == list(frame.index)
    asymptotic = mm.lmer_many(FORMULA, samples, frame, ddf="asymptotic")
    assert np.isinf(asymptotic.table["df"]).all()
    from scipy import stats

    assert_close(asymptotic.table["p_value"], 2 * stats.norm.sf(np.abs(asymptotic.table["statistic"])), Tolerance(relative=1e-12), "z p")


def test_a_gene_left_with_one_level_or_too_few_rows_is_an_error_row(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    Y = expression.iloc[:3].copy()
    Y.loc[Y.index[0], samples.index[samples["donor"] != "D01"]] = np.nan  # one donor left
    Y.loc[Y.index[1]] = np.nan
    res = mm.lmer_many(FORMULA, samples, Y)
    errors = res.table.groupby("gene", sort=False)["error"].first()
    assert "1 level" in errors.iloc[0] and errors.iloc[1] == "no observed values" and pd.isna(errors.iloc[2])
    weights = pd.DataFrame(1.0, index=Y.index, columns=Y.columns)
    weights.iloc[2, 4] = -1.0
    res = mm.lmer_many(FORMULA, samples, expression.iloc[:3], weights=weights)
    assert "negative" in res.table["error"].iloc[-1]


def test_bad_common_input_raises_before_fitting(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    Y = expression.iloc[:2]
    with pytest.raises(mm.FormulaError, match="left-hand side"):
        mm.lmer_many("y " + FORMULA, samples, Y)
    with pytest.raises(mm.MixedModelError, match="nosuch"):
        mm.lmer_many("~ nosuch + (1 | donor)", samples, Y)
    with pytest.raises(mm.DataError, match="not in samples.index"):
        mm.lmer_many(FORMULA, samples, Y.rename(columns={"S001": "X001"}))
    with pytest.raises(mm.DataError, match="not columns of Y"):
        mm.lmer_many(FORMULA, samples, Y.drop(columns="S001"))
    with pytest.raises(mm.DataError, match="genes × samples"):
        mm.lmer_many(FORMULA, samples, Y.to_numpy().T)
    with pytest.raises(mm.DataError, match="two-dimensional"):
        mm.lmer_many(FORMULA, samples, Y.to_numpy()[0])
    with pytest.raises(mm.DataError, match="shape"):
        mm.lmer_many(FORMULA, samples, Y.to_numpy(), weights=np.ones((3, 120)))
    with pytest.raises(mm.SpecificationError, match="coef"):
        mm.lmer_many(FORMULA, samples, Y, coef="conditiontreat")
    with pytest.raises(mm.SpecificationError, match="kenward-roger"):
        mm.lmer_many(FORMULA, samples, Y, ddf="Kenward-Roger", REML=False)
    with pytest.raises(mm.SpecificationError, match="ddf"):
        mm.lmer_many(FORMULA, samples, Y, ddf="containment")
    with pytest.raises(mm.SpecificationError, match="n_jobs"):
        mm.lmer_many(FORMULA, samples, Y, n_jobs=0)


def test_samples_with_a_missing_covariate_are_left_out_for_every_gene(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    incomplete = samples.assign(age=samples["age"].where(samples.index != "S007"))
    res = mm.lmer_many(FORMULA, incomplete, expression.iloc[:2])
    assert (res.table["n_obs"] == 119).all()
    for gene in expression.index[:2]:
        single = mm.lmer("y " + FORMULA, incomplete.assign(y=expression.loc[gene]))
        assert single.nobs == 119
        assert_close(res.fixef.loc[gene], single.params, Tolerance(relative=1e-10), f"{gene} fixef", scale=np.maximum(np.abs(single.params), single.bse))
