"""Batch fitting: one mixed model fitted to many responses (genes), in parallel, with columnar
results (:func:`lmer_many`, :func:`glmer_many`, :class:`BatchResult`).

Example
-------
>>> import numpy as np, mixedmodels as mm
>>> samples = mm.datasets.load("Dyestuff")
>>> mm.lmer_many("~ 1 + (1 | Batch)", samples, samples["Yield"].to_numpy()[np.newaxis]).fixef.round(1)
   Intercept
0     1527.5
"""

from __future__ import annotations

from .generalized import glmer_many
from .linear import lmer_many
from .result import BatchResult

__all__ = ["BatchResult", "glmer_many", "lmer_many"]
