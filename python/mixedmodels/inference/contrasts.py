"""Tests of linear functions Lβ of the fixed effects (lmerTest's ``contest``): one contrast as a
t-test with a confidence interval, several jointly as an F-test, with Satterthwaite's or
asymptotic degrees of freedom.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(float(m.contest([0, 1])["df"].iloc[0]), 3)
17.0
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special

from ..errors import DataError
from ..results.linear import LmerResult
from .coefficient_table import small_sample_method
from .confidence_intervals import check_level
from .satterthwaite import independent_contrasts

T_COLUMNS = ["estimate", "std_error", "df", "statistic", "lower", "upper", "p_value"]
F_COLUMNS = ["sum_sq", "mean_sq", "num_df", "den_df", "F", "p_value"]


def contrast_matrix(result: LmerResult, contrasts: npt.ArrayLike | pd.DataFrame | pd.Series) -> np.ndarray:
    """``contrasts`` as a q × p float matrix in ``params``' column order: an array (a vector is
    one row) with p columns, or a DataFrame (Series) whose columns (index) name every fixed effect.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> contrast_matrix(m, pd.DataFrame({"Days": [1.0], "Intercept": [0.0]})).tolist()
    [[0.0, 1.0]]
    """
    names = result.design.fixed_index
    if isinstance(contrasts, pd.Series):
        contrasts = contrasts.to_frame().T
    if isinstance(contrasts, pd.DataFrame):
        unknown = [str(c) for c in contrasts.columns if c not in names]
        missing = [str(n) for n in names if n not in contrasts.columns]
        if unknown or missing:
            problems = ([f"unknown fixed effects {unknown}"] if unknown else []) + ([f"missing fixed effects {missing}"] if missing else [])
            raise DataError(f"the contrast's columns must name the fixed effects {list(names)}: {'; '.join(problems)}")
        contrasts = contrasts[list(names)]
    try:
        rows = np.atleast_2d(np.asarray(contrasts, dtype=float))
    except (TypeError, ValueError) as err:
        raise DataError(f"the contrast must be numeric: {err}") from None
    if rows.ndim != 2 or rows.shape[1] != names.size or rows.shape[0] == 0:
        raise DataError(f"the contrast must have {names.size} columns (one per fixed effect) and at least one row, not shape {rows.shape}")
    if not np.isfinite(rows).all():
        raise DataError("the contrast has non-finite values")
    return rows


def contest(
    result: LmerResult,
    contrasts: npt.ArrayLike | pd.DataFrame | pd.Series,
    ddf: str = "satterthwaite",
    level: float = 0.95,
    joint: bool | None = None,
) -> pd.DataFrame:
    """Test Lβ = 0. One row of L: a one-row t-test table (``estimate``, ``std_error``, ``df``,
    ``statistic``, ``lower``, ``upper`` (``level`` interval), ``p_value``); several rows, or
    ``joint=True``: the joint F-test (``sum_sq``, ``mean_sq``, ``num_df``, ``den_df``, ``F``,
    ``p_value``; lmerTest's ``contestMD``: num_df is L's rank). ``ddf``: ``"satterthwaite"``,
    ``"kenward-roger"`` (REML fits; the adjusted covariance of β̂, and F scaled as pbkrtest's
    ``KRmodcomp``) or ``"asymptotic"`` (z- and Wald χ²/q tests).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> contest(m, [[1, 0], [0, 1]]).round(2)[["num_df", "den_df"]].iloc[0].tolist()
    [2.0, 17.0]
    """
    derivatives = small_sample_method(result, ddf)
    check_level(level, DataError)
    rows = contrast_matrix(result, contrasts)
    if joint is None:
        joint = rows.shape[0] > 1
    elif not joint and rows.shape[0] > 1:
        raise DataError(f"joint=False tests one contrast, but L has {rows.shape[0]} rows")
    index = contrasts.index if isinstance(contrasts, pd.DataFrame) and not joint else None
    if not joint:
        if derivatives is not None:
            test = derivatives.t_tests(rows)
            quantile = special.stdtrit(test["df"], (1 + level) / 2)
        else:
            estimate = rows @ result._beta
            std_error = np.sqrt(np.einsum("ip,pq,iq->i", rows, result._beta_covariance, rows))
            statistic = estimate / std_error
            test = {"estimate": estimate, "std_error": std_error, "df": np.array([np.inf]), "statistic": statistic}
            test["p_value"] = 2 * special.ndtr(-np.abs(statistic))
            quantile = special.ndtri((1 + level) / 2)
        test["lower"] = test["estimate"] - quantile * test["std_error"]
        test["upper"] = test["estimate"] + quantile * test["std_error"]
        return pd.DataFrame({name: test[name] for name in T_COLUMNS}, index=index)
    if derivatives is not None:
        table = derivatives.f_test(rows)
    else:
        table = asymptotic_f_test(result, rows)
    return pd.DataFrame({name: [table[name]] for name in F_COLUMNS})


def asymptotic_f_test(result: LmerResult, rows: np.ndarray, eps: float = float(np.sqrt(np.finfo(float).eps))) -> dict[str, float]:
    """The Wald test of Lβ = 0 as F = W/q on (q, ∞) df, q = rank of L Cov(β̂) Lᵀ."""
    values, rotated = independent_contrasts(rows, result._beta_covariance, eps)
    wald = float(np.sum((rotated @ result._beta) ** 2 / values))
    rank = len(values)
    mean_sq = wald / rank * result.sigma**2
    return {
        "sum_sq": mean_sq * rank,
        "mean_sq": mean_sq,
        "num_df": float(rank),
        "den_df": np.inf,
        "F": wald / rank,
        "p_value": float(special.chdtrc(rank, wald)),
    }
