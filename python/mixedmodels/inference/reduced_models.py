"""Reduced models for likelihood-ratio tests: a fit's model with fixed-effect terms removed or
random-effect terms changed, on exactly the fit's rows and response, and the table type the
tests return.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"), REML=False)
>>> reduced = with_fixed_part(m.model, "1")
>>> reduced.formula
'Reaction ~ 1 + (Days | Subject)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from ..errors import DataError, SpecificationError
from ..formula.design import Design, TermDesign, check_identifiable
from ..formula.model_matrix import model_matrix
from ..formula.parser import RandomTerm, parse_formula, quote_names
from ..models.base import MixedModel
from ..models.linear import LinearMixedModel

Model = TypeVar("Model", bound=MixedModel)


@dataclass(frozen=True)
class TestTable:
    """A table of likelihood-ratio tests (``table``, one row per model), shown as the table."""

    table: pd.DataFrame

    def __repr__(self) -> str:
        return f"{type(self).__name__}\n{self.table.to_string()}"

    def _repr_html_(self) -> str:
        return f"<p>{type(self).__name__}</p>{self.table.to_html()}"


def chi_square_p_values(statistic: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Upper-tail χ² probabilities, NaN where the degrees of freedom are not positive (R's
    ``pchisq(q, ifelse(df > 0, df, NA), lower.tail = FALSE)`` in lmerTest and lme4).

    >>> chi_square_p_values(np.array([3.841458820694124, 1.0]), np.array([1.0, 0.0])).round(4).tolist()
    [0.05, nan]
    """
    valid = df > 0
    return np.where(valid, stats.chi2.sf(statistic, np.where(valid, df, 1.0)), np.nan)


def fitted_rows(model: MixedModel) -> pd.DataFrame:
    """The rows of the model's data that the fit used, to rebuild model matrices of reduced
    models on them (lme4 and lmerTest refit with ``update()`` on the same data)."""
    data = model.data
    if data is None:
        raise SpecificationError("the model keeps no data to refit reduced models on: build it with from_formula, lmer() or glmer()")
    index = model.design.row_index
    if len(index) == len(data) and index.equals(data.index):
        return data
    if not data.index.is_unique:
        raise DataError("the data's row index has duplicates, so the rows of the fit cannot be found again: reset the index")
    return data.loc[index]


def written_names(model: MixedModel) -> dict[str, str]:
    """How each name the design quotes (``Q('n.days')``) was written in the formula (empty when
    the model keeps no data: labels then show the quoted names)."""
    if model.data is None:
        return {}
    return quote_names(parse_formula(model.design.parsed.formula), model.data.columns)[1]


def as_written(label: str, names: dict[str, str]) -> str:
    """A term label with each quoted name written as the formula wrote it."""
    for quoted, written in names.items():
        label = label.replace(quoted, written)
    return label


def patsy_terms(rhs: str) -> list[patsy.desc.Term]:
    """The terms of a patsy right-hand side, the intercept included where patsy adds it."""
    return list(patsy.ModelDesc.from_formula(rhs).rhs_termlist)


def term_label(term: patsy.desc.Term) -> str:
    """A term written as R's ``term.labels`` write it (``a:b``; the intercept as ``1``)."""
    return ":".join(factor.name() for factor in term.factors) or "1"


def droppable_terms(terms: Sequence[patsy.desc.Term]) -> list[patsy.desc.Term]:
    """The terms that may be dropped respecting marginality: every term but the intercept that
    no other term contains (R's ``drop.scope``), main effects first as R's ``terms()`` orders
    them.

    >>> [term_label(t) for t in droppable_terms(patsy_terms("a * b + c"))]
    ['c', 'a:b']
    """
    factor_sets = [frozenset(term.factors) for term in terms]
    droppable = [term for term, factors in zip(terms, factor_sets) if factors and not any(factors < other for other in factor_sets)]
    return sorted(droppable, key=lambda term: len(term.factors))


