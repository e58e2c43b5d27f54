"""statsmodels' ``MixedLM`` front door on this package's lme4 fits: code written for
``statsmodels.formula.api.mixedlm`` runs with only its import changed,
``import mixedmodels.compat.statsmodels as smf``.

statsmodels' model, translated to lme4's: the data fall into independent ``groups``; each group
has correlated random coefficients for the columns of ``re_formula`` (or ``exog_re``; a random
intercept by default), ``(0 + z1 + z2 | group)``, and each ``vc_formula`` entry adds
independent random coefficients with one common variance for the columns of its formula within
each group: ``{"classroom": "0 + C(classroom)"}`` with ``groups="school"`` is lme4's
``(1 | school:classroom)``, ``{"slope": "0 + x"}`` is ``(0 + x | school)``. The fit is
:func:`mixedmodels.lmer`'s (``result.mixedmodels_result``), so its numbers are lme4's; the
result carries statsmodels' names, shapes and conventions (see :class:`MixedLMResults`).

Example
-------
>>> import mixedmodels as mm
>>> import mixedmodels.compat.statsmodels as smf
>>> df = mm.datasets.load("sleepstudy")
>>> r = smf.mixedlm("Reaction ~ Days", df, groups=df["Subject"], re_formula="~Days").fit()
>>> r.params.index.tolist()
['Intercept', 'Days', 'Group Var', 'Group x Days Cov', 'Days Var']
>>> r.cov_re.round(1).to_numpy().tolist()
[[612.1, 9.6], [9.6, 35.1]]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import patsy

from ..errors import DataError, SpecificationError
from ..formula.frames import DataFrameLike, as_pandas
from ..formula.model_matrix import variables
from ..models import lmer
from .mixedlm_results import MixedLMResults, RandomStructure, VarianceComponent

__all__ = ["MixedLM", "MixedLMParams", "MixedLMResults", "mixedlm"]

# Arguments of statsmodels' MixedLM.fit that tune its own optimisers: accepted and ignored, as the
# optimum is lme4's whatever optimiser statsmodels would have used.
IGNORED_FIT_ARGUMENTS = ("gtol", "maxiter", "eps", "maxcor", "ftol", "tol", "disp", "maxls", "niter_sa", "full_output")


class MixedLMParams:
    """statsmodels' parameter container, for the one use this front door has for it: the ``free``
    pattern of :meth:`MixedLM.fit` (1 = estimated, 0 = held). A diagonal ``cov_re`` pattern
    asks for independent random effects, lme4's ``(0 + z1 || group)``.

    >>> free = MixedLMParams.from_components(fe_params=np.ones(2), cov_re=np.eye(2))
    >>> free.cov_re.tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """

    def __init__(self, k_fe: int, k_re: int, k_vc: int) -> None:
        self.k_fe = k_fe
        self.k_re = k_re
        self.k_vc = k_vc
        self.fe_params = np.ones(k_fe)
        self.cov_re = np.ones((k_re, k_re))
        self.vcomp = np.ones(k_vc)

    @staticmethod
    def from_components(
        fe_params: npt.ArrayLike | None = None,
        cov_re: npt.ArrayLike | None = None,
        vcomp: npt.ArrayLike | None = None,
    ) -> MixedLMParams:
        """A container from its parts (statsmodels' signature, without ``cov_re_sqrt``)."""
        fe = np.atleast_1d(np.asarray(fe_params if fe_params is not None else [], dtype=float))
        cov = np.atleast_2d(np.asarray(cov_re if cov_re is not None else np.zeros((0, 0)), dtype=float))
        vc = np.atleast_1d(np.asarray(vcomp if vcomp is not None else [], dtype=float))
        params = MixedLMParams(len(fe), cov.shape[0] if cov.size else 0, len(vc))
        params.fe_params, params.vcomp = fe, vc
        params.cov_re = cov if cov.size else np.zeros((0, 0))
        return params


def statsmodels_exog_names(exog: np.ndarray) -> list[str]:
    """statsmodels' names for the columns of an unnamed ``exog``: ``x1``, ``x2``, ... with a
    constant column (the first of no variance) called ``const``.

    >>> statsmodels_exog_names(np.array([[1.0, 2.0, 5.0], [1.0, 3.0, 4.0]]))
    ['const', 'x1', 'x2']
    """
    variance = exog.var(axis=0)
    if (variance == 0).any():
        names = [f"x{i}" for i in range(1, exog.shape[1])]
        names.insert(int(variance.argmin()), "const")
        return names
    return [f"x{i}" for i in range(1, exog.shape[1] + 1)]


def _matrix(values: Any, n: int, what: str) -> np.ndarray:
    """A 2-d float array of ``n`` rows from an array, Series or DataFrame."""
    try:
        matrix = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise DataError(f"{what} must be numeric: {error}") from None
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[0] != n:
        raise DataError(f"{what} must have one row per observation ({n}), not shape {matrix.shape}")
    return matrix


def _column_names(values: Any, prefix: str) -> list[str]:
    if isinstance(values, pd.DataFrame):
        return [str(c) for c in values.columns]
    if isinstance(values, pd.Series) and values.name is not None:
        return [str(values.name)]
    return [f"{prefix}{k + 1}" for k in range(_matrix(values, len(values), prefix).shape[1])]


def _patsy_readable(frame: pd.DataFrame, formula: str) -> pd.DataFrame:
    """``frame`` with the Arrow-backed columns ``formula`` reads (the text of a polars or Arrow
    table) as numpy values, which patsy knows; the others as they are.

    >>> import pyarrow as pa
    >>> frame = pd.DataFrame({"g": pd.array(["a", None], dtype=pd.ArrowDtype(pa.large_string())), "x": [1.0, 2.0]})
    >>> isinstance(frame["g"].dtype, pd.ArrowDtype), isinstance(_patsy_readable(frame, "0 + C(g)")["g"].dtype, pd.ArrowDtype)
    (True, False)
    """
    converted = {}
    for name in variables(formula.lstrip().removeprefix("~")):
        column = frame[name] if name in frame.columns else None
        if column is None or not isinstance(column.dtype, pd.ArrowDtype):
            continue
        numeric = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)
        converted[name] = column.to_numpy(dtype=float, na_value=np.nan) if numeric else column.to_numpy(dtype=object, na_value=None)
    return frame.assign(**converted) if converted else frame


