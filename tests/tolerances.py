"""The tolerance policy of tests/TOLERANCES.md as named values, and the comparisons that use them.

Every comparison with an lme4 (R) reference goes through ``assert_close`` or ``assert_loglik``
with one of the tolerances named here, so the policy lives in one place and a failure says what
was compared, by how much it missed and what was allowed. Expected values are always R's.
Import from tests as ``from tolerances import LMM, assert_close``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """An allowed difference: ``relative`` times a scale (by default |expected|), or ``absolute``,
    whichever is larger."""

    relative: float = 0.0
    absolute: float = 0.0

    def allowed(self, expected: Any, scale: Any = None) -> np.ndarray:
        """The largest difference allowed from each expected value."""
        magnitude = np.abs(np.asarray(expected, dtype=float)) if scale is None else np.asarray(scale, dtype=float)
        return np.maximum(self.relative * magnitude, self.absolute)

    def or_absolute(self, absolute: float) -> Tolerance:
        """The same tolerance with an absolute floor, for expected values that may be (near) zero."""
        return dataclasses.replace(self, absolute=absolute)

    def times(self, factor: float) -> Tolerance:
        return Tolerance(self.relative * factor, self.absolute * factor)

    def __str__(self) -> str:
        parts = [f"{self.relative:g} relative"] if self.relative else []
        parts += [f"{self.absolute:g} absolute"] if self.absolute else []
        return " or ".join(parts) or "exact"


@dataclass(frozen=True)
class ModelTolerances:
    """The tolerances for one kind of model (see TOLERANCES.md for what each is relative to)."""

    # The policy's five numbers.
    fixed_effects: Tolerance
    standard_errors: Tolerance
    variances: Tolerance
    correlations: Tolerance
    log_likelihood: Tolerance
    # The tests' own tolerances for quantities the policy does not name.
    theta: Tolerance
    conditional_modes: Tolerance
    fitted: Tolerance
    deviance: Tolerance

    @property
    def criteria(self) -> Tolerance:
        """AIC, BIC and the REML criterion: -2 log-likelihood plus constants."""
        return self.log_likelihood.times(2)

    @property
    def fixed_effect_covariances(self) -> Tolerance:
        """vcov entries, relative to the product of the two standard errors."""
        return self.standard_errors.times(2)


LMM = ModelTolerances(
    fixed_effects=Tolerance(relative=1e-4),
    standard_errors=Tolerance(relative=1e-3),
    variances=Tolerance(relative=2e-3),
    correlations=Tolerance(absolute=2e-3),
    log_likelihood=Tolerance(absolute=1e-3),
    theta=Tolerance(relative=2e-3),
    conditional_modes=Tolerance(relative=2e-3),
    fitted=Tolerance(relative=1e-3),  # relative to lme4's sigma
    deviance=Tolerance(absolute=2e-3),  # lme4's deviance() of an LMM is -2 log-likelihood or the REML criterion
)

GLMM = ModelTolerances(
    fixed_effects=Tolerance(relative=2e-3),
    standard_errors=Tolerance(relative=5e-3),
    variances=Tolerance(relative=5e-3),
    correlations=Tolerance(absolute=5e-3),
    log_likelihood=Tolerance(absolute=2e-3),
    theta=Tolerance(relative=5e-3),
    conditional_modes=Tolerance(relative=1e-2),
    fitted=Tolerance(relative=2e-3),
    deviance=Tolerance(relative=1e-3),  # lme4's deviance() of a GLMM is the sum of squared deviance residuals
)


def for_kind(kind: str) -> ModelTolerances:
    """The tolerances for a reference case's ``kind`` ("lmer" or "glmer")."""
    return {"lmer": LMM, "glmer": GLMM}[kind]


# Inference (lmerTest, anova, confint, performance).
DEGREES_OF_FREEDOM = Tolerance(relative=1e-3)
TEST_STATISTICS = Tolerance(relative=1e-4)  # t and F values, and the estimates and SEs of inference tables
P_VALUES = Tolerance(relative=1e-3, absolute=1e-12)
WALD_BOUNDS = Tolerance(relative=1e-4)
PROFILE_BOUNDS = Tolerance(relative=2e-3)  # relative to the interval's width: pass scale=upper - lower
ICC_AND_R2 = Tolerance(absolute=1e-3)
LRT_STATISTICS = Tolerance(absolute=1e-3)


