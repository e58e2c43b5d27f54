"""From a parsed formula and a DataFrame to the arrays the core fits: y, X, offset, weights and the
random-effects terms (level codes and per-observation model matrices), with lme4's rules for
missing values, rank-deficient X, grouping factors and term order.

Example
-------
>>> import mixedmodels as mm
>>> from mixedmodels.formula import parse_formula
>>> from mixedmodels.formula.design import build_design
>>> design = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), mm.datasets.load("sleepstudy"))
>>> design.x.shape, design.terms[0].group_name, design.terms[0].n_levels
((180, 2), 'Subject', 18)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import patsy.builtins

from .. import _core
from ..errors import DataError, FormulaError, RankDeficiencyWarning, SpecificationError, warn
from .columns import ColumnCache, ColumnValues
from .contrasts import Contrast, ContrastSpec, resolve_contrasts
from .expressions import NUMPY_FUNCTIONS, SAFE_NUMPY, check_value, columns_read, parse_expression
from .frames import DataFrameLike, as_pandas
from .model_matrix import ModelMatrixBuilder, check_column_types, check_terms, model_matrix, variables
from .parser import ParsedFormula, RandomTerm, parse_formula, quote_names

NaAction = Literal["omit", "raise"]

# What a response or offset expression calls besides Q: numpy's whitelisted elementwise functions
# by their bare names (R's log(y)) and as np.<name>, and I.
_EXPRESSION_FUNCTIONS: dict[str, Any] = {
    **{name: getattr(np, name) for name in NUMPY_FUNCTIONS},
    "np": SAFE_NUMPY,
    "numpy": SAFE_NUMPY,
    "I": patsy.builtins.I,
}

# lme4's rank tolerance for dropping fixed-effect columns (lmerControl(check.rankX)).
_RANK_TOLERANCE = 1e-7


@dataclass
class GroupingFactor:
    """A grouping factor's levels (in lme4's order) and each observation's level code.

    ``column_categories`` are the categories of each column it is built from and ``used_codes``
    the combined code (mixed radix over those categories) of each level, so new data maps onto
    levels value by value (numbers as numbers) rather than through their printed labels."""

    name: str
    columns: tuple[str, ...]
    codes: np.ndarray
    column_categories: tuple[pd.Index, ...]
    used_codes: np.ndarray

    @property
    def n_levels(self) -> int:
        return len(self.used_codes)

    @functools.cached_property
    def levels(self) -> pd.Index:
        """The levels' labels: for ``a:b``, ``<a>:<b>``, decoded from the combined codes (made
        when first asked for; a fit does not need them)."""
        labels: np.ndarray | None = None
        remaining = self.used_codes
        for categories in reversed(self.column_categories):
            part = np.asarray(categories.astype(str), dtype=object)[remaining % len(categories)]
            labels = part if labels is None else part + ":" + labels
            remaining = remaining // len(categories)
        assert labels is not None
        return pd.Index(labels.tolist(), dtype=object)

    def codes_for(self, data: pd.DataFrame) -> np.ndarray:
        """Level of each row of ``data`` (-1 for a level the model has not seen)."""
        combined = np.zeros(len(data), dtype=np.int64)
        unseen = np.zeros(len(data), dtype=bool)
        for name, categories in zip(self.columns, self.column_categories):
            if name not in data.columns:
                raise FormulaError(f"the new data lack the grouping variable {name!r}")
            column = data[name]
            if column.isna().any():
                raise DataError(
                    f"the grouping variable {name!r} is missing in {int(column.isna().sum())} rows of the new data"
                )
            if pd.api.types.is_numeric_dtype(categories.dtype):
                values = pd.to_numeric(column.astype(object), errors="coerce").to_numpy(dtype=float)
                positions = categories.get_indexer(values)
            elif pd.api.types.is_string_dtype(categories.dtype):
                positions = categories.get_indexer(column.astype(str).to_numpy(dtype=object))
            else:  # dates and Arrow booleans, matched as values: as text they would not match
                positions = categories.get_indexer(column.array)
            unseen |= positions < 0
            combined = combined * len(categories) + np.maximum(positions, 0)
        where = np.searchsorted(self.used_codes, combined).clip(max=len(self.used_codes) - 1)
        found = ~unseen & (self.used_codes[where] == combined)
        return np.where(found, where, -1)

    def subset(self, keep: np.ndarray) -> GroupingFactor:
        """The factor on the rows ``keep`` (a boolean mask), levels without rows dropped as lme4
        drops unused levels."""
        present, codes = _compress_codes(self.codes[keep].astype(np.int64))
        return GroupingFactor(self.name, self.columns, codes.astype(np.uint32), self.column_categories, self.used_codes[present])


@dataclass
class TermDesign:
    """One random-effects term: its grouping factor and its model matrix (n × k, C order)."""

    term: RandomTerm
    factor: GroupingFactor
    column_names: list[str]
    z: np.ndarray
    builder: ModelMatrixBuilder

    @property
    def group_name(self) -> str:
        return self.factor.name

    @property
    def n_levels(self) -> int:
        return self.factor.n_levels

    @property
    def k(self) -> int:
        return self.z.shape[1]

    def subset(self, keep: np.ndarray) -> TermDesign:
        """The term on the rows ``keep`` (a boolean mask)."""
        return TermDesign(self.term, self.factor.subset(keep), self.column_names, np.ascontiguousarray(self.z[keep]), self.builder)


@dataclass
class Design:
    """Everything the core needs, plus what prediction on new data needs."""

    parsed: ParsedFormula
    y: np.ndarray
    x: np.ndarray
    fixed_names: list[str]
    fixed_builder: ModelMatrixBuilder
    dropped_fixed: list[str]
    offset: np.ndarray | None
    weights: np.ndarray | None
    terms: list[TermDesign]
    row_index: pd.Index
    n_dropped: int
    offset_argument: str | None = None
    weights_argument: str | None = None
    response_trials: np.ndarray | None = field(default=None)
    # A binomial response given as levels (factor, text, booleans): its levels, the first the failure.
    response_levels: tuple[str, ...] | None = field(default=None)
    # The fixed part's contrasts (build_design's contrasts=), for the model matrices of reduced models.
    contrasts: dict[str, Contrast] = field(default_factory=dict)

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def fixed_index(self) -> pd.Index:
        """``fixed_names`` as the index of fixed-effect results."""
        return _names_index(tuple(self.fixed_names))

    def subset(self, rows: np.ndarray) -> Design:
        """The design of the rows ``rows`` (a boolean mask over the design's rows, or their
        positions): levels left without rows are dropped and fixed-effect columns that become
        linearly dependent are dropped, as lme4 does when it fits the subset. ``n_dropped``
        still counts the rows dropped for missing values from the original data.

        >>> import mixedmodels as mm
        >>> from mixedmodels.formula import parse_formula
        >>> design = build_design(parse_formula("Reaction ~ Days + (1 | Subject)"), mm.datasets.load("sleepstudy"))
        >>> part = design.subset(design.terms[0].factor.codes != 0)
        >>> part.nobs, part.terms[0].n_levels
        (170, 17)
        """
        keep = row_mask(rows, self.nobs)
        x, fixed_names, dropped = _drop_rank_deficient(np.asfortranarray(self.x[keep]), list(self.fixed_names))
        terms = sorted((term.subset(keep) for term in self.terms), key=lambda t: -t.n_levels)
        return replace(
            self,
            y=self.y[keep],
            x=x,
            fixed_names=fixed_names,
            dropped_fixed=self.dropped_fixed + dropped,
            offset=None if self.offset is None else self.offset[keep],
            weights=None if self.weights is None else self.weights[keep],
            terms=terms,
            row_index=self.row_index[keep],
            response_trials=None if self.response_trials is None else self.response_trials[keep],
        )

    def with_fixed_part(self, fixed: str, rows: pd.DataFrame) -> Design:
        """The design with the fixed part ``fixed`` (patsy text, names quoted as in ``parsed``)
        built on ``rows``, the data rows of this design; linearly dependent columns are dropped
        as :func:`build_design` drops them.

        >>> import mixedmodels as mm
        >>> from mixedmodels.formula import parse_formula
        >>> data = mm.datasets.load("sleepstudy")
        >>> design = build_design(parse_formula("Reaction ~ Days + (1 | Subject)"), data)
        >>> design.with_fixed_part("1", data).fixed_names
        ['Intercept']
        """
        _, labels = quote_names(parse_formula(self.parsed.formula), rows.columns)
        x, builder = model_matrix(fixed, rows, labels=labels, contrasts=self.contrasts)
        x, fixed_names, dropped = _drop_rank_deficient(x, list(builder.column_names))
        return replace(self, parsed=replace(self.parsed, fixed=fixed), x=x, fixed_names=fixed_names, fixed_builder=builder, dropped_fixed=dropped)


def row_mask(rows: np.ndarray, n: int) -> np.ndarray:
    """A boolean mask of ``n`` rows from a mask or from row positions; at least one row.

    >>> row_mask(np.array([0, 2]), 3).tolist()
    [True, False, True]
    """
    keep = np.zeros(n, dtype=bool)
    try:
        keep[rows] = True
    except (IndexError, TypeError, ValueError):
        raise DataError(f"rows must be a boolean mask of {n} values or positions below {n}") from None
    if not keep.any():
        raise DataError("the subset has no rows")
    return keep


@functools.lru_cache(maxsize=256)
def _names_index(names: tuple[str, ...]) -> pd.Index:
    """An index of names, shared by every design with these names (indexes are immutable; a
    pipeline makes the same one for every fit). Object dtype: from a list of strings pandas 3
    infers an Arrow-backed index, which costs about 45 µs more per Series."""
    return pd.Index(names, dtype=object)


def expression_variables(expression: str, columns: pd.Index) -> list[str]:
    """Column names an expression (Python syntax, e.g. ``log(size - incidence)``) reads;
    :class:`~mixedmodels.errors.FormulaError` naming the first that ``columns`` lack.

    >>> expression_variables("log(size - incidence) + Q('n.days')", pd.Index(["size", "incidence", "n.days"]))
    ['size', 'incidence', 'n.days']
    """
    if expression in columns:
        return [expression]
    names = columns_read(expression)
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise FormulaError(_unknown_column_message(unknown[0], columns, expression))
    return list(names)


def evaluate_expression(expression: str, data: pd.DataFrame | ColumnCache) -> np.ndarray:
    """Evaluate a response or offset expression on the columns of ``data`` as float64, after
    checking it against the whitelist (:func:`~mixedmodels.formula.expressions.check_value`);
    evaluation sees only the columns it reads and the whitelisted functions, no Python built-ins.

    >>> evaluate_expression("log(Q('n.days') + 1)", pd.DataFrame({"n.days": [0.0, np.e - 1]})).tolist()
    [0.0, 1.0]
    """
    columns = ColumnCache.of(data)
    if expression in columns.columns:
        return _column_as_float(columns[expression], expression, len(columns))
    check_value(expression)
    values = {name: _plain_values(columns[name]) for name in expression_variables(expression, columns.columns)}
    namespace = {**_EXPRESSION_FUNCTIONS, "Q": values.__getitem__, **values}
    try:
        result = eval(_compiled(expression), {"__builtins__": {}}, namespace)
    except Exception as err:  # an error of the user's expression, reported with it
        raise FormulaError(f"cannot evaluate {expression!r}: {err}") from None
    return _as_float(result, expression, len(columns))


@functools.lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    return compile(parse_expression(expression), "<formula>", "eval")


def _plain_values(values: ColumnValues) -> Any:
    """Column values for arithmetic: numpy as they are; numeric extension arrays as float64
    (missing as NaN); others as numpy objects."""
    if isinstance(values, np.ndarray):
        return values
    if _is_numeric_column(values.dtype):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return values.to_numpy()


def _is_numeric_column(dtype: Any) -> bool:
    """Real numbers: not booleans, not complex numbers (whose imaginary part a cast would drop)."""
    if isinstance(dtype, np.dtype):
        return dtype.kind in "iuf"
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)


def _column_as_float(values: ColumnValues, what: str, n_rows: int) -> np.ndarray:
    """A numeric column's values as float64 (missing as NaN); DataError for other dtypes."""
    if not _is_numeric_column(values.dtype):
        raise DataError(f"{what!r} must be numeric, but has dtype {values.dtype}")
    if isinstance(values, np.ndarray):
        return _one_per_row(np.asarray(values, dtype=float), what, n_rows)
    return _one_per_row(values.to_numpy(dtype=float, na_value=np.nan), what, n_rows)


