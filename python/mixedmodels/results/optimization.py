"""What the optimiser did in a fit: lme4's ``optinfo``, MixedModels.jl's ``OptSummary``, and
lme4's post-fit convergence check (``checkConv``, R/checkConv.R of lme4 1.1-31).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> m.optimization.converged, len(m.optimization.theta)
(True, 3)
>>> m.optimization.convergence_check.messages
()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _core
from ..errors import ConvergenceWarning, warn

# lme4's isSingular tolerance on θ components with a lower bound of zero (also checkConv's
# check.conv.singular tolerance).
SINGULAR_TOLERANCE = 1e-4
# lmerControl/glmerControl's check.conv.grad tolerance on max|grad|.
GRADIENT_TOLERANCE = 2e-3
# check.conv.hess's tolerance on the Hessian's eigenvalues.
HESSIAN_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class ConvergenceCheck:
    """lme4's check of a fit's optimum (``checkConv``) from the central-difference gradient g and
    Hessian H of the objective there (lme4's ``optinfo$derivs``): in θ for a linear model, in
    (θ, β) for a generalized one fitted with nAGQ ≥ 1.

    A singular fit is not checked further (``singular``), as in lme4. Otherwise the scaled
    gradient is R⁻¹g with H = RᵀR (``solve(chol(H), g)``), ``max_gradient`` the largest of
    min(|R⁻¹g|ᵢ, |gᵢ|), and lme4's messages say when it exceeds 0.002 or when H has negative,
    zero, very large (> 10⁶) eigenvalues or an eigenvalue ratio below 10⁻⁶. ``warnings`` are the
    warnings lme4 issues for them (the Hessian's messages joined by ``;``, as lme4 joins them);
    a gradient with NaN only gives a message, as in lme4.

    >>> import mixedmodels as mm
    >>> d = mm.datasets.load("sleepstudy")
    >>> check = mm.lmer("Reaction ~ Days + (Days | Subject)", d).optimization.convergence_check
    >>> check.max_gradient < 0.002, check.hessian.shape
    (True, (3, 3))
    """

    gradient: np.ndarray
    hessian: np.ndarray
    singular: bool
    scaled_gradient: np.ndarray | None
    max_gradient: float | None
    max_gradient_component: int | None
    hessian_eigenvalues: np.ndarray | None
    messages: tuple[str, ...]
    warnings: tuple[str, ...]

    def __str__(self) -> str:
        if self.singular:
            return "convergence check skipped: singular fit"
        lines = []
        if self.max_gradient is not None:
            lines.append(f"max|grad| = {self.max_gradient:.3g} (tol = {GRADIENT_TOLERANCE:g}, component {self.max_gradient_component})")
        if self.hessian_eigenvalues is not None:
            eigenvalues = ", ".join(f"{value:.4g}" for value in self.hessian_eigenvalues)
            lines.append(f"Hessian eigenvalues: {eigenvalues}")
        lines.extend(self.messages)
        return "\n".join(lines)

    def warn(self) -> None:
        """Issue lme4's warnings as :class:`~mixedmodels.errors.ConvergenceWarning`."""
        for message in self.warnings:
            warn(message, ConvergenceWarning)


def check_convergence(gradient: np.ndarray, hessian: np.ndarray, parameters: np.ndarray, theta_lower: np.ndarray) -> ConvergenceCheck:
    """lme4's ``checkConv`` with its default controls on the derivatives of the objective at
    ``parameters`` (θ, then β for a GLMM); ``theta_lower``: θ's lower bounds (0 on λ's diagonal).

    lme4 would also check the fixed-effect block of H when the parameters outnumber its bounds,
    but ``glmer`` passes bounds for all of (θ, β), so that check never runs; neither does it here.
    The component lme4 1.1-31 names is always 1 (it takes ``which.max`` of the maximum itself);
    here it is the component (1-based) where the maximum is.

    >>> import numpy as np
    >>> hessian = np.array([[1.0, 0.0], [0.0, 2e6]])
    >>> check = check_convergence(np.array([0.01, 0.3]), hessian, np.array([1.0, 0.5]), np.array([0.0, 0.0]))
    >>> check.messages[0]
    'Model failed to converge with max|grad| = 0.01 (tol = 0.002, component 1)'
    >>> [message.splitlines()[0] for message in check.messages[1:]]
    ['Model is nearly unidentifiable: very large eigenvalue', 'Model is nearly unidentifiable: large eigenvalue ratio']
    >>> len(check.warnings)
    2
    """
    gradient = np.asarray(gradient, dtype=float)
    hessian = np.asarray(hessian, dtype=float)
    theta_lower = np.asarray(theta_lower, dtype=float)
    bounded = np.asarray(parameters, dtype=float)[: len(theta_lower)][theta_lower == 0]
    if np.any(bounded < SINGULAR_TOLERANCE):
        return ConvergenceCheck(gradient, hessian, True, None, None, None, None, (), ())
    if np.any(np.isnan(gradient)):
        return ConvergenceCheck(gradient, hessian, False, None, None, None, None, ("Gradient contains NAs",), ())
    messages: list[str] = []
    warnings: list[str] = []
    # One Cholesky factor serves the scaled gradient and checkHess's positive-definiteness test.
    lower = _cholesky(hessian)
    scaled = _scaled_gradient(gradient, lower)
    max_gradient: float | None = None
    component: int | None = None
    if scaled is None:
        messages.append("unable to evaluate scaled gradient")
    else:
        smaller = np.minimum(np.abs(scaled), np.abs(gradient))
        component = int(np.argmax(smaller)) + 1
        max_gradient = float(smaller[component - 1])
        if max_gradient > GRADIENT_TOLERANCE:
            messages.append(f"Model failed to converge with max|grad| = {max_gradient:g} (tol = {GRADIENT_TOLERANCE:g}, component {component})")
    warnings.extend(messages)
    eigenvalues, hessian_messages = _hessian_messages(hessian, positive_definite=lower is not None)
    if hessian_messages:
        messages.extend(hessian_messages)
        warnings.append(";".join(hessian_messages))
    return ConvergenceCheck(gradient, hessian, False, scaled, max_gradient, component, eigenvalues, tuple(messages), tuple(warnings))


def _cholesky(hessian: np.ndarray) -> np.ndarray | None:
    """The lower Cholesky factor of H, or None where H is not positive definite (R's ``chol`` fails)."""
    try:
        return np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return None


def _scaled_gradient(gradient: np.ndarray, lower: np.ndarray | None) -> np.ndarray | None:
    """R⁻¹g with H = RᵀR, R = ``lower``ᵀ (lme4's ``solve(chol(H), g)``), or None where that fails
    (``lower`` None: H is not positive definite)."""
    if lower is None:
        return None
    scaled = np.linalg.solve(lower.T, gradient)
    return None if np.any(np.isnan(scaled)) else scaled


def _hessian_messages(hessian: np.ndarray, positive_definite: bool) -> tuple[np.ndarray | None, list[str]]:
    """H's eigenvalues (decreasing, as R's ``eigen``) and lme4's ``checkHess`` messages;
    ``positive_definite``: whether H has a Cholesky factor."""
    if not np.all(np.isfinite(hessian)):
        return None, ["Problem with Hessian check (infinite or missing values?)"]
    eigenvalues = np.linalg.eigvalsh(hessian)[::-1]
    negative = int(np.sum(eigenvalues < -HESSIAN_TOLERANCE))
    if negative:
        return eigenvalues, [f"Model failed to converge: degenerate  Hessian with {negative} negative eigenvalues"]
    if np.any(np.abs(eigenvalues) < HESSIAN_TOLERANCE) or not positive_definite:
        return eigenvalues, ["Hessian is numerically singular: parameters are not uniquely determined"]
    messages = []
    if eigenvalues[0] * HESSIAN_TOLERANCE > 1:
        messages.append("Model is nearly unidentifiable: very large eigenvalue\n - Rescale variables?")
    if eigenvalues[-1] / eigenvalues[0] < HESSIAN_TOLERANCE:
        messages.append("Model is nearly unidentifiable: large eigenvalue ratio\n - Rescale variables?")
    return eigenvalues, messages


@dataclass(frozen=True)
class OptimizationSummary:
    """The start and end of the optimisation, its objective, how many evaluations it took, why it
    stopped, and lme4's convergence check at the optimum (``convergence_check``; None when the
    derivatives were not computed: for nAGQ = 0, as lme4, or when the fit was asked not to).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> m.optimization.theta_start
    (1.0,)
    """

    theta_start: tuple[float, ...]
    theta: tuple[float, ...]
    objective: float
    n_evaluations: int
    status: str
    converged: bool
    n_set_to_boundary: int
    max_evaluations: int
    convergence_check: ConvergenceCheck | None = None

    @classmethod
    def from_core(
        cls, fit: _core.LinearFit | _core.GeneralizedFit, max_evaluations: int, theta_lower: np.ndarray | None = None
    ) -> OptimizationSummary:
        """The summary of a core fit object (``mixedmodels._core.LinearFit`` or ``GeneralizedFit``),
        with lme4's convergence check where the fit has derivatives and ``theta_lower`` is given."""
        optimization = fit.optimization
        derivatives = optimization.derivatives
        check = None
        if derivatives is not None and theta_lower is not None:
            parameters = np.asarray(fit.theta, dtype=float)
            if len(derivatives.gradient) > len(parameters):
                parameters = np.concatenate([parameters, np.asarray(fit.beta, dtype=float)])
            check = check_convergence(np.asarray(derivatives.gradient), np.asarray(derivatives.hessian), parameters, theta_lower)
        return cls(
            theta_start=tuple(np.asarray(optimization.theta_start, dtype=float).tolist()),
            theta=tuple(np.asarray(fit.theta, dtype=float).tolist()),
            objective=float(fit.objective),
            n_evaluations=int(optimization.n_evaluations),
            status=str(optimization.status),
            converged=bool(optimization.converged),
            n_set_to_boundary=int(optimization.n_set_to_boundary),
            max_evaluations=max_evaluations,
            convergence_check=check,
        )
