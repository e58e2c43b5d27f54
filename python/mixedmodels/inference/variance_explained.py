"""Variance explained by a mixed model: Nakagawa, Johnson & Schielzeth's (2017) R² and the
intraclass correlation, computed as R's performance 0.10.2 (``r2_nakagawa``, ``icc``) computes them
from the variance components of insight 0.19.0 (``get_variance``).

The total variance of the response on the latent (link) scale is split into

- ``var_fixed``: the variance of the fixed-effect linear predictor Xβ̂ (R's ``var``, n − 1);
- ``var_random``: the mean over observations of diag(ZΣZᵀ) (Johnson 2014, Methods Ecol Evol
  5:944), i.e. the sum of the intercept variances for random-intercept models;
- ``var_residual`` = ``var_distribution`` + ``var_dispersion``: σ² for a linear model; for a
  GLMM the distribution-specific variance of the link (π²/3 for the logit, the lognormal
  approximation log(1 + 1/μ) for the Poisson log link) plus the variance of observation-level
  random effects (additive overdispersion).

R²_marginal = var_fixed / total, R²_conditional = (var_fixed + var_random) / total; ICC adjusted
= var_random / (var_random + var_residual), unadjusted (and, in performance 0.10.2, conditional)
= var_random / total.

insight's conventions are kept where they are not obvious (insight R/compute_variances.R):

- per grouping factor only its first random-effects term (lme4's term order) counts, so in
  ``(1 | g) + (0 + x | g)`` the slope variance is left out;
- the columns of a term's Z are the fixed-effect columns of the same name: a random slope on a
  variable the fixed part lacks is left out;
- a term whose grouping factor has a level per observation is overdispersion (GLMM:
  ``var_dispersion``; LMM: left out);
- a fit with a θ diagonal entry below 1e-5 (near-singular) has no random-effect variance: R² is
  then var_fixed / (var_fixed + var_residual) and the conditional R² and the ICCs are NaN, with
  a :class:`~mixedmodels.errors.SingularFitWarning`;
- the Poisson's μ is exp(intercept) of the null model ``y ~ 1 + <same random effects>`` (same
  offset, weights and nAGQ), which is refitted; μ < 6 gives a :class:`DistributionVarianceWarning`.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(icc(m).adjusted, 4), round(r2(m).conditional, 4)
(0.7217, 0.7992)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConvergenceWarning, DistributionVarianceWarning, SingularFitWarning, SpecificationError, warn
from ..families import Poisson
from ..models.generalized import GeneralizedLinearMixedModel
from ..results.base import MixedModelResult
from ..results.generalized import GlmerResult
from ..results.linear import LmerResult
from ..results.names import make_unique

__all__ = ["IntraclassCorrelation", "RSquared", "VarianceDecomposition", "icc", "r2", "variance_decomposition"]

# insight's get_variance(tolerance = 1e-5): θ diagonal entries below it make the fit singular.
SINGULARITY_TOLERANCE = 1e-5
# insight warns that the lognormal approximation is unreliable below this μ of the null model.
SMALL_MU = 6.0

# Distribution-specific variances of the latent scale that do not depend on the data
# (Nakagawa et al. 2017, Table 1; insight's .compute_variance_distribution).
_CONSTANT_VARIANCES: dict[tuple[str, str], tuple[float, str]] = {
    ("binomial", "logit"): (math.pi**2 / 3, "binomial(logit): pi^2/3"),
    ("binomial", "probit"): (1.0, "binomial(probit): 1"),
    ("binomial", "cloglog"): (math.pi**2 / 6, "binomial(cloglog): pi^2/6"),
    ("poisson", "sqrt"): (0.25, "poisson(sqrt): 0.25"),
}



@dataclass(frozen=True)
class VarianceDecomposition:
    """The variance components R² and the ICC are built from (insight's ``get_variance``), on
    the latent scale. ``var_random`` is NaN for a (near-)singular fit; ``var_intercept`` holds
    each term's intercept variance and ``var_slope`` its slope variances (keys
    ``<group>.<column>``); ``approximation`` says how ``var_distribution`` was obtained.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> d = variance_decomposition(m)
    >>> round(d.var_random), round(d.var_residual), round(d.var_fixed, 12)
    (1764, 2451, 0.0)
    """

    var_fixed: float
    var_random: float
    var_residual: float
    var_distribution: float
    var_dispersion: float
    var_intercept: dict[str, float]
    var_slope: dict[str, float]
    approximation: str

    @property
    def total(self) -> float:
        """var_fixed + var_random + var_residual."""
        return self.var_fixed + self.var_random + self.var_residual

    def __repr__(self) -> str:
        rows = [
            ("fixed", self.var_fixed),
            ("random", self.var_random),
            ("residual", self.var_residual),
            ("  distribution", self.var_distribution),
            ("  dispersion", self.var_dispersion),
        ]
        lines = ["Variance components (latent scale)"]
        lines += [f"  {name:<15} {value:.6g}" for name, value in rows]
        lines.append(f"  distribution-specific variance: {self.approximation}")
        return "\n".join(lines)


@dataclass(frozen=True)
class IntraclassCorrelation:
    """performance's ``icc``: the share of the variance due to the random effects, ``adjusted``
    for the fixed effects (var_random / (var_random + var_residual)) or not (``unadjusted`` =
    var_random / total; performance 0.10.2's ``conditional`` is the same), with the
    ``components`` they come from. NaN for a (near-)singular fit.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> round(icc(m).unadjusted, 4)
    0.5206
    """

    adjusted: float
    unadjusted: float
    conditional: float
    components: VarianceDecomposition

    def __repr__(self) -> str:
        return (
            "Intraclass correlation (Nakagawa et al. 2017)\n"
            f"     Adjusted ICC: {self.adjusted:.3f}\n"
            f"   Unadjusted ICC: {self.unadjusted:.3f}\n"
            f"  Conditional ICC: {self.conditional:.3f}\n" + repr(self.components)
        )


@dataclass(frozen=True)
class RSquared:
    """performance's ``r2_nakagawa``: the variance explained by the fixed effects (``marginal``)
    and by fixed and random effects together (``conditional``), with the ``components`` they come
    from. For a (near-)singular fit ``marginal`` leaves the random effects out and
    ``conditional`` is NaN, as performance does.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> round(r2(m).marginal, 4)
    0.2787
    """

    marginal: float
    conditional: float
    components: VarianceDecomposition

    def __repr__(self) -> str:
        return (
            "R² for mixed models (Nakagawa et al. 2017)\n"
            f"  Conditional R²: {self.conditional:.3f}\n"
            f"     Marginal R²: {self.marginal:.3f}\n" + repr(self.components)
        )


def icc(result: MixedModelResult) -> IntraclassCorrelation:
    """The intraclass correlation of a fitted mixed model, as ``performance::icc(m)`` (0.10.2).

    >>> import mixedmodels as mm
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> round(icc(g).adjusted, 4)
    0.1114
    """
    components = variance_decomposition(result)
    adjusted = components.var_random / (components.var_random + components.var_residual)
    unadjusted = components.var_random / components.total
    return IntraclassCorrelation(adjusted, unadjusted, unadjusted, components)


def r2(result: MixedModelResult) -> RSquared:
    """Nakagawa's marginal and conditional R² of a fitted mixed model, as
    ``performance::r2_nakagawa(m)`` (0.10.2).

    >>> import mixedmodels as mm
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> round(r2(g).marginal, 4), round(r2(g).conditional, 4)
    (0.0854, 0.1873)
    """
    components = variance_decomposition(result)
    if math.isnan(components.var_random):
        # performance's fallback when the random-effect variance is not available.
        marginal = components.var_fixed / (components.var_fixed + components.var_residual)
        return RSquared(marginal, math.nan, components)
    total = components.total
    return RSquared(components.var_fixed / total, (components.var_fixed + components.var_random) / total, components)


def variance_decomposition(result: MixedModelResult) -> VarianceDecomposition:
    """The variance components of a fitted mixed model, as ``insight::get_variance(m)``.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> variance_decomposition(m).var_slope.keys()
    dict_keys(['Subject.Days'])
    """
    if not isinstance(result, (LmerResult, GlmerResult)):
        raise SpecificationError(
            f"the variance explained needs a fitted mixed model (an LmerResult or GlmerResult), not {type(result).__name__}"
        )
    design = result.design
    terms = design.terms
    covariances = [term.covariance for term in result.random_effects_covariance.terms]
    # Centring X's columns first (mathematically the same variance) makes a constant column exactly
    # zero, so an intercept-only model has var_fixed 0, not the rounding of n equal values' mean.
    centred_x = design.x - design.x.mean(axis=0)
    var_fixed = float(np.sum((centred_x @ result.params.to_numpy()) ** 2) / (design.nobs - 1))

    # insight's `vals$vc[names(ranef)]`: the first term of each grouping factor.
    first_of_group: dict[str, int] = {}
    for index, term in enumerate(terms):
        first_of_group.setdefault(term.group_name, index)
    observation_level = {i for i in first_of_group.values() if terms[i].n_levels == design.nobs}
    fixed_columns = {_lme4_name(name) for name in design.fixed_names} | {"(Intercept)"}

    def mean_variance(indices: set[int]) -> float:
        """Mean over observations of diag(Z Σ Zᵀ), summed over the terms ``indices``."""
        total = 0.0
        for i in sorted(indices):
            keep = [c for c, name in enumerate(terms[i].column_names) if _lme4_name(name) in fixed_columns]
            z = terms[i].z[:, keep]
            total += float(np.einsum("ij,jk,ik->", z, covariances[i][np.ix_(keep, keep)], z)) / design.nobs
        return total

    if _near_singular(result):
        warn(
            "Can't compute random effect variances: some variance components equal zero (a θ diagonal entry below "
            f"{SINGULARITY_TOLERANCE:g}); the model may be singular (see is_singular)",
            SingularFitWarning,
        )
        var_random = math.nan
    else:
        var_random = mean_variance(set(first_of_group.values()) - observation_level)

    if isinstance(result, LmerResult):
        var_distribution, var_dispersion = result.sigma**2, 0.0
        approximation = "linear mixed model: residual variance sigma^2"
    else:
        var_distribution, approximation = _distribution_variance(result)
        var_dispersion = mean_variance(observation_level)

    var_intercept, var_slope = _intercepts_and_slopes(result)
    return VarianceDecomposition(
        var_fixed=var_fixed,
        var_random=var_random,
        var_residual=var_distribution + var_dispersion,
        var_distribution=var_distribution,
        var_dispersion=var_dispersion,
        var_intercept=var_intercept,
        var_slope=var_slope,
        approximation=approximation,
    )


def _near_singular(result: MixedModelResult) -> bool:
    """insight's singularity check: a θ entry bounded at 0 (a diagonal of λ) below 1e-5."""
    bounded = result.model.theta_lower_bounds == 0
    return bool(np.any(np.abs(result.theta[bounded]) < SINGULARITY_TOLERANCE))


def _distribution_variance(result: GlmerResult) -> tuple[float, str]:
    """The distribution-specific variance of a GLMM's link and how it was obtained."""
    family = result.family
    assert family is not None
    key = (family.name, family.link)
    if key in _CONSTANT_VARIANCES:
        return _CONSTANT_VARIANCES[key]
    if not (isinstance(family, Poisson) and family.link == "log"):
        covered = ", ".join(f"{name}({link})" for name, link in [*_CONSTANT_VARIANCES, ("poisson", "log")])
        raise SpecificationError(
            f"the distribution-specific variance of the {family.display_name}({family.link}) family is not available; "
            f"it is for {covered} and linear mixed models"
        )
    mu = math.exp(float(_null_model_fit(result).params.iloc[0]))
    if mu < SMALL_MU:
        warn(f"mu of {mu:.1f} is too close to zero, estimate of random effect variances may be unreliable", DistributionVarianceWarning)
    # Lognormal approximation log(1 + V(μ)/μ²) with the Poisson's V(μ) = μ (Nakagawa et al. 2017, eq. 5.8).
    return math.log1p(1 / mu), f"poisson(log): lognormal, log1p(1/mu) with mu = {mu:.6g} from the null model"


def _null_model_fit(result: GlmerResult) -> GlmerResult:
    """The model with the intercept as its only fixed effect and the same random effects,
    offset, weights, family and quadrature (insight's ``null_model``), fitted."""
    model = result.model
    design = model.design
    random_part = " + ".join(f"({term.term.expr} | {term.group_name})" for term in design.terms)
    null_design = replace(design, x=np.ones((design.nobs, 1)), fixed_names=["Intercept"], dropped_fixed=[])
    null_model = GeneralizedLinearMixedModel(
        f"{design.parsed.response} ~ 1 + {random_part}",
        null_design,
        model.family,
        n_agq=model.n_agq,
        data_name=model.data_name,
        factorization=model.factorization,
        max_evaluations=model.max_evaluations,
        compat=model.compat,
        fit_control=replace(model.fit_control, beta_start=None),
    )
    fit = null_model.fit_without_warnings()
    if not fit.converged:
        warn(f"the null model refitted for the distribution-specific variance did not converge ({fit.optimization.status})", ConvergenceWarning)
    return fit


def _intercepts_and_slopes(result: MixedModelResult) -> tuple[dict[str, float], dict[str, float]]:
    """insight's ``var.intercept`` (the intercept variance of each term that has one, by VarCorr
    group name) and ``var.slope`` (the other variances, as ``<grouping factor>.<column>``)."""
    intercepts: dict[str, float] = {}
    slopes: dict[str, float] = {}
    terms = result.design.terms
    names = make_unique([term.group_name for term in terms])
    for term, name, component in zip(terms, names, result.random_effects_covariance.terms):
        variances = np.diag(component.covariance)
        has_intercept = term.column_names[0] == "Intercept"
        if has_intercept:
            intercepts[name] = float(variances[0])
        for column, variance in list(zip(term.column_names, variances))[int(has_intercept) :]:
            slopes[f"{term.group_name}.{_lme4_name(column)}"] = float(variance)
    return intercepts, slopes


def _lme4_name(patsy_name: str) -> str:
    """A patsy column name as lme4 spells it (``Intercept`` → ``(Intercept)``, ``g[T.b]`` and
    ``g[b]`` → ``gb``), so random-effect columns meet their fixed-effect columns by name as in
    insight.

    >>> _lme4_name("cond[T.b]"), _lme4_name("cond[b]"), _lme4_name("Intercept")
    ('condb', 'condb', '(Intercept)')
    """
    if patsy_name == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[(?:T\.)?(.*?)\]", r"\1", patsy_name)
