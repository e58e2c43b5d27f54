"""Benchmark the batch fits of issue 14 (``mm.lmer_many``, ``mm.glmer_many``) against the per-gene
loops R users write with lme4 (``refit``, lmerTest, ``glmer.nb``) and against lme-python, on the
same files in one run; also our peak memory on the 20,000-gene set, the genes any tool leaves
below the best REML optimum found ("stuck" genes), and a Dask LocalCluster row when the batch
API has a Dask backend.

A script, never a test: see ``benches/README.md``. Run ``python benches/bench_batch.py --help``.
The markdown table goes to stdout and to ``benches/results/latest_batch.md`` (git-ignored).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results" / "latest_batch.md"
R_WORKER = BENCH_DIR / "lme4_batch.R"

LMM_FORMULA = "~ condition + age + (1 | donor) + (1 | batch)"
COUNT_FORMULA = "~ condition + (1 | donor)"
TESTED = "condition[T.treated]"
# A gene is stuck when its REML log-likelihood is more than this below the best found (issue 14).
STUCK_LOGLIK = 1e-6
# θ starts of our multi-start (relative sds of donor and batch, lme4's term order).
MULTI_STARTS: tuple[tuple[float, float], ...] = ((1.0, 1.0), (0.1, 2.0), (2.0, 0.1), (0.01, 0.01), (3.0, 3.0))
# Subprocess time beyond the loops themselves: interpreter or R startup, reading the CSVs.
LOAD_ALLOWANCE_S = 600.0


# --- Workloads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """A batch workload: ``kind`` ``"lmm"`` (REML, Satterthwaite for condition) or ``"counts"``
    (``family``, offset log library size); ``runs``: our timed runs after the warm-up."""

    name: str
    kind: str
    n_genes: int
    quick_genes: int
    seed: int
    runs: int
    weighted: bool = False
    family: str = ""
    lme4_kind: str = ""


WORKLOADS: tuple[Workload, ...] = (
    Workload("genes_2k", "lmm", 2_000, 200, 20_240_614, runs=3, lme4_kind="lmer_refit"),
    Workload("genes_20k_weighted", "lmm", 20_000, 1_000, 20_240_615, runs=2, weighted=True, lme4_kind="lmer_weighted"),
    Workload("counts_2k_nb", "counts", 2_000, 100, 20_240_616, runs=3, family="negative_binomial", lme4_kind="glmer_nb"),
    Workload("counts_2k_poisson", "counts", 2_000, 100, 20_240_616, runs=3, family="poisson", lme4_kind="glmer_poisson"),
)


def genes_index(n_genes: int) -> pd.Index:
    return pd.Index([f"G{g:05d}" for g in range(n_genes)], name="gene")


def expression_workload(
    n_genes: int, n_donors: int, n_batches: int, drop: float, weighted: bool, seed: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    """Samples (each donor once per batch, a fraction ``drop`` of them left out at random;
    condition and age per donor, half the donors treated) and genes × samples log-expression:
    5 + effect·treated + 0.01·(age − 50) + donor and batch effects + noise. The gene-level
    sds vary: donor sd ~ Gamma(1, 0.5) and batch sd ~ Gamma(1, 0.3), exactly 0 for 10 % and
    20 % of the genes (singular fits); 20 % of the genes have a condition effect ~ N(0, 0.5).
    With ``weighted``, voom-like precision weights ~ Gamma(4, 0.25) per gene and sample, the
    noise sd 1/√w; else noise sd 1."""
    rng = np.random.default_rng(seed)
    donor = np.repeat(np.arange(n_donors), n_batches)
    batch = np.tile(np.arange(n_batches), n_donors)
    treated_donor = np.arange(n_donors) % 2 == 1
    age_donor = rng.normal(50.0, 10.0, n_donors).round(1)
    keep = np.sort(rng.choice(donor.size, int(round(donor.size * (1 - drop))), replace=False))
    donor, batch = donor[keep], batch[keep]
    samples = pd.DataFrame(
        {
            "condition": np.where(treated_donor[donor], "treated", "control"),
            "age": age_donor[donor],
            "donor": [f"D{d:02d}" for d in donor],
            "batch": [f"B{b:02d}" for b in batch],
        },
        index=pd.Index([f"S{i:04d}" for i in range(keep.size)], name="sample"),
    )
    n_samples = keep.size
    sd_donor = rng.gamma(1.0, 0.5, (n_genes, 1)) * (rng.random((n_genes, 1)) >= 0.1)
    sd_batch = rng.gamma(1.0, 0.3, (n_genes, 1)) * (rng.random((n_genes, 1)) >= 0.2)
    effect = rng.normal(0.0, 0.5, (n_genes, 1)) * (rng.random((n_genes, 1)) < 0.2)
    Y = (
        5.0
        + effect * treated_donor[donor]
        + 0.01 * (age_donor[donor] - 50.0)
        + sd_donor * rng.normal(size=(n_genes, n_donors))[:, donor]
        + sd_batch * rng.normal(size=(n_genes, n_batches))[:, batch]
    )
    W = rng.gamma(4.0, 0.25, (n_genes, n_samples)) if weighted else None
    noise = rng.normal(size=(n_genes, n_samples))
    Y += noise / np.sqrt(W) if W is not None else noise
    return samples, Y, W


def count_workload(n_genes: int, n_donors: int, per_donor: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Pseudobulk samples (``per_donor`` per donor, condition per donor, half treated) with
    library sizes ~ 2e6·LogNormal(0, 0.4), and negative binomial counts: log mean = log library
    size + base (~ N(−10, 1.5): mean counts from ~1 to thousands) + effect·treated (20 % of
    genes, ~ N(0, 0.5)) + donor effect (sd ~ Gamma(2, 0.15) per gene); size ~ Gamma(2, 5)."""
    rng = np.random.default_rng(seed)
    donor = np.repeat(np.arange(n_donors), per_donor)
    treated_donor = np.arange(n_donors) % 2 == 1
    library_size = np.round(2e6 * np.exp(rng.normal(0.0, 0.4, donor.size)))
    samples = pd.DataFrame(
        {
            "condition": np.where(treated_donor[donor], "treated", "control"),
            "donor": [f"D{d:02d}" for d in donor],
            "log_lib": np.log(library_size),
        },
        index=pd.Index([f"S{i:04d}" for i in range(donor.size)], name="sample"),
    )
    base = rng.normal(-10.0, 1.5, (n_genes, 1))
    effect = rng.normal(0.0, 0.5, (n_genes, 1)) * (rng.random((n_genes, 1)) < 0.2)
    sd_donor = rng.gamma(2.0, 0.15, (n_genes, 1))
    size = rng.gamma(2.0, 5.0, (n_genes, 1))
    mean = np.exp(
        np.log(library_size) + base + effect * treated_donor[donor] + sd_donor * rng.normal(size=(n_genes, n_donors))[:, donor]
    )
    counts = rng.negative_binomial(size, size / (size + mean)).astype(float)
    return samples, counts


