"""Benchmark ``mm.lmer`` and ``mm.glmer`` against lme4 (through ``Rscript``) and lme-python on the
same data in one run, as users load data: every tool reads the workload's CSV itself, grouping
columns as strings, and the whole user call is timed (``--in-memory``: the older protocol on
prepared DataFrames with integer or categorical grouping columns).

A script, never a test: see ``benches/README.md``. Run ``python benches/bench_lmm.py --help``.
The markdown table goes to stdout and to ``benches/results/latest.md`` (git-ignored).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

import mixedmodels as mm
from fit_worker import DataSource, Model, RepeatPolicy, StringDtype, fit_ours, read_user_csv, time_repeated, warm_up
from mixedmodels.results import GlmerResult, LmerResult

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results" / "latest.md"
R_WORKER = BENCH_DIR / "lme4_fit.R"
PY_WORKER = BENCH_DIR / "fit_worker.py"

# The CSV protocol (issue 12): the median of 5 runs after a warm-up, for every tool. A first run
# under 1 s is the warm-up; a longer one has paid its one-time costs and counts, and a tool whose
# runs have taken 30 s in all stops there, so that lme4's and lme-python's slowest fits do not
# take the run's hour.
CSV_POLICY = RepeatPolicy(budget_s=0.0, max_runs=5, min_runs=5, enough_s=30.0)
# The in-memory protocol: runs until 1 s is spent (at least 3, or 5 s in all), at most 20 of ours
# and 10 of a peer's.
OURS_POLICY = RepeatPolicy(budget_s=1.0, max_runs=20)
PEER_POLICY = RepeatPolicy(budget_s=1.0, max_runs=10)
# Largest relative difference allowed between our fits on the CSV and on the in-memory data.
SAME_FIT_RTOL = 1e-8
# Subprocess time beyond the fits themselves: interpreter startup, reading the data, warm-up fit.
LOAD_ALLOWANCE_S = 60.0


# --- Workloads -------------------------------------------------------------------------------


def _sleepstudy() -> pd.DataFrame:
    return mm.datasets.load("sleepstudy")


def _penicillin() -> pd.DataFrame:
    return mm.datasets.load("Penicillin")


def _insteval() -> pd.DataFrame:
    return mm.datasets.load("InstEval")


def _intercept_1m() -> pd.DataFrame:
    """1,000,000 rows in 10,000 groups (group sizes binomial around 100), three covariates, one
    of them partly between-group so that the random intercept and the fixed effects interact."""
    rng = np.random.default_rng(20_240_601)
    n_rows, n_groups = 1_000_000, 10_000
    group = _cover_all_levels(rng, n_groups, rng.integers(0, n_groups, n_rows - n_groups))
    group_effect = rng.normal(0.0, 0.8, n_groups)
    x1 = rng.normal(0.0, 1.0, n_rows)
    x2 = rng.normal(0.0, 1.0, n_groups)[group] + rng.normal(0.0, 1.0, n_rows)
    x3 = rng.uniform(-1.0, 1.0, n_rows)
    y = 1.0 + 0.5 * x1 - 0.3 * x2 + 0.2 * x3 + group_effect[group] + rng.normal(0.0, 1.5, n_rows)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "x3": x3, "g": group})


def _slopes_200k() -> pd.DataFrame:
    """200,000 rows of 2,000 subjects (sizes binomial around 100), x in [0, 10) like sleepstudy's
    Days; random intercepts (sd 25) and slopes (sd 6) correlated at 0.3, residual sd 25."""
    rng = np.random.default_rng(20_240_602)
    n_rows, n_subjects = 200_000, 2_000
    subject = _cover_all_levels(rng, n_subjects, rng.integers(0, n_subjects, n_rows - n_subjects))
    sd_intercept, sd_slope, correlation = 25.0, 6.0, 0.3
    covariance = np.array(
        [
            [sd_intercept**2, correlation * sd_intercept * sd_slope],
            [correlation * sd_intercept * sd_slope, sd_slope**2],
        ]
    )
    effects = rng.multivariate_normal(np.zeros(2), covariance, n_subjects)
    x = rng.uniform(0.0, 10.0, n_rows)
    y = 250.0 + 10.0 * x + effects[subject, 0] + effects[subject, 1] * x + rng.normal(0.0, 25.0, n_rows)
    return pd.DataFrame({"y": y, "x": x, "subj": subject})


def _crossed_200k() -> pd.DataFrame:
    """200,000 rows, 2,000 subjects x 500 items, unbalanced: each row draws its subject and item
    from gamma-distributed popularities (shape 1 and 0.5), so level sizes are overdispersed
    (negative-binomial-like, from a handful of rows to several times the mean)."""
    rng = np.random.default_rng(20_240_603)
    n_rows, n_subjects, n_items = 200_000, 2_000, 500
    subject_share = rng.gamma(1.0, size=n_subjects)
    item_share = rng.gamma(0.5, size=n_items)
    subject = _cover_all_levels(
        rng, n_subjects, rng.choice(n_subjects, n_rows - n_subjects, p=subject_share / subject_share.sum())
    )
    item = _cover_all_levels(
        rng, n_items, rng.choice(n_items, n_rows - n_items, p=item_share / item_share.sum())
    )
    x = rng.normal(0.0, 1.0, n_rows)
    y = (
        2.0
        + 0.4 * x
        + rng.normal(0.0, 1.0, n_subjects)[subject]
        + rng.normal(0.0, 0.6, n_items)[item]
        + rng.normal(0.0, 1.2, n_rows)
    )
    return pd.DataFrame({"y": y, "x": x, "subj": subject, "item": item})


def _cbpp() -> pd.DataFrame:
    return mm.datasets.load("cbpp")


def _bernoulli_crossed_100k() -> pd.DataFrame:
    """100,000 0/1 responses, 1,000 subjects x 200 items: a random half of the 200,000
    subject-item pairs, each pair at most once (subjects have 78 to 126 items, items 455 to 537
    subjects). Logit = -0.5 + 0.7 x + subject effect (sd 1.0) + item effect (sd 0.5); 40 % ones."""
    rng = np.random.default_rng(20_240_604)
    n_rows, n_subjects, n_items = 100_000, 1_000, 200
    subject, item = np.divmod(rng.choice(n_subjects * n_items, n_rows, replace=False), n_items)
    x = rng.normal(0.0, 1.0, n_rows)
    logit = (
        -0.5
        + 0.7 * x
        + rng.normal(0.0, 1.0, n_subjects)[subject]
        + rng.normal(0.0, 0.5, n_items)[item]
    )
    y = (rng.uniform(size=n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(float)
    return pd.DataFrame({"y": y, "x": x, "subj": subject, "item": item})


def _poisson_100k() -> pd.DataFrame:
    """100,000 counts in 5,000 groups (sizes binomial around 20), x2 partly between-group as in
    intercept_1m. Log mean = 0.5 + 0.3 x1 - 0.2 x2 + group effect (sd 0.5): mean count 2.0,
    23 % zeros."""
    rng = np.random.default_rng(20_240_605)
    n_rows, n_groups = 100_000, 5_000
    group = _cover_all_levels(rng, n_groups, rng.integers(0, n_groups, n_rows - n_groups))
    x1 = rng.normal(0.0, 1.0, n_rows)
    x2 = rng.normal(0.0, 1.0, n_groups)[group] + rng.normal(0.0, 1.0, n_rows)
    log_mean = 0.5 + 0.3 * x1 - 0.2 * x2 + rng.normal(0.0, 0.5, n_groups)[group]
    y = rng.poisson(np.exp(log_mean)).astype(float)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": group})


def _cover_all_levels(rng: np.random.Generator, n_levels: int, drawn: np.ndarray) -> np.ndarray:
    """Shuffled level codes with every level at least once, so the data have exactly the stated
    number of groups."""
    return rng.permutation(np.concatenate([np.arange(n_levels), drawn]))


@dataclass(frozen=True)
class Workload:
    name: str
    model: Model
    factor_columns: tuple[str, ...]  # grouping and other factor columns: text in the CSV
    load: Callable[[], pd.DataFrame]


def as_user_csv(data: pd.DataFrame, factor_columns: tuple[str, ...]) -> pd.DataFrame:
    """The frame as a CSV holds it: factor columns as text labels. The shipped datasets keep their
    own labels (sleepstudy's Subject "308", Penicillin's plate "a", InstEval's s, d, dept);
    synthetic integer codes get their column's initial as a prefix (subj 17 -> "S17", item 3 ->
    "I3", g 5 -> "G5"), so that, as with real IDs, the sorted labels are not in numeric order and
    a tool's level order differs from the generator's."""
    labelled = data.copy()
    for column in factor_columns:
        values = data[column]
        if pd.api.types.is_integer_dtype(values):
            labelled[column] = column[0].upper() + values.astype(str)
        else:
            labelled[column] = values.astype(str)
    return labelled


Fit = LmerResult | GlmerResult


def _lmer(formula: str, reml: bool) -> Model:
    return Model("lmer", formula, reml=reml)


def _glmer(formula: str, family: str) -> Model:
    return Model("glmer", formula, family=family)


def _with_nagq0(workload: Workload) -> Workload:
    """The same GLMM fitted by lme4's fast nAGQ = 0 estimator, on the same data."""
    return replace(workload, name=f"{workload.name}_nagq0", model=replace(workload.model, nAGQ=0))


