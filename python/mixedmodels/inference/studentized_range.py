"""Upper-tail probabilities of the studentized range distribution, for Tukey's adjustment of
pairwise comparisons (emmeans' ``adjust = "tukey"``, R's ``ptukey(q, k, df, lower.tail = FALSE)``).

Q = R / S, where R is the range of k independent standard normals and S = √(χ²_ν / ν) an
independent studentising standard deviation (S = 1 for ν = ∞). As in Copenhaver and Holland
(1988, J. Statist. Comput. Simul. 30, 1-15), the algorithm of R's ``ptukey``, the probability is
an integral over the normals' range for fixed S, then an integral over the distribution of S.
Unlike ``ptukey`` (1 minus the lower tail, accurate to about 1e-10 absolute) both integrals here
are of the upper tail itself, so small p-values keep their relative accuracy, and they are
vectorised over all arguments at once:

* P(R > w) = ∫ k φ(x) Φ̄(x)^(k-1) [1 - (1 - Φ̄(x + w)/Φ̄(x))^(k-1)] dx, x the smallest of the k
  normals and the bracket the chance that another of them exceeds x + w. With x = y - w/2 the
  integrand is centred near y = 0 for every w (the smallest near -w/2, the largest near +w/2)
  and analytic, so the trapezoidal rule on a fixed y grid converges geometrically. Its log is
  tabulated once per k as polynomials on short panels of w, with their derivatives.
* P(Q > q) = ∫ g_ν(z) P(R > q eᶻ) dz over z = log S, whose density g_ν is log-concave, as is the
  integrand. Its mode and curvature are found by Newton's method on the tabulated log P(R > w);
  the integral is the trapezoidal rule after z = mode + σ sinh(t) (σ from the curvature), which
  covers both the Gaussian core and the exponential left tail of small ν with a fixed number
  of nodes per argument.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ..errors import SpecificationError

# P(R > w) integrand: y = x + w/2 on [-8.5, 8.5] in steps of 1/6; outside it the integrand is
# below e^-36 of its total for every w and k (checked against adaptive quadrature).
_RANGE_NODES = np.arange(-51, 52) / 6
_RANGE_STEP = 1 / 6
# log P(R > w) as degree-10 polynomials on panels of width 1/2 over [0, 40] (interpolated at
# Chebyshev points: about 1e-11 absolute); beyond 40, where P(R > w) < 1e-170, extrapolated
# quadratically (it stays concave, and only its negligible size matters there).
_PANEL_WIDTH = 0.5
_TABLE_END = 40.0
_DEGREE = 10
_CHEBYSHEV = np.cos(np.pi * (np.arange(_DEGREE + 1) + 0.5) / (_DEGREE + 1))
_MONOMIAL_FROM_VALUES = np.linalg.inv(np.vander(_CHEBYSHEV, increasing=True))
_POWERS = np.arange(_DEGREE + 1)
# The outer integral: nodes per argument, the Gaussian extent of its core in σ, and the drop of
# log density its left tail must reach (e^-36 of the mode).
_OUTER_NODES = 64
_CORE_EXTENT = 10.0
_TAIL_DROP = 36.0
# Newton's method stops when its step is below this fraction of σ (the window is centred to
# within it, which the quadrature does not notice).
_NEWTON_TOLERANCE = 1e-3
_NEWTON_ITERATIONS = 60


def studentized_range_sf(q: ArrayLike, k: ArrayLike, df: ArrayLike) -> np.ndarray:
    """P(Q > q) for the studentized range Q of ``k`` means with ``df`` degrees of freedom
    (``np.inf`` for the range of k standard normals), broadcast over the three arguments:
    R's ``ptukey(q, k, df, lower.tail = FALSE)``, to about 1e-10 relative also far in the tail
    (df ≥ 2; 1e-8 at df = 0.5).

    ``k`` must be whole numbers of at least 2 and ``df`` positive; NaN in any argument gives NaN.
    With two means Q = √2 |t|, so the probability is the two-sided t test's.

    >>> studentized_range_sf([0.0, 3.5, 5.0], 3, 42).round(6)
    array([1.      , 0.045057, 0.002836])
    >>> float(studentized_range_sf(7.0, 10, np.inf))
    3.2659181...e-05
    """
    q_, k_, df_ = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (q, k, df)))
    valid = ~(np.isnan(q_) | np.isnan(k_) | np.isnan(df_))
    bad_k = valid & ((k_ < 2) | (k_ != np.round(k_)) | np.isinf(k_))
    if np.any(bad_k):
        raise SpecificationError(f"the number of means k must be a whole number of at least 2, not {np.unique(k_[bad_k]).tolist()}")
    bad_df = valid & (df_ <= 0)
    if np.any(bad_df):
        raise SpecificationError(f"the degrees of freedom df must be positive, not {np.unique(df_[bad_df]).tolist()}")
    p = np.full(q_.shape, np.nan)
    p[valid & (q_ <= 0)] = 1.0
    p[valid & (q_ == np.inf)] = 0.0
    inside = valid & (q_ > 0) & (q_ < np.inf)
    two = inside & (k_ == 2)
    p[two] = 2 * special.stdtr(df_[two], -q_[two] / math.sqrt(2))
    for n_means in np.unique(k_[inside & (k_ > 2)]):
        table = _log_range_sf_table(int(n_means))
        chosen = inside & (k_ == n_means)
        infinite = chosen & np.isinf(df_)
        finite = chosen & ~np.isinf(df_)
        p[infinite] = np.exp(_log_range_sf(table, q_[infinite])[..., 0])
        p[finite] = _studentized_sf(table, q_[finite], df_[finite])
    return p


@lru_cache(maxsize=64)
def _log_range_sf_table(k: int) -> np.ndarray:
    """Coefficients of log P(R > w) and of its first two derivatives in w (panels × 3 ×
    degree + 1), as polynomials in the panel's u ∈ [-1, 1]."""
    starts = np.arange(0.0, _TABLE_END, _PANEL_WIDTH)
    w = starts[:, None] + (_CHEBYSHEV + 1) * _PANEL_WIDTH / 2
    value = np.log(_range_sf(w, k)) @ _MONOMIAL_FROM_VALUES.T
    scale = 2 / _PANEL_WIDTH  # du/dw
    first = np.zeros_like(value)
    first[:, :-1] = scale * value[:, 1:] * _POWERS[1:]
    second = np.zeros_like(value)
    second[:, :-1] = scale * first[:, 1:] * _POWERS[1:]
    return np.stack([value, first, second], axis=1)


