"""``glmer()``: fit a generalized linear mixed model from an lme4 formula and a DataFrame.

Example
-------
>>> import mixedmodels as mm
>>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
...              mm.datasets.load("cbpp"), family="binomial")
>>> round(float(g.params["Intercept"]), 2)
-1.4
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, special

from . import _core
from .design import Design, NaAction, build_design, warn_if_rank_deficient
from .errors import (
    ConvergenceWarning,
    DataError,
    SeparationWarning,
    SingularFitWarning,
    SpecificationError,
)
from .families import Binomial, Family, NegativeBinomial, Poisson, resolve
from .formula import parse_formula
from .results import GlmerResult, OptimizationSummary

Factorization = Literal["auto", "blocked", "sparse"]


def _response_and_weights(design: Design, family: Family) -> tuple[np.ndarray, np.ndarray]:
    """The core's response (proportions for the binomial) and prior weights (trials for the binomial)."""
    user_weights = design.weights if design.weights is not None else np.ones(design.nobs)
    if design.response_trials is not None:
        if not isinstance(family, Binomial):
            raise SpecificationError(f"cbind(successes, failures) responses need the binomial family, not {family.name}")
        successes, trials = design.y, design.response_trials
        failures = trials - successes
        for values, what in ((successes, "successes"), (failures, "failures")):
            bad = (values < 0) | (values != np.round(values))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"cbind(): {what} must be non-negative whole numbers; row {row + 1} has {values[row]}")
        if np.any(trials == 0):
            raise DataError(f"cbind(): {int(np.sum(trials == 0))} rows have no trials (successes + failures = 0)")
        return successes / trials, trials * user_weights
    return design.y, user_weights


def glmer(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "binomial",
    *,
    link: str | None = None,
    weights: str | np.ndarray | pd.Series | None = None,
    offset: str | np.ndarray | pd.Series | None = None,
    nAGQ: int = 1,
    na_action: NaAction = "omit",
    max_evaluations: int = 10_000,
    factorization: Factorization = "auto",
) -> GlmerResult:
    """Fit a generalized linear mixed model by maximum likelihood, as lme4's ``glmer``.

    Parameters
    ----------
    formula
        lme4 formula. The response may be 0/1, counts, a proportion with ``weights`` = trials,
        or ``cbind(successes, failures)``; ``offset(expr)`` terms are allowed.
    data
        A pandas DataFrame; it is not modified.
    family, link
        A family name (``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"inverse.gaussian"``,
        ``"gaussian"``, ``"negative_binomial"``) with an optional link, or a family object such
        as ``mm.families.Binomial(link="probit")``. A negative binomial without a size
        (``theta``) has it estimated as lme4's ``glmer.nb`` does.
    weights, offset
        A column name or one value per row (prior weights: numbers of trials for proportions).
    nAGQ
        1 (default): Laplace approximation. 0: lme4's faster nAGQ = 0 (β estimated inside PIRLS,
        only θ optimised). 2–25: adaptive Gauss–Hermite quadrature, for one scalar random-effects
        term such as ``(1 | g)``.
    na_action, max_evaluations, factorization
        As for :func:`mixedmodels.lmer`.

    Example
    -------
    >>> import mixedmodels as mm
    >>> cbpp = mm.datasets.load("cbpp")
    >>> g = mm.glmer("incidence / size ~ period + (1 | herd)", cbpp, family="binomial", weights="size")
    >>> round(g.llf, 2)
    -92.03
    """
    fam = resolve(family, link)
    if not isinstance(nAGQ, (int, np.integer)) or not 0 <= nAGQ <= 25:
        raise SpecificationError(f"nAGQ must be a whole number from 0 to 25, not {nAGQ!r}")
    parsed = parse_formula(formula)
    # lme4 allows a level per observation in GLMMs (an observation-level random effect).
    design = build_design(parsed, data, weights=weights, offset=offset, na_action=na_action, check_levels=False)
    warn_if_rank_deficient(design, stacklevel=2)
    setup = _Setup(formula, design, data.attrs.get("name"), int(nAGQ), max_evaluations, factorization)
    if isinstance(fam, NegativeBinomial) and fam.theta is None:
        result = _fit_negative_binomial(setup, fam.link)
    else:
        result = _fit(setup, fam)
    _warn_about(result)
    return result


def glmer_nb(formula: str, data: pd.DataFrame, **kwargs: Any) -> GlmerResult:
    """lme4's ``glmer.nb``: a negative binomial GLMM whose size θ is estimated.

    >>> import mixedmodels as mm
    >>> ticks = mm.datasets.load("grouseticks")
    >>> g = mm.glmer_nb("TICKS ~ YEAR + (1 | BROOD)", ticks)
    >>> g.family.theta > 0
    True
    """
    return glmer(formula, data, family=NegativeBinomial(link=kwargs.pop("link", "log")), **kwargs)


class _Setup:
    """What every fit of one formula and data shares (the negative binomial refits it)."""

    def __init__(self, formula: str, design: Design, data_name: str | None, n_agq: int, max_evaluations: int, factorization: Factorization):
        self.formula = formula
        self.design = design
        self.data_name = data_name
        self.n_agq = n_agq
        self.max_evaluations = max_evaluations
        self.factorization = factorization
        self.offset = design.offset if design.offset is not None else np.zeros(design.nobs)
        self.terms = [(term.factor.codes, term.n_levels, term.z) for term in design.terms]