def _with_lme4_objective(workload: Workload) -> Workload:
    """The same GLMM fitted by us with lme4 1.1's Laplace objective (``compat="lme4"``); the
    other tools fit it as in the workload's own row."""
    return replace(workload, name=f"{workload.name}_lme4obj", model=replace(workload.model, compat="lme4"))


LMM_WORKLOADS: tuple[Workload, ...] = (
    Workload("sleepstudy", _lmer("Reaction ~ Days + (Days | Subject)", True), ("Subject",), _sleepstudy),
    Workload(
        "penicillin", _lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", True), ("plate", "sample"), _penicillin
    ),
    Workload(
        "insteval",
        _lmer("y ~ service + (1 | s) + (1 | d) + (1 | dept)", False),
        ("s", "d", "dept", "service"),
        _insteval,
    ),
    Workload("intercept_1m", _lmer("y ~ x1 + x2 + x3 + (1 | g)", True), ("g",), _intercept_1m),
    Workload("slopes_200k", _lmer("y ~ x + (1 + x | subj)", True), ("subj",), _slopes_200k),
    Workload("crossed_200k", _lmer("y ~ x + (1 | subj) + (1 | item)", True), ("subj", "item"), _crossed_200k),
)
# Laplace fits (nAGQ = 1, our exact Laplace objective); each is followed in the table by the same
# fit with lme4 1.1's objective and by its nAGQ = 0 variant.
GLMM_WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "cbpp",
        _glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
        ("herd", "period"),
        _cbpp,
    ),
    Workload(
        "bernoulli_crossed_100k",
        _glmer("y ~ x + (1 | subj) + (1 | item)", "binomial"),
        ("subj", "item"),
        _bernoulli_crossed_100k,
    ),
    Workload("poisson_100k", _glmer("y ~ x1 + x2 + (1 | g)", "poisson"), ("g",), _poisson_100k),
)
WORKLOADS: tuple[Workload, ...] = LMM_WORKLOADS + tuple(
    variant for workload in GLMM_WORKLOADS for variant in (workload, _with_lme4_objective(workload), _with_nagq0(workload))
)
# The workload whose evaluation count, time per evaluation and peak memory are reported.
DETAILED_WORKLOAD = "intercept_1m"


