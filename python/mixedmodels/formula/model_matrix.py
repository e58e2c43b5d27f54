"""Model matrices from formula right-hand sides, identical to patsy's but fast for simple formulas.

:func:`model_matrix` turns a right-hand side such as ``"1 + Days"`` or ``"0 + cond"`` and a
DataFrame into a float64, Fortran-ordered matrix plus a :class:`ModelMatrixBuilder` that
rebuilds the matrix on new data (prediction). Formulas made only of column names joined by
``+`` and an intercept spec take a direct numpy path whose values, column order and column
names are exactly patsy's; everything else (interactions, ``C(...)``, ``np.log(x)``,
``I(x**2)``, splines...) is built by patsy itself. Every factor is checked against the whitelist
of :mod:`.expressions` before patsy evaluates anything, and evaluated with only numpy's
whitelisted functions (as ``np``) and patsy's built-ins in scope: not Python's built-ins, not the
caller's frame, so a fitted model means the same thing wherever it is used or unpickled.

Example
-------
>>> import pandas as pd
>>> data = pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": ["b", "a", "b"]})
>>> matrix, builder = model_matrix("x + g", data)
>>> builder.column_names
['Intercept', 'g[T.b]', 'x']
>>> matrix.tolist()
[[1.0, 1.0, 1.0], [1.0, 0.0, 2.0], [1.0, 1.0, 3.0]]
>>> builder.build(pd.DataFrame({"x": [5.0], "g": ["a"]})).tolist()
[[1.0, 0.0, 5.0]]
>>> variables("np.log(x) + C(g)")
['x', 'g']
"""

from __future__ import annotations

import ast
import functools
import io
import keyword
import pickle
import re
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy
import patsy.builtins
import patsy.eval

from ..errors import DataError, FormulaError, MixedModelError, SpecificationError
from .columns import ColumnCache, ColumnValues, frame_of
from .contrasts import Contrast, level_label
from .expressions import SAFE_NUMPY, check_term, columns_read, parse_expression, quoted_column

__all__ = [
    "BuiltTerm",
    "ModelMatrixBuilder",
    "NumpyModelMatrixBuilder",
    "PatsyModelMatrixBuilder",
    "check_column_types",
    "check_terms",
    "model_matrix",
    "variables",
]

_INTERCEPT = "Intercept"

# What a formula can call besides data columns: numpy's whitelisted functions as ``np`` and
# patsy's built-ins (C, I, Q, center, bs, Treatment...).
_FORMULA_NAMESPACE: dict[str, Any] = {
    "np": SAFE_NUMPY,
    "numpy": SAFE_NUMPY,
    **{name: getattr(patsy.builtins, name) for name in patsy.builtins.__all__},
}


class _SealedEnvironment(patsy.EvalEnvironment):
    """patsy's evaluation environment without Python's built-ins.

    patsy evaluates factors with an empty globals dict, into which ``eval`` puts every built-in
    (``open``, ``__import__``). Formulas are checked before they get here; this is the second
    line of defence. ``subset`` is overridden because patsy's returns a plain environment."""

    def eval(self, expr: str, source_name: str = "<string>", inner_namespace: Any = None) -> Any:
        code = compile(expr, source_name, "eval", self.flags, False)
        namespace = patsy.eval.VarLookupDict([inner_namespace or {}, self.namespace])
        return eval(code, {"__builtins__": {}}, namespace)

    def subset(self, names: Iterable[str]) -> _SealedEnvironment:
        return _SealedEnvironment([{name: self.namespace[name] for name in names}], self.flags)


_ADDITIVE_FORMULA = re.compile(r"[\w\s+-]*")
_ADDITIVE_TOKEN = re.compile(r"[+-]|\w+")
_SIGNS = frozenset("+-")
_SHOWN_LEVELS = 10


@dataclass(frozen=True)
class BuiltTerm:
    """One term of a built right-hand side: its factors' code (``()`` for the intercept), the
    positions of its columns in ``column_names``, the factors that are numeric (the others are
    coded as categorical) and whether every categorical factor is coded by indicators of its
    levels (treatment or full dummy coding, not e.g. ``C(g, Sum)``)."""

    factors: tuple[str, ...]
    columns: tuple[int, ...]
    numeric: frozenset[str]
    indicators: bool = True