# Central-difference derivatives (lme4's deriv12, step h = 1e-4) of the objective f, ours against
# lme4's at lme4's parameters: two implementations of f that agree to about 1e-12 relative
# (summation order) give gradients within 1e-12 |f| / h and Hessians within 1e-12 |f| / h² of each
# other; beyond that, 1e-5 relative (gradient) and 1e-3 relative (Hessian).
def derivative_tolerances(objective: float) -> tuple[Tolerance, Tolerance]:
    """The (gradient, Hessian) tolerances at an optimum where the objective is ``objective``."""
    rounding = 1e-12 * abs(objective)
    return Tolerance(relative=1e-5, absolute=rounding / 1e-4), Tolerance(relative=1e-3, absolute=rounding / 1e-8)


# Reference cases whose lme4 optimum is itself imprecise, with the factor their estimates'
# tolerances are loosened by. lme4 stopped short of the optimum on synth_gamma_log (its own
# convergence warning: max|grad| = 0.02; its alternative optimisers differ from each other by
# 1e-3 in the fixed effects), so the estimates are compared at the looser precision lme4's own
# optimum has; lme4's converged refit (the case's alt_optimizer_check) is matched at the usual
# tolerances.
IMPRECISE_REFERENCE = {"synth_gamma_log": 10.0}


def loosened(case_id: str, tolerance: Tolerance) -> Tolerance:
    """``tolerance``, loosened for a case in IMPRECISE_REFERENCE."""
    return tolerance.times(IMPRECISE_REFERENCE.get(case_id, 1.0))


def assert_close(actual: Any, expected: Any, tolerance: Tolerance, what: str, *, scale: Any = None) -> None:
    """Assert ``actual`` (ours) is within ``tolerance`` of ``expected`` (lme4's), elementwise for
    arrays; ``scale`` replaces |expected| as what the relative tolerance is relative to."""
    ours = np.asarray(actual, dtype=float)
    theirs = np.asarray(expected, dtype=float)
    if ours.shape != theirs.shape:
        raise AssertionError(f"{what}: shape {ours.shape}, expected {theirs.shape}")
    allowed = np.broadcast_to(tolerance.allowed(theirs, scale), theirs.shape)
    difference = np.abs(ours - theirs)
    outside = ~(difference <= allowed)  # NaN is outside
    if not outside.any():
        return
    excess = np.where(outside, np.nan_to_num(difference - allowed, nan=np.inf), -np.inf)
    worst = np.unravel_index(np.argmax(excess), theirs.shape)
    where = f"{[int(i) for i in worst]}" if theirs.ndim else ""
    relative_to = "" if scale is None else f", scale {float(np.broadcast_to(scale, theirs.shape)[worst]):.6g}"
    count = f"; {int(outside.sum())} of {theirs.size} values outside" if theirs.ndim else ""
    raise AssertionError(
        f"{what}{where}: {float(ours[worst])!r}, expected {float(theirs[worst])!r}: off by {float(difference[worst]):.3g}, "
        f"allowed {float(allowed[worst]):.3g} = {tolerance}{relative_to}{count}"
    )


def assert_loglik(ours: float, lme4: float, tolerance: Tolerance, what: str, *, better_optimum: str | None = None) -> None:
    """Assert our log-likelihood is within ``tolerance.absolute`` of lme4's. A higher one by any
    amount passes only with ``better_optimum``: the reason ours is a strictly better optimum."""
    gain = ours - lme4
    if gain < -tolerance.absolute:
        raise AssertionError(f"{what}: log-likelihood {ours!r} is {-gain:.3g} below lme4's {lme4!r} (allowed {tolerance})")
    if better_optimum is None and gain > tolerance.absolute:
        raise AssertionError(
            f"{what}: log-likelihood {ours!r} is {gain:.3g} above lme4's {lme4!r}, more than {tolerance}; "
            "a strictly better optimum passes only with the reason given as better_optimum"
        )