def _as_float(values: Any, what: str, n_rows: int) -> np.ndarray:
    """Values given by the user or computed by an expression as float64, one per row (a scalar
    is repeated); numbers or booleans, not text, dates or complex numbers."""
    if isinstance(values, pd.Series):
        return _column_as_float(values.to_numpy() if isinstance(values.dtype, np.dtype) else values.array, what, n_rows)
    array = np.asarray(values)
    numbers_as_objects = array.dtype == object and pd.api.types.infer_dtype(array.ravel(), skipna=False) in (
        "integer",
        "floating",
        "mixed-integer-float",
        "decimal",
    )
    if array.dtype.kind not in "biuf" and not numbers_as_objects:
        raise DataError(f"{what!r} must be numeric, but gives values of type {_value_type(array)}")
    array = array.astype(float)
    if array.ndim == 0:
        array = np.full(n_rows, float(array))
    return _one_per_row(array, what, n_rows)


def _binary_response(values: ColumnValues, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """A response of levels as R's binomial family reads a factor: 0 for the first level (booleans:
    ``False``; a Categorical: its first category; text: the first in sorted order), 1 for the
    others; and the levels.

    >>> y, levels = _binary_response(np.array(["yes", "no", "yes"], dtype=object), "y")
    >>> y.tolist(), levels
    ([1.0, 0.0, 1.0], ('no', 'yes'))
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.asarray(values, dtype=float), ("False", "True")
    if pd.api.types.is_complex_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
        raise DataError(f"{name!r} must be numbers, booleans or levels for a binomial model, not {values.dtype}")
    categories, codes = _categories_and_codes(values)
    return (codes > 0).astype(float), tuple(str(level) for level in categories)


def _value_type(array: np.ndarray) -> str:
    if array.dtype != object:
        return str(array.dtype)
    return pd.api.types.infer_dtype(array.ravel(), skipna=True)


def _one_per_row(array: np.ndarray, what: str, n_rows: int) -> np.ndarray:
    if array.shape != (n_rows,):
        raise DataError(f"{what!r} evaluates to shape {array.shape}, expected ({n_rows},)")
    return array


def _unknown_column_message(name: str, columns: pd.Index, context: str) -> str:
    close = [c for c in map(str, columns) if c.lower() == name.lower()]
    # 'my' of log(my-var): a column whose name Python reads as several names.
    unquoted = [c for c in map(str, columns) if not c.isidentifier() and name in re.split(r"[^\w.]+", c)]
    if close:
        hint = f" (did you mean {close[0]!r}?)"
    elif unquoted:
        hint = f" (column {unquoted[0]!r} is written in backquotes, `{unquoted[0]}`, or as Q({unquoted[0]!r}))"
    else:
        hint = ""
    return f"unknown column {name!r} in {context!r}{hint}; the data have columns {list(map(str, columns))}"


def _check_columns(names: list[str], data: pd.DataFrame | ColumnCache, context: str) -> None:
    for name in names:
        if name not in data.columns:
            raise FormulaError(_unknown_column_message(name, data.columns, context))


def _argument_column(argument: str | np.ndarray | pd.Series | None, data: ColumnCache, what: str) -> tuple[np.ndarray | None, str | None]:
    """`weights=`/`offset=` given as a column name or as values, as float64 over all rows."""
    if argument is None:
        return None, None
    if isinstance(argument, str):
        _check_columns([argument], data, f"{what}={argument!r}")
        return _column_as_float(data[argument], argument, len(data)), argument
    values = _as_float(argument, what, len(data))
    return values, None


def _missing_mask(data: ColumnCache, names: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Rows with a missing or non-finite value in any of ``names``; per-column counts."""
    missing = np.zeros(len(data), dtype=bool)
    per_column: dict[str, int] = {}
    for name in names:
        values = data[name]
        dtype = values.dtype
        if isinstance(values, pd.Categorical):
            bad = values.codes < 0
        elif isinstance(dtype, np.dtype) and dtype.kind in "fc":
            bad = ~np.isfinite(values)
        elif isinstance(dtype, np.dtype) and dtype.kind in "iub":
            continue  # numpy integers and booleans cannot be missing
        else:
            bad = np.asarray(pd.isna(values), dtype=bool)
            if _is_numeric_column(dtype):
                bad = bad | ~np.isfinite(_plain_values(values))
        if bad.any():
            per_column[name] = int(bad.sum())
            missing |= bad
    return missing, per_column


def grouping_factor(columns: tuple[str, ...], data: pd.DataFrame | ColumnCache) -> GroupingFactor:
    """lme4's grouping factor for ``columns``: unused levels dropped; for ``a:b`` the levels are
    ``<a>:<b>`` with a varying slowest, each factor in its own level order."""
    data = ColumnCache.of(data)
    combined: np.ndarray | None = None
    categories_per_column: list[pd.Index] = []
    for name in columns:
        categories, codes = _categories_and_codes(data[name])
        categories_per_column.append(categories)
        combined = codes if combined is None else combined * len(categories) + codes
    assert combined is not None
    used, dense_codes = _compress_codes(combined)
    return GroupingFactor(
        name=":".join(columns),
        columns=columns,
        codes=dense_codes.astype(np.uint32).reshape(-1),
        column_categories=tuple(categories_per_column),
        used_codes=used,
    )


def _categories_and_codes(values: ColumnValues) -> tuple[pd.Index, np.ndarray]:
    """A column's categories (a Categorical's own, else its sorted distinct values) and each row's
    code (int64). Integer columns take a count table over their range, O(n), where pandas'
    Categorical sorts (26 ms against 8 ms for a million rows in 10,000 groups). Other columns
    (strings above all, as a CSV gives them) are hash-encoded once and only their distinct values
    sorted (:func:`_hash_encoded`); the levels come out in pandas' Categorical order."""
    if isinstance(values, pd.Categorical):
        return values.categories, values.codes.astype(np.int64)
    # Integers that fit int64 (all but the largest uint64 values).
    integers = isinstance(values, np.ndarray) and (
        values.dtype.kind == "i" or (values.dtype.kind == "u" and values.dtype.itemsize < 8)
    )
    if integers and len(values) > 0:
        low = int(values.min())
        if int(values.max()) - low <= 4 * len(values) + 1024:
            present, codes = _compress_codes(values.astype(np.int64) - low)
            return pd.Index((present + low).astype(values.dtype)), codes
    try:
        return _hash_encoded(values)
    except TypeError:  # distinct values that do not compare (mixed types): pandas' own order
        categorical = pd.Categorical(values)
        return categorical.categories, categorical.codes.astype(np.int64)


def _hash_encoded(values: ColumnValues) -> tuple[pd.Index, np.ndarray]:
    """Sorted distinct values and each row's rank among them, from one hash pass over the rows
    (Arrow's dictionary encoding for Arrow-backed columns, pandas' factorize otherwise) and a sort
    of the distinct values alone. pandas' Categorical sorts every row: 146 µs against 30 µs for
    sleepstudy's Subject read from a CSV, 96 ms against 45–57 ms for a million strings.

    >>> categories, codes = _hash_encoded(np.array(["b", "a", "b", "c"], dtype=object))
    >>> categories.tolist(), codes.tolist()
    (['a', 'b', 'c'], [1, 0, 1, 2])
    """
    # Only Arrow-backed columns: pandas' Python-backed strings also export __arrow_array__, which
    # would need pyarrow (not a dependency).
    arrow_backed = isinstance(values.dtype, pd.ArrowDtype) or getattr(values.dtype, "storage", None) in ("pyarrow", "pyarrow_numpy")
    arrow = getattr(values, "__arrow_array__", None)
    if arrow is not None and arrow_backed and not isinstance(values, pd.Categorical):
        import pyarrow as pa
        import pyarrow.compute as pc

        array = arrow()
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if array.null_count == 0 and (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            return _encoded_strings(array, values.dtype)
        encoded = pc.dictionary_encode(array)
        order = np.asarray(pc.sort_indices(encoded.dictionary))
        codes = np.asarray(encoded.indices.fill_null(-1), dtype=np.int64)
        distinct = pd.Index(pd.array(encoded.dictionary.take(order), dtype=values.dtype))
    else:
        codes, uniques = pd.factorize(values, sort=False)
        order = np.argsort(np.asarray(uniques), kind="stable")
        distinct = pd.Index(uniques[order])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    # Missing values (removed before designs are built) keep pandas' code −1.
    return distinct, np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)


def _encoded_strings(array: Any, dtype: Any) -> tuple[pd.Index, np.ndarray]:
    """Levels of an Arrow string array without nulls, encoded in Rust from its offsets and bytes;
    the levels come back as Python strings (one per level), so building their Index is the only
    pandas work (Arrow's take and pandas' array constructor cost 0.1 ms per factor)."""
    import pyarrow as pa

    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, dtype=np.uint8)
    codes, levels = _core.encode_strings(np.asarray(offsets, dtype=np.int64), data)
    return pd.Index(levels, dtype=dtype), codes.astype(np.int64)


