"""Likelihood profiles of a mixed model's parameters (lme4's ``profile(m)``, MixedModels.jl's
``profile``) and the profile confidence intervals they give (lme4's ``confint(m, method =
"profile")``).

For each parameter ζ(v) = sign(v − v̂)·√(D(v) − D(v̂)), where D(v) is the deviance minimised over
every other parameter with this one fixed at v. The variance parameters are profiled on the
standard-deviation / correlation / σ scale (lme4's ``sd_``, ``cor_`` and ``sigma``), the fixed
effects on their own. For a linear mixed model D is the ML deviance whatever criterion the model
was fitted by, as lme4 does: a REML fit's profile and intervals are those of its ML refit
(centred on the ML estimates). For a GLMM D is the objective of its fit (Laplace, or adaptive
Gauss–Hermite with nAGQ > 1) in θ and β; families with a dispersion parameter and nAGQ = 0 fits
are not profiled. The interval at a level is where ζ = ±z: found by root-finding on ζ at the level
the profile was computed for, by monotone interpolation of the profile (as lme4's
``confint.thpr`` does with its spline) at lower levels. A standard deviation whose profile does
not reach −z before 0 has the lower bound 0, a correlation one of ±1 where it does not reach ±z
before it.

The profiles are computed in the Rust core in one call (each point a bounded BOBYQA optimisation
warm-started at the previous point's).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
>>> intervals = profile(m, level=0.95).confint(0.95)
>>> intervals.table.loc["sd_(Intercept)|Batch"].round(2).tolist()
[12.2, 84.06]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import interpolate, stats

from .. import _core
from ..errors import SpecificationError
from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult
from ..results.linear import LmerResult
from .confidence_intervals import ConfidenceIntervals, check_level, variance_parameter_names

# lme4's default extent of a profile: out to the 99% cutoff (profile.merMod's alphamax = 0.01).
DEFAULT_PROFILE_LEVEL = 0.99


def _cutoff(level: float) -> float:
    """|ζ| at the two-sided ``level``."""
    return float(stats.norm.ppf(0.5 + level / 2))


@dataclass(frozen=True)
class LikelihoodProfile:
    """The likelihood profile of every parameter, out to ζ = ±z at ``level``; ``bounds`` are the
    exact profile intervals at ``level``.

    ``profiles[name]`` is one parameter's profile, lme4's ``as.data.frame(profile(m))`` for that
    parameter: a row per point with ``zeta`` and every parameter's value there (the profiled
    one's column is the profiled value), in ascending order. ``estimates`` are the ML estimates
    and ``deviance`` the deviance there (an LMM's ML deviance without the weights' constant
    −Σ log wᵢ, a GLMM's objective).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> p = m.profile()
    >>> list(p.profiles)[:2]
    ['sd_(Intercept)|Subject', 'cor_Days.(Intercept)|Subject']
    >>> days = p.profiles["Days"]
    >>> float(days.loc[days["Days"] == p.estimates["Days"], "zeta"].iloc[0])
    0.0
    """

    profiles: dict[str, pd.DataFrame]
    estimates: pd.Series
    deviance: float
    level: float
    bounds: pd.DataFrame

    def confint(self, level: float = 0.95) -> ConfidenceIntervals:
        """Profile intervals at ``level`` (at most the profile's own): exact at the profile's
        level, interpolated monotonically in ζ below it, as lme4's ``confint(profile(m))``.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> m.profile().confint(0.5).table.loc["sigma"].round(1).tolist()
        [45.1, 54.8]
        """
        check_level(level)
        if level > self.level:
            raise SpecificationError(f"the profile reaches the {self.level:g} level; level {level:g} needs profile(level={level:g})")
        if level == self.level:
            return ConfidenceIntervals(self.bounds.copy(), "profile", float(level))
        cutoff = _cutoff(level)
        rows = [self._interpolated_bounds(name, cutoff) for name in self.profiles]
        table = pd.DataFrame(rows, index=self.bounds.index, columns=["lower", "upper"])
        return ConfidenceIntervals(table, "profile", float(level))

    def _interpolated_bounds(self, name: str, cutoff: float) -> tuple[float, float]:
        """Where ζ = ±cutoff on ``name``'s profile; past the profile's ends, its limit bound."""
        profile = self.profiles[name]
        zeta = profile["zeta"].to_numpy()
        values = profile[name].to_numpy()
        increasing = np.concatenate([[True], np.diff(zeta) > 0])
        inverse = interpolate.PchipInterpolator(zeta[increasing], values[increasing])
        lower = float(inverse(-cutoff)) if zeta[0] <= -cutoff else float(self.bounds.loc[name, "lower"])
        upper = float(inverse(cutoff)) if zeta[-1] >= cutoff else float(self.bounds.loc[name, "upper"])
        return lower, upper

    def __repr__(self) -> str:
        return f"Likelihood profile to the {self.level:g} level (deviance {self.deviance:.4f})\n{self._summary().to_string()}"

    def _repr_html_(self) -> str:
        return f"<p>Likelihood profile to the {self.level:g} level (deviance {self.deviance:.4f})</p>{self._summary().to_html()}"

    def _summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "estimate": self.estimates,
                "points": [len(profile) for profile in self.profiles.values()],
                "lower": self.bounds["lower"],
                "upper": self.bounds["upper"],
            }
        )


def _core_profile(result: MixedModelResult, cutoffs: list[float]) -> _core.LikelihoodProfile:
    """The core's profile of ``result``'s model: an LMM's ML deviance, a GLMM's objective."""
    if isinstance(result, LmerResult):
        model = result.model
        return model._core.profile(np.ascontiguousarray(model.response, dtype=float), cutoffs, max_evaluations=model.max_evaluations)
    if not isinstance(result, GlmerResult):
        raise SpecificationError(f"likelihood profiles need an lmer or glmer fit, not {type(result).__name__}")
    family = result.model.family
    if family.has_dispersion:
        raise SpecificationError(
            f"likelihood profiles of GLMMs with a dispersion parameter ({family.name}) are not available: "
            "lme4 profiles them over a scale it does not estimate"
        )
    if result.n_agq == 0:
        raise SpecificationError("a nAGQ = 0 fit cannot be profiled: its objective has no fixed effects to profile")
    return result.model._core.profile(result.n_agq, cutoffs, max_evaluations=result.model.max_evaluations)


def profile(result: MixedModelResult, level: float = DEFAULT_PROFILE_LEVEL) -> LikelihoodProfile:
    """Profile the deviance along every parameter out to ζ = ±z at ``level`` (lme4's ``profile(m,
    alphamax = 1 - level)``), with the exact profile intervals at that level: an LMM's ML deviance,
    a GLMM's Laplace or adaptive Gauss–Hermite objective.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> profile(m, level=0.95).bounds.loc["Intercept"].round(1).tolist()
    [1486.5, 1568.5]
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> profile(g, level=0.95).bounds.loc["sd_(Intercept)|herd"].round(3).tolist()
    [0.346, 1.1]
    """
    check_level(level)
    core = _core_profile(result, [_cutoff(level)])
    names = variance_parameter_names(result) + list(result.params.index)
    index = pd.Index(names, dtype=object, name="parameter")
    profiles = {}
    for name, parameter in zip(names, core.parameters):
        table = pd.DataFrame(np.asarray(parameter.parameters), columns=names)
        table.insert(0, "zeta", np.asarray(parameter.zeta))
        profiles[name] = table
    bounds = pd.DataFrame(
        {
            "lower": [float(parameter.lower[0]) for parameter in core.parameters],
            "upper": [float(parameter.upper[0]) for parameter in core.parameters],
        },
        index=index,
    )
    estimates = pd.Series(np.asarray(core.estimates), index=index, name="estimate")
    return LikelihoodProfile(profiles, estimates, float(core.deviance), float(level), bounds)
