"""Likelihood-ratio tests of random-effect terms: lmerTest's ``ranova``.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(float(m.ranova().table.loc["Days in (Days | Subject)", "LRT"]), 3)
42.837
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from ..formula.parser import RandomTerm, parse_formula
from ..results.linear import LmerResult
from .reduced_models import (
    TestTable,
    as_written,
    chi_square_p_values,
    droppable_terms,
    linear_model_log_likelihood,
    patsy_terms,
    rhs_text,
    term_label,
    with_random_terms,
    written_names,
)


@dataclass(frozen=True, repr=False)
class RandomTermDeletion(TestTable):
    """lmerTest's ``ranova``: the row ``<none>`` is the model itself; every other row reduces one
    random-effect term. A term with slopes loses one of them in turn (``x in (1 + x | g)``; a
    term left with nothing keeps the intercept, ``(1 | g)``), a term ``(1 | g)`` is removed.
    Columns: ``npar``, ``loglik`` (the REML log-likelihood for REML fits), ``AIC``, ``LRT``
    (2 Δ log L), ``df`` and ``p_value``. ``formulas`` gives each reduced model.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
    >>> m.ranova().table.index.tolist()
    ['<none>', '(1 | plate)', '(1 | sample)']
    """

    formulas: dict[str, str]


def ranova(result: LmerResult) -> RandomTermDeletion:
    """Test every random-effect term of a linear mixed model by refitting the model with the
    term reduced or removed (lmerTest's ``ranova``); the refits use the fit's criterion, so the
    tests of a REML fit are REML likelihood-ratio tests. When no random-effect term is left the
    reduced model is the linear model, fitted by least squares (R's ``logLik(lm(...), REML =)``).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"), REML=False)
    >>> round(float(m.ranova().table["p_value"].iloc[1]), 4)
    0.0201
    """
    if not isinstance(result, LmerResult):
        raise SpecificationError(f"ranova tests the random effects of a linear mixed model fit, not a {type(result).__name__}")
    design = result.design
    random = design.parsed.random
    written = parse_formula(design.parsed.formula).random  # the same terms, names as the formula wrote them
    names = written_names(result.model)
    labels = ["<none>"]
    formulas: dict[str, str] = {}
    loglik = [result.llf]
    npar = [result.df_modelwc]
    for term, shown in zip(random, written):
        others = [other for other in random if other is not term]
        for label, reduced in _reductions(term, shown, others, names):
            if reduced:
                model = with_random_terms(result.model, reduced)
                fit = model.fit(REML=result.reml)
                formulas[label] = model.formula
                loglik.append(fit.llf)
                npar.append(fit.df_modelwc)
            else:
                value, parameters = linear_model_log_likelihood(design, REML=result.reml)
                formulas[label] = f"{design.parsed.response} ~ {design.parsed.fixed}"
                loglik.append(value)
                npar.append(parameters)
            labels.append(label)
    log_likelihoods = np.array(loglik)
    parameters_array = np.array(npar, dtype=float)
    lrt = np.concatenate([[np.nan], 2 * (log_likelihoods[0] - log_likelihoods[1:])])
    df = np.concatenate([[np.nan], parameters_array[0] - parameters_array[1:]])
    table = pd.DataFrame(
        {
            "npar": parameters_array.astype(int),
            "loglik": log_likelihoods,
            "AIC": -2 * log_likelihoods + 2 * parameters_array,
            "LRT": lrt,
            "df": df,
            "p_value": chi_square_p_values(lrt, df),
        },
        index=pd.Index(labels, name="term"),
    )
    return RandomTermDeletion(table=table, formulas=formulas)


def _reductions(term: RandomTerm, shown: RandomTerm, others: list[RandomTerm], names: dict[str, str]) -> list[tuple[str, list[RandomTerm]]]:
    """lmerTest's reductions of one term, each as (row label, the model's random terms): every
    slope that no other slope of the term contains is dropped in turn (the term keeps its
    intercept, or gets one when nothing else is left); a term without slopes is removed. A
    reduced term equal to another term of the model merges with it, as in an R formula."""
    written = f"({shown.expr} | {shown.group_name})"
    lhs = patsy_terms(term.expr)
    slopes = droppable_terms(lhs)
    if not slopes:
        return [(written, others)]
    existing = {_identity(other) for other in others}
    reductions = []
    for slope in slopes:
        remaining = [other for other in lhs if other is not slope]
        expr = rhs_text(remaining) if any(other.factors for other in remaining) else "1"
        reduced = RandomTerm(expr, term.group)
        terms = others if _identity(reduced) in existing else [*others, reduced]
        reductions.append((f"{as_written(term_label(slope), names)} in {written}", terms))
    return reductions


def _identity(term: RandomTerm) -> tuple[tuple[str, ...], frozenset[object]]:
    """What makes two random-effect terms the same: the grouping factor and the model terms."""
    return term.group, frozenset(patsy_terms(term.expr))
