"""Contrast codings of factors, as R's ``contrasts=`` argument of ``lm``, ``lmer`` and ``glmer``.

A :class:`Contrast` is a coding patsy accepts wherever it accepts its own (``Treatment``,
``Sum``...): :meth:`~Contrast.code_without_intercept` gives the levels × (columns) matrix of a
factor whose intercept is spent elsewhere, :meth:`~Contrast.code_with_intercept` the one indicator
column per level that R and patsy both use when a factor must span the intercept (``0 + f``, or
``f:x`` without ``f``). The columns are named as R's ``model.matrix`` names them, appended to the
factor's name: ``f1``, ``f2`` for ``contr.sum`` and ``contr.helmert``; ``f.L``, ``f.Q``, ``f.C``,
``f^4``... for ``contr.poly``; ``fb-a``, ``fc-b`` for MASS's ``contr.sdif``; a matrix's column
names, or ``1..m`` without them. Treatment codings (``contr.treatment`` and ``contr.SAS``, whose
reference is the last level) keep patsy's names, ``f[T.b]``, as every treatment-coded model here
does; indicator columns are ``f[a]``.

Example
-------
>>> contrast = resolve_contrasts({"f": "contr.sdif"})["f"]
>>> coding = contrast.code_without_intercept(["a", "b", "c"])
>>> coding.column_suffixes, coding.matrix.tolist()
(['b-a', 'c-b'], [[-0.6666666666666666, -0.3333333333333333], [0.3333333333333333, -0.3333333333333333], [0.3333333333333333, 0.6666666666666666]])
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from patsy.contrasts import ContrastMatrix

from ..errors import SpecificationError

__all__ = ["Contrast", "ContrastSpec", "level_label", "resolve_contrasts"]

# What a user may give for one factor: an R contrast's name or a levels × columns matrix.
ContrastSpec: TypeAlias = str | np.ndarray | pd.DataFrame | Sequence[Sequence[float]]

_KINDS = ("treatment", "sum", "helmert", "poly", "SAS", "sdif")
_BY_NAME = {kind.lower(): kind for kind in _KINDS}
# R computes contr.poly only up to 95 levels (beyond, the orthogonal polynomials lose accuracy).
_MOST_POLYNOMIAL_LEVELS = 96


@dataclass(frozen=True, eq=False)
class Contrast:
    """The coding of one factor: ``kind`` is one of R's contrasts (``"sum"``, ``"poly"``...) or
    ``"matrix"`` with ``matrix`` (levels × columns) and its column ``names``.

    >>> Contrast("f", "sum").code_without_intercept(["a", "b", "c"]).matrix.tolist()
    [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]
    >>> Contrast("dose", "poly").code_without_intercept(["low", "mid", "high"]).column_suffixes
    ['.L', '.Q']
    """

    column: str
    kind: str
    matrix: np.ndarray | None = field(default=None, repr=False)
    names: tuple[str, ...] = ()

    def code_with_intercept(self, levels: Sequence[Hashable]) -> ContrastMatrix:
        """One indicator column per level, as R's ``model.matrix`` when the factor spans the intercept."""
        return ContrastMatrix(np.eye(len(levels)), [f"[{level_label(level)}]" for level in levels])

    def code_without_intercept(self, levels: Sequence[Hashable]) -> ContrastMatrix:
        """The factor's contrast matrix and R's column-name suffixes."""
        n = len(levels)
        if n < 2:
            raise SpecificationError(f"contrasts for {self.column!r} need at least 2 levels, but it has {n}")
        labels = [level_label(level) for level in levels]
        if self.kind == "matrix":
            assert self.matrix is not None
            return ContrastMatrix(self._checked_matrix(n), list(self.names))
        if self.kind in ("treatment", "SAS"):
            reference = 0 if self.kind == "treatment" else n - 1
            kept = [i for i in range(n) if i != reference]
            return ContrastMatrix(np.eye(n)[:, kept], [f"[T.{labels[i]}]" for i in kept])
        if self.kind == "sum":
            return ContrastMatrix(np.vstack([np.eye(n - 1), -np.ones((1, n - 1))]), _numbered(n - 1))
        if self.kind == "helmert":
            # Column j compares level j+1 with the mean of the levels before it (R's contr.helmert).
            rows, columns = np.indices((n, n - 1))
            matrix = np.where(rows <= columns, -1.0, np.where(rows == columns + 1, rows, 0.0).astype(float))
            return ContrastMatrix(matrix, _numbered(n - 1))
        if self.kind == "sdif":
            # MASS's contr.sdif: successive differences, coefficient j means level j+1 minus level j.
            rows, columns = np.indices((n, n - 1))
            matrix = np.where(rows > columns, columns + 1.0, columns + 1.0 - n) / n
            return ContrastMatrix(matrix, [f"{labels[j + 1]}-{labels[j]}" for j in range(n - 1)])
        assert self.kind == "poly"
        if n > _MOST_POLYNOMIAL_LEVELS:
            raise SpecificationError(
                f"polynomial contrasts for {self.column!r} cannot be represented accurately for {n} levels (R's limit is 96)"
            )
        return ContrastMatrix(_orthogonal_polynomials(n), [".L", ".Q", ".C", *(f"^{degree}" for degree in range(4, n))][: n - 1])

    def _checked_matrix(self, n_levels: int) -> np.ndarray:
        """The user's matrix if it codes ``n_levels`` levels: one row per level, columns that with
        the intercept are linearly independent (else the fixed effects are not estimable)."""
        assert self.matrix is not None
        rows, width = self.matrix.shape
        if rows != n_levels:
            raise SpecificationError(
                f"the contrast matrix for {self.column!r} has {rows} rows, but the factor has {n_levels} levels"
            )
        if width >= n_levels or np.linalg.matrix_rank(np.column_stack([np.ones(rows), self.matrix])) < width + 1:
            raise SpecificationError(
                f"the contrast matrix for {self.column!r} is singular: its {width} columns and the intercept "
                "are linearly dependent (a contrast matrix has at most levels - 1 columns, none constant)"
            )
        return self.matrix


