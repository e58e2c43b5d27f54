"""Results of mixed-model fits: estimates under statsmodels' names where statsmodels has the concept
and lme4's where it does not, lme4-style ``summary()`` layouts and an HTML view for notebooks.
:class:`LmerResult` (linear) and :class:`GlmerResult` (generalized) share
:class:`MixedModelResult`.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(float(m.params["Days"]), 3), round(m.sigma, 3)
(10.467, 25.592)
"""

from __future__ import annotations

import functools
import html
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from .design import Design, evaluate_expression
from .errors import DataError

if TYPE_CHECKING:
    from . import _core
    from .families import Family

# lme4's isSingular tolerance on θ components with a lower bound of zero.
SINGULAR_TOLERANCE = 1e-4

ResidualType = Literal["response", "deviance", "pearson", "working"]


@dataclass(frozen=True)
class OptimizationSummary:
    """What the optimiser did (lme4's ``optinfo``, MixedModels.jl's ``OptSummary``)."""

    theta_start: tuple[float, ...]
    theta: tuple[float, ...]
    objective: float
    n_evaluations: int
    status: str
    converged: bool
    n_set_to_boundary: int
    max_evaluations: int

    @classmethod
    def from_core(cls, raw: _core.LinearFit | _core.GeneralizedFit, max_evaluations: int) -> OptimizationSummary:
        return cls(
            theta_start=tuple(np.asarray(raw.theta_start, dtype=float).tolist()),
            theta=tuple(np.asarray(raw.theta, dtype=float).tolist()),
            objective=float(raw.objective),
            n_evaluations=int(raw.n_evaluations),
            status=str(raw.status),
            converged=bool(raw.converged),
            n_set_to_boundary=int(raw.n_set_to_boundary),
            max_evaluations=max_evaluations,
        )


def display_name(name: str) -> str:
    """lme4's spelling of a patsy column name, for tables: ``Intercept`` → ``(Intercept)``."""
    return "(Intercept)" if name == "Intercept" else name