class ModelMatrixBuilder(ABC):
    """Rebuilds the model matrix of one formula right-hand side on any data.

    ``column_names`` are patsy's names (``"Intercept"``, ``"g[T.b]"``, ``"x"``...), in
    column order. Factor levels are fixed when the builder is made: :meth:`build` raises
    :class:`~mixedmodels.errors.DataError` for a level it has not seen and
    :class:`~mixedmodels.errors.FormulaError` for a missing column.
    """

    rhs: str
    column_names: list[str]

    @abstractmethod
    def build(self, data: pd.DataFrame) -> np.ndarray:
        """Model matrix of ``data``: float64, ``(len(data), len(column_names))``, Fortran order."""

    @property
    @abstractmethod
    def terms(self) -> list[BuiltTerm]:
        """The terms behind the columns, in column order.

        >>> data = pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": ["b", "a", "b"]})
        >>> [(term.factors, term.columns) for term in model_matrix("x * g", data)[1].terms]
        [((), (0,)), (('g',), (1,)), (('x',), (2,)), (('x', 'g'), (3,))]
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rhs!r}, column_names={self.column_names!r})"


@dataclass(frozen=True)
class _CategoricalTerm:
    """A categorical main effect: its column, its levels in patsy's order and its coding: one
    indicator per level (``full_rank``), treatment contrasts, or a contrast matrix (levels ×
    columns) with its columns' name suffixes."""

    column: str
    levels: tuple[Hashable, ...]
    full_rank: bool
    contrast: np.ndarray | None = None
    suffixes: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        if self.full_rank:
            return [f"{self.column}[{level_label(level)}]" for level in self.levels]
        if self.contrast is not None:
            return [f"{self.column}{suffix}" for suffix in self.suffixes]
        # Reduced (treatment) coding drops the first level.
        return [f"{self.column}[T.{level_label(level)}]" for level in self.levels[1:]]


class NumpyModelMatrixBuilder(ModelMatrixBuilder):
    """Builder for ``+``-joined column names with numpy alone (patsy's exact output, much faster).

    Columns come in patsy's order: the intercept, then categorical columns, then numeric
    columns, each group in formula order. Without an intercept the first categorical
    column is coded with one indicator per level, the others with treatment contrasts.
    """

    def __init__(
        self,
        rhs: str,
        intercept: bool,
        categoricals: tuple[_CategoricalTerm, ...],
        numerics: tuple[str, ...],
    ) -> None:
        self.rhs = rhs
        self._intercept = intercept
        self._categoricals = categoricals
        self._numerics = numerics
        self.column_names = (
            [_INTERCEPT] * intercept
            + [name for term in categoricals for name in term.column_names]
            + list(numerics)
        )

    @property
    def terms(self) -> list[BuiltTerm]:
        widths = [1] * self._intercept + [len(term.column_names) for term in self._categoricals] + [1] * len(self._numerics)
        factors = [()] * self._intercept + [(term.column,) for term in self._categoricals] + [(name,) for name in self._numerics]
        coded = [term.full_rank or term.contrast is None or _indicator_coding(term.contrast) for term in self._categoricals]
        indicators = [True] * self._intercept + coded + [True] * len(self._numerics)
        ends = np.cumsum(widths).tolist()
        return [
            BuiltTerm(term_factors, tuple(range(end - width, end)), frozenset(term_factors) & frozenset(self._numerics), indicator)
            for term_factors, width, end, indicator in zip(factors, widths, ends, indicators)
        ]

    def build(self, data: pd.DataFrame) -> np.ndarray:
        columns = [term.column for term in self._categoricals] + list(self._numerics)
        _require_columns(self.rhs, columns, data)
        values = ColumnCache(data)
        codes = {
            term.column: _codes_for_levels(term, values[term.column]) for term in self._categoricals
        }
        for name in self._numerics:
            if not _is_numeric(values[name].dtype):
                raise DataError(
                    f"column {name!r} was numeric when the model was built"
                    f" but now has dtype {values[name].dtype}"
                )
        return self._assemble(len(data), codes, values)

    def _assemble(
        self, n_rows: int, codes: Mapping[str, np.ndarray], data: ColumnCache
    ) -> np.ndarray:
        """Fill the matrix column by column from categorical codes and numeric ``data`` columns."""
        matrix = np.empty((n_rows, len(self.column_names)), dtype=np.float64, order="F")
        start = 0
        if self._intercept:
            matrix[:, 0] = 1.0
            start = 1
        for term in self._categoricals:
            width = len(term.column_names)
            if term.contrast is not None and not term.full_rank:
                matrix[:, start : start + width] = term.contrast[codes[term.column]]
            else:
                _fill_indicators(matrix[:, start : start + width], codes[term.column], 0 if term.full_rank else 1)
            start += width
        for name in self._numerics:
            values = data[name]
            matrix[:, start] = _numeric_values(values)
            # numpy integer columns cannot hold missing values; anything else may hold NaN or NA.
            integer = isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu"
            if not integer and np.isnan(matrix[:, start]).any():
                raise DataError(f"column {name!r} has missing values")
            start += 1
        return matrix


