"""Subprocess side of ``bench_lmm.py``: fits that must be killable on a timeout (lme-python) or
need a fresh process to measure memory (our peak RSS). Prints one JSON object on stdout.
Also the model description, the way data are read and the fitting calls that ``bench_lmm.py``
shares with these workers.

Usage (by ``bench_lmm.py`` only): ``python fit_worker.py '<task JSON>'``.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pandas as pd

if TYPE_CHECKING:
    from mixedmodels.results import GlmerResult, LmerResult

T = TypeVar("T")
ModelKind = Literal["lmer", "glmer"]


@dataclass(frozen=True)
class RepeatPolicy:
    """Repeat a fit until the summed wall time reaches ``budget_s`` and at least ``min_runs`` runs
    are done, or ``max_runs`` runs are done. A fit whose runs have taken ``enough_s`` in all stops
    there, so a slow fit is timed once. The minimum keeps a single stalled run (this machine
    sometimes runs a fit several times slower than usual) from being the whole measurement.

    A first run shorter than ``warm_up_below_s`` is a warm-up, not timed: it pays one-time costs
    that a long fit amortises. On this virtual machine, memory the host reclaimed while the guest
    was idle costs about 2.4 ms per MB to touch again, twenty times the usual cost, so the first
    large allocations after a long wait (another tool's timeout) ran a 1M-row fit 3× slower."""

    budget_s: float
    max_runs: int
    min_runs: int = 3
    enough_s: float = 5.0
    warm_up_below_s: float = 1.0

    def done(self, times: list[float]) -> bool:
        spent = sum(times)
        return len(times) >= self.max_runs or (
            spent >= self.budget_s and (len(times) >= self.min_runs or spent >= self.enough_s)
        )


def time_repeated(fit: Callable[[], T], policy: RepeatPolicy) -> tuple[list[float], T]:
    """Wall times of repeated calls of ``fit`` (a short first call is a warm-up, not listed) and
    the last call's result."""
    times: list[float] = []
    warming_up = True
    while True:
        start = time.perf_counter()
        result = fit()
        elapsed = time.perf_counter() - start
        if not (warming_up and elapsed < policy.warm_up_below_s):
            times.append(elapsed)
        warming_up = False
        if times and policy.done(times):
            return times, result


@dataclass(frozen=True)
class Model:
    """A model as lme4 states it: ``lmer`` fitted by REML or ML, or ``glmer`` with a family and
    nAGQ (1: Laplace, 0: lme4's fast estimator); ``compat`` is our ``compat=`` (``"lme4"``: lme4
    1.1's Laplace objective), which the other tools ignore. Travels to the workers as JSON
    (``asdict``)."""

    kind: ModelKind
    formula: str
    reml: bool = False  # lmer only
    family: str = ""  # glmer only: an lme4 family name, e.g. "binomial"
    nAGQ: int = 1  # glmer only
    compat: Literal["lme4"] | None = None  # ours only


StringDtype = Literal["str", "object"]


@dataclass(frozen=True)
class DataSource:
    """Where a worker finds a workload's data. ``"csv"``: a CSV that every tool reads itself, as
    users load data, with the ``string_columns`` (grouping factors) read as text; ``"pickle"``: the
    in-memory DataFrame, pickled (the ``--in-memory`` protocol). Travels as JSON (``asdict``)."""

    path: str
    format: Literal["csv", "pickle"]
    string_columns: tuple[str, ...] = ()
    string_dtype: StringDtype = "str"

    def load(self) -> pd.DataFrame:
        if self.format == "pickle":
            return pd.read_pickle(self.path)
        return read_user_csv(self.path, self.string_columns, self.string_dtype)


def read_user_csv(path: str, string_columns: tuple[str, ...], string_dtype: StringDtype) -> pd.DataFrame:
    """``pd.read_csv(path, dtype={column: str})`` for the grouping columns, pandas' defaults
    otherwise. With ``str`` pandas 3 gives its ``str`` dtype (Arrow-backed strings), pandas 2
    ``object`` (Python strings); ``"object"`` asks for Python strings on either."""
    text_type: type = str if string_dtype == "str" else object
    return pd.read_csv(path, dtype=dict.fromkeys(string_columns, text_type))


# Imports stay inside the fitting functions: a peer worker must not load mixedmodels, nor the
# memory worker lme-python.
def fit_ours(model: Model, data: pd.DataFrame) -> LmerResult | GlmerResult:
    import mixedmodels as mm

    if model.kind == "lmer":
        return mm.lmer(model.formula, data, REML=model.reml)
    return mm.glmer(model.formula, data, family=model.family, nAGQ=model.nAGQ, compat=model.compat)


def fit_peer(model: Model, data: pd.DataFrame) -> Any:
    import lme_python

    if model.kind == "lmer":
        return lme_python.lmer(model.formula, data, reml=model.reml)
    return lme_python.glmer(model.formula, data, model.family, n_agq=model.nAGQ)


def _warm_up_frame() -> pd.DataFrame:
    """A tiny pandas frame with a categorical grouping factor, so that lazy imports and
    conversions a first call triggers (e.g. pyarrow for categoricals) are not timed."""
    return pd.DataFrame(
        {
            "y": [10.0, 12.0, 13.0, 15.0, 9.0, 11.0, 14.0, 17.0, 8.0, 10.0, 12.0, 15.0],
            "event": [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0],
            "x": [0.0, 1.0, 2.0, 3.0] * 3,
            "g": pd.Categorical(["a"] * 4 + ["b"] * 4 + ["c"] * 4),
        }
    )


WARM_UP_MODELS: dict[ModelKind, Model] = {
    "lmer": Model("lmer", "y ~ x + (1 | g)", reml=True),
    "glmer": Model("glmer", "event ~ x + (1 | g)", family="binomial"),
}


def warm_up(fit: Callable[[Model, pd.DataFrame], Any], kind: ModelKind) -> None:
    """One tiny fit of the given kind, so that a library's lazy initialisation is not timed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(WARM_UP_MODELS[kind], _warm_up_frame())


def time_peer(source: DataSource, model: Model, policy: RepeatPolicy) -> dict[str, Any]:
    warm_up(fit_peer, model.kind)
    data = source.load()
    times, fit = time_repeated(lambda: fit_peer(model, data), policy)
    diagnostics = fit.diagnostics or {}
    return {
        "times": times,
        "llf": fit.log_likelihood,
        "converged": fit.converged,
        "iterations": fit.iterations,
        # lme-python may fit another nAGQ than the one asked for; None where it does not say.
        "effective_nAGQ": diagnostics.get("effective_n_agq"),
    }


def _status_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux), so that the peak measured afterwards is the
    fit's and not that of loading the data; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_our_memory(source: DataSource, model: Model) -> dict[str, Any]:
    warm_up(fit_ours, model.kind)
    data = source.load()
    gc.collect()
    # ru_maxrss (KiB on Linux) is a peak since process start: a lower bound where no reset exists.
    peak_was_reset = _reset_peak_rss()
    before_kib = _status_kib("VmRSS") if peak_was_reset else _max_rss_kib()
    fit_ours(model, data)
    peak_kib = _status_kib("VmHWM") if peak_was_reset else _max_rss_kib()
    return {"peak_increase_bytes": (peak_kib - before_kib) * 1024, "peak_was_reset": peak_was_reset}


def main(task_json: str) -> None:
    task = json.loads(task_json)
    model = Model(**task["model"])
    source = DataSource(**{**task["data"], "string_columns": tuple(task["data"]["string_columns"])})
    if task["kind"] == "peer":
        policy = RepeatPolicy(**task["policy"])
        result = time_peer(source, model, policy)
    elif task["kind"] == "memory":
        result = measure_our_memory(source, model)
    else:
        raise ValueError(f"unknown task kind {task['kind']!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