def _fit(setup: _Setup, fam: Family) -> GlmerResult:
    design = setup.design
    y, prior_weights = _response_and_weights(design, fam)
    try:
        model = _core.GeneralizedLinearMixedModel(
            design.x,
            setup.terms,
            np.ascontiguousarray(y, dtype=float),
            np.ascontiguousarray(prior_weights, dtype=float),
            np.ascontiguousarray(setup.offset, dtype=float),
            fam.core_name,
            fam.link,
            fam.negative_binomial_theta,
            setup.factorization,
        )
    except DataError as err:
        raise DataError(f"response {design.parsed.response!r}: {err}") from None
    raw = model.fit(setup.n_agq, max_evaluations=setup.max_evaluations)
    hessian = raw.beta_covariance_hessian
    return GlmerResult(
        formula=setup.formula,
        design=design,
        data_name=setup.data_name,
        theta=np.asarray(raw.theta),
        _beta=np.asarray(raw.beta),
        _beta_covariance=np.asarray(hessian if hessian is not None else raw.beta_covariance_factor),
        _ranef=list(raw.ranef),
        optimization=OptimizationSummary.from_core(raw, setup.max_evaluations),
        factorization="sparse" if model.is_sparse else "blocked",
        _model=model,
        family=fam,
        n_agq=setup.n_agq,
        dispersion=float(raw.dispersion),
        y=np.asarray(y, dtype=float),
        prior_weights=np.asarray(prior_weights, dtype=float),
        eta=np.asarray(raw.eta),
        mu=np.asarray(raw.mu),
        _objective=float(raw.objective),
        _minus_twice_log_likelihood=float(raw.minus_twice_log_likelihood),
        _sum_deviance_residuals=float(raw.sum_deviance_residuals),
        _beta_covariance_factor=np.asarray(raw.beta_covariance_factor),
        hessian_covariance=hessian is not None,
        pirls_converged=bool(raw.pirls_converged),
    )


def _theta_moment_ml(y: np.ndarray, mu: np.ndarray, weights: np.ndarray, limit: int = 20, tolerance: float = 1e-4) -> float:
    """ML estimate of the negative binomial size for fixed means by Newton's method from the
    moment estimate (Venables & Ripley's ``theta.ml``, the start lme4's ``glmer.nb`` uses)."""
    theta = weights.sum() / np.sum(weights * (y / mu - 1) ** 2)
    step = 1.0
    for _ in range(limit - 1):
        if abs(step) <= tolerance:
            break
        theta = abs(theta)
        score = np.sum(weights * (special.digamma(theta + y) - special.digamma(theta) + np.log(theta) + 1 - np.log(theta + mu) - (y + theta) / (mu + theta)))
        information = np.sum(
            weights * (-special.polygamma(1, theta + y) + special.polygamma(1, theta) - 1 / theta + 2 / (mu + theta) - (y + theta) / (mu + theta) ** 2)
        )
        step = score / information
        theta += step
    return float(max(theta, 1e-8))


def _fit_negative_binomial(setup: _Setup, link: str) -> GlmerResult:
    """lme4's ``glmer.nb``: a Poisson fit, the size's moment-ML start from its means, then a
    bounded one-dimensional search of log θ within ±3 of the start (lme4's tolerance 5e-5),
    refitting the GLMM at every θ."""
    poisson = _fit(setup, Poisson(link=link))
    start = _theta_moment_ml(poisson.y, poisson.mu, poisson.prior_weights)
    fits: dict[float, GlmerResult] = {}

    def minus_twice_log_likelihood(log_theta: float) -> float:
        fits[log_theta] = _fit(setup, NegativeBinomial(link=link, theta=math.exp(log_theta)))
        return -2 * fits[log_theta].llf

    search = optimize.minimize_scalar(
        minus_twice_log_likelihood,
        bounds=(math.log(start) - 3, math.log(start) + 3),
        method="bounded",
        options={"xatol": 5e-5},
    )
    return fits[search.x] if search.x in fits else _fit(setup, NegativeBinomial(link=link, theta=math.exp(search.x)))


def _warn_about(result: GlmerResult) -> None:
    if not result.converged:
        warnings.warn(
            f"the optimizer did not converge ({result.optimization.status}); estimates may be imprecise",
            ConvergenceWarning,
            stacklevel=3,
        )
    if not result.pirls_converged:
        warnings.warn(
            "PIRLS did not converge at the estimates (the conditional modes kept moving for 100 iterations); "
            "estimates may not be finite",
            ConvergenceWarning,
            stacklevel=3,
        )
    if result.n_agq > 0 and not result.hessian_covariance and len(result._beta) > 0:
        warnings.warn(
            "the Hessian of the objective is not positive definite; standard errors come from the factorisation at the modes",
            ConvergenceWarning,
            stacklevel=3,
        )
    if isinstance(result.family, Binomial) and np.any((result.mu < 1e-8) | (result.mu > 1 - 1e-8)):
        warnings.warn(
            "fitted probabilities numerically 0 or 1 occurred: a predictor may separate the outcomes completely, "
            "and the estimates of the separating effects are then not finite",
            SeparationWarning,
            stacklevel=3,
        )
    if result.is_singular:
        warnings.warn("boundary (singular) fit: see GlmerResult.is_singular", SingularFitWarning, stacklevel=3)