def _compress_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct codes in increasing order and each observation's rank among them, in O(n)
    through a count table where the code range allows (the usual case), else by sorting."""
    span = int(codes.max()) + 1
    if span <= 4 * len(codes) + 1024:
        present = np.bincount(codes, minlength=span) > 0
        if present.all():
            return np.arange(span), codes
        used = np.flatnonzero(present)
        rank = np.cumsum(present) - 1
        return used, rank[codes]
    return np.unique(codes, return_inverse=True)


# Model-matrix columns beyond these magnitudes make the cross-products over- or underflow
# (a covariate times 1e160 was dropped as "rank deficient").
LARGEST_COLUMN, SMALLEST_COLUMN = 1e150, 1e-150


def _check_column_scales(matrix: np.ndarray, names: list[str]) -> None:
    """Refuse a model-matrix column whose largest |value| is beyond ±1e150 or, not all zero,
    within ±1e-150, naming it.

    >>> _check_column_scales(np.array([[1.0, 0.0], [2.0, 0.0]]), ["x", "zero"])
    """
    if matrix.size == 0:
        return
    largest = np.max(np.abs(matrix), axis=0)
    bad = (largest > LARGEST_COLUMN) | ((largest > 0) & (largest < SMALLEST_COLUMN))
    if bad.any():
        column = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"the model-matrix column {names[column]!r} reaches {largest[column]:.3g} in absolute value: its cross-products "
            f"over- or underflow; rescale the variable (divide by {largest[column]:.3g})"
        )


def _drop_rank_deficient(x: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop columns that are linear combinations of earlier ones (lme4, like lm, keeps the first)."""
    if x.shape[1] == 0:
        return x, names, []
    dependent = _core.dependent_columns(x, _RANK_TOLERANCE)  # in increasing order
    if not dependent:
        return x, names, []
    keep = [c for c in range(x.shape[1]) if c not in dependent]
    return np.asfortranarray(x[:, keep]), [names[c] for c in keep], [names[c] for c in dependent]