def _indicator_coding(matrix: np.ndarray) -> bool:
    """Whether each column of a contrast matrix (levels × columns) is the indicator of one level."""
    return bool(np.all((matrix == 0) | (matrix == 1)) and np.all(matrix.sum(axis=0) == 1))


class PatsyModelMatrixBuilder(ModelMatrixBuilder):
    """Builder for any patsy formula, wrapping patsy's ``DesignInfo``.

    Pickles although patsy's objects refuse to: their attributes are stored and the
    evaluation environment (numpy and patsy's built-ins) is recreated on unpickling.
    """

    def __init__(
        self,
        rhs: str,
        design_info: patsy.DesignInfo,
        columns: tuple[str, ...],
        column_names: list[str] | None = None,
    ) -> None:
        self.rhs = rhs
        self._design_info = design_info
        self._columns = columns
        self.column_names = list(design_info.column_names if column_names is None else column_names)

    @property
    def terms(self) -> list[BuiltTerm]:
        info = self._design_info
        return [
            BuiltTerm(
                tuple(factor.name() for factor in term.factors),
                tuple(range(columns.start, columns.stop)),
                frozenset(factor.name() for factor in term.factors if info.factor_infos[factor].type == "numerical"),
                all(
                    _indicator_coding(contrast.matrix)
                    for subterm in info.term_codings[term]
                    for contrast in subterm.contrast_matrices.values()
                ),
            )
            for term, columns in info.term_slices.items()
        ]

    def build(self, data: pd.DataFrame) -> np.ndarray:
        _require_columns(self.rhs, self._columns, data)
        frame = _patsy_frame(data, ColumnCache(data), self._columns, keep_categoricals=False)
        try:
            (matrix,) = patsy.build_design_matrices(
                [self._design_info], frame, NA_action="raise"
            )
        except patsy.PatsyError as err:
            raise _build_error(self.rhs, self._columns, self._design_info, frame, err) from err
        return np.array(matrix, dtype=np.float64, order="F")

    def __getstate__(self) -> dict[str, Any]:
        buffer = io.BytesIO()
        _PatsyPickler(buffer).dump(self._design_info)
        return {
            "rhs": self.rhs,
            "columns": self._columns,
            "design_info": buffer.getvalue(),
            "column_names": self.column_names,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        design_info = pickle.loads(state["design_info"])
        PatsyModelMatrixBuilder.__init__(self, state["rhs"], design_info, state["columns"], state.get("column_names"))


def model_matrix(
    rhs: str,
    data: pd.DataFrame | ColumnCache,
    *,
    labels: Mapping[str, str] | None = None,
    contrasts: Mapping[str, Contrast] | None = None,
) -> tuple[np.ndarray, ModelMatrixBuilder]:
    """Build the model matrix for formula right-hand side ``rhs`` on ``data`` (a DataFrame, or
    a :class:`~mixedmodels.columns.ColumnCache` of one).

    ``rhs`` is checked (:func:`check_terms`) before anything is evaluated. ``data`` must already
    be free of missing values in the columns the formula reads
    (:class:`~mixedmodels.errors.DataError` otherwise). ``labels`` rewrites parts of column
    names, e.g. ``{"Q('n.days')": "n.days"}`` for columns the formula's text had to quote.
    ``contrasts`` codes the factors it names (:mod:`.contrasts`; columns ``rhs`` does not read
    are ignored); other factors get treatment contrasts, but an ordered ``Categorical``
    polynomial ones, as R codes an ordered factor. ``C(f, Sum)`` in ``rhs`` overrides both.
    Returns the float64, Fortran-ordered matrix and the builder that makes it, reusable on new data.

    >>> import pandas as pd
    >>> data = pd.DataFrame({"cond": ["b", "a", "b"], "Days": [0, 1, 2]})
    >>> matrix, builder = model_matrix("0 + cond", data)
    >>> builder.column_names, matrix.tolist()
    (['cond[a]', 'cond[b]'], [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    >>> type(model_matrix("1 + Days", data)[1]).__name__
    'NumpyModelMatrixBuilder'
    >>> model_matrix("I(Days**2)", data)[0][:, 1].tolist()
    [0.0, 1.0, 4.0]
    >>> model_matrix("Days * cond", data, contrasts={"cond": Contrast("cond", "sum")})[1].column_names
    ['Intercept', 'cond1', 'Days', 'Days:cond1']
    """
    if not isinstance(data, ColumnCache):
        _require_frame(data)
    check_terms(rhs)
    values = ColumnCache.of(data)
    codings = _codings(rhs, values, contrasts or {})
    fast = _fast_model_matrix(rhs, values, codings)
    if fast is not None:
        return fast
    description = _patsy_description(rhs)
    columns = tuple(name for name in variables(rhs) if name in values.columns)
    check_column_types(rhs, values, dates_as_levels=True)
    frame = _patsy_frame(frame_of(data), values, columns, keep_categoricals=True)
    # patsy takes a factor's coding from the contrast its values carry (as C(values, contrast) makes).
    coded: Mapping[str, Any] = frame
    if codings:
        coded = {name: frame[name] for name in columns} | {
            name: patsy.builtins.C(frame[name], contrast) for name, contrast in codings.items()
        }
    try:
        matrix = patsy.dmatrix(
            description,
            coded,
            eval_env=_SealedEnvironment([_FORMULA_NAMESPACE]),
            NA_action="raise",
            return_type="matrix",
        )
    except patsy.PatsyError as err:
        raise _construction_error(rhs, frame, err) from err
    except MixedModelError:
        raise
    except (ValueError, TypeError) as err:
        # patsy's stateful transforms (bs, cr, cc, center...) check their settings and data when
        # they finish learning, outside patsy's error type: bs(x) without df or knots, bs(text).
        raise FormulaError(f"cannot build the model matrix of formula {rhs!r}: {err}") from None
    names = [_relabelled(name, labels) for name in matrix.design_info.column_names]
    builder = PatsyModelMatrixBuilder(rhs, matrix.design_info, columns, names)
    return np.array(matrix, dtype=np.float64, order="F"), builder


@functools.lru_cache(maxsize=256)  # per fit this is a lookup: pipelines repeat their formulas
def check_terms(rhs: str) -> None:
    """Check every factor of formula right-hand side ``rhs`` against the whitelist of
    :mod:`.expressions`: patsy's formula parser finds the factors' Python code, which is
    checked on its syntax tree; nothing is evaluated.

    >>> check_terms("Days + C(g, Sum) + np.log(x):g - 1")
    >>> check_terms("Days + I(__import__('os'))")
    Traceback (most recent call last):
    ...
    mixedmodels.errors.FormulaError: '__import__(...)' is not allowed in the model term ...
    """
    for code in _factor_codes(rhs):
        check_term(code)


def variables(rhs: str) -> list[str]:
    """Names of the data columns that formula right-hand side ``rhs`` reads, in order of appearance.

    Names the formula calls, ``np`` and the contrast of ``C(...)`` are not columns;
    ``Q("name")`` reads column ``name``.

    >>> variables("1 + Days")
    ['Days']
    >>> variables("np.log(x) + C(g, Treatment('b')) + I(x**2) + x:z")
    ['x', 'g', 'z']
    >>> variables("0")
    []
    """
    return list(_variables(rhs))


@functools.lru_cache(maxsize=256)
def _variables(rhs: str) -> tuple[str, ...]:
    """`variables` for one formula, parsed once: a pipeline fits the same formula many times."""
    return tuple(dict.fromkeys(name for code in _factor_codes(rhs) for name in columns_read(code)))


@functools.lru_cache(maxsize=256)
def _factor_codes(rhs: str) -> tuple[str, ...]:
    """The Python code of each distinct factor of ``rhs``: the names of an additive formula
    (patsy's parser recurses once per term and fails at a few hundred), else as patsy parses it."""
    additive = _parse_additive(rhs)
    if additive is not None:
        return additive[1]
    description = _patsy_description(rhs)
    return tuple(dict.fromkeys(factor.code for term in description.rhs_termlist for factor in term.factors))


@functools.lru_cache(maxsize=256)
def _patsy_description(rhs: str) -> patsy.ModelDesc:
    """patsy's parse of ``rhs`` (which evaluates nothing), its failures as FormulaError."""
    try:
        description = patsy.ModelDesc.from_formula(rhs)
    except patsy.PatsyError as err:
        raise FormulaError(f"cannot parse formula {rhs!r}: {err}") from err
    except AssertionError:
        # patsy's tokenizer asserts on a Python expression that begins with an operator (x + ==y).
        raise FormulaError(f"cannot parse formula {rhs!r}: an operator stands where a variable belongs") from None
    except RecursionError:
        raise FormulaError(f"formula {rhs!r} has too many terms for patsy's parser") from None
    if description.lhs_termlist:
        raise FormulaError(f"expected only a right-hand side, without '~', but got {rhs!r}")
    return description


def _codings(rhs: str, values: ColumnCache, contrasts: Mapping[str, Contrast]) -> dict[str, Contrast]:
    """The coding of each column that ``rhs`` reads as a factor, written as a name or as
    ``C(name, ...)``: its contrast in ``contrasts``, else polynomial contrasts for an ordered
    Categorical (R's default). :class:`~mixedmodels.errors.SpecificationError` when ``contrasts``
    names a column that ``rhs`` reads as numbers (a numeric column, or within an expression).

    >>> data = pd.DataFrame({"dose": pd.Categorical(["lo", "hi"], ["lo", "hi"], ordered=True), "x": [1.0, 2.0]})
    >>> _codings("dose + x", ColumnCache(data), {})
    {'dose': Contrast(column='dose', kind='poly', names=())}
    >>> _codings("dose + x", ColumnCache(data), {"x": Contrast("x", "sum")})
    Traceback (most recent call last):
    ...
    mixedmodels.errors.SpecificationError: contrasts are given for 'x', but the formula 'dose + x' reads it as numbers ...
    """
    codings: dict[str, Contrast] = {}
    for column in _variables(rhs):
        if column not in values.columns:
            continue
        contrast = contrasts.get(column)
        dtype = values[column].dtype
        ordered = isinstance(dtype, pd.CategoricalDtype) and bool(dtype.ordered)
        if contrast is None and not ordered:
            continue
        readers = [code for code in _factor_codes(rhs) if column in columns_read(code)]
        as_levels = all(
            _level_column(code) == column or (_plain_column(code) == column and _column_kind(values[column]) == "categorical")
            for code in readers
        )
        if as_levels:
            codings[column] = contrast or Contrast(column, "poly")
        elif contrast is not None:
            how = next(code for code in readers if _level_column(code) != column)
            raise SpecificationError(
                f"contrasts are given for {column!r}, but the formula {rhs!r} reads it as numbers ({how}); "
                f"contrasts code factors: write C({how}) to use its values as levels"
            )
    return codings


@functools.lru_cache(maxsize=256)
def _plain_column(code: str) -> str | None:
    """The column a factor is, written as its name or as ``Q("name")``; else None."""
    body = parse_expression(code).body
    return body.id if isinstance(body, ast.Name) else quoted_column(body)


def _relabelled(name: str, labels: Mapping[str, str] | None) -> str:
    for quoted, label in (labels or {}).items():
        name = name.replace(quoted, label)
    return name


def _fast_model_matrix(
    rhs: str, data: ColumnCache, codings: Mapping[str, Contrast]
) -> tuple[np.ndarray, NumpyModelMatrixBuilder] | None:
    """The numpy path's matrix and builder, or None when ``rhs`` or ``data`` needs patsy."""
    parsed = _parse_additive(rhs)
    # Empty data leaves categorical levels undefined; patsy decides what that means.
    if parsed is None or len(data) == 0 or not data.columns.is_unique:
        return None
    intercept, names = parsed
    if not all(name in data.columns for name in names):
        return None
    kinds = {name: _column_kind(data[name]) for name in names}
    if None in kinds.values():
        return None
    categoricals: list[_CategoricalTerm] = []
    codes: dict[str, np.ndarray] = {}
    for name in names:
        if kinds[name] == "categorical":
            levels, codes[name] = _learn_levels(name, data[name])
            # patsy spends the intercept's degree of freedom on the first categorical term.
            full_rank = not intercept and not categoricals
            contrast = codings.get(name)
            if contrast is None or full_rank:
                categoricals.append(_CategoricalTerm(name, levels, full_rank))
            else:
                coding = contrast.code_without_intercept(levels)
                categoricals.append(_CategoricalTerm(name, levels, full_rank, coding.matrix, tuple(coding.column_suffixes)))
    numerics = tuple(name for name in names if kinds[name] == "numeric")
    builder = NumpyModelMatrixBuilder(rhs, intercept, tuple(categoricals), numerics)
    return builder._assemble(len(data), codes, data), builder


@functools.lru_cache(maxsize=256)
def _parse_additive(rhs: str) -> tuple[bool, tuple[str, ...]] | None:
    """Intercept flag and names of a formula of ``+``-joined identifiers, 0 and 1; None otherwise.

    Follows patsy: the intercept is present unless removed, ``+ 0`` and ``- 1`` remove it,
    ``+ 1`` and ``- 0`` restore it, the last of them wins. Subtracting or repeating a name
    is left to patsy.
    """
    if not _ADDITIVE_FORMULA.fullmatch(rhs):
        return None
    tokens = _ADDITIVE_TOKEN.findall(rhs)
    if not tokens:
        return None
    if tokens[0] not in _SIGNS:
        tokens.insert(0, "+")
    if len(tokens) % 2:
        return None
    intercept = True
    names: list[str] = []
    for sign, atom in zip(tokens[::2], tokens[1::2]):
        if sign not in _SIGNS or atom in _SIGNS:
            return None
        if atom in ("0", "1"):
            intercept = (atom == "1") == (sign == "+")
        elif sign == "+" and _is_plain_name(atom) and atom not in names:
            names.append(atom)
        else:
            return None
    return intercept, tuple(names)


def _is_plain_name(token: str) -> bool:
    return token.isidentifier() and not keyword.iskeyword(token)


def _column_kind(values: ColumnValues) -> str | None:
    """"numeric" or "categorical" as patsy would treat a column; None if the numpy path cannot."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return "numeric"
    if isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return "categorical"
    if isinstance(dtype, np.dtype) and dtype.kind == "b":  # patsy: levels False and True
        return "categorical"
    # Object columns qualify only when every value is a string, so that sorting matches patsy's.
    if isinstance(dtype, np.dtype) and dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return "categorical"
    if _is_numeric(dtype):
        return "numeric"
    return None


def _is_numeric(dtype: Any) -> bool:
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def _learn_levels(name: str, values: ColumnValues) -> tuple[tuple[Hashable, ...], np.ndarray]:
    """Levels in patsy's order and each row's level index, for a column patsy calls categorical."""
    dtype = values.dtype
    if isinstance(values, pd.Categorical):
        # patsy keeps every category, used or not, in the Categorical's own order.
        levels, codes = tuple(values.categories), values.codes.astype(np.intp)
    elif isinstance(dtype, np.dtype) and dtype.kind == "b":
        # patsy always uses both boolean levels, even if only one occurs.
        return (False, True), values.astype(np.intp)
    else:
        codes, uniques = pd.factorize(values)
        labels = list(uniques)
        # patsy sorts the distinct values with Python's "<" (plain code-point order for strings).
        order = sorted(range(len(labels)), key=labels.__getitem__)
        levels = tuple(labels[i] for i in order)
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        codes = np.where(codes < 0, -1, rank[codes])
    if (codes < 0).any():
        raise DataError(f"column {name!r} has missing values")
    return levels, codes


def _codes_for_levels(term: _CategoricalTerm, values: ColumnValues) -> np.ndarray:
    """Each row's index into ``term.levels``; DataError for unseen levels or missing values."""
    dtype = values.dtype
    if isinstance(values, pd.Categorical):
        category_codes = values.codes.astype(np.intp)
        if tuple(values.categories) == term.levels:
            codes = category_codes
        else:
            # Other categories (a subset, another order): translate each category once.
            translation = _level_index(term.levels).get_indexer(values.categories)
            codes = np.where(category_codes < 0, -1, translation[category_codes])
    elif isinstance(dtype, np.dtype) and dtype.kind == "b" and term.levels == (False, True):
        codes = values.astype(np.intp)
    else:
        codes = _level_index(term.levels).get_indexer(values)
    if (codes < 0).any():
        unmatched = values[codes < 0]
        if pd.isna(unmatched).any():
            raise DataError(f"column {term.column!r} has missing values")
        where = f"column {term.column!r}"
        raise DataError(_unseen_levels_message(where, pd.unique(unmatched), term.levels))
    return codes


def _level_index(levels: tuple[Hashable, ...]) -> pd.Index:
    # Tuples are levels too, not the keys of a MultiIndex.
    return pd.Index(levels, tupleize_cols=False)


def _unseen_levels_message(
    where: str, unseen: Iterable[Hashable], levels: tuple[Hashable, ...]
) -> str:
    known = ", ".join(repr(level) for level in levels[:_SHOWN_LEVELS])
    if len(levels) > _SHOWN_LEVELS:
        known += ", ..."
    return (
        f"{where} has level(s) {', '.join(repr(level) for level in unseen)} "
        f"not seen when the model was built (known levels: {known})"
    )


def _fill_indicators(block: np.ndarray, codes: np.ndarray, first_level: int) -> None:
    """Write 0/1 indicator columns for levels ``first_level...`` into ``block``, in one scatter."""
    block[...] = 0.0
    rows = np.flatnonzero(codes >= first_level)
    block[rows, codes[rows] - first_level] = 1.0


def _numeric_values(values: ColumnValues) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values  # the cast happens while filling the matrix
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _require_frame(data: object) -> None:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")


def _require_columns(rhs: str, columns: Iterable[str], data: pd.DataFrame) -> None:
    _require_frame(data)
    missing = [name for name in columns if name not in data.columns]
    if missing:
        listed = ", ".join(map(repr, missing))
        raise FormulaError(f"formula {rhs!r} uses column(s) {listed} missing from the data")


def check_column_types(rhs: str, data: pd.DataFrame | ColumnCache, *, dates_as_levels: bool = False) -> None:
    """:class:`~mixedmodels.errors.DataError` naming a column that a factor of ``rhs`` reads as
    numbers but that holds none: dates, durations, periods, intervals or complex numbers.

    The data of ``C(...)`` are levels, whatever they hold. With ``dates_as_levels``, as in
    patsy (which :func:`model_matrix` follows), only durations and complex numbers are refused
    elsewhere: dates, periods and intervals are levels too.

    >>> import pandas as pd
    >>> data = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=3)})
    >>> check_column_types("C(when)", data)
    >>> check_column_types("when", data)
    Traceback (most recent call last):
    ...
    mixedmodels.errors.DataError: column 'when' has dtype datetime64[...], which a model term cannot use: ...
    """
    values = ColumnCache.of(data)
    for name in _columns_read_as_values(rhs):
        try:
            dtype = values[name].dtype
        except FormulaError:  # not a column: the formula's other checks name it
            continue
        if isinstance(dtype, np.dtype) and dtype.kind in "biufOSU":
            continue  # the usual case, decided without pandas' slower dtype tests
        if pd.api.types.is_complex_dtype(dtype):
            raise DataError(f"column {name!r} has complex values, which a model term cannot use")
        if getattr(dtype, "kind", "") == "m" or (_is_temporal(dtype) and not dates_as_levels):
            written = name if name.isidentifier() else f"Q({name!r})"
            raise DataError(
                f"column {name!r} has dtype {dtype}, which a model term cannot use: convert it to "
                f"numbers for a slope (e.g. days since the first date), or write C({written}) for levels"
            )


@functools.lru_cache(maxsize=256)
def _columns_read_as_values(rhs: str) -> tuple[str, ...]:
    """The columns the factors of ``rhs`` read other than as levels (the data of C)."""
    read = (name for code in _factor_codes(rhs) for name in columns_read(code) if name != _level_column(code))
    return tuple(dict.fromkeys(read))


def _is_temporal(dtype: Any) -> bool:
    """Dates, times, durations, periods and intervals, numpy's, pandas' or Arrow's."""
    if isinstance(dtype, (pd.PeriodDtype, pd.IntervalDtype)):
        return True
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow.types  # loaded already: the column is an Arrow array

        return pyarrow.types.is_temporal(dtype.pyarrow_dtype)
    return getattr(dtype, "kind", "") in ("M", "m")


@functools.lru_cache(maxsize=256)
def _level_column(code: str) -> str | None:
    """The column a factor reads as levels, ``g`` in ``C(g, ...)`` or ``C(Q("g"), ...)``; else None."""
    body = parse_expression(code).body
    if not (isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id == "C" and body.args):
        return None
    data = body.args[0]
    return data.id if isinstance(data, ast.Name) else quoted_column(data)


def _patsy_frame(
    data: pd.DataFrame, values: ColumnCache, columns: Iterable[str], *, keep_categoricals: bool
) -> pd.DataFrame:
    """``data`` with the columns patsy reads in forms patsy understands.

    patsy predates pandas' extension arrays: it fails on nullable, Arrow and sparse columns
    (numbers, booleans, strings), which are handed to it as numpy values. Categorical columns
    are kept when a model is built (their categories order the levels); for prediction they
    become plain values, since patsy rejects a Categorical whose categories differ from the
    learned levels even when every value is a known level (a subset of the data), while plain
    values are matched level by level, as patsy matches the codes of an identical Categorical.
    """
    replaced = {}
    for name in columns:
        column = values[name]
        if isinstance(column, pd.Categorical):
            if not keep_categoricals:
                replaced[name] = np.asarray(column, dtype=object)
        elif not isinstance(column, np.ndarray):
            replaced[name] = _numpy_values(name, column)
    if not replaced:
        return data
    # As Series of their own dtype: pandas would infer dates (or strings) back from objects.
    return data.assign(**{name: pd.Series(array, index=data.index, dtype=array.dtype, copy=False) for name, array in replaced.items()})


def _numpy_values(name: str, values: pd.api.extensions.ExtensionArray) -> np.ndarray:
    """An extension array's values as numpy: booleans as bool, numbers as their numpy dtype
    (float64 with NaN when some are missing), anything else as objects (None when missing)."""
    dtype = values.dtype
    missing = np.asarray(pd.isna(values), dtype=bool)
    if pd.api.types.is_bool_dtype(dtype):
        if missing.any():
            raise DataError(f"column {name!r} has missing values")
        return values.to_numpy(dtype=bool)
    if _is_numeric(dtype):
        numpy_dtype = getattr(dtype, "numpy_dtype", None)
        if missing.any() or not isinstance(numpy_dtype, np.dtype) or numpy_dtype.kind not in "iuf":
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        return values.to_numpy(dtype=numpy_dtype)
    return values.to_numpy(dtype=object, na_value=None)


def _construction_error(rhs: str, data: pd.DataFrame, err: patsy.PatsyError) -> Exception:
    """The library error for patsy failing to build the model matrix of ``rhs`` on ``data``."""
    try:
        columns = [name for name in variables(rhs) if name in data.columns]
    except FormulaError:
        columns = []
    known = _undefined_name_error(rhs, err) or _missing_values_error(rhs, columns, data)
    return known or FormulaError(f"cannot build the model matrix of formula {rhs!r}: {err}")


def _build_error(
    rhs: str,
    columns: Iterable[str],
    design_info: patsy.DesignInfo,
    data: pd.DataFrame,
    err: patsy.PatsyError,
) -> Exception:
    """The library error for patsy failing to rebuild the model matrix of ``rhs`` on ``data``."""
    known = _undefined_name_error(rhs, err) or _missing_values_error(rhs, columns, data)
    if known:
        return known
    for factor, info in design_info.factor_infos.items():
        unseen = _unseen_levels(factor, info, data) if info.type == "categorical" else []
        if unseen:
            read = [name for name in columns_read(factor.name()) if name in data.columns]
            where = f"column {', '.join(map(repr, read))}"
            if read != [factor.name()]:
                where += f" (in {factor.name()!r})"
            return DataError(_unseen_levels_message(where, unseen, info.categories))
    return DataError(f"cannot build the model matrix of formula {rhs!r} for these data: {err}")


def _undefined_name_error(rhs: str, err: patsy.PatsyError) -> FormulaError | None:
    # patsy chains the NameError raised while evaluating a factor.
    if isinstance(err.__cause__, NameError) and err.__cause__.name:
        return FormulaError(
            f"formula {rhs!r} uses {err.__cause__.name!r},"
            " which is neither a column of the data nor a known function"
        )
    return None


def _missing_values_error(
    rhs: str, columns: Iterable[str], data: pd.DataFrame
) -> DataError | None:
    incomplete = ", ".join(repr(name) for name in columns if data[name].isna().any())
    if incomplete:
        return DataError(f"column(s) {incomplete} used by formula {rhs!r} have missing values")
    return None


def _unseen_levels(
    factor: Any, info: patsy.design_info.FactorInfo, data: pd.DataFrame
) -> list[Hashable]:
    """Values of a categorical factor on ``data`` that are not among its learned levels."""
    try:
        values = factor.eval(info.state, data)
    except patsy.PatsyError:
        return []
    # C(...) wraps its data in a box carrying levels and contrast.
    if hasattr(values, "contrast") and hasattr(values, "levels"):
        values = values.data
    learned = set(info.categories)
    observed = pd.unique(np.asarray(values, dtype=object).ravel())
    return [value for value in observed if not _is_missing(value) and value not in learned]


def _is_missing(value: object) -> bool:
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


class _PatsyPickler(pickle.Pickler):
    """Pickles patsy objects by their attributes, bypassing patsy's refusal to be pickled.

    Evaluation environments hold modules and closures, so they are stored as the names they
    contain and rebuilt from the fixed formula namespace.
    """

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, patsy.EvalEnvironment):
            names = tuple(name for name in _FORMULA_NAMESPACE if name in obj.namespace)
            return _formula_environment, (names,)
        if type(obj).__module__.startswith("patsy.") and hasattr(obj, "__dict__"):
            return _bare_instance, (type(obj),), dict(obj.__dict__)
        return NotImplemented


def _formula_environment(names: tuple[str, ...]) -> patsy.EvalEnvironment:
    return _SealedEnvironment([_FORMULA_NAMESPACE]).subset(names)


def _bare_instance(cls: type) -> Any:
    return object.__new__(cls)
