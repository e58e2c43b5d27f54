"""Model criticism of fitted mixed models, each analysis taking a result and returning its own
object: hat values (:func:`hatvalues`, lme4's), case-deletion influence measures — Cook's
distance, MDFFITS, COVTRACE, COVRATIO, RVC, dfbeta(s) — by group or observation, exact or
one-step (:func:`influence`), and broom.mixed's :func:`augment` table. Residuals are the
results' own (``m.residuals(type)``).

Example
-------
>>> import mixedmodels as mm
>>> from mixedmodels.diagnostics import influence
>>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
>>> influence(m, groups="Batch").n_rows_deleted.tolist()
[5, 5, 5, 5, 5, 5]
"""

from __future__ import annotations

from .augment import augment
from .influence import Influence, influence
from .leverage import hatvalues

__all__ = ["Influence", "augment", "hatvalues", "influence"]
