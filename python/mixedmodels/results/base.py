"""What linear and generalized mixed-model results have in common: fixed effects under
statsmodels' names, variance components, conditional modes, fit statistics, residuals and
prediction. :class:`~mixedmodels.results.linear.LmerResult` and
:class:`~mixedmodels.results.generalized.GlmerResult` add what differs.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(float(m.params["Days"]), 3), round(m.sigma, 3)
(10.467, 25.592)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import DataError, SpecificationError
from ..formula.design import Design, evaluate_expression, expression_variables
from ..formula.frames import as_pandas
from ..formula.model_matrix import variables
from .optimization import SINGULAR_TOLERANCE, OptimizationSummary
from .variance_components import VarianceComponents

if TYPE_CHECKING:
    from ..diagnostics.influence import Influence, InfluenceMethod
    from ..inference.confidence_intervals import ConfidenceIntervals, IntervalMethod
    from ..inference.fixed_term_deletion import FixedTermDeletion
    from ..inference.profile import LikelihoodProfile
    from ..inference.variance_explained import IntraclassCorrelation, RSquared
    from ..models.base import MixedModel
    from ..plotting import PlotAccessor
    from ..summary import Summary

ResidualType = Literal["response", "deviance", "pearson", "working"]
RESIDUAL_TYPES: tuple[str, ...] = ("response", "deviance", "pearson", "working")


@dataclass
class MixedModelResult:
    """What linear and generalized mixed-model fits have in common. ``model`` is the fitted
    model (:class:`~mixedmodels.models.linear.LinearMixedModel` or
    :class:`~mixedmodels.models.generalized.GeneralizedLinearMixedModel`)."""

    model: MixedModel = field(repr=False)
    theta: np.ndarray
    _beta: np.ndarray = field(repr=False)
    _beta_covariance: np.ndarray = field(repr=False)
    _ranef: list[np.ndarray] = field(repr=False)
    optimization: OptimizationSummary
    factorization: str
    _conditional_covariances: list[np.ndarray] | None = field(default=None, repr=False)

    # ----- what subclasses define ----------------------------------------------------------
    def _variance_scale(self) -> float:
        """The factor between λλᵀ and the random effects' covariance (σ² or the dispersion)."""
        raise NotImplementedError

    def _has_residual_variance(self) -> bool:
        raise NotImplementedError

    def _compute_conditional_covariances(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _observed(self) -> np.ndarray:
        """The response as fitted (for a binomial, proportions)."""
        raise NotImplementedError

    def _fitted_means(self) -> np.ndarray:
        """Conditional fitted means μ̂ (for a linear model Xβ̂ + Zb̂ + offset)."""
        raise NotImplementedError

    def _pearson_scale(self) -> np.ndarray:
        """√(prior weight / V(μ̂)) per observation: what turns a response residual into a
        Pearson residual."""
        raise NotImplementedError

    def _deviance_residuals(self) -> np.ndarray:
        raise NotImplementedError

    def _working_residuals(self) -> np.ndarray:
        raise NotImplementedError

    # ----- the model ---------------------------------------------------------------------------
    @property
    def design(self) -> Design:
        """The design the model was fitted to (response, model matrices, grouping factors)."""
        return self.model.design

    @property
    def formula(self) -> str:
        """The model's formula, as given."""
        return self.model.formula

    @property
    def data_name(self) -> str | None:
        """The data's name (``DataFrame.attrs["name"]``), shown in the summary."""
        return self.model.data_name

    # ----- fixed effects -------------------------------------------------------------------
    @functools.cached_property
    def params(self) -> pd.Series:
        """Fixed-effects estimates β̂, labelled by patsy's column names (made when first asked for)."""
        return pd.Series(self._beta, index=self.design.fixed_index, name="params")

    def cov_params(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effects estimates (lme4's ``vcov``)."""
        names = self.design.fixed_index
        return pd.DataFrame(self._beta_covariance, index=names, columns=names)

    @property
    def bse(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self._beta_covariance)), index=self.design.fixed_index, name="bse")

    @property
    def tvalues(self) -> pd.Series:
        """Wald statistics, estimate / standard error."""
        return (self.params / self.bse).rename("tvalues")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided Wald p-values with a standard-normal reference distribution."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=self.design.fixed_index, name="pvalues")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals (normal reference) for the fixed effects.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.conf_int().round(2).loc["Days"].tolist()
        [7.44, 13.5]
        """
        if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha < 1:
            raise SpecificationError(f"alpha must be between 0 and 1 (0.05 gives 95% intervals), not {alpha!r}")
        z = stats.norm.ppf(1 - alpha / 2)
        half = z * self.bse
        return pd.DataFrame({"lower": self.params - half, "upper": self.params + half})

    # ----- variance components ---------------------------------------------------------------
    @functools.cached_property
    def random_effects_covariance(self) -> VarianceComponents:
        """The covariance of each random-effects term and the residual standard deviation (lme4's
        ``VarCorr``): the one object behind :meth:`varcorr`, :attr:`variance_components` and the
        summary.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.random_effects_covariance.terms[0].names
        ['(Intercept)', 'Days']
        """
        terms = self.design.terms
        return VarianceComponents.from_theta(
            np.asarray(self.theta, dtype=float),
            [term.group_name for term in terms],
            [term.column_names for term in terms],
            self._variance_scale(),
            self._has_residual_variance(),
        )

    def varcorr(self) -> pd.DataFrame:
        """Variance components as lme4's ``as.data.frame(VarCorr(m))``: one row per variance, one
        per covariance (``sdcor`` holds the correlation), and a ``Residual`` row for models with
        a residual variance.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.varcorr()["grp"].tolist()
        ['Subject', 'Subject', 'Subject', 'Residual']
        """
        return self.random_effects_covariance.table()

    @property
    def variance_components(self) -> dict[str, float]:
        """Variance of each scalar random-effects term by grouping factor (VarCorr group names)."""
        return self.random_effects_covariance.scalar_variances()

    def icc(self) -> IntraclassCorrelation:
        """The intraclass correlation (adjusted, unadjusted, conditional) as performance's
        ``icc`` (Nakagawa et al. 2017); see :func:`mixedmodels.inference.icc`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> round(m.icc().adjusted, 3)
        0.722
        """
        from ..inference.variance_explained import icc  # analyses build on results: forward to them

        return icc(self)

    def r2(self) -> RSquared:
        """Nakagawa's marginal and conditional R² as performance's ``r2_nakagawa``; see
        :func:`mixedmodels.inference.r2`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> round(m.r2().conditional, 3)
        0.799
        """
        from ..inference.variance_explained import r2  # analyses build on results: forward to them

        return r2(self)

    # ----- random effects --------------------------------------------------------------------
    def _conditional_sds(self) -> list[np.ndarray]:
        if self._conditional_covariances is None:
            self._conditional_covariances = self._compute_conditional_covariances()
        return [np.sqrt(np.diagonal(c, axis1=1, axis2=2)) for c in self._conditional_covariances]

    def ranef(self, condvar: bool = False) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects (BLUPs), one DataFrame per grouping factor
        (index = levels, columns = the terms' columns; terms on the same factor are merged as
        lme4 merges them). With ``condvar=True``, columns ``sd_<name>`` hold the conditional
        standard deviations (lme4's ``condVar``).

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.ranef()["Subject"].shape
        (18, 2)
        """
        sds = self._conditional_sds() if condvar else None
        merged: dict[str, list[pd.DataFrame]] = {}
        for index, (term, values) in enumerate(zip(self.design.terms, self._ranef)):
            frame = pd.DataFrame(values, index=term.factor.levels, columns=term.column_names)
            if sds is not None:
                for c, name in enumerate(term.column_names):
                    frame[f"sd_{name}"] = sds[index][:, c]
            frame.index.name = term.group_name
            merged.setdefault(term.group_name, []).append(frame)
        result = {}
        for group, frames in merged.items():
            frame = pd.concat(frames, axis=1) if len(frames) > 1 else frames[0]
            if sds is not None:
                modes = [c for c in frame.columns if not str(c).startswith("sd_")]
                frame = frame[modes + [c for c in frame.columns if str(c).startswith("sd_")]]
            result[group] = frame
        return result

    # ----- fit -------------------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        """Number of observations used in the fit."""
        return self.design.nobs

    @property
    def n_dropped(self) -> int:
        """Rows dropped for missing or non-finite values."""
        return self.design.n_dropped

    @property
    def llf(self) -> float:
        """Log-likelihood at the estimates."""
        raise NotImplementedError

    @property
    def df_modelwc(self) -> int:
        """Number of estimated parameters (lme4's ``attr(logLik, "df")``)."""
        return len(self._beta) + len(self.theta) + int(self._has_residual_variance())

    @property
    def aic(self) -> float:
        """Akaike's information criterion, −2 log L + 2 · ``df_modelwc``."""
        return -2 * self.llf + 2 * self.df_modelwc

    @property
    def bic(self) -> float:
        """Schwarz's criterion, −2 log L + log(n) · ``df_modelwc``."""
        return -2 * self.llf + math.log(self.nobs) * self.df_modelwc

    @property
    def is_singular(self) -> bool:
        """True when a θ component bounded at zero is within 1e-4 of it (lme4's ``isSingular``),
        θ in the centred and scaled parameterisation the fit was optimised in (see
        :mod:`mixedmodels.models.internal_parameterisation`): lme4's θ for intercept-only terms,
        and for random slopes a verdict that does not change when the covariate is shifted
        (lme4's θ of ``Days + 1e6`` is near 0 although the model is that of ``Days``)."""
        # θ lists each term's λ column by column, lower triangle; diagonal entries are bounded.
        theta = self.model.fitting_parameters(self.theta, self._beta)[0]
        position = 0
        for term in self.design.terms:
            for column in range(term.k):
                if theta[position] < SINGULAR_TOLERANCE:
                    return True
                position += term.k - column
        return False

    @property
    def converged(self) -> bool:
        """Whether the optimiser reported convergence."""
        return self.optimization.converged

    # ----- residuals ---------------------------------------------------------------------------
    def residuals(self, type: ResidualType = "response", scaled: bool = False) -> pd.Series:  # noqa: A002 - lme4's argument name
        """Residuals as lme4's ``residuals(m, type, scaled)``: ``response`` (y − μ̂), ``pearson``
        ((y − μ̂)·√(w / V(μ̂))), ``deviance`` (signed square roots of the deviance residuals) or
        ``working`` ((y − μ̂) / μ'(η̂)); ``scaled=True`` divides them by σ̂. For a linear model
        Pearson and deviance residuals are (y − μ̂)·√w, working residuals are response ones.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> bool((m.residuals("pearson") == m.resid).all())
        True
        """
        if type == "response":
            values = self._observed() - self._fitted_means()
        elif type == "pearson":
            values = (self._observed() - self._fitted_means()) * self._pearson_scale()
        elif type == "deviance":
            values = self._deviance_residuals()
        elif type == "working":
            values = self._working_residuals()
        else:
            raise ValueError(f"type must be one of {', '.join(map(repr, RESIDUAL_TYPES))}, not {type!r}")
        if scaled:
            values = values / self.sigma
        return pd.Series(values, index=self.design.row_index, name="resid")

    def hatvalues(self) -> pd.Series:
        """Hat values (leverages) as lme4's ``hatvalues(m)``, computed through the Cholesky
        factor; see :func:`mixedmodels.diagnostics.hatvalues`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> round(float(m.hatvalues().iloc[0]), 4)
        0.2293
        """
        from ..diagnostics.leverage import hatvalues  # analyses build on results: forward to them

        return hatvalues(self)

    def influence(self, groups: str | None = None, obs: bool = False, method: InfluenceMethod = "exact", threads: int = 0) -> Influence:
        """Case-deletion influence (Cook's distance, MDFFITS, COVTRACE, COVRATIO, RVC, dfbeta(s))
        of each level of ``groups``, or of each observation (lme4's ``influence(m, groups =)``);
        ``method`` ``"exact"`` (refits, the default) or ``"one-step"`` (θ and σ held); see
        :func:`mixedmodels.diagnostics.influence`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.influence(groups="Subject").cooks_distance.idxmax()
        '309'
        """
        from ..diagnostics.influence import influence  # analyses build on results: forward to them

        return influence(self, groups, obs, method, threads)

    def augment(self) -> pd.DataFrame:
        """The fitted rows of the data with ``.fitted``, ``.fixed``, ``.resid``, ``.pearson``,
        ``.hat``, ``.cooksd`` and more (broom.mixed's ``augment``); see
        :func:`mixedmodels.diagnostics.augment`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.augment().shape
        (180, 12)
        """
        from ..diagnostics.augment import augment  # analyses build on results: forward to them

        return augment(self)

    @property
    def sigma(self) -> float:
        """The residual standard deviation (for a GLMM √dispersion, as lme4's ``sigma(m)``)."""
        return math.sqrt(self._variance_scale())

    # ----- prediction ------------------------------------------------------------------------
    def _offset(self) -> np.ndarray:
        return self.design.offset if self.design.offset is not None else np.zeros(self.nobs)

    def _linear_predictor(self, newdata: pd.DataFrame, include_re: bool, offset: np.ndarray | pd.Series | None) -> np.ndarray:
        """η on new data: Xβ̂ (+ offsets) (+ Zb̂, new levels contributing 0); NaN for a row with a
        missing value in a variable the prediction reads (R's ``na.action = na.pass``)."""
        newdata = as_pandas(newdata, "newdata")
        missing = self._rows_missing_a_predictor(newdata, include_re)
        if missing.any():
            complete = ~missing
            kept_offset = None if offset is None else np.asarray(offset, dtype=float)[complete]
            prediction = np.full(len(newdata), np.nan)
            if complete.any():
                prediction[complete] = self._linear_predictor(newdata.loc[complete], include_re, kept_offset)
            return prediction
        design = self.design
        x = design.fixed_builder.build(newdata)
        if design.dropped_fixed:
            keep = [design.fixed_builder.column_names.index(n) for n in design.fixed_names]
            x = x[:, keep]
        prediction = x @ self._beta
        for expression in design.parsed.offsets:
            prediction = prediction + evaluate_expression(expression, newdata)
        if offset is not None:
            prediction = prediction + np.asarray(offset, dtype=float)
        elif design.offset_argument is not None:
            prediction = prediction + evaluate_expression(design.offset_argument, newdata)
        elif design.offset is not None and len(design.parsed.offsets) == 0:
            raise DataError("the model was fitted with an offset array; pass offset= for the new data")
        if include_re:
            for term, values in zip(design.terms, self._ranef):
                z = term.builder.build(newdata)
                codes = term.factor.codes_for(newdata)
                seen = codes >= 0
                contribution = np.zeros(len(newdata))
                contribution[seen] = np.einsum("ij,ij->i", z[seen], values[codes[seen]])
                prediction = prediction + contribution
        return prediction

    def _rows_missing_a_predictor(self, newdata: pd.DataFrame, include_re: bool) -> np.ndarray:
        """Rows of ``newdata`` with a missing value in a column the prediction reads."""
        design = self.design
        names = variables(design.parsed.fixed)
        for expression in design.parsed.offsets:
            names += expression_variables(expression, newdata.columns)
        if design.offset_argument is not None:
            names += expression_variables(design.offset_argument, newdata.columns)
        if include_re:
            for term in design.terms:
                names += variables(term.term.expr) + list(term.factor.columns)
        present = [name for name in dict.fromkeys(names) if name in newdata.columns]
        if not present:
            return np.zeros(len(newdata), dtype=bool)
        return np.asarray(newdata[present].isna().any(axis=1), dtype=bool)

    # ----- display and pickling ---------------------------------------------------------------
    def summary(self, ddf: str | None = None) -> Summary:
        """An lme4-style summary; ``print(m.summary())`` shows it, notebooks render it as HTML.
        The fixed-effects table is lmerTest's for a linear model (``ddf``: ``"satterthwaite"``,
        the default, or ``"kenward-roger"``, as ``summary(m, ddf = ...)``; ``"asymptotic"`` for
        Wald z-tests) and lme4's Wald z-tests for a generalized one.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> str(m.summary()).splitlines()[0]
        'Linear mixed model fit by REML'
        >>> m.summary(ddf="kenward-roger").tables.fixed.columns.tolist()
        ['Estimate', 'Std. Error', 'df', 't value', 'Pr(>|t|)']
        """
        from ..summary import Summary  # the summary layer builds on results: forward to it

        return Summary(self, ddf)

    def confint(self, method: IntervalMethod, level: float = 0.95, *, nsim: int = 500, seed: int | None = None) -> ConfidenceIntervals:
        """Confidence intervals for every parameter, labelled as lme4's ``confint(m, oldNames =
        FALSE)`` (variance parameters, then the fixed effects); see
        :func:`mixedmodels.inference.confint`. ``method`` is ``"Wald"``, ``"profile"`` or
        ``"boot"`` (``nsim`` parametric-bootstrap replicates from ``seed``, percentile intervals).

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.confint(method="Wald").table.loc["Days"].round(2).tolist()
        [7.44, 13.5]
        """
        from ..inference.confidence_intervals import confint  # analyses build on results: forward to them

        return confint(self, method, level, nsim=nsim, seed=seed)

    def profile(self, level: float = 0.99) -> LikelihoodProfile:
        """The likelihood profile of every parameter out to ζ = ±z at ``level`` (lme4's
        ``profile(m)``; an LMM's REML fit is profiled as its ML refit, as lme4);
        see :func:`mixedmodels.inference.profile`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> m.profile().confint(0.95).table.loc["sigma"].round(2).tolist()
        [38.23, 67.66]
        """
        from ..inference.profile import profile  # analyses build on results: forward to them

        return profile(self, level)

    def drop1(self) -> FixedTermDeletion:
        """Likelihood-ratio tests of dropping each fixed-effect term that no other term contains,
        REML fits refitted by ML (lme4's ``drop1(m, test = "Chisq")``); see
        :func:`mixedmodels.inference.drop1`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (1 | Subject)", mm.datasets.load("sleepstudy"), REML=False)
        >>> round(float(m.drop1().table.loc["Days", "LRT"]), 2)
        116.46
        """
        from ..inference.fixed_term_deletion import drop1  # analyses build on results: forward to them

        return drop1(self)

    def simulate(self, nsim: int = 1, seed: int | None = None) -> np.ndarray:
        """``nsim`` responses simulated at the estimates with new random effects, (n, nsim)
        (lme4's ``simulate``; see :func:`mixedmodels.inference.simulate`).

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> m.simulate(nsim=4, seed=1).shape
        (30, 4)
        """
        from ..inference.simulation import simulate  # analyses build on results: forward to them

        return simulate(self, nsim, seed)

    @property
    def plot(self) -> PlotAccessor:
        """The model's plots (residuals, QQ, caterpillar, shrinkage, influence, profile), drawn with
        matplotlib, an optional dependency (``pip install mixedmodels[plot]``); see
        :class:`mixedmodels.plotting.PlotAccessor`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> type(m.plot).__name__
        'PlotAccessor'
        """
        from ..plotting import PlotAccessor  # the plots build on results: forward to them

        return PlotAccessor(self)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __getstate__(self) -> dict[str, Any]:
        # The conditional covariances need the model's factorisation: keep them with the result.
        if self._conditional_covariances is None:
            self._conditional_sds()
        return dict(self.__dict__)
