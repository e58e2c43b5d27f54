"""Likelihood-ratio comparison of nested models fitted to the same data: lme4's
``anova(m0, m1, ...)``.

Example
-------
>>> import mixedmodels as mm
>>> data = mm.datasets.load("sleepstudy")
>>> m0 = mm.lmer("Reaction ~ Days + (1 | Subject)", data, REML=False)
>>> m1 = mm.lmer("Reaction ~ Days + (Days | Subject)", data, REML=False)
>>> round(float(mm.anova(m0, m1).table["chisq"].iloc[1]), 3)
42.139
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, SpecificationError
from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult
from ..results.linear import LmerResult
from .reduced_models import TestTable, chi_square_p_values


@dataclass(frozen=True, repr=False)
class ModelComparison(TestTable):
    """lme4's ``anova(m0, m1, ...)``: one row per model in order of increasing number of
    parameters (``npar``), with ``AIC``, ``BIC``, ``loglik``, ``deviance`` (−2 log L) and the
    χ² test of each model against the row before it (``chisq``, ``df``, ``p_value``).
    ``refitted`` says whether REML fits were refitted by maximum likelihood first; ``models``
    are the fits compared (the ML refits where refitted), in the table's order.

    >>> import mixedmodels as mm
    >>> data = mm.datasets.load("sleepstudy")
    >>> comparison = mm.anova(mm.lmer("Reaction ~ Days + (Days | Subject)", data),
    ...                       mm.lmer("Reaction ~ 1 + (Days | Subject)", data))
    >>> comparison.refitted, comparison.table["npar"].tolist()
    (True, [5, 6])
    """

    refitted: bool
    models: tuple[MixedModelResult, ...]


def anova(*models: MixedModelResult, refit: bool = True) -> ModelComparison | Any:
    """Likelihood-ratio tests of nested models fitted to the same data (lme4's
    ``anova(m0, m1, ...)``). With ``refit=True`` (lme4's default) REML fits are refitted by
    maximum likelihood first, since REML likelihoods of models with different fixed effects
    are not comparable. Rows are labelled by the models' formulas. With a single model this
    is that model's own ``anova()`` table.

    >>> import mixedmodels as mm
    >>> cbpp = mm.datasets.load("cbpp")
    >>> g0 = mm.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp, family="binomial")
    >>> g1 = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    >>> round(float(mm.anova(g0, g1).table["p_value"].iloc[1]), 7)
    1.15e-05
    """
    for position, model in enumerate(models):
        if not isinstance(model, MixedModelResult):
            raise SpecificationError(f"anova compares fitted models; argument {position + 1} is a {type(model).__name__}")
    if len(models) == 1:
        single = getattr(models[0], "anova", None)
        if single is None:
            raise SpecificationError(f"{type(models[0]).__name__} has no single-model anova table; pass two or more models to compare")
        return single()
    if len(models) < 2:
        raise SpecificationError("anova needs at least two fitted models to compare")
    if not (all(isinstance(m, LmerResult) for m in models) or all(isinstance(m, GlmerResult) for m in models)):
        raise SpecificationError("anova cannot compare linear with generalized linear mixed models")
    _check_same_data(models)

    refitted = refit and any(isinstance(m, LmerResult) and m.reml for m in models)
    if refitted:
        models = tuple(m.model.fit(REML=False) if isinstance(m, LmerResult) and m.reml else m for m in models)
    order = sorted(range(len(models)), key=lambda i: models[i].df_modelwc)
    ordered = tuple(models[i] for i in order)

    npar = np.array([m.df_modelwc for m in ordered], dtype=float)
    loglik = np.array([m.llf for m in ordered])
    # lme4: 2 max(0, Δ log L) against the row before, with Δ npar degrees of freedom.
    chisq = np.concatenate([[np.nan], 2 * np.maximum(0.0, np.diff(loglik))])
    df = np.concatenate([[np.nan], np.diff(npar)])
    table = pd.DataFrame(
        {
            "npar": npar.astype(int),
            "AIC": [m.aic for m in ordered],
            "BIC": [m.bic for m in ordered],
            "loglik": loglik,
            "deviance": -2 * loglik,
            "chisq": chisq,
            "df": df,
            "p_value": chi_square_p_values(chisq, df),
        },
        index=pd.Index(_unique_labels([m.model.formula for m in ordered]), name="model"),
    )
    return ModelComparison(table=table, refitted=refitted, models=ordered)


def _check_same_data(models: tuple[MixedModelResult, ...]) -> None:
    """lme4 refuses models fitted to different numbers of observations; the same rows and
    response values are required here too, so that the likelihoods are of the same data."""
    first = models[0]
    for position, model in enumerate(models[1:], start=2):
        if model.nobs != first.nobs:
            raise DataError(f"models were not all fitted to the same number of observations: model 1 has {first.nobs}, model {position} {model.nobs}")
        if not model.design.row_index.equals(first.design.row_index):
            raise DataError(f"models 1 and {position} were fitted to different rows of the data")
        if not np.array_equal(model.design.y, first.design.y):
            raise DataError(f"models 1 and {position} were fitted to different responses")


def _unique_labels(labels: list[str]) -> list[str]:
    """The labels, a repeated one numbered from its second occurrence on."""
    seen: Counter[str] = Counter()
    unique = []
    for label in labels:
        seen[label] += 1
        unique.append(label if seen[label] == 1 else f"{label} [{seen[label]}]")
    return unique
