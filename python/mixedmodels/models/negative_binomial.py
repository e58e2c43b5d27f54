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

from typing import TYPE_CHECKING

from ..families import NegativeBinomial, Poisson
from ..results.generalized import GlmerResult

if TYPE_CHECKING:
    from .generalized import GeneralizedLinearMixedModel


def fit_negative_binomial(model: GeneralizedLinearMixedModel) -> GlmerResult:
    """lme4's ``glmer.nb``: a Poisson fit, the size's moment-ML start from its means (MASS's
    ``theta.ml``), then a bounded one-dimensional search of log θ within ±3 of the start (lme4's
    tolerance 5e-5), refitting the GLMM at every θ — all in the core, the search ``glmer_many``
    runs per gene. Warnings are the caller's to issue for the final fit.

    >>> import mixedmodels as mm
    >>> model = mm.GeneralizedLinearMixedModel.from_formula(
    ...     "TICKS ~ YEAR + (1 | BROOD)", mm.datasets.load("grouseticks"), family="negative_binomial")
    >>> round(fit_negative_binomial(model).family.theta, 1)
    3.3
    """
    link = model.family.link
    poisson = model.with_family(Poisson(link=link))
    size, fit = poisson._fitting_core.fit_negative_binomial(model.n_agq, max_evaluations=model.max_evaluations)
    fitted = model.with_family(NegativeBinomial(link=link, theta=size))
    return GlmerResult.from_core(fitted, poisson._user_coordinates(fit), model.max_evaluations)
