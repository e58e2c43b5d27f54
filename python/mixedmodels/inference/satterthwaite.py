"""Satterthwaite's degrees of freedom for linear mixed models, as lmerTest computes them
(Kuznetsova, Brockhoff & Christensen 2017, JSS 82(13), sec. 3.2).

For a contrast L the variance of Lβ̂ is L Cov(β̂) Lᵀ; its gradient in the variance parameters
φ = (θ, σ) is gᵢ = L (∂Cov(β̂)/∂φᵢ) Lᵀ and its degrees of freedom are ν = 2 (L Cov(β̂) Lᵀ)² / gᵀAg,
with A = 2H⁻¹ the asymptotic covariance of φ̂ from the Hessian H of the deviance in φ. The core
computes A and the Jacobian of Cov(β̂) once per fit (:class:`SatterthwaiteDerivatives`, cached on
the result as ``LmerResult.satterthwaite``); every test after that is a few small matrix products.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> m.satterthwaite.degrees_of_freedom([[0, 1]]).round(3).tolist()
[17.0]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from ..errors import MixedModelWarning, warn

if TYPE_CHECKING:
    import numpy.typing as npt

    from ..results.linear import LmerResult

# lmerTest's tolerance on the Hessian's eigenvalues (as_lmerModLmerTest's `tol`).
EIGENVALUE_TOLERANCE = 1e-8


@dataclass(frozen=True)
class SatterthwaiteDerivatives:
    """What Satterthwaite's method needs from a fit, computed once: β̂, Cov(β̂), the asymptotic
    covariance A of φ = (θ, σ) (``varpar_covariance``) and ∂Cov(β̂)/∂φᵢ (``jacobian``, (k, p, p)).
    φ is taken in the centred parameterisation the fit was optimised in (see
    :mod:`mixedmodels.models.internal_parameterisation`), where the derivatives are well
    conditioned; the degrees of freedom gᵀAg do not depend on how φ is parameterised.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> m.satterthwaite.jacobian.shape
    (2, 1, 1)
    """

    names: pd.Index
    beta: np.ndarray
    beta_covariance: np.ndarray
    varpar_covariance: np.ndarray
    jacobian: np.ndarray
    hessian_eigenvalues: np.ndarray
    sigma: float

    @classmethod
    def of(cls, result: LmerResult) -> SatterthwaiteDerivatives:
        """Compute the derivatives at ``result``'s estimates (one core call). Warns, as lmerTest
        does, when the Hessian of the deviance has negative eigenvalues (not a minimum)."""
        model = result.model
        theta, _ = model.fitting_parameters(result.theta, result._beta)
        derivatives = model._fitting_core.variance_parameter_derivatives(
            np.ascontiguousarray(model.response, dtype=float), theta, result.sigma, result.reml
        )
        jacobian = np.asarray(derivatives.beta_covariance_jacobian)
        if model._uses_internal_parameterisation():
            jacobian = model.internal_parameterisation.fixed_derivatives_to_user(jacobian)
        eigenvalues = np.asarray(derivatives.hessian_eigenvalues)
        negative = eigenvalues[eigenvalues < -EIGENVALUE_TOLERANCE]
        if negative.size:
            values = " ".join(f"{value:.1e}" for value in negative)
            warn(
                f"the deviance's Hessian in the variance parameters has {negative.size} negative eigenvalue(s): {values}; "
                "the fit may not have converged and Satterthwaite's degrees of freedom are unreliable",
                MixedModelWarning,
            )
        return cls(
            names=result.design.fixed_index,
            beta=result._beta,
            beta_covariance=result._beta_covariance,
            varpar_covariance=np.asarray(derivatives.covariance),
            jacobian=jacobian,
            hessian_eigenvalues=eigenvalues,
            sigma=result.sigma,
        )

    @functools.cached_property
    def coefficient_tests(self) -> dict[str, np.ndarray]:
        """The t-test of every coefficient (``t_tests`` of the identity), computed once."""
        return self.t_tests(np.eye(self.beta.size))

    def degrees_of_freedom(self, contrasts: npt.ArrayLike) -> np.ndarray:
        """Satterthwaite's degrees of freedom of each row of ``contrasts`` (q × p, columns in
        ``params`` order) as a 1-df t-test."""
        rows = np.atleast_2d(np.asarray(contrasts, dtype=float))
        variance = np.einsum("ip,pq,iq->i", rows, self.beta_covariance, rows)
        gradient = np.einsum("ip,kpq,iq->ik", rows, self.jacobian, rows)
        denominator = np.einsum("ik,kl,il->i", gradient, self.varpar_covariance, gradient)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(2 * variance**2 / denominator)

    def t_tests(self, contrasts: npt.ArrayLike) -> dict[str, np.ndarray]:
        """Each row of ``contrasts`` as a t-test (lmerTest's ``contest1D``): ``estimate``,
        ``std_error``, ``df``, ``statistic``, ``p_value``."""
        rows = np.atleast_2d(np.asarray(contrasts, dtype=float))
        return t_test_columns(rows, self.beta, self.beta_covariance, self.degrees_of_freedom(rows))

    def f_test(self, contrasts: npt.ArrayLike, eps: float = float(np.sqrt(np.finfo(float).eps))) -> dict[str, float]:
        """The joint F-test of the rows of ``contrasts`` (lmerTest's ``contestMD``): Cov(Lβ̂) =
        P D Pᵀ gives q = rank independent 1-df tests of the rows of PᵀL; F is the mean of their
        t², its denominator df come from ν₁..ν_q by matching E[F] (``den_df_of_f_statistic``).
        Returns ``sum_sq``, ``mean_sq``, ``num_df``, ``den_df``, ``F``, ``p_value``."""
        rows = np.atleast_2d(np.asarray(contrasts, dtype=float))
        if rows.shape[0] == 1:
            test = self.t_tests(rows)
            return self._f_table(float(test["statistic"][0] ** 2), 1, float(test["df"][0]))
        values, rotated = independent_contrasts(rows, self.beta_covariance, eps)
        t_squared = (rotated @ self.beta) ** 2 / values
        nu = self.degrees_of_freedom(rotated)
        return self._f_table(float(t_squared.mean()), len(values), den_df_of_f_statistic(nu))

    def _f_table(self, f_value: float, num_df: int, den_df: float) -> dict[str, float]:
        mean_sq = f_value * self.sigma**2
        return {
            "sum_sq": mean_sq * num_df,
            "mean_sq": mean_sq,
            "num_df": float(num_df),
            "den_df": den_df,
            "F": f_value,
            "p_value": float(special.fdtrc(num_df, den_df, f_value)),
        }


def independent_contrasts(rows: np.ndarray, covariance: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues of Cov(Lβ̂) = L V Lᵀ above ``eps`` × the largest, decreasing (as R's
    ``eigen``), and the rows PᵀL of their eigenvectors: independent contrasts spanning the
    hypothesis Lβ = 0 (lmerTest's ``contestMD``), uncorrelated with those variances.

    >>> values, rotated = independent_contrasts(np.array([[1.0, 0.0], [2.0, 0.0]]), np.eye(2), 1e-8)
    >>> values.round(6).tolist(), rotated.shape
    ([5.0], (1, 2))
    """
    values, vectors = np.linalg.eigh(rows @ covariance @ rows.T)
    values, vectors = values[::-1], vectors[:, ::-1]
    keep = values > max(eps * values[0], 0.0)
    return values[keep], vectors[:, keep].T @ rows


def t_test_columns(rows: np.ndarray, beta: np.ndarray, covariance: np.ndarray, df: np.ndarray) -> dict[str, np.ndarray]:
    """t-tests of Lβ = 0 for the rows L of ``rows``: ``estimate`` Lβ̂, ``std_error`` √(L V Lᵀ)
    with V = ``covariance``, ``df``, ``statistic`` and the two-sided ``p_value``.

    >>> t_test_columns(np.eye(1), np.array([2.0]), np.array([[1.0]]), np.array([np.inf]))["p_value"].round(4)
    array([0.0455])
    """
    estimate = rows @ beta
    std_error = np.sqrt(np.einsum("ip,pq,iq->i", rows, covariance, rows))
    statistic = estimate / std_error
    return {
        "estimate": estimate,
        "std_error": std_error,
        "df": df,
        "statistic": statistic,
        "p_value": 2 * special.stdtr(df, -np.abs(statistic)),
    }


def den_df_of_f_statistic(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of F = mean of q independent t² with ν₁..ν_q df (lmerTest's
    ``get_Fstat_ddf``): E = Σ νₘ/(νₘ − 2) and 2E/(E − q); 2 if any νₘ ≤ 2; the mean of the νₘ
    when they (nearly) agree.

    >>> round(den_df_of_f_statistic(np.array([10.0, 20.0])), 4)
    13.0769
    """
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    expectation = float(np.sum(nu / (nu - 2)))
    return 2 * expectation / (expectation - nu.size)
