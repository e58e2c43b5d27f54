"""Type stubs of the compiled core (rust/py).

Models may be used from several threads at once (their calls take turns). Every call releases the
GIL; fits and GLMM objectives stop with ``KeyboardInterrupt`` (or whatever a signal handler raises)
within a fraction of a second of Ctrl-C, leaving the model usable, and other calls raise it when
they end. Fits are immutable; their arrays are built once.
"""

from typing import TypeAlias, final

import numpy as np
import numpy.typing as npt

_FloatArray: TypeAlias = npt.NDArray[np.float64]
_BoolArray: TypeAlias = npt.NDArray[np.bool_]
_Term: TypeAlias = tuple[npt.NDArray[np.uint32], int, _FloatArray]

@final
class Optimization:
    """What the optimiser did: where it started, how many evaluations it took, why it stopped."""

    @property
    def theta_start(self) -> _FloatArray: ...
    @property
    def n_evaluations(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def converged(self) -> bool: ...
    @property
    def n_set_to_boundary(self) -> int: ...
    @property
    def derivatives(self) -> ObjectiveDerivatives | None:
        """Gradient and Hessian of the objective at the optimum (lme4's ``optinfo$derivs``), if computed."""

@final
class ObjectiveDerivatives:
    """Central-difference gradient and Hessian of an objective (lme4's ``deriv12``)."""

    @property
    def gradient(self) -> _FloatArray: ...
    @property
    def hessian(self) -> _FloatArray: ...

@final
class LinearFit:
    """The estimates of a linear mixed model fit."""

    @property
    def theta(self) -> _FloatArray: ...
    @property
    def beta(self) -> _FloatArray: ...
    @property
    def beta_covariance(self) -> _FloatArray: ...
    @property
    def sigma(self) -> float: ...
    @property
    def ranef(self) -> list[_FloatArray]: ...
    @property
    def objective(self) -> float: ...
    @property
    def deviance_ml(self) -> float: ...
    @property
    def pwrss(self) -> float: ...
    @property
    def log_det_random(self) -> float: ...
    @property
    def log_det_fixed(self) -> float: ...
    @property
    def fitted(self) -> _FloatArray: ...
    @property
    def optimization(self) -> Optimization: ...

@final
class GeneralizedFit:
    """The estimates of a generalized linear mixed model fit."""

    @property
    def theta(self) -> _FloatArray: ...
    @property
    def beta(self) -> _FloatArray: ...
    @property
    def beta_covariance_hessian(self) -> _FloatArray | None: ...
    @property
    def beta_covariance_factor(self) -> _FloatArray: ...
    @property
    def ranef(self) -> list[_FloatArray]: ...
    @property
    def objective(self) -> float: ...
    @property
    def minus_twice_log_likelihood(self) -> float: ...
    @property
    def sum_deviance_residuals(self) -> float: ...
    @property
    def sum_squared_u(self) -> float: ...
    @property
    def log_det_random(self) -> float: ...
    @property
    def dispersion(self) -> float: ...
    @property
    def eta(self) -> _FloatArray: ...
    @property
    def mu(self) -> _FloatArray: ...
    @property
    def pirls_converged(self) -> bool: ...
    @property
    def optimization(self) -> Optimization: ...

@final
class LinearBootstrap:
    """The estimates of every replicate of a parametric bootstrap, one row per replicate (NaN where
    a refit failed)."""

    @property
    def theta(self) -> _FloatArray:
        """θ of every refit, (n, n_theta)."""
    @property
    def beta(self) -> _FloatArray:
        """β of every refit, (n, p)."""
    @property
    def sigma(self) -> _FloatArray:
        """σ of every refit."""
    @property
    def objective(self) -> _FloatArray:
        """The optimised criterion (REML criterion or −2 log L) of every refit."""
    @property
    def converged(self) -> _BoolArray:
        """Whether every refit's optimiser converged."""

@final
class GeneralizedBootstrap:
    """The estimates of every replicate of a GLMM's parametric bootstrap, one row per replicate
    (NaN where a refit failed)."""

    @property
    def theta(self) -> _FloatArray:
        """θ of every refit, (n, n_theta)."""
    @property
    def beta(self) -> _FloatArray:
        """β of every refit, (n, p)."""
    @property
    def sigma(self) -> _FloatArray:
        """σ = √dispersion of every refit (1 for the families without a dispersion)."""
    @property
    def deviance(self) -> _FloatArray:
        """−2 log L of every refit."""
    @property
    def converged(self) -> _BoolArray:
        """Whether every refit's optimiser converged."""

@final
class KenwardRogerAdjustment:
    """Kenward and Roger's ingredients over m covariance parameters (every term's covariance
    elements, lower triangle by column, then σ²)."""

    @property
    def beta_covariance(self) -> _FloatArray:
        """Φ = (XᵀV⁻¹X)⁻¹, (p, p)."""
    @property
    def adjusted_beta_covariance(self) -> _FloatArray:
        """Φ_A, the adjusted covariance of β̂, (p, p)."""
    @property
    def information_derivatives(self) -> _FloatArray:
        """Pᵢ = ∂(XᵀV⁻¹X)/∂γᵢ, (m, p, p)."""
    @property
    def parameter_covariance(self) -> _FloatArray:
        """W = 2I⁻¹, the asymptotic covariance of the covariance parameters, (m, m)."""
    @property
    def smallest_information_eigenvalue(self) -> float:
        """The smallest |eigenvalue| of the information I."""

class VarianceParameterDerivatives:
    """Derivatives in the variance parameters φ = (θ, σ), k = n_θ + 1 of them, at the estimates."""

    @property
    def hessian(self) -> _FloatArray:
        """H, the Hessian of the deviance in φ (σ not profiled out), (k, k)."""
    @property
    def hessian_eigenvalues(self) -> _FloatArray:
        """H's eigenvalues, ascending."""
    @property
    def covariance(self) -> _FloatArray:
        """A = 2H⁺, the asymptotic covariance of φ̂, (k, k)."""
    @property
    def beta_covariance_jacobian(self) -> _FloatArray:
        """∂Cov(β̂)/∂φᵢ, (k, p, p)."""

@final
class ParameterProfile:
    """One parameter's likelihood profile."""

    @property
    def values(self) -> _FloatArray:
        """The profiled parameter's values, ascending."""
    @property
    def zeta(self) -> _FloatArray:
        """ζ at each value."""
    @property
    def parameters(self) -> _FloatArray:
        """Every parameter (variance parameters, then β) at each point, (points, parameters)."""
    @property
    def lower(self) -> _FloatArray:
        """Per cutoff, the lower bound (NaN where the profile did not get there)."""
    @property
    def upper(self) -> _FloatArray:
        """Per cutoff, the upper bound."""

@final
class LikelihoodProfile:
    """The profiles of every parameter of a fit: variance parameters, then fixed effects."""

    @property
    def estimates(self) -> _FloatArray:
        """The estimates (an LMM's ML ones)."""
    @property
    def deviance(self) -> float:
        """The deviance at the estimates (an LMM's ML deviance less the −Σ log wᵢ constant)."""
    @property
    def parameters(self) -> list[ParameterProfile]:
        """One profile per parameter."""

@final
class LinearMixedModel:
    """The θ-free structure of a linear mixed model, reusable for any number of responses."""

    def __init__(
        self,
        x: _FloatArray,
        terms: list[_Term],
        weights: _FloatArray | None = None,
        factorization: str = "auto",
    ) -> None: ...
    @property
    def n_theta(self) -> int: ...
    @property
    def is_sparse(self) -> bool: ...
    def objective(self, y: _FloatArray, theta: list[float] | _FloatArray, reml: bool) -> float: ...
    def fit(
        self,
        y: _FloatArray,
        reml: bool,
        max_evaluations: int = 10000,
        theta_start: list[float] | None = None,
        rho_begin: float | None = None,
        rho_end: float | None = None,
        derivatives: bool = True,
    ) -> LinearFit: ...
    def objective_derivatives(self, y: _FloatArray, theta: list[float] | _FloatArray, reml: bool) -> ObjectiveDerivatives:
        """Central-difference gradient and Hessian of the profiled objective in θ at theta."""
    def conditional_covariances(self, theta: list[float] | _FloatArray, sigma: float) -> list[_FloatArray]: ...
    def hat_values(self, theta: list[float] | _FloatArray) -> _FloatArray:
        """lme4's hatvalues(m) at θ: the diagonal of the penalised least-squares hat matrix."""
    def profile(self, y: _FloatArray, cutoffs: list[float], max_evaluations: int = 10000) -> LikelihoodProfile:
        """Fit y by ML and profile every parameter out to the largest cutoff (|ζ|), with the
        interval bounds at each cutoff; stops early on Ctrl-C."""
    def variance_parameter_derivatives(
        self, y: _FloatArray, theta: list[float] | _FloatArray, sigma: float, reml: bool
    ) -> VarianceParameterDerivatives:
        """Derivatives in φ = (θ, σ) at (θ, σ) for response y (lmerTest's Satterthwaite
        ingredients); stops early on Ctrl-C."""
    def kenward_roger_adjustment(self, theta: list[float] | _FloatArray, sigma: float) -> KenwardRogerAdjustment:
        """Kenward and Roger's adjusted covariance of β̂ and its ingredients at (θ, σ) (pbkrtest's
        `vcovAdj`); stops early on Ctrl-C."""
    def simulate(
        self,
        theta: list[float] | _FloatArray,
        beta: list[float] | _FloatArray,
        sigma: float,
        nsim: int,
        seed: int,
        offset: _FloatArray | None = None,
    ) -> _FloatArray:
        """nsim responses simulated at (θ, β, σ) with new random effects, plus offset: (n, nsim),
        column r being replicate r of seed."""
    def bootstrap(
        self,
        theta: list[float] | _FloatArray,
        beta: list[float] | _FloatArray,
        sigma: float,
        reml: bool,
        n: int,
        seed: int,
        max_evaluations: int = 10000,
    ) -> LinearBootstrap:
        """Parametric bootstrap: n simulated responses refitted from θ, in parallel; stops early
        on Ctrl-C."""

@final
class GeneralizedLinearMixedModel:
    """A generalized linear mixed model: design, response, prior weights, offset and family."""

    def __init__(
        self,
        x: _FloatArray,
        terms: list[_Term],
        y: _FloatArray,
        weights: _FloatArray,
        offset: _FloatArray,
        family: str,
        link: str,
        negative_binomial_theta: float = 1.0,
        factorization: str = "auto",
        laplace: str = "exact",
        theta_start: list[float] | None = None,
        beta_start: list[float] | None = None,
        initial_stage: bool = True,
        pirls_tolerance: float = 1e-7,
    ) -> None: ...
    @property
    def n_theta(self) -> int: ...
    @property
    def is_sparse(self) -> bool: ...
    def fit(self, n_agq: int, max_evaluations: int = 10000, rho_begin: float | None = None, rho_end: float | None = None) -> GeneralizedFit: ...
    def fit_negative_binomial(self, n_agq: int, max_evaluations: int = 10000) -> tuple[float, GeneralizedFit]:
        """lme4's glmer.nb on this model's data: the estimated size and the fit at it."""
    def profile(self, n_agq: int, cutoffs: list[float], max_evaluations: int = 10000) -> LikelihoodProfile:
        """Fit with n_agq ≥ 1 nodes and profile every parameter (sds and correlations, then β) out
        to the largest cutoff (|ζ|), with the interval bounds at each cutoff; stops early on Ctrl-C."""
    def objective(
        self,
        theta: list[float] | _FloatArray,
        beta: list[float] | _FloatArray | None = None,
        n_agq: int = 1,
    ) -> float: ...
    def objective_derivatives(
        self,
        theta: list[float] | _FloatArray,
        beta: list[float] | _FloatArray,
        n_agq: int = 1,
    ) -> ObjectiveDerivatives:
        """Central-difference gradient and Hessian of stage two's objective in (θ, β) at (θ, β)."""
    def conditional_covariances(
        self, theta: list[float] | _FloatArray, beta: list[float] | _FloatArray, dispersion: float
    ) -> list[_FloatArray]: ...
    def simulate(
        self, theta: list[float] | _FloatArray, beta: list[float] | _FloatArray, dispersion: float, nsim: int, seed: int
    ) -> _FloatArray:
        """nsim responses simulated at (θ, β) and the dispersion with new random effects
        (binomial: proportions): (n, nsim), column r being replicate r of seed."""
    def bootstrap(
        self,
        theta: list[float] | _FloatArray,
        beta: list[float] | _FloatArray,
        dispersion: float,
        n_agq: int,
        n: int,
        seed: int,
        max_evaluations: int = 10000,
    ) -> GeneralizedBootstrap:
        """Parametric bootstrap: n simulated responses, each fitted as a new model with n_agq, in
        parallel; stops early on Ctrl-C."""

@final
class LinearBatchFit:
    """Every gene's estimates of a batch fit, one row per gene (NaN where ``errors`` says why
    there are none)."""

    @property
    def theta(self) -> _FloatArray:
        """θ of every gene, (G, n_theta)."""
    @property
    def beta(self) -> _FloatArray:
        """β of every gene, (G, p)."""
    @property
    def beta_covariance(self) -> _FloatArray:
        """Cov(β̂) of every gene, (G, p, p)."""
    @property
    def sigma(self) -> _FloatArray: ...
    @property
    def objective(self) -> _FloatArray:
        """The optimised criterion (REML criterion or −2 log L) of every gene."""
    @property
    def deviance_ml(self) -> _FloatArray:
        """−2 log L at every gene's estimates."""
    @property
    def converged(self) -> _BoolArray: ...
    @property
    def n_evaluations(self) -> npt.NDArray[np.uintp]: ...
    @property
    def n_obs(self) -> npt.NDArray[np.uintp]:
        """Observations each gene was fitted to (its finite responses)."""
    @property
    def errors(self) -> list[str | None]:
        """Per gene, why it has no estimates, or None."""

@final
class BatchVarianceParameterDerivatives:
    """Every gene's Satterthwaite ingredients over k = n_θ + 1 variance parameters (NaN where
    ``errors`` says why there are none)."""

    @property
    def covariance(self) -> _FloatArray:
        """A = 2H⁺ of every gene, (G, k, k)."""
    @property
    def hessian_eigenvalues(self) -> _FloatArray:
        """H's eigenvalues of every gene, ascending, (G, k)."""
    @property
    def beta_covariance_jacobian(self) -> _FloatArray:
        """∂Cov(β̂)/∂φᵢ of every gene, (G, k, p, p)."""
    @property
    def errors(self) -> list[str | None]: ...

@final
class DeletionFits:
    """Every deletion unit's estimates, one row per unit (NaN where ``errors`` says why there
    are none)."""

    @property
    def theta(self) -> _FloatArray:
        """θ without each unit, (U, n_theta)."""
    @property
    def beta(self) -> _FloatArray:
        """β without each unit, (U, p)."""
    @property
    def beta_covariance(self) -> _FloatArray:
        """Cov(β̂) without each unit, (U, p, p)."""
    @property
    def sigma(self) -> _FloatArray:
        """σ (or √dispersion) without each unit."""
    @property
    def converged(self) -> _BoolArray: ...
    @property
    def n_evaluations(self) -> npt.NDArray[np.uintp]: ...
    @property
    def n_rows_deleted(self) -> npt.NDArray[np.uintp]:
        """Rows each unit removes."""
    @property
    def errors(self) -> list[str | None]:
        """Per unit, why it has no estimates, or None."""

def linear_case_deletion(
    x: _FloatArray,
    terms: list[_Term],
    y: _FloatArray,
    units: npt.NDArray[np.uint32],
    n_units: int,
    reml: bool,
    theta: list[float],
    beta: list[float],
    sigma: float,
    method: str,
    weights: _FloatArray | None = None,
    factorization: str = "auto",
    max_evaluations: int = 10000,
    threads: int = 0,
) -> DeletionFits:
    """Refit a linear mixed model without each deletion unit (units[i]: row i's unit) from the
    full fit's (θ, β, σ), by method "exact" or "one-step", on ``threads`` threads (0: all)."""

def generalized_case_deletion(
    x: _FloatArray,
    terms: list[_Term],
    y: _FloatArray,
    weights: _FloatArray,
    offset: _FloatArray,
    family: str,
    link: str,
    units: npt.NDArray[np.uint32],
    n_units: int,
    theta: list[float],
    beta: list[float],
    negative_binomial_theta: float = 1.0,
    n_agq: int = 1,
    factorization: str = "auto",
    laplace: str = "exact",
    max_evaluations: int = 10000,
    threads: int = 0,
) -> DeletionFits:
    """Refit a generalized linear mixed model without each deletion unit, exactly (stage two from
    the full fit's θ and β)."""

def fit_linear_batch(
    x: _FloatArray,
    terms: list[_Term],
    y: _FloatArray,
    reml: bool,
    weights: _FloatArray | None = None,
    factorization: str = "auto",
    max_evaluations: int = 10000,
    threads: int = 0,
) -> LinearBatchFit:
    """Fit the structure (x: n × p, Fortran order) to every column of y (n × G, Fortran order,
    NaN = missing) with its column of weights, each gene from lme4's start, on ``threads``
    threads (0: all); stops early on Ctrl-C."""

def linear_batch_variance_parameter_derivatives(
    x: _FloatArray,
    terms: list[_Term],
    y: _FloatArray,
    theta: _FloatArray,
    sigma: _FloatArray,
    reml: bool,
    weights: _FloatArray | None = None,
    factorization: str = "auto",
    threads: int = 0,
) -> BatchVarianceParameterDerivatives:
    """Every gene's Satterthwaite ingredients at its (θ, σ) (theta: G × n_θ), each gene on its
    rows and weights as fit_linear_batch fits it; stops early on Ctrl-C."""

@final
class BatchKenwardRoger:
    """Every gene's Kenward–Roger ingredients over m = n_θ + 1 covariance parameters (NaN where
    ``errors`` says why there are none)."""

    @property
    def adjusted_beta_covariance(self) -> _FloatArray:
        """Φ_A of every gene, (G, p, p)."""
    @property
    def information_derivatives(self) -> _FloatArray:
        """The Pᵢ of every gene, (G, m, p, p)."""
    @property
    def parameter_covariance(self) -> _FloatArray:
        """W of every gene, (G, m, m)."""
    @property
    def errors(self) -> list[str | None]: ...

def linear_batch_kenward_roger(
    x: _FloatArray,
    terms: list[_Term],
    y: _FloatArray,
    theta: _FloatArray,
    sigma: _FloatArray,
    weights: _FloatArray | None = None,
    factorization: str = "auto",
    threads: int = 0,
) -> BatchKenwardRoger:
    """Every gene's Kenward–Roger ingredients at its REML (θ, σ) (theta: G × n_θ), each gene on
    its rows and weights as fit_linear_batch fits it; stops early on Ctrl-C."""

@final
class CountBatchFit:
    """Every gene's estimates of a batch count fit (NaN where ``errors`` says why there are none)."""

    @property
    def theta(self) -> _FloatArray: ...
    @property
    def beta(self) -> _FloatArray: ...
    @property
    def beta_covariance(self) -> _FloatArray: ...
    @property
    def hessian_covariance(self) -> _BoolArray: ...
    @property
    def objective(self) -> _FloatArray: ...
    @property
    def minus_twice_log_likelihood(self) -> _FloatArray: ...
    @property
    def size(self) -> _FloatArray: ...
    @property
    def converged(self) -> _BoolArray: ...
    @property
    def pirls_converged(self) -> _BoolArray: ...
    @property
    def n_obs(self) -> npt.NDArray[np.uintp]: ...
    @property
    def errors(self) -> list[str | None]: ...

def fit_count_batch(
    x: _FloatArray,
    terms: list[_Term],
    y: _FloatArray,
    offset: _FloatArray,
    family: str,
    n_agq: int = 1,
    laplace: str = "exact",
    factorization: str = "auto",
    max_evaluations: int = 10000,
    threads: int = 0,
) -> CountBatchFit:
    """Fit the structure (x: n × p, Fortran order) with log link and the common offset to every
    column of y (n × G, Fortran-ordered counts, NaN = missing): family "poisson" or
    "negative_binomial" (size estimated per gene as glmer.nb), n_agq 0 or 1, laplace "exact" or
    "lme4"; each gene from lme4's start, on ``threads`` threads (0: all); stops early on Ctrl-C."""

def family_values(
    function: str,
    family: str,
    link: str,
    negative_binomial_theta: float,
    first: _FloatArray,
    second: _FloatArray | None = None,
    third: _FloatArray | None = None,
) -> _FloatArray: ...
def dependent_columns(x: _FloatArray, tolerance: float) -> list[int]: ...
def column_transform(columns: _FloatArray) -> tuple[_FloatArray, _FloatArray, bool]:
    """T and T⁻¹ (k × k) of z' = z T centring and scaling the columns of ``columns`` (n × k, C- or
    Fortran-ordered), and whether T is the identity."""
def map_theta(theta: _FloatArray, sizes: list[int], transforms: list[_FloatArray | None]) -> _FloatArray:
    """Rows of θ with each term's block (size k) mapped through its C-ordered k × k transform T
    (Λ ↦ the lower-triangular L ≥ 0 on the diagonal with L Lᵀ = T Λ Λᵀ Tᵀ); None leaves it."""
def encode_strings(offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint32], list[str]]:
    """Each row's level among the sorted distinct strings data[offsets[i]:offsets[i + 1]] (Arrow's
    string layout) and the levels themselves, in level order."""
