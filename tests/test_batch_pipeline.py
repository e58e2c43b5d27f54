"""mm.lmer_many in pipelines: genes fitted in chunks (results independent of the chunk size and
the thread count), the progress bar, AnnData input and output. The numbers themselves are checked
against lme4 + lmerTest in test_batch.py; here every path must give exactly the same ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from extras import require

REFERENCE = Path(__file__).parent / "reference" / "batch"
FORMULA = "~ condition + age + (1 | donor) + (1 | batch)"


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "samples.csv", index_col="sample")


@pytest.fixture(scope="module")
def expression() -> pd.DataFrame:
    """60 genes, one constant and one with missing values."""
    return pd.read_csv(REFERENCE / "expression.csv", index_col="gene")


@pytest.fixture(scope="module")
def weights() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "weights.csv", index_col="gene")


def assert_same_results(one: mm.BatchResult, two: mm.BatchResult) -> None:
    pd.testing.assert_frame_equal(one.table, two.table, check_exact=True)
    for frame in ("fixef", "std_errors", "theta", "variance_fractions"):
        pd.testing.assert_frame_equal(getattr(one, frame), getattr(two, frame), check_exact=True)
    np.testing.assert_array_equal(one.beta_covariance, two.beta_covariance)


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
