"""A DataFrame's columns as arrays, each fetched from pandas once.

pandas builds a new Series on every ``frame[name]`` (15–20 µs in pandas 3, more when the frame
carries ``attrs``, which are deep-copied each time, and two to three times that when the caches
are cold between fits). A design reads each column several times (missing values, response,
model matrices, grouping factors); on small data sets those reads cost more than the fit. A
:class:`ColumnCache` hands out each column's values — a numpy array, or a pandas extension
array (Categorical, nullable, Arrow) — read once, without building a Series. A cache of a row
subset takes the rows from each column it is asked for, not from the whole frame.

Example
-------
>>> import numpy as np, pandas as pd
>>> columns = ColumnCache(pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": ["a", "b", "a"]}))
>>> columns["x"] is columns["x"], len(columns), "g" in columns.columns
(True, 3, True)
>>> columns.subset(np.array([True, False, True]))["x"].tolist()
[1.0, 3.0]
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError

# What a column holds: numpy values or a pandas extension array.
ColumnValues: TypeAlias = np.ndarray | pd.api.extensions.ExtensionArray


class ColumnCache:
    """Read-only view of a DataFrame (or of a subset of its rows) with the parts of the DataFrame
    interface designs use: ``view[name]`` (the column's values, the same object every time),
    ``columns``, ``index``, ``len`` and ``frame`` (the rows as a DataFrame, for patsy)."""

    __slots__ = ("_source", "_rows", "_length", "columns", "_values", "_frame", "_index")

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray | None = None) -> None:
        self._source = frame
        self._rows = rows
        self._length = len(frame) if rows is None else int(np.count_nonzero(rows))
        self.columns = frame.columns
        self._values: dict[str, ColumnValues] = {}
        self._frame = frame if rows is None else None
        self._index = frame.index if rows is None else None

    @classmethod
    def of(cls, data: pd.DataFrame | ColumnCache) -> ColumnCache:
        """``data`` itself if it is a cache, else a cache of the DataFrame."""
        return data if isinstance(data, ColumnCache) else cls(data)

    def subset(self, rows: np.ndarray) -> ColumnCache:
        """The rows where the boolean mask ``rows`` is true (of a cache over all rows)."""
        assert self._rows is None, "a subset of a subset is not needed by designs"
        return ColumnCache(self._source, rows)

    def __getitem__(self, name: str) -> ColumnValues:
        values = self._values.get(name)
        if values is None:
            values = column_values(self._source, name)
            if self._rows is not None:
                values = values[self._rows]
            self._values[name] = values
        return values

    def __len__(self) -> int:
        return self._length

    @property
    def index(self) -> pd.Index:
        if self._index is None:
            self._index = self._source.index[self._rows]
        return self._index

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = self._source.loc[self._rows]
        return self._frame


def column_values(frame: pd.DataFrame, name: str) -> ColumnValues:
    """The values of column ``name``: a numpy array for numpy dtypes, else the pandas extension
    array, as ``frame[name]`` holds them (not copied: numpy values come as a read-only view)."""
    try:
        location: Any = frame.columns.get_loc(name)
    except KeyError:
        raise FormulaError(f"unknown column {name!r}; the data have columns {list(map(str, frame.columns))}") from None
    if not isinstance(location, (int, np.integer)):
        raise DataError(f"the data have {int(np.count_nonzero(frame.columns == name))} columns named {name!r}")
    # A private pandas accessor (present since pandas 1.3) fetches the values about fifteen times
    # faster than building the Series; the public route gives the same values.
    fetch = getattr(frame, "_get_column_array", None)
    values = fetch(int(location)) if fetch is not None else frame.iloc[:, int(location)].array
    if not isinstance(values.dtype, np.dtype):
        return values
    # numpy dtypes as numpy arrays (pandas wraps datetimes), read-only: they are the frame's memory.
    array = np.asarray(values).view()
    array.flags.writeable = False
    return array


def frame_of(data: pd.DataFrame | ColumnCache) -> pd.DataFrame:
    """The DataFrame behind ``data`` (for code that needs the whole frame, such as patsy)."""
    return data.frame if isinstance(data, ColumnCache) else data
