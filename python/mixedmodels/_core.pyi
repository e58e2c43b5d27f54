"""Type stubs of the compiled core (rust/py)."""

from typing import Any

import numpy as np
import numpy.typing as npt

class LinearMixedModel:
    """The θ-free structure of a linear mixed model, reusable for any number of responses."""

    def __init__(
        self,
        x: npt.NDArray[np.float64],
        terms: list[tuple[npt.NDArray[np.uint32], int, npt.NDArray[np.float64]]],
        weights: npt.NDArray[np.float64] | None = None,
        factorization: str = "auto",
    ) -> None: ...
    @property
    def n_theta(self) -> int: ...
    @property
    def is_sparse(self) -> bool: ...
    def objective(self, y: npt.NDArray[np.float64], theta: list[float], reml: bool) -> float: ...
    def fit(
        self,
        y: npt.NDArray[np.float64],
        reml: bool,
        max_evaluations: int = 10000,
    ) -> dict[str, Any]: ...
    def conditional_covariances(self, theta: list[float], sigma: float) -> list[npt.NDArray[np.float64]]: ...

class GeneralizedLinearMixedModel:
    """A generalized linear mixed model: design, response, prior weights, offset and family."""

    def __init__(
        self,
        x: npt.NDArray[np.float64],
        terms: list[tuple[npt.NDArray[np.uint32], int, npt.NDArray[np.float64]]],
        y: npt.NDArray[np.float64],
        weights: npt.NDArray[np.float64],
        offset: npt.NDArray[np.float64],
        family: str,
        link: str,
        negative_binomial_theta: float = 1.0,
        factorization: str = "auto",
    ) -> None: ...
    @property
    def is_sparse(self) -> bool: ...
    def fit(
        self,
        n_agq: int,
        max_evaluations: int = 10000,
    ) -> dict[str, Any]: ...
    def conditional_covariances(
        self, theta: list[float], beta: list[float], dispersion: float
    ) -> list[npt.NDArray[np.float64]]: ...

def family_values(
    function: str,
    family: str,
    link: str,
    negative_binomial_theta: float,
    first: npt.NDArray[np.float64],
    second: npt.NDArray[np.float64] | None = None,
    third: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]: ...

def dependent_columns(x: npt.NDArray[np.float64], tolerance: float) -> list[int]: ...
