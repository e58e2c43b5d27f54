"""Mixed models before and after fitting: :class:`LinearMixedModel` and
:class:`GeneralizedLinearMixedModel` hold a formula's design and the compiled structure, fit it,
evaluate the objective at any parameters, refit new responses and fit subsets of rows;
:func:`lmer`, :func:`glmer` and :func:`glmer_nb` are lme4's one-call front doors.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> type(m.model).__name__
'LinearMixedModel'
"""

from __future__ import annotations

from .base import MixedModel
from .generalized import GeneralizedLinearMixedModel, glmer, glmer_nb
from .linear import LinearMixedModel, lmer

__all__ = ["GeneralizedLinearMixedModel", "LinearMixedModel", "MixedModel", "glmer", "glmer_nb", "lmer"]