def resolve_contrasts(contrasts: Mapping[str, ContrastSpec] | None) -> dict[str, Contrast]:
    """Check a ``contrasts=`` mapping (column → R contrast name, with or without ``contr.``, or a
    levels × columns matrix, a DataFrame's column names naming the model-matrix columns) and make
    its codings; :class:`~mixedmodels.errors.SpecificationError` naming the column otherwise.

    >>> sorted(resolve_contrasts({"a": "contr.sum", "b": "poly", "c": [[1.0], [0.0], [-1.0]]}).items())[2]
    ('c', Contrast(column='c', kind='matrix', names=('1',)))
    >>> resolve_contrasts({"a": "contr.foo"})
    Traceback (most recent call last):
    ...
    mixedmodels.errors.SpecificationError: unknown contrast 'contr.foo' for 'a'; use contr.treatment, contr.sum, ...
    """
    if contrasts is None:
        return {}
    if not isinstance(contrasts, Mapping):
        raise SpecificationError(
            f"contrasts must be a mapping from column names to contrasts, not {type(contrasts).__name__}"
        )
    return {str(column): _contrast(str(column), spec) for column, spec in contrasts.items()}


def _contrast(column: str, spec: Any) -> Contrast:
    if isinstance(spec, str):
        kind = _BY_NAME.get(spec.removeprefix("contr.").lower())
        if kind is None:
            known = ", ".join(f"contr.{kind}" for kind in _KINDS)
            raise SpecificationError(f"unknown contrast {spec!r} for {column!r}; use {known} or a matrix")
        return Contrast(column, kind)
    names = [str(name) for name in spec.columns] if isinstance(spec, pd.DataFrame) else None
    try:
        matrix = np.array(spec, dtype=np.float64)
    except (TypeError, ValueError):
        raise SpecificationError(
            f"the contrasts for {column!r} must be an R contrast's name or a numeric matrix, not {type(spec).__name__}"
        ) from None
    if matrix.ndim == 1:
        matrix = matrix[:, None]  # R's as.matrix of a vector: one column
    if matrix.ndim != 2 or matrix.shape[1] == 0 or not np.isfinite(matrix).all():
        raise SpecificationError(
            f"the contrast matrix for {column!r} must be a finite levels × columns matrix with at least one column"
        )
    # R's model.matrix names unnamed contrast columns 1..m.
    return Contrast(column, "matrix", matrix, tuple(names or _numbered(matrix.shape[1])))


def _orthogonal_polynomials(n: int) -> np.ndarray:
    """R's ``contr.poly(n)``: the orthonormal polynomials of degrees 1..n-1 in the scores 1..n,
    the QR factor Q of the centred Vandermonde matrix with each column's sign that of R's diagonal
    (R's ``make.poly``: ``qr.qy(QR, diag(R))``, normalised), which fixes the signs whatever the QR."""
    scores = np.arange(1.0, n + 1.0)
    vandermonde = np.vander(scores - scores.mean(), n, increasing=True)
    q, r = np.linalg.qr(vandermonde)
    return (q * np.sign(np.diag(r)))[:, 1:]


def _numbered(count: int) -> list[str]:
    return [str(number) for number in range(1, count + 1)]


def level_label(level: Hashable) -> str:
    """A level as patsy writes it in column names: strings as they are, anything else by repr.

    >>> level_label("a"), level_label(3)
    ('a', '3')
    """
    if isinstance(level, str):
        return level
    if isinstance(level, bytes):
        try:
            return level.decode("utf-8")
        except UnicodeDecodeError:
            return repr(level)
    return repr(level)