# --- Measurements ----------------------------------------------------------------------------


@dataclass
class Timing:
    """A tool's median time and log-likelihood on a workload, or why there is none."""

    times: list[float] = field(default_factory=list)
    llf: float | None = None
    failure: str | None = None  # table text when there is no time: "n/a", "timeout", "error"
    notes: list[str] = field(default_factory=list)

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class Detail:
    evaluations: int
    peak_increase_bytes: int | None
    input_float64_bytes: int
    note: str


@dataclass
class Row:
    workload: Workload
    n_rows: int
    ours: Timing
    lme4: Timing | None  # None: not run (no R, or --no-r)
    peer: Timing | None  # None: not run (not installed, or --no-peer)
    ours_in_memory: Timing | None = None  # CSV protocol: our time on the in-memory frame
    fit_difference: str | None = None  # CSV protocol: how our CSV fit differs from the in-memory one
    detail: Detail | None = None


def time_ours(workload: Workload, data: pd.DataFrame, policy: RepeatPolicy) -> tuple[Timing, Fit | None]:
    """Our median wall time for the whole user-visible call, and the last fit (None if it failed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            times, result = time_repeated(lambda: fit_ours(workload.model, data), policy)
        except Exception as error:  # a failing fit is reported in the table, not fatal to the run
            return Timing(failure="error", notes=[f"{type(error).__name__}: {error}"]), None
    notes = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return Timing(times, result.llf, notes=notes), result


def _relative_differences(fit: Fit, reference: Fit) -> dict[str, float]:
    """Largest relative difference of each compared quantity (per coefficient for the vectors)."""
    pairs = {
        "log-likelihood": ([fit.llf], [reference.llf]),
        "deviance": ([fit.deviance], [reference.deviance]),
        "fixed effects": (fit.params.to_numpy(), reference.params.to_numpy()),
        "θ": (fit.theta, reference.theta),
    }
    return {
        what: float(np.max(np.abs(np.subtract(a, b)) / np.maximum(np.abs(b), np.finfo(float).tiny)))
        for what, (a, b) in pairs.items()
    }


def _same_fit(differences: dict[str, float]) -> bool:
    """The issue's criterion: log-likelihood, deviance and fixed effects (θ is reported, not judged)."""
    return all(difference <= SAME_FIT_RTOL for what, difference in differences.items() if what != "θ")


