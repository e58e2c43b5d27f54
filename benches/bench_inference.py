"""Benchmark mixedmodels' inference on fitted models (Satterthwaite and Kenward-Roger tests, type III
ANOVA, profile intervals, parametric bootstrap, marginal means, random-term deletion, R², ICC)
against lmerTest, pbkrtest, lme4, emmeans and performance (through ``Rscript``) in one run, plus
Kenward-Roger on InstEval, where pbkrtest cannot run (it forms dense n×n matrices).

A script, never a test: see ``benches/README.md``. Run ``python benches/bench_inference.py``.
The markdown table goes to stdout and to ``benches/results/inference.md`` (git-ignored).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mixedmodels as mm
from bench_lmm import _seconds, git_revision
from fit_worker import RepeatPolicy

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results" / "inference.md"
R_WORKER = BENCH_DIR / "inference_r.R"

# Analyses take milliseconds to a second: up to 20 runs or 1 s, a slow one stops after 5 s.
POLICY = RepeatPolicy(budget_s=1.0, max_runs=20)
OUR_REPLICATES = 2000
R_REPLICATES = 100  # bootMer is timed on fewer replicates and compared per replicate

SLOPES = "Reaction ~ Days + (Days | Subject)"
CAKE = "angle ~ recipe * temperature + (1 | recipe:replicate)"
INSTEVAL = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"


def time_runs(call: Callable[[], Any], reset: Callable[[], None] | None = None) -> list[float]:
    """Wall times of repeated calls of ``call`` after one untimed warm-up call; ``reset`` runs
    untimed before every call."""
    times: list[float] = []
    warming_up = True
    while True:
        if reset is not None:
            reset()
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        if not warming_up:
            times.append(elapsed)
            if POLICY.done(times):
                return times
        warming_up = False


def forget_derivatives(result: mm.LmerResult, name: str = "satterthwaite") -> Callable[[], None]:
    """A reset that drops the Satterthwaite derivatives (or the Kenward-Roger adjustment) cached
    on ``result`` (a cached_property), so that the next call computes them as a first call does."""
    return lambda: result.__dict__.pop(name, None)


def time_ours(slopes: mm.LmerResult, cake: mm.LmerResult) -> dict[str, list[float]]:
    """Our times, keyed as inference_r.R keys R's."""
    first, first_cake = forget_derivatives(slopes), forget_derivatives(cake)
    return {
        "coef_table_first": time_runs(slopes.coef_table, first),
        "coef_table_cached": time_runs(slopes.coef_table),
        "anova_first": time_runs(slopes.anova, first),
        "anova_cached": time_runs(slopes.anova),
        "profile_confint": time_runs(lambda: slopes.confint(method="profile")),
        "bootstrap": time_runs(lambda: mm.bootstrap(slopes, n=OUR_REPLICATES, seed=1)),
        "ranova": time_runs(slopes.ranova),
        "r2": time_runs(slopes.r2),
        "icc": time_runs(slopes.icc),
        "emmeans_pairs_first": time_runs(lambda: mm.emmeans(cake, "recipe").pairs(), first_cake),
        "emmeans_pairs_cached": time_runs(lambda: mm.emmeans(cake, "recipe").pairs()),
        "kr_coef_table": time_runs(lambda: slopes.coef_table(ddf="kenward-roger"), forget_derivatives(slopes, "kenward_roger")),
        "kr_anova_cake": time_runs(lambda: cake.anova(ddf="kenward-roger"), forget_derivatives(cake, "kenward_roger")),
        "kr_emmeans_pairs_cake": time_runs(lambda: mm.emmeans(cake, "recipe", ddf="kenward-roger").pairs(), forget_derivatives(cake, "kenward_roger")),
    }


def time_insteval_kenward_roger() -> list[float]:
    """Kenward-Roger's coefficient table of InstEval's REML fit, adjustment computed in each call."""
    insteval = mm.lmer(INSTEVAL, mm.datasets.load("InstEval"), REML=True)
    return time_runs(lambda: insteval.coef_table(ddf="kenward-roger"), forget_derivatives(insteval, "kenward_roger"))


