"""The reference grid of a fitted model as emmeans 1.8.4 builds it (Lenth, ``ref_grid``), and the
linear functions of the fixed effects that estimate its marginal means.

The grid holds every predictor of the fixed part at its reference values: each factor at every
level that occurs in the fitted rows, each numeric covariate at its mean over the fitted rows
(or at the values given in ``at``). The grid's model-matrix rows are built by the fitted model's
own fixed-effects builder, so interactions, ``C()`` and transformations of covariates enter as
they do in the fit. A marginal mean of the grouping variables (the ``specs`` and ``by``
variables) averages those rows over every other factor with equal weights (emmeans' default
``weights = "equal"``), whatever the cell counts. A model offset enters every row as the mean of
the offset over the fitted rows (for ``offset(log(t))`` the mean of log(t), not log of the mean).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)", mm.datasets.load("cake"))
>>> grid = reference_grid(m, ["recipe"])
>>> grid.averaged_over
['temperature']
>>> grid.linfct.loc[1, ["recipe[T.B]", "recipe[T.B]:temperature[T.185]"]].round(4).tolist()
[1.0, 0.1667]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from ..formula.model_matrix import variables
from ..results.base import MixedModelResult
from .reduced_models import fitted_rows

# emmeans' (estimability::is.estble) tolerance for a grid row to lie in the row space of X.
ESTIMABILITY_TOLERANCE = 1e-8


@dataclass(frozen=True)
class ReferenceGrid:
    """A model's reference grid reduced to the means of the grouping variables.

    ``levels`` maps every predictor of the fixed part to its values in the grid (emmeans'
    ``ref_grid_levels``); ``rows`` holds one row per marginal mean with the values of the
    grouping variables (``specs`` first varying fastest, then ``by``); ``linfct`` (rows as
    ``rows``, columns the fit's fixed-effect names) gives each mean as ``linfct @ params +
    offset``; a row that is not estimable (rank-deficient fits) is NaN. ``offset`` is the mean
    offset (None without one), ``averaged_over`` the factors averaged over with equal weights.

    >>> import mixedmodels as mm
    >>> m = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> grid = reference_grid(m, "period")
    >>> grid.levels, grid.linfct.to_numpy().tolist()[1]
    ({'period': ['1', '2', '3', '4']}, [1.0, 1.0, 0.0, 0.0])
    """

    specs: tuple[str, ...]
    by: tuple[str, ...]
    levels: dict[str, list[Any]]
    rows: pd.DataFrame
    linfct: pd.DataFrame
    offset: float | None
    averaged_over: list[str]


def reference_grid(
    result: MixedModelResult,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    at: Mapping[str, Sequence[Any]] | None = None,
) -> ReferenceGrid:
    """The reference grid of ``result`` reduced to the means of ``specs`` (factors of the fixed
    part) within each value of ``by`` (factors, or numeric covariates evaluated at ``at``).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (1 | Subject)", mm.datasets.load("sleepstudy"))
    >>> reference_grid(m, "Subject")
    Traceback (most recent call last):
    ...
    mixedmodels.errors.SpecificationError: 'Subject' is not a factor of the model's fixed part (its variables: 'Days'); emmeans needs a factor in specs
    """
    spec_names = _names(specs, "specs")
    by_names = _names(by, "by") if by is not None else ()
    overlap = set(spec_names) & set(by_names)
    if overlap:
        raise SpecificationError(f"{sorted(overlap)} are in both specs and by")
    data = fitted_rows(result.model)
    design = result.design
    predictors = variables(design.parsed.fixed)
    factors = [name for name in predictors if _is_factor(name, data[name], design.parsed.fixed)]
    for name in spec_names:
        if name not in factors:
            raise SpecificationError(_not_a_factor(name, predictors, data.columns, "specs"))
    for name in by_names:
        if name not in predictors:
            raise SpecificationError(_not_a_factor(name, predictors, data.columns, "by"))
    levels = {name: _levels(data[name]) if name in factors else [float(np.mean(data[name].to_numpy(dtype=float)))] for name in predictors}
    for name, values in (at or {}).items():
        if name not in predictors:
            raise SpecificationError(f"at names {name!r}, which is not a variable of the model's fixed part (its variables: {_quoted(predictors)})")
        levels[name] = _at_values(name, values, levels[name], name in factors)

    kept = [*spec_names, *by_names]
    averaged = [name for name in predictors if name not in kept]
    # The last variable of the product varies fastest: the averaged ones innermost, then specs[0].
    order = [*reversed(kept), *averaged]
    codes = np.indices([len(levels[name]) for name in order]).reshape(len(order), -1)
    frame = pd.DataFrame({name: _grid_column(data[name], levels[name], code, name in factors) for name, code in zip(order, codes)})
    full_x = design.fixed_builder.build(frame)
    n_averaged = int(np.prod([len(levels[name]) for name in averaged], dtype=np.int64))
    linfct = full_x.reshape(-1, n_averaged, full_x.shape[1]).mean(axis=1)
    kept_columns = [design.fixed_builder.column_names.index(name) for name in design.fixed_names]
    if design.dropped_fixed:
        linfct[~_estimable(linfct, design.fixed_builder.build(data)), :] = np.nan
    rows = pd.DataFrame({name: np.asarray(levels[name], dtype=object)[code[::n_averaged]] for name, code in zip(order, codes) if name in kept})[kept]
    offset = float(np.mean(design.offset)) if design.offset is not None else None
    return ReferenceGrid(
        specs=spec_names,
        by=by_names,
        levels=levels,
        rows=rows,
        linfct=pd.DataFrame(linfct[:, kept_columns], columns=design.fixed_index),
        offset=offset,
        averaged_over=[name for name in averaged if name in factors],
    )


def _names(value: str | Sequence[str], what: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else ()
    if not names or not all(isinstance(name, str) for name in names):
        raise SpecificationError(f"{what} must be a variable name or a non-empty list of names, not {value!r}")
    return names


def _is_factor(name: str, values: pd.Series, fixed: str) -> bool:
    """Whether emmeans sees ``name`` as a factor: a non-numeric column, or a numeric one the
    formula reads as ``C(name)`` (emmeans' ``factor(x)``)."""
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return True
    quoted = rf"(?:{re.escape(name)}|Q\(\s*['\"]{re.escape(name)}['\"]\s*\))"
    return re.search(rf"\bC\(\s*{quoted}\s*[,)]", fixed) is not None


def _levels(values: pd.Series) -> list[Any]:
    """The levels that occur in the fitted rows, in the order the model matrix codes them
    (R's model frame drops unused levels; patsy sorts levels of plain columns)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.remove_unused_categories().cat.categories)
    return sorted(pd.unique(values.to_numpy()))


def _at_values(name: str, values: Sequence[Any], default: list[Any], is_factor: bool) -> list[Any]:
    chosen = list(values)
    if not chosen:
        raise SpecificationError(f"at[{name!r}] has no values")
    if is_factor:
        unknown = [value for value in chosen if value not in default]
        if unknown:
            raise SpecificationError(f"at[{name!r}] has values {unknown!r} that are not levels of {name!r} in the fit ({default!r})")
        return chosen
    try:
        return [float(value) for value in chosen]
    except (TypeError, ValueError):
        raise SpecificationError(f"at[{name!r}] must hold numbers: {name!r} is a numeric covariate") from None


def _grid_column(original: pd.Series, levels: list[Any], codes: np.ndarray, is_factor: bool) -> Any:
    """The grid's values of one variable (``levels[codes]``) with the fitted column's type, so
    the builder codes factors as in the fit (covariates are floats: the mean of an integer
    column is not an integer)."""
    if not is_factor:
        return np.asarray(levels, dtype=float)[codes]
    if isinstance(original.dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(original.dtype.categories.get_indexer(levels)[codes], dtype=original.dtype)
    dtype = original.dtype if pd.api.types.is_numeric_dtype(original.dtype) else object
    return np.asarray(levels, dtype=dtype)[codes]


def _estimable(linfct: np.ndarray, x_full: np.ndarray) -> np.ndarray:
    """Rows in the row space of the fitted model matrix (emmeans' estimability check against a
    basis of the null space of X, estimability::nonest.basis)."""
    # The SVD of R from X = QR has X's right singular vectors without an n x n factor.
    _, singular_values, vt = np.linalg.svd(np.linalg.qr(x_full, mode="r"), full_matrices=True)
    rank = int(np.sum(singular_values > singular_values[0] * max(x_full.shape) * np.finfo(float).eps))
    null_basis = vt[rank:].T
    norms = np.linalg.norm(linfct, axis=1)
    return np.linalg.norm(linfct @ null_basis, axis=1) <= ESTIMABILITY_TOLERANCE * np.where(norms > 0, norms, 1.0)


def _not_a_factor(name: str, predictors: list[str], columns: pd.Index, what: str) -> str:
    where = "is not a column of the data" if name not in columns else "is not a factor of the model's fixed part"
    if what == "by" and name in columns:
        where = "is not a variable of the model's fixed part"
    need = "a factor in specs" if what == "specs" else "a factor or covariate of the fixed part in by"
    return f"{name!r} {where} (its variables: {_quoted(predictors)}); emmeans needs {need}"


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names) or "none"