def _with_csv_level_order(data: pd.DataFrame, factor_columns: tuple[str, ...]) -> pd.DataFrame:
    """The in-memory frame with the CSV's labels as Categoricals, whose levels pandas sorts as
    lme4's factor() and our string columns do: the CSV's level order without string columns."""
    labelled = as_user_csv(data, factor_columns)
    for column in factor_columns:
        labelled[column] = pd.Categorical(labelled[column])
    return labelled


def fit_difference(workload: Workload, data: pd.DataFrame, from_csv: Fit | None, in_memory: Fit | None) -> str | None:
    """None when our fit on the CSV data equals the fit on the in-memory frame (log-likelihood,
    deviance and fixed effects to ``SAME_FIT_RTOL`` relative), else what differs. String labels
    change the level order (and floats make a round trip through text); estimates must not. On a
    difference, one more fit on the in-memory frame in the CSV's level order tells whether the
    string columns or the level order cause it."""
    if from_csv is None or in_memory is None:
        return "no comparison: a fit failed"
    if list(from_csv.params.index) != list(in_memory.params.index):
        return f"fixed-effect names differ: {list(from_csv.params.index)} vs {list(in_memory.params.index)}"
    differences = _relative_differences(from_csv, in_memory)
    if _same_fit(differences):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reordered = fit_ours(workload.model, _with_csv_level_order(data, workload.factor_columns))
    order_differences = _relative_differences(from_csv, reordered)
    cause = (
        "so the level order moves the optimiser's stopping point, the string columns do not"
        if _same_fit(order_differences)
        else "so the string columns themselves change the fit"
    )
    return (
        ", ".join(f"{what} {difference:.1e}" for what, difference in differences.items())
        + " relative; the in-memory frame in the CSV's level order (sorted labels as Categoricals) gives the CSV fit to "
        + ", ".join(f"{what} {difference:.1e}" for what, difference in order_differences.items())
        + f", {cause}"
    )


