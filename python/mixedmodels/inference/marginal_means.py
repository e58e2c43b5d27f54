"""Estimated marginal means and their pairwise comparisons as R's emmeans 1.8.4 computes them
(Lenth; Searle, Speed & Milliken 1980, Am Stat 34:216).

A marginal mean is a linear function l·β̂ (+ the mean offset) of the fixed effects, l the average
of the reference-grid rows of one level of the ``specs`` factors (see :mod:`.reference_grid`);
its standard error is √(l V lᵀ) with V = ``cov_params()`` (Kenward and Roger's adjusted covariance
with ``ddf="kenward-roger"``, as emmeans takes it from pbkrtest). Pairwise comparisons are the
differences of the means within each ``by`` group, level i − level j for i < j (emmeans'
``pairs()``), adjusted for multiplicity within each group: Tukey's studentized range (family =
the means of the group), Holm, Bonferroni or none.

For GLMMs ``type="response"`` back-transforms with the inverse link (standard errors by the
delta method, limits the back-transformed link-scale limits); comparisons on the log and logit
scales become ratios (odds ratios for the logit) with tests from the link scale.

Degrees of freedom: for LMMs Satterthwaite's (the default here; lmerTest's, per mean and per
comparison, as emmeans with ``lmer.df = "satterthwaite"``), Kenward and Roger's (``"kenward-roger"``,
REML fits: emmeans' own default, pbkrtest's ``Lb_ddf`` per mean and comparison) or
``"asymptotic"`` (z statistics, df = ∞, the only choice for GLMMs).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)", mm.datasets.load("cake"))
>>> means = emmeans(m, "recipe")
>>> means.table[["recipe", "emmean", "std_error"]].round(4)
  recipe   emmean  std_error
0      A  33.1222     1.7368
1      B  31.6444     1.7368
2      C  31.6000     1.7368
>>> means.pairs().table[["contrast", "estimate", "p_value"]].round(4)
  contrast  estimate  p_value
0    A - B    1.4778   0.8200
1    A - C    1.5222   0.8102
2    B - C    0.0444   0.9998
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import SpecificationError
from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult
from ..results.linear import LmerResult
from .confidence_intervals import check_level
from .reference_grid import ReferenceGrid, reference_grid
from .studentized_range import studentized_range_sf

DegreesOfFreedomMethod = Literal["satterthwaite", "kenward-roger", "asymptotic"]
Scale = Literal["link", "response"]
Adjustment = Literal["tukey", "holm", "bonferroni", "none"]

DDF_METHODS: tuple[str, ...] = ("satterthwaite", "kenward-roger", "asymptotic")
SCALES: tuple[str, ...] = ("link", "response")
ADJUSTMENTS: tuple[str, ...] = ("tukey", "holm", "bonferroni", "none")

# Links whose differences back-transform to ratios (emmeans' log.contrast for "log" and "logit").
_RATIO_NAMES = {"log": "ratio", "logit": "odds ratio"}
# emmeans' default `parens`: contrasted labels that hold an operator are parenthesised.
_OPERATORS = ("-", "+", "/", "*")


def contrast_degrees_of_freedom(result: MixedModelResult, contrasts: np.ndarray, ddf: str) -> np.ndarray:
    """The denominator degrees of freedom of each contrast vector (each row of ``contrasts``,
    columns the fit's fixed effects) by the method ``ddf``: ``"satterthwaite"`` (LMMs: lmerTest's
    for each row, as emmeans computes them with ``lmer.df = "satterthwaite"``),
    ``"kenward-roger"`` (REML LMMs: pbkrtest's ``Lb_ddf`` for each row, as emmeans' default) or
    ``"asymptotic"`` (df = ∞: z statistics, normal quantiles).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> contrast_degrees_of_freedom(m, np.array([[0.0, 1.0]]), "asymptotic")
    array([inf])
    >>> contrast_degrees_of_freedom(m, np.array([[0.0, 1.0]]), "satterthwaite").round(2)
    array([17.])
    """
    if ddf not in DDF_METHODS:
        raise SpecificationError(f"ddf must be one of {list(DDF_METHODS)}, not {ddf!r}")
    if ddf == "asymptotic":
        return np.full(np.asarray(contrasts).shape[0], np.inf)
    if not isinstance(result, LmerResult):
        method_name = "Satterthwaite" if ddf == "satterthwaite" else "Kenward-Roger"
        raise SpecificationError(f"generalized linear mixed models have no {method_name} degrees of freedom; use ddf='asymptotic'")
    method = result.satterthwaite if ddf == "satterthwaite" else result.kenward_roger
    return method.degrees_of_freedom(contrasts)


@dataclass(frozen=True)
class PairwiseComparisons:
    """Pairwise differences of marginal means (``table``: ``contrast``, any ``by`` columns,
    ``estimate``, ``std_error``, ``df``, ``statistic``, ``p_value``) and their contrast vectors
    ``linfct``. On the response scale of a log or logit link ``estimate`` is the ratio
    exp(difference) with its delta-method ``std_error``, while ``statistic`` and ``p_value``
    are the link-scale z test of the difference (emmeans' ``null = 1``).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)", mm.datasets.load("cake"))
    >>> pairs = emmeans(m, "recipe", by="temperature").pairs(adjust="none")
    >>> pairs.table.loc[:2, ["contrast", "temperature", "estimate", "p_value"]].round(4)
      contrast temperature  estimate  p_value
    0    A - B         175    2.2667   0.4340
    1    A - C         175    1.2000   0.6783
    2    B - C         175   -1.0667   0.7123
    """

    table: pd.DataFrame
    linfct: pd.DataFrame
    adjust: str
    notes: tuple[str, ...]

    def __repr__(self) -> str:
        return _show(type(self).__name__, self.table, self.notes)

    def _repr_html_(self) -> str:
        return _show_html(type(self).__name__, self.table, self.notes)


@dataclass(frozen=True)
class MarginalMeans:
    """Estimated marginal means (``table``: the ``specs`` and ``by`` columns, ``emmean``,
    ``std_error``, ``df``, ``lower``, ``upper``) on the ``grid`` they come from.

    With ``type="link"`` the columns are on the linear-predictor scale; with
    ``type="response"`` (GLMMs) ``emmean`` is the inverse link of the link-scale mean (the
    probability of a binomial model, emmeans' ``prob``; the rate of a Poisson one, ``rate``),
    ``std_error`` its delta-method standard error and ``lower``/``upper`` the back-transformed
    link-scale limits. ``df`` is ∞ for asymptotic (z) inference.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)", mm.datasets.load("cake"))
    >>> means = emmeans(m, "recipe", by="temperature")
    >>> means.table.loc[:2, ["recipe", "temperature", "emmean", "lower"]].round(4)
      recipe temperature   emmean    lower
    0      A         175  29.1333  25.0753
    1      B         175  26.8667  22.8087
    2      C         175  27.9333  23.8753
    """

    table: pd.DataFrame
    grid: ReferenceGrid
    type: str
    ddf: str
    level: float
    notes: tuple[str, ...]
    result: MixedModelResult = field(repr=False)

    def pairs(self, adjust: Adjustment = "tukey") -> PairwiseComparisons:
        """Every difference level i − level j (i < j) of the means within each ``by`` group,
        with p-values adjusted within the group by ``adjust``: ``"tukey"`` (studentized
        range with the group's number of means; emmeans' default), ``"holm"``,
        ``"bonferroni"`` or ``"none"``.

        >>> import mixedmodels as mm
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mm.datasets.load("cbpp"), family="binomial")
        >>> pairs = emmeans(g, "period", type="response").pairs(adjust="holm")
        >>> pairs.table.loc[0, "contrast"], round(float(pairs.table.loc[0, "estimate"]), 3)
        ('period1 / period2', 2.698)
        """
        if adjust not in ADJUSTMENTS:
            raise SpecificationError(f"adjust must be one of {list(ADJUSTMENTS)}, not {adjust!r}")
        grid = self.grid
        n_means = len(grid.rows)
        family_size = int(np.prod([len(grid.levels[name]) for name in grid.specs], dtype=np.int64))
        first, second = np.triu_indices(family_size, 1)
        n_groups = n_means // family_size
        starts = np.repeat(np.arange(n_groups) * family_size, len(first))
        rows_i = starts + np.tile(first, n_groups)
        rows_j = starts + np.tile(second, n_groups)
        linfct = grid.linfct.to_numpy()
        contrasts = linfct[rows_i] - linfct[rows_j]
        estimate, std_error = _estimates(self.result, contrasts, 0.0, self.ddf)
        df = contrast_degrees_of_freedom(self.result, contrasts, self.ddf)
        statistic = estimate / std_error
        group = np.repeat(np.arange(n_groups), len(first))
        p_value = _adjusted_p_values(statistic, df, group, family_size, adjust)

        ratio = _RATIO_NAMES.get(_link_name(self.result)) if self.type == "response" else None
        separator = " / " if ratio else " - "
        # Every by group has the same labels, those of the first.
        labels = _contrast_labels(grid, first) + separator + _contrast_labels(grid, second)
        columns: dict[str, Any] = {"contrast": np.tile(labels, n_groups)}
        columns.update({name: grid.rows[name].to_numpy()[rows_i] for name in grid.by})
        if ratio:
            estimate, std_error = np.exp(estimate), np.exp(estimate) * std_error
        columns.update(estimate=estimate, std_error=std_error, df=df, statistic=statistic, p_value=p_value)
        table = pd.DataFrame(columns)
        notes = [_averaged_note(grid)] if grid.averaged_over else []
        if ratio:
            notes.append(f"Estimates are {ratio}s; tests are of the {_link_name(self.result)} scale differences")
        notes.append(_adjustment_note(adjust, family_size, len(first)))
        return PairwiseComparisons(table, pd.DataFrame(contrasts, columns=grid.linfct.columns), adjust, tuple(notes))

    def __repr__(self) -> str:
        return _show(type(self).__name__, self.table, self.notes)

    def _repr_html_(self) -> str:
        return _show_html(type(self).__name__, self.table, self.notes)


def emmeans(
    result: MixedModelResult,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    at: Mapping[str, Sequence[Any]] | None = None,
    ddf: DegreesOfFreedomMethod | None = None,
    type: Scale = "link",  # noqa: A002 - emmeans' argument name
    level: float = 0.95,
) -> MarginalMeans:
    """Estimated marginal means of the factor(s) ``specs`` within each value of ``by``, as
    emmeans' ``emmeans(m, ~ specs | by, type = type, level = level)``. ``ddf``: Satterthwaite's
    degrees of freedom for LMMs (the default; emmeans' ``lmer.df = "satterthwaite"``),
    ``"kenward-roger"`` (REML fits; Kenward and Roger's adjusted standard errors and df, emmeans'
    own default), ``"asymptotic"`` for z intervals (the only choice, and the default, for GLMMs).

    ``at`` sets the grid values of covariates (a numeric ``by`` variable is evaluated at
    ``at[by]``, otherwise at its mean) or restricts factors to some of their levels.
    ``type="response"`` back-transforms a GLMM's means with the inverse link (see
    :class:`MarginalMeans`); for an LMM it is accepted when the response is an untransformed
    column, where it is the identity, and refused for a transformed response, whose
    back-transformation is not implemented.

    >>> import mixedmodels as mm
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> emmeans(g, "period", type="response").table[["period", "emmean", "lower", "upper"]].round(4)
      period  emmean   lower   upper
    0      1  0.1980  0.1354  0.2803
    1      2  0.0839  0.0475  0.1440
    2      3  0.0740  0.0401  0.1324
    3      4  0.0484  0.0214  0.1057
    """
    if type not in SCALES:
        raise SpecificationError(f"type must be one of {list(SCALES)}, not {type!r}")
    if ddf is None:
        ddf = "satterthwaite" if isinstance(result, LmerResult) else "asymptotic"
    check_level(level)
    if type == "response" and not isinstance(result, GlmerResult):
        _require_untransformed_response(result)
    grid = reference_grid(result, specs, by, at)
    linfct = grid.linfct.to_numpy()
    df = contrast_degrees_of_freedom(result, linfct, ddf)
    estimate, std_error = _estimates(result, linfct, grid.offset or 0.0, ddf)
    half_width = stats.t.ppf(0.5 + level / 2, df) * std_error
    lower, upper = estimate - half_width, estimate + half_width
    if type == "response" and isinstance(result, GlmerResult):
        inverse, derivative = _inverse_link(result)
        std_error = np.abs(derivative(estimate)) * std_error
        lower, upper = np.sort(np.column_stack([inverse(lower), inverse(upper)]), axis=1).T
        estimate = inverse(estimate)
    columns = {name: grid.rows[name].to_numpy() for name in grid.rows.columns}
    table = pd.DataFrame({**columns, "emmean": estimate, "std_error": std_error, "df": df, "lower": lower, "upper": upper})
    notes = [_averaged_note(grid)] if grid.averaged_over else []
    if isinstance(result, GlmerResult):
        link = _link_name(result)
        notes.append(f"Back-transformed from the {link} scale" if type == "response" else f"Results are on the {link} (not the response) scale")
    notes.append(f"Degrees-of-freedom method: {ddf}")
    notes.append(f"Confidence level used: {level:g}")
    return MarginalMeans(table, grid, type, ddf, level, tuple(notes), result)


def _estimates(result: MixedModelResult, linfct: np.ndarray, offset: float, ddf: str) -> tuple[np.ndarray, np.ndarray]:
    """l·β̂ + offset and √(l V lᵀ) for every row l of ``linfct``, V Kenward and Roger's adjusted
    covariance for ``ddf="kenward-roger"``."""
    if ddf == "kenward-roger":
        assert isinstance(result, LmerResult)
        covariance = result.kenward_roger.adjusted_covariance
    else:
        covariance = result.cov_params().to_numpy()
    estimate = linfct @ result.params.to_numpy() + offset
    std_error = np.sqrt(np.einsum("ij,jk,ik->i", linfct, covariance, linfct))
    return estimate, std_error


def _adjusted_p_values(statistic: np.ndarray, df: np.ndarray, group: np.ndarray, family_size: int, adjust: str) -> np.ndarray:
    """Two-sided p-values adjusted within each group of contrasts (emmeans' ``.adj.p.value``)."""
    magnitude = np.abs(statistic)
    unadjusted = 2 * stats.t.sf(magnitude, df)
    n_tests = np.bincount(group)[group]
    if adjust == "none":
        return unadjusted
    if adjust == "tukey":
        # The studentized range of the difference of two means is √2 |t| (with two means
        # exactly the unadjusted test, as emmeans says).
        return studentized_range_sf(magnitude * math.sqrt(2), family_size, df)
    if adjust == "bonferroni":
        return np.minimum(1.0, unadjusted * n_tests)
    # Holm: the r-th smallest p of a group of m times (m - r + 1), made monotone, capped at 1.
    order = np.lexsort((unadjusted, group))
    sorted_groups = group[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_groups, sorted_groups)
    scaled = pd.Series(np.minimum(1.0, unadjusted[order] * (n_tests[order] - rank)))
    adjusted = np.empty_like(unadjusted)
    adjusted[order] = scaled.groupby(sorted_groups).cummax().to_numpy()
    return adjusted


def _contrast_labels(grid: ReferenceGrid, rows: np.ndarray) -> np.ndarray:
    """The labels of the means ``rows`` in contrasts: their spec levels joined by spaces, the
    factor name prefixed to numeric-looking levels (emmeans' ``enhance.levels``: "period1"),
    parenthesised when a label holds an operator (emmeans' ``parens``)."""
    parts = [_enhanced(name, grid.rows[name].to_numpy()[rows]) for name in grid.specs]
    labels = parts[0]
    for part in parts[1:]:
        labels = np.char.add(np.char.add(labels, " "), part)
    has_operator = np.any([np.char.find(labels, operator) >= 0 for operator in _OPERATORS], axis=0)
    return np.where(has_operator, np.char.add(np.char.add("(", labels), ")"), labels).astype(object)


def _enhanced(name: str, values: np.ndarray) -> np.ndarray:
    text = values.astype(str)
    numeric = pd.to_numeric(pd.Series(text), errors="coerce").notna().all()
    return np.char.add(name, text) if numeric else text


def _require_untransformed_response(result: MixedModelResult) -> None:
    response = result.design.parsed.response
    data = result.model.data
    plain = re.fullmatch(r"\s*(?:(\w+)|Q\(\s*(['\"])(.*)\2\s*\))\s*", response)
    column = None if plain is None else plain.group(1) or plain.group(3)
    if data is None or column not in data.columns:
        raise SpecificationError(
            f"type='response' for a linear mixed model with the transformed response {response!r} "
            "would need its back-transformation, which is not implemented: use type='link'"
        )


def _link_name(result: MixedModelResult) -> str:
    return result.family.link if isinstance(result, GlmerResult) and result.family is not None else "identity"


def _inverse_link(result: GlmerResult) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    family = result.family
    if family is None:
        raise SpecificationError("the GLMM result has no family to back-transform with")
    return family.inverse_link, family.mu_eta


def _averaged_note(grid: ReferenceGrid) -> str:
    return f"Results are averaged over the levels of: {', '.join(grid.averaged_over)}"


def _adjustment_note(adjust: str, family_size: int, n_contrasts: int) -> str:
    if adjust == "tukey":
        return f"P value adjustment: tukey method for comparing a family of {family_size} estimates"
    if adjust == "none":
        return "P values are not adjusted"
    return f"P value adjustment: {adjust} method for {n_contrasts} tests"


def _show(name: str, table: pd.DataFrame, notes: tuple[str, ...]) -> str:
    return "\n".join([name, table.to_string(), *notes])


def _show_html(name: str, table: pd.DataFrame, notes: tuple[str, ...]) -> str:
    return f"<p>{name}</p>{table.to_html()}" + "".join(f"<p>{note}</p>" for note in notes)
