"""Analyses of a fitted model: tests of the fixed effects with Satterthwaite's degrees of
freedom (lmerTest's coefficient table and ``contest``).

>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(float(m.coef_table()["df"]["Days"]), 2)
17.0
"""

from .coefficient_table import coef_table
from .contrasts import contest
from .satterthwaite import SatterthwaiteDerivatives

__all__ = ["SatterthwaiteDerivatives", "coef_table", "contest"]
