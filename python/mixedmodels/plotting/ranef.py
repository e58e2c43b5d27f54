"""Caterpillar plots of the conditional modes with their conditional-SD intervals (lme4's
``dotplot(ranef(m, condVar = TRUE))``).

Example
-------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> fig = caterpillar_plot(m)
>>> len(fig.axes)
2
>>> matplotlib.pyplot.close(fig)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from ..errors import SpecificationError
from ..results.base import MixedModelResult
from ..results.names import display_name
from .backend import panels
from .selection import grouping_factors

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Above this many levels only the EXTREME_LABELS lowest and highest levels are labelled.
MAX_LABELLED_LEVELS = 40
EXTREME_LABELS = 5


def label_positions(n: int) -> np.ndarray:
    """Positions (0..n−1) of the levels to label: all of up to ``MAX_LABELLED_LEVELS``, else the
    ``EXTREME_LABELS`` at each end.

    >>> label_positions(3).tolist()
    [0, 1, 2]
    >>> label_positions(100).tolist()
    [0, 1, 2, 3, 4, 95, 96, 97, 98, 99]
    """
    if n <= MAX_LABELLED_LEVELS:
        return np.arange(n)
    return np.concatenate([np.arange(EXTREME_LABELS), np.arange(n - EXTREME_LABELS, n)])


def caterpillar_plot(
    result: MixedModelResult, group: str | None = None, level: float = 0.95, ax: Axes | None = None, fig: Figure | None = None
) -> Axes | Figure:
    """The conditional modes of each random-effect column of ``group`` (by default of every
    grouping factor), one panel per column, each with the interval mode ± z·(conditional SD), z
    the normal quantile of ``level`` (1.96 for 0.95). As lme4's dotplot, the levels of a factor are
    sorted by their mode in the factor's first column, in the same order in every panel of that
    factor; with more than 40 levels only the five lowest and highest are labelled. Returns the
    Axes for one panel, the Figure for several (or when ``fig`` is given).

    Drawn per panel: ``collections[0]`` the intervals (one horizontal segment per level, at y =
    0, 1, ... in sorted order), ``collections[1]`` the modes (x mode, y position), ``lines[0]`` the
    line at 0.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> ax = caterpillar_plot(m)
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['F', 'D', 'A', 'B', 'C', 'E']
    >>> matplotlib.pyplot.close(ax.figure)
    """
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise SpecificationError(f"level must be between 0 and 1 (0.95 for ±1.96 conditional SDs), not {level!r}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    modes = result.ranef(condvar=True)
    names = grouping_factors(result, group)
    columns = [(name, str(column)) for name in names for column in modes[name].columns if not str(column).startswith("sd_")]
    figure, axes = panels(len(columns), fig, ax, what="one per random-effect column; group= picks a grouping factor")
    orders = {name: np.argsort(modes[name].iloc[:, 0].to_numpy(), kind="stable") for name in names}
    for panel, (name, column) in zip(axes, columns):
        frame = modes[name].iloc[orders[name]]
        centre = frame[column].to_numpy()
        half = z * frame[f"sd_{column}"].to_numpy()
        position = np.arange(len(frame))
        panel.hlines(position, centre - half, centre + half, color="C0", linewidth=1)
        panel.scatter(centre, position, s=14, color="C0", zorder=3)
        panel.axvline(0.0, color="0.4", linewidth=0.8, linestyle="--")
        labelled = label_positions(len(frame))
        panel.set_yticks(labelled, [str(label) for label in frame.index[labelled]])
        panel.set_ylim(-1, len(frame))
        panel.set_title(f"{name}: {display_name(column)}")
        panel.set_xlabel(f"conditional mode ± {z:.2f} conditional SD")
    return figure if figure is not None else axes[0]
