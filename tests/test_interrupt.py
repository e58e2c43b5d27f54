"""Ctrl-C during a long fit: the exception the signal handler raises (KeyboardInterrupt by default)
arrives within a second of the signal, and the same model then fits as if nothing had happened.
Both ways the core runs a job are covered: a large linear mixed model runs on the core's thread
pool while the calling thread waits, a GLMM small enough for no parallel loops on the calling
thread itself."""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

pytestmark = pytest.mark.skipif(os.name == "nt", reason="sends SIGINT with os.kill")

# Ctrl-C must stop the fit within this many seconds of the signal.
RESPONSE_LIMIT = 1.0


class Stop(Exception):
    """What the custom signal handler raises."""


Result = TypeVar("Result", mm.LmerResult, mm.GlmerResult)


class Timed(Generic[Result]):
    """A fit and the seconds it took."""

    def __init__(self, fit: Callable[[], Result]) -> None:
        started = time.perf_counter()
        self.result: Result = fit()
        self.seconds = time.perf_counter() - started

    def signal_delay(self) -> float:
        """When to send the signal into a fit as long as this one: well before its end."""
        return min(0.3, self.seconds / 4)


def seconds_until_raised(call: Callable[[], object], delay: float, expected: type[BaseException]) -> float:
    """Run ``call`` while a timer sends SIGINT to this process after ``delay`` seconds; the seconds
    from the signal until ``call`` raised ``expected``."""
    sent: list[float] = []

    def send() -> None:
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(delay, send)
    timer.start()
    try:
        with pytest.raises(expected):
            call()
        return time.perf_counter() - sent[0]
    finally:
        timer.cancel()
        timer.join()


Crossed = tuple[pd.DataFrame, Timed[mm.LmerResult]]


@pytest.fixture
def raising_stop() -> Iterator[None]:
    """SIGINT raises Stop instead of KeyboardInterrupt."""

    def handler(signum: int, frame: object) -> None:
        raise Stop

    previous = signal.signal(signal.SIGINT, handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="module")
def crossed() -> Crossed:
    """50,000 rows with two crossed factors of 2,000 and 1,000 levels: the fit runs on the pool."""
    rng = np.random.default_rng(20240611)
    n, n_a, n_b = 50_000, 2_000, 1_000
    a, b, x = rng.integers(0, n_a, n), rng.integers(0, n_b, n), rng.normal(size=n)
    y = 1 + 0.5 * x + 0.5 * rng.normal(size=n_a)[a] + 0.3 * rng.normal(size=n_b)[b] + rng.normal(size=n)
    data = pd.DataFrame({"y": y, "x": x, "a": a, "b": b})
    return data, Timed(lambda: mm.lmer("y ~ x + (1 | a) + (1 | b)", data))


@pytest.fixture(scope="module")
def slopes() -> Timed[mm.GlmerResult]:
    """2,000 Bernoulli rows with three correlated random effects: below the core's parallel
    thresholds, so the fit runs on the calling thread; its Hessian takes most of the time."""
    rng = np.random.default_rng(20240612)
    n, n_groups = 2_000, 80
    g, x = rng.integers(0, n_groups, n), rng.normal(size=(n, 4))
    effects = rng.normal(scale=0.5, size=(n_groups, 3))
    eta = -0.3 + x @ [0.5, -0.3, 0.2, 0.1] + (effects[g] * np.column_stack([np.ones(n), x[:, :2]])).sum(axis=1)
    data = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "g": g})
    data[["x1", "x2", "x3", "x4"]] = x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ConvergenceWarning)
        return Timed(lambda: mm.glmer("y ~ x1 + x2 + x3 + x4 + (1 + x1 + x2 | g)", data, family="binomial"))


def same_lmm_fit(one: mm.LmerResult, two: mm.LmerResult) -> bool:
    return one.llf == two.llf and list(one.theta) == list(two.theta) and one.params.equals(two.params)


def test_ctrl_c_stops_a_fit_on_the_pool_and_the_model_refits(crossed: Crossed) -> None:
    data, timed = crossed
    m = timed.result

    def refit() -> mm.LmerResult:
        return m.refit(data["y"])

    assert seconds_until_raised(refit, timed.signal_delay(), KeyboardInterrupt) < RESPONSE_LIMIT
    assert same_lmm_fit(refit(), m)


def test_the_signal_handlers_own_exception_is_raised(crossed: Crossed, raising_stop: None) -> None:
    data, timed = crossed
    assert seconds_until_raised(lambda: timed.result.refit(data["y"]), timed.signal_delay(), Stop) < RESPONSE_LIMIT


def test_ctrl_c_stops_a_fit_on_the_calling_thread_and_the_model_refits(slopes: Timed[mm.GlmerResult]) -> None:
    g = slopes.result
    core = g.model._fitting_core
    assert seconds_until_raised(lambda: core.fit(1), slopes.signal_delay(), KeyboardInterrupt) < RESPONSE_LIMIT
    # The interrupted fit left the starting point of the earlier fit's stage two in place...
    assert core.objective(*g.model.fitting_parameters(g.theta, g._beta), 1) == pytest.approx(g._objective, rel=1e-12)
    # ...and a new fit is the earlier one again.
    fit = core.fit(1)
    assert fit.objective == g._objective
    assert np.array_equal(g.model.user_theta(np.asarray(fit.theta)), g.theta) and np.array_equal(g.model.user_beta(np.asarray(fit.beta)), g._beta)


Genes = tuple[pd.DataFrame, np.ndarray, Timed[mm.BatchResult]]


@pytest.fixture(scope="module")
def genes() -> Genes:
    """4,000 genes × 200 samples with crossed donors and batches: a batch fit of about a second,
    in chunks of 256 genes."""
    rng = np.random.default_rng(20240613)
    n, n_genes = 200, 4_000
    donor, batch = rng.integers(0, 20, n), rng.integers(0, 8, n)
    samples = pd.DataFrame({"condition": np.where(donor % 2, "treat", "ctrl"), "donor": donor.astype(str), "batch": batch.astype(str)})
    Y = rng.normal(size=(n_genes, 20))[:, donor] + rng.normal(scale=0.5, size=(n_genes, 8))[:, batch] + rng.normal(size=(n_genes, n))
    return samples, Y, Timed(lambda: mm.lmer_many("~ condition + (1 | donor) + (1 | batch)", samples, Y, chunk_size=256, progress=False))


@pytest.mark.parametrize("progress", [False, True])
def test_ctrl_c_stops_a_batch_fit_and_leaves_nothing_behind(genes: Genes, progress: bool) -> None:
    samples, Y, timed = genes
    if progress:
        tqdm = pytest.importorskip("tqdm")
    threads = threading.active_count()

    def batch() -> mm.BatchResult:
        return mm.lmer_many("~ condition + (1 | donor) + (1 | batch)", samples, Y, chunk_size=256, progress=progress)

    assert seconds_until_raised(batch, timed.signal_delay(), KeyboardInterrupt) < RESPONSE_LIMIT
    if progress:
        assert not tqdm.tqdm._instances  # the bar was closed
    assert threading.active_count() <= threads + progress  # tqdm's monitor thread may have started
    again = mm.lmer_many("~ condition + (1 | donor) + (1 | batch)", samples, Y[:300], chunk_size=256, progress=False)
    # The same genes' numbers (p_adj aside: it adjusts over the genes of the batch).
    pd.testing.assert_frame_equal(again.table.drop(columns="p_adj"), timed.result.table.iloc[:600].drop(columns="p_adj"), check_exact=True)
    pd.testing.assert_frame_equal(again.theta, timed.result.theta.iloc[:300], check_exact=True)
