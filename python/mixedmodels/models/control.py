"""lme4's ``start=`` and ``control=`` arguments: where the optimiser starts, and the settings of
``lmerControl()`` / ``glmerControl()`` that a fit honours, under lme4's names.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"),
...             start=[1.0, 0.0, 0.2], control={"optCtrl": {"maxfun": 500}})
>>> round(m.REMLcrit, 3)
1743.628
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import SpecificationError
from ..formula.design import Design

ModelKind = Literal["lmer", "glmer"]

# lme4's optimiser names: accepted so that lme4 code runs, but every fit uses this package's
# BOBYQA-type trust-region optimiser (the settings below are its own).
LME4_OPTIMIZERS = ("nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap", "optimx", "nmkbw")
_OPTIMIZER_SETTINGS = {"maxfun": "max_evaluations", "maxeval": "max_evaluations", "rhobeg": "rho_begin", "rhoend": "rho_end"}
_CONTROL_NAMES = {"lmer": ("optimizer", "optCtrl", "calc.derivs"), "glmer": ("optimizer", "optCtrl", "nAGQ0initStep", "tolPwrss")}


@dataclass(frozen=True)
class FitControl:
    """Start values and optimiser settings of a fit (lme4's ``start`` and ``control``).

    ``theta_start``: θ where the optimiser starts (lme4's order; for a GLMM, stage one's start,
    or stage two's without stage one); ``beta_start``: a GLMM's fixed effects where stage two
    starts (lme4's ``start$fixef``); ``initial_stage``: lme4's ``nAGQ0initStep`` (a GLMM's first,
    nAGQ = 0 stage); ``pirls_tolerance``: lme4's ``tolPwrss``; ``max_evaluations``, ``rho_begin``,
    ``rho_end``: the optimiser's budget and its trust region's initial and final radii
    (``optCtrl = list(maxfun=, rhobeg=, rhoend=)``; ``None`` keeps the defaults);
    ``calc_derivs``: lme4's ``calc.derivs``, an LMM's convergence check (a GLMM's derivatives
    come with its standard errors).

    >>> FitControl().initial_stage, FitControl().pirls_tolerance
    (True, 1e-07)
    """

    theta_start: tuple[float, ...] | None = None
    beta_start: tuple[float, ...] | None = None
    initial_stage: bool = True
    pirls_tolerance: float = 1e-7
    max_evaluations: int | None = None
    rho_begin: float | None = None
    rho_end: float | None = None
    calc_derivs: bool = True


def theta_lower_bounds(design: Design) -> np.ndarray:
    """Lower bounds of θ: 0 for the diagonal of each term's λ, −∞ below it (lme4's ``lower``),
    in θ's order (each λ column by column, lower triangle).

    >>> import mixedmodels as mm
    >>> theta_lower_bounds(mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy")).design).tolist()
    [0.0, -inf, 0.0]
    """
    bounds = [0.0 if row == column else -np.inf for term in design.terms for column in range(term.k) for row in range(column, term.k)]
    return np.array(bounds)


def fit_control(kind: ModelKind, start: object, control: Mapping[str, object] | None, design: Design) -> FitControl:
    """lme4's ``start`` (a θ vector, or ``{"theta": ..., "fixef": ...}``; ``fixef`` for
    ``glmer`` only) and ``control`` (a mapping with lme4's names: ``optimizer``, ``optCtrl``
    with ``maxfun``/``maxeval``, ``rhobeg``, ``rhoend``, and for ``glmer`` ``nAGQ0initStep`` and
    ``tolPwrss``) as a :class:`FitControl` for a model of ``design``, or a SpecificationError
    naming what is wrong (θ's start must have θ's length and a non-negative diagonal).

    >>> import mixedmodels as mm
    >>> design = mm.LinearMixedModel.from_formula("Reaction ~ Days + (1 | Subject)", mm.datasets.load("sleepstudy")).design
    >>> fit_control("glmer", {"theta": [1.0], "fixef": [0, 0]}, {"nAGQ0initStep": False}, design).beta_start
    (0.0, 0.0)
    """
    theta_lower = theta_lower_bounds(design)
    theta_start, beta_start = _start_values(kind, start, len(theta_lower), design.x.shape[1])
    if theta_start is not None and np.any(np.array(theta_start) < theta_lower):
        raise SpecificationError("start: the diagonal elements of each term's relative covariance factor (theta) must be >= 0")
    settings = _control_settings(kind, control or {})
    return FitControl(theta_start=theta_start, beta_start=beta_start, **settings)  # type: ignore[arg-type]


def _start_values(kind: ModelKind, start: object, n_theta: int, n_fixed: int) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    if start is None:
        return None, None
    if isinstance(start, Mapping):
        unknown = set(start) - {"theta", "fixef"}
        if unknown:
            raise SpecificationError(f"start has unknown components {sorted(unknown)}: use 'theta' and, for glmer, 'fixef'")
        if "fixef" in start and kind == "lmer":
            raise SpecificationError("start: lmer profiles the fixed effects out, so it takes only 'theta'")
        theta = _vector(start.get("theta"), n_theta, "start['theta']")
        return theta, _vector(start.get("fixef"), n_fixed, "start['fixef']")
    return _vector(start, n_theta, "start (theta)"), None


def _vector(values: object, n: int, what: str) -> tuple[float, ...] | None:
    if values is None:
        return None
    try:
        array = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise SpecificationError(f"{what} must be numbers, not {values!r}") from None
    if array.size != n:
        raise SpecificationError(f"{what} must have {n} values (the model's), not {array.size}")
    if not np.all(np.isfinite(array)):
        raise SpecificationError(f"{what} has missing or non-finite values")
    return tuple(array.tolist())


def _control_settings(kind: ModelKind, control: Mapping[str, object]) -> dict[str, object]:
    if not isinstance(control, Mapping):
        raise SpecificationError(f"control must be a mapping of lme4's {kind}Control() names, not {type(control).__name__}")
    known = _CONTROL_NAMES[kind]
    unknown = [name for name in control if name not in known]
    if unknown:
        raise SpecificationError(f"control: {', '.join(map(repr, unknown))} not supported for {kind}; known: {', '.join(known)}")
    settings: dict[str, object] = {}
    optimizer = control.get("optimizer")
    if optimizer is not None and optimizer not in LME4_OPTIMIZERS:
        raise SpecificationError(f"control: unknown optimizer {optimizer!r}; lme4's are {', '.join(LME4_OPTIMIZERS)}")
    for name, field in (("nAGQ0initStep", "initial_stage"), ("calc.derivs", "calc_derivs")):
        if name in control:
            value = control[name]
            if not isinstance(value, (bool, np.bool_)):
                raise SpecificationError(f"control: {name} must be True or False, not {value!r}")
            settings[field] = bool(value)
    if "tolPwrss" in control:
        settings["pirls_tolerance"] = _positive(control["tolPwrss"], "tolPwrss")
    options = control.get("optCtrl") or {}
    if not isinstance(options, Mapping):
        raise SpecificationError(f"control: optCtrl must be a mapping, not {type(options).__name__}")
    for name, value in options.items():
        if name not in _OPTIMIZER_SETTINGS:
            raise SpecificationError(f"control: optCtrl {name!r} not supported; known: {', '.join(_OPTIMIZER_SETTINGS)}")
        field = _OPTIMIZER_SETTINGS[name]
        if field == "max_evaluations":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
                raise SpecificationError(f"control: optCtrl {name} must be a whole number of at least 1, not {value!r}")
            settings[field] = int(value)
        else:
            settings[field] = _positive(value, f"optCtrl {name}")
    return settings


def _positive(value: object, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 < value < np.inf:
        raise SpecificationError(f"control: {what} must be a positive number, not {value!r}")
    return float(value)
