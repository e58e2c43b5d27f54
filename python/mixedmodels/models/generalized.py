"""Generalized linear mixed models: :class:`GeneralizedLinearMixedModel` and lme4's ``glmer()``
and ``glmer.nb()``.

Example
-------
>>> import mixedmodels as mm
>>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
...              mm.datasets.load("cbpp"), family="binomial")
>>> round(float(g.params["Intercept"]), 2)
-1.4
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import _core
from ..errors import (
    ConvergenceWarning,
    DataError,
    SeparationWarning,
    SingularFitWarning,
    SpecificationError,
    warn,
)
from ..families import Binomial, Family, Gaussian, NegativeBinomial, resolve
from ..formula.contrasts import ContrastSpec
from ..formula.design import Design, NaAction, build_design, row_mask, warn_if_rank_deficient
from ..formula.frames import DataFrameLike, as_pandas
from ..formula.parser import parse_formula
from ..results.generalized import GlmerResult
from .base import Compat, Factorization, MixedModel, checked_compat, checked_response, parameter_vector
from .control import FitControl, fit_control
from .internal_parameterisation import InternalParameterisation
from .negative_binomial import fit_negative_binomial


def _proportions_and_trials(successes: np.ndarray, failures: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Binomial counts as proportions and trials; a row of no trials has proportion 0 and weight
    0 (lme4's binomial ``initialize``): it carries no information."""
    for values, name in ((successes, "successes"), (failures, "failures")):
        bad = (values < 0) | (values != np.round(values))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{what}: {name} must be non-negative whole numbers; row {row + 1} has {values[row]}")
    trials = successes + failures
    return np.divide(successes, trials, out=np.zeros_like(trials), where=trials > 0), trials


def _response_and_weights(design: Design, family: Family) -> tuple[np.ndarray, np.ndarray]:
    """The core's response (proportions for the binomial) and prior weights (trials for the binomial)."""
    user_weights = design.weights if design.weights is not None else np.ones(design.nobs)
    if design.response_trials is None:
        return _without_unweighted_successes(family, design.y, user_weights), user_weights
    if not isinstance(family, Binomial):
        raise SpecificationError(f"cbind(successes, failures) responses need the binomial family, not {family.name}")
    proportions, trials = _proportions_and_trials(design.y, design.response_trials - design.y, "cbind()")
    return proportions, trials * user_weights


def _without_unweighted_successes(family: Family, y: np.ndarray, prior_weights: np.ndarray) -> np.ndarray:
    """R's binomial ``initialize`` sets y to 0 where the weight (number of trials) is 0, so
    lme4's response residuals of those rows are −μ̂."""
    if isinstance(family, Binomial) and np.any(prior_weights == 0):
        return np.where(prior_weights == 0, 0.0, y)
    return y


def _check_zero_weights(family: Family, prior_weights: np.ndarray) -> None:
    # The Gaussian log-likelihood has Σ log wᵢ: lme4's criterion is infinite at every θ with a
    # zero weight, and there is no fit to mirror.
    if isinstance(family, Gaussian) and np.any(prior_weights == 0):
        raise DataError(f"the gaussian family needs positive weights; {int(np.sum(prior_weights == 0))} are 0")


