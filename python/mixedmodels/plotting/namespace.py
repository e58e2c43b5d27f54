"""``m.plot``: the plots of a fitted model under one name, each drawing with matplotlib (an
optional dependency, imported when a plot is drawn: ``pip install mixedmodels[plot]``).

Every plot takes ``ax=`` (a single-panel plot, or a faceted one that draws one panel) or ``fig=``
(a faceted one) to draw on, and returns what it drew on: the Axes, or the Figure when it drew
several panels, so it can be restyled and saved.

Example
-------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> ax = m.plot.residuals()
>>> ax.get_xlabel()
'fitted value'
>>> matplotlib.pyplot.close("all")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SpecificationError
from ..results.base import MixedModelResult, ResidualType
from .influence import influence_plot
from .profile import DEFAULT_LEVELS, profile_plot
from .qq import qq_plot, ranef_qq_plot
from .ranef import caterpillar_plot
from .residuals import residual_plot
from .shrinkage import shrinkage_plot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..inference.profile import LikelihoodProfile


class PlotAccessor:
    """The plots of one fitted model (``m.plot``); see the module's description for ``ax=`` and
    ``fig=``.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> m.plot
    <plots of <LmerResult 'Yield ~ 1 + (1 | Batch)' fit by REML: nobs=30, llf=-159.8271>>
    """

    def __init__(self, result: MixedModelResult) -> None:
        self._result = result

    def __repr__(self) -> str:
        return f"<plots of {self._result!r}>"

    def residuals(self, type: ResidualType = "pearson", by: str | None = None, smooth: bool = True, ax: Axes | None = None) -> Axes:  # noqa: A002 - lme4's argument name
        """Residuals of ``type`` against fitted values, coloured by the grouping factor ``by``;
        see :func:`~mixedmodels.plotting.residuals.residual_plot`.

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.plot.residuals(by="Subject").get_legend() is None   # 18 subjects: no legend
        True
        >>> matplotlib.pyplot.close("all")
        """
        return residual_plot(self._result, type, by, smooth, ax)

    def qq(self, type: ResidualType = "pearson", ax: Axes | None = None) -> Axes:  # noqa: A002 - lme4's argument name
        """Normal QQ plot of the residuals; see :func:`~mixedmodels.plotting.qq.qq_plot`.

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.plot.qq().get_xlabel()
        'standard normal quantile'
        >>> matplotlib.pyplot.close("all")
        """
        return qq_plot(self._result, type, ax)

    def qq_ranef(self, group: str | None = None, ax: Axes | None = None, fig: Figure | None = None) -> Axes | Figure:
        """Normal QQ plots of the conditional modes, a panel per random-effect column; see
        :func:`~mixedmodels.plotting.qq.ranef_qq_plot`.

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> len(m.plot.qq_ranef().axes)
        2
        >>> matplotlib.pyplot.close("all")
        """
        return ranef_qq_plot(self._result, group, ax, fig)

    def ranef(self, group: str | None = None, level: float = 0.95, ax: Axes | None = None, fig: Figure | None = None) -> Axes | Figure:
        """Caterpillar plot of the conditional modes with ± z·(conditional SD) intervals; see
        :func:`~mixedmodels.plotting.ranef.caterpillar_plot`.

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import mixedmodels as mm
        >>> m = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
        >>> m.plot.ranef(group="sample").get_title()
        'sample: (Intercept)'
        >>> matplotlib.pyplot.close("all")
        """
        return caterpillar_plot(self._result, group, level, ax, fig)

    def shrinkage(self, group: str | None = None, ax: Axes | None = None) -> Axes:
        """Each group's least-squares estimates against its mixed-model estimates; see
        :func:`~mixedmodels.plotting.shrinkage.shrinkage_plot`.

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.plot.shrinkage().get_ylabel()
        'Days'
        >>> matplotlib.pyplot.close("all")
        """
        return shrinkage_plot(self._result, group, ax)

    def influence(
        self,
        measure: str = "cooks_distance",
        groups: str | None = None,
        obs: bool = False,
        influence: Any = None,
        labels: int = 3,
        ax: Axes | None = None,
        fig: Figure | None = None,
    ) -> Axes | Figure:
        """Index plot of the influence measure ``measure`` of ``influence`` (an object with the
        measures as pandas attributes), by default of ``m.influence(groups=groups)`` (or
        ``obs=True``) computed here; see :func:`~mixedmodels.plotting.influence.influence_plot`.

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import pandas as pd
        >>> from types import SimpleNamespace
        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> deleted = SimpleNamespace(covratio=pd.Series([1.1, 0.8], index=["A", "B"]))
        >>> m.plot.influence("covratio", influence=deleted).get_ylabel()
        'covratio'
        >>> matplotlib.pyplot.close("all")
        """
        if influence is None:
            compute = getattr(self._result, "influence", None)
            if not callable(compute):
                raise SpecificationError(
                    f"{type(self._result).__name__} cannot compute influence measures in this version; pass influence= "
                    "(an object with the measures as pandas attributes)"
                )
            arguments: dict[str, Any] = {}
            if groups is not None:
                arguments["groups"] = groups
            if obs:
                arguments["obs"] = True
            influence = compute(**arguments)
        return influence_plot(influence, measure, labels, ax, fig)

    def profile(
        self,
        parameters: Sequence[str] | None = None,
        profile: LikelihoodProfile | None = None,
        levels: Sequence[float] = DEFAULT_LEVELS,
        ax: Axes | None = None,
        fig: Figure | None = None,
    ) -> Axes | Figure:
        """ζ plots of the likelihood profile ``profile``, by default ``m.profile()`` computed here
        (pass one to reuse it); see :func:`~mixedmodels.plotting.profile.profile_plot`.

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> len(m.plot.profile().axes)
        3
        >>> matplotlib.pyplot.close("all")
        """
        return profile_plot(profile if profile is not None else self._result.profile(), parameters, levels, ax, fig)
