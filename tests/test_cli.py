"""The `mixedmodels` command line."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mixedmodels as mm
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