def _make_unique(names: list[str]) -> list[str]:
    """R's ``make.unique``: later duplicates get ``.1``, ``.2``, ... (lme4's VarCorr group names)."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        if name in seen:
            seen[name] += 1
            unique.append(f"{name}.{seen[name]}")
        else:
            seen[name] = 0
            unique.append(name)
    return unique


@dataclass
class MixedModelResult:
    """What linear and generalized mixed-model fits have in common."""

    formula: str
    design: Design
    data_name: str | None
    theta: np.ndarray
    _beta: np.ndarray
    _beta_covariance: np.ndarray
    _ranef: list[np.ndarray]
    optimization: OptimizationSummary
    factorization: str
    _model: Any = field(default=None, repr=False)
    _conditional_covariances: list[np.ndarray] | None = field(default=None, repr=False)

    # ----- what subclasses define ----------------------------------------------------------
    def _variance_scale(self) -> float:
        """The factor between λλᵀ and the random effects' covariance (σ² or the dispersion)."""
        raise NotImplementedError

    def _has_residual_variance(self) -> bool:
        raise NotImplementedError

    def _compute_conditional_covariances(self) -> list[np.ndarray]:
        raise NotImplementedError

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
        z = stats.norm.ppf(1 - alpha / 2)
        half = z * self.bse
        return pd.DataFrame({"lower": self.params - half, "upper": self.params + half})

    # ----- variance components ---------------------------------------------------------------
    def _term_factors(self) -> list[np.ndarray]:
        """Each term's λ (k×k lower triangular) from θ."""
        factors = []
        next_theta = 0
        for term in self.design.terms:
            k = term.k
            factor = np.zeros((k, k))
            rows, cols = np.tril_indices(k)
            order = np.lexsort((rows, cols))  # θ lists the lower triangle column by column
            count = k * (k + 1) // 2
            factor[rows[order], cols[order]] = self.theta[next_theta : next_theta + count]
            next_theta += count
            factors.append(factor)
        return factors

    def _term_covariances(self) -> list[np.ndarray]:
        scale = self._variance_scale()
        return [scale * factor @ factor.T for factor in self._term_factors()]

    def _residual_sd(self) -> float:
        return math.sqrt(self._variance_scale())

    def varcorr(self) -> pd.DataFrame:
        """Variance components as lme4's ``as.data.frame(VarCorr(m))``: one row per variance, one
        per covariance (``sdcor`` holds the correlation), and a ``Residual`` row for models with
        a residual variance.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.varcorr()["grp"].tolist()
        ['Subject', 'Subject', 'Subject', 'Residual']
        """
        rows: list[dict[str, Any]] = []
        groups = _make_unique([term.group_name for term in self.design.terms])
        for group, term, covariance in zip(groups, self.design.terms, self._term_covariances()):
            names = [display_name(n) for n in term.column_names]
            sd = np.sqrt(np.diag(covariance))
            for i, name in enumerate(names):
                rows.append({"grp": group, "var1": name, "var2": None, "vcov": covariance[i, i], "sdcor": sd[i]})
            for j in range(len(names)):
                for i in range(j + 1, len(names)):
                    denominator = sd[i] * sd[j]
                    correlation = covariance[i, j] / denominator if denominator > 0 else math.nan
                    rows.append(
                        {"grp": group, "var1": names[j], "var2": names[i], "vcov": covariance[i, j], "sdcor": correlation}
                    )
        if self._has_residual_variance():
            sd = self._residual_sd()
            rows.append({"grp": "Residual", "var1": None, "var2": None, "vcov": sd**2, "sdcor": sd})
        # Object columns keep None (lme4's NA) rather than pandas' string NaN.
        return pd.DataFrame(
            {
                "grp": pd.Series([r["grp"] for r in rows], dtype=object),
                "var1": pd.Series([r["var1"] for r in rows], dtype=object),
                "var2": pd.Series([r["var2"] for r in rows], dtype=object),
                "vcov": [r["vcov"] for r in rows],
                "sdcor": [r["sdcor"] for r in rows],
            }
        )

    @property
    def variance_components(self) -> dict[str, float]:
        """Variance of each scalar random-effects term by grouping factor (VarCorr group names)."""
        groups = _make_unique([term.group_name for term in self.design.terms])
        return {
            group: float(covariance[0, 0])
            for group, term, covariance in zip(groups, self.design.terms, self._term_covariances())
            if term.k == 1
        }

    # ----- random effects --------------------------------------------------------------------
    def _conditional_sds(self) -> list[np.ndarray]:
        if self._conditional_covariances is None:
            if self._model is None:
                raise DataError("conditional variances are unavailable: this result was unpickled without them")
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
        raise NotImplementedError

    @property
    def df_modelwc(self) -> int:
        """Number of estimated parameters (lme4's ``attr(logLik, "df")``)."""
        return len(self._beta) + len(self.theta) + int(self._has_residual_variance())

    @property
    def aic(self) -> float:
        return -2 * self.llf + 2 * self.df_modelwc

    @property
    def bic(self) -> float:
        return -2 * self.llf + math.log(self.nobs) * self.df_modelwc

    @property
    def is_singular(self) -> bool:
        """True when a θ component bounded at zero is within 1e-4 of it (lme4's ``isSingular``)."""
        # θ lists each term's λ column by column, lower triangle; diagonal entries are bounded.
        theta = self.theta.tolist()
        position = 0
        for term in self.design.terms:
            for column in range(term.k):
                if theta[position] < SINGULAR_TOLERANCE:
                    return True
                position += term.k - column
        return False

    @property
    def converged(self) -> bool:
        return self.optimization.converged

    # ----- prediction ------------------------------------------------------------------------
    def _offset(self) -> np.ndarray:
        return self.design.offset if self.design.offset is not None else np.zeros(self.nobs)

    def _linear_predictor(self, newdata: pd.DataFrame, include_re: bool, offset: np.ndarray | pd.Series | None) -> np.ndarray:
        """η on new data: Xβ̂ (+ offsets) (+ Zb̂, new levels contributing 0)."""
        if not isinstance(newdata, pd.DataFrame):
            raise DataError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
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

    # ----- display and pickling ---------------------------------------------------------------
    def summary(self) -> Summary:
        """An lme4-style summary; ``print(m.summary())`` shows it, notebooks render it as HTML."""
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __getstate__(self) -> dict[str, Any]:
        if self._conditional_covariances is None and self._model is not None:
            self._conditional_sds()
        state = dict(self.__dict__)
        state["_model"] = None
        return state


