"""Kenward and Roger's small-sample inference for linear mixed models fitted by REML (Kenward &
Roger 1997, Biometrics 53(3); Halekoh & Højsgaard 2014, JSS 59(9): pbkrtest's ``vcovAdj``,
``Lb_ddf`` and ``KRmodcomp``, which lmerTest and emmeans call).

The core computes, once per fit, the adjusted covariance Φ_A of β̂ (Φ plus the bias of the plug-in
estimate and the variability of the covariance parameters), the derivatives Pᵢ of XᵀV⁻¹X in the
covariance parameters γ and W, the asymptotic covariance of γ̂ (:class:`KenwardRogerAdjustment`,
cached as ``LmerResult.kenward_roger``) — through the random-effects space, never an n×n matrix.
A test of Lβ = 0 is then a few p×p products: with Θ = Lᵀ(LΦLᵀ)⁻¹L and Uᵢ = ΘΦPᵢΦ,
A₁ = Σᵢⱼ Wᵢⱼ tr Uᵢ tr Uⱼ and A₂ = Σᵢⱼ Wᵢⱼ tr(UᵢUⱼ) give the denominator degrees of freedom and
the scaling of F = (Lβ̂)ᵀ(LΦ_ALᵀ)⁻¹(Lβ̂)/q (Kenward & Roger 1997, sec. 4).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> m.coef_table(ddf="kenward-roger").round(3).loc["Days"].tolist()[:3]
[10.467, 1.546, 17.0]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from ..errors import SpecificationError
from .satterthwaite import independent_contrasts, t_test_columns

if TYPE_CHECKING:
    import numpy.typing as npt

    from ..results.linear import LmerResult

# pbkrtest's thresholds: V₀ = 1 + c₁B is zeroed below this; 0/0 counts as 1 below .divZero's tol.
NEGLIGIBLE_V0 = 1e-10
DIVIDE_ZERO_TOLERANCE = 1e-14
# F is left unscaled when the denominator df are within this of 2 (KRmodcomp).
UNSCALED_NEAR_TWO = 1e-2


@dataclass(frozen=True)
class KenwardRogerAdjustment:
    """What Kenward and Roger's method needs from a REML fit, computed once: β̂, Φ (the
    unadjusted covariance of β̂), Φ_A (``adjusted_covariance``), the Pᵢ (``information_derivatives``,
    (m, p, p)) and W (``parameter_covariance``, (m, m)) over the m covariance parameters (every
    term's variances and covariances, then σ²).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> m.kenward_roger.information_derivatives.shape
    (2, 1, 1)
    """

    names: pd.Index
    beta: np.ndarray
    beta_covariance: np.ndarray
    adjusted_covariance: np.ndarray
    information_derivatives: np.ndarray
    parameter_covariance: np.ndarray
    sigma: float

    @classmethod
    def of(cls, result: LmerResult) -> KenwardRogerAdjustment:
        """Compute the adjustment at ``result``'s estimates (one core call); a SpecificationError
        for an ML fit (Kenward and Roger's method assumes REML estimates, as pbkrtest's)."""
        if not result.reml:
            raise SpecificationError("Kenward-Roger's method needs a REML fit (as pbkrtest and lmerTest); refit with REML=True or use ddf='satterthwaite'")
        # In the centred parameterisation the fit was optimised in, mapped back to β's: the
        # adjustment is invariant under linear changes of X and of the covariance parameters.
        model = result.model
        theta, _ = model.fitting_parameters(result.theta, result._beta)
        adjustment = model._fitting_core.kenward_roger_adjustment(theta, result.sigma)
        beta_covariance = np.asarray(adjustment.beta_covariance)
        adjusted = np.asarray(adjustment.adjusted_beta_covariance)
        information = np.asarray(adjustment.information_derivatives)
        if model._uses_internal_parameterisation():
            internal = model.internal_parameterisation
            beta_covariance, adjusted = internal.fixed_covariance_to_user(beta_covariance), internal.fixed_covariance_to_user(adjusted)
            information = internal.fixed_information_to_user(information)
        return cls(
            names=result.design.fixed_index,
            beta=result._beta,
            beta_covariance=beta_covariance,
            adjusted_covariance=adjusted,
            information_derivatives=information,
            parameter_covariance=np.asarray(adjustment.parameter_covariance),
            sigma=result.sigma,
        )

    @functools.cached_property
    def _sandwiches(self) -> np.ndarray:
        """ΦPᵢΦ for every covariance parameter, (m, p, p)."""
        return np.einsum("pq,mqr,rs->mps", self.beta_covariance, self.information_derivatives, self.beta_covariance)

    @functools.cached_property
    def coefficient_tests(self) -> dict[str, np.ndarray]:
        """The t-test of every coefficient (``t_tests`` of the identity), computed once."""
        return self.t_tests(np.eye(self.beta.size))

    def degrees_of_freedom(self, contrasts: npt.ArrayLike) -> np.ndarray:
        """Kenward and Roger's degrees of freedom of each row of ``contrasts`` (q × p, columns in
        ``params`` order) as a 1-df test (pbkrtest's ``Lb_ddf``)."""
        rows = np.atleast_2d(np.asarray(contrasts, dtype=float))
        variance = np.einsum("ip,pq,iq->i", rows, self.beta_covariance, rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            traces = np.einsum("ip,mpq,iq->im", rows, self._sandwiches, rows) / variance[:, None]
        # With one row Θ has rank one, so tr(UᵢUⱼ) = tr Uᵢ tr Uⱼ and A₁ = A₂.
        a = np.einsum("im,mn,in->i", traces, self.parameter_covariance, traces)
        return denominator_degrees_of_freedom(a, a, 1)[0]

    def t_tests(self, contrasts: npt.ArrayLike) -> dict[str, np.ndarray]:
        """Each row of ``contrasts`` as a t-test with the adjusted standard error √(LΦ_ALᵀ) and
        Kenward and Roger's df (lmerTest's ``contest1D``): ``estimate``, ``std_error``, ``df``,
        ``statistic``, ``p_value``."""
        rows = np.atleast_2d(np.asarray(contrasts, dtype=float))
        return t_test_columns(rows, self.beta, self.adjusted_covariance, self.degrees_of_freedom(rows))

    def f_test(self, contrasts: npt.ArrayLike, eps: float = float(np.sqrt(np.finfo(float).eps))) -> dict[str, float]:
        """The joint F-test of the rows of ``contrasts`` (pbkrtest's ``KRmodcomp`` as lmerTest's
        ``anova`` reports it): q = rank of L, F = scaling × W/q with the Wald statistic W on Φ_A,
        ``mean_sq`` = σ̂² W/q. Rows that are linear combinations of others are dropped first
        (the hypothesis, Θ and W do not change). Returns ``sum_sq``, ``mean_sq``, ``num_df``,
        ``den_df``, ``F``, ``p_value``."""
        rows = np.atleast_2d(np.asarray(contrasts, dtype=float))
        _, basis = independent_contrasts(rows, self.beta_covariance, eps)
        q = basis.shape[0]
        theta = basis.T @ np.linalg.solve(basis @ self.beta_covariance @ basis.T, basis)
        u = np.einsum("pq,mqr->mpr", theta, self._sandwiches)
        traces = np.einsum("mpp->m", u)
        a1 = float(traces @ self.parameter_covariance @ traces)
        a2 = float(np.einsum("mn,mpr,nrp->", self.parameter_covariance, u, u))
        den_df, scaling = denominator_degrees_of_freedom(np.array([a1]), np.array([a2]), q)
        estimate = basis @ self.beta
        wald = float(estimate @ np.linalg.solve(basis @ self.adjusted_covariance @ basis.T, estimate))
        f_unscaled = wald / q
        f_value = float(scaling[0]) * f_unscaled
        mean_sq = f_unscaled * self.sigma**2
        return {
            "sum_sq": mean_sq * q,
            "mean_sq": mean_sq,
            "num_df": float(q),
            "den_df": float(den_df[0]),
            "F": f_value,
            "p_value": float(special.fdtrc(q, den_df[0], f_value)),
        }


def denominator_degrees_of_freedom(a1: np.ndarray, a2: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Kenward and Roger's denominator df and F scaling λ from A₁, A₂ and the number of
    restrictions q (1997, sec. 4; pbkrtest's ``.KR_adjust``, thresholds included): E[F*] and
    Var[F*] matched to a scaled F(q, m) gives ρ and m = 4 + (q + 2)/(qρ − 1).

    >>> df, scaling = denominator_degrees_of_freedom(np.array([0.1]), np.array([0.1]), 1)
    >>> round(float(df[0]), 6), round(float(scaling[0]), 6)
    (20.0, 1.0)
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (a1 + 6 * a2) / (2 * q)
        g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
        denominator = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / denominator, (q - g) / denominator, (q + 2 - g) / denominator
        v0 = 1 + c1 * b
        v0 = np.where(np.abs(v0) < NEGLIGIBLE_V0, 0.0, v0)
        v1, v2 = 1 - c2 * b, 1 - c3 * b
        numerator = 1 - a2 / q
        ratio = np.where((np.abs(numerator) < DIVIDE_ZERO_TOLERANCE) & (np.abs(v1) < DIVIDE_ZERO_TOLERANCE), 1.0, numerator / v1)
        rho = ratio**2 * v0 / v2 / q
        df = 4 + (q + 2) / (q * rho - 1)
        scaling = np.where(np.abs(df - 2) < UNSCALED_NEAR_TWO, 1.0, df * (1 - a2 / q) / (df - 2))
    return np.asarray(df, dtype=float), np.asarray(scaling, dtype=float)
