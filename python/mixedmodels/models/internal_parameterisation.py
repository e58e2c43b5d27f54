"""The centred and scaled parameterisation a fit is optimised in, and the exact map of its
estimates back to the user's columns.

Shifting a covariate that has a random slope does not change the model (the intercepts absorb
the shift), but it makes θ badly conditioned: with ``Days + 2000`` the intercept-slope correlation
is near −1 and lme4's optimiser stops far from the optimum (log-lik −893.2 against −871.8). So the
optimiser works on centred and scaled columns: in each random-effects term with an intercept
column every other non-constant column z is replaced by (z − mean)/sd, in a term without one by
z / rms; the fixed-effects columns the same way (centred when X has an intercept). The model is
the same — z' = z T and X' = X B with T, B invertible — so b = T b', Cov(b) = T Cov(b') Tᵀ,
β = B β' and Cov(β̂) = B Cov(β̂') Bᵀ map the estimates back exactly, and the optimum does not
depend on where or on what scale a covariate is measured. Every k×k term is unstructured (lme4's
``||`` splits into scalar terms, where only scaling is used), so any invertible T is allowed.

Example
-------
>>> import mixedmodels as mm
>>> model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> internal = InternalParameterisation.of(model.design)
>>> internal.is_identity, internal.term_transforms[0].round(3).tolist()
(False, [[1.0, -1.567], [0.0, 0.348]])
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .. import _core
from ..formula.design import Design


@dataclass(frozen=True)
class ColumnTransform:
    """z' = z T for the columns of one model matrix (n × k), with T⁻¹ kept exactly."""

    forward: np.ndarray
    inverse: np.ndarray
    is_identity: bool

    @classmethod
    def of(cls, columns: np.ndarray) -> ColumnTransform:
        """Centre (about the intercept column, when there is one) and scale every non-constant
        column of ``columns``.

        >>> ColumnTransform.of(np.array([[1.0, 10.0], [1.0, 14.0]])).forward.tolist()
        [[1.0, -6.0], [0.0, 0.5]]
        """
        # In the core (one pass, no numpy per-call overhead), with numpy's pairwise sums.
        forward, inverse, is_identity = _core.column_transform(_contiguous(columns))
        return cls(forward, inverse, is_identity)


@dataclass(frozen=True)
class InternalParameterisation:
    """The transforms of every random-effects term's columns and of the fixed-effects columns
    (see the module's docstring), and the maps of θ, β, b and their covariances between the
    internal parameterisation and the user's."""

    terms: tuple[ColumnTransform, ...]
    fixed: ColumnTransform
    is_identity: bool

    @classmethod
    def of(cls, design: Design) -> InternalParameterisation:
        """The internal parameterisation of a design."""
        terms, fixed = tuple(ColumnTransform.of(term.z) for term in design.terms), ColumnTransform.of(design.x)
        return cls(terms, fixed, fixed.is_identity and all(term.is_identity for term in terms))

    @property
    def term_transforms(self) -> list[np.ndarray]:
        """T of each term (z' = z T)."""
        return [term.forward for term in self.terms]

    @functools.cached_property
    def reml_criterion_shift(self) -> float:
        """The internal REML criterion less the user's: 2 log|det B| (log|R_X|² of X' = X B)."""
        return float(2 * np.linalg.slogdet(self.fixed.forward)[1])

    def design(self, design: Design) -> Design:
        """The design in internal columns (what the fitting core is built from)."""
        x = np.asfortranarray(design.x @ self.fixed.forward)
        terms = [replace(term, z=np.ascontiguousarray(term.z @ transform.forward)) for term, transform in zip(design.terms, self.terms)]
        return replace(design, x=x, terms=terms)

    # ----- θ: per term, Λ Λᵀ = T Λ' Λ'ᵀ Tᵀ, Λ lower triangular with a non-negative diagonal -----
    def theta_to_user(self, theta: Sequence[float] | np.ndarray) -> np.ndarray:
        """User θ of internal θ'."""
        return self._map_theta(theta, forward=True)

    def theta_to_internal(self, theta: Sequence[float] | np.ndarray) -> np.ndarray:
        """Internal θ' of user θ."""
        return self._map_theta(theta, forward=False)

    def _map_theta(self, theta: Sequence[float] | np.ndarray, forward: bool) -> np.ndarray:
        # θ may be one vector or a stack of them (e.g. bootstrap replicates × θ).
        values = np.asarray(theta, dtype=float)
        sizes, transforms = self._theta_transforms
        matrices = transforms[0] if forward else transforms[1]
        mapped = _core.map_theta(np.ascontiguousarray(values.reshape(-1, values.shape[-1])), sizes, matrices)
        return mapped.reshape(values.shape)

    @functools.cached_property
    def _theta_transforms(self) -> tuple[list[int], tuple[list[np.ndarray | None], list[np.ndarray | None]]]:
        """Each term's k, and its T and T⁻¹ for the core's θ map (None: the term is left as it is)."""
        sizes = [len(term.forward) for term in self.terms]
        forward = [None if term.is_identity else np.ascontiguousarray(term.forward) for term in self.terms]
        inverse = [None if term.is_identity else np.ascontiguousarray(term.inverse) for term in self.terms]
        return sizes, (forward, inverse)

    # ----- β, b and covariances ------------------------------------------------------------------
    def beta_to_user(self, beta: np.ndarray) -> np.ndarray:
        """β = B β' (for one β or a stack of them, β last)."""
        return np.asarray(beta, dtype=float) @ self.fixed.forward.T

    def beta_to_internal(self, beta: Sequence[float] | np.ndarray) -> np.ndarray:
        """β' = B⁻¹ β."""
        return self.fixed.inverse @ np.asarray(beta, dtype=float)

    def fixed_covariance_to_user(self, covariance: np.ndarray) -> np.ndarray:
        """Cov(β̂) = B Cov(β̂') Bᵀ."""
        return self.fixed.forward @ np.asarray(covariance, dtype=float) @ self.fixed.forward.T

    def fixed_derivatives_to_user(self, derivatives: np.ndarray) -> np.ndarray:
        """Derivatives of Cov(β̂') (m × p × p, one matrix per variance parameter; or a stack of
        them, e.g. genes × m × p × p) as those of Cov(β̂) = B Cov(β̂') Bᵀ."""
        return np.einsum("pa,...mab,qb->...mpq", self.fixed.forward, np.asarray(derivatives, dtype=float), self.fixed.forward)

    def fixed_information_to_user(self, information: np.ndarray) -> np.ndarray:
        """Matrices in the space of X'ᵀV⁻¹X' (m × p × p) as those of XᵀV⁻¹X = B⁻ᵀ (X'ᵀV⁻¹X') B⁻¹."""
        return np.einsum("ap,mab,bq->mpq", self.fixed.inverse, np.asarray(information, dtype=float), self.fixed.inverse)

    def conditional_covariances_to_user(self, covariances: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each term's conditional covariances (levels × k × k): Cov(b) = T Cov(b') Tᵀ per level."""
        return [term.forward @ np.asarray(c) @ term.forward.T for c, term in zip(covariances, self.terms)]

    def random_effects_to_user(self, random_effects: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each term's conditional modes (levels × k): b = T b' per level."""
        return [np.asarray(b) @ term.forward.T for b, term in zip(random_effects, self.terms)]


