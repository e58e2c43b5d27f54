"""Analyses of fitted mixed models: each takes a result and returns its own typed object.

Example
-------
>>> import mixedmodels as mm
>>> from mixedmodels.inference import r2
>>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
>>> round(r2(m).conditional, 4)
0.4185
"""

from __future__ import annotations

from .variance_explained import (
    DistributionVarianceWarning,
    IntraclassCorrelation,
    RSquared,
    VarianceDecomposition,
    icc,
    r2,
    variance_decomposition,
)

__all__ = [
    "DistributionVarianceWarning",
    "IntraclassCorrelation",
    "RSquared",
    "VarianceDecomposition",
    "icc",
    "r2",
    "variance_decomposition",
]