def _formula_matrix(formula: str, frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """patsy's model matrix of a one-sided formula on ``frame`` (statsmodels evaluates
    ``re_formula`` and ``vc_formula`` with patsy), NaN in the rows patsy drops for missing values."""
    environment = patsy.EvalEnvironment([{"np": np, "numpy": np}])
    try:
        matrix = patsy.dmatrix(formula, _patsy_readable(frame, formula), eval_env=environment, return_type="dataframe", NA_action="drop")
    except patsy.PatsyError as error:
        raise SpecificationError(f"{what} {formula!r}: {error}") from None
    return matrix.reindex(frame.index)


class MixedLM:
    """statsmodels' ``MixedLM`` on this package's lme4 fits: ``MixedLM(endog, exog, groups,
    exog_re=None)`` for arrays, :meth:`from_formula` (or :func:`mixedlm`) for formulas; fit
    with :meth:`fit`.

    ``exog_vc`` (statsmodels' array form of variance components) is not supported: use
    ``vc_formula``. ``missing="drop"`` drops incomplete rows; ``"none"`` (statsmodels'
    default) and ``"raise"`` raise a :class:`~mixedmodels.DataError` on a missing value.

    >>> import mixedmodels as mm
    >>> df = mm.datasets.load("sleepstudy")
    >>> x = np.column_stack([np.ones(len(df)), df["Days"]])
    >>> r = MixedLM(df["Reaction"], x, df["Subject"]).fit()
    >>> r.params.index.tolist(), round(float(r.fe_params["x1"]), 4)
    (['const', 'x1', 'Group Var'], 10.4673)
    """

    def __init__(
        self,
        endog: npt.ArrayLike,
        exog: npt.ArrayLike,
        groups: npt.ArrayLike,
        exog_re: npt.ArrayLike | None = None,
        exog_vc: object = None,
        use_sqrt: bool = True,
        missing: str = "none",
        **kwargs: Any,
    ) -> None:
        if exog_vc is not None:
            raise SpecificationError("exog_vc (variance components as arrays) is not supported: give them as vc_formula to MixedLM.from_formula")
        if kwargs:
            raise SpecificationError(f"argument(s) {', '.join(sorted(kwargs))} not supported by MixedLM")
        y = np.asarray(endog, dtype=float).ravel()
        n = len(y)
        x = _matrix(exog, n, "exog")
        fixed_names = [str(c) for c in exog.columns] if isinstance(exog, pd.DataFrame) else statsmodels_exog_names(x)
        frame = pd.DataFrame({"y": y}, index=endog.index if isinstance(endog, pd.Series) else None)
        fixed_columns = [f"x{k}" for k in range(x.shape[1])]
        frame = pd.concat([frame, pd.DataFrame(x, columns=fixed_columns, index=frame.index)], axis=1)
        self._setup(
            fixed_formula=f"y ~ 0 + {' + '.join(fixed_columns)}",
            frame=frame,
            fixed_names=dict(zip(fixed_columns, fixed_names)),
            endog_name=str(endog.name) if isinstance(endog, pd.Series) and endog.name is not None else "y",
            groups=groups,
            group_name="Group",
            re_matrix=None if exog_re is None else _matrix(exog_re, n, "exog_re"),
            re_names=None if exog_re is None else _column_names(exog_re, "x_re"),
            vc_formula=None,
            missing=missing,
        )

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: DataFrameLike,
        re_formula: str | None = None,
        vc_formula: Mapping[str, str] | None = None,
        subset: object = None,
        use_sparse: bool = False,
        missing: str = "none",
        *args: Any,
        groups: str | npt.ArrayLike | None = None,
        exog_re: npt.ArrayLike | None = None,
        **kwargs: Any,
    ) -> MixedLM:
        """A model from a formula (statsmodels' ``MixedLM.from_formula``; :func:`mixedlm` is
        the same). ``groups`` is a column name, a Series or an array (one label per row, by
        position); ``re_formula`` a one-sided formula of the random coefficients of each group
        (``"1"``, ``"~Days"``, ``"0 + x"``; default a random intercept, or none when there
        are ``vc_formula`` entries); ``vc_formula`` maps names to formulas of variance
        components within a group (see the module's docstring); ``exog_re`` random-effects
        covariates as an array instead of ``re_formula``. ``use_sparse`` is accepted and
        ignored (the core chooses its factorisation); ``subset`` is not supported. ``data``
        may be a pandas or polars DataFrame or a pyarrow Table (results are pandas objects).

        The fixed part is this package's formula syntax (patsy's: ``C()``, ``I()``, ``np.log``),
        without random-effects bars: crossed or otherwise lme4-only structures are written with
        :func:`mixedmodels.lmer` directly.

        >>> import mixedmodels as mm
        >>> pastes = mm.datasets.load("Pastes")
        >>> model = MixedLM.from_formula("strength ~ 1", pastes, vc_formula={"cask": "0 + C(cask)"}, groups="batch", re_formula="1")
        >>> r = model.fit()
        >>> r.params.index.tolist()
        ['Intercept', 'batch Var', 'cask Var']
        """
        if args:
            raise SpecificationError("MixedLM.from_formula takes its arguments after data by name")
        if groups is None:
            raise SpecificationError("'groups' is a required keyword argument in MixedLM.from_formula")
        if subset is not None:
            raise SpecificationError("subset is not supported: pass data.loc[subset] as data")
        kwargs.pop("eval_env", None)
        if kwargs:
            raise SpecificationError(f"argument(s) {', '.join(sorted(kwargs))} not supported by MixedLM.from_formula")
        data = as_pandas(data)
        if not isinstance(formula, str) or "~" not in formula:
            raise SpecificationError(f"formula must be a two-sided formula string such as 'y ~ x', not {formula!r}")
        if "|" in formula:
            raise SpecificationError("random-effects terms (with '|') belong to mixedmodels.lmer's formulas; here use groups, re_formula and vc_formula")
        if re_formula is not None and exog_re is not None:
            raise SpecificationError("give the random effects as re_formula or exog_re, not both")
        frame = data.reset_index(drop=True)
        group_name = groups if isinstance(groups, str) else "Group"
        if isinstance(groups, str):
            if groups not in data.columns:
                raise DataError(f"groups column {groups!r} is not in the data")
            groups = frame[groups].to_numpy()
        re_matrix: np.ndarray | None = None
        re_names: list[str] | None = None
        if re_formula is not None:
            matrix = _formula_matrix(re_formula, frame, "re_formula")
            re_matrix = matrix.to_numpy(dtype=float)
            re_names = [str(c).replace("Intercept", group_name) for c in matrix.columns]
        elif exog_re is not None:
            re_matrix = _matrix(exog_re, len(frame), "exog_re")
            re_names = _column_names(exog_re, "x_re")
        model = cls.__new__(cls)
        model._setup(
            fixed_formula=formula,
            frame=frame.set_axis(data.index),
            fixed_names={},
            endog_name=formula.split("~", 1)[0].strip(),
            groups=groups,
            group_name=group_name,
            re_matrix=re_matrix,
            re_names=re_names,
            vc_formula=vc_formula,
            missing=missing,
        )
        return model

    def _setup(
        self,
        *,
        fixed_formula: str,
        frame: pd.DataFrame,
        fixed_names: dict[str, str],
        endog_name: str,
        groups: Any,
        group_name: str,
        re_matrix: np.ndarray | None,
        re_names: list[str] | None,
        vc_formula: Mapping[str, str] | None,
        missing: str,
    ) -> None:
        if missing not in ("none", "drop", "raise"):
            raise SpecificationError(f"missing must be 'none', 'drop' or 'raise', not {missing!r}")
        n = len(frame)
        group_values = np.asarray(groups)
        if group_values.ndim != 1 or len(group_values) != n:
            raise DataError(f"groups must have one label per row of the data ({n}), not shape {group_values.shape}")
        codes, labels = pd.factorize(group_values, sort=True)
        if re_matrix is None and not vc_formula:
            re_matrix, re_names = np.ones((n, 1)), [group_name]
        positional = frame.reset_index(drop=True)
        helpers = _HelperNames(set(map(str, frame.columns)))
        columns: dict[str, np.ndarray] = {helpers.group: np.where(codes >= 0, codes, np.nan)}
        re_columns = [helpers.name(f"re{k}") for k in range(0 if re_matrix is None else re_matrix.shape[1])]
        if re_matrix is not None:
            columns.update(zip(re_columns, re_matrix.T))
        components = []
        for index, (name, vc) in enumerate(sorted((vc_formula or {}).items())):
            matrix = _formula_matrix(vc, positional, f"vc_formula[{name!r}]")
            component = VarianceComponent.of(name, matrix, codes, helpers.name(f"vc{index}_level"), helpers.name(f"vc{index}_value"))
            components.append(component)
            columns[component.level_column] = component.levels
            columns[component.value_column] = component.values
        incomplete = {what: np.isnan(values).any() for what, values in columns.items()}
        if missing != "drop" and any(incomplete.values()):
            sources = {helpers.group: "groups", **{c: "re_formula/exog_re" for c in re_columns}}
            sources.update({c.level_column: f"vc_formula[{c.name!r}]" for c in components})
            named = sorted({sources.get(k, "vc_formula") for k, v in incomplete.items() if v})
            raise DataError(f"missing values in {', '.join(named)}: pass missing='drop' to drop those rows")
        self.formula = fixed_formula
        self.endog_names = endog_name
        self._frame = frame.assign(**{k: pd.Series(v, index=frame.index) for k, v in columns.items()})
        self._fixed_names = fixed_names
        self._na_action: Literal["omit", "raise"] = "omit" if missing == "drop" else "raise"
        self.structure = RandomStructure(
            group_name=group_name,
            group_column=helpers.group,
            group_labels=labels.tolist() if not isinstance(labels, pd.Index) else labels.tolist(),
            group_codes=codes,
            re_names=list(re_names or []),
            re_columns=re_columns,
            components=components,
        )
        self.k_re = len(re_columns)
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.k_vc = len(components)
        self.exog_re_names = list(re_names or [])

    def fit(
        self,
        start_params: object = None,
        reml: bool = True,
        niter_sa: int = 0,
        do_cg: bool = True,
        fe_pen: object = None,
        cov_pen: object = None,
        free: MixedLMParams | None = None,
        full_output: bool = False,
        method: str | list[str] | None = None,
        **fit_kwargs: Any,
    ) -> MixedLMResults:
        """Fit by REML (``reml=True``, the default) or maximum likelihood with lme4's optimiser
        (:func:`mixedmodels.lmer`). ``method``, ``start_params`` and statsmodels' optimiser
        settings (``gtol``, ``maxiter``, ...) are accepted and ignored: the optimum does not
        depend on them. ``free`` may only ask for independent random effects (a diagonal
        ``cov_re`` pattern, everything else free); penalties and ``do_cg=False`` are refused.

        >>> import mixedmodels as mm
        >>> df = mm.datasets.load("sleepstudy")
        >>> r = mixedlm("Reaction ~ Days", df, groups="Subject").fit(reml=False, method="lbfgs")
        >>> round(r.llf, 3), round(r.aic, 3)
        (-897.039, 1802.079)
        """
        if fe_pen is not None or cov_pen is not None:
            raise SpecificationError("penalised fits (fe_pen, cov_pen) are not supported")
        if not do_cg:
            raise SpecificationError("do_cg=False (a result at the starting values) is not supported")
        unknown = sorted(set(fit_kwargs) - set(IGNORED_FIT_ARGUMENTS))
        if unknown:
            raise SpecificationError(f"argument(s) {', '.join(unknown)} not supported by MixedLM.fit")
        independent = self._independent(free)
        formula = f"{self.formula} + {' + '.join(self.structure.terms(independent))}"
        result = lmer(formula, self._frame, REML=bool(reml), na_action=self._na_action)
        return MixedLMResults(self, result, independent)

    def _independent(self, free: MixedLMParams | None) -> bool:
        """Whether ``free`` asks for independent random effects; refuse any other pattern."""
        if free is None:
            return False
        cov = np.asarray(free.cov_re, dtype=float)
        k = self.k_re
        fe_free = np.all(np.asarray(free.fe_params) != 0)
        vc_free = np.all(np.asarray(free.vcomp) != 0)
        if cov.shape == (k, k) and fe_free and vc_free:
            if np.all(cov != 0):
                return False
            if np.all(np.diag(cov) != 0) and np.all(cov[~np.eye(k, dtype=bool)] == 0):
                return True
        raise SpecificationError(
            "free: only a pattern with every fixed effect and variance free and cov_re's covariances either all free "
            "or all held at 0 (independent random effects) is supported"
        )

    @property
    def exog_names(self) -> list[str] | None:
        """The fixed effects' names (known once fitted for formulas: the fit's columns)."""
        return list(self._fixed_names.values()) or None

    @property
    def group_labels(self) -> list[Any]:
        """The distinct group labels, sorted."""
        return list(self.structure.group_labels)

    @property
    def n_groups(self) -> int:
        """The number of distinct groups."""
        return len(self.structure.group_labels)


