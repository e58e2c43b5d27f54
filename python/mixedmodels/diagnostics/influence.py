"""Influence of groups or observations on a mixed model's estimates, by case deletion (lme4's
``influence(m, groups =)``, HLMdiag's ``cooks.distance``/``mdffits``/``covtrace``/``covratio``/
``rvc``).

For every deletion unit i (a level of a grouping factor, or one observation), with b̂ and V the
full fit's fixed effects and their covariance Cov(β̂), b̂₍ᵢ₎ and V₍ᵢ₎ those of the fit without
unit i, and p the number of fixed effects:

- Cook's D = (b̂ − b̂₍ᵢ₎)ᵀ V⁻¹ (b̂ − b̂₍ᵢ₎) / p
- MDFFITS = (b̂ − b̂₍ᵢ₎)ᵀ V₍ᵢ₎⁻¹ (b̂ − b̂₍ᵢ₎) / p
- COVTRACE = |tr(V⁻¹ V₍ᵢ₎) − p|
- COVRATIO = det V₍ᵢ₎ / det V
- RVC (relative variance change) per variance component k, every row of ``varcorr()`` with
  the residual = σ²ₖ₍ᵢ₎ / σ²ₖ − 1 (NaN where the full fit's value is 0)
- dfbeta = b̂₍ᵢ₎ − b̂ (deleted minus full, lme4's sign), dfbetas = dfbeta / √diag V₍ᵢ₎.

lme4's ``cooks.distance(influence(m))`` is (n − p)/n times Cook's D (n = number of deletion
units): :attr:`Influence.lme4_cooks_distance`.

Methods:

- ``"exact"`` (the default): every unit's model is refitted, all parameters, starting from the
  full fit's estimates (a warm start, as lme4's ``influence`` — but converged to the usual
  tolerance; a variance left on its boundary is probed off it), in parallel in the core. Linear
  and generalized models, nested and crossed designs. For a GLMM, V and V₍ᵢ₎ are the
  factor-based covariances (lme4's ``vcov(use.hessian = FALSE)``) and σ² is the dispersion,
  and the refits minimise the model's own objective: for a fit with ``compat="lme4"``, lme4's
  Laplace value, whose PIRLS starts where lme4's first stage ends, so each refit runs that stage
  too (from the full fit's θ) and lands where lme4's ``glmer()`` on the remaining rows does.
- ``"one-step"``: θ **and σ** are held at the full fit's values and only b̂₍ᵢ₎ and V₍ᵢ₎ =
  σ̂² (X₍ᵢ₎ᵀ V̂₍ᵢ₎⁻¹ X₍ᵢ₎)⁻¹ are recomputed — the approximation of Christensen, Pearson & Johnson
  (1992) that HLMdiag uses (HLMdiag also keeps the variance components of the full fit). RVC is
  then 0 by construction and reported as NaN. Linear models only.

  How far apart the two are on sleepstudy (``Reaction ~ Days + (Days | Subject)``, REML): by
  subject, Cook's distances agree to 1e-10 (every subject is measured on the same days, so the
  generalised least-squares b̂₍ᵢ₎ does not depend on θ) while MDFFITS and COVRATIO, which use
  V₍ᵢ₎, differ by up to 25 % and 26 % relative; by observation, Cook's distances differ by up to
  13 % relative (3.8 % of the largest one).

Deletion indices: groups are indexed by the factor's levels; observations by the fitted rows'
labels (``design.row_index``), so for a model fitted with rows dropped for missing values the
index holds the original labels of the rows that were fitted, never a dropped row.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> inf = influence(m, groups="Subject")
>>> inf.cooks_distance.idxmax(), round(float(inf.cooks_distance.max()), 3)
('309', 0.149)
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from .. import _core
from ..errors import DataError, SpecificationError
from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult
from ..results.linear import LmerResult
from ..results.variance_components import relative_covariance_factors

InfluenceMethod = Literal["exact", "one-step"]
METHODS: tuple[str, ...] = ("exact", "one-step")


@dataclass(frozen=True)
class Influence:
    """Case-deletion influence measures, one row per deleted unit (see the module's docstring for
    the definitions). ``unit`` is the grouping factor's name, or ``"observation"``."""

    unit: str
    method: str
    cooks_distance: pd.Series
    mdffits: pd.Series
    covtrace: pd.Series
    covratio: pd.Series
    rvc: pd.DataFrame
    dfbeta: pd.DataFrame
    dfbetas: pd.DataFrame
    fixef_deleted: pd.DataFrame
    n_rows_deleted: pd.Series
    converged: pd.Series
    errors: pd.Series

    @property
    def lme4_cooks_distance(self) -> pd.Series:
        """lme4's ``cooks.distance(influence(m))``: Cook's D times (n − p)/n, n the number of units.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> inf = m.influence(groups="Subject")
        >>> round(float(inf.lme4_cooks_distance["308"] / inf.cooks_distance["308"]), 4)
        0.8889
        """
        n, p = len(self.cooks_distance), self.dfbeta.shape[1]
        return (self.cooks_distance * (n - p) / n).rename("lme4_cooks_distance")

    def table(self) -> pd.DataFrame:
        """The scalar measures side by side: Cook's D, MDFFITS, COVTRACE, COVRATIO, rows deleted.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> m.influence(groups="Batch").table().columns.tolist()
        ['cooks_distance', 'mdffits', 'covtrace', 'covratio', 'n_rows_deleted']
        """
        return pd.DataFrame(
            {
                "cooks_distance": self.cooks_distance,
                "mdffits": self.mdffits,
                "covtrace": self.covtrace,
                "covratio": self.covratio,
                "n_rows_deleted": self.n_rows_deleted,
            }
        )

    def _repr_html_(self) -> str:
        title = f"<p><b>Influence</b> ({html.escape(self.method)} deletion of each {html.escape(self.unit)})</p>"
        return title + self.table().to_html()


