"""Results of mixed-model fits: estimates under statsmodels' names where statsmodels has the
concept and lme4's where it does not. :class:`LmerResult` (linear) and :class:`GlmerResult`
(generalized) share :class:`MixedModelResult`; :class:`VarianceComponents` holds the random
effects' covariances and :class:`OptimizationSummary` what the optimiser did.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> isinstance(m, MixedModelResult)
True
"""

from __future__ import annotations

from .base import MixedModelResult
from .generalized import GlmerResult
from .linear import LmerResult
from .optimization import OptimizationSummary
from .variance_components import TermCovariance, VarianceComponents

__all__ = [
    "GlmerResult",
    "LmerResult",
    "MixedModelResult",
    "OptimizationSummary",
    "TermCovariance",
    "VarianceComponents",
]
