"""Which grouping factors a plot shows: ``group=`` checked against the model's grouping factors.

Example
-------
>>> import mixedmodels as mm
>>> m = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
>>> grouping_factors(m, None)
['plate', 'sample']
>>> grouping_factors(m, "sample")
['sample']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DataError

if TYPE_CHECKING:
    from ..formula.design import GroupingFactor
    from ..results.base import MixedModelResult


def model_grouping_factors(result: MixedModelResult) -> dict[str, GroupingFactor]:
    """The model's grouping factors by name, in the order of its random-effects terms.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> model_grouping_factors(m)["Subject"].n_levels
    18
    """
    return {term.group_name: term.factor for term in result.design.terms}


def grouping_factor(result: MixedModelResult, name: str, argument: str = "group") -> GroupingFactor:
    """The grouping factor ``name``; a DataError naming it (and ``argument``) when the model has none
    by that name.

    >>> import mixedmodels as mm
    >>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    >>> grouping_factor(m, "Days")
    Traceback (most recent call last):
    ...
    mixedmodels.errors.DataError: group='Days' is not a grouping factor of the model; its grouping factors: 'Subject'
    """
    factors = model_grouping_factors(result)
    if not isinstance(name, str) or name not in factors:
        known = ", ".join(map(repr, factors))
        raise DataError(f"{argument}={name!r} is not a grouping factor of the model; its grouping factors: {known}")
    return factors[name]


def grouping_factors(result: MixedModelResult, group: str | None) -> list[str]:
    """The grouping factors a plot of ``group=`` shows: all of them for ``None``, else ``group``
    checked (see :func:`grouping_factor`)."""
    if group is None:
        return list(model_grouping_factors(result))
    grouping_factor(result, group)
    return [group]
