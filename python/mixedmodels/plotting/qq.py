"""Normal quantile–quantile plots: of the residuals (R's ``qqnorm(resid(m))``) and of the
conditional modes (lme4's ``qqmath(ranef(m))``).

The theoretical quantiles are the standard normal's at R's ``ppoints(n)`` plotting positions
(what ``qqnorm`` and lattice's ``qqmath`` use): (i − a) / (n + 1 − 2a) for the i-th smallest of
n values, with Blom's a = 3/8 for n ≤ 10 and a = 1/2 above. The reference line is R's
``qqline``: through the first and third quartiles of the sample and of the normal distribution.
(lme4's ``qqmath`` of conditional modes with ``condVar = TRUE`` uses (i − ½)/n for every n: the
same positions above ten levels.)

Example
-------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> ax = qq_plot(m)
>>> ax.collections[0].get_offsets().shape
(180, 2)
>>> matplotlib.pyplot.close(ax.figure)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from ..results.base import RESIDUAL_TYPES, MixedModelResult, ResidualType
from ..results.names import display_name
from .backend import panels, single_axes
from .selection import grouping_factors

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plotting_positions(n: int) -> np.ndarray:
    """R's ``ppoints(n)``: (i − a) / (n + 1 − 2a), i = 1..n, a = 3/8 for n ≤ 10 else 1/2.

    >>> plotting_positions(4).round(4).tolist()
    [0.1471, 0.3824, 0.6176, 0.8529]
    """
    a = 0.375 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def _draw_qq(ax: Axes, values: np.ndarray) -> None:
    """Sorted ``values`` against their normal quantiles (``ax.collections[0]``), and R's ``qqline``
    across the theoretical range (``ax.lines[0]``)."""
    finite = np.sort(values[np.isfinite(values)])
    theoretical = stats.norm.ppf(plotting_positions(len(finite)))
    ax.scatter(theoretical, finite, s=12)
    quartiles = np.quantile(finite, [0.25, 0.75])  # R's default quantile type 7, as qqline's
    normal_quartiles = stats.norm.ppf([0.25, 0.75])
    slope = (quartiles[1] - quartiles[0]) / (normal_quartiles[1] - normal_quartiles[0])
    intercept = quartiles[0] - slope * normal_quartiles[0]
    ends = np.array([theoretical[0], theoretical[-1]])
    ax.plot(ends, intercept + slope * ends, color="C3", linewidth=1)
    ax.set_xlabel("standard normal quantile")


def qq_plot(result: MixedModelResult, type: ResidualType = "pearson", ax: Axes | None = None) -> Axes:  # noqa: A002 - lme4's argument name
    """Normal QQ plot of the residuals of ``type``: sorted residuals (y) against the normal
    quantiles of R's ``ppoints`` (x; see the module's description), with R's ``qqline``.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> qq_plot(m, type="response").get_ylabel()
    'Response residual'
    >>> matplotlib.pyplot.close("all")
    """
    if type not in RESIDUAL_TYPES:
        raise ValueError(f"type must be one of {', '.join(map(repr, RESIDUAL_TYPES))}, not {type!r}")
    ax = single_axes(ax)
    _draw_qq(ax, result.residuals(type).to_numpy())
    ax.set_ylabel(f"{type.capitalize()} residual")
    return ax


def ranef_qq_plot(result: MixedModelResult, group: str | None = None, ax: Axes | None = None, fig: Figure | None = None) -> Axes | Figure:
    """Normal QQ plot of the conditional modes (lme4's ``qqmath(ranef(m))``, with the axes the
    usual way round: normal quantiles on x): one panel per random-effect column of the grouping
    factor ``group`` (by default of every grouping factor). Returns the Axes for one panel, the
    Figure for several (or when ``fig`` is given).

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> fig = ranef_qq_plot(m)
    >>> [ax.get_title() for ax in fig.axes]
    ['Subject: (Intercept)', 'Subject: Days']
    >>> matplotlib.pyplot.close(fig)
    """
    modes = result.ranef()
    columns = [(name, column) for name in grouping_factors(result, group) for column in modes[name].columns]
    figure, axes = panels(len(columns), fig, ax, what="a QQ plot per random-effect column; group= picks a grouping factor")
    for panel, (name, column) in zip(axes, columns):
        _draw_qq(panel, modes[name][column].to_numpy())
        panel.set_title(f"{name}: {display_name(str(column))}")
        panel.set_ylabel("conditional mode")
    return figure if figure is not None else axes[0]