def _range_sf(w: np.ndarray, k: int) -> np.ndarray:
    """P(R > w) for the range R of k standard normals, by the trapezoidal rule in y = x + w/2."""
    smallest = _RANGE_NODES - w[..., None] / 2
    above_smallest = special.ndtr(-smallest)
    above_largest = special.ndtr(-(_RANGE_NODES + w[..., None] / 2))
    with np.errstate(divide="ignore"):  # w = 0: log1p(-1) = -inf, P = 1
        another_beyond = -np.expm1((k - 1) * np.log1p(-above_largest / above_smallest))
    density = np.exp(-smallest**2 / 2) / math.sqrt(2 * math.pi)
    return _RANGE_STEP * np.sum(k * density * above_smallest ** (k - 1) * another_beyond, axis=-1)


def _log_range_sf(table: np.ndarray, w: np.ndarray, order: int = 0) -> np.ndarray:
    """log P(R > w) and its derivatives in w up to ``order`` (≤ 2), on a last axis."""
    extrapolate = bool(np.any(w > _TABLE_END))
    panel = np.minimum((w / _PANEL_WIDTH).astype(np.intp), len(table) - 1)
    u = np.minimum(2 * (w - panel * _PANEL_WIDTH) / _PANEL_WIDTH - 1, 1.0)
    # 1, u, u², ... by running products (u ** _POWERS takes libm's slow pow path).
    powers = np.empty(u.shape + (_DEGREE + 1,))
    powers[..., 0] = 1.0
    powers[..., 1:] = u[..., None]
    rows = table[:, : 3 if extrapolate else order + 1][panel]
    values = np.einsum("...ji,...i->...j", rows, np.multiply.accumulate(powers, axis=-1))
    if extrapolate:
        distance = np.maximum(w - _TABLE_END, 0.0)
        value, first, second = values[..., 0], values[..., 1], values[..., 2]
        values = np.stack([value + distance * (first + distance * second / 2), first + distance * second, second], axis=-1)
    return values[..., : order + 1]


