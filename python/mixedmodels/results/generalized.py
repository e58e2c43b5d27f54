"""The result of fitting a generalized linear mixed model (:func:`mixedmodels.glmer`).

Example
-------
>>> import mixedmodels as mm
>>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
...              mm.datasets.load("cbpp"), family="binomial")
>>> round(g.llf, 2)
-92.03
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .. import _core
from ..errors import SpecificationError
from ..families import Family, NegativeBinomial
from ..formula.frames import DataFrameLike, as_pandas
from .base import MixedModelResult, ResidualType
from .optimization import OptimizationSummary

if TYPE_CHECKING:
    from ..models.generalized import GeneralizedLinearMixedModel


class _ResponseResiduals(pd.Series):
    """Response residuals that can still be called as the old ``g.resid(type)`` method."""

    _metadata: list[str] = ["_result"]

    @property
    def _constructor(self) -> type[pd.Series]:
        return pd.Series

    def __call__(self, type: ResidualType = "response") -> pd.Series:  # noqa: A002 - lme4's argument name
        warnings.warn(
            "GlmerResult.resid(type) is deprecated: resid is now the response residuals (a property, "
            "as for linear models); use residuals(type) for the other kinds",
            DeprecationWarning,
            stacklevel=2,
        )
        result: GlmerResult = self._result
        return result.residuals(type)


@dataclass
class GlmerResult(MixedModelResult):
    """A fitted generalized linear mixed model. Create with :func:`mixedmodels.glmer` or
    :meth:`mixedmodels.models.GeneralizedLinearMixedModel.fit`.

    Example
    -------
    >>> import mixedmodels as mm
    >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...              mm.datasets.load("cbpp"), family="binomial")
    >>> round(g.llf, 2)
    -92.03
    """

    model: GeneralizedLinearMixedModel = field(repr=False)
    family: Family | None = None
    n_agq: int = 1
    dispersion: float = 1.0
    eta: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    mu: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    _objective: float = math.nan
    _minus_twice_log_likelihood: float = math.nan
    _sum_deviance_residuals: float = math.nan
    _beta_covariance_factor: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    hessian_covariance: bool = True
    pirls_converged: bool = True

    @classmethod
    def from_core(cls, model: GeneralizedLinearMixedModel, fit: _core.GeneralizedFit, max_evaluations: int) -> GlmerResult:
        """The result of ``model`` from the core's fit object."""
        hessian = fit.beta_covariance_hessian
        return cls(
            model=model,
            theta=np.asarray(fit.theta),
            _beta=np.asarray(fit.beta),
            _beta_covariance=np.asarray(hessian if hessian is not None else fit.beta_covariance_factor),
            _ranef=list(fit.ranef),
            optimization=OptimizationSummary.from_core(fit, max_evaluations, model.theta_lower_bounds),
            factorization=model.factorization_used,
            family=model.family,
            n_agq=model.n_agq,
            dispersion=float(fit.dispersion),
            eta=np.asarray(fit.eta),
            mu=np.asarray(fit.mu),
            _objective=float(fit.objective),
            _minus_twice_log_likelihood=float(fit.minus_twice_log_likelihood),
            _sum_deviance_residuals=float(fit.sum_deviance_residuals),
            _beta_covariance_factor=np.asarray(fit.beta_covariance_factor),
            hessian_covariance=hessian is not None,
            pirls_converged=bool(fit.pirls_converged),
        )

    @property
    def y(self) -> np.ndarray:
        """The response as fitted (proportions for a binomial response)."""
        return self.model.response

    @property
    def prior_weights(self) -> np.ndarray:
        """The prior weights as fitted (numbers of trials for a binomial response)."""
        return self.model.prior_weights

    def _family(self) -> Family:
        assert self.family is not None
        return self.family

    def _variance_scale(self) -> float:
        return self.dispersion

    @property
    def df_modelwc(self) -> int:
        """Number of estimated parameters as lme4 counts them: fixed effects, θ, the dispersion
        where the family has one, and the negative binomial's size."""
        return super().df_modelwc + int(isinstance(self.family, NegativeBinomial))

    def _has_residual_variance(self) -> bool:
        return self._family().has_dispersion

    def _compute_conditional_covariances(self) -> list[np.ndarray]:
        return self.model.conditional_covariances(self.theta, self._beta, self.dispersion)

    def _observed(self) -> np.ndarray:
        return self.y

    def _fitted_means(self) -> np.ndarray:
        return self.mu

    def _pearson_scale(self) -> np.ndarray:
        return np.sqrt(self.prior_weights) / np.sqrt(self._family().variance(self.mu))

    def _deviance_residuals(self) -> np.ndarray:
        y, mu, w = self.y, self.mu, self.prior_weights
        return np.sign(y - mu) * np.sqrt(np.maximum(self._family().deviance_residuals(y, mu, w), 0.0))

    def _working_residuals(self) -> np.ndarray:
        return (self.y - self.mu) / self._family().mu_eta(self.eta)

    def residuals(self, type: ResidualType = "deviance", scaled: bool = False) -> pd.Series:  # noqa: A002 - lme4's argument name
        """Residuals as lme4's ``residuals(m, type, scaled)``, deviance residuals by default as
        in lme4: ``deviance``, ``response`` (y − μ̂), ``pearson`` ((y − μ̂)√w / √V(μ̂)) or
        ``working`` ((y − μ̂) / μ'(η̂)); ``scaled=True`` divides by σ̂ (√dispersion).

        >>> import mixedmodels as mm
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
        ...              mm.datasets.load("cbpp"), family="binomial")
        >>> g.residuals("pearson").shape
        (56,)
        """
        return super().residuals(type, scaled)

    @property
    def resid(self) -> pd.Series:
        """Response residuals y − μ̂ (as for linear models); other kinds from :meth:`residuals`.
        Calling it as the former method, ``g.resid("pearson")``, still works but is deprecated."""
        series = _ResponseResiduals(self.y - self.mu, index=self.design.row_index, name="resid")
        series._result = self
        return series

    def coef_table(self, ddf: str = "asymptotic") -> pd.DataFrame:
        """Wald z-tests of every fixed effect (lme4's ``summary``): ``estimate``, ``std_error``,
        ``df`` (infinite), ``statistic``, ``p_value``; ``"asymptotic"`` is the only ``ddf``.

        >>> import mixedmodels as mm
        >>> cbpp = mm.datasets.load("cbpp")
        >>> m = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
        >>> m.coef_table().columns.tolist()
        ['estimate', 'std_error', 'df', 'statistic', 'p_value']
        """
        from ..inference.coefficient_table import coef_table

        return coef_table(self, ddf)

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
        if method not in (None, "hessian", "factor"):
            raise SpecificationError(f"method must be 'hessian' or 'factor', not {method!r}")
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
    def fittedvalues(self) -> pd.Series:
        """Conditional fitted means μ̂ = g⁻¹(Xβ̂ + Zb̂ + offset) (proportions for the binomial)."""
        return pd.Series(self.mu, index=self.design.row_index, name="fitted")

    def predict(
        self,
        newdata: DataFrameLike | None = None,
        type: Literal["link", "response"] = "link",  # noqa: A002 - lme4's argument name
        include_re: bool = True,
        offset: np.ndarray | pd.Series | None = None,
    ) -> pd.Series:
        """Predictions on the link (default, as lme4) or the response scale. New levels of a
        grouping factor get random effects 0; ``include_re=False`` gives population-level
        predictions. ``newdata`` may be a pandas or polars DataFrame or a pyarrow Table; the
        predictions are a pandas Series (indexed 0..n-1 for a polars or Arrow table).

        >>> import mixedmodels as mm
        >>> cbpp = mm.datasets.load("cbpp")
        >>> g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
        >>> bool(((g.predict(cbpp, type="response") > 0) & (g.predict(cbpp, type="response") < 1)).all())
        True
        """
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', not {type!r}")
        if newdata is None:
            if include_re:
                eta = self.eta
            else:
                eta = self.design.x @ self._beta + self._offset()
            index = self.design.row_index
        else:
            frame = as_pandas(newdata, "newdata")
            eta = self._linear_predictor(frame, include_re, offset)
            index = frame.index
        values = eta if type == "link" else self._family().inverse_link(eta)
        return pd.Series(values, index=index, name="predicted")

    def refit(self, y: np.ndarray | pd.Series | pd.DataFrame) -> GlmerResult:
        """Fit the same model to a new response (lme4's ``refit(m, newresp)``): on the scale of
        :attr:`y`, or for the binomial a two-column array of successes and failures; see
        :meth:`mixedmodels.models.GeneralizedLinearMixedModel.with_response`.

        >>> import mixedmodels as mm
        >>> cbpp = mm.datasets.load("cbpp")
        >>> g = mm.glmer("incidence / size ~ period + (1 | herd)", cbpp, family="binomial", weights="size")
        >>> round(g.refit(g.y).llf - g.llf, 9)
        0.0
        """
        return self.model.refit(y)

    def __repr__(self) -> str:
        family = self._family()
        return f"<GlmerResult {self.formula!r} ({family.display_name}, {family.link}): nobs={self.nobs}, llf={self.llf:.4f}>"
