"""The fixed-effects coefficient table: estimates, standard errors and tests of βⱼ = 0, with
Satterthwaite's or Kenward and Roger's degrees of freedom for linear mixed models (lmerTest's
``summary``) or asymptotic z-tests (lme4's and every GLMM's).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> m.coef_table().round(3).loc["Days"].tolist()[:4]
[10.467, 1.546, 17.0, 6.771]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from ..errors import SpecificationError
from ..results.base import MixedModelResult
from ..results.linear import LmerResult

if TYPE_CHECKING:
    from .kenward_roger import KenwardRogerAdjustment
    from .satterthwaite import SatterthwaiteDerivatives

COLUMNS = ["estimate", "std_error", "df", "statistic", "p_value"]
LMM_METHODS = ("satterthwaite", "kenward-roger", "asymptotic")
GLMM_METHODS = ("asymptotic",)


def accepted_ddf(result: MixedModelResult, ddf: str) -> str:
    """``ddf`` in lower case if ``result`` supports it (lmerTest's spellings such as
    ``"Kenward-Roger"`` are accepted), else a SpecificationError listing what it supports.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> accepted_ddf(m, "Kenward-Roger")
    'kenward-roger'
    """
    accepted = LMM_METHODS if isinstance(result, LmerResult) else GLMM_METHODS
    method = ddf.lower() if isinstance(ddf, str) else ddf
    if method not in accepted:
        kind = "a linear" if isinstance(result, LmerResult) else "a generalized linear"
        raise SpecificationError(f"ddf must be one of {', '.join(map(repr, accepted))} for {kind} mixed model, not {ddf!r}")
    return str(method)


def small_sample_method(result: MixedModelResult, ddf: str) -> SatterthwaiteDerivatives | KenwardRogerAdjustment | None:
    """The fit's cached Satterthwaite derivatives or Kenward-Roger adjustment for ``ddf``, or
    None for asymptotic tests.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> type(small_sample_method(m, "kenward-roger")).__name__
    'KenwardRogerAdjustment'
    """
    method = accepted_ddf(result, ddf)
    if method == "asymptotic":
        return None
    assert isinstance(result, LmerResult)
    return result.satterthwaite if method == "satterthwaite" else result.kenward_roger


def coef_table(result: MixedModelResult, ddf: str = "satterthwaite") -> pd.DataFrame:
    """One row per fixed effect (``params``' order): ``estimate``, ``std_error``, ``df``,
    ``statistic`` (t, or z when df is infinite) and the two-sided ``p_value``. With
    ``ddf="kenward-roger"`` ``std_error`` is the Kenward-Roger adjusted one (as pbkrtest's).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> float(coef_table(m, "asymptotic")["df"].iloc[0])
    inf
    """
    method = small_sample_method(result, ddf)
    if method is not None:
        columns = method.coefficient_tests
    else:
        estimate = result._beta
        std_error = np.sqrt(np.diag(result._beta_covariance))
        statistic = estimate / std_error
        columns = {
            "estimate": estimate,
            "std_error": std_error,
            "df": np.full(estimate.size, np.inf),
            "statistic": statistic,
            "p_value": 2 * special.ndtr(-np.abs(statistic)),
        }
    return pd.DataFrame(np.column_stack([columns[name] for name in COLUMNS]), index=result.design.fixed_index, columns=COLUMNS)
