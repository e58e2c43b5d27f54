"""Results of a linear mixed-model fit: estimates under statsmodels' names where statsmodels has the
concept and lme4's where it does not, an lme4-style ``summary()`` and an HTML view for notebooks.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> round(float(m.params["Days"]), 3), round(m.sigma, 3)
(10.467, 25.592)
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from .design import Design, evaluate_expression
from .errors import DataError

if TYPE_CHECKING:
    from ._core import LinearMixedModel

# lme4's isSingular tolerance on θ components with a lower bound of zero.
SINGULAR_TOLERANCE = 1e-4


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
class LmerResult:
    """A fitted linear mixed model. Create with :func:`mixedmodels.lmer`.

    Example
    -------
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> round(m.llf, 3)
    -159.827
    """

    formula: str
    design: Design
    reml: bool
    data_name: str | None
    theta: np.ndarray
    params: pd.Series
    sigma: float
    _beta_covariance: np.ndarray
    _ranef: list[np.ndarray]
    _objective: float
    _deviance_ml: float
    optimization: OptimizationSummary
    factorization: str
    _fitted_core: np.ndarray
    _model: LinearMixedModel | None = field(default=None, repr=False)
    _conditional_covariances: list[np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def from_core(
        cls, formula: str, design: Design, reml: bool, raw: dict[str, Any], model: LinearMixedModel, data_name: str | None
    ) -> LmerResult:
        optimization = OptimizationSummary(
            theta_start=tuple(float(v) for v in raw["theta_start"]),
            theta=tuple(float(v) for v in raw["theta"]),
            objective=float(raw["objective"]),
            n_evaluations=int(raw["n_evaluations"]),
            status=str(raw["status"]),
            converged=bool(raw["converged"]),
            n_set_to_boundary=int(raw["n_set_to_boundary"]),
            max_evaluations=int(raw["max_evaluations"]),
        )
        return cls(
            formula=formula,
            design=design,
            reml=reml,
            data_name=data_name,
            theta=np.asarray(raw["theta"]),
            params=pd.Series(raw["beta"], index=design.fixed_names, name="params"),
            sigma=float(raw["sigma"]),
            _beta_covariance=np.asarray(raw["beta_covariance"]),
            _ranef=list(raw["ranef"]),
            _objective=float(raw["objective"]),
            _deviance_ml=float(raw["deviance_ml"]),
            optimization=optimization,
            factorization=str(raw["factorization"]),
            _fitted_core=np.asarray(raw["fitted"]),
            _model=model,
        )

    # ----- fixed effects -------------------------------------------------------------------
    def cov_params(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effects estimates, σ̂²(R_X R_Xᵀ)⁻¹ (lme4's ``vcov``)."""
        names = self.design.fixed_names
        return pd.DataFrame(self._beta_covariance, index=names, columns=names)

    @property
    def bse(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self._beta_covariance)), index=self.design.fixed_names, name="bse")

    @property
    def tvalues(self) -> pd.Series:
        """Wald statistics, estimate / standard error."""
        return (self.params / self.bse).rename("tvalues")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided Wald p-values with a standard-normal reference distribution."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=self.design.fixed_names, name="pvalues")

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
        return [self.sigma**2 * factor @ factor.T for factor in self._term_factors()]

    def varcorr(self) -> pd.DataFrame:
        """Variance components as lme4's ``as.data.frame(VarCorr(m))``: one row per variance, one
        per covariance (``sdcor`` holds the correlation), and a ``Residual`` row.

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
        rows.append({"grp": "Residual", "var1": None, "var2": None, "vcov": self.sigma**2, "sdcor": self.sigma})
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
            self._conditional_covariances = list(self._model.conditional_covariances(list(self.theta), self.sigma))
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

    # ----- likelihood ------------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        """Number of observations used in the fit."""
        return self.design.nobs

    @property
    def n_dropped(self) -> int:
        """Rows dropped for missing or non-finite values."""
        return self.design.n_dropped

    @property
    def df_modelwc(self) -> int:
        """Number of estimated parameters: fixed effects, θ, and σ (lme4's ``attr(logLik, "df")``)."""
        return len(self.params) + len(self.theta) + 1

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
    def aic(self) -> float:
        return -2 * self.llf + 2 * self.df_modelwc

    @property
    def bic(self) -> float:
        return -2 * self.llf + math.log(self.nobs) * self.df_modelwc

    @property
    def scale(self) -> float:
        """Residual variance σ̂²."""
        return self.sigma**2

    @property
    def is_singular(self) -> bool:
        """True when a θ component bounded at zero is within 1e-4 of it (lme4's ``isSingular``)."""
        lower_bounded = []
        for term in self.design.terms:
            k = term.k
            lower_bounded += [row == column for column in range(k) for row in range(column, k)]
        return bool(np.any(np.asarray(self.theta)[np.asarray(lower_bounded)] < SINGULAR_TOLERANCE))

    @property
    def converged(self) -> bool:
        return self.optimization.converged

    # ----- fitted values and prediction -------------------------------------------------------
    def _offset(self) -> np.ndarray:
        return self.design.offset if self.design.offset is not None else np.zeros(self.nobs)

    @property
    def fittedvalues(self) -> pd.Series:
        """Conditional fitted values Xβ̂ + Zb̂ (+ offset)."""
        return pd.Series(self._fitted_core + self._offset(), index=self.design.row_index, name="fitted")

    @property
    def fittedvalues_marginal(self) -> pd.Series:
        """Population-level fitted values Xβ̂ (+ offset)."""
        return pd.Series(self.design.x @ self.params.to_numpy() + self._offset(), index=self.design.row_index, name="fitted")

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
        if not isinstance(newdata, pd.DataFrame):
            raise DataError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
        design = self.design
        x = design.fixed_builder.build(newdata)
        if design.dropped_fixed:
            keep = [design.fixed_builder.column_names.index(n) for n in design.fixed_names]
            x = x[:, keep]
        prediction = x @ self.params.to_numpy()
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
        return pd.Series(prediction, index=newdata.index, name="predicted")

    # ----- refitting -------------------------------------------------------------------------
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

    # ----- display ---------------------------------------------------------------------------
    def summary(self) -> Summary:
        """An lme4-style summary; ``print(m.summary())`` shows it, notebooks render it as HTML."""
        return Summary(self)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        kind = "REML" if self.reml else "ML"
        return f"<LmerResult {self.formula!r} fit by {kind}: nobs={self.nobs}, llf={self.llf:.4f}>"

    def __getstate__(self) -> dict[str, Any]:
        if self._conditional_covariances is None and self._model is not None:
            self._conditional_sds()
        state = dict(self.__dict__)
        state["_model"] = None
        return state


class Summary:
    """lme4's ``summary(merMod)`` layout as text (``str``) and HTML (``_repr_html_``)."""

    def __init__(self, result: LmerResult):
        self.result = result

    def _fixed_table(self) -> pd.DataFrame:
        r = self.result
        table = pd.DataFrame(
            {"Estimate": r.params, "Std. Error": r.bse, "t value": r.tvalues, "Pr(>|z|)": r.pvalues}
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
        rows.append(["Residual", "", f"{r.sigma ** 2:.4g}", f"{r.sigma:.4g}", ""])
        return rows

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
        if r.reml:
            lines.append(f"REML criterion at convergence: {r.REMLcrit:.4f}")
        else:
            lines.append(
                f"     AIC      BIC   logLik deviance df.resid\n"
                f"{r.aic:8.1f} {r.bic:8.1f} {r.llf:8.1f} {-2 * r.llf:8.1f} {r.nobs - r.df_modelwc:8d}"
            )
        return lines

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

    def __str__(self) -> str:
        r = self.result
        lines = self._header()
        scaled = r.resid.to_numpy() / r.sigma
        if r.design.weights is not None:
            scaled = scaled * np.sqrt(r.design.weights)
        quantiles = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1])
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
        r = self.result
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