def generate(workload: Workload, n_genes: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    if workload.kind == "counts":
        samples, counts = count_workload(n_genes, 40, 5, workload.seed)
        return samples, counts, None
    if workload.weighted:
        return expression_workload(n_genes, 50, 10, 0.0, True, workload.seed)
    return expression_workload(n_genes, 24, 10, 0.1, False, workload.seed)


@dataclass(frozen=True)
class Files:
    """A workload's files as users have them: samples.csv (sample ids first), genes × samples
    CSVs (gene ids first) of the responses and the weights, and .npy copies for the memory
    measurement."""

    samples: str
    expression: str
    weights: str | None
    expression_npy: str
    weights_npy: str | None


def write_files(directory: Path, samples: pd.DataFrame, Y: np.ndarray, W: np.ndarray | None, counts: bool) -> Files:
    directory.mkdir(parents=True, exist_ok=True)
    genes = genes_index(Y.shape[0])
    samples.to_csv(directory / "samples.csv")
    expression = pd.DataFrame(Y, index=genes, columns=samples.index)
    # Counts as integers; log-expression with the 17 significant digits of a float64's round trip.
    expression.to_csv(directory / "expression.csv", float_format="%.0f" if counts else "%.17g")
    np.save(directory / "expression.npy", Y)
    if W is not None:
        pd.DataFrame(W, index=genes, columns=samples.index).to_csv(directory / "weights.csv", float_format="%.17g")
        np.save(directory / "weights.npy", W)
    return Files(
        str(directory / "samples.csv"),
        str(directory / "expression.csv"),
        str(directory / "weights.csv") if W is not None else None,
        str(directory / "expression.npy"),
        str(directory / "weights.npy") if W is not None else None,
    )


# --- Workers: each tool in its own process -----------------------------------------------------


def read_samples(path: str) -> pd.DataFrame:
    """samples.csv as users read it: sample ids as the index, the factor columns as text."""
    return pd.read_csv(path, index_col=0, dtype={"sample": str, "condition": str, "donor": str, "batch": str})


def read_matrix(path: str) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0)