@dataclass
class LmerResult(MixedModelResult):
    """A fitted linear mixed model. Create with :func:`mixedmodels.lmer`.

    Example
    -------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> round(m.llf, 3)
    -159.827
    """

    reml: bool = True
    sigma: float = math.nan
    _objective: float = math.nan
    _deviance_ml: float = math.nan
    _fitted_core: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @classmethod
    def from_core(
        cls,
        formula: str,
        design: Design,
        reml: bool,
        raw: _core.LinearFit,
        model: Any,
        data_name: str | None,
        max_evaluations: int,
    ) -> LmerResult:
        return cls(
            formula=formula,
            design=design,
            data_name=data_name,
            theta=np.asarray(raw.theta),
            _beta=np.asarray(raw.beta),
            _beta_covariance=np.asarray(raw.beta_covariance),
            _ranef=list(raw.ranef),
            optimization=OptimizationSummary.from_core(raw, max_evaluations),
            factorization="sparse" if model.is_sparse else "blocked",
            _model=model,
            reml=reml,
            sigma=float(raw.sigma),
            _objective=float(raw.objective),
            _deviance_ml=float(raw.deviance_ml),
            _fitted_core=np.asarray(raw.fitted),
        )

    def _variance_scale(self) -> float:
        return self.sigma**2

    def _has_residual_variance(self) -> bool:
        return True

    def _compute_conditional_covariances(self) -> list[np.ndarray]:
        return list(self._model.conditional_covariances(list(self.theta), self.sigma))

    def cov_params(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effects estimates, σ̂²(R_X R_Xᵀ)⁻¹ (lme4's ``vcov``)."""
        return super().cov_params()

    @property
    def llf(self) -> float:
        """Log-likelihood at the estimates; the REML log-likelihood for REML fits, as in lme4."""
        return -self._objective / 2

    @property
    def REMLcrit(self) -> float | None:
        """The REML criterion at the optimum (``None`` for ML fits)."""
        return self._objective if self.reml else None

    @property
    def deviance(self) -> float:
        """lme4's ``deviance(m)``: the REML criterion for REML fits, −2 log L for ML fits."""
        return self._objective

    @property
    def deviance_ml(self) -> float:
        """−2 log-likelihood (ML) at the estimates, whatever the criterion (``deviance(m, REML=FALSE)``)."""
        return self._deviance_ml

    @property
    def scale(self) -> float:
        """Residual variance σ̂²."""
        return self.sigma**2

    @property
    def fittedvalues(self) -> pd.Series:
        """Conditional fitted values Xβ̂ + Zb̂ (+ offset)."""
        return pd.Series(self._fitted_core + self._offset(), index=self.design.row_index, name="fitted")

    @property
    def fittedvalues_marginal(self) -> pd.Series:
        """Population-level fitted values Xβ̂ (+ offset)."""
        return pd.Series(self.design.x @ self._beta + self._offset(), index=self.design.row_index, name="fitted")

    @property
    def resid(self) -> pd.Series:
        """Conditional residuals y − Xβ̂ − Zb̂ (− offset)."""
        return pd.Series(self.design.y - self.fittedvalues.to_numpy(), index=self.design.row_index, name="resid")

    @property
    def resid_marginal(self) -> pd.Series:
        """Population-level residuals y − Xβ̂ (− offset)."""
        return pd.Series(self.design.y - self.fittedvalues_marginal.to_numpy(), index=self.design.row_index, name="resid")

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        include_re: bool = True,
        offset: np.ndarray | pd.Series | None = None,
    ) -> pd.Series:
        """Predictions on the response scale. ``newdata=None`` gives the fitted values. Levels of a
        grouping factor the model has not seen get random effects 0 (lme4's
        ``allow.new.levels = TRUE``); a missing grouping value is an error.

        >>> import mixedmodels as mm
        >>> df = mm.datasets.load("sleepstudy")
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", df)
        >>> new = df.head(2).assign(Subject="new subject")
        >>> bool((m.predict(new) == m.predict(new, include_re=False)).all())
        True
        """
        if newdata is None:
            return self.fittedvalues if include_re else self.fittedvalues_marginal
        return pd.Series(self._linear_predictor(newdata, include_re, offset), index=newdata.index, name="predicted")

    def refit(self, y: np.ndarray | pd.Series, weights: np.ndarray | pd.Series | None = None) -> LmerResult:
        """Fit the same model to a new response (and optionally new weights), reusing everything
        that does not depend on y (lme4's ``refit(m, newresp)``).

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m2 = m.refit(m.design.y * 2)
        >>> round(float(m2.params["Days"] / m.params["Days"]), 6)
        2.0
        """
        from .lmer import fit_design

        return fit_design(
            self.formula,
            self.design,
            self.reml,
            y=y,
            weights=weights,
            model=self._model,
            data_name=self.data_name,
            max_evaluations=self.optimization.max_evaluations,
            factorization=self.factorization,  # type: ignore[arg-type]
        )

    def summary(self) -> LmerSummary:
        """An lme4-style summary; ``print(m.summary())`` shows it, notebooks render it as HTML."""
        return LmerSummary(self)

    def __repr__(self) -> str:
        kind = "REML" if self.reml else "ML"
        return f"<LmerResult {self.formula!r} fit by {kind}: nobs={self.nobs}, llf={self.llf:.4f}>"


@dataclass
class GlmerResult(MixedModelResult):
    """A fitted generalized linear mixed model. Create with :func:`mixedmodels.glmer`.

    Example
    -------
    >>> import mixedmodels as mm
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> round(g.llf, 2)
    -92.03
    """

    family: Family | None = None
    n_agq: int = 1
    dispersion: float = 1.0
    y: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    prior_weights: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    eta: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    mu: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    _objective: float = math.nan
    _minus_twice_log_likelihood: float = math.nan
    _sum_deviance_residuals: float = math.nan
    _beta_covariance_factor: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    hessian_covariance: bool = True
    pirls_converged: bool = True

    def _variance_scale(self) -> float:
        return self.dispersion

    @property
    def df_modelwc(self) -> int:
        """Number of estimated parameters as lme4 counts them: fixed effects, θ, the dispersion
        where the family has one, and the negative binomial's size."""
        from .families import NegativeBinomial

        return super().df_modelwc + int(isinstance(self.family, NegativeBinomial))

    def _has_residual_variance(self) -> bool:
        assert self.family is not None
        return self.family.has_dispersion

    def _compute_conditional_covariances(self) -> list[np.ndarray]:
        return list(self._model.conditional_covariances(list(self.theta), self._beta.tolist(), self.dispersion))

    def cov_params(self, method: Literal["hessian", "factor"] | None = None) -> pd.DataFrame:
        """Covariance of the fixed effects. By default, as lme4's ``vcov``, from the
        finite-difference Hessian of the objective in (θ, β) (``method="hessian"``; for nAGQ = 0
        fits, or when that Hessian is not positive definite, the factor-based one is used and
        ``hessian_covariance`` is False); ``method="factor"`` gives lme4's
        ``vcov(use.hessian = FALSE)``, dispersion · (R_X R_Xᵀ)⁻¹ at the conditional modes.

        >>> import mixedmodels as mm
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mm.datasets.load("cbpp"), family="binomial")
        >>> g.cov_params().shape
        (4, 4)
        """
        names = self.design.fixed_index
        matrix = self._beta_covariance_factor if method == "factor" else self._beta_covariance
        return pd.DataFrame(matrix, index=names, columns=names)

    @property
    def llf(self) -> float:
        """Log-likelihood at the estimates, with all data constants (as lme4's ``logLik`` for the
        Laplace approximation; for nAGQ > 1 the full value, comparable across nAGQ)."""
        return -self._minus_twice_log_likelihood / 2

    @property
    def deviance(self) -> float:
        """lme4's ``deviance(m)`` for a GLMM: the sum of the squared deviance residuals at the
        conditional modes."""
        return self._sum_deviance_residuals

    @property
    def objective(self) -> float:
        """The optimised criterion: the Laplace (or adaptive Gauss–Hermite) deviance."""
        return self._objective

    @property
    def scale(self) -> float:
        """The dispersion (1 for the binomial, Poisson and negative binomial families)."""
        return self.dispersion

    @property
    def sigma(self) -> float:
        """√dispersion (lme4's ``sigma(m)``)."""
        return math.sqrt(self.dispersion)

    @property
    def fittedvalues(self) -> pd.Series:
        """Conditional fitted means μ̂ = g⁻¹(Xβ̂ + Zb̂ + offset) (proportions for the binomial)."""
        return pd.Series(self.mu, index=self.design.row_index, name="fitted")

    def resid(self, type: ResidualType = "response") -> pd.Series:  # noqa: A002 - lme4's argument name
        """Residuals of the given ``type``: ``response`` (y − μ̂), ``deviance``, ``pearson``
        ((y − μ̂)√w / √V(μ̂)), or ``working`` ((y − μ̂) / μ'(η̂)).

        >>> import mixedmodels as mm
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mm.datasets.load("cbpp"), family="binomial")
        >>> g.resid("pearson").shape
        (56,)
        """
        assert self.family is not None
        y, mu, w = self.y, self.mu, self.prior_weights
        if type == "response":
            values = y - mu
        elif type == "deviance":
            values = np.sign(y - mu) * np.sqrt(np.maximum(self.family.deviance_residuals(y, mu, w), 0.0))
        elif type == "pearson":
            values = (y - mu) * np.sqrt(w) / np.sqrt(self.family.variance(mu))
        elif type == "working":
            values = (y - mu) / self.family.mu_eta(self.eta)
        else:
            raise ValueError(f"type must be 'response', 'deviance', 'pearson' or 'working', not {type!r}")
        return pd.Series(values, index=self.design.row_index, name="resid")

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        type: Literal["link", "response"] = "link",  # noqa: A002 - lme4's argument name
        include_re: bool = True,
        offset: np.ndarray | pd.Series | None = None,
    ) -> pd.Series:
        """Predictions on the link (default, as lme4) or the response scale. New levels of a
        grouping factor get random effects 0; ``include_re=False`` gives population-level
        predictions.

        >>> import mixedmodels as mm
        >>> cbpp = mm.datasets.load("cbpp")
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
        >>> bool(((g.predict(cbpp, type="response") > 0) & (g.predict(cbpp, type="response") < 1)).all())
        True
        """
        assert self.family is not None
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', not {type!r}")
        if newdata is None:
            if include_re:
                eta = self.eta
            else:
                eta = self.design.x @ self._beta + self._offset()
            index = self.design.row_index
        else:
            eta = self._linear_predictor(newdata, include_re, offset)
            index = newdata.index
        values = eta if type == "link" else self.family.inverse_link(eta)
        return pd.Series(values, index=index, name="predicted")

    def summary(self) -> GlmerSummary:
        """An lme4-style glmer summary; ``print(g.summary())`` shows it, notebooks render HTML."""
        return GlmerSummary(self)

    def __repr__(self) -> str:
        assert self.family is not None
        return f"<GlmerResult {self.formula!r} ({self.family.display_name}, {self.family.link}): nobs={self.nobs}, llf={self.llf:.4f}>"


