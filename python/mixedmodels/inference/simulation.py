"""Responses simulated from a fitted model with new random effects (lme4's ``simulate(m, nsim,
seed)`` with its defaults ``use.u = FALSE``, ``re.form = NA``; MixedModels.jl's ``simulate``):
for a linear mixed model, y* = offset + Xβ̂ + σ̂ (ZΛ(θ̂)u + ε/√w) with u, ε standard normal; for a
generalized one, y* drawn from the family at μ = g⁻¹(offset + Xβ̂ + ZΛ(θ̂)u): binomial proportions
out of the prior weights' trials (as the model's response), Poisson or negative binomial counts,
and for the families with a dispersion φ̂ (``dispersion``, lme4's ``sigma(m)^2``) responses with
the model's mean μ and variance φ̂V(μ)/w: Gaussian N(μ, φ̂/w), Gamma with shape w/φ̂, inverse
Gaussian with shape w/φ̂. lme4 1.1-31 differs there: its Gamma shape is σ̂·w (since changed to
w/σ̂², lme4 issue #782), its inverse Gaussian shape w/σ̂, and its Gaussian variance ignores the
weights. As in lme4, the random effects ZΛ(θ̂)u of a GLMM are not scaled by σ̂: the likelihood a
GLMM is fitted by has u ~ N(0, I) whatever the family (the covariances reported for these
families, as lme4 1.1-31's ``VarCorr``, are φ̂λλᵀ; lme4 has since dropped that factor).

Replicate r comes from its own random stream of (seed, r), so a seed gives the same responses
whatever the number of threads, and the first columns of a larger draw are a smaller draw.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> y = simulate(m, nsim=3, seed=1)
>>> y.shape
(180, 3)
>>> bool((simulate(m, nsim=1, seed=1)[:, 0] == y[:, 0]).all())
True
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecificationError
from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult
from ..results.linear import LmerResult

# The core's seeds are unsigned 64-bit integers.
SEED_LIMIT = 2**64


def checked_seed(seed: int | None) -> int:
    """``seed`` as the core takes it; None draws one from numpy's default generator.

    >>> checked_seed(12)
    12
    """
    if seed is None:
        return int(np.random.default_rng().integers(SEED_LIMIT, dtype=np.uint64))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < SEED_LIMIT:
        raise SpecificationError(f"seed must be None or a whole number from 0 to 2**64 - 1, not {seed!r}")
    return int(seed)


def checked_count(value: int, what: str) -> int:
    """``value`` if it is a whole number of at least 1, else a SpecificationError naming ``what``.

    >>> checked_count(5, "nsim")
    5
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SpecificationError(f"{what} must be a whole number of at least 1, not {value!r}")
    return int(value)


def simulate(result: MixedModelResult, nsim: int = 1, seed: int | None = None) -> np.ndarray:
    """``nsim`` responses simulated at the estimates of ``result`` with new random effects: an
    (n, nsim) array, one column per replicate (lme4's ``simulate``).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> simulate(m, nsim=2, seed=7).shape
    (30, 2)
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> simulate(g, nsim=3, seed=7).shape
    (56, 3)
    >>> import pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> data = pd.DataFrame({"g": np.repeat(np.arange(10), 8).astype(str), "x": rng.uniform(size=80)})
    >>> mu = np.exp(1 + data["x"] + np.repeat(rng.normal(0, 0.3, 10), 8))
    >>> data["y"] = rng.gamma(5.0, mu / 5)
    >>> gamma = mm.glmer("y ~ x + (1 | g)", data, family=mm.families.Gamma("log"))
    >>> bool((simulate(gamma, nsim=2, seed=7) > 0).all())
    True
    """
    nsim = checked_count(nsim, "nsim")
    seed = checked_seed(seed)
    # Drawn in the parameterisation fits are optimised in, as bootstrap() draws (same draws).
    theta, beta = result.model.fitting_parameters(result.theta, result._beta)
    if isinstance(result, GlmerResult):
        return np.asarray(result.model._fitting_core.simulate(theta, beta, result.dispersion, nsim, seed))
    if not isinstance(result, LmerResult):
        raise SpecificationError(f"cannot simulate from a {type(result).__name__}")
    design = result.design
    offset = None if design.offset is None else np.ascontiguousarray(design.offset, dtype=float)
    return np.asarray(result.model._fitting_core.simulate(theta, beta, result.sigma, nsim, seed, offset))