def _read(files: Files) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, float]:
    start = time.perf_counter()
    samples = read_samples(files.samples)
    Y = read_matrix(files.expression)
    W = read_matrix(files.weights) if files.weights else None
    return samples, Y, W, time.perf_counter() - start


def _call_ours(workload: Workload, samples: pd.DataFrame, Y: Any, W: Any, **extra: Any) -> Any:
    import mixedmodels as mm

    if workload.kind == "counts":
        return mm.glmer_many(COUNT_FORMULA, samples, Y, family=workload.family, offset="log_lib", coef=TESTED, n_jobs=-1, **extra)
    return mm.lmer_many(LMM_FORMULA, samples, Y, weights=W, coef=TESTED, n_jobs=-1, progress=False, **extra)


def _per_gene(result: Any, workload: Workload) -> dict[str, Any]:
    table = result.table
    loglik = table["loglik"].to_numpy()
    return {
        "genes": table["gene"].astype(str).tolist(),
        "criterion": (-2 * loglik).tolist(),
        "estimate": table["estimate"].tolist(),
        "p_value": table["p_value"].tolist(),
        "theta": result.theta.to_numpy().tolist(),
        "errors": int(table["error"].notna().sum()),
        "singular": int(table["singular"].sum()),
    }


def _median_runs(call: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times, result


def worker_ours(task: dict[str, Any]) -> dict[str, Any]:
    """Our batch call, timed ``runs`` times after a warm-up on the first 50 genes; with
    ``dask``, on a LocalCluster of two single-threaded worker processes."""
    workload = Workload(**task["workload"])
    files = Files(**task["files"])
    samples, Y, W, read_s = _read(files)
    extra: dict[str, Any] = {}
    client = None
    if task.get("dask"):
        from distributed import Client, LocalCluster

        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True))
        extra = {"backend": "dask", "client": client}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _call_ours(workload, samples, Y.iloc[:50], None if W is None else W.iloc[:50], **extra)
        times, result = _median_runs(lambda: _call_ours(workload, samples, Y, W, **extra), workload.runs)
    if client is not None:
        client.close()
    return {"times": times, "read_s": read_s, **_per_gene(result, workload)}


def _rss_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def worker_memory(task: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS of one of our calls on Y and W loaded from .npy (arrays, as users holding them in
    memory pass them): the RSS before the call and the peak during it (the kernel's high-water
    mark reset first on Linux; else ru_maxrss, a peak since process start)."""
    workload = Workload(**task["workload"])
    files = Files(**task["files"])
    samples = read_samples(files.samples)
    Y = np.load(files.expression_npy)
    W = np.load(files.weights_npy) if files.weights_npy else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _call_ours(workload, samples, Y[:50], None if W is None else W[:50])
    gc.collect()
    max_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    before_kib = _rss_kib("VmRSS") if reset else max_before_kib
    start = time.perf_counter()
    _call_ours(workload, samples, Y, W)
    elapsed = time.perf_counter() - start
    peak_kib = _rss_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "before_bytes": before_kib * 1024,
        "peak_bytes": peak_kib * 1024,
        "ru_maxrss_before_bytes": max_before_kib * 1024,
        "ru_maxrss_after_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "input_bytes": Y.size * 8 * (2 if W is not None else 1),
        "peak_was_reset": reset,
        "time_s": elapsed,
    }


def _peer_lmm_loop(samples: pd.DataFrame, Y: pd.DataFrame, W: pd.DataFrame | None, satterthwaite: bool) -> dict[str, Any]:
    """lme-python's per-gene loop: ``prepare_lmer`` once and ``fit(y)`` per gene (its fast path
    for a new response; a gene with missing values or its own weights is prepared on its own),
    then ``with_satterthwaite`` for the test of condition."""
    import lme_python

    formula = "y" + LMM_FORMULA
    data = samples.reset_index(drop=True)
    values = Y.to_numpy()
    weights = None if W is None else W.to_numpy()
    prepared = None if W is not None else lme_python.prepare_lmer(formula, data.assign(y=values[0]))
    criterion, estimate, p_value, theta = [], [], [], []
    for g in range(values.shape[0]):
        y = values[g]
        observed = np.isfinite(y)
        gene_data = data.assign(y=y)
        if weights is not None or not observed.all():
            gene_data = gene_data[observed]
            gene_weights = None if weights is None else list(weights[g][observed] / weights[g].mean())
            fit = lme_python.prepare_lmer(formula, gene_data, weights=gene_weights).fit(None, True)
        else:
            assert prepared is not None
            fit = prepared.fit(y.tolist(), True)
        position = (fit.fixed_names or []).index("conditiontreated")
        criterion.append(fit.reml_criterion)
        estimate.append(fit.coefficients[position])
        theta.append(fit.theta)
        if satterthwaite:
            fit.with_satterthwaite(gene_data)
            p_value.append((fit.satterthwaite_p_values or [math.nan] * (position + 1))[position])
    return {"criterion": criterion, "estimate": estimate, "p_value": p_value, "theta": theta}


def _peer_count_loop(samples: pd.DataFrame, Y: pd.DataFrame) -> dict[str, Any]:
    """lme-python's Poisson loop: ``prepare_glmer`` once, ``fit(y)`` per gene, Wald z-test."""
    import lme_python

    data = samples.reset_index(drop=True)
    values = Y.to_numpy()
    prepared = lme_python.prepare_glmer("count" + COUNT_FORMULA + " + offset(log_lib)", data.assign(count=values[0]), "poisson", 1)
    estimate, p_value, theta, criterion = [], [], [], []
    for g in range(values.shape[0]):
        fit = prepared.fit(values[g].tolist())
        position = (fit.fixed_names or []).index("conditiontreated")
        z = fit.coefficients[position] / (fit.beta_se or [])[position]
        estimate.append(fit.coefficients[position])
        p_value.append(math.erfc(abs(z) / math.sqrt(2)))
        theta.append(fit.theta)
        criterion.append(math.nan)
    return {"criterion": criterion, "estimate": estimate, "p_value": p_value, "theta": theta}


