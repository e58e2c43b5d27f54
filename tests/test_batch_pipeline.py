"""mm.lmer_many in pipelines: genes fitted in chunks (results independent of the chunk size and
the thread count), the progress bar, AnnData input and output. The numbers themselves are checked
against lme4 + lmerTest in test_batch.py; here every path must give exactly the same ones."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import assert_same_results
from extras import require

FORMULA = "~ condition + age + (1 | donor) + (1 | batch)"


@pytest.mark.parametrize("ddf", ["satterthwaite", "asymptotic"])
def test_results_do_not_depend_on_the_chunk_size_or_the_threads(samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame, ddf: str) -> None:
    for w in (None, weights):
        whole = mm.lmer_many(FORMULA, samples, expression, weights=w, ddf=ddf, chunk_size=1000, n_jobs=1)
        for chunk_size, n_jobs in ((1, 2), (7, 1), (7, 2), (59, 2)):
            chunked = mm.lmer_many(FORMULA, samples, expression, weights=w, ddf=ddf, chunk_size=chunk_size, n_jobs=n_jobs)
            assert_same_results(chunked, whole)


def test_bad_chunk_size_and_progress_are_refused(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    for chunk_size in (0, 2.5, True):
        with pytest.raises(mm.SpecificationError, match="chunk_size"):
            mm.lmer_many(FORMULA, samples, expression.iloc[:2], chunk_size=chunk_size)  # type: ignore[arg-type]
    with pytest.raises(mm.SpecificationError, match="progress"):
        mm.lmer_many(FORMULA, samples, expression.iloc[:2], progress="yes")  # type: ignore[arg-type]


def test_progress_bar_counts_the_genes(samples: pd.DataFrame, expression: pd.DataFrame, capsys: pytest.CaptureFixture[str]) -> None:
    require("tqdm")
    mm.lmer_many(FORMULA, samples, expression.iloc[:10], chunk_size=4, progress=True)
    assert "10/10" in capsys.readouterr().err
    # By default a bar only on a terminal: pytest's captured stderr is none.
    mm.lmer_many(FORMULA, samples, expression.iloc[:10], chunk_size=4)
    assert capsys.readouterr().err == ""


def test_progress_without_tqdm_is_a_clear_error_and_the_default_is_silent(
    samples: pd.DataFrame, expression: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    with pytest.raises(ImportError, match="pip install tqdm"):
        mm.lmer_many(FORMULA, samples, expression.iloc[:2], progress=True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    mm.lmer_many(FORMULA, samples, expression.iloc[:2])
    assert capsys.readouterr().err == ""


def annotated(samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame | None = None, as_sparse: bool = False) -> Any:
    """An AnnData (samples × genes, as AnnData stores them) of the reference set: the responses in
    the layer 'logcounts' (and in .X), the weights in the layer 'weights'."""
    anndata = require("anndata")
    from scipy import sparse

    values = expression.T.to_numpy()
    layers = {"logcounts": sparse.csr_matrix(values) if as_sparse else values}
    if weights is not None:
        layers["weights"] = weights.T.to_numpy()
    return anndata.AnnData(X=values.copy(), obs=samples, var=pd.DataFrame(index=expression.index), layers=layers)


def test_anndata_input_gives_the_dataframes_numbers(samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame) -> None:
    adata = annotated(samples, expression, weights)
    expected = mm.lmer_many(FORMULA, samples, expression, weights=weights)
    assert_same_results(mm.lmer_many(FORMULA, adata, layer="logcounts", weights_layer="weights", chunk_size=7), expected)
    unweighted = mm.lmer_many(FORMULA, samples, expression, coef="condition[T.treat]")
    assert_same_results(mm.lmer_many(FORMULA, adata, coef="condition[T.treat]"), unweighted)  # .X


def test_sparse_layers_and_left_out_samples(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    # Zeros in the sparse matrix are values (not missing); NaN stays missing (G017).
    shifted = np.maximum(expression.iloc[:12] - expression.iloc[:12].median(axis=1).to_numpy()[:, np.newaxis], 0.0)
    incomplete = samples.assign(age=samples["age"].where(samples.index != "S007"))
    adata = annotated(incomplete, shifted, as_sparse=True)
    assert adata.layers["logcounts"].nnz < shifted.size
    expected = mm.lmer_many(FORMULA, incomplete, shifted)
    assert (expected.table["n_obs"] == 119).sum() > 0
    assert_same_results(mm.lmer_many(FORMULA, adata, layer="logcounts", chunk_size=5), expected)


def test_results_go_into_the_anndata_and_its_h5ad_file(samples: pd.DataFrame, expression: pd.DataFrame, tmp_path: Path) -> None:
    anndata = require("anndata")
    adata = annotated(samples, expression)
    res = mm.lmer_many(FORMULA, adata, coef=["condition[T.treat]", "age"])
    res.to_anndata(adata, key="dream")
    p_values = adata.varm["dream_p_value"]
    assert list(p_values.columns) == ["condition[T.treat]", "age"] and p_values.index.equals(adata.var_names)
    table = res.table.set_index(["gene", "coef"])
    assert np.array_equal(p_values["age"].to_numpy(), table.xs("age", level="coef")["p_value"].to_numpy(), equal_nan=True)
    path = tmp_path / "fitted.h5ad"
    adata.write_h5ad(path)
    back = anndata.read_h5ad(path)
    pd.testing.assert_frame_equal(back.varm["dream_estimate"], res.per_gene("estimate").set_axis(back.var_names), check_exact=True)
    pd.testing.assert_frame_equal(back.varm["dream_variance_fractions"], res.variance_fractions, check_exact=True, check_names=False)
    assert back.var.loc["G005", "dream_error"].startswith("the response is constant") and back.var.loc["G001", "dream_error"] == ""
    assert back.var["dream_n_obs"].tolist() == res.table["n_obs"].iloc[::2].tolist()
    with pytest.raises(mm.DataError, match="var_names"):
        res.to_anndata(adata[:, ::-1])


def test_bad_anndata_input_raises_before_fitting(samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame) -> None:
    adata = annotated(samples, expression.iloc[:3])
    with pytest.raises(mm.DataError, match="'counts' is not a layer"):
        mm.lmer_many(FORMULA, adata, layer="counts")
    with pytest.raises(mm.DataError, match="weights_layer='w'"):
        mm.lmer_many(FORMULA, adata, weights_layer="w")
    with pytest.raises(mm.SpecificationError, match="do not give Y"):
        mm.lmer_many(FORMULA, adata, expression.iloc[:3])
    with pytest.raises(mm.SpecificationError, match="AnnData"):
        mm.lmer_many(FORMULA, samples, expression.iloc[:3], layer="logcounts")
    with pytest.raises(mm.DataError, match="Y .* is missing"):
        mm.lmer_many(FORMULA, samples)
    with pytest.raises(mm.MixedModelError, match="nosuch"):
        mm.lmer_many("~ nosuch + (1 | donor)", adata)
