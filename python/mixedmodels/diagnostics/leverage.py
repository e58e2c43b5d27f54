"""Hat values (leverages) of a mixed model: lme4's ``hatvalues(m)``.

The hat matrix H of the penalised least-squares fit maps the response to the fitted values
(random effects included): ŷ = Hy. Its diagonal is computed in the core through the Cholesky
factor L of the augmented system, never forming H: with vᵢ = √wᵢ [Λᵀzᵢ; xᵢ],
hᵢ = ‖L⁻¹vᵢ‖² (lme4's ``rePart`` + ``fePart``), in O(n) for nested designs and in parallel.

For a generalized model lme4 evaluates the same formula with L at the final PIRLS weights and the
prior weights (not the working weights) in vᵢ, and warns that the hat matrix may not make sense
for GLMMs; :func:`hatvalues` reproduces those numbers and warns with
:class:`~mixedmodels.errors.LeverageWarning`.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(float(hatvalues(m).sum()), 3)  # the effective number of parameters
29.022
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import _core
from ..errors import LeverageWarning, warn
from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult


def hatvalues(result: MixedModelResult) -> pd.Series:
    """The diagonal of the hat matrix, one value per fitted row (indexed by the rows' labels), as
    lme4's ``hatvalues(m)``; for a GLMM with a :class:`~mixedmodels.errors.LeverageWarning`.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> hatvalues(m).round(4).iloc[:2].tolist()
    [0.1638, 0.1638]
    """
    model = result.model
    if isinstance(result, GlmerResult):
        warn("the hat matrix may not make sense for GLMMs (lme4's formula with the prior weights)", LeverageWarning)
        values = _generalized_hat_values(result)
    else:
        theta, _ = model.fitting_parameters(result.theta, result._beta)
        values = np.asarray(model._fitting_core.hat_values(theta))
    return pd.Series(values, index=result.design.row_index, name="hat")


def _generalized_hat_values(result: GlmerResult) -> np.ndarray:
    """lme4's GLMM hat values: L with the working weights W = w μ'(η)² / V(μ) at the estimates,
    vᵢ with the prior weights w. hᵢ is wᵢ times a quadratic form in (LLᵀ)⁻¹, so the linear model's
    hat values with weights W, times w / W."""
    family = result._family()
    prior = np.asarray(result.prior_weights, dtype=float)
    working = prior * family.mu_eta(result.eta) ** 2 / family.variance(result.mu)
    design = result.design
    core = _core.LinearMixedModel(design.x, result.model._core_terms(design), np.ascontiguousarray(working), result.model.factorization)
    values = np.asarray(core.hat_values(np.asarray(result.theta, dtype=float).tolist()))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(working > 0, values * prior / working, 0.0)