def worker_peer(task: dict[str, Any]) -> dict[str, Any]:
    """lme-python's loop, timed ``runs`` times after a warm-up on the first 20 genes; for the LMMs
    also once without the Satterthwaite tests (the fits alone)."""
    workload = Workload(**task["workload"])
    files = Files(**task["files"])
    samples, Y, W, read_s = _read(files)
    if workload.kind == "counts":
        if workload.family != "poisson":
            raise NotImplementedError(f"lme-python {importlib.metadata.version('lme-python')} has no negative binomial family")

        def loop(rows: slice) -> dict[str, Any]:
            return _peer_count_loop(samples, Y.iloc[rows])

    else:

        def loop(rows: slice) -> dict[str, Any]:
            return _peer_lmm_loop(samples, Y.iloc[rows], None if W is None else W.iloc[rows], True)

    loop(slice(0, 20))
    runs = 1 if task.get("single_run") else workload.runs
    times, result = _median_runs(lambda: loop(slice(None)), runs)
    fits_only_s = None
    if workload.kind == "lmm":
        start = time.perf_counter()
        _peer_lmm_loop(samples, Y, W, False)
        fits_only_s = time.perf_counter() - start
    return {"times": times, "read_s": read_s, "fits_only_s": fits_only_s, "genes": Y.index.astype(str).tolist(), **result}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ours": worker_ours,
    "memory": worker_memory,
    "peer": worker_peer,
}


def run_worker(task_json: str) -> None:
    task = json.loads(task_json)
    outcome = WORKERS[task["kind"]](task)
    Path(task["out"]).write_text(json.dumps(outcome))


# --- Driver ------------------------------------------------------------------------------------


@dataclass
class Timing:
    """A tool's time on a workload (``per_gene_s`` over ``n_timed`` genes; extrapolated to all
    genes when the loop ran out of budget), its per-gene results, or why there is none."""

    total_s: float | None = None
    per_gene_s: float | None = None
    n_timed: int = 0
    extrapolated: bool = False
    result: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    notes: list[str] = field(default_factory=list)