class Summary:
    """lme4's ``summary(merMod)`` layout as text (``str``) and HTML (``_repr_html_``)."""

    statistic_name = "t value"

    def __init__(self, result: MixedModelResult):
        self.result = result

    def _header(self) -> list[str]:
        raise NotImplementedError

    def _scaled_residuals(self) -> np.ndarray:
        raise NotImplementedError

    def _fixed_table(self) -> pd.DataFrame:
        r = self.result
        table = pd.DataFrame(
            {"Estimate": r.params, "Std. Error": r.bse, self.statistic_name: r.tvalues, "Pr(>|z|)": r.pvalues}
        )
        table.index = [display_name(n) for n in table.index]
        return table

    def _random_table(self) -> list[list[str]]:
        r = self.result
        rows = []
        groups = _make_unique([term.group_name for term in r.design.terms])
        for group, term, covariance in zip(groups, r.design.terms, r._term_covariances()):
            sd = np.sqrt(np.diag(covariance))
            for i, name in enumerate(term.column_names):
                correlations = []
                for j in range(i):
                    denominator = sd[i] * sd[j]
                    correlations.append(f"{covariance[i, j] / denominator:.2f}" if denominator > 0 else "NaN")
                rows.append([group if i == 0 else "", display_name(name), f"{covariance[i, i]:.4g}", f"{sd[i]:.4g}", " ".join(correlations)])
        if r._has_residual_variance():
            sd = r._residual_sd()
            rows.append(["Residual", "", f"{sd ** 2:.4g}", f"{sd:.4g}", ""])
        return rows

    def _groups_line(self) -> str:
        r = self.result
        seen: dict[str, int] = {}
        for term in r.design.terms:
            seen.setdefault(term.group_name, term.n_levels)
        groups = ", ".join(f"{name}, {count}" for name, count in seen.items())
        dropped = f" ({r.n_dropped} rows with missing values dropped)" if r.n_dropped else ""
        return f"Number of obs: {r.nobs}, groups:  {groups}{dropped}"

    def _notes(self) -> list[str]:
        r = self.result
        notes = ["p-values: Wald z-tests (normal reference distribution)."]
        if r.design.dropped_fixed:
            notes.append(f"fixed-effect model matrix is rank deficient: dropped {', '.join(r.design.dropped_fixed)}")
        if r.is_singular:
            notes.append("boundary (singular) fit: a variance is (near) zero or a correlation is (near) +-1")
        if not r.converged:
            notes.append(f"optimizer did not converge: {r.optimization.status}")
        return notes

    def _information_criteria(self) -> str:
        r = self.result
        return (
            f"     AIC      BIC   logLik deviance df.resid\n"
            f"{r.aic:8.1f} {r.bic:8.1f} {r.llf:8.1f} {-2 * r.llf:8.1f} {r.nobs - r.df_modelwc:8d}"
        )

    def __str__(self) -> str:
        r = self.result
        lines = self._header()
        quantiles = np.quantile(self._scaled_residuals(), [0, 0.25, 0.5, 0.75, 1])
        lines += ["", "Scaled residuals:", "     Min       1Q   Median       3Q      Max"]
        lines.append(" ".join(f"{q:8.4f}" for q in quantiles))
        lines += ["", "Random effects:"]
        table = [["Groups", "Name", "Variance", "Std.Dev.", "Corr"]] + self._random_table()
        widths = [max(len(row[c]) for row in table) for c in range(5)]
        for row in table:
            lines.append(" " + " ".join(cell.ljust(widths[c]) if c < 2 else cell.rjust(widths[c]) for c, cell in enumerate(row)).rstrip())
        lines.append(self._groups_line())
        lines += ["", "Fixed effects:", self._fixed_table().to_string(float_format=lambda v: f"{v:.4g}")]
        if len(r.params) > 1:
            correlation = r.cov_params().to_numpy()
            sd = np.sqrt(np.diag(correlation))
            correlation = correlation / np.outer(sd, sd)
            names = [display_name(n) for n in r.params.index]
            short = [n[:6] for n in names[:-1]]
            lines += ["", "Correlation of Fixed Effects:"]
            width = max(len(n) for n in names)
            lines.append(" " * (width + 1) + " ".join(s.rjust(6) for s in short))
            for i in range(1, len(names)):
                cells = [f"{correlation[i, j]:6.3f}" for j in range(i)]
                lines.append(names[i].ljust(width) + " " + " ".join(cells))
        lines += [""] + self._notes()
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        header = "<br>".join(html.escape(line) for line in self._header() if line)
        random = pd.DataFrame(self._random_table(), columns=["Groups", "Name", "Variance", "Std.Dev.", "Corr"])
        notes = "<br>".join(html.escape(n) for n in self._notes())
        return (
            f"<div><p><b>{header}</b></p>"
            f"<p><b>Random effects</b></p>{random.to_html(index=False)}"
            f"<p>{html.escape(self._groups_line())}</p>"
            f"<p><b>Fixed effects</b></p>{self._fixed_table().to_html(float_format=lambda v: f'{v:.4g}')}"
            f"<p><small>{notes}</small></p></div>"
        )