class GeneralizedLinearMixedModel(MixedModel):
    """A generalized linear mixed model, η = offset + Xβ + Zb, μ = g⁻¹(η), before (and after)
    fitting: its formula, design, family, quadrature and compiled structure.

    Besides :meth:`fit`, a model evaluates lme4's objective at any (θ, β) or, with β from
    PIRLS, at any θ (:meth:`objective`), refits a new response (:meth:`refit`) and gives the
    model of a subset of its rows (:meth:`subset`).

    >>> import mixedmodels as mm
    >>> model = mm.GeneralizedLinearMixedModel.from_formula(
    ...     "cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial")
    >>> g = model.fit()
    >>> round(model.objective(g.theta, g.params), 4) == round(g.objective, 4)
    True
    """

    def __init__(
        self,
        formula: str,
        design: Design,
        family: Family,
        *,
        n_agq: int = 1,
        data_name: str | None = None,
        data: pd.DataFrame | None = None,
        factorization: Factorization = "auto",
        max_evaluations: int = 10_000,
        compat: Compat = None,
        fit_control: FitControl | None = None,
    ) -> None:
        super().__init__(
            formula, design, data_name=data_name, data=data, factorization=factorization, max_evaluations=max_evaluations, fit_control=fit_control
        )
        if isinstance(n_agq, (bool, np.bool_)) or not isinstance(n_agq, (int, np.integer)) or not 0 <= n_agq <= 25:
            raise SpecificationError(f"nAGQ must be a whole number from 0 to 25, not {n_agq!r}")
        self.family = family
        self.n_agq = int(n_agq)
        self.compat = checked_compat(compat)
        self.response, self.prior_weights = _response_and_weights(design, family)
        _check_zero_weights(family, self.prior_weights)

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: DataFrameLike,
        family: str | Family = "binomial",
        *,
        link: str | None = None,
        weights: str | np.ndarray | pd.Series | None = None,
        offset: str | np.ndarray | pd.Series | None = None,
        nAGQ: int = 1,
        na_action: NaAction = "omit",
        max_evaluations: int = 10_000,
        factorization: Factorization = "auto",
        compat: Compat = None,
        contrasts: Mapping[str, ContrastSpec] | None = None,
        start: object = None,
        control: Mapping[str, object] | None = None,
    ) -> GeneralizedLinearMixedModel:
        """The model of an lme4 formula on a DataFrame (arguments as for :func:`glmer`).

        >>> import mixedmodels as mm
        >>> model = mm.GeneralizedLinearMixedModel.from_formula(
        ...     "TICKS ~ YEAR + (1 | BROOD)", mm.datasets.load("grouseticks"), family="poisson")
        >>> model.family.link, model.n_agq
        ('log', 1)
        """
        fam = resolve(family, link)
        data = as_pandas(data)
        parsed = parse_formula(formula)
        # lme4 allows a level per observation in GLMMs (an observation-level random effect).
        design = build_design(
            parsed, data, weights=weights, offset=offset, na_action=na_action, check_levels=False, binary_response=isinstance(fam, Binomial),
            contrasts=contrasts,
        )
        warn_if_rank_deficient(design)
        data_name = data.attrs.get("name")
        return cls(
            formula,
            design,
            fam,
            n_agq=nAGQ,
            data_name=data_name,
            data=data,
            factorization=factorization,
            max_evaluations=max_evaluations,
            compat=compat,
            fit_control=fit_control("glmer", start, control, design),
        )

    def _uses_internal_parameterisation(self) -> bool:
        # lme4 1.1's digits come from lme4's parameterisation.
        return self.compat != "lme4" and super()._uses_internal_parameterisation()

    @property
    def offset(self) -> np.ndarray:
        """The known part of η (zeros without an offset)."""
        return self.design.offset if self.design.offset is not None else np.zeros(self.nobs)

    def _build_core(self, design: Design, internal: InternalParameterisation | None) -> Any:
        family, settings = self.family, self.fit_control
        theta_start, beta_start = settings.theta_start, settings.beta_start
        if internal is not None:
            theta_start = None if theta_start is None else tuple(internal.theta_to_internal(theta_start).tolist())
            beta_start = None if beta_start is None else tuple(internal.beta_to_internal(beta_start).tolist())
        try:
            return _core.GeneralizedLinearMixedModel(
                design.x,
                self._core_terms(design),
                np.ascontiguousarray(self.response, dtype=float),
                np.ascontiguousarray(self.prior_weights, dtype=float),
                np.ascontiguousarray(self.offset, dtype=float),
                family.core_name,
                family.link,
                family.negative_binomial_theta,
                self.factorization,
                "lme4" if self.compat == "lme4" else "exact",
                theta_start=None if theta_start is None else list(theta_start),
                beta_start=None if beta_start is None else list(beta_start),
                initial_stage=settings.initial_stage,
                pirls_tolerance=settings.pirls_tolerance,
            )
        except DataError as err:
            raise DataError(f"response {self.design.parsed.response!r}: {err}") from None

    def fit_without_warnings(self) -> GlmerResult:
        """:meth:`fit` without its warnings, for fits inside other procedures (the negative
        binomial's size search, bootstraps) that judge the fit themselves.

        >>> import mixedmodels as mm
        >>> model = mm.GeneralizedLinearMixedModel.from_formula(
        ...     "cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial")
        >>> model.fit_without_warnings().converged
        True
        """
        if isinstance(self.family, NegativeBinomial) and self.family.theta is None:
            return fit_negative_binomial(self)
        settings = self.fit_control
        fit = self._fitting_core.fit(self.n_agq, max_evaluations=self.max_evaluations, rho_begin=settings.rho_begin, rho_end=settings.rho_end)
        return GlmerResult.from_core(self, self._user_coordinates(fit), self.max_evaluations)

    def fit(self) -> GlmerResult:
        """Estimate θ and β by maximum likelihood (Laplace, adaptive Gauss–Hermite or nAGQ = 0, as
        the model's ``n_agq`` says; a negative binomial size left open is estimated as lme4's
        ``glmer.nb`` does), warning about non-convergence, separation and singular fits. With
        nAGQ ≥ 1 lme4's convergence check runs on the gradient and Hessian in (θ, β) at the
        optimum (the Hessian that gives the standard errors) and warns as lme4 does
        (``result.optimization.convergence_check``).

        >>> import mixedmodels as mm
        >>> model = mm.GeneralizedLinearMixedModel.from_formula(
        ...     "cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial")
        >>> round(model.fit().llf, 2)
        -92.03
        """
        result = self.fit_without_warnings()
        _warn_about(result)
        return result

    def objective(self, theta: Sequence[float] | np.ndarray, beta: Sequence[float] | np.ndarray | pd.Series | None = None) -> float:
        """The deviance-scale objective (lme4's ``devFunOnly`` function). With ``beta``: the
        Laplace approximation to −2 log L at (θ, β) — exact, or lme4 1.1's with
        ``compat="lme4"`` (for ``n_agq`` > 1 lme4's adaptive Gauss–Hermite deviance) — with the
        conditional modes from PIRLS: the function the fit minimises, equal to
        ``result.objective`` at the estimates. Without ``beta``: the nAGQ = 0
        objective of θ alone, β estimated inside PIRLS. A model that has not been fitted first
        runs lme4's first optimisation stage, as lme4's ``devFunOnly`` does.

        >>> import mixedmodels as mm
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mm.datasets.load("cbpp"), family="binomial")
        >>> abs(g.model.objective(g.theta, g.params) - g.objective) < 1e-8
        True
        """
        theta_values = parameter_vector(theta, self.n_theta, "theta")
        if beta is None:
            return float(self._core.objective(theta_values, None, 0))
        beta_values = parameter_vector(beta, self.design.x.shape[1], "beta")
        return float(self._core.objective(theta_values, beta_values, max(self.n_agq, 1)))

    def objective_derivatives(
        self, theta: Sequence[float] | np.ndarray, beta: Sequence[float] | np.ndarray | pd.Series
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian in (θ, β) of :meth:`objective` at (θ, β), by central differences
        with lme4's step 1e-4 (lme4's ``deriv12``, what ``glmer`` computes at its optimum for the
        covariance of β̂ and its convergence check).

        >>> import mixedmodels as mm
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mm.datasets.load("cbpp"), family="binomial")
        >>> gradient, hessian = g.model.objective_derivatives(g.theta, g.params)
        >>> bool(abs(gradient).max() < 0.002), hessian.shape
        (True, (5, 5))
        """
        theta_values = parameter_vector(theta, self.n_theta, "theta")
        beta_values = parameter_vector(beta, self.design.x.shape[1], "beta")
        derivatives = self._core.objective_derivatives(theta_values, beta_values, max(self.n_agq, 1))
        return np.asarray(derivatives.gradient), np.asarray(derivatives.hessian)

    def with_family(self, family: Family) -> GeneralizedLinearMixedModel:
        """The same design with another family (a new compiled structure).

        >>> import mixedmodels as mm
        >>> model = mm.GeneralizedLinearMixedModel.from_formula(
        ...     "TICKS ~ YEAR + (1 | BROOD)", mm.datasets.load("grouseticks"), family="poisson")
        >>> model.with_family(mm.families.NegativeBinomial(link="log", theta=2.0)).family.name
        'negative_binomial'
        """
        _response_and_weights(self.design, family)
        _check_zero_weights(family, self.prior_weights)
        return self._derived(family=family, _core_model=None)

    def with_response(self, y: np.ndarray | pd.Series | pd.DataFrame) -> GeneralizedLinearMixedModel:
        """The same model for a new response, as lme4's ``refit(m, newresp)`` takes it: on the
        scale of ``result.y`` (proportions for a binomial response, the prior weights kept as
        trials), or for the binomial a two-column array (or DataFrame) of successes and failures,
        whose row sums become the prior weights (lme4 replaces the weights so, dropping any
        user weights). Unlike lme4, proportions for a ``cbind()`` model keep its trials (lme4 puts
        them in place of the matrix and fits them with weight 1).

        >>> import mixedmodels as mm
        >>> model = mm.GeneralizedLinearMixedModel.from_formula(
        ...     "TICKS ~ YEAR + (1 | BROOD)", mm.datasets.load("grouseticks"), family="poisson")
        >>> model.with_response(model.response + 1).nobs
        403
        """
        if isinstance(self.family, Binomial) and np.ndim(y) == 2:
            counts = checked_response(y, np.zeros((self.nobs, 2)), self.design.row_index)
            proportions, trials = _proportions_and_trials(counts[:, 0], counts[:, 1], "the new response")
            return self._derived(response=proportions, prior_weights=trials, _core_model=None)
        values = checked_response(y, self.response, self.design.row_index)
        return self._derived(response=_without_unweighted_successes(self.family, values, self.prior_weights), _core_model=None)

    def refit(self, y: np.ndarray | pd.Series | pd.DataFrame) -> GlmerResult:
        """Fit the same model to a new response (lme4's ``refit(m, newresp)``), given as
        :meth:`with_response` takes it. lme4 starts the optimiser at the old estimates; this fit
        starts afresh, and reaches the same optimum.

        >>> import mixedmodels as mm
        >>> model = mm.GeneralizedLinearMixedModel.from_formula(
        ...     "TICKS ~ YEAR + (1 | BROOD)", mm.datasets.load("grouseticks"), family="poisson")
        >>> model.refit(model.response).converged
        True
        """
        return self.with_response(y).fit()

    def subset(self, rows: np.ndarray) -> GeneralizedLinearMixedModel:
        """The model of some of this model's rows (a boolean mask over its rows, or their
        positions), e.g. for case-deletion diagnostics; levels left without rows are dropped.

        >>> import mixedmodels as mm
        >>> model = mm.GeneralizedLinearMixedModel.from_formula(
        ...     "cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial")
        >>> model.subset(model.design.terms[0].factor.codes != 0).design.terms[0].n_levels
        14
        """
        keep = row_mask(rows, self.nobs)
        return self._derived(
            design=self.design.subset(keep),
            response=self.response[keep],
            prior_weights=self.prior_weights[keep],
            _core_model=None,
        )

    def conditional_covariances(
        self, theta: Sequence[float] | np.ndarray, beta: Sequence[float] | np.ndarray, dispersion: float
    ) -> list[np.ndarray]:
        """Conditional covariances of the random effects at (θ, β): per term an
        (n_levels, k, k) array, at the weights PIRLS ends with.

        >>> import mixedmodels as mm
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mm.datasets.load("cbpp"), family="binomial")
        >>> g.model.conditional_covariances(g.theta, g.params, g.dispersion)[0].shape
        (15, 1, 1)
        """
        if not self._uses_internal_parameterisation():
            return list(
                self._core.conditional_covariances(
                    np.asarray(theta, dtype=float).tolist(), np.asarray(beta, dtype=float).tolist(), float(dispersion)
                )
            )
        internal = self.internal_parameterisation
        inner_theta, inner_beta = self.fitting_parameters(np.asarray(theta, dtype=float), np.asarray(beta, dtype=float))
        return internal.conditional_covariances_to_user(self._fitting_core.conditional_covariances(inner_theta, inner_beta, float(dispersion)))


def _warn_about(result: GlmerResult) -> None:
    if not result.converged:
        warn(f"the optimizer did not converge ({result.optimization.status}); estimates may be imprecise", ConvergenceWarning)
    if result.optimization.convergence_check is not None:
        result.optimization.convergence_check.warn()
    if not result.pirls_converged:
        warn(
            "PIRLS did not converge at the estimates (the conditional modes kept moving for 100 iterations); "
            "estimates may not be finite",
            ConvergenceWarning,
        )
    if result.n_agq > 0 and not result.hessian_covariance and len(result._beta) > 0:
        warn(
            "the Hessian of the objective is not positive definite; standard errors come from the factorisation at the modes",
            ConvergenceWarning,
        )
    if isinstance(result.family, Binomial) and np.any((result.mu < 1e-8) | (result.mu > 1 - 1e-8)):
        warn(
            "fitted probabilities numerically 0 or 1 occurred: a predictor may separate the outcomes completely, "
            "and the estimates of the separating effects are then not finite",
            SeparationWarning,
        )
    if result.is_singular:
        warn("boundary (singular) fit: see GlmerResult.is_singular", SingularFitWarning)


def glmer(
    formula: str,
    data: DataFrameLike,
    family: str | Family = "binomial",
    *,
    link: str | None = None,
    weights: str | np.ndarray | pd.Series | None = None,
    offset: str | np.ndarray | pd.Series | None = None,
    nAGQ: int = 1,
    na_action: NaAction = "omit",
    max_evaluations: int = 10_000,
    factorization: Factorization = "auto",
    compat: Compat = None,
    contrasts: Mapping[str, ContrastSpec] | None = None,
    start: object = None,
    control: Mapping[str, object] | None = None,
) -> GlmerResult:
    """Fit a generalized linear mixed model by maximum likelihood, as lme4's ``glmer``.

    Parameters
    ----------
    formula
        lme4 formula. The response may be 0/1, counts, a proportion with ``weights`` = trials,
        or ``cbind(successes, failures)``; ``offset(expr)`` terms are allowed.
    data
        A pandas DataFrame, a polars DataFrame or a pyarrow Table (any table with the Arrow
        PyCapsule interface), read without converting values to Python objects; a polars
        ``Enum`` or an Arrow dictionary column is a factor with its categories' order (see
        :mod:`mixedmodels.formula.frames`). It is not modified; results are pandas objects.
    family, link
        A family name (``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"inverse.gaussian"``,
        ``"gaussian"``, ``"negative_binomial"``) with an optional link, or a family object such
        as ``mm.families.Binomial(link="probit")``. A negative binomial without a size
        (``theta``) has it estimated as lme4's ``glmer.nb`` does.
    weights, offset
        A column name or one value per row (prior weights: numbers of trials for proportions).
    nAGQ
        1 (default): Laplace approximation. 0: lme4's faster nAGQ = 0 (β estimated inside PIRLS,
        only θ optimised). 2–25: adaptive Gauss–Hermite quadrature, for one scalar random-effects
        term such as ``(1 | g)``.
    na_action, max_evaluations, factorization, contrasts
        As for :func:`mixedmodels.lmer`.
    compat
        ``None`` (default): the Laplace approximation is evaluated exactly, at the converged
        conditional modes with the working weights of those modes (as glmmTMB and MixedModels.jl
        do). ``"lme4"``: lme4 1.1's objective, whose log-determinant comes from the PIRLS
        iteration before the modes (off the Laplace value by 3e-4 on cbpp, 0.12 on a Bernoulli
        model with 411 groups), for reproducing lme4's digits. nAGQ = 0 and nAGQ > 1 fits are
        lme4's either way.
    start
        lme4's ``start``: θ (a vector, lme4's order) where stage one starts, or
        ``{"theta": [...], "fixef": [...]}``, ``fixef`` being where stage two starts.
    control
        lme4's ``glmerControl()`` settings by lme4's names: ``nAGQ0initStep`` (``False`` skips
        the nAGQ = 0 stage: stage two starts from ``start``, or θ's default and β = 0),
        ``tolPwrss`` (PIRLS's tolerance, 1e-7; the exact Laplace objective converges PIRLS to
        1e-9 or this, whichever is smaller), ``optCtrl`` (``maxfun`` or ``maxeval``: the budget
        of each stage; ``rhobeg``, ``rhoend``: the trust region's radii in stage one) and
        ``optimizer`` — accepted for lme4 code, but every fit uses this package's BOBYQA-type
        optimiser.

    Notes
    -----
    The result keeps its model as ``result.model`` (a :class:`GeneralizedLinearMixedModel`).

    Example
    -------
    >>> import mixedmodels as mm
    >>> cbpp = mm.datasets.load("cbpp")
    >>> g = mm.glmer("incidence / size ~ period + (1 | herd)", cbpp, family="binomial", weights="size")
    >>> round(g.llf, 2)
    -92.03
    """
    model = GeneralizedLinearMixedModel.from_formula(
        formula,
        data,
        family,
        link=link,
        weights=weights,
        offset=offset,
        nAGQ=nAGQ,
        na_action=na_action,
        max_evaluations=max_evaluations,
        factorization=factorization,
        compat=compat,
        contrasts=contrasts,
        start=start,
        control=control,
    )
    return model.fit()


def glmer_nb(formula: str, data: DataFrameLike, **kwargs: Any) -> GlmerResult:
    """lme4's ``glmer.nb``: a negative binomial GLMM whose size θ is estimated.

    >>> import mixedmodels as mm
    >>> ticks = mm.datasets.load("grouseticks")
    >>> g = mm.glmer_nb("TICKS ~ YEAR + (1 | BROOD)", ticks)
    >>> g.family.theta > 0
    True
    """
    return glmer(formula, data, family=NegativeBinomial(link=kwargs.pop("link", "log")), **kwargs)