def _run_subprocess(command: list[str], deadline_s: float) -> Timing | dict[str, Any]:
    """The JSON a worker printed, or a failed Timing (timeout, crash, unparsable output)."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=deadline_s)
    except subprocess.TimeoutExpired:
        return Timing(failure="timeout", notes=[f"killed after {deadline_s:.0f} s (per-fit timeout plus loading)"])
    if completed.returncode != 0:
        return Timing(failure="error", notes=[_last_line(completed.stderr) or f"exit code {completed.returncode}"])
    try:
        return json.loads(completed.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return Timing(failure="error", notes=[f"unreadable worker output: {completed.stdout[-200:]!r}"])


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _deadline_s(policy: RepeatPolicy, timeout_s: float) -> float:
    """Subprocess deadline: a fixed number of runs may each take the per-fit timeout; under a time
    budget, runs stop once the budget (or ``enough_s``) is spent, so at most one run goes past it."""
    fits_s = (
        policy.max_runs * timeout_s
        if math.isinf(policy.budget_s)
        else max(policy.budget_s, policy.enough_s) + timeout_s
    )
    return LOAD_ALLOWANCE_S + policy.warm_up_below_s + fits_s


def _lme4_model_arguments(model: Model) -> list[str]:
    """The trailing arguments of ``lme4_fit.R``: ``lmer REML`` or ``glmer FAMILY NAGQ``."""
    if model.kind == "lmer":
        return ["lmer", "TRUE" if model.reml else "FALSE"]
    return ["glmer", model.family, str(model.nAGQ)]


def time_lme4(workload: Workload, csv_path: Path, policy: RepeatPolicy, timeout_s: float) -> Timing:
    command = [
        "Rscript",
        str(R_WORKER),
        str(csv_path),
        workload.model.formula,
        ",".join(workload.factor_columns),
        str(policy.budget_s) if math.isfinite(policy.budget_s) else "Inf",
        str(policy.max_runs),
        str(policy.min_runs),
        str(policy.enough_s),
        str(policy.warm_up_below_s),
        *_lme4_model_arguments(workload.model),
    ]
    outcome = _run_subprocess(command, _deadline_s(policy, timeout_s))
    if isinstance(outcome, Timing):
        return outcome
    return Timing(outcome["times"], outcome["llf"], notes=list(outcome["messages"]))


def time_peer(workload: Workload, source: DataSource, policy: RepeatPolicy, timeout_s: float) -> Timing:
    task = {
        "kind": "peer",
        "data": asdict(source),
        "model": asdict(workload.model),
        "policy": asdict(policy),
    }
    outcome = _run_subprocess([sys.executable, str(PY_WORKER), json.dumps(task)], _deadline_s(policy, timeout_s))
    if isinstance(outcome, Timing):
        # An error from lme-python itself means it cannot fit this model: "n/a", with the reason.
        if outcome.failure == "error":
            outcome.failure = "n/a"
        return outcome
    notes = [] if outcome["converged"] else ["lme-python reports no convergence"]
    effective_nagq = outcome["effective_nAGQ"]
    if workload.model.kind == "glmer" and effective_nagq is not None and effective_nagq != workload.model.nAGQ:
        notes.append(f"lme-python reports fitting nAGQ = {effective_nagq} when asked for nAGQ = {workload.model.nAGQ}")
    return Timing(outcome["times"], outcome["llf"], notes=notes)


def peer_poisson_note(workload: Workload, data: pd.DataFrame, peer_llf: float, lme4: Timing | None) -> str:
    """lme-python's GLMM log-likelihood is minus half the deviance, without the saturated model's
    log-likelihood: a constant of the data, zero for 0/1 responses but not for counts. The note
    gives it and the Δ it makes, so the Δ column is not read as a worse fit."""
    counts = data[workload.model.formula.partition("~")[0].strip()].to_numpy()
    saturated = float(np.sum(special.xlogy(counts, counts) - counts - special.gammaln(counts + 1.0)))
    note = f"its Poisson log-likelihood leaves out the saturated one, Σ(y log y − y − log y!) = {saturated:.8g}"
    if lme4 is None or lme4.llf is None:
        return note
    return f"{note}; with it, Δ log-lik peer−lme4 = {peer_llf + saturated - lme4.llf:+.2e}"


def measure_detail(
    workload: Workload, data: pd.DataFrame, source: DataSource, evaluations: int, timeout_s: float
) -> Detail:
    """Peak memory of one of our fits, measured in a fresh process over the loaded DataFrame."""
    task = {"kind": "memory", "data": asdict(source), "model": asdict(workload.model)}
    outcome = _run_subprocess(
        [sys.executable, str(PY_WORKER), json.dumps(task)], _deadline_s(RepeatPolicy(0.0, 1), timeout_s)
    )
    input_bytes = data.shape[0] * data.shape[1] * 8
    if isinstance(outcome, Timing):
        return Detail(evaluations, None, input_bytes, f"memory measurement failed: {outcome.failure} {outcome.notes}")
    note = "" if outcome["peak_was_reset"] else "peak since process start (lower bound)"
    return Detail(evaluations, outcome["peak_increase_bytes"], input_bytes, note)


# --- Environment -----------------------------------------------------------------------------


def r_versions() -> tuple[str, str] | None:
    """R's and lme4's versions, or None when Rscript or lme4 is missing."""
    if shutil.which("Rscript") is None:
        return None
    probe = subprocess.run(
        ["Rscript", "-e", 'cat(R.version.string, as.character(packageVersion("lme4")), sep = "\\n")'],
        capture_output=True,
        text=True,
    )
    lines = probe.stdout.strip().splitlines()
    return (lines[0], lines[1]) if probe.returncode == 0 and len(lines) == 2 else None


def peer_version() -> str | None:
    """lme-python's version without importing it into this process."""
    if importlib.util.find_spec("lme_python") is None:
        return None
    return importlib.metadata.version("lme-python")


