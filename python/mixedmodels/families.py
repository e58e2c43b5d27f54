"""Families and links of generalized linear mixed models, as R names them: ``Binomial`` (logit,
probit, cloglog, cauchit, log), ``Poisson`` (log, sqrt, identity), ``Gamma`` (inverse, log,
identity), ``InverseGaussian`` (1/mu^2, log, inverse, identity), ``Gaussian`` (identity, log,
inverse) and ``NegativeBinomial`` (NB2, log). The mathematics lives in the compiled core; these
classes name a family, check its link, and evaluate its functions on arrays.

Example
-------
>>> import mixedmodels as mm
>>> fam = mm.families.Binomial(link="probit")
>>> fam.name, fam.link
('binomial', 'probit')
>>> mm.families.resolve("poisson").link
'log'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import _core
from .errors import SpecificationError

__all__ = [
    "Binomial",
    "Family",
    "Gamma",
    "Gaussian",
    "InverseGaussian",
    "NegativeBinomial",
    "Poisson",
    "resolve",
]


@dataclass(frozen=True)
class Family:
    """A distribution and a link; subclasses fix the distribution and its allowed links."""

    link: str
    name: ClassVar[str] = ""
    core_name: ClassVar[str] = ""
    links: ClassVar[tuple[str, ...]] = ()
    has_dispersion: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.link not in self.links:
            raise SpecificationError(
                f"link {self.link!r} is not available for the {self.name} family; choose one of {list(self.links)}"
            )

    @property
    def negative_binomial_theta(self) -> float:
        return 1.0

    @property
    def display_name(self) -> str:
        """The family's name as R prints it."""
        return self.name

    def _values(self, function: str, *arrays: np.ndarray) -> np.ndarray:
        columns = [np.ascontiguousarray(a, dtype=float) for a in arrays]
        return np.asarray(_core.family_values(function, self.core_name, self.link, self.negative_binomial_theta, *columns))

    def inverse_link(self, eta: np.ndarray) -> np.ndarray:
        """μ = g⁻¹(η)."""
        return self._values("inverse_link", eta)

    def link_function(self, mu: np.ndarray) -> np.ndarray:
        """η = g(μ)."""
        return self._values("link", mu)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """dμ/dη."""
        return self._values("mu_eta", eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """The variance function V(μ)."""
        return self._values("variance", mu)

    def deviance_residuals(self, y: np.ndarray, mu: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Squared deviance residuals (R's ``dev.resids``)."""
        return self._values("deviance_residuals", y, mu, weights)


@dataclass(frozen=True)
class Binomial(Family):
    """Binomial: 0/1 responses, proportions with ``weights`` = trials, or ``cbind(successes, failures)``."""

    link: str = "logit"
    name: ClassVar[str] = "binomial"
    core_name: ClassVar[str] = "binomial"
    links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cloglog", "cauchit", "log")


@dataclass(frozen=True)
class Poisson(Family):
    """Poisson counts."""

    link: str = "log"
    name: ClassVar[str] = "poisson"
    core_name: ClassVar[str] = "poisson"
    links: ClassVar[tuple[str, ...]] = ("log", "sqrt", "identity")


@dataclass(frozen=True)
class Gamma(Family):
    """Gamma: positive continuous responses with a dispersion parameter."""

    link: str = "inverse"
    name: ClassVar[str] = "Gamma"
    core_name: ClassVar[str] = "gamma"
    links: ClassVar[tuple[str, ...]] = ("inverse", "log", "identity")
    has_dispersion: ClassVar[bool] = True


@dataclass(frozen=True)
class InverseGaussian(Family):
    """Inverse Gaussian: positive continuous responses with a dispersion parameter."""

    link: str = "1/mu^2"
    name: ClassVar[str] = "inverse.gaussian"
    core_name: ClassVar[str] = "inverse_gaussian"
    links: ClassVar[tuple[str, ...]] = ("1/mu^2", "log", "inverse", "identity")
    has_dispersion: ClassVar[bool] = True


@dataclass(frozen=True)
class Gaussian(Family):
    """Gaussian with a non-identity link (an identity link is a linear mixed model: use ``lmer``)."""

    link: str = "identity"
    name: ClassVar[str] = "gaussian"
    core_name: ClassVar[str] = "gaussian"
    links: ClassVar[tuple[str, ...]] = ("identity", "log", "inverse")
    has_dispersion: ClassVar[bool] = True


@dataclass(frozen=True)
class NegativeBinomial(Family):
    """Negative binomial (NB2, Var = μ + μ²/θ) with size ``theta``; ``theta=None`` estimates it
    as lme4's ``glmer.nb`` does."""

    link: str = "log"
    theta: float | None = None
    name: ClassVar[str] = "negative_binomial"
    core_name: ClassVar[str] = "negative_binomial"
    links: ClassVar[tuple[str, ...]] = ("log",)

    @property
    def negative_binomial_theta(self) -> float:
        if self.theta is None:
            raise SpecificationError("the negative binomial size theta is not known yet")
        return self.theta

    @property
    def display_name(self) -> str:
        return f"Negative Binomial({self.theta:.4f})" if self.theta is not None else "Negative Binomial"


_BY_NAME: dict[str, type[Family]] = {
    "binomial": Binomial,
    "poisson": Poisson,
    "gamma": Gamma,
    "inverse.gaussian": InverseGaussian,
    "inverse_gaussian": InverseGaussian,
    "gaussian": Gaussian,
    "negative_binomial": NegativeBinomial,
    "negative.binomial": NegativeBinomial,
    "nb": NegativeBinomial,
}


def resolve(family: str | Family, link: str | None = None) -> Family:
    """A family object from a name (R's spelling, case-insensitive: ``"binomial"``, ``"Gamma"``,
    ``"inverse.gaussian"``, ...) and an optional link, or the family object itself.

    >>> resolve("Gamma", link="log")
    Gamma(link='log')
    """
    if isinstance(family, Family):
        if link is not None and link != family.link:
            raise SpecificationError(f"the family object already has link {family.link!r}; do not pass link={link!r}")
        return family
    if not isinstance(family, str):
        raise SpecificationError(f"family must be a name or a mixedmodels.families.Family, not {type(family).__name__}")
    cls = _BY_NAME.get(family.lower())
    if cls is None:
        raise SpecificationError(f"unknown family {family!r}; choose one of {sorted(set(_BY_NAME))}")
    return cls() if link is None else cls(link=link)  # type: ignore[call-arg]  # subclasses default the link
