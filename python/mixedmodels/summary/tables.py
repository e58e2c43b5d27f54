"""The tables of an lme4-style summary, built once from a result; :mod:`.text`, :mod:`.html`
and :mod:`.markdown` render the same tables.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> tables = SummaryTables.of(m)
>>> tables.header[0], list(tables.fixed.columns)
('Linear mixed model fit by REML', ['Estimate', 'Std. Error', 'df', 't value', 'Pr(>|t|)'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..results import GlmerResult, LmerResult, MixedModelResult
from ..results.names import display_name

RANDOM_COLUMNS = ["Groups", "Name", "Variance", "Std.Dev.", "Corr"]


@dataclass(frozen=True)
class SummaryTables:
    """Every part of a summary: the header lines, the quantiles of the scaled residuals, the
    random-effects table (formatted cells), the line counting observations and groups, the
    fixed-effects table, the correlation of the fixed effects (None with one coefficient) and
    the notes.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> SummaryTables.of(m).random[0][:2]
    ['Batch', '(Intercept)']
    """

    header: list[str]
    residual_quantiles: np.ndarray
    random: list[list[str]]
    groups: str
    fixed: pd.DataFrame
    fixed_correlation: pd.DataFrame | None
    notes: list[str]

    @classmethod
    def of(cls, result: MixedModelResult, ddf: str | None = None) -> SummaryTables:
        """The tables of ``result``'s summary, the fixed effects tested with ``ddf`` (see
        :meth:`MixedModelResult.summary`; None: the kind's default).

        >>> import mixedmodels as mm
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mm.datasets.load("cbpp"), family="binomial")
        >>> list(SummaryTables.of(g).fixed.columns)[2]
        'z value'
        """
        if isinstance(result, GlmerResult):
            header, ddf = _generalized_header(result), ddf or "asymptotic"
        elif isinstance(result, LmerResult):
            header, ddf = _linear_header(result), ddf or "satterthwaite"
        else:
            raise TypeError(f"no summary for {type(result).__name__}")
        fixed = _fixed_table(result, ddf)
        scaled = result.residuals("pearson", scaled=True).to_numpy()
        return cls(
            header=header,
            residual_quantiles=np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1]),
            random=_random_rows(result),
            groups=_groups_line(result),
            fixed=fixed,
            fixed_correlation=_fixed_correlation(result),
            notes=_notes(result, ddf.lower()),
        )


def _linear_header(r: LmerResult) -> list[str]:
    method = "REML" if r.reml else "maximum likelihood"
    lines = [f"Linear mixed model fit by {method}", f"Formula: {r.formula}"]
    if r.data_name:
        lines.append(f"   Data: {r.data_name}")
    if r.design.weights_argument or r.design.weights is not None:
        lines.append(f"Weights: {r.design.weights_argument or '<array>'}")
    if r.design.offset_argument:
        lines.append(f" Offset: {r.design.offset_argument}")
    lines.append("")
    lines.append(f"REML criterion at convergence: {r.REMLcrit:.4f}" if r.reml else _information_criteria(r))
    return lines


def _generalized_header(r: GlmerResult) -> list[str]:
    family = r._family()
    if r.n_agq > 1:
        method = f"Adaptive Gauss-Hermite Quadrature, nAGQ = {r.n_agq}"
    else:
        method = "Laplace Approximation" + (" (lme4 1.1's objective)" if r.n_agq == 1 and r.model.compat == "lme4" else "")
    if r.n_agq == 0:
        method = "nAGQ = 0 (PIRLS estimate of the fixed effects)"
    lines = [
        f"Generalized linear mixed model fit by maximum likelihood ({method})",
        f" Family: {family.display_name}  ( {family.link} )",
        f"Formula: {r.formula}",
    ]
    if r.data_name:
        lines.append(f"   Data: {r.data_name}")
    if r.design.weights_argument:
        lines.append(f"Weights: {r.design.weights_argument}")
    lines += ["", _information_criteria(r)]
    return lines


def _information_criteria(r: MixedModelResult) -> str:
    return (
        f"     AIC      BIC   logLik deviance df.resid\n"
        f"{r.aic:8.1f} {r.bic:8.1f} {r.llf:8.1f} {-2 * r.llf:8.1f} {r.nobs - r.df_modelwc:8d}"
    )


def _random_rows(r: MixedModelResult) -> list[list[str]]:
    components = r.random_effects_covariance
    rows = []
    for term in components.terms:
        sd, correlation = term.sd, term.correlation
        for i, name in enumerate(term.names):
            cells = ["NaN" if math.isnan(correlation[i, j]) else f"{correlation[i, j]:.2f}" for j in range(i)]
            variance = term.covariance[i, i]
            rows.append([term.group if i == 0 else "", name, f"{variance:.4g}", f"{sd[i]:.4g}", " ".join(cells)])
    residual_sd = components.residual_sd
    if residual_sd is not None:
        rows.append(["Residual", "", f"{residual_sd ** 2:.4g}", f"{residual_sd:.4g}", ""])
    return rows


def _groups_line(r: MixedModelResult) -> str:
    seen: dict[str, int] = {}
    for term in r.design.terms:
        seen.setdefault(term.group_name, term.n_levels)
    groups = ", ".join(f"{name}, {count}" for name, count in seen.items())
    dropped = f" ({r.n_dropped} rows with missing values dropped)" if r.n_dropped else ""
    return f"Number of obs: {r.nobs}, groups:  {groups}{dropped}"


def _fixed_table(r: MixedModelResult, ddf: str) -> pd.DataFrame:
    """lmerTest's table (Satterthwaite's or Kenward-Roger's df and t-tests; Kenward-Roger's
    standard errors are the adjusted ones), or lme4's z-tests."""
    assert isinstance(r, (LmerResult, GlmerResult))
    tests = r.coef_table(ddf)
    if np.isinf(tests["df"]).all():
        names = {"estimate": "Estimate", "std_error": "Std. Error", "statistic": "z value", "p_value": "Pr(>|z|)"}
    else:
        names = {"estimate": "Estimate", "std_error": "Std. Error", "df": "df", "statistic": "t value", "p_value": "Pr(>|t|)"}
    table = tests[list(names)].rename(columns=names)
    table.index = [display_name(n) for n in table.index]
    return table