def influence(
    result: MixedModelResult,
    groups: str | None = None,
    obs: bool = False,
    method: InfluenceMethod = "exact",
    threads: int = 0,
) -> Influence:
    """Delete each level of the grouping factor ``groups`` (or, without ``groups``, each
    observation, as lme4's ``influence(m)``; ``obs=True`` says so explicitly) and measure the
    change in the estimates; see the module's docstring for the measures and methods. ``threads``:
    the core's threads (0: all).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> influence(m, groups="Batch", method="one-step").cooks_distance.round(3).tolist()[:2]
    [0.054, 0.0]
    """
    if method not in METHODS:
        raise SpecificationError(f"method must be one of {', '.join(map(repr, METHODS))}, not {method!r}")
    if groups is not None and obs:
        raise SpecificationError("give groups= to delete groups or obs=True to delete observations, not both")
    design = result.design
    if groups is None:
        units = np.arange(design.nobs, dtype=np.uint32)
        labels: pd.Index = design.row_index
        unit_name = "observation"
    else:
        names = list(dict.fromkeys(term.group_name for term in design.terms))
        if groups not in names:
            raise DataError(f"groups={groups!r} is not a grouping factor of the model; its grouping factors are {', '.join(map(repr, names))}")
        factor = next(term.factor for term in design.terms if term.group_name == groups)
        units = np.ascontiguousarray(factor.codes, dtype=np.uint32)
        labels = pd.Index(factor.levels, name=groups)
        unit_name = groups
    fits = _deletion_fits(result, units, len(labels), method, threads)
    return _measures(result, fits, labels, unit_name, method)


def _deletion_fits(result: MixedModelResult, units: np.ndarray, n_units: int, method: str, threads: int) -> _core.DeletionFits:
    """The core's refits, in the fitting parameterisation of the model."""
    model = result.model
    internal = model.internal_parameterisation
    design = internal.design(model.design) if model._uses_internal_parameterisation() else model.design
    theta, beta = model.fitting_parameters(result.theta, result._beta)
    terms = model._core_terms(design)
    if isinstance(result, GlmerResult):
        if method != "exact":
            raise SpecificationError("one-step influence holds σ and θ of a linear model; for a GLMM use method='exact'")
        family, generalized = result._family(), result.model
        return _core.generalized_case_deletion(
            design.x,
            terms,
            np.ascontiguousarray(generalized.response, dtype=np.float64),
            np.ascontiguousarray(generalized.prior_weights, dtype=np.float64),
            np.ascontiguousarray(generalized.offset, dtype=np.float64),
            family.core_name,
            family.link,
            units,
            n_units,
            theta,
            beta,
            negative_binomial_theta=family.negative_binomial_theta,
            n_agq=max(result.n_agq, 1),
            factorization=model.factorization,
            laplace="lme4" if generalized.compat == "lme4" else "exact",
            max_evaluations=model.max_evaluations,
            threads=threads,
        )
    assert isinstance(result, LmerResult)
    return _core.linear_case_deletion(
        design.x,
        terms,
        np.ascontiguousarray(result.model.response, dtype=np.float64),
        units,
        n_units,
        result.reml,
        theta,
        beta,
        result.sigma,
        method,
        weights=design.weights,
        factorization=model.factorization,
        max_evaluations=model.max_evaluations,
        threads=threads,
    )


