"""Analyses of fitted models: likelihood-ratio tests of nested models (:func:`anova`), of
fixed-effect terms (:func:`drop1`) and of random-effect terms (:func:`ranova`).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> from mixedmodels.inference import ranova
>>> ranova(m).table.index.tolist()
['<none>', 'Days in (Days | Subject)']
"""

from .fixed_term_deletion import FixedTermDeletion, drop1
from .model_comparison import ModelComparison, anova
from .random_term_deletion import RandomTermDeletion, ranova

__all__ = ["FixedTermDeletion", "ModelComparison", "RandomTermDeletion", "anova", "drop1", "ranova"]
