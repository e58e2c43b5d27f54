"""Running a batch fit a chunk of genes at a time, for :func:`lmer_many` and :func:`glmer_many`
alike: here, one chunk after another on the core's thread pool, or on a Dask cluster, each chunk a
task on a worker. Either way a progress bar counts the genes done and the chunks' columns come
back concatenated in gene order.

A fit is split in two: its source of responses (:mod:`.responses`), read in this process a chunk
at a time, and a :class:`ChunkFitter`, a picklable callable holding everything the genes share
(the design), which fits one chunk. The core fits every gene on its own, from lme4's start, so
the result does not depend on the chunking, on the number of threads, nor on where a chunk runs.

Dask (``pip install mixedmodels[dask]``) is imported only when asked for. The fitter goes to
every worker once (``scatter(broadcast=True)``); each task carries one chunk's responses and
weights, and at most two chunks per worker thread are in flight, so only those are materialised
(dense) at a time. A Dask worker runs one task per thread of its own, so every task runs the core
on one thread: a worker keeps as many cores busy as it has threads, no more.

Example
-------
>>> import numpy as np, pandas as pd
>>> from .responses import InMemoryResponses
>>> source = InMemoryResponses(pd.RangeIndex(5), np.arange(10.0).reshape(5, 2), None)
>>> def column_sums(y, weights, threads):
...     return {"sum": y.sum(axis=0)}
>>> fit_in_chunks(column_sums, source, checked_backend(None, None, -1), chunk_size=2, progress=False, description="sums")
{'sum': array([ 1.,  5.,  9., 13., 17.])}
"""

from __future__ import annotations

import importlib
import itertools
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from ..errors import SpecificationError
from .progress import ProgressBar, progress_bar
from .responses import ResponseChunks

BACKENDS = ("local", "dask")
# Dask's default chunk: about four chunks per worker thread (load balance against per-task
# overhead), within these bounds.
DASK_CHUNK_BOUNDS = (256, 4096)
# How often the client looks for finished chunks and for Ctrl-C (seconds), as the core polls.
POLL_INTERVAL = 0.05


class ChunkFitter(Protocol):
    """Fits one chunk of genes: ``y`` (kept samples × genes, Fortran order, NaN missing) with its
    weights (the same shape, or None) on ``threads`` core threads (0: all) → columns with a row
    (or leading axis) per gene."""

    def __call__(self, y: np.ndarray, weights: np.ndarray | None, threads: int) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class Backend:
    """Where the chunks run. ``name`` ``"local"``: here, on ``threads`` core threads (0: all).
    ``"dask"``: on ``client``'s workers, or with no client on a LocalCluster started for the fit
    with ``threads`` single-threaded worker processes (0: one per core)."""

    name: str
    threads: int
    client: Any | None = None


def checked_backend(backend: object, client: object, n_jobs: object) -> Backend:
    """The backend named by a batch fit's ``backend=``, ``client=`` and ``n_jobs=``: ``client``
    implies Dask; ``n_jobs`` is the core's threads here, the workers of a cluster started for the
    fit, and not given with a client (its workers decide).

    >>> checked_backend(None, None, 2)
    Backend(name='local', threads=2, client=None)
    """
    threads = checked_n_jobs(n_jobs)
    name = ("dask" if client is not None else "local") if backend is None else backend
    if name not in BACKENDS:
        raise SpecificationError(f"backend must be 'local' or 'dask', not {backend!r}")
    if client is not None:
        if name != "dask":
            raise SpecificationError("client= runs the fit on Dask: leave backend= out or give backend='dask'")
        if threads != 0:
            raise SpecificationError("with client= the Dask workers' threads are used: leave n_jobs at -1")
    return Backend(str(name), threads, client)


def checked_n_jobs(n_jobs: object) -> int:
    """Threads (or workers) from ``n_jobs``: -1 → 0 (every core), else the positive number."""
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, (int, np.integer)) or not (n_jobs == -1 or n_jobs >= 1):
        raise SpecificationError(f"n_jobs must be -1 (every core) or a positive whole number, not {n_jobs!r}")
    return 0 if n_jobs == -1 else int(n_jobs)


