"""F-tests of the fixed-effect terms of a linear mixed model: lmerTest's ``anova(m, type = 3 | 2 | 1)``
(Kuznetsova, Brockhoff & Christensen 2017, JSS 82(13), sec. 4), each term's hypothesis matrix
tested by :meth:`SatterthwaiteDerivatives.f_test` (lmerTest's ``contestMD``).

The hypotheses follow lmerTest 3.1-3 (``R/anova_contrasts.R``, ``R/contrast_utils.R``), which
follows SAS's "The Four Types of Estimable Functions":

- type 1 (sequential): the rows of the unit upper-triangular factor U of XᵀX = UᵀDU (Doolittle)
  that belong to each term, the columns of X in R's term order;
- type 2: a term no other term contains is tested by its own coefficients; a contained term by
  type 1 with the columns ordered [other terms, the term, the terms that contain it];
- type 3: the coefficients of the complete (one column per level combination) design regressed on
  X, each contained term's columns made orthogonal to those of the terms containing it, higher
  order terms first; the hypotheses do not depend on the data's balance, e.g. a main effect in an
  interaction model averages over the levels of the other factor.

A term C contains a term T when C has every variable of T and more, and both have the same
numeric variables (SAS; lmerTest's ``term_contain``). With at most one term every type is type 1.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)", mm.datasets.load("cake"))
>>> m.anova().table.round(3)["F"].tolist()
[0.249, 20.52, 1.006]
"""

from __future__ import annotations

import functools
import re
import weakref
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import patsy

from ..errors import SpecificationError
from ..formula.contrasts import Contrast
from ..formula.design import Design
from ..formula.model_matrix import model_matrix, variables
from ..results.linear import LmerResult
from .coefficient_table import accepted_ddf, small_sample_method
from .contrasts import F_COLUMNS, asymptotic_f_test
from .reduced_models import as_written, fitted_rows, written_names

TYPES = {1: 1, 2: 2, 3: 3, "I": 1, "II": 2, "III": 3}
ROMAN = {1: "I", 2: "II", 3: "III"}
TABLE_COLUMNS = pd.Index(F_COLUMNS, dtype=object)
# lmerTest's doolittle() sets |entries| below 1e-6 of its unit-triangular factor to 0.
DOOLITTLE_EPS = 1e-6
# Entries of the type 3 hypotheses below this (relative to the largest) are rounding noise;
# lmerTest rounds them away with zapsmall() (7 significant digits, which also rounds 1/6 to
# 0.1666667: we keep the exact values).
NOISE = 1e-10
# lmerTest keeps the rows of a type 3 hypothesis whose absolute sum exceeds 1e-8.
ZERO_ROW = 1e-8


@dataclass(frozen=True)
class FixedTerms:
    """The fixed-effect terms of a fit in R's order (by number of variables, then formula order),
    without the intercept: R's ``term.labels`` (``labels``), each term's columns as positions in
    ``params`` (``columns``), its variables and its numeric variables; ``intercept`` is the
    intercept's position (None without one) and ``order`` all columns grouped by term in R's order.

    >>> import mixedmodels as mm
    >>> data = mm.datasets.load("sleepstudy").assign(week=lambda d: np.where(d.Days < 7, "first", "second"))
    >>> m = mm.lmer("Reaction ~ Days + week + (1 | Subject)", data)
    >>> terms = fixed_terms(m)
    >>> m.params.index.tolist(), terms.labels, m.params.index[terms.order].tolist()
    (['Intercept', 'week[T.second]', 'Days'], ['Days', 'week'], ['Intercept', 'Days', 'week[T.second]'])
    """

    labels: list[str]
    codes: list[str]
    columns: list[np.ndarray]
    variables: list[frozenset[str]]
    numeric: list[frozenset[str]]
    intercept: int | None
    order: np.ndarray
    indicators: bool

    def containing(self, term: int) -> list[int]:
        """The terms that contain term ``term`` (lmerTest's ``containment``)."""
        return [
            other
            for other in range(len(self.labels))
            if self.variables[term] < self.variables[other] and self.numeric[term] == self.numeric[other]
        ]


