"""Analyses of fitted mixed models, each taking a result and returning its own typed object:
tests of the fixed effects with Satterthwaite's or Kenward and Roger's degrees of freedom
(:func:`coef_table`, :func:`contest`, lmerTest's; lmerTest's :func:`anova_table`),
likelihood-ratio tests of nested models (:func:`anova`), of fixed-effect terms (:func:`drop1`)
and of random-effect terms (:func:`ranova`); the variance explained (:func:`r2`, :func:`icc`); confidence intervals
(:func:`confint`) and likelihood profiles (:func:`profile`); estimated marginal means and their
pairwise comparisons (:func:`emmeans`); simulated responses (:func:`simulate`) and the parametric
bootstrap (:func:`bootstrap`).

Example
-------
>>> import mixedmodels as mm
>>> from mixedmodels.inference import r2, ranova
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> ranova(m).table.index.tolist()
['<none>', 'Days in (Days | Subject)']
>>> round(r2(mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))).conditional, 4)
0.4185
"""

from __future__ import annotations

from .anova_table import AnovaTable, anova_table
from .bootstrap import ParametricBootstrap, bootstrap
from .coefficient_table import coef_table
from .confidence_intervals import ConfidenceIntervals, confint, variance_parameter_names
from .contrasts import contest
from .fixed_term_deletion import FixedTermDeletion, drop1
from .kenward_roger import KenwardRogerAdjustment
from .marginal_means import MarginalMeans, PairwiseComparisons, emmeans
from .model_comparison import ModelComparison, anova
from .profile import LikelihoodProfile, profile
from .random_term_deletion import RandomTermDeletion, ranova
from .satterthwaite import SatterthwaiteDerivatives
from .simulation import simulate
from .variance_explained import IntraclassCorrelation, RSquared, VarianceDecomposition, icc, r2, variance_decomposition

__all__ = [
    "AnovaTable",
    "ConfidenceIntervals",
    "FixedTermDeletion",
    "IntraclassCorrelation",
    "KenwardRogerAdjustment",
    "LikelihoodProfile",
    "MarginalMeans",
    "ModelComparison",
    "PairwiseComparisons",
    "ParametricBootstrap",
    "RSquared",
    "RandomTermDeletion",
    "SatterthwaiteDerivatives",
    "VarianceDecomposition",
    "anova",
    "anova_table",
    "bootstrap",
    "coef_table",
    "confint",
    "contest",
    "drop1",
    "emmeans",
    "icc",
    "profile",
    "r2",
    "ranova",
    "simulate",
    "variance_decomposition",
    "variance_parameter_names",
]
