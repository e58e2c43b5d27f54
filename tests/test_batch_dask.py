"""Batch fits on Dask (backend="dask", client=): a real LocalCluster of two single-threaded worker
processes, started once for the module. The workers run the same core on the same genes, so every
number must equal the local backend's exactly (the numbers themselves are checked against lme4 in
test_batch.py and test_batch_counts.py), for any chunking; worker errors arrive as their own type;
Ctrl-C cancels the chunks not yet done."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import assert_same_results
from extras import require
from mixedmodels.batch import chunks
from mixedmodels.batch.chunks import Backend, fit_in_chunks
from mixedmodels.batch.linear import LinearChunkFitter
from mixedmodels.batch.responses import AnnDataResponses, InMemoryResponses
from mixedmodels.models.internal_parameterisation import InternalParameterisation

FORMULA = "~ condition + age + (1 | donor) + (1 | batch)"
COUNT_FORMULA = "~ condition + (1 | donor)"
# Ctrl-C must stop a fit within this many seconds of the signal (as in test_interrupt.py).
RESPONSE_LIMIT = 1.0


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    distributed = require("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.mark.parametrize("REML", [True, False])
def test_lmer_many_on_dask_is_the_local_fit(client: Any, samples: pd.DataFrame, expression: pd.DataFrame, weights: pd.DataFrame, REML: bool) -> None:
    assert sum(client.nthreads().values()) == 2
    for w in (weights, None):
        local = mm.lmer_many(FORMULA, samples, expression, weights=w, REML=REML)
        assert local.table["error"].notna().any() and (local.table["n_obs"] < 120).any()  # the edge genes are in
        for chunk_size in (None, 1, 7, 60):
            assert_same_results(mm.lmer_many(FORMULA, samples, expression, weights=w, REML=REML, client=client, chunk_size=chunk_size), local)
    local = mm.lmer_many(FORMULA, samples, expression, REML=REML, ddf="asymptotic", coef="age")
    assert_same_results(mm.lmer_many(FORMULA, samples, expression, REML=REML, ddf="asymptotic", coef="age", backend="dask", client=client, chunk_size=9), local)


@pytest.mark.parametrize("family", ["poisson", "negative_binomial"])
def test_glmer_many_on_dask_is_the_local_fit(client: Any, samples: pd.DataFrame, counts: pd.DataFrame, family: str) -> None:
    offset = np.log(samples["libsize"])
    for compat in (None, "lme4"):
        local = mm.glmer_many(COUNT_FORMULA, samples, counts, family=family, offset=offset, compat=compat)
        assert local.table["error"].notna().any()
        for chunk_size in (None, 6):
            on_dask = mm.glmer_many(COUNT_FORMULA, samples, counts, family=family, offset=offset, compat=compat, client=client, chunk_size=chunk_size)
            assert_same_results(on_dask, local)


def test_without_a_client_a_local_cluster_is_started_for_the_fit(samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    distributed = require("distributed")
    genes = expression.iloc[:6]
    on_dask = mm.lmer_many(FORMULA, samples, genes, backend="dask", n_jobs=1)
    assert_same_results(on_dask, mm.lmer_many(FORMULA, samples, genes))
    with pytest.raises(ValueError, match="No clients found"):
        distributed.default_client()  # the fit's client was not left behind as the default


def test_bad_backends_are_refused(samples: pd.DataFrame, expression: pd.DataFrame, counts: pd.DataFrame) -> None:
    genes = expression.iloc[:2]
    with pytest.raises(mm.SpecificationError, match="backend"):
        mm.lmer_many(FORMULA, samples, genes, backend="ray")
    with pytest.raises(mm.SpecificationError, match="backend"):
        mm.glmer_many(COUNT_FORMULA, samples, counts.iloc[:2], backend="Dask")
    not_a_client = object()
    with pytest.raises(mm.SpecificationError, match="client="):
        mm.lmer_many(FORMULA, samples, genes, backend="local", client=not_a_client)
    with pytest.raises(mm.SpecificationError, match="n_jobs"):
        mm.lmer_many(FORMULA, samples, genes, client=not_a_client, n_jobs=2)


def test_without_distributed_the_error_names_the_extra(samples: pd.DataFrame, expression: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)  # import distributed raises ImportError
    with pytest.raises(ImportError, match=r"pip install mixedmodels\[dask\]"):
        mm.lmer_many(FORMULA, samples, expression.iloc[:2], backend="dask")


def test_a_workers_error_arrives_as_its_own_type(client: Any, samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    # Responses with one sample too few for the design: the core refuses the chunk on the worker.
    design = mm.LinearMixedModel.from_formula("y " + FORMULA, samples.assign(y=expression.iloc[0])).design
    fit = LinearChunkFitter(design.x, mm.LinearMixedModel._core_terms(design), InternalParameterisation.of(design), True, "satterthwaite", np.eye(3)[[1]])
    source = InMemoryResponses(expression.index[:4], expression.to_numpy()[:4, 1:], None)
    with pytest.raises(mm.DataError, match="samples"):
        fit_in_chunks(fit, source, Backend("dask", 0, client), chunk_size=1, progress=False, description="genes")


class Recorder:
    """A progress bar and a source of responses that log what happens: chunks read, genes done."""

    def __init__(self, source: InMemoryResponses) -> None:
        self.source, self.events = source, list[tuple[str, int]]()

    @property
    def genes(self) -> pd.Index:
        return self.source.genes

    def chunk(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        self.events.append(("read", stop - start))
        return self.source.chunk(start, stop)

    def update(self, n: int) -> None:
        self.events.append(("done", n))

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_at_most_two_chunks_per_worker_thread_are_in_flight(
    client: Any, samples: pd.DataFrame, expression: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    design = mm.LinearMixedModel.from_formula("y " + FORMULA, samples.assign(y=expression.iloc[0])).design
    fit = LinearChunkFitter(design.x, mm.LinearMixedModel._core_terms(design), InternalParameterisation.of(design), True, "asymptotic", np.eye(3)[[1]])
    recorder = Recorder(InMemoryResponses(expression.index, expression.to_numpy(), None))
    monkeypatch.setattr(chunks, "progress_bar", lambda progress, total, description: recorder)
    columns = fit_in_chunks(fit, recorder, Backend("dask", 0, client), chunk_size=3, progress=False, description="genes")
    in_flight = np.cumsum([1 if event == "read" else -1 for event, _ in recorder.events])
    assert in_flight.max() == 4 and in_flight[-1] == 0  # two workers of one thread
    assert sum(n for event, n in recorder.events if event == "done") == 60 and columns["beta"].shape == (60, 3)


def test_a_sparse_layer_is_read_a_chunk_at_a_time_as_here(client: Any, samples: pd.DataFrame, expression: pd.DataFrame) -> None:
    # An AnnData's parts (anndata itself is optional): samples × genes, sparse, one sample left out.
    from scipy import sparse

    layer = sparse.csr_matrix(np.where(expression.T.to_numpy() > 9, expression.T.to_numpy(), 0.0))
    adata = SimpleNamespace(X=layer, layers={}, var_names=expression.index, n_obs=120, n_vars=60)
    design = mm.LinearMixedModel.from_formula("y " + FORMULA, samples.iloc[1:].assign(y=expression.iloc[0, 1:])).design
    fit = LinearChunkFitter(design.x, mm.LinearMixedModel._core_terms(design), InternalParameterisation.of(design), True, "satterthwaite", np.eye(3)[[1, 2]])
    source = AnnDataResponses(adata, None, None, kept=np.arange(1, 120))
    local = fit_in_chunks(fit, source, Backend("local", 0), chunk_size=None, progress=False, description="genes")
    on_dask = fit_in_chunks(fit, source, Backend("dask", 0, client), chunk_size=8, progress=False, description="genes")
    assert local.keys() == on_dask.keys() and pd.isna(local["errors"]).sum() < 60
    for key in local:
        np.testing.assert_array_equal(on_dask[key], local[key], err_msg=key)


@pytest.mark.skipif(os.name == "nt", reason="sends SIGINT with os.kill")
def test_ctrl_c_cancels_the_chunks_not_yet_done(client: Any) -> None:
    rng = np.random.default_rng(20240614)
    n, n_genes = 200, 6_000
    donor, batch = rng.integers(0, 20, n), rng.integers(0, 8, n)
    samples = pd.DataFrame({"condition": np.where(donor % 2, "treat", "ctrl"), "donor": donor.astype(str), "batch": batch.astype(str)})
    Y = rng.normal(size=(n_genes, 20))[:, donor] + rng.normal(scale=0.5, size=(n_genes, 8))[:, batch] + rng.normal(size=(n_genes, n))
    formula = "~ condition + (1 | donor) + (1 | batch)"
    # Workers import mixedmodels when they first receive a fit, while the client waits for them
    # (Ctrl-C is held until it is done): a first fit, so that the signal lands in the fit itself.
    mm.lmer_many(formula, samples, Y[:2], client=client)
    sent: list[float] = []

    def send() -> None:
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.5, send)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            mm.lmer_many(formula, samples, Y, client=client, chunk_size=64)
        assert time.perf_counter() - sent[0] < RESPONSE_LIMIT
    finally:
        timer.cancel()
        timer.join()
    # Nothing of the fit is left on the cluster once the chunks running when it stopped are done.
    deadline = time.monotonic() + 30
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0