class LmerSummary(Summary):
    """lme4's ``summary()`` of an ``lmer`` fit."""

    result: LmerResult

    def _header(self) -> list[str]:
        r = self.result
        method = "REML" if r.reml else "maximum likelihood"
        lines = [f"Linear mixed model fit by {method}", f"Formula: {r.formula}"]
        if r.data_name:
            lines.append(f"   Data: {r.data_name}")
        if r.design.weights_argument or r.design.weights is not None:
            lines.append(f"Weights: {r.design.weights_argument or '<array>'}")
        if r.design.offset_argument:
            lines.append(f" Offset: {r.design.offset_argument}")
        lines.append("")
        lines.append(f"REML criterion at convergence: {r.REMLcrit:.4f}" if r.reml else self._information_criteria())
        return lines

    def _scaled_residuals(self) -> np.ndarray:
        r = self.result
        scaled = r.resid.to_numpy() / r.sigma
        if r.design.weights is not None:
            scaled = scaled * np.sqrt(r.design.weights)
        return scaled


class GlmerSummary(Summary):
    """lme4's ``summary()`` of a ``glmer`` fit."""

    statistic_name = "z value"
    result: GlmerResult

    def _header(self) -> list[str]:
        r = self.result
        assert r.family is not None
        method = "Laplace Approximation" if r.n_agq <= 1 else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {r.n_agq}"
        if r.n_agq == 0:
            method = "nAGQ = 0 (PIRLS estimate of the fixed effects)"
        lines = [
            f"Generalized linear mixed model fit by maximum likelihood ({method})",
            f" Family: {r.family.display_name}  ( {r.family.link} )",
            f"Formula: {r.formula}",
        ]
        if r.data_name:
            lines.append(f"   Data: {r.data_name}")
        if r.design.weights_argument:
            lines.append(f"Weights: {r.design.weights_argument}")
        lines += ["", self._information_criteria()]
        return lines

    def _scaled_residuals(self) -> np.ndarray:
        return self.result.resid("pearson").to_numpy() / self.result.sigma

    def _notes(self) -> list[str]:
        notes = super()._notes()
        if not self.result.pirls_converged:
            notes.append("PIRLS did not converge at the estimates")
        if not self.result.hessian_covariance:
            notes.append("standard errors from the factorisation at the modes (no Hessian in (theta, beta))")
        return notes
