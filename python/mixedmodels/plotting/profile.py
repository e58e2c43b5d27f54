"""ζ plots of a likelihood profile (lme4's ``xyplot(profile(m))``): the signed square root of
the deviance change, ζ, against each parameter, with the ζ = ±z lines of the confidence levels
and the profile intervals where the curve crosses them.

Example
-------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import mixedmodels as mm
>>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
>>> fig = profile_plot(m.profile())
>>> [ax.get_xlabel() for ax in fig.axes]
['sd_(Intercept)|Batch', 'sigma', 'Intercept']
>>> matplotlib.pyplot.close(fig)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from ..errors import SpecificationError
from ..inference.profile import LikelihoodProfile
from .backend import panels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# lme4's xyplot.thpr draws the levels 50, 80, 90, 95 and 99 %.
DEFAULT_LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)


def profile_plot(
    profile: LikelihoodProfile,
    parameters: Sequence[str] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    ax: Axes | None = None,
    fig: Figure | None = None,
) -> Axes | Figure:
    """ζ against each of ``parameters`` (default: every profiled parameter), a panel each: the
    profile's points joined (``lines[0]``, x the parameter's values and y ζ as in
    ``profile.profiles[name]``), dashed horizontal lines at ζ = ±z for each of ``levels`` up to the
    profile's own level (``lines[1:]``, pairs from the lowest level up) and vertical segments at
    that level's profile interval (``collections[0]``). Returns the Axes for one panel, the Figure
    for several (or when ``fig`` is given).

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import mixedmodels as mm
    >>> m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    >>> ax = profile_plot(m.profile(), parameters=["sigma"])
    >>> ax.get_ylabel()
    'ζ'
    >>> matplotlib.pyplot.close(ax.figure)
    """
    if not isinstance(profile, LikelihoodProfile):
        raise SpecificationError(f"profile must be a likelihood profile (m.profile()), not {type(profile).__name__}")
    names = list(profile.profiles) if parameters is None else [parameters] if isinstance(parameters, str) else list(parameters)
    unknown = [name for name in names if name not in profile.profiles]
    if unknown or not names:
        raise SpecificationError(f"no profile of {unknown or 'any parameter'}; the profiled parameters: {', '.join(profile.profiles)}")
    shown = sorted(level for level in levels if 0 < level <= profile.level)
    if len(shown) != len(levels):
        raise SpecificationError(f"levels must be between 0 and the profile's level {profile.level:g}, not {list(levels)}")
    intervals = [profile.confint(level).table for level in shown]
    cutoffs = stats.norm.ppf(0.5 + np.array(shown) / 2)
    figure, axes = panels(len(names), fig, ax, what="one per parameter; parameters= picks them")
    for panel, name in zip(axes, names):
        table = profile.profiles[name]
        panel.plot(table[name].to_numpy(), table["zeta"].to_numpy(), color="C0", linewidth=1.5)
        for cutoff in cutoffs:
            panel.axhline(-cutoff, color="0.6", linewidth=0.7, linestyle="--")
            panel.axhline(cutoff, color="0.6", linewidth=0.7, linestyle="--")
        bounds = np.array([[interval.loc[name, "lower"], interval.loc[name, "upper"]] for interval in intervals])
        panel.vlines(bounds.ravel(), 0.0, np.column_stack([-cutoffs, cutoffs]).ravel(), color="0.6", linewidth=0.7)
        panel.set_xlabel(name)
        panel.set_ylabel("ζ")
    return figure if figure is not None else axes[0]
