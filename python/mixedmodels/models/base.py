"""What linear and generalized mixed models share: the formula, the design, the compiled core
structure (built once, on first use, and shared by models that differ only in their response),
and the options of the fit.

Example
-------
>>> import mixedmodels as mm
>>> model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> model.nobs, model.n_theta
(180, 3)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, TypeVar, cast

import numpy as np
import pandas as pd

from ..errors import DataError, SpecificationError
from ..formula.design import Design
from .control import FitControl, theta_lower_bounds
from .internal_parameterisation import InternalParameterisation, UserCoordinatesFit

Factorization = Literal["auto", "blocked", "sparse"]
Compat = Literal["lme4"] | None
FACTORIZATIONS: tuple[str, ...] = ("auto", "blocked", "sparse")

Model = TypeVar("Model", bound="MixedModel")


def checked_compat(compat: object) -> Compat:
    """The ``compat`` option: ``None`` (our numbers) or ``"lme4"`` (lme4 1.1's), else a
    SpecificationError.

    >>> checked_compat("lme4")
    'lme4'
    """
    if compat is None:
        return None
    if compat == "lme4":
        return "lme4"
    raise SpecificationError(f"compat must be None or 'lme4', not {compat!r}")


def as_float_array(values: object, what: str) -> np.ndarray:
    """``values`` as a float64 array, or a DataError naming ``what`` when they are not numbers.

    >>> as_float_array([1, 2], "theta").tolist()
    [1.0, 2.0]
    """
    if np.iscomplexobj(cast(Any, values)):  # numpy would drop the imaginary parts with a mere warning
        raise DataError(f"{what} must be real numbers, not complex")
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise DataError(f"{what} must be numbers: {err}") from None


def parameter_vector(values: object, n: int, what: str) -> list[float]:
    """``n`` finite parameter values (θ or β) as a list for the core, or a DataError.

    >>> parameter_vector([1, 0.5], 2, "theta")
    [1.0, 0.5]
    """
    array = as_float_array(values, what).reshape(-1)
    if array.shape != (n,):
        raise DataError(f"{what} must have {n} values, not {array.size}")
    if not np.all(np.isfinite(array)):
        raise DataError(f"{what} has missing or non-finite values")
    return list(array.tolist())


def checked_response(y: np.ndarray | pd.Series | pd.DataFrame, expected: np.ndarray, rows: pd.Index | None = None) -> np.ndarray:
    """A new response as float64, the shape of ``expected`` and finite, or a DataError. A Series
    (or DataFrame) is aligned on its index to the model's ``rows`` (the fitted rows' labels), and
    refused when its labels are not those rows.

    >>> checked_response([1, 2], np.zeros(2)).tolist()
    [1.0, 2.0]
    >>> checked_response(pd.Series([1.0, 2.0], index=[8, 7]), np.zeros(2), pd.Index([7, 8])).tolist()
    [2.0, 1.0]
    """
    if isinstance(y, (pd.Series, pd.DataFrame)) and rows is not None and not y.index.equals(rows):
        if len(y) != len(rows) or not rows.is_unique or not y.index.is_unique or not y.index.isin(rows).all():
            raise DataError(
                f"the new response is a {type(y).__name__} whose index is not the model's {len(rows)} fitted rows "
                f"(first labels {list(rows[:3])}); pass it with those labels, or as a numpy array in their order"
            )
        y = y.reindex(rows)
    values = as_float_array(y, "the new response")
    if values.shape != expected.shape:
        raise DataError(f"the new response has shape {values.shape}, the model {expected.shape}")
    if not np.all(np.isfinite(values)):
        raise DataError("the new response has missing or non-finite values")
    return values


class MixedModel:
    """A mixed model's formula and design, and the options it is fitted with.

    ``data_name`` names the data in summaries; ``data`` is the DataFrame the design was built
    from (a reference, not a copy; refits of reduced models for likelihood-ratio tests rebuild
    model matrices from its rows); ``factorization`` chooses the Cholesky
    factorisation (``"auto"``, ``"blocked"`` or ``"sparse"``); ``max_evaluations`` is the
    optimiser's budget of objective evaluations; ``fit_control`` holds lme4's ``start`` and
    ``control`` settings (:class:`~mixedmodels.models.control.FitControl`).

    >>> import mixedmodels as mm
    >>> model = mm.LinearMixedModel.from_formula("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> model.formula, model.factorization
    ('Yield ~ 1 + (1 | Batch)', 'auto')
    """

    def __init__(
        self,
        formula: str,
        design: Design,
        *,
        data_name: str | None = None,
        data: pd.DataFrame | None = None,
        factorization: Factorization = "auto",
        max_evaluations: int = 10_000,
        fit_control: FitControl | None = None,
    ) -> None:
        if factorization not in FACTORIZATIONS:
            raise SpecificationError(f"factorization must be one of {', '.join(map(repr, FACTORIZATIONS))}, not {factorization!r}")
        if isinstance(max_evaluations, (bool, np.bool_)) or not isinstance(max_evaluations, (int, np.integer)) or max_evaluations < 1:
            raise SpecificationError(f"max_evaluations must be a whole number of at least 1, not {max_evaluations!r}")
        self.formula = formula
        self.design = design
        self.data_name = data_name
        self.data = data
        self.factorization: Factorization = factorization
        self.fit_control = fit_control or FitControl()
        # lme4's optCtrl maxfun, when given, is the budget.
        self.max_evaluations = self.fit_control.max_evaluations or int(max_evaluations)
        self._core_model: Any = None
        self._fitting_core_model: Any = None

    # ----- the compiled structure ------------------------------------------------------------
    def _build_core(self, design: Design, internal: InternalParameterisation | None) -> Any:
        """The compiled model of ``design``; ``internal``: the parameterisation it is in, when
        not the user's."""
        raise NotImplementedError

    @property
    def _core(self) -> Any:
        """The compiled model, built on first use (and again after unpickling)."""
        if self._core_model is None:
            self._core_model = self._build_core(self.design, None)
        return self._core_model

    def _uses_internal_parameterisation(self) -> bool:
        return not self.internal_parameterisation.is_identity

    @property
    def internal_parameterisation(self) -> InternalParameterisation:
        """The centred and scaled columns the optimiser works on (see
        :mod:`mixedmodels.models.internal_parameterisation`), computed once per design."""
        cached = self.__dict__.get("_internal")
        if cached is None or cached[0] is not self.design:
            cached = (self.design, InternalParameterisation.of(self.design))
            self.__dict__["_internal"] = cached
        return cached[1]

    @property
    def _fitting_core(self) -> Any:
        """The compiled model the optimiser works on: in the internal parameterisation, unless
        that changes nothing (then the model's own)."""
        if not self._uses_internal_parameterisation():
            return self._core
        if self._fitting_core_model is None:
            internal = self.internal_parameterisation
            self._fitting_core_model = self._build_core(internal.design(self.design), internal)
        return self._fitting_core_model

    def fitting_parameters(self, theta: np.ndarray, beta: np.ndarray) -> tuple[list[float], list[float]]:
        """(θ, β) in the parameterisation of :attr:`_fitting_core`, for the core's simulations
        and refits (``_fitting_core.simulate``, ``.bootstrap``).

        >>> import mixedmodels as mm
        >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> theta, beta = m.model.fitting_parameters(m.theta, m._beta)
        >>> np.allclose(m.model.user_theta(np.array(theta)), m.theta)
        True
        """
        if not self._uses_internal_parameterisation():
            return list(np.asarray(theta, dtype=float).tolist()), list(np.asarray(beta, dtype=float).tolist())
        internal = self.internal_parameterisation
        return list(internal.theta_to_internal(theta).tolist()), list(internal.beta_to_internal(beta).tolist())

    def user_theta(self, theta: np.ndarray) -> np.ndarray:
        """θ (one vector or rows of them) of :attr:`_fitting_core` in the user's parameterisation."""
        return self.internal_parameterisation.theta_to_user(theta) if self._uses_internal_parameterisation() else np.asarray(theta)

    def user_beta(self, beta: np.ndarray) -> np.ndarray:
        """β (one vector or rows of them) of :attr:`_fitting_core` in the user's parameterisation."""
        return self.internal_parameterisation.beta_to_user(beta) if self._uses_internal_parameterisation() else np.asarray(beta)

    def _user_coordinates(self, fit: Any, reml: bool = False) -> Any:
        """A core fit of :attr:`_fitting_core` (by REML with ``reml``) in the user's
        parameterisation."""
        if not self._uses_internal_parameterisation():
            return fit
        return UserCoordinatesFit(fit, self.internal_parameterisation, reml)

    @staticmethod
    def _core_terms(design: Design) -> list[tuple[np.ndarray, int, np.ndarray]]:
        return [(term.factor.codes, term.n_levels, term.z) for term in design.terms]

    @property
    def factorization_used(self) -> str:
        """The factorisation the compiled model uses: ``"blocked"`` or ``"sparse"``."""
        # The fitting core has the same structure; asking it does not build the other one.
        return "sparse" if self._fitting_core.is_sparse else "blocked"

    def _derived(self: Model, **changes: Any) -> Model:
        """A copy of this model with some attributes changed, sharing the compiled structure."""
        model = object.__new__(type(self))
        model.__dict__.update(self.__dict__)
        model.__dict__.update(changes)
        if "_core_model" in changes:
            model.__dict__["_fitting_core_model"] = None
        return model

    def with_design(self: Model, design: Design, formula: str) -> Model:
        """The same kind of model, with the same options, on another design of the same rows and
        response (e.g. with a term removed), written as ``formula``.

        >>> import mixedmodels as mm
        >>> model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
        >>> model.with_design(model.design, "Reaction ~ Days + (Days | Subject)").nobs
        180
        """
        # Start values belong to the model they were given for; the settings carry over.
        settings = replace(self.fit_control, theta_start=None, beta_start=None)
        return self._derived(design=design, formula=formula, _core_model=None, fit_control=settings)

    # ----- facts -------------------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        """Number of observations the model is fitted to."""
        return self.design.nobs

    @property
    def n_theta(self) -> int:
        """Number of covariance parameters θ (each term's λ, lower triangle)."""
        return sum(term.k * (term.k + 1) // 2 for term in self.design.terms)

    @property
    def theta_lower_bounds(self) -> np.ndarray:
        """Lower bounds of θ: 0 for the diagonal of each λ, −∞ below it (lme4's ``lower``)."""
        return theta_lower_bounds(self.design)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_core_model"] = state["_fitting_core_model"] = None  # compiled structures are rebuilt on first use
        return state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.formula!r}: nobs={self.nobs}>"
