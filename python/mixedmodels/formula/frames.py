"""Data frames from other libraries as pandas DataFrames: a polars DataFrame, a pyarrow Table or
RecordBatch, or any object with the Arrow PyCapsule interface (``__arrow_c_stream__``, such as
a DuckDB relation) is read through Arrow, column by column, without converting its values to
Python objects. polars and pyarrow are optional and imported only when such a frame arrives
(pyarrow reads them all: ``pip install mixedmodels[polars]`` installs both).

How the columns arrive (the design reads each as it reads the pandas column of the same kind):

- numbers and booleans without missing values: numpy arrays (the Arrow memory itself where it
  can be: one chunk, no nulls);
- text (Arrow ``string``, ``large_string``, ``string_view``, polars' ``String``): Arrow-backed
  pandas columns (``pd.ArrowDtype``), whose levels are encoded from their buffers;
- a polars ``Enum``: a pandas Categorical with the enum's categories in their order (the
  first is a factor's reference level), unordered, as R's ``factor(x, levels = ...)``;
- a polars ``Categorical``: text, so its levels are sorted as text, which is polars' own order
  for a Categorical (since polars 1.32; before, it followed the order in which the process's
  string cache first met each string, which is why that order is not used);
- any other Arrow dictionary array: a pandas Categorical with the dictionary's order
  (``ordered`` kept: an ordered one gets polynomial contrasts, as an ordered pandas
  Categorical or R's ordered factor);
- anything else (numbers with missing values, dates, decimals): Arrow-backed pandas columns.

Results are pandas objects whatever the input.

Example
-------
>>> import pyarrow as pa
>>> table = pa.table({"y": [1.0, 2.0], "g": pa.array(["b", "a"]).dictionary_encode()})
>>> frame = as_pandas(table)
>>> frame["y"].dtype, list(frame["g"].cat.categories)
(dtype('float64'), ['b', 'a'])
>>> as_pandas([1, 2])
Traceback (most recent call last):
...
mixedmodels.errors.DataError: data must be a pandas DataFrame, a polars DataFrame or a pyarrow Table (or an object with the Arrow PyCapsule interface), not list
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, TypeAlias

import numpy as np
import pandas as pd

from ..errors import DataError


class ArrowStreamExportable(Protocol):
    """A table with the Arrow PyCapsule interface (polars and pyarrow tables have it)."""

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any: ...


# What the package reads data from: a pandas DataFrame, or a table readable through Arrow.
DataFrameLike: TypeAlias = "pd.DataFrame | ArrowStreamExportable"

# polars marks its Categorical and Enum columns in the Arrow field metadata it exports
# (``_PL_CATEGORICAL2``, ``_PL_ENUM_VALUES2`` in polars 1.32+).
_POLARS_CATEGORICAL_KEY = b"_PL_CATEGORICAL"
_POLARS_ENUM_KEY = b"_PL_ENUM_VALUES"


def is_arrow_frame(data: object) -> bool:
    """Whether ``data`` is a table read through Arrow (not a pandas DataFrame, which has the
    PyCapsule interface too since pandas 2.2).

    >>> is_arrow_frame(pd.DataFrame({"x": [1]}))
    False
    """
    if isinstance(data, pd.DataFrame):
        return False
    return hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__") or _is_polars_frame(data)


def as_pandas(data: DataFrameLike | object, what: str = "data") -> pd.DataFrame:
    """``data`` as a pandas DataFrame: itself when it is one, else read through Arrow (see the
    module's notes) with a default index 0..n-1; a :class:`~mixedmodels.errors.DataError` naming
    ``what`` and the type of anything else.

    >>> import pyarrow as pa
    >>> as_pandas(pa.table({"x": [1, 2]}))["x"].tolist()
    [1, 2]
    """
    if isinstance(data, pd.DataFrame):
        return data
    if not is_arrow_frame(data):
        raise DataError(
            f"{what} must be a pandas DataFrame, a polars DataFrame or a pyarrow Table "
            f"(or an object with the Arrow PyCapsule interface), not {type(data).__name__}"
        )
    table = arrow_table(data, what)
    columns = {name: _pandas_column(table.column(i), table.schema.field(i)) for i, name in enumerate(table.column_names)}
    if len(columns) != table.num_columns:
        raise DataError(f"{what} has repeated column names")
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows), copy=False)


def arrow_table(data: object, what: str = "data") -> Any:
    """``data`` (a polars DataFrame, a pyarrow Table or RecordBatch, or an object with the
    Arrow PyCapsule interface) as a pyarrow Table, its polars Categorical and Enum columns
    marked in their fields' metadata whatever the polars version.

    >>> import pyarrow as pa
    >>> arrow_table(pa.record_batch({"x": [1.0]})).num_rows
    1
    """
    try:
        import pyarrow as pa
    except ImportError:
        raise DataError(f"{what} is a {type(data).__name__}: reading it needs pyarrow (pip install pyarrow)") from None
    if isinstance(data, pa.Table):
        return data
    table = pa.table(data)
    if _is_polars_frame(data):
        table = _marked_polars_factors(data, table)
    return table


def _is_polars_frame(data: object) -> bool:
    polars = sys.modules.get("polars")  # a polars frame exists only if polars is loaded
    return polars is not None and isinstance(data, polars.DataFrame)


def _marked_polars_factors(frame: Any, table: Any) -> Any:
    """``table`` with polars' Categorical and Enum columns marked as polars 1.32+ marks them,
    for polars versions that do not."""
    import polars as pl
    import pyarrow as pa

    fields = []
    for field, dtype in zip(table.schema, frame.schema.values()):
        key = _POLARS_ENUM_KEY if isinstance(dtype, pl.Enum) else _POLARS_CATEGORICAL_KEY if isinstance(dtype, pl.Categorical) else None
        if key is not None and not _marked(field, key):
            field = field.with_metadata({**(field.metadata or {}), key: b""})
        fields.append(field)
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields))


def _marked(field: Any, key: bytes) -> bool:
    return any(name.startswith(key) for name in (field.metadata or {}))


def _pandas_column(array: Any, field: Any) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """One Arrow column (a ChunkedArray) as the values of a pandas column."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_dictionary(kind):
        chunks = [_view_free_dictionary(chunk) for chunk in array.chunks]
        if _marked(field, _POLARS_CATEGORICAL_KEY):
            decoded = [chunk.dictionary.take(chunk.indices) for chunk in chunks]
            return pd.arrays.ArrowExtensionArray(pa.chunked_array(decoded, type=_view_free(kind.value_type)))
        categorical = pa.chunked_array(chunks, type=chunks[0].type if chunks else kind).to_pandas().array
        return categorical.as_unordered() if _marked(field, _POLARS_ENUM_KEY) else categorical
    if pa.types.is_string_view(kind):
        array = array.cast(pa.large_string())
    elif (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)) and array.null_count == 0:
        return array.to_numpy()
    return pd.arrays.ArrowExtensionArray(array)


def _view_free(kind: Any) -> Any:
    """Arrow's ``string_view`` as ``large_string`` (which pandas and Arrow's kernels handle)."""
    import pyarrow as pa

    return pa.large_string() if pa.types.is_string_view(kind) else kind


def _view_free_dictionary(chunk: Any) -> Any:
    """A dictionary array whose dictionary is ``large_string`` rather than ``string_view``."""
    import pyarrow as pa

    if not pa.types.is_string_view(chunk.type.value_type):
        return chunk
    return pa.DictionaryArray.from_arrays(chunk.indices, chunk.dictionary.cast(pa.large_string()), ordered=chunk.type.ordered)
