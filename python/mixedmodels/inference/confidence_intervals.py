"""Confidence intervals for a fit's parameters, labelled as lme4's ``confint(m, oldNames =
FALSE)``: the variance parameters first (``sd_<column>|<group>``, ``cor_<column>.<column>|<group>``
for each random-effects term in θ's order, then ``sigma`` where the model has a residual
variance), then the fixed effects under their ``params`` names.

Wald intervals (lme4's ``method = "Wald"``) are β̂ ± z·SE for the fixed effects; like lme4 they
are not defined for the variance parameters (NaN). Profile intervals (``method = "profile"``)
come from the likelihood profile of every parameter (see
:mod:`mixedmodels.inference.profile`).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> intervals = confint(m, method="Wald")
>>> intervals.table.index.tolist()
['sd_(Intercept)|Subject', 'cor_Days.(Intercept)|Subject', 'sd_Days|Subject', 'sigma', 'Intercept', 'Days']
>>> intervals.table.loc["Days"].round(3).tolist()
[7.438, 13.497]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import MixedModelError, SpecificationError
from ..results.base import MixedModelResult
from ..results.names import display_name

IntervalMethod = Literal["Wald", "profile", "boot"]
METHODS: tuple[str, ...] = ("Wald", "profile", "boot")


def check_level(level: object, error: type[MixedModelError] = SpecificationError) -> None:
    """Refuse, as ``error``, a confidence level that is not a number strictly between 0 and 1.

    >>> check_level(0.95)
    """
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise error(f"level must be between 0 and 1, not {level!r}")


def variance_parameter_names(result: MixedModelResult) -> list[str]:
    """lme4's ``oldNames = FALSE`` labels of the variance parameters, in θ's order per term (a
    term's standard deviations and correlations column by column), then ``sigma``.

    >>> import mixedmodels as mm
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> variance_parameter_names(g)
    ['sd_(Intercept)|herd']
    """
    names = []
    for term in result.design.terms:
        columns = [display_name(name) for name in term.column_names]
        for j, first in enumerate(columns):
            names.append(f"sd_{first}|{term.group_name}")
            names += [f"cor_{other}.{first}|{term.group_name}" for other in columns[j + 1 :]]
    if result.random_effects_covariance.residual_sd is not None:
        names.append("sigma")
    return names


@dataclass(frozen=True)
class ConfidenceIntervals:
    """Intervals for every parameter (``table``: ``lower``, ``upper``), by ``method`` at
    ``level``.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> confint(m, method="Wald").level
    0.95
    """

    table: pd.DataFrame
    method: str
    level: float

    def __repr__(self) -> str:
        return f"{self.method} confidence intervals ({self.level:g})\n{self.table.to_string()}"

    def _repr_html_(self) -> str:
        return f"<p>{self.method} confidence intervals ({self.level:g})</p>{self.table.to_html()}"


def confint(
    result: MixedModelResult, method: IntervalMethod, level: float = 0.95, *, nsim: int = 500, seed: int | None = None
) -> ConfidenceIntervals:
    """Confidence intervals at ``level`` for every parameter (lme4's ``confint(m, method,
    level, oldNames = FALSE)``). ``method="Wald"``: β̂ ± z·SE for the fixed effects (with the
    standard errors of ``cov_params()``), NaN for the variance parameters, as lme4.
    ``method="profile"``: where the profiled deviance is z² above its minimum (for an LMM the ML
    deviance, so a REML fit's are those of its ML refit, as lme4; see
    :mod:`mixedmodels.inference.profile`). ``method="boot"``: percentile intervals of ``nsim``
    parametric-bootstrap replicates drawn from ``seed`` (lme4's ``method = "boot"``, ``boot.type
    = "perc"``; see :func:`mixedmodels.inference.bootstrap`).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> bool(confint(m, method="Wald").table.loc["sigma"].isna().all())
    True
    """
    if method not in METHODS:
        raise SpecificationError(f"method must be one of {', '.join(map(repr, METHODS))}, not {method!r}")
    check_level(level)
    if method == "profile":
        from .profile import profile  # the profile's module builds on this one's labels

        return profile(result, level).confint(level)
    if method == "boot":
        from .bootstrap import bootstrap  # likewise the bootstrap's

        return bootstrap(result, n=nsim, seed=seed).intervals(level)
    half_width = stats.norm.ppf(0.5 + level / 2) * result.bse.to_numpy()
    estimates = result.params.to_numpy()
    variance_names = variance_parameter_names(result)
    lower = np.concatenate([np.full(len(variance_names), np.nan), estimates - half_width])
    upper = np.concatenate([np.full(len(variance_names), np.nan), estimates + half_width])
    index = pd.Index(variance_names + list(result.params.index), dtype=object, name="parameter")
    return ConfidenceIntervals(pd.DataFrame({"lower": lower, "upper": upper}, index=index), method, float(level))
