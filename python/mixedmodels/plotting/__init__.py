"""Plots of fitted mixed models, reached as ``m.plot`` (:class:`PlotAccessor`): residuals against
fitted values, normal QQ plots of the residuals and of the conditional modes, caterpillar plots,
the partial-pooling (shrinkage) plot, index plots of influence measures and ζ plots of likelihood
profiles. matplotlib is an optional dependency (``pip install mixedmodels[plot]``), imported
only when a plot is drawn.

Example
-------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> fig = caterpillar_plot(m, group="Subject")
>>> len(fig.axes)
2
>>> matplotlib.pyplot.close(fig)
"""

from __future__ import annotations

from .influence import influence_plot
from .namespace import PlotAccessor
from .profile import profile_plot
from .qq import qq_plot, ranef_qq_plot
from .ranef import caterpillar_plot
from .residuals import residual_plot
from .shrinkage import group_estimates, shrinkage_plot

__all__ = [
    "PlotAccessor",
    "caterpillar_plot",
    "group_estimates",
    "influence_plot",
    "profile_plot",
    "qq_plot",
    "ranef_qq_plot",
    "residual_plot",
    "shrinkage_plot",
]
