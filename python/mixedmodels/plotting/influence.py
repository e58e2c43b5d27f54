"""Index plots of influence measures: one stem per deleted unit (a group or an observation).

The measures come from an influence object, taken by its attributes: any object whose measure
attributes are pandas Series indexed by the deleted unit (``cooks_distance``, ``mdffits``,
``covtrace``, ``covratio``) or DataFrames with a column per coefficient or variance component
(``dfbeta``, ``dfbetas``, ``rvc``), such as what ``m.influence(groups=...)`` returns.

Example
-------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import pandas as pd
>>> from types import SimpleNamespace
>>> influence = SimpleNamespace(cooks_distance=pd.Series([0.1, 0.9, 0.2], index=["a", "b", "c"]))
>>> ax = influence_plot(influence)
>>> [text.get_text() for text in ax.texts]
['b', 'c', 'a']
>>> matplotlib.pyplot.close(ax.figure)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from ..results.names import display_name
from .backend import panels
from .ranef import MAX_LABELLED_LEVELS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MEASURES = ("cooks_distance", "mdffits", "covtrace", "covratio", "rvc", "dfbeta", "dfbetas")


def influence_plot(influence: Any, measure: str = "cooks_distance", labels: int = 3, ax: Axes | None = None, fig: Figure | None = None) -> Axes | Figure:
    """The index plot of ``influence``'s attribute ``measure``: for a Series, a stem from 0 to each
    unit's value at x = 0, 1, ... in the Series' order (``ax.collections[0]``), a point at its top
    (``collections[1]``) and the labels of the ``labels`` units largest in absolute value
    (``ax.texts``, largest first); the units' names as x tick labels when there are at most 40.
    For a DataFrame (``dfbeta``, ``rvc``, ...), a panel per column. Returns the Axes for one
    panel, the Figure for several (or when ``fig`` is given).

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> dfbeta = pd.DataFrame({"(Intercept)": [1.0, -2.0], "Days": [0.5, 0.1]}, index=["308", "309"])
    >>> fig = influence_plot(SimpleNamespace(dfbeta=dfbeta), "dfbeta", labels=1)
    >>> [ax.get_title() for ax in fig.axes]
    ['dfbeta: (Intercept)', 'dfbeta: Days']
    >>> matplotlib.pyplot.close(fig)
    """
    if not isinstance(measure, str):
        raise SpecificationError(f"measure must be the name of an influence measure ({', '.join(MEASURES)}), not {measure!r}")
    values = getattr(influence, measure, None)
    if isinstance(values, pd.Series):
        table = values.to_frame(name=measure)
    elif isinstance(values, pd.DataFrame):
        table = values
    else:
        raise SpecificationError(
            f"the influence object ({type(influence).__name__}) has no measure {measure!r} as a pandas Series or DataFrame; the measures: {', '.join(MEASURES)}"
        )
    if isinstance(labels, bool) or not isinstance(labels, (int, np.integer)) or labels < 0:
        raise SpecificationError(f"labels must be the number of units to label (0 or more), not {labels!r}")
    series = isinstance(values, pd.Series)
    figure, axes = panels(table.shape[1], fig, ax, what=f"one per column of {measure}")
    units = [str(unit) for unit in table.index]
    position = np.arange(len(table))
    for panel, column in zip(axes, table.columns):
        height = table[column].to_numpy(dtype=float)
        panel.vlines(position, 0.0, height, color="C0", linewidth=1)
        panel.scatter(position, height, s=14, color="C0", zorder=3)
        panel.axhline(0.0, color="0.4", linewidth=0.8)
        largest = np.argsort(-np.abs(np.nan_to_num(height, nan=0.0)), kind="stable")[:labels]
        for unit in largest:
            panel.annotate(units[unit], (position[unit], height[unit]), xytext=(3, 3), textcoords="offset points", fontsize="small")
        if len(units) <= MAX_LABELLED_LEVELS:
            panel.set_xticks(position, units, rotation=90, fontsize="small")
        panel.set_xlabel(table.index.name or "deleted unit")
        panel.set_ylabel(measure)
        if not series:
            panel.set_title(f"{measure}: {display_name(str(column))}")
    return figure if figure is not None else axes[0]
