"""``lmer()``: fit a linear mixed model from an lme4 formula and a DataFrame.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
>>> round(float(m.params["Intercept"]), 4)
22.9722
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import _core
from .design import Design, NaAction, build_design, warn_if_rank_deficient
from .errors import ConvergenceWarning, DataError, SingularFitWarning
from .formula import parse_formula
from .results import LmerResult

Factorization = Literal["auto", "blocked", "sparse"]


def _core_terms(design: Design) -> list[tuple[np.ndarray, int, np.ndarray]]:
    return [(term.factor.codes, term.n_levels, term.z) for term in design.terms]


def fit_design(
    formula: str,
    design: Design,
    reml: bool,
    *,
    y: np.ndarray | pd.Series | None = None,
    weights: np.ndarray | pd.Series | None = None,
    model: Any = None,
    data_name: str | None = None,
    max_evaluations: int = 10_000,
    factorization: Factorization = "auto",
) -> LmerResult:
    """Fit a built design; ``y``/``weights`` replace the design's (refit), ``model`` reuses a
    core structure whose weights are the design's."""
    if y is not None:
        values = np.asarray(y, dtype=float)
        if values.shape != design.y.shape:
            raise DataError(f"the new response has shape {values.shape}, the model {design.y.shape}")
        if not np.all(np.isfinite(values)):
            raise DataError("the new response has missing or non-finite values")
        design = _replace(design, y=values)
    if weights is not None:
        values = np.asarray(weights, dtype=float)
        if values.shape != design.y.shape or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise DataError("new weights must be positive and finite, one per observation")
        design = _replace(design, weights=values, weights_argument=None)
        model = None
    if model is None:
        model = _core.LinearMixedModel(design.x, _core_terms(design), design.weights, factorization)
    response = design.y - design.offset if design.offset is not None else design.y
    raw = model.fit(np.ascontiguousarray(response, dtype=float), reml, max_evaluations=max_evaluations)
    result = LmerResult.from_core(formula, design, reml, raw, model, data_name, max_evaluations)
    if not result.converged:
        warnings.warn(
            f"the optimizer did not converge ({result.optimization.status}); estimates may be imprecise",
            ConvergenceWarning,
            stacklevel=3,
        )
    if result.is_singular:
        warnings.warn("boundary (singular) fit: see LmerResult.is_singular", SingularFitWarning, stacklevel=3)
    return result


def _replace(design: Design, **changes: Any) -> Design:
    from dataclasses import replace

    return replace(design, **changes)


def lmer(
    formula: str,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    weights: str | np.ndarray | pd.Series | None = None,
    offset: str | np.ndarray | pd.Series | None = None,
    na_action: NaAction = "omit",
    max_evaluations: int = 10_000,
    factorization: Factorization = "auto",
) -> LmerResult:
    """Fit a linear mixed model by REML (default) or maximum likelihood, as lme4's ``lmer``.

    Parameters
    ----------
    formula
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``: a fixed part in patsy's syntax
        (``C()``, ``I()``, ``np.log()``, interactions, ``0 +``) plus random-effects terms
        ``(expr | g)``, ``(expr || g)``, ``(1 | a/b)``, ``(1 | a:b)`` and ``offset(expr)``.
    data
        A pandas DataFrame; it is not modified.
    REML
        ``True`` for the REML criterion, ``False`` for maximum likelihood.
    weights, offset
        A column name or one value per row: prior (precision) weights and a known offset.
    na_action
        ``"omit"`` drops rows with missing or non-finite values in any variable the model uses
        (counted in ``n_dropped`` and the summary); ``"raise"`` raises a ``DataError``.
    max_evaluations
        Budget of objective evaluations for the optimiser (lme4's ``optCtrl = list(maxfun = ...)``);
        when it runs out, a ``ConvergenceWarning`` says so.
    factorization
        ``"auto"`` (default) uses the blocked Cholesky factorisation unless its dense fill-in
        blocks would be too large, then a sparse Cholesky with a fill-reducing ordering;
        ``"blocked"`` or ``"sparse"`` force one. ``result.factorization`` says which was used.

    Example
    -------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> round(m.REMLcrit, 3)
    1743.628
    """
    parsed = parse_formula(formula)
    design = build_design(parsed, data, weights=weights, offset=offset, na_action=na_action)
    warn_if_rank_deficient(design, stacklevel=2)
    data_name = data.attrs.get("name") if isinstance(data, pd.DataFrame) else None
    return fit_design(
        formula, design, REML, data_name=data_name, max_evaluations=max_evaluations, factorization=factorization
    )
