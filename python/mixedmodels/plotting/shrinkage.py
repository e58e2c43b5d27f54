"""The partial-pooling plot: each group's own least-squares estimates against its mixed-model
estimates β̂ + b̂ᵢ, with arrows from the first to the second and the population estimate β̂
(Gelman and Hill 2007, ch. 12; lme4's ``coef(m)`` against ``coef(lmList(...))``).

Example
-------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mixedmodels as mm
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> ax = shrinkage_plot(m)
>>> ax.get_xlabel(), ax.get_ylabel()
('(Intercept)', 'Days')
>>> matplotlib.pyplot.close(ax.figure)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import SpecificationError
from ..results.base import MixedModelResult
from ..results.linear import LmerResult
from ..results.names import display_name
from .backend import single_axes
from .ranef import label_positions
from .selection import grouping_factor

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class GroupEstimates:
    """Per-group estimates of the random-effect columns: ``least_squares`` (each group's own fit,
    NaN for a group whose columns do not identify them, e.g. one observation or a constant
    slope covariate), ``mixed`` (β̂ + b̂ᵢ, lme4's ``coef(m)``) and ``population`` (β̂)."""

    least_squares: pd.DataFrame
    mixed: pd.DataFrame
    population: pd.Series


def group_estimates(result: MixedModelResult, group: str | None = None) -> GroupEstimates:
    """Each group's least-squares and mixed-model estimates of the random-effect columns, for a
    linear mixed model whose random effects are an intercept and at most one slope on one
    grouping factor, each also a fixed effect. The least-squares estimates fit y on those columns
    within each group (weighted by the model's weights) with every other fixed effect held at its
    estimate (its contribution, with any offset, subtracted from y): with no other fixed effects,
    a separate regression per group (lme4's ``lmList``).

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> group_estimates(m).least_squares.round(1)["Intercept"].tolist()
    [1505.0, 1528.0, 1564.0, 1498.0, 1600.0, 1470.0]
    """
    if not isinstance(result, LmerResult):
        raise SpecificationError(f"the shrinkage plot needs a linear mixed model (an lmer fit), not {type(result).__name__}")
    design = result.design
    factors = {term.group_name for term in design.terms}
    if group is None and len(factors) > 1:
        raise SpecificationError(f"the shrinkage plot shows one grouping factor and the model has {len(factors)}; choose one with group=")
    name = group if group is not None else design.terms[0].group_name
    factor = grouping_factor(result, name)
    if len(factors) > 1:
        raise SpecificationError(f"the shrinkage plot needs random effects on one grouping factor ({name!r}); the model also has {sorted(factors - {name})}")
    modes = result.ranef()[name]
    columns = [str(column) for column in modes.columns]
    if len(columns) > 2:
        raise SpecificationError(f"the shrinkage plot shows at most two random-effect columns (an intercept and a slope), not {columns}")
    missing = [column for column in columns if column not in design.fixed_names]
    if missing:
        raise SpecificationError(f"the shrinkage plot needs every random-effect column among the fixed effects; {missing} is not")
    positions = [design.fixed_names.index(column) for column in columns]
    others = np.setdiff1d(np.arange(len(design.fixed_names)), positions)
    z = design.x[:, positions]
    target = design.y - design.x[:, others] @ result.params.to_numpy()[others] - result._offset()
    weights = np.ones(design.nobs) if design.weights is None else design.weights
    estimates = _grouped_least_squares(z, target, weights, factor.codes.astype(np.int64), factor.n_levels)
    population = result.params.iloc[positions]
    return GroupEstimates(
        least_squares=pd.DataFrame(estimates, index=modes.index, columns=columns),
        mixed=modes[columns] + population.to_numpy(),
        population=population,
    )


def _grouped_least_squares(z: np.ndarray, y: np.ndarray, w: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group g the solution of (Z_gᵀW_gZ_g) c = Z_gᵀW_g y_g, (groups × k); NaN rows where
    Z_gᵀW_gZ_g is singular. The cross-products are summed by group, the k × k systems solved
    together."""
    k = z.shape[1]
    cross = np.stack([np.bincount(codes, w * z[:, i] * z[:, j], minlength=n_groups) for i in range(k) for j in range(k)], axis=1)
    cross = cross.reshape(n_groups, k, k)
    right = np.stack([np.bincount(codes, w * z[:, i] * y, minlength=n_groups) for i in range(k)], axis=1)
    diagonal = np.diagonal(cross, axis1=1, axis2=2)
    # Singular when the determinant is negligible against the product of the diagonal (a relative
    # test, independent of the columns' scales).
    identified = np.linalg.det(cross) > 1e-10 * np.prod(diagonal, axis=1)
    solvable = np.where(identified[:, None, None], cross, np.eye(k))
    solution = np.linalg.solve(solvable, right[:, :, None])[:, :, 0]
    solution[~identified] = np.nan
    return solution


def shrinkage_plot(result: MixedModelResult, group: str | None = None, ax: Axes | None = None) -> Axes:
    """The partial-pooling plot of :func:`group_estimates`. For an intercept and a slope, the
    slope (y) against the intercept (x) per group: open circles for the least-squares estimates
    (``ax.collections[0]``), filled ones for the mixed-model estimates (``collections[1]``), arrows
    from the first to the second (``collections[2]``) and a cross at β̂ (``collections[3]``). For
    one column, the groups on y (sorted by their least-squares estimate; the extremes labelled
    when there are more than 40) and the estimates on x, with a vertical line at β̂ (``lines[0]``)
    in place of the cross. Groups whose least-squares estimates do not exist get no arrow.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> ax = shrinkage_plot(m)
    >>> ax.collections[1].get_offsets()[:, 0].round(1).tolist()
    [1509.9, 1527.9, 1556.1, 1504.4, 1584.2, 1482.5]
    >>> matplotlib.pyplot.close(ax.figure)
    """
    estimates = group_estimates(result, group)
    ax = single_axes(ax)
    ols = estimates.least_squares.to_numpy()
    mixed = estimates.mixed.to_numpy()
    columns = list(estimates.mixed.columns)
    if len(columns) == 2:
        x_ols, y_ols, x_mixed, y_mixed = ols[:, 0], ols[:, 1], mixed[:, 0], mixed[:, 1]
        ax.set_xlabel(display_name(columns[0]))
        ax.set_ylabel(display_name(columns[1]))
    else:
        order = np.argsort(ols[:, 0], kind="stable")
        x_ols, x_mixed = ols[:, 0], mixed[:, 0]
        y_ols = y_mixed = np.argsort(order).astype(float)  # each group's rank in that order
        labelled = label_positions(len(order))
        ax.set_yticks(labelled, [str(label) for label in estimates.mixed.index[order[labelled]]])
        ax.set_xlabel(display_name(columns[0]))
        ax.set_ylabel(estimates.mixed.index.name or "group")
    ax.scatter(x_ols, y_ols, s=24, facecolors="none", edgecolors="C0", label="within-group least squares")
    ax.scatter(x_mixed, y_mixed, s=24, color="C1", label="mixed model (β̂ + b̂)", zorder=3)
    ax.quiver(x_ols, y_ols, x_mixed - x_ols, y_mixed - y_ols, angles="xy", scale_units="xy", scale=1, color="0.5", width=0.003)
    if len(columns) == 2:
        population = estimates.population.to_numpy()
        ax.scatter(population[0], population[1], marker="P", s=120, color="k", label="population (β̂)", zorder=4)
    else:
        ax.axvline(float(estimates.population.iloc[0]), color="k", linewidth=1, label="population (β̂)")
    ax.legend(fontsize="small")
    return ax