@dataclass
class _HelperNames:
    """Names of the columns this front door adds to the data for lmer: a prefix no data column
    starts with."""

    taken: set[str]

    def __post_init__(self) -> None:
        self.prefix = "smcompat_"
        while any(name.startswith(self.prefix) for name in self.taken):
            self.prefix = "x" + self.prefix

    @property
    def group(self) -> str:
        return self.prefix + "group"

    def name(self, suffix: str) -> str:
        return self.prefix + suffix


def mixedlm(
    formula: str,
    data: DataFrameLike,
    re_formula: str | None = None,
    vc_formula: Mapping[str, str] | None = None,
    subset: object = None,
    use_sparse: bool = False,
    missing: str = "none",
    *args: Any,
    **kwargs: Any,
) -> MixedLM:
    """statsmodels' ``smf.mixedlm``: :meth:`MixedLM.from_formula`.

    >>> import mixedmodels as mm
    >>> df = mm.datasets.load("sleepstudy")
    >>> r = mixedlm("Reaction ~ Days", df, groups=df["Subject"], re_formula="~Days").fit()
    >>> round(float(r.cov_re.loc["Days", "Days"]), 2)
    35.07
    """
    return MixedLM.from_formula(formula, data, re_formula, vc_formula, subset, use_sparse, missing, *args, **kwargs)
