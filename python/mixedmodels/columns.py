"""A DataFrame's columns, each fetched from pandas once.

pandas builds a new Series on every ``frame[name]`` (10–20 µs in pandas 3, more when the frame
carries ``attrs``, which are deep-copied each time). Building a design reads each column several
times (missing values, response, model matrices, grouping factors), which on small data sets
cost more than the fit itself; reading through a :class:`ColumnCache` pays once per column.

Example
-------
>>> import pandas as pd
>>> columns = ColumnCache(pd.DataFrame({"x": [1.0, 2.0], "g": ["a", "b"]}))
>>> columns["x"] is columns["x"], len(columns), "g" in columns.columns
(True, 2, True)
"""

from __future__ import annotations

import pandas as pd


class ColumnCache:
    """Read-only view of ``frame`` with the parts of the DataFrame interface designs use:
    ``view[name]`` (the same Series object every time), ``columns``, ``index`` and ``len``."""

    __slots__ = ("frame", "columns", "index", "_series")

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.columns = frame.columns
        self.index = frame.index
        self._series: dict[str, pd.Series] = {}

    def __getitem__(self, name: str) -> pd.Series:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = self.frame[name]
        return series

    def __len__(self) -> int:
        return len(self.index)


def frame_of(data: pd.DataFrame | ColumnCache) -> pd.DataFrame:
    """The DataFrame behind ``data`` (for code that needs the whole frame, such as patsy)."""
    return data.frame if isinstance(data, ColumnCache) else data
