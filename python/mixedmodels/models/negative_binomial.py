"""lme4's ``glmer.nb``: a negative binomial GLMM whose size θ is estimated by an outer
one-dimensional search, refitting the GLMM at each size.

Example
-------
>>> import mixedmodels as mm
>>> g = mm.glmer_nb("TICKS ~ YEAR + (1 | BROOD)", mm.datasets.load("grouseticks"))
>>> round(g.family.theta, 1)
3.3
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize, special

from ..families import NegativeBinomial, Poisson
from ..results.generalized import GlmerResult

if TYPE_CHECKING:
    from .generalized import GeneralizedLinearMixedModel


def size_moment_ml(y: np.ndarray, mu: np.ndarray, weights: np.ndarray, limit: int = 20, tolerance: float = 1e-4) -> float:
    """ML estimate of the negative binomial size for fixed means by Newton's method from the
    moment estimate (Venables & Ripley's ``theta.ml``, the start lme4's ``glmer.nb`` uses).

    >>> rng = np.random.default_rng(1)
    >>> y = rng.negative_binomial(2.0, 2.0 / (2.0 + 5.0), size=20_000).astype(float)
    >>> round(size_moment_ml(y, np.full(y.size, 5.0), np.ones(y.size)), 1)
    2.0
    """
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


def fit_negative_binomial(model: GeneralizedLinearMixedModel) -> GlmerResult:
    """lme4's ``glmer.nb``: a Poisson fit, the size's moment-ML start from its means, then a
    bounded one-dimensional search of log θ within ±3 of the start (lme4's tolerance 5e-5),
    refitting the GLMM at every θ. Warnings are the caller's to issue for the final fit.

    >>> import mixedmodels as mm
    >>> model = mm.GeneralizedLinearMixedModel.from_formula(
    ...     "TICKS ~ YEAR + (1 | BROOD)", mm.datasets.load("grouseticks"), family="negative_binomial")
    >>> round(fit_negative_binomial(model).family.theta, 1)
    3.3
    """
    link = model.family.link
    poisson = model.with_family(Poisson(link=link)).fit_without_warnings()
    start = size_moment_ml(poisson.y, poisson.mu, poisson.prior_weights)
    fits: dict[float, GlmerResult] = {}

    def fit_at(log_theta: float) -> GlmerResult:
        return model.with_family(NegativeBinomial(link=link, theta=math.exp(log_theta))).fit_without_warnings()

    def minus_twice_log_likelihood(log_theta: float) -> float:
        fits[log_theta] = fit_at(log_theta)
        return -2 * fits[log_theta].llf

    search = optimize.minimize_scalar(
        minus_twice_log_likelihood,
        bounds=(math.log(start) - 3, math.log(start) + 3),
        method="bounded",
        options={"xatol": 5e-5},
    )
    return fits[search.x] if search.x in fits else fit_at(search.x)
