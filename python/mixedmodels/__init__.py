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

from importlib.metadata import PackageNotFoundError, version

from . import datasets, families
from .batch import BatchResult, glmer_many, lmer_many
from .errors import (
    ConvergenceError,
    ConvergenceWarning,
    DataError,
    DistributionVarianceWarning,
    FormulaError,
    LeverageWarning,
    MixedModelError,
    MixedModelWarning,
    RankDeficiencyWarning,
    SeparationWarning,
    SingularFitWarning,
    SpecificationError,
)
from .inference import MarginalMeans, ParametricBootstrap, anova, bootstrap, emmeans
from .models import GeneralizedLinearMixedModel, LinearMixedModel, glmer, glmer_nb, lmer
from .results import GlmerResult, LmerResult

try:
    __version__ = version("mixedmodels")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BatchResult",
    "ConvergenceError",
    "ConvergenceWarning",
    "DataError",
    "DistributionVarianceWarning",
    "FormulaError",
    "GeneralizedLinearMixedModel",
    "GlmerResult",
    "LeverageWarning",
    "LinearMixedModel",
    "LmerResult",
    "MarginalMeans",
    "MixedModelError",
    "MixedModelWarning",
    "ParametricBootstrap",
    "RankDeficiencyWarning",
    "SeparationWarning",
    "SingularFitWarning",
    "SpecificationError",
    "anova",
    "bootstrap",
    "datasets",
    "emmeans",
    "families",
    "glmer",
    "glmer_nb",
    "lmer",
    "glmer_many",
    "lmer_many",
]
