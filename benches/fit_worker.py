"""Subprocess side of ``bench_lmm.py``: fits that must be killable on a timeout (lme-python) or
need a fresh process to measure memory (our peak RSS). Prints one JSON object on stdout.

Usage (by ``bench_lmm.py`` only): ``python fit_worker.py '<task JSON>'``.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import pandas as pd

T = TypeVar("T")


@dataclass(frozen=True)
class RepeatPolicy:
    """Repeat a fit until the summed wall time reaches ``budget_s`` or ``max_runs`` runs are done;
    there is always at least one run, so a slow fit is timed once."""

    budget_s: float
    max_runs: int

    def done(self, times: list[float]) -> bool:
        return len(times) >= self.max_runs or sum(times) >= self.budget_s


def time_repeated(fit: Callable[[], T], policy: RepeatPolicy) -> tuple[list[float], T]:
    """Wall times of repeated calls of ``fit`` and the last call's result."""
    times: list[float] = []
    while True:
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
        if policy.done(times):
            return times, result


def _warm_up_frame() -> pd.DataFrame:
    """A tiny pandas frame with a categorical grouping factor, so that lazy imports and
    conversions a first call triggers (e.g. pyarrow for categoricals) are not timed."""
    return pd.DataFrame(
        {
            "y": [10.0, 12.0, 13.0, 15.0, 9.0, 11.0, 14.0, 17.0, 8.0, 10.0, 12.0, 15.0],
            "x": [0.0, 1.0, 2.0, 3.0] * 3,
            "g": pd.Categorical(["a"] * 4 + ["b"] * 4 + ["c"] * 4),
        }
    )


def fit_peer(data_path: str, formula: str, reml: bool, policy: RepeatPolicy) -> dict[str, Any]:
    import lme_python

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lme_python.lmer("y ~ x + (1 | g)", _warm_up_frame(), reml=True)
    data = pd.read_pickle(data_path)
    times, fit = time_repeated(lambda: lme_python.lmer(formula, data, reml=reml), policy)
    return {
        "times": times,
        "llf": fit.log_likelihood,
        "converged": fit.converged,
        "iterations": fit.iterations,
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


def measure_our_memory(data_path: str, formula: str, reml: bool) -> dict[str, Any]:
    import mixedmodels as mm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm.lmer("y ~ x + (1 | g)", _warm_up_frame())
    data = pd.read_pickle(data_path)
    gc.collect()
    # ru_maxrss (KiB on Linux) is a peak since process start: a lower bound where no reset exists.
    peak_was_reset = _reset_peak_rss()
    before_kib = _status_kib("VmRSS") if peak_was_reset else _max_rss_kib()
    mm.lmer(formula, data, REML=reml)
    peak_kib = _status_kib("VmHWM") if peak_was_reset else _max_rss_kib()
    return {"peak_increase_bytes": (peak_kib - before_kib) * 1024, "peak_was_reset": peak_was_reset}


def main(task_json: str) -> None:
    task = json.loads(task_json)
    reml = bool(task["reml"])
    if task["kind"] == "peer":
        policy = RepeatPolicy(task["budget_s"], task["max_runs"])
        result = fit_peer(task["data"], task["formula"], reml, policy)
    elif task["kind"] == "memory":
        result = measure_our_memory(task["data"], task["formula"], reml)
    else:
        raise ValueError(f"unknown task kind {task['kind']!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
