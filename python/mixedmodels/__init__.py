"""mixedmodels: linear and generalized linear mixed models with lme4's formulas and numbers and a
Rust core.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(float(m.params["Days"]), 4)
10.4673
"""

from __future__ import annotations

from . import datasets, families
from .errors import (
    ConvergenceError,
    ConvergenceWarning,
    DataError,
    FormulaError,
    MixedModelError,
    MixedModelWarning,
    RankDeficiencyWarning,
    SeparationWarning,
    SingularFitWarning,
    SpecificationError,
)
from .glmer import glmer, glmer_nb
from .lmer import lmer
from .results import GlmerResult, LmerResult

__all__ = [
    "ConvergenceError",
    "ConvergenceWarning",
    "DataError",
    "FormulaError",
    "GlmerResult",
    "LmerResult",
    "MixedModelError",
    "MixedModelWarning",
    "RankDeficiencyWarning",
    "SeparationWarning",
    "SingularFitWarning",
    "SpecificationError",
    "datasets",
    "families",
    "glmer",
    "glmer_nb",
    "lmer",
]