def rhs_text(terms: Sequence[patsy.desc.Term]) -> str:
    """Patsy text of a term list: ``1 + ...`` with an intercept, ``0 + ...`` without."""
    has_intercept = any(not term.factors for term in terms)
    labels = [term_label(term) for term in terms if term.factors]
    return " + ".join(["1" if has_intercept else "0", *labels])


def model_formula(response: str, fixed: str, random: Sequence[RandomTerm]) -> str:
    """A mixed-model formula from its parts."""
    return " + ".join([f"{response} ~ {fixed}", *(f"({term.expr} | {term.group_name})" for term in random)])


def with_fixed_part(model: Model, fixed: str) -> Model:
    """The model with the fixed part ``fixed`` (patsy text, names quoted as in the design),
    rebuilt on the fit's data rows; random effects, response, weights and offset are the
    model's."""
    design = model.design
    reduced = design.with_fixed_part(fixed, fitted_rows(model))
    if reduced.x.shape[1] == 0:
        raise SpecificationError(f"the reduced model {fixed!r} has no fixed effects left to fit")
    return model.with_design(reduced, model_formula(design.parsed.response, fixed, design.parsed.random))


def with_random_terms(model: LinearMixedModel, random: Sequence[RandomTerm]) -> LinearMixedModel:
    """The model with the random-effects terms ``random`` (a term of the model is kept as it
    is; any other one is built on the fit's data rows, grouped by an existing grouping factor)."""
    design = model.design
    by_term = {term_design.term: term_design for term_design in design.terms}
    terms: list[TermDesign] = []
    for term in random:
        existing = by_term.get(term)
        if existing is None:
            factor = next(t.factor for t in design.terms if t.term.group == term.group)
            z, builder = model_matrix(term.expr, fitted_rows(model))
            existing = TermDesign(term, factor, list(builder.column_names), np.ascontiguousarray(z, dtype=float), builder)
        terms.append(existing)
    check_identifiable(terms, design.nobs)
    terms.sort(key=lambda t: -t.n_levels)  # lme4's order, ties in formula order
    reduced: Design = replace(design, parsed=replace(design.parsed, random=tuple(random)), terms=terms)
    return model.with_design(reduced, model_formula(design.parsed.response, design.parsed.fixed, random))


def linear_model_log_likelihood(design: Design, REML: bool) -> tuple[float, int]:
    """Log-likelihood and number of parameters of the linear model y = Xβ + ε (with the design's
    prior weights and offset) by weighted least squares: R's ``logLik(lm(...), REML =)``,
    which lmerTest's ``ranova`` uses when no random-effect term is left.

    >>> import mixedmodels as mm
    >>> from mixedmodels.formula import parse_formula
    >>> from mixedmodels.formula.design import build_design
    >>> design = build_design(parse_formula("Reaction ~ Days + (1 | Subject)"), mm.datasets.load("sleepstudy"))
    >>> round(linear_model_log_likelihood(design, REML=False)[0], 4)
    -950.1465
    """
    y = design.y if design.offset is None else design.y - design.offset
    weights = np.ones(design.nobs) if design.weights is None else design.weights
    # R's logLik.lm leaves out rows of weight 0: they carry no information.
    informative = weights > 0
    y, x, weights = y[informative], design.x[informative], weights[informative]
    root = np.sqrt(weights)
    r = np.linalg.qr(x * root[:, None], mode="r")
    coefficients, *_ = np.linalg.lstsq(x * root[:, None], y * root, rcond=None)
    residual_sum = float(np.sum(weights * (y - x @ coefficients) ** 2))
    p = x.shape[1]
    n = len(y) - p if REML else len(y)
    # R's stats:::logLik.lm: the REML version drops p observations and adds -log|det R| of the QR of √w X.
    log_likelihood = 0.5 * (float(np.sum(np.log(weights))) - n * (math.log(2 * math.pi) + 1 - math.log(n) + math.log(residual_sum)))
    if REML:
        log_likelihood -= float(np.sum(np.log(np.abs(np.diag(r)))))
    return log_likelihood, p + 1