@functools.lru_cache(maxsize=256)
def _formula_order(fixed: str) -> tuple[tuple[str, ...], ...]:
    """Each term's factors of the fixed part ``fixed`` in R's term order: patsy keeps the formula's
    order, R's ``terms()`` sorts it (stably) by the number of variables."""
    terms = [tuple(factor.name() for factor in term.factors) for term in patsy.ModelDesc.from_formula(fixed).rhs_termlist]
    return tuple(sorted((term for term in terms if term), key=len))


def fixed_terms(result: LmerResult) -> FixedTerms:
    """The fixed-effect terms of ``result`` (see :class:`FixedTerms`); columns dropped as linearly
    dependent belong to no term."""
    return _design_terms(result.design, written_names(result.model))


def _design_terms(design: Design, names: dict[str, str]) -> FixedTerms:
    """The fixed-effect terms of ``design``, labelled with the names as the formula wrote them."""
    position = {name: index for index, name in enumerate(design.fixed_names)}
    builder = design.fixed_builder
    built = {frozenset(term.factors): term for term in builder.terms}

    def kept(columns: tuple[int, ...]) -> np.ndarray:
        names = (builder.column_names[column] for column in columns)
        return np.array([position[name] for name in names if name in position], dtype=np.intp)

    intercept_columns = kept(built[frozenset()].columns) if frozenset() in built else np.zeros(0, dtype=np.intp)
    factors = _formula_order(design.parsed.fixed)
    columns = [kept(built[frozenset(term)].columns) for term in factors]
    return FixedTerms(
        labels=[as_written(":".join(term), names) for term in factors],
        codes=[":".join(term) for term in factors],
        columns=columns,
        variables=[frozenset(term) for term in factors],
        numeric=[built[frozenset(term)].numeric for term in factors],
        intercept=int(intercept_columns[0]) if intercept_columns.size else None,
        order=np.concatenate([intercept_columns, *columns]),
        indicators=all(term.indicators for term in builder.terms),
    )