def variance_component_values(result: MixedModelResult, theta: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The ``vcov`` column of ``varcorr()`` for a stack of (θ, σ): (units, rows), in lme4's row
    order (per term its variances, then its covariances; the residual last where the model has
    one).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> values = variance_component_values(m, m.theta[None, :], np.array([m.sigma]))
    >>> bool(np.allclose(values[0], m.varcorr()["vcov"]))
    True
    """
    sizes = [term.k for term in result.design.terms]
    scale = sigma**2
    columns = []
    for factor in relative_covariance_factors(theta, sizes):
        covariance = scale[:, None, None] * (factor @ np.swapaxes(factor, -1, -2))
        k = factor.shape[-1]
        columns += [covariance[:, i, i] for i in range(k)]
        columns += [covariance[:, i, j] for j in range(k) for i in range(j + 1, k)]
    if result._has_residual_variance():
        columns.append(scale)
    return np.column_stack(columns) if columns else np.zeros((len(sigma), 0))


def _component_names(result: MixedModelResult) -> list[str]:
    """``grp|var1`` or ``grp|var1|var2`` per ``varcorr()`` row, ``Residual`` for the residual."""
    table = result.varcorr()
    return ["|".join(str(part) for part in (row.grp, row.var1, row.var2) if part is not None) for row in table.itertuples()]


def _measures(result: MixedModelResult, fits: _core.DeletionFits, labels: pd.Index, unit: str, method: str) -> Influence:
    model = result.model
    names = result.design.fixed_index
    beta = model.user_beta(np.asarray(fits.beta))
    covariances = np.asarray(fits.beta_covariance)
    if model._uses_internal_parameterisation():
        covariances = model.internal_parameterisation.fixed_covariance_to_user(covariances)
    theta = model.user_theta(np.asarray(fits.theta))
    sigma = np.asarray(fits.sigma)
    full_covariance = np.asarray(result.cov_params(method="factor") if isinstance(result, GlmerResult) else result.cov_params(), dtype=float)
    p = len(names)
    dfbeta = beta - result._beta
    cooks = np.einsum("up,pq,uq->u", dfbeta, np.linalg.inv(full_covariance), dfbeta) / p
    finite = np.all(np.isfinite(covariances), axis=(1, 2))
    safe = np.where(finite[:, None, None], covariances, np.eye(p))
    mdffits = np.einsum("up,up->u", dfbeta, np.linalg.solve(safe, dfbeta[..., None])[..., 0]) / p
    covtrace = np.abs(np.einsum("pq,uqp->u", np.linalg.inv(full_covariance), safe) - p)
    covratio = np.linalg.det(safe) / np.linalg.det(full_covariance)
    for values in (mdffits, covtrace, covratio):
        values[~finite] = np.nan
    full_sigma = np.array([result.sigma])
    full_components = variance_component_values(result, np.asarray(result.theta, dtype=float)[None, :], full_sigma)[0]
    components = variance_component_values(result, theta, sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        rvc = np.where(full_components != 0, components / full_components - 1, np.nan)
    if method == "one-step":
        rvc = np.full_like(rvc, np.nan)
    standard_errors = np.sqrt(np.diagonal(covariances, axis1=1, axis2=2))
    errors = pd.Series(list(fits.errors), index=labels, name="errors", dtype=object)
    return Influence(
        unit=unit,
        method=method,
        cooks_distance=pd.Series(cooks, index=labels, name="cooks_distance"),
        mdffits=pd.Series(mdffits, index=labels, name="mdffits"),
        covtrace=pd.Series(covtrace, index=labels, name="covtrace"),
        covratio=pd.Series(covratio, index=labels, name="covratio"),
        rvc=pd.DataFrame(rvc, index=labels, columns=_component_names(result)),
        dfbeta=pd.DataFrame(dfbeta, index=labels, columns=names),
        dfbetas=pd.DataFrame(dfbeta / standard_errors, index=labels, columns=names),
        fixef_deleted=pd.DataFrame(beta, index=labels, columns=names),
        n_rows_deleted=pd.Series(np.asarray(fits.n_rows_deleted), index=labels, name="n_rows_deleted"),
        converged=pd.Series(np.asarray(fits.converged), index=labels, name="converged"),
        errors=errors,
    )