def _subprocess_json(command: list[str], out: Path, deadline_s: float) -> dict[str, Any] | str:
    """The JSON the worker wrote, or why there is none."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=deadline_s)
    except subprocess.TimeoutExpired:
        return f"timeout after {deadline_s:.0f} s"
    if completed.returncode != 0 or not out.exists():
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {completed.returncode}"
    return dict(json.loads(out.read_text()))


def run_python(kind: str, workload: Workload, files: Files, scratch: Path, **options: Any) -> dict[str, Any] | str:
    out = scratch / f"{workload.name}_{kind}{'_dask' if options.get('dask') else ''}.json"
    task = {"kind": kind, "workload": asdict(workload), "files": asdict(files), "out": str(out), **options}
    # The workers import the mixedmodels this process imported (e.g. another worktree's, by PYTHONPATH).
    import mixedmodels

    package_root = str(Path(mixedmodels.__file__).resolve().parent.parent)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(task)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=LOAD_ALLOWANCE_S * 6, env=environment)
    except subprocess.TimeoutExpired:
        return "timeout"
    if completed.returncode != 0 or not out.exists():
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {completed.returncode}"
    return dict(json.loads(out.read_text()))


def timing_from_runs(outcome: dict[str, Any] | str, n_genes: int) -> Timing:
    if isinstance(outcome, str):
        return Timing(failure="n/a" if "NotImplementedError" in outcome else "error", notes=[outcome])
    total = statistics.median(outcome["times"])
    runs = len(outcome["times"])
    notes = [f"median of {runs} run(s); reading the CSVs took {outcome['read_s']:.2f} s (not timed)"]
    return Timing(total, total / n_genes, n_genes, False, outcome, notes=notes)


def time_lme4(workload: Workload, files: Files, scratch: Path, budget_s: float, stuck: bool) -> Timing:
    out = scratch / f"{workload.name}_lme4.json"
    command = [
        "Rscript",
        str(R_WORKER),
        files.samples,
        files.expression,
        files.weights or "-",
        workload.lme4_kind,
        str(budget_s),
        str(out),
        "TRUE" if stuck else "FALSE",
    ]
    outcome = _subprocess_json(command, out, budget_s * 2 + LOAD_ALLOWANCE_S)
    if isinstance(outcome, str):
        return Timing(failure="error", notes=[outcome])
    n_fitted, n_genes = outcome["n_fitted"], outcome["n_genes"]
    per_gene = outcome["loop_s"] / n_fitted
    extrapolated = n_fitted < n_genes
    failed = sum(error is not None for error in outcome["errors"])
    notes = [f"reading the CSVs took {outcome['read_s']:.2f} s (not timed)"]
    if extrapolated:
        notes.insert(0, f"extrapolated from {n_fitted:,} genes ({outcome['loop_s']:.0f} s, the --r-budget)")
    if failed:
        notes.append(f"{failed} gene(s) failed: {next(e for e in outcome['errors'] if e is not None)}")
    return Timing(per_gene * n_genes, per_gene, n_fitted, extrapolated, outcome, notes=notes)


def multi_start_best(files: Files) -> tuple[np.ndarray, list[list[float]], list[tuple[float, ...]]]:
    """For every gene, the lowest REML criterion of ``mm.lmer`` over the θ starts of
    ``MULTI_STARTS``, its θ and the start it came from (a loop over genes: this is the check,
    not the library)."""
    import mixedmodels as mm

    samples = read_samples(files.samples).reset_index(drop=True)
    Y = read_matrix(files.expression).to_numpy()
    best = np.full(Y.shape[0], np.inf)
    best_theta: list[list[float]] = [[]] * Y.shape[0]
    best_start: list[tuple[float, ...]] = [()] * Y.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g in range(Y.shape[0]):
            data = samples.assign(y=Y[g])
            for start in MULTI_STARTS:
                fit = mm.lmer("y " + LMM_FORMULA, data, start={"theta": list(start)})
                if fit.REMLcrit is not None and fit.REMLcrit < best[g]:
                    best[g], best_theta[g], best_start[g] = fit.REMLcrit, list(fit.theta), start
    return best, best_theta, best_start


@dataclass
class Stuck:
    """Per tool: genes whose REML log-likelihood is more than ``STUCK_LOGLIK`` below the best,
    the largest shortfall, and a few examples."""

    count: int
    compared: int
    largest: float
    examples: list[str]


def stuck_genes(criterion: np.ndarray, best: np.ndarray, genes: list[str], describe: Callable[[int], str]) -> Stuck:
    n = criterion.size
    shortfall = (np.asarray(criterion, dtype=float) - best[:n]) / 2  # in log-likelihood
    stuck = np.flatnonzero(shortfall > STUCK_LOGLIK)
    order = stuck[np.argsort(-shortfall[stuck])]
    finite = shortfall[np.isfinite(shortfall)]
    return Stuck(
        int(stuck.size),
        int(np.isfinite(shortfall).sum()),
        float(finite.max()) if finite.size else math.nan,
        [f"{genes[g]}: {describe(g)}, log-lik {shortfall[g]:.2e} below" for g in order[:5]],
    )


# --- Report ------------------------------------------------------------------------------------


@dataclass
class Row:
    workload: Workload
    n_genes: int
    n_samples: int
    tool: str
    timing: Timing
    stuck: Stuck | None = None


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}"


def render(rows: list[Row], environment: list[str], memory: list[str], stuck_text: list[str], notes: list[str]) -> str:
    lines = [
        "# mixedmodels batch benchmark (issue 14)",
        "",
        *environment,
        "",
        "Each tool runs in its own process and reads the same CSV files (samples.csv, genes × samples",
        "expression and weights) itself, untimed; timed: the user's batch call or per-gene loop, Satterthwaite",
        "p for condition included (Wald z for counts). Ratios: a tool's time over ours (above 1: ours faster).",
        f"Stuck genes: REML log-likelihood more than {STUCK_LOGLIK:g} below the best that lme4's loop or our",
        f"multi-start (`mm.lmer(..., start=θ)` from {len(MULTI_STARTS)} starts) finds, genes compared in parentheses.",
        "",
        "| workload | tool | time (s) | per gene (ms) | lme4 / ours | lme-python / ours | stuck genes | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    by_workload: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_workload.setdefault(row.workload.name, {})[row.tool] = row
    for row in rows:
        same = by_workload[row.workload.name]
        ours = same.get("mixedmodels")
        timing = row.timing
        time_cell = (timing.failure or "—") if timing.total_s is None else _seconds(timing.total_s)
        per_gene = "—" if timing.per_gene_s is None else f"{timing.per_gene_s * 1e3:.3g}"
        ratios = []
        for peer in ("lme4", "lme-python"):
            other = same.get(peer)
            if row.tool == "mixedmodels" and other and other.timing.total_s and ours and ours.timing.total_s:
                ratios.append(f"{other.timing.total_s / ours.timing.total_s:.3g}")
            else:
                ratios.append("")
        stuck = "" if row.stuck is None else f"{row.stuck.count} ({row.stuck.compared:,})"
        row_notes = list(timing.notes)
        if row.tool != "mixedmodels" and ours and ours.timing.result and timing.result:
            row_notes.append(agreement(timing.result, ours.timing.result))
        if row.tool.startswith("mixedmodels, Dask") and ours and ours.timing.total_s and timing.total_s:
            row_notes.append(f"Dask / local: {timing.total_s / ours.timing.total_s:.3g} (target ≤ 1.5)")
        workload_cell = f"{row.workload.name} ({row.n_genes:,} × {row.n_samples})"
        lines.append(
            f"| {workload_cell} | {row.tool} | {time_cell} | {per_gene} | {ratios[0]} | {ratios[1]} | {stuck} | {'; '.join(row_notes)} |"
        )
    for section, body in (("Memory", memory), ("Stuck genes", stuck_text), ("Notes", [f"- {note}" for note in notes])):
        if body:
            lines += ["", f"## {section}", "", *body]
    return "\n".join(lines) + "\n"


def agreement(result: dict[str, Any], ours: dict[str, Any]) -> str:
    """How far a tool's condition estimates and p-values are from ours, over the genes it fitted."""
    n = len(result["estimate"])
    estimate = np.array([math.nan if v is None else v for v in result["estimate"]], dtype=float)
    p_value = np.array([math.nan if v is None else v for v in result["p_value"]], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_estimate = np.abs(estimate - np.asarray(ours["estimate"][:n], dtype=float))
        # p-values below 1e-300 count as 1e-300 (a tool may round a tiny p to 0)
        d_log_p = np.abs(np.log10(np.maximum(p_value, 1e-300)) - np.log10(np.maximum(np.asarray(ours["p_value"][:n], dtype=float), 1e-300)))
    if not np.isfinite(d_estimate).any():
        return "no estimates to compare"
    text = f"vs ours: condition's estimate largest Δ {np.nanmax(d_estimate):.1e}"
    if np.isfinite(d_log_p).any():
        text += f", p median / largest Δ log10 p {np.nanmedian(d_log_p):.1e} / {np.nanmax(d_log_p):.1e}"
    return text + f" ({int(np.isfinite(d_estimate).sum()):,} genes)"


def environment_lines(r: str | None, peer: str | None) -> list[str]:
    import mixedmodels

    revision = subprocess.run(["git", "-C", str(BENCH_DIR), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"- mixedmodels {importlib.metadata.version('mixedmodels')} (git {revision or 'unknown'}, {mixedmodels.__file__})",
        f"- Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}",
        f"- lme4: {r or 'not run'}",
        f"- lme-python: {peer or 'not run'}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- load average (1, 5, 15 min) at the start: {load}",
    ]


def r_versions() -> str | None:
    if shutil.which("Rscript") is None:
        return None
    probe = subprocess.run(
        [
            "Rscript",
            "-e",
            'cat(R.version.string, ", lme4 ", as.character(packageVersion("lme4")), '
            '", lmerTest ", as.character(packageVersion("lmerTest")), sep = "")',
        ],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def dask_available() -> str | None:
    """Why there is no Dask row, or None when ``lmer_many`` takes ``backend="dask"``."""
    import inspect

    import mixedmodels as mm

    if importlib.util.find_spec("distributed") is None:
        return "distributed is not installed"
    parameters = inspect.signature(mm.lmer_many).parameters
    if "backend" not in parameters or "client" not in parameters:
        return "mm.lmer_many has no backend=/client= parameters (the Dask backend is not in this tree)"
    return None


# --- Main --------------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [workload.name for workload in WORKLOADS]
    parser.add_argument("--only", help=f"comma-separated workloads among: {', '.join(names)}")
    parser.add_argument("--no-r", action="store_true", help="do not run lme4")
    parser.add_argument("--no-peer", action="store_true", help="do not run lme-python")
    parser.add_argument("--r-budget", type=float, default=300.0, help="seconds of lme4 loop per workload before extrapolating (default 300)")
    parser.add_argument("--quick", action="store_true", help="smaller gene counts, for a smoke run")
    parser.add_argument("--stuck", action=argparse.BooleanOptionalAction, default=True, help="count stuck genes on genes_2k (default on)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.only:
        unknown = set(arguments.only.split(",")) - set(names)
        if unknown:
            parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    return arguments


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    if arguments.worker:
        run_worker(arguments.worker)
        return
    selected = [w for w in WORKLOADS if not arguments.only or w.name in arguments.only.split(",")]
    r = None if arguments.no_r else r_versions()
    peer = None if arguments.no_peer or importlib.util.find_spec("lme_python") is None else importlib.metadata.version("lme-python")
    environment = environment_lines(r, peer)
    _log("\n".join(environment))
    no_dask = dask_available()
    rows: list[Row] = []
    memory: list[str] = []
    stuck_text: list[str] = []
    notes: list[str] = []
    if no_dask:
        notes.append(f"No Dask row: {no_dask}.")
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as scratch_name:
        scratch = Path(scratch_name)
        files_of: dict[int, Files] = {}
        for workload in selected:
            n_genes = workload.quick_genes if arguments.quick else workload.n_genes
            _log(f"{workload.name}: writing {n_genes:,} genes")
            samples, Y, W = generate(workload, n_genes)
            # The Poisson row fits the negative binomial workload's counts: the same files.
            if workload.seed not in files_of:
                files_of[workload.seed] = write_files(scratch / workload.name, samples, Y, W, workload.kind == "counts")
            files = files_of[workload.seed]
            del Y, W

            def add(tool: str, timing: Timing, _workload: Workload = workload, _samples: int = len(samples), _genes: int = n_genes) -> Row:
                row = Row(_workload, _genes, _samples, tool, timing)
                rows.append(row)
                return row

            _log(f"{workload.name}: mixedmodels")
            ours = add("mixedmodels", timing_from_runs(run_python("ours", workload, files, scratch), n_genes))
            if workload.weighted:
                if no_dask is None:
                    _log(f"{workload.name}: mixedmodels on Dask")
                    add("mixedmodels, Dask LocalCluster 2×1 thread", timing_from_runs(run_python("ours", workload, files, scratch, dask=True), n_genes))
                _log(f"{workload.name}: peak memory")
                memory += measure_memory(workload, files, scratch)
            lme4 = peer_row = None
            if r:
                _log(f"{workload.name}: lme4 loop")
                lme4 = add("lme4", time_lme4(workload, files, scratch, arguments.r_budget, arguments.stuck and workload.name == "genes_2k"))
            if peer:
                _log(f"{workload.name}: lme-python loop")
                outcome = run_python("peer", workload, files, scratch, single_run=workload.weighted)
                peer_row = add("lme-python", timing_from_runs(outcome, n_genes))
                if isinstance(outcome, dict) and outcome.get("fits_only_s") is not None:
                    peer_row.timing.notes.append(f"the fits alone, without Satterthwaite: {outcome['fits_only_s']:.3g} s")
            if workload.name == "genes_2k" and arguments.stuck:
                _log(f"{workload.name}: multi-start of every gene (stuck genes)")
                stuck_text += count_stuck(files, ours, lme4, peer_row)
    if r and any(workload.lme4_kind == "lmer_refit" for workload in selected):
        notes.append(
            "lme4's refit loop: refit() starts each gene from the previous gene's θ; lmerTest re-evaluates the "
            "model's call for its deviance function, so the loop puts each gene's response into the data frame first."
        )
    environment.append(f"- load average (1, 5, 15 min) at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    report = render(rows, environment, memory, stuck_text, notes)
    print(report)
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(report)


def measure_memory(workload: Workload, files: Files, scratch: Path) -> list[str]:
    outcome = run_python("memory", workload, files, scratch)
    if isinstance(outcome, str):
        return [f"- memory measurement failed: {outcome}"]
    mb = 1e6
    growth = outcome["peak_bytes"] - outcome["before_bytes"]
    basis = "kernel high-water mark reset before the call" if outcome["peak_was_reset"] else "ru_maxrss, a peak since process start"
    return [
        f"- {workload.name}: Y and W as float64: {outcome['input_bytes'] / mb:,.0f} MB (loaded from .npy, passed as arrays)",
        f"- RSS before the call {outcome['before_bytes'] / mb:,.0f} MB, peak during it {outcome['peak_bytes'] / mb:,.0f} MB ({basis})",
        f"- peak growth during the call: {growth / mb:,.0f} MB = {growth / outcome['input_bytes']:.2f}× Y and W (target ≤ 2×); "
        f"total peak {outcome['peak_bytes'] / mb:,.0f} MB = {outcome['peak_bytes'] / outcome['input_bytes']:.2f}× Y and W",
        f"- ru_maxrss before / after: {outcome['ru_maxrss_before_bytes'] / mb:,.0f} / {outcome['ru_maxrss_after_bytes'] / mb:,.0f} MB; "
        f"that call took {outcome['time_s']:.1f} s",
    ]


def count_stuck(files: Files, ours: Row, lme4: Row | None, peer: Row | None) -> list[str]:
    best, best_theta, best_start = multi_start_best(files)
    genes = list(genes_index(best.size).astype(str))
    if lme4 is not None and lme4.timing.result:
        at_theta = np.array([math.nan if v is None else v for v in lme4.timing.result["criterion_at_theta"]], dtype=float)
        best[: at_theta.size] = np.fmin(best[: at_theta.size], at_theta)
    lines = []
    for row, key in ((ours, "criterion"), (lme4, "criterion_at_theta"), (peer, "criterion")):
        if row is None or not row.timing.result:
            continue
        criterion = np.array([math.nan if v is None else v for v in row.timing.result[key]], dtype=float)
        thetas = row.timing.result["theta"]

        def describe(g: int, _thetas: list[Any] = thetas) -> str:
            return (
                f"θ = ({', '.join(f'{t:.4g}' for t in _thetas[g])}), best θ = ({', '.join(f'{t:.4g}' for t in best_theta[g])}) "
                f"from start {best_start[g]}"
            )

        row.stuck = stuck_genes(criterion, best, genes, describe)
        lines.append(
            f"- {row.tool}: {row.stuck.count} of {row.stuck.compared:,} genes stuck; largest shortfall {row.stuck.largest:.2e} "
            "in log-likelihood (negative: better than the best)"
        )
        lines += [f"  - {example}" for example in row.stuck.examples]
    if lme4 is not None and lme4.timing.result:
        reported = np.array([math.nan if v is None else v for v in lme4.timing.result["criterion"]], dtype=float)
        at_theta = np.array([math.nan if v is None else v for v in lme4.timing.result["criterion_at_theta"]], dtype=float)
        differing = int(np.sum(np.abs(reported - at_theta) > 2 * STUCK_LOGLIK))
        lines.append(
            f"- lme4: REMLcrit() of the loop's fits differs from lme4's deviance function at the returned θ by more than "
            f"{2 * STUCK_LOGLIK:g} for {differing} genes (up to {np.nanmax(np.abs(reported - at_theta)):.3g}); stuck genes use the latter"
        )
    return lines


if __name__ == "__main__":
    main()
