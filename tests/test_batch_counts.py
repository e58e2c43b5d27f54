"""mm.glmer_many against lme4's glmer (Poisson) and glmer.nb fitted gene by gene
(reference/batch/count_results.json: 40 genes × 120 samples, ``count ~ condition + (1 | donor)``
with offset log(libsize); edge genes all zero, very sparse and without overdispersion), and against
mm.glmer / mm.glmer_nb on each gene.

The references are lme4's objective, so they are compared with ``compat="lme4"``. Where lme4
warns (glmer.nb's "iteration limit reached" on genes whose size runs to 1e2–1e6, i.e. nearly no
overdispersion, where the likelihood is flat in the size) the estimates still agree within the
GLMM tolerances, the size within 5e-3 relative; lme4's error on the all-zero gene C038 ("Response
is constant") is our error row for it.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from conftest import BATCH_REFERENCE
from extras import require
from mixedmodels.errors import DataError, FormulaError, SingularFitWarning, SpecificationError
from tolerances import GLMM, Tolerance, assert_close, assert_loglik

FORMULA = "~ condition + (1 | donor)"
COEFFICIENTS = {"(Intercept)": "Intercept", "conditiontreat": "condition[T.treat]"}
FAMILIES = {"poisson": "poisson", "negative_binomial": "negbin"}
ALL_ZERO_GENE = "C038"
# A gene's batch fit and its single fit run the same core code (mm.glmer_nb runs the core's size
# search); they agree to the last digit on the genes measured, and this bound leaves room only
# for summation order.
SAME_FIT = Tolerance(relative=1e-6, absolute=1e-8)


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    with open(BATCH_REFERENCE / "count_results.json") as handle:
        return dict(json.load(handle))


@pytest.fixture(scope="module")
def lme4_fits(samples: pd.DataFrame, counts: pd.DataFrame) -> dict[str, mm.BatchResult]:
    return {family: mm.glmer_many(FORMULA, samples, counts, family=family, offset=np.log(samples["libsize"]), compat="lme4") for family in FAMILIES}


def gene_row(batch: mm.BatchResult, gene: str) -> pd.Series:
    return batch.table[batch.table["gene"] == gene].iloc[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_gene_matches_lme4(family: str, lme4_fits: dict[str, mm.BatchResult], reference: dict[str, Any], samples: pd.DataFrame) -> None:
    batch = lme4_fits[family]
    for gene in reference["genes"]:
        name, expected = gene["gene"], gene[FAMILIES[family]]
        row = gene_row(batch, name)
        if "failed" in expected:
            assert name == ALL_ZERO_GENE and "constant" in expected["failed"] and "constant" in row["error"]
            assert batch.fixef.loc[name].isna().all() and not row["converged"]
            continue
        ours = [COEFFICIENTS[c] for c in expected["fixef"]]
        se = np.array(list(expected["se"].values()))
        scale = np.maximum(np.abs(list(expected["fixef"].values())), se)
        assert_close(batch.fixef.loc[name, ours], list(expected["fixef"].values()), GLMM.fixed_effects, f"{name} fixef", scale=scale)
        assert_close(batch.std_errors.loc[name, ours], se, GLMM.standard_errors, f"{name} SE")
        theta = np.array(expected["theta"])
        assert_close(batch.theta.loc[name, expected["theta_names"]], theta, GLMM.theta, f"{name} theta", scale=1 + np.abs(theta))
        assert_loglik(float(row["loglik"]), expected["logLik"], GLMM.log_likelihood, f"{name} logLik")
        assert bool(row["singular"]) == expected["isSingular"] and row["converged"] and pd.isna(row["error"]), name
        assert row["n_obs"] == len(samples) and row["df"] == np.inf
        if family == "negative_binomial":
            assert_close(row["nb_size"], expected["nb_size"], GLMM.theta, f"{name} size")
    table = batch.table.set_index(["gene", "coef"])
    z = table["estimate"] / table["std_error"]
    assert_close(table["statistic"].dropna(), z.dropna(), Tolerance(relative=1e-12), "z")


def test_each_gene_is_its_single_fit(samples: pd.DataFrame, counts: pd.DataFrame) -> None:
    # Default (exact Laplace, internal parameterisation) as mm.glmer and mm.glmer_nb fit one gene.
    genes = ["C001", "C013", "C039", "C040"]
    offset = np.log(samples["libsize"])
    for family in FAMILIES:
        batch = mm.glmer_many(FORMULA, samples, counts.loc[genes], family=family, offset=offset)
        for name in genes:
            data = samples.assign(count=counts.loc[name], off=offset)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SingularFitWarning)  # C039
                if family == "poisson":
                    single = mm.glmer("count " + FORMULA, data, family="poisson", offset="off")
                else:
                    single = mm.glmer_nb("count " + FORMULA, data, offset="off")
            # Sizes of 1e4–1e6 (no overdispersion) sit on a likelihood flat to 1e-8: there any
            # difference in the last digits moves where the search ends, and the estimates agree
            # as two fits do.
            flat = family == "negative_binomial" and single.family.theta > 1e4
            tolerance = (
                {"fixef": GLMM.fixed_effects, "SE": GLMM.standard_errors, "theta": GLMM.theta} if flat else dict.fromkeys(("fixef", "SE", "theta"), SAME_FIT)
            )
            if family == "negative_binomial":
                assert_close(gene_row(batch, name)["nb_size"], single.family.theta, tolerance["theta"], f"{name} size")
            assert_close(batch.fixef.loc[name], single.params, tolerance["fixef"], f"{name} fixef", scale=np.maximum(np.abs(single.params), single.bse))
            assert_close(batch.std_errors.loc[name], single.bse, tolerance["SE"], f"{name} SE")
            assert_close(batch.theta.loc[name], single.theta, tolerance["theta"], f"{name} theta", scale=1 + np.abs(single.theta))
            assert_close(gene_row(batch, name)["loglik"], single.llf, SAME_FIT, f"{name} logLik")


def test_missing_counts_fit_the_observed_samples_and_nagq_0_is_lme4s(samples: pd.DataFrame, counts: pd.DataFrame) -> None:
    values = counts.loc[["C002", "C003"]].copy()
    values.iloc[0, [4, 50, 99]] = np.nan
    offset = np.log(samples["libsize"])
    for n_agq in (0, 1):
        batch = mm.glmer_many(FORMULA, samples, values, family="poisson", offset=offset, nAGQ=n_agq, compat="lme4")
        assert gene_row(batch, "C002")["n_obs"] == 117 and gene_row(batch, "C003")["n_obs"] == 120
        for name in values.index:
            data = samples.assign(count=values.loc[name], off=offset).dropna(subset=["count"])
            single = mm.glmer("count " + FORMULA, data, family="poisson", offset="off", nAGQ=n_agq, compat="lme4")
            assert_close(batch.fixef.loc[name], single.params, SAME_FIT, f"{name} nAGQ={n_agq} fixef")
            assert_close(batch.std_errors.loc[name], single.bse, SAME_FIT, f"{name} nAGQ={n_agq} SE")
            assert_close(gene_row(batch, name)["loglik"], single.llf, SAME_FIT, f"{name} nAGQ={n_agq} logLik")


def test_results_do_not_depend_on_the_number_of_threads(samples: pd.DataFrame, counts: pd.DataFrame) -> None:
    genes = counts.iloc[:12]
    for family in FAMILIES:
        fits = [
            mm.glmer_many(FORMULA, samples.assign(log_libsize=np.log(samples["libsize"])), genes, family=family, offset="log_libsize", n_jobs=n) for n in (1, 2)
        ]
        pd.testing.assert_frame_equal(fits[0].table, fits[1].table)
        np.testing.assert_array_equal(fits[0].beta_covariance, fits[1].beta_covariance)


def test_results_do_not_depend_on_the_chunk_size(samples: pd.DataFrame, counts: pd.DataFrame) -> None:
    # Genes with missing values and the all-zero gene (an error row) among them.
    values = counts.copy()
    values.iloc[1, [4, 50, 99]] = np.nan
    offset = np.log(samples["libsize"])
    for family, n_agq in (("poisson", 1), ("negative_binomial", 1), ("poisson", 0)):
        whole = mm.glmer_many(FORMULA, samples, values, family=family, offset=offset, nAGQ=n_agq, chunk_size=1000, n_jobs=1)
        for chunk_size, n_jobs in ((1, 2), (7, 1), (39, 2)):
            chunked = mm.glmer_many(FORMULA, samples, values, family=family, offset=offset, nAGQ=n_agq, chunk_size=chunk_size, n_jobs=n_jobs)
            pd.testing.assert_frame_equal(chunked.table, whole.table, check_exact=True)
            pd.testing.assert_frame_equal(chunked.theta, whole.theta, check_exact=True)
            np.testing.assert_array_equal(chunked.beta_covariance, whole.beta_covariance)


def test_progress_bar_counts_the_genes(samples: pd.DataFrame, counts: pd.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    require("tqdm")
    mm.glmer_many(FORMULA, samples, counts.iloc[:10], chunk_size=4, progress=True)
    assert "glmer_many" in (err := capsys.readouterr().err) and "10/10" in err


def test_exact_laplace_differs_from_lme4s_by_its_small_objective_gap(samples: pd.DataFrame, counts: pd.DataFrame, lme4_fits: dict[str, mm.BatchResult]) -> None:
    exact = mm.glmer_many(FORMULA, samples, counts, family="poisson", offset=np.log(samples["libsize"]))
    lme4 = lme4_fits["poisson"]
    gap = exact.table["loglik"] - lme4.table["loglik"]
    assert gap.abs().max() < 1e-3 and gap.abs().max() > 0
    fitted = exact.table["error"].isna()
    assert_close(exact.table.loc[fitted, "estimate"], lme4.table.loc[fitted, "estimate"], GLMM.fixed_effects.or_absolute(1e-6), "exact vs lme4")


def test_contrasts_are_wald_tests_of_l_beta(samples: pd.DataFrame, counts: pd.DataFrame) -> None:
    # Lβ̂ and √(L·Cov·Lᵀ) from the per-gene estimates and covariances the reference tests check.
    L = pd.DataFrame({"Intercept": [1.0, 0.0], "condition[T.treat]": [1.0, 2.0]}, index=["treated", "twice"])
    res = mm.glmer_many(FORMULA, samples, counts.iloc[:6], family="poisson", contrasts=L)
    by_coef = mm.glmer_many(FORMULA, samples, counts.iloc[:6], family="poisson")
    beta = by_coef.fixef.to_numpy()
    table = res.table.set_index(["gene", "coef"])
    for g, gene in enumerate(by_coef.genes):
        covariance = by_coef.beta_covariance[g]
        for label, row in L.iterrows():
            estimate, se = float(row @ beta[g]), float(np.sqrt(row @ covariance @ row))
            assert table.loc[(gene, label), "estimate"] == pytest.approx(estimate, rel=1e-12)
            assert table.loc[(gene, label), "std_error"] == pytest.approx(se, rel=1e-12)
            assert table.loc[(gene, label), "p_value"] == pytest.approx(2 * stats.norm.sf(abs(estimate / se)), rel=1e-9)


def test_bad_common_input_raises_before_fitting(samples: pd.DataFrame, counts: pd.DataFrame) -> None:
    offset = np.log(samples["libsize"])
    with pytest.raises(FormulaError, match="left-hand side"):
        mm.glmer_many("count " + FORMULA, samples, counts)
    with pytest.raises(SpecificationError, match="family"):
        mm.glmer_many(FORMULA, samples, counts, family="binomial")
    with pytest.raises(SpecificationError, match="nAGQ"):
        mm.glmer_many(FORMULA, samples, counts, nAGQ=5)
    with pytest.raises(SpecificationError, match="compat"):
        mm.glmer_many(FORMULA, samples, counts, compat="glmmTMB")
    with pytest.raises(SpecificationError, match="n_jobs"):
        mm.glmer_many(FORMULA, samples, counts, n_jobs=0)
    with pytest.raises(SpecificationError, match="chunk_size"):
        mm.glmer_many(FORMULA, samples, counts, chunk_size=0)
    with pytest.raises(SpecificationError, match="progress"):
        mm.glmer_many(FORMULA, samples, counts, progress="yes")  # type: ignore[arg-type]
    with pytest.raises(SpecificationError, match="coef"):
        mm.glmer_many(FORMULA, samples, counts, coef="age")
    with pytest.raises(DataError, match="not a column"):
        mm.glmer_many(FORMULA, samples, counts, offset="log_libsize")
    with pytest.raises(DataError, match="one value per sample"):
        mm.glmer_many(FORMULA, samples, counts, offset=offset[:-1])
    with pytest.raises(DataError, match="infinite"):
        mm.glmer_many(FORMULA, samples, counts, offset=np.where(np.arange(len(samples)) == 3, -np.inf, offset))
    with pytest.raises(DataError, match="not in samples.index"):
        mm.glmer_many(FORMULA, samples, counts.rename(columns={"S001": "X001"}))
    with pytest.raises(DataError, match="columns"):
        mm.glmer_many(FORMULA, samples, counts.to_numpy()[:, :-1])