def checked_chunk_size(chunk_size: object) -> int | None:
    """A positive number of genes, or None for the backend's default."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, (bool, np.bool_)) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise SpecificationError(f"chunk_size must be a positive whole number of genes, not {chunk_size!r}")
    return int(chunk_size)


def fit_in_chunks(
    fit: ChunkFitter, source: ResponseChunks, backend: Backend, *, chunk_size: int | None, progress: bool | None, description: str
) -> dict[str, np.ndarray]:
    """Every gene of ``source`` fitted by ``fit``, ``chunk_size`` genes at a time (None: the
    backend's default) on ``backend``, with a progress bar (see :func:`.progress.progress_bar`);
    the chunks' columns concatenated in gene order. Ctrl-C (or any error) stops the fit and, on
    Dask, cancels the chunks not yet done before it is raised."""
    n_genes = len(source.genes)
    with progress_bar(progress, total=n_genes, description=description) as bar:
        if backend.name == "local":
            size = chunk_size or max(256, 32 * (backend.threads or os.cpu_count() or 1))
            chunks = []
            for start, stop in _bounds(n_genes, size):
                y, weights = source.chunk(start, stop)
                chunks.append(fit(y, weights, backend.threads))
                bar.update(stop - start)
        elif backend.client is not None:
            chunks = _on_dask(backend.client, fit, source, chunk_size, bar)
        else:
            distributed = _distributed()
            workers = backend.threads or os.cpu_count() or 1
            cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
            )
            with cluster, distributed.Client(cluster, set_as_default=False) as client:
                chunks = _on_dask(client, fit, source, chunk_size, bar)
    return {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}


def _bounds(n_genes: int, size: int) -> Iterator[tuple[int, int]]:
    return ((start, min(start + size, n_genes)) for start in range(0, n_genes, size))


def _distributed() -> ModuleType:
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise ImportError("backend='dask' needs dask.distributed: pip install mixedmodels[dask]") from None


def _on_dask(client: Any, fit: ChunkFitter, source: ResponseChunks, chunk_size: int | None, bar: ProgressBar) -> list[dict[str, np.ndarray]]:
    """The chunks fitted as tasks on ``client``'s workers, in gene order."""
    distributed = _distributed()
    n_genes = len(source.genes)
    slots = max(1, sum(client.nthreads().values()))
    size = chunk_size or min(max(math.ceil(n_genes / (4 * slots)), DASK_CHUNK_BOUNDS[0]), DASK_CHUNK_BOUNDS[1])
    bounds = list(_bounds(n_genes, size))
    outstanding: dict[str, tuple[Any, int]] = {}
    done: dict[int, dict[str, np.ndarray]] = {}
    queued = iter(range(len(bounds)))
    with _DeferredInterrupt() as interrupt:
        shared = client.scatter(fit, broadcast=True, hash=False)

        def submit(index: int) -> Any:
            # Scattered rather than put in the task: a chunk is data, not part of the task graph.
            chunk = client.scatter(_Chunk(*source.chunk(*bounds[index])), hash=False)
            future = client.submit(_fit_on_worker, shared, chunk, pure=False)
            outstanding[future.key] = (future, index)
            return future

        try:
            completed = distributed.as_completed([submit(index) for index in itertools.islice(queued, 2 * slots)], loop=client.loop)
            while outstanding:
                interrupt.deliver()
                if not completed.has_ready():
                    time.sleep(POLL_INTERVAL)
                    continue
                future = next(completed)
                _, index = outstanding.pop(future.key)
                done[index] = future.result()
                start, stop = bounds[index]
                bar.update(stop - start)
                following = next(queued, None)
                if following is not None:
                    completed.add(submit(following))
        except BaseException:
            client.cancel([future for future, _ in outstanding.values()])
            raise
        finally:
            client.cancel(shared)
    return [done[index] for index in range(len(bounds))]


class _DeferredInterrupt:
    """Ctrl-C (SIGINT) held back while Dask's client calls run, which it would leave half done
    (a chunk scattered to a worker that nothing releases), and delivered between them: the
    handler that was installed (KeyboardInterrupt by default) runs at :meth:`deliver`, or on
    leaving. Only the main thread receives signals; elsewhere this does nothing."""

    def __init__(self) -> None:
        self._received = False
        self._previous: Any = None

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum: int, frame: object) -> None:
        self._received = True

    def deliver(self) -> None:
        """The held signal, if one came, to the handler that was installed."""
        if self._previous is not None and self._received:
            self._restore()
            signal.raise_signal(signal.SIGINT)

    def _restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous)
        self._previous = None

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            received = self._received
            self._restore()
            if received:
                signal.raise_signal(signal.SIGINT)


@dataclass(frozen=True)
class _Chunk:
    """One chunk's responses and weights, sent to a worker as one piece of data."""

    y: np.ndarray
    weights: np.ndarray | None


def _fit_on_worker(fit: ChunkFitter, chunk: _Chunk) -> dict[str, np.ndarray]:
    """One chunk, on a Dask worker: one core thread, as the worker runs a task per thread."""
    return fit(chunk.y, chunk.weights, 1)