def _studentized_sf(table: np.ndarray, q: np.ndarray, df: np.ndarray) -> np.ndarray:
    """P(Q > q) for finite df: ∫ g_ν(z) P(R > q eᶻ) dz, z = log S."""
    half_df = df / 2
    # Newton's method for the mode of the log integrand Λ(z) = log g_ν(z) + log P(R > q eᶻ),
    # concave; steps capped at 1 while far off. Starts where q S is a typical range.
    # The mode need only be known to a small fraction of the integrand's width σ.
    z = np.minimum(0.0, np.log(3.0 / q))
    for _ in range(_NEWTON_ITERATIONS):
        slope, curvature = _log_integrand_slope_curvature(table, q, half_df, z)
        sigma = 1 / np.sqrt(-curvature)
        step = np.clip(slope * sigma**2, -1.0, 1.0)
        z = z + step
        if np.all(np.abs(step) < _NEWTON_TOLERANCE * sigma):
            break
    # z = mode + σ sinh(t): the right tail is at least as narrow as the core (Λ'' falls with z);
    # the left tail of g_ν falls like e^(νz), so it reaches the drop about _TAIL_DROP / ν away.
    left = np.arcsinh((_TAIL_DROP / df + _CORE_EXTENT * sigma) / sigma)
    right = math.asinh(_CORE_EXTENT)
    fraction = np.linspace(0.0, 1.0, _OUTER_NODES)
    t = -left[:, None] + (left + right)[:, None] * fraction
    nodes = z[:, None] + sigma[:, None] * np.sinh(t)
    weight = ((left + right) / (_OUTER_NODES - 1) * sigma)[:, None] * np.cosh(t)
    log_integrand = _log_scale_density(half_df[:, None], nodes) + _log_range_sf(table, q[:, None] * np.exp(nodes))[..., 0]
    # Quadrature error (about 1e-11) can take a probability near 1 just above it.
    return np.minimum(np.sum(weight * np.exp(log_integrand), axis=1), 1.0)


def _log_integrand_slope_curvature(table: np.ndarray, q: np.ndarray, half_df: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dΛ/dz and d²Λ/dz² at z, with log g_ν(z) = const - (ν/2)(e^(2z) - 1 - 2z)."""
    w = q * np.exp(z)
    values = _log_range_sf(table, w, order=2)
    first, second = values[..., 1], values[..., 2]
    growth = np.exp(2 * z)
    slope = 2 * half_df * (1 - growth) + w * first
    curvature = -4 * half_df * growth + w * first + w**2 * second
    return slope, curvature


def _log_scale_density(half_df: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log density of z = log S, S = √(χ²_ν / ν), with x = ν/2: x log x + log 2 - lgamma(x)
    + ν z - x e^(2z), written with Stirling's remainder r(x) of lgamma so that nothing cancels
    for large ν: ½ log x + log 2 - ½ log 2π - r(x) - x (e^(2z) - 1 - 2z)."""
    x = half_df
    # r(x) = lgamma(x) - (x - ½) log x + x - ½ log 2π: directly below 10, else its asymptotic
    # series (next term below 2e-14 there).
    small = np.minimum(x, 10.0)
    large = np.maximum(x, 10.0)
    remainder = np.where(
        x < 10,
        special.gammaln(small) - (small - 0.5) * np.log(small) + small - 0.5 * math.log(2 * math.pi),
        1 / (12 * large) - 1 / (360 * large**3) + 1 / (1260 * large**5) - 1 / (1680 * large**7) + 1 / (1188 * large**9),
    )
    constant = 0.5 * np.log(x) + math.log(2) - 0.5 * math.log(2 * math.pi) - remainder
    return constant - x * (np.expm1(2 * z) - 2 * z)
