"""The `mixedmodels` command line."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from extras import require
from mixedmodels.cli import main


def test_fit_a_shipped_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"]) == 0
    out = capsys.readouterr().out
    # lme4: REML criterion at convergence 1743.628
    assert "REML criterion at convergence: 1743.6283" in out


def test_fit_by_ml_from_a_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dyestuff.csv"
    mm.datasets.load("Dyestuff").to_csv(path, index=False)
    assert main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", str(path), "--ml"]) == 0
    out = capsys.readouterr().out
    assert "maximum likelihood" in out and "Data: dyestuff.csv" in out
    assert "-163.7" in out  # lme4's ML log-likelihood -163.6635


def test_parquet_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sleep.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        path.write_bytes(b"PAR1")
        assert main(["fit", "Reaction ~ Days + (1 | Subject)", "--data", str(path)]) == 2
        assert "pyarrow" in capsys.readouterr().err
    else:
        mm.datasets.load("sleepstudy").to_parquet(path)
        assert main(["fit", "Reaction ~ Days + (1 | Subject)", "--data", str(path)]) == 0
        assert "Number of obs: 180" in capsys.readouterr().out


def test_errors_are_reported_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "Reaction ~ Days + (Days | Subj)", "--data", "sleepstudy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mixedmodels: error:") and "Subj" in err and "Traceback" not in err
    assert main(["fit", "y ~ (1 | g)", "--data", "no_such_dataset"]) == 2


def test_fit_a_glmm(capsys: pytest.CaptureFixture[str]) -> None:
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    assert main(["fit", formula, "--data", "cbpp", "--family", "binomial"]) == 0
    out = capsys.readouterr().out
    assert "Family: binomial  ( logit )" in out and "-92.0" in out  # lme4's logLik -92.03
    assert main(["fit", formula, "--data", "cbpp", "--family", "binomal"]) == 2
    assert "unknown family" in capsys.readouterr().err


def test_list_datasets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in mm.datasets.names())


def test_console_script_is_installed() -> None:
    command = shutil.which("mixedmodels") or pytest.fail("the mixedmodels console script is not on PATH")
    done = subprocess.run([command, "fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff"], capture_output=True, text=True)
    assert done.returncode == 0 and "REML criterion at convergence: 319.65" in done.stdout
    module = subprocess.run([sys.executable, "-m", "mixedmodels.cli", "datasets"], capture_output=True, text=True)
    assert module.returncode == 0 and "InstEval" in module.stdout


BATCH = Path(__file__).parent / "reference" / "batch"
BATCH_FORMULA = "~ condition + age + (1 | donor) + (1 | batch)"


@pytest.fixture
def batch_files(tmp_path: Path) -> dict[str, Path]:
    """The batch reference set's first 12 genes (G005 constant: a failing gene) as files: samples
    with their id in the third column, expression as Parquet, weights as TSV."""
    samples = pd.read_csv(BATCH / "samples.csv")
    expression = pd.read_csv(BATCH / "expression.csv", index_col="gene").iloc[:12]
    weights = pd.read_csv(BATCH / "weights.csv", index_col="gene").iloc[:12]
    files = {"samples": tmp_path / "samples.csv", "responses": tmp_path / "expr.parquet", "weights": tmp_path / "w.tsv"}
    samples[["donor", "batch", "sample", "condition", "age"]].to_csv(files["samples"], index=False)
    expression.to_parquet(files["responses"])
    weights.to_csv(files["weights"], sep="\t")
    return files


def expected_batch(**options: object) -> mm.BatchResult:
    samples = pd.read_csv(BATCH / "samples.csv", index_col="sample")
    return mm.lmer_many(BATCH_FORMULA, samples, pd.read_csv(BATCH / "expression.csv", index_col="gene").iloc[:12], **options)  # type: ignore[arg-type]


def test_batch_end_to_end(batch_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.parquet"
    common = ["batch", BATCH_FORMULA, "--samples", str(batch_files["samples"]), "--sample-column", "sample", "--responses", str(batch_files["responses"])]
    assert main([*common, "--weights", str(batch_files["weights"]), "--coef", "condition[T.treat]", "age", "--out", str(out)]) == 0
    weights = pd.read_csv(BATCH / "weights.csv", index_col="gene").iloc[:12]
    expected = expected_batch(weights=weights, coef=["condition[T.treat]", "age"])
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected.table, check_exact=True)
    summary = capsys.readouterr().out.strip().splitlines()
    singular = int(expected.table["singular"].iloc[::2].sum())
    assert len(summary) == 1 and summary[0].startswith(f"12 genes: 11 fitted, 1 failed, {singular} singular in ")
    csv = tmp_path / "results.csv"
    assert main([*common, "--ml", "--ddf", "asymptotic", "--threads", "1", "--out", str(csv)]) == 0
    written = pd.read_csv(csv, dtype={"p_value": str})
    expected = expected_batch(REML=False, ddf="asymptotic").table
    assert written["gene"].tolist() == expected["gene"].tolist() and written["error"].isna().sum() == 33
    # 17 digits written, parsed by numpy (correctly rounded): the same doubles.
    np.testing.assert_array_equal(np.array(written["p_value"].tolist(), dtype=float), expected["p_value"])
    kenward_roger = tmp_path / "kenward_roger.parquet"
    assert main([*common, "--ddf", "kenward-roger", "--out", str(kenward_roger)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(kenward_roger), expected_batch(ddf="kenward-roger").table, check_exact=True)


def test_batch_errors_name_the_problem(batch_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.csv"
    expression = pd.read_parquet(batch_files["responses"])
    bad_ids = tmp_path / "bad_ids.csv"
    expression.rename(columns={"S017": "S999"}).to_csv(bad_ids)
    samples = ["--samples", str(batch_files["samples"]), "--sample-column", "sample"]
    for arguments, message in (
        ([*samples, "--responses", str(bad_ids)], "S999"),
        (["--samples", str(batch_files["samples"]), "--responses", str(batch_files["responses"])], "unknown column 'donor'"),  # ids: column 1
        ([*samples[:2], "--sample-column", "id", "--responses", str(batch_files["responses"])], "--sample-column 'id'"),
        ([*samples, "--responses", str(tmp_path / "none.csv")], "no such file"),
        ([*samples, "--responses", str(batch_files["responses"]), "--coef", "treat"], "coef"),
        (["--responses", str(batch_files["responses"])], "--samples is needed"),
        ([*samples, "--responses", str(batch_files["responses"]), "--layer", "X"], "h5ad"),
    ):
        assert main(["batch", BATCH_FORMULA, *arguments, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mixedmodels: error:") and message in err and "Traceback" not in err, err
    assert main(["batch", "y " + BATCH_FORMULA, *samples, "--responses", str(batch_files["responses"]), "--out", str(out)]) == 2
    assert "left-hand side" in capsys.readouterr().err
    assert main(["batch", BATCH_FORMULA, *samples, "--responses", str(batch_files["responses"]), "--out", str(tmp_path / "r.xlsx")]) == 2
    assert "--out" in capsys.readouterr().err
    assert not out.exists()


def test_batch_from_an_h5ad_in_a_subprocess(tmp_path: Path) -> None:
    anndata = require("anndata")
    samples = pd.read_csv(BATCH / "samples.csv", index_col="sample")
    expression = pd.read_csv(BATCH / "expression.csv", index_col="gene").iloc[:12]
    path = tmp_path / "pseudobulk.h5ad"
    anndata.AnnData(obs=samples, var=pd.DataFrame(index=expression.index), layers={"logcounts": expression.T.to_numpy()}).write_h5ad(path)
    out = tmp_path / "results.tsv"
    arguments = ["batch", BATCH_FORMULA, "--responses", str(path), "--layer", "logcounts", "--coef", "condition[T.treat]", "--out", str(out)]
    done = subprocess.run([sys.executable, "-m", "mixedmodels.cli", *arguments], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.startswith("12 genes: 11 fitted, 1 failed")  # no bar: stderr is no terminal
    written = pd.read_csv(out, sep="\t", dtype={"estimate": str})
    np.testing.assert_array_equal(np.array(written["estimate"].tolist(), dtype=float), expected_batch(coef="condition[T.treat]").table["estimate"])


COUNT_FORMULA = "~ condition + (1 | donor)"


@pytest.fixture
def count_files(tmp_path: Path) -> dict[str, Path]:
    """Counts of the batch reference set (C038, all zero: a failing gene) as CSV, and the samples
    with their log library size as a column."""
    samples = pd.read_csv(BATCH / "samples.csv")
    samples["log_libsize"] = np.log(samples["libsize"])
    files = {"samples": tmp_path / "samples.csv", "responses": tmp_path / "counts.csv"}
    samples.to_csv(files["samples"], index=False)
    pd.read_csv(BATCH / "counts.csv", index_col="gene").iloc[30:40].to_csv(files["responses"])
    return files


def expected_counts(**options: object) -> mm.BatchResult:
    samples = pd.read_csv(BATCH / "samples.csv", index_col="sample")
    counts = pd.read_csv(BATCH / "counts.csv", index_col="gene").iloc[30:40]
    return mm.glmer_many(COUNT_FORMULA, samples, counts, offset=np.log(samples["libsize"]), **options)  # type: ignore[arg-type]


def test_batch_of_counts_end_to_end(count_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.parquet"
    common = ["batch", COUNT_FORMULA, "--samples", str(count_files["samples"]), "--responses", str(count_files["responses"]), "--offset", "log_libsize"]
    assert main([*common, "--family", "negative_binomial", "--coef", "condition[T.treat]", "--chunk-size", "3", "--out", str(out)]) == 0
    expected = expected_counts(family="negative_binomial", coef="condition[T.treat]")
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected.table, check_exact=True)
    summary = capsys.readouterr().out.strip().splitlines()
    singular = int(expected.table["singular"].sum())
    assert len(summary) == 1 and summary[0].startswith(f"10 genes: 9 fitted, 1 failed, {singular} singular in ")
    assert main([*common, "--family", "poisson", "--nagq", "0", "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected_counts(family="poisson", nAGQ=0).table, check_exact=True)


def test_batch_options_of_the_other_family_are_refused(
    batch_files: dict[str, Path], count_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.csv"
    gaussian = [BATCH_FORMULA, "--samples", str(batch_files["samples"]), "--sample-column", "sample", "--responses", str(batch_files["responses"])]
    counts = [COUNT_FORMULA, "--samples", str(count_files["samples"]), "--responses", str(count_files["responses"]), "--family", "poisson"]
    for arguments, message in (
        ([*gaussian, "--offset", "age"], "--offset is for count models"),
        ([*gaussian, "--nagq", "0"], "--nagq is for count models"),
        ([*counts, "--ddf", "asymptotic"], "--ddf is for --family gaussian"),
        ([*counts, "--ml"], "--ml is for --family gaussian"),
        ([*counts, "--weights", str(batch_files["weights"])], "--weights is for --family gaussian"),
        ([*counts, "--offset", "libsize_log"], "not a column of samples"),
        ([*counts, "--chunk-size", "0"], "chunk_size"),
        ([*counts, "--dask-scheduler", "tcp://127.0.0.1:8786", "--threads", "2"], "--threads"),
    ):
        assert main(["batch", *arguments, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mixedmodels: error:") and message in err and "Traceback" not in err, err
    assert not out.exists()


def test_batch_on_dask_equals_the_local_fit(count_files: dict[str, Path], tmp_path: Path) -> None:
    distributed = require("distributed")
    common = ["batch", COUNT_FORMULA, "--samples", str(count_files["samples"]), "--responses", str(count_files["responses"]), "--offset", "log_libsize"]
    expected = expected_counts(family="poisson").table
    # A LocalCluster started by the fit (one worker: --threads 1)...
    out = tmp_path / "local.parquet"
    assert main([*common, "--family", "poisson", "--dask-scheduler", "local", "--threads", "1", "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected, check_exact=True)
    # ...and a running cluster, by its scheduler's address.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        out = tmp_path / "address.parquet"
        assert main([*common, "--family", "poisson", "--dask-scheduler", cluster.scheduler_address, "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected, check_exact=True)
