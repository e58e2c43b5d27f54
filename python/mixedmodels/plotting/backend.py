"""matplotlib, imported when a plot is drawn (it is an optional dependency: ``pip install
mixedmodels[plot]``), and the Axes a plot draws on: the caller's, or new ones.

Example
-------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> fig, axes = panels(3, what="three panels")
>>> len(axes), len(fig.axes)
(3, 3)
>>> pyplot().close(fig)
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import SpecificationError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Panels per row of a faceted figure, and each panel's size in inches.
PANEL_COLUMNS = 3
PANEL_SIZE = (4.0, 3.5)


def pyplot() -> ModuleType:
    """``matplotlib.pyplot``, or an ImportError that says how to install it.

    >>> pyplot().__name__
    'matplotlib.pyplot'
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("plots need matplotlib, an optional dependency: pip install mixedmodels[plot]") from error
    return plt


def single_axes(ax: Axes | None) -> Axes:
    """``ax``, or the Axes of a new figure.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = single_axes(None)
    >>> type(ax).__name__
    'Axes'
    >>> pyplot().close(ax.figure)
    """
    if ax is not None:
        return ax
    axes: Axes = pyplot().subplots()[1]
    return axes


def panels(n: int, fig: Figure | None = None, ax: Axes | None = None, *, what: str) -> tuple[Figure | None, list[Axes]]:
    """Axes for ``n`` panels: one panel on ``ax`` (or a new figure's Axes), several on ``fig`` (or a
    new figure) in rows of three; the figure is ``None`` for a single panel, which the plot returns
    as its Axes. ``what`` names the panels in the error for ``ax=`` with several of them.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig, axes = panels(1, what="one panel")
    >>> fig is None, len(axes)
    (True, 1)
    >>> pyplot().close(axes[0].figure)
    """
    if n == 1 and fig is None:
        return None, [single_axes(ax)]
    if ax is not None:
        raise SpecificationError(f"this plot draws {n} panels ({what}): pass fig= (a matplotlib Figure) rather than ax=, or choose one panel")
    columns = min(n, PANEL_COLUMNS)
    rows = math.ceil(n / columns)
    if fig is None:
        fig = pyplot().figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows), layout="constrained")
    grid = fig.subplots(rows, columns, squeeze=False).ravel()
    for unused in grid[n:]:
        unused.remove()
    return fig, list(grid[:n])