def _contiguous(columns: np.ndarray) -> np.ndarray:
    """``columns`` as a C- or Fortran-contiguous float64 array (a copy only when neither)."""
    if columns.dtype == np.float64 and (columns.flags.c_contiguous or columns.flags.f_contiguous):
        return columns
    return np.ascontiguousarray(columns, dtype=float)


class UserCoordinatesFit:
    """A core fit object (``LinearFit`` or ``GeneralizedFit``) made in the internal
    parameterisation, read in the user's: θ, β, their covariances, the conditional modes and the
    optimiser's start, and a linear model's log|R_X|² and REML criterion (``reml``), which depend
    on the fixed-effects columns' scale; everything else (the likelihood, fitted values, σ, ...)
    is the same in both.
    The optimiser's derivatives stay those of the internal parameters it worked in."""

    def __init__(self, fit: Any, internal: InternalParameterisation, reml: bool = False) -> None:
        self._fit = fit
        # isinstance, not hasattr: a missing attribute of a compiled object raises and is slow.
        fixed = internal.fixed_covariance_to_user
        if isinstance(fit, _core.LinearFit):
            # log|R_X|² of X' = X B is log|R_X|² + 2 log|det B|: the REML criterion carries it.
            shift = internal.reml_criterion_shift
            self.log_det_fixed = fit.log_det_fixed - shift
            self.objective = fit.objective - shift if reml else fit.objective
            self.beta_covariance = fixed(fit.beta_covariance)
        else:
            self.beta_covariance_factor = fixed(fit.beta_covariance_factor)
            hessian = fit.beta_covariance_hessian
            self.beta_covariance_hessian = None if hessian is None else fixed(hessian)
        # θ̂ and the optimiser's start in one map.
        optimization = fit.optimization
        start = np.asarray(optimization.theta_start, dtype=float)
        internal_theta = np.asarray(fit.theta)
        n_theta = len(internal_theta)
        theta, theta_start = internal.theta_to_user(np.stack([internal_theta, start[:n_theta]]))
        self.theta = theta
        self.beta = internal.beta_to_user(fit.beta)
        self.ranef = internal.random_effects_to_user(fit.ranef)
        if len(start) > n_theta:
            theta_start = np.concatenate([theta_start, internal.beta_to_user(start[n_theta:])])
        self.optimization = _UserCoordinatesOptimization(optimization, theta_start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fit, name)


class _UserCoordinatesOptimization:
    """The optimiser's summary with its start in user coordinates (θ, then β for a GLMM's stage two)."""

    def __init__(self, optimization: Any, theta_start: np.ndarray) -> None:
        self._optimization = optimization
        self.theta_start = theta_start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._optimization, name)