def time_r(sleepstudy_csv: Path, cake_csv: Path) -> dict[str, Any]:
    command = [
        "Rscript",
        str(R_WORKER),
        str(sleepstudy_csv),
        str(cake_csv),
        str(POLICY.budget_s),
        str(POLICY.max_runs),
        str(POLICY.min_runs),
        str(POLICY.enough_s),
        str(R_REPLICATES),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Row:
    """One line of the table: a key of both sides' times, each side's median scaled by a factor
    (per replicate, or extrapolated to our replicate count)."""

    label: str
    key: str
    ours_scale: float = 1.0
    r_scale: float = 1.0


ROWS = [
    Row("Satterthwaite `coef_table`, first call · `summary(as_lmerModLmerTest(m))`", "coef_table_first"),
    Row("Satterthwaite `coef_table`, derivatives cached · `summary(m)` of an lmerModLmerTest", "coef_table_cached"),
    Row("type III `anova()`, first call · `anova(as_lmerModLmerTest(m))`", "anova_first"),
    Row("type III `anova()`, derivatives cached · `anova(m)` of an lmerModLmerTest", "anova_cached"),
    Row('profile intervals `confint(method="profile")` · `confint(m)`', "profile_confint"),
    Row(
        f"parametric bootstrap, per replicate · `bootMer(m, fixef, nsim = {R_REPLICATES})` / {R_REPLICATES}",
        "bootstrap",
        1 / OUR_REPLICATES,
        1 / R_REPLICATES,
    ),
    Row(
        f"`bootstrap(m, n={OUR_REPLICATES:,}, seed=1)` · R extrapolated from {R_REPLICATES} replicates",
        "bootstrap",
        1.0,
        OUR_REPLICATES / R_REPLICATES,
    ),
    Row("`ranova()` · lmerTest `ranova(m)`", "ranova"),
    Row("`r2()` · performance `r2(m)`", "r2"),
    Row("`icc()` · performance `icc(m)`", "icc"),
    Row('cake: `emmeans(m, "recipe").pairs()`, first call · `pairs(emmeans(m, ~recipe))`', "emmeans_pairs_first"),
    Row('cake: `emmeans(m, "recipe").pairs()`, derivatives cached · the same of an lmerModLmerTest', "emmeans_pairs_cached"),
    Row('Kenward-Roger `coef_table(ddf="kenward-roger")` · `summary(m, ddf = "Kenward-Roger")`', "kr_coef_table"),
    Row('cake: Kenward-Roger type III `anova(ddf="kenward-roger")` · `anova(m, ddf = "Kenward-Roger")`', "kr_anova_cake"),
    Row(
        'cake: `emmeans(m, "recipe", ddf="kenward-roger").pairs()` · `pairs(emmeans(m, ~recipe, lmer.df = "kenward-roger"))`',
        "kr_emmeans_pairs_cake",
    ),
    Row(f'InstEval (73,421 rows, REML) `{INSTEVAL}`: `coef_table(ddf="kenward-roger")` · pbkrtest cannot (dense n×n)', "kr_insteval"),
]


def render_report(ours: dict[str, list[float]], r: dict[str, Any] | None) -> str:
    if r is None:
        r_line = "not run"
    else:
        versions = r["versions"]
        r_line = ", ".join([versions["R"], *(f"{package} {versions[package]}" for package in ("lme4", "lmerTest", "pbkrtest", "emmeans", "performance"))])
    lines = [
        "# mixedmodels inference benchmark",
        "",
        f"- mixedmodels {importlib.metadata.version('mixedmodels')} (git {git_revision()}), Python {platform.python_version()}",
        f"- R: {r_line}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "",
        f"sleepstudy `{SLOPES}` (REML) unless marked cake: `{CAKE}` (REML).",
        "Median wall time after a warm-up call (runs in parentheses); R/ours > 1 means mixedmodels is faster.",
        "First call: Satterthwaite's derivatives computed in the timed call; cached: kept on the fit beforehand.",
        "Kenward-Roger rows: our adjustment computed in every timed call; R's lmerTest/emmeans call pbkrtest's vcovAdj each time.",
        'emmeans in R runs with `lmer.df = "satterthwaite"` (its default for lmer fits is Kenward-Roger).',
        "",
        "| analysis · R call | ours | R | R/ours |",
        "|---|---:|---:|---:|",
    ]
    for row in ROWS:
        ours_s = statistics.median(ours[row.key]) * row.ours_scale
        ours_cell = f"{_seconds(ours_s)} ({len(ours[row.key])}×)"
        if r is None or row.key not in r["times"]:
            lines.append(f"| {row.label} | {ours_cell} | — | — |")
            continue
        r_times = r["times"][row.key]
        r_s = statistics.median(r_times) * row.r_scale
        lines.append(f"| {row.label} | {ours_cell} | {_seconds(r_s)} ({len(r_times)}×) | {r_s / ours_s:,.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-r", action="store_true", help="time mixedmodels alone")
    arguments = parser.parse_args(argv)

    sleepstudy, cake_data = mm.datasets.load("sleepstudy"), mm.datasets.load("cake")
    slopes = mm.lmer(SLOPES, sleepstudy, REML=True)
    cake = mm.lmer(CAKE, cake_data, REML=True)
    print("mixedmodels", file=sys.stderr, flush=True)
    ours = time_ours(slopes, cake)
    ours["kr_insteval"] = time_insteval_kenward_roger()

    r = None
    if not arguments.no_r:
        print("R", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="bench_inference_") as scratch:
            sleepstudy_csv, cake_csv = Path(scratch) / "sleepstudy.csv", Path(scratch) / "cake.csv"
            sleepstudy.to_csv(sleepstudy_csv, index=False)
            cake_data.to_csv(cake_csv, index=False)
            r = time_r(sleepstudy_csv, cake_csv)

    report = render_report(ours, r)
    print(report)
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(report)


if __name__ == "__main__":
    main()
