"""The result of :meth:`mixedmodels.compat.statsmodels.MixedLM.fit`: an lme4 fit
(:class:`~mixedmodels.LmerResult`) read out with statsmodels' ``MixedLMResults`` names, shapes
and conventions, and its summary in statsmodels' layout.

Example
-------
>>> import mixedmodels as mm
>>> import mixedmodels.compat.statsmodels as smf
>>> df = mm.datasets.load("sleepstudy")
>>> r = smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit()
>>> round(r.scale, 2), round(float(r.cov_re.iloc[0, 0]), 2)
(960.46, 1378.18)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import SpecificationError
from ..results.variance_components import relative_covariance_factors

if TYPE_CHECKING:
    from ..results import LmerResult
    from .statsmodels import MixedLM


@dataclass
class VarianceComponent:
    """One ``vc_formula`` entry as an lme4 term. Its formula's columns get independent random
    coefficients of one variance within each group; when each row has at most one non-zero
    column (``"0 + C(classroom)"``) or there is one column (``"0 + x"``), that is lme4's scalar
    term ``(0 + value | level)`` with ``level`` the (group, column) pair of the row's non-zero
    column and ``value`` its entry; ``(1 | level)`` when every entry is 1, lme4's
    ``(1 | group:classroom)``. Several non-zero columns in a row would need several lme4
    terms with one shared variance, which lme4 cannot state: refused.

    >>> m = pd.DataFrame({"C(c)[a]": [1.0, 0.0, 1.0], "C(c)[b]": [0.0, 1.0, 0.0]})
    >>> vc = VarianceComponent.of("c", m, np.array([0, 0, 1]), "level", "value")
    >>> vc.levels.tolist(), vc.term
    ([0.0, 1.0, 2.0], '(1 | level)')
    """

    name: str
    column_names: list[str]
    level_column: str
    value_column: str
    levels: np.ndarray  # group code × columns + column, NaN where the row is incomplete
    values: np.ndarray
    nonzero: np.ndarray  # whether the row has a non-zero column

    @classmethod
    def of(cls, name: str, matrix: pd.DataFrame, group_codes: np.ndarray, level_column: str, value_column: str) -> VarianceComponent:
        """The component ``name`` from its formula's model matrix (NaN rows: incomplete)."""
        w = matrix.to_numpy(dtype=float)
        m = w.shape[1]
        if m == 0:
            raise SpecificationError(f"vc_formula[{name!r}] has no columns")
        complete = ~np.isnan(w).any(axis=1) & (group_codes >= 0)
        nonzero = (w != 0) & complete[:, None]
        if m > 1 and (nonzero.sum(axis=1) > 1).any():
            raise SpecificationError(
                f"vc_formula[{name!r}] gives some rows several non-zero columns sharing one variance, which an lme4 model "
                "cannot state: use '0 + C(factor)' (nested random intercepts), one vc_formula entry per column, or re_formula"
            )
        column = np.argmax(nonzero, axis=1)
        values = np.where(complete, w[np.arange(len(w)), column], np.nan)
        levels = np.where(complete, group_codes * m + column, np.nan)
        return cls(name, [str(c) for c in matrix.columns], level_column, value_column, levels, values, nonzero.any(axis=1))

    @property
    def size(self) -> int:
        return len(self.column_names)

    @property
    def term(self) -> str:
        """The lme4 term."""
        entries = self.values[~np.isnan(self.values)]
        if np.all(entries == 1):
            return f"(1 | {self.level_column})"
        return f"(0 + {self.value_column} | {self.level_column})"


@dataclass
class RandomStructure:
    """statsmodels' random effects of a model, as the lme4 terms on helper columns that fit it:
    the group's random coefficients (``re_columns``, statsmodels' ``re_names``) and the
    variance components.

    >>> s = RandomStructure("g", "G", [1, 2], np.array([0, 1]), ["g", "x"], ["R0", "R1"], [])
    >>> s.terms(independent=False), s.terms(independent=True)
    (['(0 + R0 + R1 | G)'], ['(0 + R0 | G)', '(0 + R1 | G)'])
    """

    group_name: str
    group_column: str
    group_labels: list[Any]
    group_codes: np.ndarray
    re_names: list[str]
    re_columns: list[str]
    components: list[VarianceComponent] = field(default_factory=list)

    def terms(self, independent: bool) -> list[str]:
        """lme4's terms, independent random coefficients as one term each (lme4's ``||``)."""
        terms = []
        if self.re_columns:
            if independent:
                terms += [f"(0 + {column} | {self.group_column})" for column in self.re_columns]
            else:
                terms.append(f"(0 + {' + '.join(self.re_columns)} | {self.group_column})")
        return terms + [component.term for component in self.components]


