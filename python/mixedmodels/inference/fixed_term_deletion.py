"""Likelihood-ratio tests of single fixed-effect term deletions: lme4's
``drop1(m, test = "Chisq")``.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(float(m.drop1().table.loc["Days", "LRT"]), 3)
23.537
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from ..families import NegativeBinomial
from ..models.generalized import GeneralizedLinearMixedModel
from ..models.linear import LinearMixedModel
from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult
from ..results.linear import LmerResult
from .reduced_models import TestTable, as_written, chi_square_p_values, droppable_terms, patsy_terms, rhs_text, term_label, with_fixed_part, written_names


@dataclass(frozen=True, repr=False)
class FixedTermDeletion(TestTable):
    """lme4's ``drop1(m, test = "Chisq")``: the row ``<none>`` is the maximum-likelihood fit of
    the model, every other row the model without one fixed-effect term that no other term
    contains (R's term labels, e.g. ``recipe:temperature``). Columns: ``npar`` (degrees of
    freedom of the dropped term), ``AIC`` of the ML fit, ``LRT`` (2 Δ log L) and ``p_value``
    (χ² on ``npar`` degrees of freedom).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> m.drop1().table.index.tolist()
    ['<none>', 'Days']
    """


def drop1(result: MixedModelResult) -> FixedTermDeletion:
    """Drop each fixed-effect term that can be dropped respecting marginality, refit, and test
    the deletion by a likelihood-ratio χ² test (lme4's ``drop1(m, test = "Chisq")``). REML fits
    are refitted by maximum likelihood first, as lme4's ``extractAIC`` does.

    >>> import mixedmodels as mm
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial")
    >>> round(float(g.drop1().table.loc["period", "AIC"]), 2)
    213.66
    """
    if not isinstance(result, (LmerResult, GlmerResult)):
        raise SpecificationError(f"drop1 needs a fitted mixed model, not a {type(result).__name__}")
    if isinstance(result, GlmerResult) and isinstance(result.family, NegativeBinomial):
        raise SpecificationError("drop1 of a negative binomial fit would need the size re-estimated for every reduced model, which is not supported")
    full = result.model.fit(REML=False) if isinstance(result, LmerResult) and result.reml else result
    design = full.design
    terms = patsy_terms(design.parsed.fixed)
    droppable = droppable_terms(terms)
    names = written_names(full.model)
    labels = ["<none>"]
    npar = [np.nan]
    loglik = [full.llf]
    parameters = [full.df_modelwc]
    for term in droppable:
        reduced = _fit_ml(with_fixed_part(full.model, rhs_text([other for other in terms if other is not term])))
        labels.append(as_written(term_label(term), names))
        npar.append(full.df_modelwc - reduced.df_modelwc)
        loglik.append(reduced.llf)
        parameters.append(reduced.df_modelwc)
    log_likelihoods = np.array(loglik)
    lrt = np.concatenate([[np.nan], 2 * (log_likelihoods[0] - log_likelihoods[1:])])
    df = np.array(npar, dtype=float)
    table = pd.DataFrame(
        {
            "npar": df,
            "AIC": -2 * log_likelihoods + 2 * np.array(parameters),
            "LRT": lrt,
            "p_value": chi_square_p_values(lrt, df),
        },
        index=pd.Index(labels, name="term"),
    )
    return FixedTermDeletion(table=table)


def _fit_ml(model: LinearMixedModel | GeneralizedLinearMixedModel) -> LmerResult | GlmerResult:
    return model.fit(REML=False) if isinstance(model, LinearMixedModel) else model.fit()