def _fixed_correlation(r: MixedModelResult) -> pd.DataFrame | None:
    if len(r.params) < 2:
        return None
    covariance = r.cov_params().to_numpy()
    sd = np.sqrt(np.diag(covariance))
    names = [display_name(n) for n in r.params.index]
    return pd.DataFrame(covariance / np.outer(sd, sd), index=names, columns=names)


P_VALUE_NOTES = {
    "satterthwaite": "p-values: t-tests with Satterthwaite's degrees of freedom (lmerTest).",
    "kenward-roger": "p-values: t-tests with Kenward-Roger's degrees of freedom and adjusted standard errors (pbkrtest).",
    "asymptotic": "p-values: Wald z-tests (normal reference distribution).",
}


def _notes(r: MixedModelResult, ddf: str) -> list[str]:
    notes = [P_VALUE_NOTES[ddf]]
    levels = r.design.response_levels
    if levels is not None:
        successes = ", ".join(repr(level) for level in levels[1:])
        notes.append(f"response {r.design.parsed.response}: {levels[0]!r} is failure (0), {successes} success (1), as R codes a factor")
    if r.design.dropped_fixed:
        notes.append(f"fixed-effect model matrix is rank deficient: dropped {', '.join(r.design.dropped_fixed)}")
    if r.is_singular:
        notes.append("boundary (singular) fit: a variance is (near) zero or a correlation is (near) +-1")
    if not r.converged:
        notes.append(f"optimizer did not converge: {r.optimization.status}")
    check = r.optimization.convergence_check
    if check is not None:
        notes.extend(message.replace("\n - ", " - ") for message in check.messages)
    if isinstance(r, GlmerResult):
        if not r.pirls_converged:
            notes.append("PIRLS did not converge at the estimates")
        if not r.hessian_covariance:
            notes.append("standard errors from the factorisation at the modes (no Hessian in (theta, beta))")
    return notes
