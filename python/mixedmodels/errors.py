"""Exception and warning classes raised by mixedmodels.

Every error derives from :class:`MixedModelError`, itself a :class:`ValueError`, so
``except ValueError`` keeps working for callers that do not care about the kind.

Example
-------
>>> import mixedmodels as mm
>>> try:
...     mm.lmer("Reaction ~ Days + (Days | Nobody)", mm.datasets.load("sleepstudy"))
... except mm.FormulaError as err:
...     print(type(err).__name__)
FormulaError
"""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE_DIRECTORY = os.path.dirname(os.path.abspath(__file__))


class MixedModelError(ValueError):
    """Base class of every error raised by mixedmodels."""


class FormulaError(MixedModelError):
    """The formula cannot be parsed or names something the data does not have."""


class DataError(MixedModelError):
    """The data cannot be used as given (non-numeric response, non-finite values, no rows...)."""


class SpecificationError(MixedModelError):
    """The model is not identifiable or not estimable as specified."""


class ConvergenceError(MixedModelError):
    """The optimiser or the factorisation failed so that no estimate can be reported."""


class MixedModelWarning(UserWarning):
    """Base class of every warning issued by mixedmodels."""


class ConvergenceWarning(MixedModelWarning):
    """The optimiser stopped for a reason other than convergence; estimates may be imprecise."""


class SingularFitWarning(MixedModelWarning):
    """The fit is on the boundary: a variance is zero or a correlation is +-1."""


class RankDeficiencyWarning(MixedModelWarning):
    """Fixed-effect columns were dropped because the model matrix is rank deficient."""


class DistributionVarianceWarning(MixedModelWarning):
    """A distribution-specific variance (of ICC and R² for GLMMs) is an approximation that may be
    unreliable here: a Poisson null-model mean below 6, where the lognormal approximation is poor."""


class LeverageWarning(MixedModelWarning):
    """Hat values of a generalized model: lme4's formula with the prior weights only, which may not
    make sense for GLMMs (lme4 warns the same)."""


class SeparationWarning(MixedModelWarning):
    """Fitted probabilities are numerically 0 or 1: a predictor may separate the outcomes."""


def warn(message: str, category: type[Warning]) -> None:
    """Issue a warning attributed to the user's code: the first caller outside this package, however
    deep inside it the warning arises (``lmer`` → model → fit).

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("look", SingularFitWarning)
    >>> caught[0].category.__name__
    'SingularFitWarning'
    """
    frame = sys._getframe(1)
    level = 2  # warnings.warn's level of warn()'s caller
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIRECTORY + os.sep):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