def doolittle_rows(x: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The unit upper-triangular U of (X[:, order])ᵀ X[:, order] = Uᵀ D U (lmerTest's
    ``t(doolittle(crossprod(X))$L)``), rows and columns put back in X's order: row j is the
    sequential contrast of column j, adjusted for the columns before it in ``order``.

    >>> doolittle_rows(np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]), np.array([0, 1])).round(12).tolist()
    [[1.0, 1.0], [0.0, 1.0]]
    """
    ordered = x[:, order]
    factor = np.linalg.cholesky(ordered.T @ ordered).T
    unit = factor / np.diag(factor)[:, None]
    unit[np.abs(unit) < DOOLITTLE_EPS] = 0.0
    rows = np.zeros_like(unit)
    rows[np.ix_(order, order)] = unit
    return rows


# Each term's hypothesis matrix and, for each of its rows, the coefficient it is named by.
Hypotheses = list[tuple[np.ndarray, np.ndarray]]


def type1_hypotheses(result: LmerResult, terms: FixedTerms) -> Hypotheses:
    """Sequential hypotheses (lmerTest's ``get_contrasts_type1``)."""
    rows = doolittle_rows(result.design.x, terms.order)
    return [(rows[columns], columns) for columns in terms.columns]


def type2_hypotheses(result: LmerResult, terms: FixedTerms) -> Hypotheses:
    """Hypotheses respecting containment (lmerTest's ``get_contrasts_type2_unfolded``)."""
    x = result.design.x
    identity = np.eye(x.shape[1])
    hypotheses = []
    for term, columns in enumerate(terms.columns):
        containing = terms.containing(term)
        if not containing:
            hypotheses.append((identity[columns], columns))
            continue
        last = np.concatenate([columns, *(terms.columns[other] for other in containing)])
        order = np.concatenate([terms.order[~np.isin(terms.order, last)], last])
        hypotheses.append((doolittle_rows(x, order)[columns], columns))
    return hypotheses


def type3_hypotheses(result: LmerResult, terms: FixedTerms) -> Hypotheses:
    """SAS's type III hypotheses (lmerTest's ``get_contrasts_type3``). Factors coded otherwise
    than by treatment contrasts (``contrasts=``, an ordered factor's polynomials) are recoded by
    treatment contrasts, whose hypotheses L map onto the fit's coefficients as L X₀⁺ X (X₀ the
    treatment-coded model matrix), as lmerTest does."""
    rows = fitted_rows(result.model)
    labels = written_names(result.model)
    design = result.design
    if terms.indicators:
        return _treatment_type3_hypotheses(design, terms, rows, labels)
    data = result.model.data
    assert data is not None  # fitted_rows refuses a model without data
    # The columns coded by this library's contrasts (C(g, Sum) in the formula keeps its coding).
    recoded = set(design.contrasts) | {
        name
        for name in variables(design.parsed.fixed)
        if name in data.columns and isinstance(data[name].dtype, pd.CategoricalDtype) and data[name].dtype.ordered
    }
    treatment = replace(design, contrasts={name: Contrast(name, "treatment") for name in recoded}).with_fixed_part(design.parsed.fixed, rows)
    treatment_terms = _design_terms(treatment, labels)
    if not treatment_terms.indicators:
        raise SpecificationError(
            "type 3 hypotheses need treatment-coded factors or factors coded by contrasts=, not a coding written in "
            "the formula such as C(g, Sum); use type=1 or type=2, or give the coding as contrasts="
        )
    mapping = np.linalg.pinv(treatment.x) @ design.x
    mapping[np.abs(mapping) < NOISE * np.abs(mapping).max()] = 0.0
    hypotheses = []
    for (contrast, _), columns in zip(_treatment_type3_hypotheses(treatment, treatment_terms, rows, labels), terms.columns):
        mapped = contrast @ mapping
        hypotheses.append((mapped, columns[: mapped.shape[0]]))
    return hypotheses


def _treatment_type3_hypotheses(design: Design, terms: FixedTerms, rows: pd.DataFrame, labels: dict[str, str]) -> Hypotheses:
    """Type III hypotheses for treatment-coded factors (lmerTest's ``extract_contrasts_type3``):
    regress each column of the complete design (lmerTest's ``get_rdX``: the intercept and every
    term's ``0 + term`` columns) on X, orthogonalise the columns of contained terms against those
    of the terms containing them, keep the rows of X's own columns."""
    blocks = [np.ones((design.nobs, 1))] if terms.intercept is not None else []
    names = ["Intercept"] if terms.intercept is not None else []
    for code in terms.codes:
        block, builder = model_matrix(f"0 + {code}", rows, labels=labels)
        blocks.append(block)
        names += builder.column_names
    complete = np.hstack(blocks)
    basic = np.linalg.lstsq(design.x, complete, rcond=None)[0].T  # one row per complete column
    basic[np.abs(basic) < NOISE * np.abs(basic).max()] = 0.0
    by_degree = sorted(range(len(terms.labels)), key=lambda term: -len(terms.variables[term]))
    for term in by_degree:
        containing = terms.containing(term)
        if containing:
            columns = terms.columns[term]
            spanning = basic[:, np.concatenate([terms.columns[other] for other in containing])]
            basic[:, columns] -= spanning @ np.linalg.lstsq(spanning, basic[:, columns], rcond=None)[0]
            basic[np.abs(basic) < NOISE * np.abs(basic).max()] = 0.0
    # X's columns among the complete design's, by name: treatment coding writes g[T.b] for g[b].
    row_of = {name: index for index, name in enumerate(names)}
    kept = basic[[row_of[re.sub(r"\[T\.", "[", name)] for name in design.fixed_names]]
    hypotheses = []
    for columns in terms.columns:
        contrast = kept[:, columns].T
        nonzero = np.abs(contrast).sum(axis=1) > ZERO_ROW
        hypotheses.append((contrast[nonzero], columns[nonzero]))
    return hypotheses


@dataclass(frozen=True)
class AnovaTable:
    """lmerTest's ANOVA table of the fixed-effect terms: ``table`` has one row per term (R's term
    labels) and columns ``sum_sq``, ``mean_sq`` (= F σ̂²), ``num_df``, ``den_df``, ``F``,
    ``p_value`` (lmerTest's Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)); ``type`` is 1, 2 or
    3, ``ddf`` ``"satterthwaite"``, ``"kenward-roger"`` or ``"asymptotic"`` (den_df = ∞: the Wald
    χ²/q); ``hypotheses`` gives each term's contrast matrix L (rows tested jointly as Lβ = 0),
    columns named by the fixed effects (lmerTest's ``show_tests``).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> table = m.anova()
    >>> table.hypotheses["Days"].values.tolist(), round(float(table.table.loc["Days", "den_df"]), 2)
    ([[0.0, 1.0]], 17.0)
    """

    table: pd.DataFrame
    type: int
    ddf: str
    contrasts: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    names: pd.Index = field(repr=False)

    @functools.cached_property
    def hypotheses(self) -> dict[str, pd.DataFrame]:
        """Each term's hypothesis matrix, each row named by the coefficient of the term it tests
        (as lmerTest names them)."""
        return {
            term: pd.DataFrame(contrast, columns=self.names, index=self.names[rows])
            for term, (contrast, rows) in self.contrasts.items()
        }

    @property
    def heading(self) -> str:
        method = METHOD_NAMES[self.ddf]
        return f"Type {ROMAN[self.type]} Analysis of Variance Table with {method}"

    def __repr__(self) -> str:
        return f"{self.heading}\n{self.table.to_string()}"

    def _repr_html_(self) -> str:
        return f"<p>{self.heading}</p>{self.table.to_html()}"


# The hypotheses depend on the design alone: built once per fit and type (the type 3 ones need a
# complete design, several milliseconds), kept as long as the fit lives (results are unhashable,
# so they are keyed by id and dropped when the fit is collected).
_HYPOTHESES: dict[int, dict[int, Hypotheses]] = {}


def cached_hypotheses(result: LmerResult, number: int, terms: FixedTerms) -> Hypotheses:
    """The type ``number`` hypotheses of ``result``'s terms, built on first use."""
    if id(result) not in _HYPOTHESES:
        _HYPOTHESES[id(result)] = {}
        weakref.finalize(result, _HYPOTHESES.pop, id(result), None)
    by_type = _HYPOTHESES[id(result)]
    if number not in by_type:
        if number == 1 or len(terms.labels) <= 1 or result.design.x.shape[1] <= 1:
            by_type[number] = type1_hypotheses(result, terms)
        elif number == 2:
            by_type[number] = type2_hypotheses(result, terms)
        else:
            by_type[number] = type3_hypotheses(result, terms)
    return by_type[number]


METHOD_NAMES = {
    "satterthwaite": "Satterthwaite's method",
    "kenward-roger": "Kenward-Roger's method",
    "asymptotic": "asymptotic Wald F-tests (χ²/q)",
}


def anova_table(result: LmerResult, type: int | str = 3, ddf: str = "satterthwaite") -> AnovaTable:  # noqa: A002 - lmerTest's argument name
    """F-tests of the fixed-effect terms of a linear mixed model (lmerTest's ``anova(m, type,
    ddf)``): type 3 (default), 2 or 1 hypotheses (see the module), each term's L tested by
    lmerTest's ``contestMD`` with Satterthwaite's denominator df, with ``ddf="kenward-roger"`` by
    pbkrtest's ``KRmodcomp`` (REML fits; ``mean_sq`` is σ̂² times the unscaled F, ``F`` the scaled
    one, as lmerTest reports them), or with ``ddf="asymptotic"`` as a Wald χ²/q on (q, ∞) df.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> anova_table(m, type=1, ddf="asymptotic").table[["num_df", "den_df"]].values.tolist()
    [[1.0, inf]]
    """
    if not isinstance(result, LmerResult):
        raise SpecificationError(f"the ANOVA table of F-tests needs a linear mixed model fit, not a {result.__class__.__name__}")
    if not isinstance(type, (int, str)) or isinstance(type, bool) or type not in TYPES:
        raise SpecificationError(f"type must be 1, 2 or 3 (or 'I', 'II', 'III'), not {type!r}")
    number = TYPES[type]
    method = small_sample_method(result, ddf)
    terms = fixed_terms(result)
    hypotheses = cached_hypotheses(result, number, terms)
    values = np.full((len(hypotheses), len(F_COLUMNS)), np.nan)
    for row, (contrast, _) in enumerate(hypotheses):
        if contrast.shape[0]:
            test = method.f_test(contrast) if method is not None else asymptotic_f_test(result, contrast)
            values[row] = [test[column] for column in F_COLUMNS]
    table = pd.DataFrame(values, index=pd.Index(terms.labels, dtype=object), columns=TABLE_COLUMNS)
    return AnovaTable(table, number, accepted_ddf(result, ddf), dict(zip(terms.labels, hypotheses)), result.design.fixed_index)
