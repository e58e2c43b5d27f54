"""One fitted model refitted from many Python threads at once: the core's calls on one model take
turns (no "Already borrowed"), and every refit equals the same refit run serially."""

from __future__ import annotations

import threading

import numpy as np

import mixedmodels as mm

N_THREADS = 8
REFITS_PER_THREAD = 10


def summary(m: mm.LmerResult) -> tuple[object, ...]:
    ranef = tuple(frame.to_numpy().tobytes() for frame in m.ranef().values())
    return (m.llf, m.theta.tobytes(), m.params.to_numpy().tobytes(), m.sigma, ranef, m.optimization.n_evaluations)


def test_refits_from_many_threads_equal_serial_refits() -> None:
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    rng = np.random.default_rng(8)
    responses = [m.design.y + rng.normal(scale=25.0, size=m.nobs) for _ in range(N_THREADS * REFITS_PER_THREAD)]
    serial = [summary(m.refit(y)) for y in responses]

    concurrent: list[tuple[object, ...] | None] = [None] * len(responses)
    errors: list[BaseException] = []
    start = threading.Barrier(N_THREADS)

    def refit_every_nth(first: int) -> None:
        start.wait()
        try:
            for index in range(first, len(responses), N_THREADS):
                concurrent[index] = summary(m.refit(responses[index]))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=refit_every_nth, args=(first,)) for first in range(N_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert concurrent == serial