def check_identifiable(terms: list[TermDesign], n: int) -> None:
    """lme4's checks for a linear model: fewer levels, and fewer random effects, than observations."""
    for design_term in terms:
        if design_term.n_levels >= n:
            raise SpecificationError(
                f"the grouping factor {design_term.group_name!r} has {design_term.n_levels} levels for {n} "
                "observations; the number of levels of each grouping factor must be less than the "
                "number of observations"
            )
        if design_term.n_levels * design_term.k >= n:
            raise SpecificationError(
                f"the term ({design_term.term.expr} | {design_term.group_name}) has "
                f"{design_term.n_levels * design_term.k} random effects for {n} observations; "
                "the random-effects parameters and the residual variance are probably unidentifiable"
            )


def warn_if_rank_deficient(design: Design) -> None:
    """lme4's warning when fixed-effect columns were dropped, naming them."""
    if design.dropped_fixed:
        warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(design.dropped_fixed)} "
            f"column(s): {', '.join(design.dropped_fixed)}",
            RankDeficiencyWarning,
        )


def build_design(
    parsed: ParsedFormula,
    data: DataFrameLike,
    *,
    weights: str | np.ndarray | pd.Series | None = None,
    offset: str | np.ndarray | pd.Series | None = None,
    na_action: NaAction = "omit",
    check_levels: bool = True,
    binary_response: bool = False,
    contrasts: Mapping[str, ContrastSpec] | None = None,
) -> Design:
    """Build the design of a mixed model. Rows with missing values in any variable the model
    uses are dropped (``na_action="omit"``) or reported (``"raise"``); the input is not modified.
    With ``binary_response`` (binomial models) a response column of levels — booleans, a
    Categorical, text — is 0 for its first level and 1 for every other, as R codes a factor
    (booleans: ``True`` is 1; text: levels sorted as for grouping factors). ``contrasts`` codes
    factors of the fixed part (lme4's ``contrasts=``, see :mod:`.contrasts`); random-effects
    terms use the default codings, as lme4's do. ``data`` may be a polars or Arrow table
    (:mod:`.frames`).

    >>> import mixedmodels as mm
    >>> design = build_design(parse_formula("angle ~ recipe + (1 | replicate)"), mm.datasets.load("cake"), contrasts={"recipe": "contr.sum"})
    >>> design.fixed_names
    ['Intercept', 'recipe1', 'recipe2']
    """
    data = as_pandas(data)
    if len(data) == 0:
        raise DataError("the data have no rows")
    if na_action not in ("omit", "raise"):
        raise ValueError(f"na_action must be 'omit' or 'raise', not {na_action!r}")
    if not parsed.random:
        raise SpecificationError(
            f"the formula {parsed.formula!r} has no random-effects term such as (1 | group); "
            "a mixed model needs at least one"
        )

    columns = ColumnCache(data)
    parsed, labels = quote_names(parsed, data.columns)
    codings = resolve_contrasts(contrasts)
    value_expressions = [*(parsed.cbind or (parsed.response,)), *parsed.offsets]
    term_expressions = [parsed.fixed, *(term.expr for term in parsed.random)]
    # Every expression is checked before any is evaluated (the response is, before patsy sees the terms).
    for expression in value_expressions:
        check_value(expression)
    for rhs in term_expressions:
        check_terms(rhs)
    used: list[str] = []
    for expression in value_expressions:
        used += expression_variables(expression, data.columns)
    for rhs in term_expressions:
        names = variables(rhs)
        _check_columns([n for n in names if n not in data.columns][:1], data, rhs)
        check_column_types(rhs, columns)
        used += names
    fixed_variables = variables(parsed.fixed)
    for contrasted in codings:
        if contrasted not in fixed_variables:
            raise SpecificationError(
                f"contrasts are given for {contrasted!r}, which is not a variable of the fixed part {parsed.fixed!r}"
                " (lme4's contrasts apply to the fixed effects only)"
            )
    group_columns = [name for term in parsed.random for name in term.group]
    _check_columns(group_columns, data, parsed.formula)
    used += group_columns
    weight_values, weights_column = _argument_column(weights, columns, "weights")
    offset_values, offset_column = _argument_column(offset, columns, "offset")
    used += [c for c in (weights_column, offset_column) if c is not None]
    used = list(dict.fromkeys(used))

    missing, per_column = _missing_mask(columns, used)
    for what, values, column in (("weights", weight_values, weights_column), ("offset", offset_values, offset_column)):
        if values is not None and column is None:
            bad = ~np.isfinite(values)
            if bad.any():
                per_column[what] = int(bad.sum())
                missing |= bad
    n_dropped = int(missing.sum())
    if n_dropped and na_action == "raise":
        detail = ", ".join(f"{name!r}: {count}" for name, count in per_column.items())
        raise DataError(f"{n_dropped} rows have missing or non-finite values ({detail}) and na_action='raise'")
    if n_dropped == len(data):
        raise DataError(f"no rows are left after dropping rows with missing values ({per_column})")
    rows = columns.subset(~missing) if n_dropped else columns
    if weight_values is not None:
        weight_values = weight_values[~missing]
        # A weight of 0 is allowed, as in lme4: the row carries no information.
        if np.any(weight_values < 0):
            raise DataError(f"weights must be non-negative; {int(np.sum(weight_values < 0))} are not")
        if not np.any(weight_values > 0):
            raise DataError("all weights are 0: no row carries information")
    if offset_values is not None:
        offset_values = offset_values[~missing]

    if parsed.cbind:
        successes = evaluate_expression(parsed.cbind[0], rows)
        failures = evaluate_expression(parsed.cbind[1], rows)
        y = successes
        trials: np.ndarray | None = successes + failures
    else:
        trials = None
        response_levels: tuple[str, ...] | None = None
        if binary_response and parsed.response in rows.columns and not _is_numeric_column(rows[parsed.response].dtype):
            y, response_levels = _binary_response(rows[parsed.response], parsed.response)
        else:
            y = evaluate_expression(parsed.response, rows)

    for expression in parsed.offsets:
        values = evaluate_expression(expression, rows)
        offset_values = values if offset_values is None else offset_values + values

    x, fixed_builder = model_matrix(parsed.fixed, rows, labels=labels, contrasts=codings)
    fixed_names = list(fixed_builder.column_names)
    _check_column_scales(x, fixed_names)
    x, fixed_names, dropped = _drop_rank_deficient(x, fixed_names)

    terms: list[TermDesign] = []
    for term in parsed.random:
        z, builder = model_matrix(term.expr, rows, labels=labels)
        _check_column_scales(z, [f"{name} in ({term.expr} | {':'.join(term.group)})" for name in builder.column_names])
        factor = grouping_factor(term.group, rows)
        terms.append(
            TermDesign(
                term=term,
                factor=factor,
                column_names=list(builder.column_names),
                z=np.ascontiguousarray(z, dtype=float),
                builder=builder,
            )
        )
    for design_term in terms:
        if design_term.n_levels < 2:
            raise SpecificationError(
                f"the grouping factor {design_term.group_name!r} has {design_term.n_levels} level; grouping factors "
                "must have > 1 sampled level (lme4's check.nlev.gtr.1): its variance cannot be estimated"
            )
    if check_levels:
        check_identifiable(terms, len(y))
    # lme4's term order: decreasing number of levels, ties kept in formula order.
    terms.sort(key=lambda t: -t.n_levels)
    return Design(
        parsed=parsed,
        y=y,
        x=x,
        fixed_names=fixed_names,
        fixed_builder=fixed_builder,
        dropped_fixed=dropped,
        offset=offset_values,
        weights=weight_values,
        terms=terms,
        row_index=rows.index,
        n_dropped=n_dropped,
        offset_argument=offset_column,
        weights_argument=weights_column,
        response_trials=trials,
        response_levels=None if parsed.cbind else response_levels,
        contrasts=codings,
    )
