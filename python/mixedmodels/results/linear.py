"""The result of fitting a linear mixed model (:func:`mixedmodels.lmer`).

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
>>> round(m.llf, 3)
-159.827
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _core
from ..formula.frames import DataFrameLike, as_pandas
from .base import MixedModelResult
from .optimization import OptimizationSummary

if TYPE_CHECKING:
    import numpy.typing as npt

    from ..inference.anova_table import AnovaTable
    from ..inference.kenward_roger import KenwardRogerAdjustment
    from ..inference.random_term_deletion import RandomTermDeletion
    from ..inference.satterthwaite import SatterthwaiteDerivatives
    from ..models.linear import LinearMixedModel


@dataclass
class LmerResult(MixedModelResult):
    """A fitted linear mixed model. Create with :func:`mixedmodels.lmer` or
    :meth:`mixedmodels.models.LinearMixedModel.fit`.

    Example
    -------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> round(m.llf, 3)
    -159.827
    """

    model: LinearMixedModel = field(repr=False)
    reml: bool = True
    _sigma: float = math.nan
    _objective: float = math.nan
    _deviance_ml: float = math.nan
    _fitted_core: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @classmethod
    def from_core(cls, model: LinearMixedModel, fit: _core.LinearFit, reml: bool, max_evaluations: int) -> LmerResult:
        """The result of ``model`` from the core's fit object."""
        return cls(
            model=model,
            theta=np.asarray(fit.theta),
            _beta=np.asarray(fit.beta),
            _beta_covariance=np.asarray(fit.beta_covariance),
            _ranef=list(fit.ranef),
            optimization=OptimizationSummary.from_core(fit, max_evaluations, model.theta_lower_bounds),
            factorization=model.factorization_used,
            reml=reml,
            _sigma=float(fit.sigma),
            _objective=float(fit.objective),
            _deviance_ml=float(fit.deviance_ml),
            _fitted_core=np.asarray(fit.fitted),
        )

    def _variance_scale(self) -> float:
        return self._sigma**2

    def _has_residual_variance(self) -> bool:
        return True

    def _compute_conditional_covariances(self) -> list[np.ndarray]:
        return self.model.conditional_covariances(self.theta, self._sigma)

    def _observed(self) -> np.ndarray:
        return self.design.y

    def _fitted_means(self) -> np.ndarray:
        return self._fitted_core + self._offset()

    def _pearson_scale(self) -> np.ndarray:
        weights = self.design.weights
        return np.ones(self.nobs) if weights is None else np.sqrt(weights)

    def _deviance_residuals(self) -> np.ndarray:
        # Gaussian deviance residuals are the Pearson ones (lme4's lmResp).
        return self.residuals("pearson").to_numpy()

    def _working_residuals(self) -> np.ndarray:
        return self.residuals("response").to_numpy()

    @property
    def sigma(self) -> float:
        """Residual standard deviation σ̂."""
        return self._sigma

    def cov_params(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effects estimates, σ̂²(R_X R_Xᵀ)⁻¹ (lme4's ``vcov``)."""
        return super().cov_params()

    @functools.cached_property
    def satterthwaite(self) -> SatterthwaiteDerivatives:
        """What Satterthwaite's degrees of freedom need (lmerTest's ``vcov_varpar`` and
        ``Jac_list``), computed when first asked for and kept."""
        from ..inference.satterthwaite import SatterthwaiteDerivatives

        return SatterthwaiteDerivatives.of(self)

    @functools.cached_property
    def kenward_roger(self) -> KenwardRogerAdjustment:
        """What Kenward and Roger's method needs (pbkrtest's ``vcovAdj``: the adjusted covariance
        of β̂ and its ingredients), computed when first asked for and kept; REML fits only.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.kenward_roger.adjusted_covariance.shape
        (2, 2)
        """
        from ..inference.kenward_roger import KenwardRogerAdjustment

        return KenwardRogerAdjustment.of(self)

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of t-tests with Satterthwaite's degrees of freedom, as lmerTest's
        ``summary`` (the ``t`` statistics are ``tvalues``, estimate / ``bse``; ``coef_table``
        has the degrees of freedom, and ``coef_table("asymptotic")`` the Wald z-tests).

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> float(m.pvalues["Days"]) > 2e-6
        True
        """
        return pd.Series(self.satterthwaite.coefficient_tests["p_value"], index=self.design.fixed_index, name="pvalues")

    def coef_table(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Tests of every fixed effect: ``estimate``, ``std_error``, ``df``, ``statistic``,
        ``p_value``; ``ddf`` is ``"satterthwaite"`` (lmerTest's t-tests), ``"kenward-roger"``
        (REML fits; pbkrtest's adjusted standard errors and df) or ``"asymptotic"`` (z-tests).

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m.coef_table()["df"].round(2).tolist()
        [17.0, 17.0]
        """
        from ..inference.coefficient_table import coef_table

        return coef_table(self, ddf)

    def contest(
        self,
        L: npt.ArrayLike | pd.DataFrame | pd.Series,
        ddf: str = "satterthwaite",
        level: float = 0.95,
        joint: bool | None = None,
    ) -> pd.DataFrame:
        """Test Lβ = 0 (lmerTest's ``contest``, argument ``L``): one row of L gives a t-test with a
        ``level`` confidence interval, several (or ``joint=True``) a joint F-test; see
        :func:`mixedmodels.inference.contest`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> round(float(m.contest([0, 1])["statistic"].iloc[0]), 3)
        6.771
        """
        from ..inference.contrasts import contest

        return contest(self, L, ddf, level, joint)

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
        return self._sigma**2

    @property
    def fittedvalues(self) -> pd.Series:
        """Conditional fitted values Xβ̂ + Zb̂ (+ offset)."""
        return pd.Series(self._fitted_means(), index=self.design.row_index, name="fitted")

    @property
    def fittedvalues_marginal(self) -> pd.Series:
        """Population-level fitted values Xβ̂ (+ offset)."""
        return pd.Series(self.design.x @ self._beta + self._offset(), index=self.design.row_index, name="fitted")

    @property
    def resid(self) -> pd.Series:
        """Conditional (response) residuals y − Xβ̂ − Zb̂ (− offset); other kinds from
        :meth:`residuals`."""
        return self.residuals("response")

    @property
    def resid_marginal(self) -> pd.Series:
        """Population-level residuals y − Xβ̂ (− offset)."""
        return pd.Series(self.design.y - self.fittedvalues_marginal.to_numpy(), index=self.design.row_index, name="resid")

    def predict(
        self,
        newdata: DataFrameLike | None = None,
        include_re: bool = True,
        offset: np.ndarray | pd.Series | None = None,
    ) -> pd.Series:
        """Predictions on the response scale. ``newdata=None`` gives the fitted values. Levels of a
        grouping factor the model has not seen get random effects 0 (lme4's
        ``allow.new.levels = TRUE``); a missing grouping value is an error. ``newdata`` may be
        a pandas or polars DataFrame or a pyarrow Table; the predictions are a pandas Series
        (indexed 0..n-1 for a polars or Arrow table).

        >>> import mixedmodels as mm
        >>> df = mm.datasets.load("sleepstudy")
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", df)
        >>> new = df.head(2).assign(Subject="new subject")
        >>> bool((m.predict(new) == m.predict(new, include_re=False)).all())
        True
        """
        if newdata is None:
            return self.fittedvalues if include_re else self.fittedvalues_marginal
        frame = as_pandas(newdata, "newdata")
        return pd.Series(self._linear_predictor(frame, include_re, offset), index=frame.index, name="predicted")

    def refit(self, y: np.ndarray | pd.Series, weights: np.ndarray | pd.Series | None = None) -> LmerResult:
        """Fit the same model to a new response (and optionally new weights), reusing everything
        that does not depend on y (lme4's ``refit(m, newresp)``); see
        :meth:`mixedmodels.models.LinearMixedModel.refit`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> m2 = m.refit(m.design.y * 2)
        >>> round(float(m2.params["Days"] / m.params["Days"]), 6)
        2.0
        """
        return self.model.refit(y, weights=weights)

    def anova(self, type: int | str = 3, ddf: str = "satterthwaite") -> AnovaTable:  # noqa: A002 - lmerTest's argument name
        """F-tests of the fixed-effect terms with type 3 (default), 2 or 1 hypotheses and
        Satterthwaite's (or ``ddf="kenward-roger"``, ``"asymptotic"``) denominator df (lmerTest's
        ``anova(m)``); see
        :func:`mixedmodels.inference.anova_table`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> round(float(m.anova().table.loc["Days", "F"]), 2)
        45.85
        """
        from ..inference.anova_table import anova_table  # analyses build on results: forward to them

        return anova_table(self, type, ddf)

    def ranova(self) -> RandomTermDeletion:
        """Likelihood-ratio tests of the random-effect terms, each reduced or removed and the
        model refitted by its own criterion (lmerTest's ``ranova``); see
        :func:`mixedmodels.inference.ranova`.

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
        >>> round(float(m.ranova().table["LRT"].iloc[1]), 3)
        6.369
        """
        from ..inference.random_term_deletion import ranova  # analyses build on results: forward to them

        return ranova(self)

    def __repr__(self) -> str:
        kind = "REML" if self.reml else "ML"
        return f"<LmerResult {self.formula!r} fit by {kind}: nobs={self.nobs}, llf={self.llf:.4f}>"
