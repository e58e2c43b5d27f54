"""Parametric bootstrap of a mixed model (lme4's ``bootMer``, MixedModels.jl's
``parametricbootstrap``): ``n`` responses simulated at the estimates with new random effects
(:mod:`.simulation`), each refitted with the fit's criterion, in parallel in the core: a linear
mixed model from θ̂ (a REML fit's refits are REML fits), a generalized one (negative binomial
with its θ fixed, as lme4's ``refit``) as a new fit with the same nAGQ, its σ being √dispersion
for the Gaussian, Gamma and inverse Gaussian families. Only the estimates are kept, one row per
replicate; a seed gives the same table whatever the number of threads.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> boot = bootstrap(m, n=200, seed=1)
>>> boot.table.columns.tolist()
['Intercept', 'Days', 'theta_1', 'theta_2', 'theta_3', 'sigma', 'loglik', 'converged']
>>> boot.intervals().table.index.tolist()
['sd_(Intercept)|Subject', 'cor_Days.(Intercept)|Subject', 'sd_Days|Subject', 'sigma', 'Intercept', 'Days']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult
from ..results.linear import LmerResult
from ..results.variance_components import relative_covariance_factors
from .confidence_intervals import ConfidenceIntervals, check_level, variance_parameter_names
from .simulation import checked_count, checked_seed

BootstrapIntervalMethod = Literal["percentile"]


@dataclass(frozen=True)
class ParametricBootstrap:
    """The estimates of every replicate: ``table`` (the fixed effects under their ``params``
    names, ``theta_1``…, ``sigma`` for a linear mixed model and a GLMM with a dispersion
    (√dispersion, lme4's ``sigma(m)``), ``loglik`` and ``converged``) and
    ``variance_parameters`` (the standard deviations, correlations and σ under lme4's ``oldNames =
    FALSE`` labels); ``criterion`` names how the replicates were fitted. A replicate whose refit
    failed has NaN estimates and is left out of the summaries.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> boot = bootstrap(m, n=50, seed=3)
    >>> len(boot.table), boot.seed
    (50, 3)
    """

    table: pd.DataFrame
    variance_parameters: pd.DataFrame
    fixed_effects: tuple[str, ...]
    seed: int
    criterion: str = field(repr=False)

    @property
    def std_errors(self) -> pd.Series:
        """Bootstrap standard errors of the fixed effects: the replicates' standard deviations.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> bootstrap(m, n=100, seed=3).std_errors.index.tolist()
        ['Intercept']
        """
        return self.table[list(self.fixed_effects)].std(ddof=1).rename("std_errors")

    def intervals(self, level: float = 0.95, method: BootstrapIntervalMethod = "percentile") -> ConfidenceIntervals:
        """Percentile intervals of every parameter at ``level`` (lme4's ``confint(m, method =
        "boot", boot.type = "perc")``): the (n+1)·α/2 and (n+1)·(1 − α/2) order statistics of the
        replicates, interpolated, with the variance parameters first as in :func:`confint`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> bootstrap(m, n=100, seed=3).intervals(level=0.9).table.columns.tolist()
        ['lower', 'upper']
        """
        if method != "percentile":
            raise SpecificationError(f"method must be 'percentile', not {method!r}")
        check_level(level)
        estimates = pd.concat([self.variance_parameters, self.table[list(self.fixed_effects)]], axis=1)
        alpha = (1 - level) / 2
        # numpy's "weibull" quantile is the p·(n+1)-th order statistic, as boot's percentile interval.
        bounds = np.nanquantile(estimates.to_numpy(), [alpha, 1 - alpha], axis=0, method="weibull")
        table = pd.DataFrame({"lower": bounds[0], "upper": bounds[1]}, index=estimates.columns)
        return ConfidenceIntervals(table=table, method="Parametric bootstrap (percentile)", level=float(level))

    def _summary(self) -> tuple[str, pd.DataFrame]:
        title = f"Parametric bootstrap: {len(self.table)} replicates ({self.criterion} refits), seed {self.seed}"
        return title, self.table.drop(columns="converged").describe().loc[["mean", "std", "min", "max"]].T

    def __repr__(self) -> str:
        title, summary = self._summary()
        return f"{title}\n{summary.to_string()}"

    def _repr_html_(self) -> str:
        title, summary = self._summary()
        return f"<p>{title}</p>{summary.to_html()}"


def standard_deviations_and_correlations(result: MixedModelResult, theta: np.ndarray, sigma: np.ndarray | None) -> pd.DataFrame:
    """Per row of θ (replicates × n_θ) and σ: each term's standard deviations and correlations in
    θ's order, then σ (None: a family without a residual scale, σ = 1), labelled by
    :func:`variance_parameter_names`.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> standard_deviations_and_correlations(m, m.theta[None, :], np.array([m.sigma])).round(3).values.tolist()
    [[42.001, 49.51]]
    """
    scale = np.ones(len(theta)) if sigma is None else sigma
    columns = []
    factors = relative_covariance_factors(theta, [len(term.column_names) for term in result.design.terms])
    for lam in factors:
        k = lam.shape[-1]
        covariance = scale[:, None, None] ** 2 * np.einsum("rij,rkj->rik", lam, lam)
        sd = np.sqrt(np.einsum("rii->ri", covariance))
        # A replicate with a zero standard deviation has NaN correlations (lme4's cov2cor).
        with np.errstate(invalid="ignore", divide="ignore"):
            for j in range(k):
                columns.append(sd[:, j])
                columns += [covariance[:, i, j] / (sd[:, i] * sd[:, j]) for i in range(j + 1, k)]
    if sigma is not None:
        columns.append(sigma)
    return pd.DataFrame(np.column_stack(columns), columns=variance_parameter_names(result))


def bootstrap(result: MixedModelResult, n: int = 1000, seed: int | None = None) -> ParametricBootstrap:
    """``n`` parametric-bootstrap replicates of a mixed model fit (lme4's ``bootMer(m, FUN, nsim =
    n, seed)``); ``seed`` None draws one from numpy's default generator (kept in ``.seed``). Stops
    on Ctrl-C.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> bootstrap(m, n=20, seed=5).table["converged"].all()
    np.True_
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> bootstrap(g, n=20, seed=5).table.columns.tolist()
    ['Intercept', 'period[T.2]', 'period[T.3]', 'period[T.4]', 'theta_1', 'loglik', 'converged']
    """
    n = checked_count(n, "n")
    seed = checked_seed(seed)
    # Simulated and refitted in the parameterisation fits are optimised in (as simulate() draws).
    model = result.model
    theta_hat, beta_hat = model.fitting_parameters(result.theta, result._beta)
    sigma: np.ndarray | None
    if isinstance(result, LmerResult):
        linear = model._fitting_core.bootstrap(theta_hat, beta_hat, result.sigma, result.reml, n, seed, max_evaluations=model.max_evaluations)
        theta, beta, converged = linear.theta, linear.beta, linear.converged
        sigma, minus_twice_loglik = np.asarray(linear.sigma), np.asarray(linear.objective)
        if result.reml and model._uses_internal_parameterisation():
            minus_twice_loglik = minus_twice_loglik - model.internal_parameterisation.reml_criterion_shift
        criterion = "REML" if result.reml else "ML"
    elif isinstance(result, GlmerResult):
        n_agq = result.n_agq
        generalized = model._fitting_core.bootstrap(theta_hat, beta_hat, result.dispersion, n_agq, n, seed, max_evaluations=model.max_evaluations)
        theta, beta, converged = generalized.theta, generalized.beta, generalized.converged
        # σ = 1 for the families without a dispersion: not a parameter, not reported.
        sigma = np.asarray(generalized.sigma) if result._family().has_dispersion else None
        minus_twice_loglik = np.asarray(generalized.deviance)
        criterion = {0: "nAGQ = 0", 1: "Laplace"}.get(n_agq, f"nAGQ = {n_agq}")
    else:
        raise SpecificationError(f"cannot bootstrap a {type(result).__name__}")
    theta, beta = model.user_theta(np.asarray(theta)), model.user_beta(np.asarray(beta))
    fixed_effects = tuple(str(name) for name in result.params.index)
    table = pd.DataFrame(np.asarray(beta), columns=list(fixed_effects))
    for j in range(theta.shape[1]):
        table[f"theta_{j + 1}"] = theta[:, j]
    if sigma is not None:
        table["sigma"] = sigma
    table["loglik"] = -minus_twice_loglik / 2
    table["converged"] = np.asarray(converged)
    return ParametricBootstrap(
        table=table,
        variance_parameters=standard_deviations_and_correlations(result, theta, sigma),
        fixed_effects=fixed_effects,
        seed=seed,
        criterion=criterion,
    )