def _lower_triangle(matrix: np.ndarray) -> np.ndarray:
    """statsmodels' packing of a covariance matrix: the lower triangle row by row."""
    rows, columns = np.tril_indices(matrix.shape[0])
    return matrix[rows, columns]


def _codes(levels: pd.Index) -> np.ndarray:
    """The integer codes a helper column's levels spell."""
    return np.asarray(levels, dtype=float).astype(int)


class MixedLMResults:
    """statsmodels' ``MixedLMResults`` for an lme4 fit (``mixedmodels_result``).

    statsmodels' conventions, kept: ``params`` holds the fixed effects, then the lower triangle
    of ``cov_re`` (row by row) and ``vcomp``, both divided by ``scale`` (statsmodels' "profile"
    parameterisation; the summary shows them unscaled); ``bse``, ``tvalues``, ``pvalues`` and
    ``conf_int()`` cover all of ``params`` with normal (z) reference distributions;
    ``bse_re`` and the summary's variance standard errors are √scale × ``bse`` as statsmodels
    computes them; ``aic`` and ``bic`` are NaN for REML fits; ``predict`` is the fixed part
    Xβ̂ only; ``llf`` is the REML log-likelihood of a REML fit.

    Where the numbers differ from statsmodels': they are lme4's optimum, which statsmodels may
    miss (its own ``ConvergenceWarning``s). The fixed effects' covariance is lme4's
    σ̂²(XᵀV⁻¹X)⁻¹, where statsmodels inverts its observed information (a difference of the
    order of 1e-3 relative); the variance parameters' covariance is the inverse Hessian of the
    profiled criterion (lme4's, by central differences in θ, carried to statsmodels'
    parameters), which is what statsmodels' block is at its optimum, with no covariance
    between fixed effects and variances; the variances' standard errors are NaN for a
    singular fit. Satterthwaite t-tests are in ``mixedmodels_result.coef_table()``.

    >>> import mixedmodels as mm
    >>> import mixedmodels.compat.statsmodels as smf
    >>> df = mm.datasets.load("sleepstudy")
    >>> r = smf.mixedlm("Reaction ~ Days", df, groups="Subject", re_formula="1 + Days").fit()
    >>> r.bse.round(3).tolist()
    [6.825, 1.546, 0.464, 0.071, 0.024]
    >>> r.random_effects["308"].round(3).tolist()
    [2.259, 9.199]
    """

    def __init__(self, model: MixedLM, result: LmerResult, independent: bool) -> None:
        self.model = model
        self.mixedmodels_result = result
        self.independent = independent
        self.reml = result.reml
        self.method = "REML" if result.reml else "ML"
        self.scale = result.scale
        self.nobs = result.nobs
        self.converged = result.converged
        structure = model.structure
        self.k_fe = len(result.params)
        self.k_re = len(structure.re_columns)
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.k_vc = len(structure.components)
        self._fixed_names = [model._fixed_names.get(name, name) for name in result.design.fixed_index]
        relative = self._relative_parameters(result.theta)
        self.cov_re_unscaled = pd.DataFrame(relative[0], index=structure.re_names, columns=structure.re_names)
        self.cov_re = self.cov_re_unscaled * self.scale
        self.vcomp = relative[1] * self.scale
        names = list(structure.re_names)
        rows, columns = np.tril_indices(self.k_re)
        variance_names = [f"{names[i]} Var" if i == j else f"{names[j]} x {names[i]} Cov" for i, j in zip(rows, columns)]
        variance_names += [f"{component.name} Var" for component in structure.components]
        self._variance_names = variance_names
        self.fe_params = pd.Series(result.params.to_numpy(), index=self._fixed_names)
        self.params = pd.concat([self.fe_params, pd.Series(self._packed(result.theta), index=variance_names)])

    # ----- parameters --------------------------------------------------------------------
    def _relative_parameters(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cov_re / scale and vcomp / scale at θ (each term's λλᵀ, placed by its group)."""
        structure = self.model.structure
        design = self.mixedmodels_result.design
        cov = np.zeros((self.k_re, self.k_re))
        vcomp = np.zeros(self.k_vc)
        component_of = {component.level_column: k for k, component in enumerate(structure.components)}
        factors = relative_covariance_factors(np.asarray(theta, dtype=float), [term.k for term in design.terms])
        for term, factor in zip(design.terms, factors):
            covariance = factor @ factor.T
            if term.group_name == structure.group_column:
                where = [structure.re_columns.index(name) for name in term.column_names]
                cov[np.ix_(where, where)] = covariance
            else:
                vcomp[component_of[term.group_name]] = covariance[0, 0]
        return cov, vcomp

    def _packed(self, theta: np.ndarray) -> np.ndarray:
        cov, vcomp = self._relative_parameters(theta)
        return np.concatenate([_lower_triangle(cov), vcomp])

    @functools.cached_property
    def _variance_covariance(self) -> np.ndarray:
        """Covariance of the packed variance parameters: the inverse of half the Hessian of the
        profiled criterion in θ (lme4's ``deriv12``), carried to cov_re / scale and vcomp / scale
        by their Jacobian. That is the variance block of the inverse information statsmodels
        reports: the information of a profiled likelihood is the Schur complement of the full
        one, whatever was profiled out (β, σ²), and at the optimum it changes coordinates by
        the Jacobian."""
        result = self.mixedmodels_result
        size = self.k_re2 + self.k_vc
        if result.is_singular:
            return np.full((size, size), math.nan)
        theta = np.asarray(result.theta, dtype=float)
        _, hessian = result.model.objective_derivatives(theta, REML=result.reml)
        try:
            covariance_theta = 2 * np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            return np.full((size, size), math.nan)
        # The packed parameters are quadratic in θ, so central differences are exact.
        steps = np.eye(len(theta))
        jacobian = np.column_stack([(self._packed(theta + step) - self._packed(theta - step)) / 2 for step in steps])
        return jacobian @ covariance_theta @ jacobian.T

    def cov_params(self) -> pd.DataFrame:
        """Covariance of ``params``: lme4's covariance of the fixed effects, then that of the
        packed variance parameters (see the class docstring), no covariance between them."""
        k = self.k_fe
        size = k + self.k_re2 + self.k_vc
        covariance = np.zeros((size, size))
        covariance[:k, :k] = self.mixedmodels_result.cov_params().to_numpy()
        covariance[k:, k:] = self._variance_covariance
        return pd.DataFrame(covariance, index=self.params.index, columns=self.params.index)

    @property
    def bse(self) -> pd.Series:
        """Standard errors of ``params``."""
        return pd.Series(np.sqrt(np.diag(self.cov_params().to_numpy())), index=self.params.index)

    @property
    def bse_fe(self) -> pd.Series:
        """Standard errors of the fixed effects (lme4's)."""
        return self.bse.iloc[: self.k_fe]

    @property
    def bse_re(self) -> pd.Series:
        """statsmodels' standard errors of the variance parameters: √scale × ``bse``."""
        return self.bse.iloc[self.k_fe :] * math.sqrt(self.scale)

    @property
    def tvalues(self) -> pd.Series:
        """``params`` / ``bse``."""
        return self.params / self.bse

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided z-test p-values, as statsmodels (Satterthwaite's t-tests:
        ``mixedmodels_result.coef_table()``)."""
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues.to_numpy())), index=self.params.index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald (normal) intervals for ``params``, columns 0 and 1 as statsmodels'.

        >>> import mixedmodels as mm
        >>> import mixedmodels.compat.statsmodels as smf
        >>> df = mm.datasets.load("sleepstudy")
        >>> smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit().conf_int().loc["Days"].round(2).tolist()
        [8.89, 12.04]
        """
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise SpecificationError(f"alpha must be between 0 and 1 (0.05 gives 95% intervals), not {alpha!r}")
        half = stats.norm.ppf(1 - alpha / 2) * self.bse
        return pd.DataFrame({0: self.params - half, 1: self.params + half})

    # ----- fit ---------------------------------------------------------------------------
    @property
    def llf(self) -> float:
        """The log-likelihood (REML's for a REML fit)."""
        return self.mixedmodels_result.llf

    @property
    def aic(self) -> float:
        """AIC; NaN for REML fits, as statsmodels."""
        return math.nan if self.reml else self.mixedmodels_result.aic

    @property
    def bic(self) -> float:
        """BIC; NaN for REML fits, as statsmodels."""
        return math.nan if self.reml else self.mixedmodels_result.bic

    @property
    def fittedvalues(self) -> pd.Series:
        """Fitted values with the predicted random effects, Xβ̂ + Zb̂."""
        return self.mixedmodels_result.fittedvalues.rename(None)

    @property
    def resid(self) -> pd.Series:
        """Response minus ``fittedvalues``."""
        return self.mixedmodels_result.resid.rename(None)

    def predict(self, exog: pd.DataFrame | np.ndarray | None = None) -> pd.Series | np.ndarray:
        """The fixed part Xβ̂ (statsmodels' ``predict`` ignores the random effects) on the
        fitted rows, a DataFrame of the formula's variables, or a design matrix.

        >>> import mixedmodels as mm
        >>> import mixedmodels.compat.statsmodels as smf
        >>> df = mm.datasets.load("sleepstudy")
        >>> smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit().predict(df.head(2)).round(2).tolist()
        [251.41, 261.87]
        """
        result = self.mixedmodels_result
        if exog is None:
            return result.fittedvalues_marginal.rename(None)
        if isinstance(exog, pd.DataFrame) and not self.model._fixed_names:
            return result.predict(exog, include_re=False).rename(None)
        x = np.asarray(exog, dtype=float)
        return (x if x.ndim == 2 else x[:, None]) @ self.fe_params.to_numpy()

    # ----- random effects ----------------------------------------------------------------
    def _used_group_codes(self) -> np.ndarray:
        """Each fitted row's group code."""
        design = self.mixedmodels_result.design
        term = next(t for t in design.terms if t.group_name == self.model.structure.group_column) if self.k_re else None
        if term is not None:
            return _codes(term.factor.levels)[term.factor.codes]
        component = self.model.structure.components[0]
        term = next(t for t in design.terms if t.group_name == component.level_column)
        return _codes(term.factor.levels)[term.factor.codes] // component.size

    @functools.cached_property
    def random_effects(self) -> dict[Any, pd.Series]:
        """The conditional modes of each group's random effects (lme4's ``ranef``): group label
        → Series keyed as statsmodels keys them, the random coefficients (``Group`` for the
        intercept, or the groups column's name) then ``name[column]`` for each variance
        component's columns present in the group."""
        structure = self.model.structure
        result = self.mixedmodels_result
        ranef = result.ranef()
        groups = np.unique(self._used_group_codes())
        blocks = []
        names: list[str] = []
        present: list[np.ndarray] = []
        n_labels = len(structure.group_labels)
        if self.k_re:
            frame = ranef[structure.group_column]
            modes = np.zeros((n_labels, self.k_re))
            modes[_codes(frame.index)] = frame[structure.re_columns].to_numpy()
            blocks.append(modes)
            names += structure.re_names
            present.append(np.ones((n_labels, self.k_re), dtype=bool))
        design = result.design
        for component in structure.components:
            frame = ranef[component.level_column]
            flat = np.zeros(n_labels * component.size)
            flat[_codes(frame.index)] = frame.iloc[:, 0].to_numpy()
            term = next(t for t in design.terms if t.group_name == component.level_column)
            row_levels = _codes(term.factor.levels)[term.factor.codes]
            seen = np.zeros(n_labels * component.size, dtype=bool)
            seen[row_levels] = True
            if component.size == 1:
                seen[:] = True
            blocks.append(flat.reshape(n_labels, component.size))
            present.append(seen.reshape(n_labels, component.size))
            names += [f"{component.name}[{column}]" for column in component.column_names]
        values = np.hstack(blocks)
        keep = np.hstack(present)
        index = np.asarray(names, dtype=object)
        # statsmodels' shape: one Series per group.
        return {structure.group_labels[g]: pd.Series(values[g, keep[g]], index=index[keep[g]].tolist()) for g in groups}

    # ----- summary -----------------------------------------------------------------------
    def summary(
        self,
        yname: str | None = None,
        xname_fe: list[str] | None = None,
        xname_re: list[str] | None = None,
        title: str | None = None,
        alpha: float = 0.05,
    ) -> MixedLMSummary:
        """statsmodels' "Mixed Linear Model Regression Results" table.

        >>> import mixedmodels as mm
        >>> import mixedmodels.compat.statsmodels as smf
        >>> df = mm.datasets.load("sleepstudy")
        >>> print(smf.mixedlm("Reaction ~ Days", df, groups="Subject").fit().summary())
                  Mixed Linear Model Regression Results
        ==========================================================
        Model:             MixedLM  Dependent Variable:  Reaction
        No. Observations:  180      Method:              REML
        No. Groups:        18       Scale:               960.4566
        Min. group size:   10       Log-Likelihood:      -893.2325
        Max. group size:   10       Converged:           Yes
        Mean group size:   10.0
        ----------------------------------------------------------
                     Coef.   Std.Err.   z    P>|z|  [0.025  0.975]
        ----------------------------------------------------------
        Intercept    251.405    9.747 25.794 0.000 232.302 270.508
        Days          10.467    0.804 13.015 0.000   8.891  12.044
        Subject Var 1378.179   17.156
        ==========================================================
        """
        names = list(self.params.index)
        if xname_fe is not None:
            if len(xname_fe) != self.k_fe:
                raise SpecificationError(f"xname_fe should be a list of length {self.k_fe}")
            names[: self.k_fe] = xname_fe
        if xname_re is not None:
            if len(xname_re) != len(names) - self.k_fe:
                raise SpecificationError(f"xname_re should be a list of length {len(names) - self.k_fe}")
            names[self.k_fe :] = xname_re
        codes = self._used_group_codes()
        sizes = np.bincount(codes)[np.unique(codes)]
        info = {
            "Model:": "MixedLM",
            "No. Observations:": str(self.nobs),
            "No. Groups:": str(len(sizes)),
            "Min. group size:": f"{sizes.min():.0f}",
            "Max. group size:": f"{sizes.max():.0f}",
            "Mean group size:": f"{sizes.mean():.1f}",
            "Dependent Variable:": yname if yname is not None else self.model.endog_names,
            "Method:": self.method,
            "Scale:": f"{self.scale:.4f}",
            "Log-Likelihood:": f"{self.llf:.4f}",
            "Converged:": "Yes" if self.converged else "No",
        }
        k = self.k_fe
        table = np.full((len(names), 6), math.nan)
        bse = self.bse.to_numpy()
        table[:k, 0] = self.fe_params.to_numpy()
        table[:k, 1] = bse[:k]
        table[:k, 2] = table[:k, 0] / table[:k, 1]
        table[:k, 3] = 2 * stats.norm.sf(np.abs(table[:k, 2]))
        z = stats.norm.ppf(1 - alpha / 2)
        table[:k, 4] = table[:k, 0] - z * table[:k, 1]
        table[:k, 5] = table[:k, 0] + z * table[:k, 1]
        table[k:, 0] = np.concatenate([_lower_triangle(self.cov_re.to_numpy()), self.vcomp])
        table[k:, 1] = math.sqrt(self.scale) * bse[k:]
        columns = ["Coef.", "Std.Err.", "z", "P>|z|", f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"]
        formatted = pd.DataFrame([[f"{v:.3f}" if np.isfinite(v) else "" for v in row] for row in table], index=names, columns=columns)
        return MixedLMSummary(title or "Mixed Linear Model Regression Results", info, formatted)

    def __repr__(self) -> str:
        return f"<MixedLMResults ({self.method}) of {self.mixedmodels_result.formula!r}>"


@dataclass
class MixedLMSummary:
    """A summary in statsmodels' ``summary2`` layout: ``tables`` holds the model information
    (four columns) and the coefficient table (formatted strings); ``str()`` is the text.

    >>> s = MixedLMSummary("Results", {"Model:": "MixedLM", "Method:": "REML"}, pd.DataFrame({"Coef.": ["1.000"]}, index=["x"]))
    >>> s.tables[1].index.tolist()
    ['x']
    """

    title: str
    info: dict[str, str]
    params: pd.DataFrame

    @property
    def tables(self) -> list[pd.DataFrame]:
        """The information table (two key/value pairs per row, as statsmodels lays it out) and
        the coefficient table."""
        items = list(self.info.items())
        half = (len(items) + 1) // 2
        left, right = items[:half], items[half:] + [("", "")] * (2 * half - len(items))
        rows = [[a, b, c, d] for (a, b), (c, d) in zip(left, right)]
        return [pd.DataFrame(rows), self.params]

    def as_text(self) -> str:
        """The summary as text."""
        info = self.tables[0].to_numpy()
        info_widths = [max(len(str(v)) for v in info[:, j]) for j in range(4)]
        info_lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, info_widths)) for row in info]
        index_width = max(len(str(i)) for i in self.params.index)
        widths = [max(len(c), *(len(v) for v in self.params[c])) for c in self.params.columns]
        header = " " * index_width + " " + " ".join(c.center(w) for c, w in zip(self.params.columns, widths))
        rows = [
            str(i).ljust(index_width) + " " + " ".join(v.rjust(w) for v, w in zip(row, widths))
            for i, row in zip(self.params.index, self.params.to_numpy())
        ]
        width = max(len(header), *(len(line) for line in info_lines))
        lines = [self.title.center(width).rstrip(), "=" * width, *info_lines, "-" * width, header, "-" * width, *rows, "=" * width]
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()
