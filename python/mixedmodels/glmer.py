"""``glmer()``: fit a generalized linear mixed model from an lme4 formula and a DataFrame.

Example
-------
>>> import mixedmodels as mm
>>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
...              mm.datasets.load("cbpp"), family="binomial")
>>> round(float(g.params["Intercept"]), 2)
-1.4
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from . import _core
from .design import Design, NaAction, build_design
from .errors import ConvergenceWarning, DataError, RankDeficiencyWarning, SingularFitWarning, SpecificationError
from .families import Binomial, Family, resolve
from .formula import parse_formula
from .results import GlmerResult, OptimizationSummary

Factorization = Literal["auto", "blocked", "sparse"]


def _response_and_weights(design: Design, family: Family) -> tuple[np.ndarray, np.ndarray]:
    """The core's response (proportions for the binomial) and prior weights (trials for the binomial)."""
    user_weights = design.weights if design.weights is not None else np.ones(design.nobs)
    if design.response_trials is not None:
        if not isinstance(family, Binomial):
            raise SpecificationError(f"cbind(successes, failures) responses need the binomial family, not {family.name}")
        successes, trials = design.y, design.response_trials
        failures = trials - successes
        for values, what in ((successes, "successes"), (failures, "failures")):
            bad = (values < 0) | (values != np.round(values))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"cbind(): {what} must be non-negative whole numbers; row {row + 1} has {values[row]}")
        if np.any(trials == 0):
            raise DataError(f"cbind(): {int(np.sum(trials == 0))} rows have no trials (successes + failures = 0)")
        return successes / trials, trials * user_weights
    return design.y, user_weights


def glmer(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "binomial",
    *,
    link: str | None = None,
    weights: str | np.ndarray | pd.Series | None = None,
    offset: str | np.ndarray | pd.Series | None = None,
    nAGQ: int = 1,
    na_action: NaAction = "omit",
    max_evaluations: int = 10_000,
    factorization: Factorization = "auto",
) -> GlmerResult:
    """Fit a generalized linear mixed model by maximum likelihood, as lme4's ``glmer``.

    Parameters
    ----------
    formula
        lme4 formula. The response may be 0/1, counts, a proportion with ``weights`` = trials,
        or ``cbind(successes, failures)``; ``offset(expr)`` terms are allowed.
    data
        A pandas DataFrame; it is not modified.
    family, link
        A family name (``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"inverse.gaussian"``,
        ``"gaussian"``, ``"negative_binomial"``) with an optional link, or a family object such
        as ``mm.families.Binomial(link="probit")``.
    weights, offset
        A column name or one value per row (prior weights: numbers of trials for proportions).
    nAGQ
        1 (default): Laplace approximation. 0: lme4's faster nAGQ = 0 (β estimated inside PIRLS,
        only θ optimised). 2–25: adaptive Gauss–Hermite quadrature, for one scalar random-effects
        term such as ``(1 | g)``.
    na_action, max_evaluations, factorization
        As for :func:`mixedmodels.lmer`.

    Example
    -------
    >>> import mixedmodels as mm
    >>> cbpp = mm.datasets.load("cbpp")
    >>> g = mm.glmer("incidence / size ~ period + (1 | herd)", cbpp, family="binomial", weights="size")
    >>> round(g.llf, 2)
    -92.03
    """
    fam = resolve(family, link)
    if not isinstance(nAGQ, (int, np.integer)) or not 0 <= nAGQ <= 25:
        raise SpecificationError(f"nAGQ must be a whole number from 0 to 25, not {nAGQ!r}")
    parsed = parse_formula(formula)
    # lme4 allows a level per observation in GLMMs (an observation-level random effect).
    design = build_design(parsed, data, weights=weights, offset=offset, na_action=na_action, check_levels=False)
    if design.dropped_fixed:
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(design.dropped_fixed)} "
            f"column(s): {', '.join(design.dropped_fixed)}",
            RankDeficiencyWarning,
            stacklevel=2,
        )
    y, prior_weights = _response_and_weights(design, fam)
    offset_values = design.offset if design.offset is not None else np.zeros(design.nobs)
    terms = [(term.factor.codes, term.n_levels, term.z) for term in design.terms]
    try:
        model = _core.GeneralizedLinearMixedModel(
            design.x,
            terms,
            np.ascontiguousarray(y, dtype=float),
            np.ascontiguousarray(prior_weights, dtype=float),
            np.ascontiguousarray(offset_values, dtype=float),
            fam.core_name,
            fam.link,
            fam.negative_binomial_theta,
            factorization,
        )
    except DataError as err:
        raise DataError(f"response {parsed.response!r}: {err}") from None
    raw = model.fit(int(nAGQ), max_evaluations=max_evaluations)
    hessian = raw["beta_covariance_hessian"]
    result = GlmerResult(
        formula=formula,
        design=design,
        data_name=data.attrs.get("name"),
        theta=np.asarray(raw["theta"]),
        params=pd.Series(raw["beta"], index=design.fixed_names, name="params"),
        _beta_covariance=np.asarray(hessian if hessian is not None else raw["beta_covariance_factor"]),
        _ranef=list(raw["ranef"]),
        optimization=OptimizationSummary.from_core(raw, max_evaluations),
        factorization="sparse" if model.is_sparse else "blocked",
        _model=model,
        family=fam,
        n_agq=int(nAGQ),
        dispersion=float(raw["dispersion"]),
        y=np.asarray(y, dtype=float),
        prior_weights=np.asarray(prior_weights, dtype=float),
        eta=np.asarray(raw["eta"]),
        mu=np.asarray(raw["mu"]),
        _objective=float(raw["objective"]),
        _minus_twice_log_likelihood=float(raw["minus_twice_log_likelihood"]),
        _sum_deviance_residuals=float(raw["sum_deviance_residuals"]),
        _beta_covariance_factor=np.asarray(raw["beta_covariance_factor"]),
        hessian_covariance=hessian is not None,
    )
    if not result.converged:
        warnings.warn(
            f"the optimizer did not converge ({result.optimization.status}); estimates may be imprecise",
            ConvergenceWarning,
            stacklevel=2,
        )
    if nAGQ > 0 and hessian is None and len(result.params) > 0:
        warnings.warn(
            "the Hessian of the objective is not positive definite; standard errors come from the factorisation at the modes",
            ConvergenceWarning,
            stacklevel=2,
        )
    if result.is_singular:
        warnings.warn("boundary (singular) fit: see GlmerResult.is_singular", SingularFitWarning, stacklevel=2)
    return result
