"""Residuals against fitted values (lme4's ``plot(m)``: Pearson residuals against ``fitted(m)``).

Example
-------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> ax = residual_plot(m, by="Subject")
>>> ax.get_ylabel()
'Pearson residual'
>>> matplotlib.pyplot.close(ax.figure)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..results.base import RESIDUAL_TYPES, MixedModelResult, ResidualType
from .backend import single_axes
from .selection import grouping_factor
from .smooth import local_linear_smooth

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# Up to this many groups get a qualitative colour each and a legend; more share a continuous
# colour map and get no legend.
MAX_LEGEND_GROUPS = 10


def residual_plot(
    result: MixedModelResult,
    type: ResidualType = "pearson",  # noqa: A002 - lme4's argument name
    by: str | None = None,
    smooth: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Residuals of ``type`` (see :meth:`~mixedmodels.results.base.MixedModelResult.residuals`)
    against the conditional fitted values (for a GLMM the fitted means μ̂, as lme4's ``fitted``),
    with a horizontal line at 0 and, with ``smooth``, a local-linear smooth
    (:func:`~mixedmodels.plotting.smooth.local_linear_smooth`). ``by`` names a grouping factor to
    colour the points by; with more than ten groups there is no legend.

    Drawn: ``ax.collections[0]`` the points (x fitted, y residual), ``ax.lines[0]`` the zero line
    and ``ax.lines[1]`` the smooth.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import mixedmodels as mm
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> ax = residual_plot(g)
    >>> ax.collections[0].get_offsets().shape
    (56, 2)
    >>> matplotlib.pyplot.close(ax.figure)
    """
    if type not in RESIDUAL_TYPES:
        raise ValueError(f"type must be one of {', '.join(map(repr, RESIDUAL_TYPES))}, not {type!r}")
    fitted = result._fitted_means()
    residuals = result.residuals(type).to_numpy()
    ax = single_axes(ax)
    if by is None:
        ax.scatter(fitted, residuals, s=12, alpha=0.7)
    else:
        factor = grouping_factor(result, by, "by")
        _scatter_by_group(ax, fitted, residuals, factor.codes, factor.levels.tolist(), by)
    ax.axhline(0.0, color="0.4", linewidth=0.8, linestyle="--")
    if smooth and len(fitted) > 2:
        grid, curve = local_linear_smooth(fitted, residuals)
        ax.plot(grid, curve, color="C3", linewidth=1.5)
    ax.set_xlabel("fitted value")
    ax.set_ylabel(f"{type.capitalize()} residual")
    return ax


def _scatter_by_group(ax: Axes, x: np.ndarray, y: np.ndarray, codes: np.ndarray, levels: list[str], name: str) -> None:
    """Points coloured by their group: a qualitative colour and a legend for a few groups, a
    continuous colour map and no legend for many."""
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D

    n = len(levels)
    if n <= MAX_LEGEND_GROUPS:
        colours = [f"C{i}" for i in range(n)]
        ax.scatter(x, y, c=codes, cmap=ListedColormap(colours), vmin=-0.5, vmax=n - 0.5, s=12, alpha=0.8)
        handles = [Line2D([], [], marker="o", linestyle="", color=colour) for colour in colours]
        ax.legend(handles, levels, title=name, fontsize="small")
    else:
        ax.scatter(x, y, c=codes, cmap="turbo", s=12, alpha=0.8)