def git_revision() -> str:
    describe = subprocess.run(
        ["git", "-C", str(BENCH_DIR), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return describe.stdout.strip() or "unknown"


def environment_lines(r: tuple[str, str] | None, peer: str | None) -> list[str]:
    return [
        f"- mixedmodels {importlib.metadata.version('mixedmodels')} (git {git_revision()})",
        f"- Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}",
        f"- lme4: {f'{r[1]} on {r[0]}, default lmerControl() and glmerControl()' if r else 'not run'}",
        f"- lme-python: {peer or 'not run'}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- load average (1, 5, 15 min) at the start: {_load_average()}",
    ]


def _load_average() -> str:
    """Other work on the machine slows every tool; the load average around the run shows it."""
    try:
        return ", ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "unknown"


# --- Report ----------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value * 1e3:.3g} ms" if value < 1.0 else f"{value:.3g} s"


def _time_cell(timing: Timing | None) -> str:
    if timing is None:
        return "—"
    if timing.median_s is None:
        return timing.failure or "error"
    return f"{_seconds(timing.median_s)} ({len(timing.times)}×)"


def _ratio_cell(numerator: Timing | None, denominator: Timing | None) -> str:
    if numerator is None or denominator is None or numerator.median_s is None or denominator.median_s is None:
        return "—"
    return f"{numerator.median_s / denominator.median_s:.3g}"


def _llf_difference_cell(timing: Timing | None, lme4: Timing | None) -> str:
    if timing is None or timing.llf is None or lme4 is None or lme4.llf is None:
        return "—"
    return f"{timing.llf - lme4.llf:+.2e}"


def protocol_lines(in_memory: bool, string_dtype: StringDtype, arrived_as: set[str], policy_text: str) -> list[str]:
    """The header paragraph that says how the data reach each tool and what is timed."""
    if in_memory:
        text = (
            "Protocol: in memory (`--in-memory`). mixedmodels and lme-python fit the prepared DataFrame "
            "(integer or categorical grouping columns); lme4 reads it from a CSV with `read.csv()` and "
            f"`factor()`, untimed. Timed: the whole user call on data in memory; {policy_text}."
        )
    else:
        dtypes = ", ".join(f"`{dtype}`" for dtype in sorted(arrived_as)) or "—"
        text = (
            "Protocol: data as users load them — CSV, string grouping columns, end to end. Each workload is "
            "written once to a CSV with its grouping (factor) columns as text labels; each tool reads it "
            f"itself, untimed: mixedmodels and lme-python with `pd.read_csv(path, dtype={{<factor columns>: {string_dtype}}})` "
            f"(pandas' defaults otherwise; the factor columns arrive as {dtypes}), lme4 with "
            '`read.csv(path, colClasses = c(<factor columns> = "character"))` then `factor()`. Timed: the '
            "whole user call (`mm.lmer`/`mm.glmer`, `lme_python.lmer`/`glmer`, lme4's `lmer()`/`glmer()`); "
            f"{policy_text}. \"mixedmodels in memory\": our same call on the prepared DataFrame (integer or "
            "categorical grouping columns), the `--in-memory` protocol."
        )
    return textwrap.wrap(text, width=100, break_on_hyphens=False)


def render_report(rows: list[Row], environment: list[str], protocol: list[str]) -> str:
    in_memory_column = any(row.ours_in_memory is not None for row in rows)
    lines = [
        "# mixedmodels benchmark",
        "",
        *environment,
        "",
        *protocol,
        "",
        "Median wall time of one fit (runs in parentheses). Targets: lme4 / ours ≥ 20, ours / lme-python ≤ 0.5.",
        "Δ log-lik is the tool's log-likelihood (REML where fitted by REML) minus lme4's; for GLMMs, minus",
        "lme4's fit with the same nAGQ (`_nagq0` rows: lme4's nAGQ = 0, the others: Laplace).",
        "",
        "| workload | n | mixedmodels | lme4 | lme-python | lme4 / ours | ours / lme-python "
        + ("| mixedmodels in memory " if in_memory_column else "")
        + "| Δ log-lik ours−lme4 | Δ log-lik peer−lme4 |",
        "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if in_memory_column else "") + "---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.workload.name} | {row.n_rows:,} | {_time_cell(row.ours)} | {_time_cell(row.lme4)} "
            f"| {_time_cell(row.peer)} | {_ratio_cell(row.lme4, row.ours)} | {_ratio_cell(row.ours, row.peer)} "
            + (f"| {_time_cell(row.ours_in_memory)} " if in_memory_column else "")
            + f"| {_llf_difference_cell(row.ours, row.lme4)} | {_llf_difference_cell(row.peer, row.lme4)} |"
        )
    if in_memory_column:
        differing = [row for row in rows if row.fit_difference is not None]
        lines.append("")
        if differing:
            lines += [
                f"WARNING: {row.workload.name}: our fit on the CSV data differs from the in-memory fit: {row.fit_difference}"
                for row in differing
            ]
        else:
            lines.append(
                f"Our fits on the CSV data equal those on the in-memory frames (log-likelihood, deviance, fixed "
                f"effects to {SAME_FIT_RTOL:g} relative) on all {len(rows)} workloads."
            )
    for row in rows:
        if row.detail is None:
            continue
        detail = row.detail
        per_evaluation = (
            _seconds(row.ours.median_s / detail.evaluations) if row.ours.median_s and detail.evaluations else "—"
        )
        peak = f"{detail.peak_increase_bytes / 2**20:,.0f} MiB" if detail.peak_increase_bytes is not None else "—"
        lines += [
            "",
            f"## {row.workload.name}: mixedmodels in detail",
            "",
            f"- objective evaluations: {detail.evaluations}; whole-call time per evaluation: {per_evaluation}",
            f"- peak RSS increase of one fit over the loaded DataFrame: {peak}"
            + (f" ({detail.note})" if detail.note else ""),
            f"- input columns as float64, for comparison: {detail.input_float64_bytes / 2**20:,.0f} MiB",
        ]
    notes = [
        f"- {row.workload.name}, {tool}: {note}"
        for row in rows
        for tool, timing in (
            ("mixedmodels", row.ours),
            ("mixedmodels in memory", row.ours_in_memory),
            ("lme4", row.lme4),
            ("lme-python", row.peer),
        )
        if timing is not None
        for note in timing.notes
    ]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


# --- Main ------------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [workload.name for workload in WORKLOADS]
    parser.add_argument("--only", help=f"comma-separated workloads among: {', '.join(names)}")
    parser.add_argument("--repeats", type=int, help="exactly this many runs per tool instead of the adaptive policy")
    parser.add_argument("--no-r", action="store_true", help="do not run lme4")
    parser.add_argument("--no-peer", action="store_true", help="do not run lme-python")
    parser.add_argument("--timeout", type=float, default=300.0, help="per-fit timeout of lme4 and lme-python, seconds")
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="the older protocol: mixedmodels and lme-python fit the prepared DataFrame (integer or categorical "
        "grouping columns) instead of reading the CSV with string grouping columns",
    )
    parser.add_argument(
        "--string-dtype",
        choices=["str", "object"],
        default="str",
        help="how pandas reads the grouping columns: dtype=str (pandas 3: its str dtype; pandas 2: object) "
        "or dtype=object (Python strings on either)",
    )
    arguments = parser.parse_args(argv)
    if arguments.only:
        unknown = set(arguments.only.split(",")) - set(names)
        if unknown:
            parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    if arguments.repeats is not None and arguments.repeats < 1:
        parser.error("--repeats must be at least 1")
    return arguments


