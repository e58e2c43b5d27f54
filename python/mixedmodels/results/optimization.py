"""What the optimiser did in a fit: lme4's ``optinfo``, MixedModels.jl's ``OptSummary``.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> m.optimization.converged, len(m.optimization.theta)
(True, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _core


@dataclass(frozen=True)
class OptimizationSummary:
    """The start and end of the optimisation, its objective, how many evaluations it took, and
    why it stopped.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> m.optimization.theta_start
    (1.0,)
    """

    theta_start: tuple[float, ...]
    theta: tuple[float, ...]
    objective: float
    n_evaluations: int
    status: str
    converged: bool
    n_set_to_boundary: int
    max_evaluations: int

    @classmethod
    def from_core(cls, fit: _core.LinearFit | _core.GeneralizedFit, max_evaluations: int) -> OptimizationSummary:
        """The summary of a core fit object (``mixedmodels._core.LinearFit`` or ``GeneralizedFit``)."""
        optimization = fit.optimization
        return cls(
            theta_start=tuple(np.asarray(optimization.theta_start, dtype=float).tolist()),
            theta=tuple(np.asarray(fit.theta, dtype=float).tolist()),
            objective=float(fit.objective),
            n_evaluations=int(optimization.n_evaluations),
            status=str(optimization.status),
            converged=bool(optimization.converged),
            n_set_to_boundary=int(optimization.n_set_to_boundary),
            max_evaluations=max_evaluations,
        )
