"""The covariance of the random effects, term by term, and the residual variance: one object
behind ``varcorr()``, ``variance_components`` and the summary's random-effects table.

Each random-effects term ``(expr | g)`` has a relative covariance factor λ (lower triangular,
k × k) whose entries are θ listed column by column; the term's covariance is scale · λλᵀ, with
scale σ² for a linear model and the dispersion for a generalized one (Bates et al. 2015, JSS
67(1), §2.2).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> vc = m.random_effects_covariance
>>> [term.group for term in vc.terms], round(vc.residual_sd, 3)
(['Subject'], 25.592)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .names import display_name, make_unique


def relative_covariance_factors(theta: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Each term's λ (k × k, lower triangular) from θ, which lists each λ's lower triangle column
    by column (lme4's order), for terms of ``sizes`` columns. θ may have leading dimensions (one
    θ per bootstrap replicate, say): λ then has them too, (..., k, k).

    >>> relative_covariance_factors(np.array([1.0, 0.5, 2.0]), [2])[0].tolist()
    [[1.0, 0.0], [0.5, 2.0]]
    >>> relative_covariance_factors(np.array([[1.0, 0.5, 2.0], [3.0, 0.0, 1.0]]), [2])[0].shape
    (2, 2, 2)
    """
    factors = []
    position = 0
    for k in sizes:
        factor = np.zeros((*theta.shape[:-1], k, k))
        for column in range(k):
            factor[..., column:, column] = theta[..., position : position + k - column]
            position += k - column
        factors.append(factor)
    return factors


@dataclass(frozen=True)
class TermCovariance:
    """One random-effects term: its grouping factor's name (made unique as lme4's VarCorr does),
    its columns (lme4's spelling) and the covariance of its random effects.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> term = m.random_effects_covariance.terms[0]
    >>> term.names, round(float(term.correlation[1, 0]), 3)
    (['(Intercept)', 'Days'], 0.066)
    """

    group: str
    names: list[str]
    covariance: np.ndarray

    @property
    def sd(self) -> np.ndarray:
        """Standard deviations of the term's random effects."""
        return np.sqrt(np.diag(self.covariance))

    @property
    def correlation(self) -> np.ndarray:
        """Correlation matrix (NaN where a standard deviation is zero)."""
        sd = self.sd
        with np.errstate(divide="ignore", invalid="ignore"):
            correlation = self.covariance / np.outer(sd, sd)
        correlation[np.outer(sd, sd) == 0] = math.nan
        return correlation


@dataclass(frozen=True)
class VarianceComponents:
    """The covariance of every random-effects term and, where the model has one, the residual
    standard deviation (lme4's ``VarCorr``).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
    >>> sorted(m.random_effects_covariance.scalar_variances())
    ['plate', 'sample']
    """

    terms: tuple[TermCovariance, ...]
    residual_sd: float | None

    @classmethod
    def from_theta(
        cls,
        theta: np.ndarray,
        groups: Sequence[str],
        column_names: Sequence[Sequence[str]],
        scale: float,
        has_residual: bool,
    ) -> VarianceComponents:
        """Components from θ for terms on ``groups`` with ``column_names`` (patsy's), the
        covariances scaled by ``scale`` (σ² or the dispersion).

        >>> vc = VarianceComponents.from_theta(np.array([2.0]), ["g"], [["Intercept"]], 4.0, True)
        >>> float(vc.terms[0].covariance[0, 0]), vc.residual_sd
        (16.0, 2.0)
        """
        factors = relative_covariance_factors(theta, [len(names) for names in column_names])
        terms = tuple(
            TermCovariance(group, [display_name(n) for n in names], scale * factor @ factor.T)
            for group, names, factor in zip(make_unique(list(groups)), column_names, factors)
        )
        return cls(terms, math.sqrt(scale) if has_residual else None)

    def scalar_variances(self) -> dict[str, float]:
        """The variance of each scalar term (one column) by its group name.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> round(m.random_effects_covariance.scalar_variances()["Batch"])
        1764
        """
        return {term.group: float(term.covariance[0, 0]) for term in self.terms if len(term.names) == 1}

    def table(self) -> pd.DataFrame:
        """lme4's ``as.data.frame(VarCorr(m))``: one row per variance, one per covariance
        (``sdcor`` holding the correlation), then a ``Residual`` row where there is one.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.random_effects_covariance.table()["var1"].tolist()
        ['(Intercept)', 'Days', '(Intercept)', None]
        """
        rows: list[tuple[Any, ...]] = []
        for term in self.terms:
            sd, correlation = term.sd, term.correlation
            for i, name in enumerate(term.names):
                rows.append((term.group, name, None, term.covariance[i, i], sd[i]))
            for j in range(len(term.names)):
                for i in range(j + 1, len(term.names)):
                    rows.append((term.group, term.names[j], term.names[i], term.covariance[i, j], correlation[i, j]))
        if self.residual_sd is not None:
            rows.append(("Residual", None, None, self.residual_sd**2, self.residual_sd))
        grp, var1, var2, vcov, sdcor = zip(*rows) if rows else ((),) * 5
        # Object columns keep None (lme4's NA) rather than pandas' string NaN.
        return pd.DataFrame(
            {
                "grp": pd.Series(grp, dtype=object),
                "var1": pd.Series(var1, dtype=object),
                "var2": pd.Series(var2, dtype=object),
                "vcov": pd.Series(vcov, dtype=float),
                "sdcor": pd.Series(sdcor, dtype=float),
            }
        )