def policy_text(in_memory: bool, repeats: int | None) -> str:
    if repeats is not None:
        return f"{repeats} runs per tool after a warm-up (a first run under 1 s)"
    if in_memory:
        return "runs until 1 s is spent (at least 3 unless 5 s are spent; at most 20 of ours, 10 of a peer's)"
    return "the median of 5 runs after a warm-up (a first run under 1 s; a tool whose runs took 30 s in all stops there)"


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    selected = [w for w in WORKLOADS if not arguments.only or w.name in arguments.only.split(",")]
    string_dtype: StringDtype = arguments.string_dtype
    if arguments.repeats is not None:
        ours_policy = peer_policy = RepeatPolicy(budget_s=math.inf, max_runs=arguments.repeats)
    elif arguments.in_memory:
        ours_policy, peer_policy = OURS_POLICY, PEER_POLICY
    else:
        ours_policy = peer_policy = CSV_POLICY
    r = None if arguments.no_r else r_versions()
    peer = None if arguments.no_peer else peer_version()
    environment = environment_lines(r, peer)
    print("\n".join(environment), file=sys.stderr, flush=True)

    # Warm up our own lazy initialisation (thread pool, imports) outside the timings.
    for kind in sorted({workload.model.kind for workload in selected}):
        warm_up(fit_ours, kind)

    rows: list[Row] = []
    string_dtypes: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="bench_lmm_") as scratch:
        for workload in selected:
            print(f"{workload.name}: generating/loading data", file=sys.stderr, flush=True)
            data = workload.load()
            csv_path = Path(scratch) / f"{workload.name}.csv"
            if arguments.in_memory:
                # lme4 reads the integer codes and categorical labels as text.
                data.to_csv(csv_path, index=False)
                source = DataSource(str(Path(scratch) / f"{workload.name}.pkl"), "pickle")
                if peer or workload.name == DETAILED_WORKLOAD:
                    data.to_pickle(source.path)
                print(f"{workload.name}: mixedmodels", file=sys.stderr, flush=True)
                ours, ours_fit = time_ours(workload, data, ours_policy)
                ours_in_memory = difference = None
            else:
                as_user_csv(data, workload.factor_columns).to_csv(csv_path, index=False)
                source = DataSource(str(csv_path), "csv", workload.factor_columns, string_dtype)
                user_data = read_user_csv(source.path, source.string_columns, source.string_dtype)
                string_dtypes.update(str(user_data[column].dtype) for column in workload.factor_columns)
                print(f"{workload.name}: mixedmodels, from the CSV and in memory", file=sys.stderr, flush=True)
                ours, ours_fit = time_ours(workload, user_data, ours_policy)
                ours_in_memory, in_memory_fit = time_ours(workload, data, ours_policy)
                difference = fit_difference(workload, data, ours_fit, in_memory_fit)
                del user_data
            lme4_timing = peer_timing = detail = None
            if r:
                print(f"{workload.name}: lme4", file=sys.stderr, flush=True)
                lme4_timing = time_lme4(workload, csv_path, peer_policy, arguments.timeout)
            if peer:
                print(f"{workload.name}: lme-python", file=sys.stderr, flush=True)
                peer_timing = time_peer(workload, source, peer_policy, arguments.timeout)
                if workload.model.family == "poisson" and peer_timing.llf is not None:
                    peer_timing.notes.append(peer_poisson_note(workload, data, peer_timing.llf, lme4_timing))
            if workload.name == DETAILED_WORKLOAD:
                print(f"{workload.name}: peak memory", file=sys.stderr, flush=True)
                evaluations = ours_fit.optimization.n_evaluations if ours_fit is not None else 0
                detail = measure_detail(workload, data, source, evaluations, arguments.timeout)
            rows.append(Row(workload, len(data), ours, lme4_timing, peer_timing, ours_in_memory, difference, detail))

    protocol = protocol_lines(
        arguments.in_memory, string_dtype, string_dtypes, policy_text(arguments.in_memory, arguments.repeats)
    )
    environment.append(f"- load average (1, 5, 15 min) at the end: {_load_average()}")
    report = render_report(rows, environment, protocol)
    print(report)
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(report)


if __name__ == "__main__":
    main()
