"""Benchmark mixedmodels' diagnostics (issue 15's targets) in one run, against lme4 where lme4
can run in reasonable time (through ``Rscript``):

- exact group-deletion influence on sleepstudy (18 refits) against lme4's
  ``influence(m, groups = "Subject")`` (target: at least 50 times faster);
- exact observation-deletion influence on a 5,000-row, 100-group random-slope model (5,000
  refits; target: under 2 s on two cores; lme4 would refit 5,000 models one by one);
- ``augment()`` (hat values and lme4's Cook's distance included) on bench_lmm.py's 1,000,000-row
  random-intercept model (target: under 1 s).

Wall and CPU (process) times are reported: on a shared machine the wall time depends on the load.
The markdown report (versions, machine and load, then the table) goes to stdout and to
``benches/results/diagnostics.md`` (git-ignored). A script, never a test. Run
``python benches/bench_diagnostics.py``.
"""

from __future__ import annotations

import json
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm
from bench_lmm import _intercept_1m, _load_average, environment_lines, r_versions

BENCH_DIR = Path(__file__).resolve().parent
R_WORKER = BENCH_DIR / "diagnostics_r.R"
REPORT = BENCH_DIR / "results" / "diagnostics.md"


def best_of(work: Callable[[], object], runs: int) -> tuple[float, float]:
    """The fastest of ``runs`` runs after a warm-up: (wall seconds, CPU seconds of this process)."""
    work()
    timings = []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(timings)


def slopes_5000() -> pd.DataFrame:
    """5,000 rows of 100 subjects (50 each), x in [0, 10), correlated random intercepts and slopes."""
    rng = np.random.default_rng(20_250_115)
    subject = np.repeat(np.arange(100), 50)
    x = rng.uniform(0.0, 10.0, 5000)
    effects = rng.multivariate_normal([0.0, 0.0], [[625.0, 45.0], [45.0, 36.0]], 100)
    y = 250 + 10 * x + effects[subject, 0] + effects[subject, 1] * x + rng.normal(0.0, 25.0, 5000)
    return pd.DataFrame({"y": y, "x": x, "subject": subject.astype(str)})


def main() -> None:
    environment = [line for line in environment_lines(r_versions(), None) if not line.startswith("- lme-python")]
    rows = []
    sleep = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    ours = best_of(lambda: sleep.influence(groups="Subject"), 20)
    completed = subprocess.run(["Rscript", str(R_WORKER), "5"], capture_output=True, text=True, check=True)
    lme4 = json.loads(completed.stdout)
    rows.append(("sleepstudy, exact influence by Subject (18 refits)", ours, (lme4["wall_s"], lme4["cpu_s"])))
    slopes = mm.lmer("y ~ x + (x | subject)", slopes_5000())
    rows.append(("5,000 rows / 100 groups, exact influence by observation (5,000 refits)", best_of(lambda: slopes.influence(obs=True), 1), None))
    big = mm.lmer("y ~ x1 + x2 + x3 + (1 | g)", _intercept_1m())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows.append(("1,000,000 rows, augment()", best_of(big.augment, 3), None))
        rows.append(("1,000,000 rows, hatvalues()", best_of(big.hatvalues, 3), None))
    environment.append(f"- load average (1, 5, 15 min) at the end: {_load_average()}")
    lines = [
        "# mixedmodels diagnostics benchmark",
        "",
        *environment,
        "",
        "Best of the runs after a warm-up (20 for sleepstudy, lme4 5; 1 for observation deletion; 3 for the",
        "1,000,000-row model). CPU: this process's user + system time (lme4: R's).",
        "",
        "| workload | mixedmodels wall s | CPU s | lme4 wall s | CPU s | lme4 / ours (wall) |",
        "|---|---|---|---|---|---|",
    ]
    for name, (wall, cpu), reference in rows:
        r_part = "| – | – | –" if reference is None else f"| {reference[0]:.3f} | {reference[1]:.3f} | {reference[0] / wall:.0f}×"
        lines.append(f"| {name} | {wall:.4f} | {cpu:.4f} {r_part} |")
    report = "\n".join(lines) + "\n"
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(report, encoding="utf-8")
    print(report, end="")

if __name__ == "__main__":
    main()
