"""Linear mixed models: :class:`LinearMixedModel` and lme4's ``lmer()``.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
>>> round(float(m.params["Intercept"]), 4)
22.9722
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from .. import _core
from ..errors import ConvergenceWarning, DataError, SingularFitWarning, warn
from ..formula.contrasts import ContrastSpec
from ..formula.design import Design, NaAction, build_design, check_identifiable, warn_if_rank_deficient
from ..formula.frames import DataFrameLike, as_pandas
from ..formula.parser import parse_formula
from ..results.linear import LmerResult
from .base import Factorization, MixedModel, as_float_array, checked_response, parameter_vector
from .control import FitControl, fit_control
from .internal_parameterisation import InternalParameterisation


class LinearMixedModel(MixedModel):
    """A linear mixed model y = Xβ + Zb + ε before (and after) fitting: its formula, design and
    compiled structure, which everything that does not depend on y is computed in once.

    Besides :meth:`fit`, a model evaluates its objective at any θ (:meth:`objective`, lme4's
    ``devFunOnly``), refits a new response without analysing the structure again
    (:meth:`refit`), and gives the model of a subset of its rows (:meth:`subset`).

    >>> import mixedmodels as mm
    >>> model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> result = model.fit()
    >>> result.model is model, round(model.objective(result.theta), 3)
    (True, 1743.628)
    """

    def __init__(
        self,
        formula: str,
        design: Design,
        *,
        REML: bool = True,
        data_name: str | None = None,
        data: pd.DataFrame | None = None,
        factorization: Factorization = "auto",
        max_evaluations: int = 10_000,
        fit_control: FitControl | None = None,
    ) -> None:
        super().__init__(
            formula, design, data_name=data_name, data=data, factorization=factorization, max_evaluations=max_evaluations, fit_control=fit_control
        )
        self.REML = bool(REML)

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: DataFrameLike,
        *,
        REML: bool = True,
        weights: str | np.ndarray | pd.Series | None = None,
        offset: str | np.ndarray | pd.Series | None = None,
        na_action: NaAction = "omit",
        factorization: Factorization = "auto",
        max_evaluations: int = 10_000,
        contrasts: Mapping[str, ContrastSpec] | None = None,
        start: object = None,
        control: Mapping[str, object] | None = None,
    ) -> LinearMixedModel:
        """The model of an lme4 formula on a DataFrame (arguments as for :func:`lmer`).

        >>> import mixedmodels as mm
        >>> model = mm.LinearMixedModel.from_formula("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"), REML=False)
        >>> round(model.fit().llf, 2)
        -163.66
        """
        data = as_pandas(data)
        parsed = parse_formula(formula)
        design = build_design(parsed, data, weights=weights, offset=offset, na_action=na_action, contrasts=contrasts)
        warn_if_rank_deficient(design)
        data_name = data.attrs.get("name")
        return cls(
            formula,
            design,
            REML=REML,
            data_name=data_name,
            data=data,
            factorization=factorization,
            max_evaluations=max_evaluations,
            fit_control=fit_control("lmer", start, control, design),
        )

    def _build_core(self, design: Design, internal: InternalParameterisation | None) -> _core.LinearMixedModel:
        return _core.LinearMixedModel(design.x, self._core_terms(design), design.weights, self.factorization)

    @property
    def response(self) -> np.ndarray:
        """The response the core fits: y less any offset."""
        design = self.design
        return design.y - design.offset if design.offset is not None else design.y

    def fit(self, *, REML: bool | None = None, check_convergence: bool | None = None) -> LmerResult:
        """Estimate θ, β and σ by REML (the model's default) or maximum likelihood
        (``REML=False``, as lme4's ``refitML``), warning when the optimiser did not converge or
        the fit is singular.

        With ``check_convergence`` (lme4's default ``calc.derivs = TRUE``, for every model size),
        the gradient and Hessian of the objective in θ are computed at θ̂ by central differences
        (2n_θ² evaluations more) and lme4's convergence check warns about them as lme4 does
        (``result.optimization.convergence_check``); ``check_convergence=False`` is lme4's
        ``lmerControl(calc.derivs = FALSE)`` (``None``: the model's ``control``, default on).

        >>> import mixedmodels as mm
        >>> model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> round(model.fit(REML=False).deviance, 3)
        1751.939
        >>> model.fit(check_convergence=False).optimization.convergence_check is None
        True
        """
        reml = self.REML if REML is None else bool(REML)
        response = np.ascontiguousarray(self.response, dtype=float)
        check_response_scale(response, "the response" + (" less the offset" if self.design.offset is not None else ""))
        settings = self.fit_control
        theta_start = settings.theta_start
        if theta_start is not None and self._uses_internal_parameterisation():
            theta_start = tuple(self.internal_parameterisation.theta_to_internal(theta_start).tolist())
        fit = self._fitting_core.fit(
            response,
            reml,
            max_evaluations=self.max_evaluations,
            theta_start=None if theta_start is None else list(theta_start),
            rho_begin=settings.rho_begin,
            rho_end=settings.rho_end,
            derivatives=settings.calc_derivs if check_convergence is None else bool(check_convergence),
        )
        result = LmerResult.from_core(self, self._user_coordinates(fit, reml), reml, self.max_evaluations)
        if not result.converged:
            warn(f"the optimizer did not converge ({result.optimization.status}); estimates may be imprecise", ConvergenceWarning)
        if result.optimization.convergence_check is not None:
            result.optimization.convergence_check.warn()
        if result.is_singular:
            warn("boundary (singular) fit: see LmerResult.is_singular", SingularFitWarning)
        return result

    def objective(self, theta: Sequence[float] | np.ndarray, *, REML: bool | None = None) -> float:
        """The profiled objective at θ (lme4's order): the REML criterion, or −2 log L for ML
        (``REML=False``), with β and σ profiled out — lme4's ``devFunOnly`` function and
        MixedModels.jl's ``objective!``. At a fit's θ̂ it is the fit's ``deviance``.

        >>> import mixedmodels as mm
        >>> model = mm.LinearMixedModel.from_formula("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> round(model.objective([0.0]), 4) > round(model.objective([0.8]), 4)
        True
        """
        reml = self.REML if REML is None else bool(REML)
        values = parameter_vector(theta, self.n_theta, "theta")
        return float(self._core.objective(np.ascontiguousarray(self.response, dtype=float), values, reml))

    def objective_derivatives(self, theta: Sequence[float] | np.ndarray, *, REML: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian in θ of :meth:`objective` at θ, by central differences with
        lme4's step 1e-4 (lme4's ``deriv12``, what its convergence check computes at θ̂).

        >>> import mixedmodels as mm
        >>> model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> gradient, hessian = model.objective_derivatives([1.0, 0.0, 0.2])
        >>> gradient.shape, hessian.shape
        ((3,), (3, 3))
        """
        reml = self.REML if REML is None else bool(REML)
        values = parameter_vector(theta, self.n_theta, "theta")
        derivatives = self._core.objective_derivatives(np.ascontiguousarray(self.response, dtype=float), values, reml)
        return np.asarray(derivatives.gradient), np.asarray(derivatives.hessian)

    def with_response(self, y: np.ndarray | pd.Series, weights: np.ndarray | pd.Series | None = None) -> LinearMixedModel:
        """The same model for a new response (and optionally new prior weights). With the same
        weights it shares this model's compiled structure: nothing is analysed again.

        >>> import mixedmodels as mm
        >>> model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (1 | Subject)", mm.datasets.load("sleepstudy"))
        >>> model.with_response(model.design.y + 1).nobs
        180
        """
        values = checked_response(y, self.design.y, self.design.row_index)
        if weights is None:
            return self._derived(design=replace(self.design, y=values))
        new_weights = as_float_array(weights, "new weights")
        if new_weights.shape != self.design.y.shape or not np.all(np.isfinite(new_weights)) or np.any(new_weights < 0):
            raise DataError("new weights must be non-negative and finite, one per observation")
        if not np.any(new_weights > 0):
            raise DataError("all new weights are 0: no row carries information")
        design = replace(self.design, y=values, weights=new_weights, weights_argument=None)
        return self._derived(design=design, _core_model=None)

    def refit(self, y: np.ndarray | pd.Series, weights: np.ndarray | pd.Series | None = None) -> LmerResult:
        """Fit the same model to a new response (and optionally new weights), reusing everything
        that does not depend on y (lme4's ``refit(m, newresp)``).

        >>> import mixedmodels as mm
        >>> model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> round(float(model.refit(model.design.y * 2).params["Days"]), 3)
        20.935
        """
        return self.with_response(y, weights).fit()

    def subset(self, rows: np.ndarray) -> LinearMixedModel:
        """The model of some of this model's rows (a boolean mask over its rows, or their
        positions): the structure of the fit with the other rows left out, e.g. for
        case-deletion diagnostics. Levels left without rows are dropped, as lme4 drops them.

        >>> import mixedmodels as mm
        >>> model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> model.subset(model.design.y < 400).nobs
        172
        """
        design = self.design.subset(rows)
        check_identifiable(design.terms, design.nobs)
        return self._derived(design=design, _core_model=None)

    def conditional_covariances(self, theta: Sequence[float] | np.ndarray, sigma: float) -> list[np.ndarray]:
        """Conditional covariances of the random effects at (θ, σ): per term an (n_levels, k, k)
        array (lme4's ``ranef(condVar = TRUE)``).

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.model.conditional_covariances(m.theta, m.sigma)[0].shape
        (18, 2, 2)
        """
        if not self._uses_internal_parameterisation():
            return list(self._core.conditional_covariances(np.asarray(theta, dtype=float).tolist(), float(sigma)))
        internal = self.internal_parameterisation
        inner = self._fitting_core.conditional_covariances(internal.theta_to_internal(theta).tolist(), float(sigma))
        return internal.conditional_covariances_to_user(inner)


# The sums of squares of a response beyond these magnitudes over- or underflow (1e155² > 1.8e308).
LARGEST_RESPONSE, SMALLEST_RESPONSE = 1e150, 1e-150
# Below this spread relative to its mean a response's sums of squares lose most of their digits
# (sleepstudy shifted by 1e6, spread 5.6e-5 of the mean: θ off by 1.2e-3; by 1e8: log-lik off by 1.3).
SMALLEST_RELATIVE_SPREAD = 1e-4


def check_response_scale(response: np.ndarray, what: str) -> None:
    """Refuse, as a DataError naming the remedy, a response a linear mixed model cannot be fitted
    to in double precision: constant, beyond ±1e150 or within ±1e-150, or so far from zero
    relative to its spread that its sums of squares cancel.

    >>> check_response_scale(np.array([1.0, 2.0, 4.0]), "the response")
    """
    if np.ptp(response) == 0:
        raise DataError(f"{what} is constant (every value {response[0]:g}): the residual variance is zero and the likelihood unbounded")
    largest = float(np.max(np.abs(response)))
    if not SMALLEST_RESPONSE < largest < LARGEST_RESPONSE:
        raise DataError(f"{what} reaches {largest:.3g} in absolute value: its sums of squares over- or underflow; rescale it (divide by {largest:.3g})")
    spread, centre = float(np.std(response)), float(np.mean(response))
    if spread < SMALLEST_RELATIVE_SPREAD * abs(centre):
        raise DataError(
            f"{what} varies by {spread:.3g} around {centre:.10g} ({spread / abs(centre):.1e} of its mean): its sums of squares "
            f"would lose their digits; subtract a constant such as {centre:.6g} first (the intercept absorbs it)"
        )


def lmer(
    formula: str,
    data: DataFrameLike,
    *,
    REML: bool = True,
    weights: str | np.ndarray | pd.Series | None = None,
    offset: str | np.ndarray | pd.Series | None = None,
    na_action: NaAction = "omit",
    max_evaluations: int = 10_000,
    factorization: Factorization = "auto",
    contrasts: Mapping[str, ContrastSpec] | None = None,
    start: object = None,
    control: Mapping[str, object] | None = None,
) -> LmerResult:
    """Fit a linear mixed model by REML (default) or maximum likelihood, as lme4's ``lmer``.

    Parameters
    ----------
    formula
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``: a fixed part in patsy's syntax
        (``C()``, ``I()``, ``np.log()``, interactions, ``0 +``) plus random-effects terms
        ``(expr | g)``, ``(expr || g)``, ``(1 | a/b)``, ``(1 | a:b)`` and ``offset(expr)``.
    data
        A pandas DataFrame, a polars DataFrame or a pyarrow Table (any table with the Arrow
        PyCapsule interface), read without converting values to Python objects; a polars
        ``Enum`` or an Arrow dictionary column is a factor with its categories' order (see
        :mod:`mixedmodels.formula.frames`). It is not modified; results are pandas objects.
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
    contrasts
        lme4's ``contrasts=``: the coding of factors of the fixed part, by column name, as R's
        name of a contrast (``"contr.treatment"``, ``"contr.sum"``, ``"contr.helmert"``,
        ``"contr.poly"``, ``"contr.SAS"``, MASS's ``"contr.sdif"``; ``"sum"`` etc. also do) or a
        levels × columns matrix (a DataFrame's column names name the columns, else 1..m).
        Columns are named as R names them (``recipe1``, ``recipe.L``, ``recipeB-A``), but
        treatment codings keep patsy's ``recipe[T.B]``. Other factors get treatment contrasts,
        an ordered ``Categorical`` polynomial ones (R's defaults); random-effects terms always
        use the defaults, as in lme4. Predictions, reference grids and reduced models reuse
        the coding.
    start
        lme4's ``start``: θ where the optimiser starts (lme4's order, ``result.theta``'s), as a
        vector or ``{"theta": [...]}``.
    control
        lme4's ``lmerControl()`` settings by lme4's names: ``optCtrl`` (``maxfun`` or
        ``maxeval``: the evaluation budget; ``rhobeg``, ``rhoend``: the trust region's initial and
        final radii), ``calc.derivs`` (``False`` skips the convergence check) and ``optimizer``
        — accepted for lme4 code, but every fit uses this package's BOBYQA-type optimiser.

    Notes
    -----
    The result keeps its model as ``result.model`` (a :class:`LinearMixedModel`).

    Example
    -------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> round(m.REMLcrit, 3)
    1743.628
    >>> cake = mm.lmer("angle ~ recipe + temp + (1 | replicate)", mm.datasets.load("cake"), contrasts={"recipe": "contr.sum"})
    >>> list(cake.params.index)
    ['Intercept', 'recipe1', 'recipe2', 'temp']
    """
    model = LinearMixedModel.from_formula(
        formula,
        data,
        REML=REML,
        weights=weights,
        offset=offset,
        na_action=na_action,
        factorization=factorization,
        max_evaluations=max_evaluations,
        contrasts=contrasts,
        start=start,
        control=control,
    )
    return model.fit()
