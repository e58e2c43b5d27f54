"""Responses simulated from fitted mixed models (lme4's ``simulate(m, use.u = FALSE)``).

Replicates are random, so there are no R values to compare with: a large draw's moments are
checked against the model's, y* ~ N(offset + Xβ̂, V) with V = Σⱼ Zⱼ Σⱼ Zⱼᵀ + σ̂² W⁻¹ and
Σⱼ = σ̂² λⱼλⱼᵀ, each statistic within 4.5 of its sampling standard errors; the same checks are shown
to reject a wrong σ and a missing random effect. GLMM responses are checked the same way against
moments integrated over the random effects ZΛu (u standard normal, not scaled by σ̂ for the
families with a dispersion φ̂, whose conditional variance is φ̂V(μ)/w).
"""

from __future__ import annotations

import numpy as np
import pytest

import mixedmodels as mm
from conftest import ReferenceFits
from mixedmodels.inference import simulate

N_SIMULATIONS = 4000
# Standard errors a statistic may miss by: over a few hundred statistics of a fixed draw, a
# correct model stays inside while a wrong σ or a missing term is far outside.
STANDARD_ERRORS = 4.5
# The sample variance of a lognormal–Poisson mixture is right-skewed and its SE, estimated from the
# draws' fourth moment, too small: grouseticks' (Var η ≈ 1.1) miss by up to 6.4 such SEs over its
# 403 observations at 20,000 draws, for any seed tried, while the means stay within 3.2.
GLMM_VARIANCE_STANDARD_ERRORS = 7.0


def model_covariance(result: mm.LmerResult, sigma: float, with_random_effects: bool = True) -> np.ndarray:
    """V = Σⱼ Zⱼ (σ²λⱼλⱼᵀ) Zⱼᵀ + σ² W⁻¹, n × n, from θ (lme4's layout) written out densely."""
    design = result.design
    weights = design.weights if design.weights is not None else np.ones(result.nobs)
    covariance = np.diag(sigma**2 / weights)
    first = 0
    for term in design.terms:
        k = term.z.shape[1]
        lam = np.zeros((k, k))
        rows, cols = np.array([(row, col) for col in range(k) for row in range(col, k)]).T
        lam[rows, cols] = result.theta[first : first + len(rows)]
        first += len(rows)
        same_level = term.factor.codes[:, None] == term.factor.codes[None, :]
        if with_random_effects:
            covariance += same_level * (term.z @ (sigma**2 * lam @ lam.T) @ term.z.T)
    return covariance


def standardized_misses(y: np.ndarray, mean: np.ndarray, covariance: np.ndarray, pairs: np.ndarray) -> tuple[float, float]:
    """The largest |statistic − model| / SE over the observations' means and the covariances of
    ``pairs`` (rows of index pairs), for draws ``y`` (n × m)."""
    m = y.shape[1]
    variances = np.diag(covariance)
    mean_miss = np.abs(y.mean(axis=1) - mean) / np.sqrt(variances / m)
    centred = y - y.mean(axis=1, keepdims=True)
    i, j = pairs.T
    sample = np.einsum("pm,pm->p", centred[i], centred[j]) / (m - 1)
    expected = covariance[i, j]
    se = np.sqrt((variances[i] * variances[j] + expected**2) / m)
    return float(mean_miss.max()), float((np.abs(sample - expected) / se).max())


@pytest.mark.parametrize("case_id", ["sleepstudy_reml", "synth_weighted_lmm", "synth_offset_lmm", "penicillin_reml", "pastes_nested_reml"])
def test_simulated_responses_have_the_models_moments(reference_fits: ReferenceFits, case_id: str) -> None:
    result = reference_fits.lmer(case_id)
    y = simulate(result, nsim=N_SIMULATIONS, seed=20240)
    assert y.shape == (result.nobs, N_SIMULATIONS)
    mean = result.design.x @ result.params.to_numpy() + result._offset()
    covariance = model_covariance(result, result.sigma)
    # Every variance, and the covariances of consecutive observations and of observation 0 with
    # every other (pairs in and out of its groups).
    n = result.nobs
    every = np.arange(n)
    pairs = np.vstack([np.column_stack([every, every]), np.column_stack([every[:-1], every[1:]]), np.column_stack([np.zeros(n - 1, dtype=int), every[1:]])])
    mean_miss, covariance_miss = standardized_misses(y, mean, covariance, pairs)
    assert mean_miss < STANDARD_ERRORS, f"{case_id}: a mean is {mean_miss:.2f} SE off"
    assert covariance_miss < STANDARD_ERRORS, f"{case_id}: a covariance is {covariance_miss:.2f} SE off"
    # The same checks reject a σ 10% too large and a model without its random effects.
    assert standardized_misses(y, mean, model_covariance(result, 1.1 * result.sigma), pairs)[1] > 2 * STANDARD_ERRORS
    assert standardized_misses(y, mean, model_covariance(result, result.sigma, with_random_effects=False), pairs)[1] > 2 * STANDARD_ERRORS


def test_sleepstudy_within_subject_covariance_matrix(reference_fits: ReferenceFits) -> None:
    """The 10 × 10 covariance of one subject's responses is σ²(I + ZλλᵀZᵀ), correlations included."""
    result = reference_fits.lmer("sleepstudy_reml")
    y = simulate(result, nsim=N_SIMULATIONS, seed=3)[:10]
    expected = model_covariance(result, result.sigma)[:10, :10]
    sample = np.cov(y)
    variances = np.diag(expected)
    se = np.sqrt((variances[:, None] * variances[None, :] + expected**2) / N_SIMULATIONS)
    assert (np.abs(sample - expected) / se).max() < STANDARD_ERRORS


def test_a_seed_gives_the_same_draws_and_replicates_do_not_depend_on_nsim(reference_fits: ReferenceFits) -> None:
    result = reference_fits.lmer("sleepstudy_reml")
    first = result.simulate(nsim=5, seed=99)
    np.testing.assert_array_equal(first, simulate(result, nsim=5, seed=99))
    np.testing.assert_array_equal(first[:, :2], simulate(result, nsim=2, seed=99))
    assert not np.array_equal(first, simulate(result, nsim=5, seed=100))
    assert not np.array_equal(simulate(result), simulate(result))


@pytest.mark.parametrize("nsim", [0, -1, 1.5, True])
def test_nsim_must_be_a_positive_whole_number(reference_fits: ReferenceFits, nsim: object) -> None:
    with pytest.raises(mm.SpecificationError, match="nsim"):
        simulate(reference_fits.lmer("dyestuff_reml"), nsim=nsim, seed=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 2**64, 1.0, "1", True])
def test_seed_must_be_a_64_bit_unsigned_whole_number(reference_fits: ReferenceFits, seed: object) -> None:
    with pytest.raises(mm.SpecificationError, match="seed"):
        simulate(reference_fits.lmer("dyestuff_reml"), seed=seed)  # type: ignore[arg-type]


def linear_predictor_variance(result: mm.GlmerResult) -> np.ndarray:
    """Var(ηᵢ) = Σⱼ zᵢ λⱼλⱼᵀ zᵢᵀ of a GLMM (random effects Λu, u standard normal)."""
    variance = np.zeros(result.nobs)
    first = 0
    for term in result.design.terms:
        k = term.z.shape[1]
        rows, cols = np.array([(row, col) for col in range(k) for row in range(col, k)]).T
        lam = np.zeros((k, k))
        lam[rows, cols] = result.theta[first : first + len(rows)]
        first += len(rows)
        variance += np.einsum("ij,jk,ik->i", term.z, lam @ lam.T, term.z)
    return variance


def generalized_moments(result: mm.GlmerResult, eta_sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each observation's mean and variance with η ~ N(offset + xβ̂, eta_sd²), integrated by
    60-point Gauss–Hermite quadrature: Var y = E Var(y | η) + Var μ."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    centre = result.design.x @ result.params.to_numpy() + result.model.offset
    eta = centre[:, None] + eta_sd[:, None] * nodes[None, :]
    mu = result.family.inverse_link(eta.ravel()).reshape(eta.shape)
    mean, second = mu @ weights, (mu**2) @ weights
    name = type(result.family).__name__
    # The families with a dispersion: φ̂V(μ)/w.
    per_weight = result.dispersion / result.model.prior_weights
    if name == "Binomial":
        conditional = (mean - second) / result.model.prior_weights
    elif name == "Poisson":
        conditional = mean
    elif name == "NegativeBinomial":
        conditional = mean + second / result.family.negative_binomial_theta
    elif name == "Gaussian":
        conditional = per_weight
    elif name == "Gamma":
        conditional = per_weight * second
    else:
        conditional = per_weight * ((mu**3) @ weights)
    return mean, conditional + second - mean**2


GLMM_CASES = [
    "cbpp_binomial",
    "synth_bernoulli_crossed",
    "grouseticks_poisson",
    "synth_poisson_offset",
    "synth_negbin",
    "synth_binomial_probit",
    "synth_gamma_log",
    "synth_gaussian_log",
]
DISPERSION_CASES = ["synth_gamma_log", "synth_inverse_gaussian", "synth_gaussian_log"]


@pytest.mark.parametrize("case_id", GLMM_CASES)
def test_generalized_responses_have_the_models_moments(reference_fits: ReferenceFits, case_id: str) -> None:
    """Each observation's mean and variance against the model's (:func:`generalized_moments`);
    the same check rejects a model without its random effects."""
    result = reference_fits.glmer(case_id)
    y = simulate(result, nsim=N_SIMULATIONS, seed=77)
    mean, variance = generalized_moments(result, np.sqrt(linear_predictor_variance(result)))
    mean_miss = np.abs(y.mean(axis=1) - mean) / np.sqrt(variance / N_SIMULATIONS)
    # The sample variance's SE from the sample's own fourth moment (the responses are not normal),
    # at least the normal theory's v·√(2/m): a Bernoulli variance near p = 1/2 hardly varies.
    centred = y - y.mean(axis=1, keepdims=True)
    variance_se = np.maximum(np.sqrt(((centred**2 - variance[:, None]) ** 2).mean(axis=1) / N_SIMULATIONS), variance * np.sqrt(2 / N_SIMULATIONS))
    variance_miss = np.abs(y.var(axis=1, ddof=1) - variance) / variance_se
    assert mean_miss.max() < STANDARD_ERRORS, f"{case_id}: a mean is {mean_miss.max():.2f} SE off"
    assert variance_miss.max() < GLMM_VARIANCE_STANDARD_ERRORS, f"{case_id}: a variance is {variance_miss.max():.2f} SE off"
    without_mean, without_variance = generalized_moments(result, np.zeros(result.nobs))
    without_mean_miss = (np.abs(y.mean(axis=1) - without_mean) / np.sqrt(without_variance / N_SIMULATIONS)).max()
    without_variance_miss = (np.abs(y.var(axis=1, ddof=1) - without_variance) / variance_se).max()
    assert max(without_mean_miss, without_variance_miss) > 2 * GLMM_VARIANCE_STANDARD_ERRORS
    if type(result.family).__name__ == "Binomial":
        # Proportions of whole numbers of trials, as the model's response.
        successes = y * result.model.prior_weights[:, None]
        np.testing.assert_allclose(successes, np.round(successes), atol=1e-9)
    if type(result.family).__name__ == "Gamma":
        assert (y > 0).all()


def test_inverse_gaussian_responses_have_the_models_moments(reference_fits: ReferenceFits) -> None:
    """The means as above. With Var η = θ̂² = 0.54 and V(μ) = μ³ the draws are so heavy-tailed
    that a single sample variance misses by up to 14 of its estimated SEs (seeds 70–79), so the
    variances are checked on average: the mean ratio of sample to model variance over the 600
    observations ranged from 0.95 to 1.04 over those seeds, where lme4 1.1-31's shape w/σ̂ (for
    w/σ̂²) would put it above 2."""
    result = reference_fits.glmer("synth_inverse_gaussian")
    y = simulate(result, nsim=N_SIMULATIONS, seed=77)
    assert (y > 0).all()
    mean, variance = generalized_moments(result, np.sqrt(linear_predictor_variance(result)))
    mean_miss = np.abs(y.mean(axis=1) - mean) / np.sqrt(variance / N_SIMULATIONS)
    assert mean_miss.max() < STANDARD_ERRORS, f"a mean is {mean_miss.max():.2f} SE off"
    ratio = float((y.var(axis=1, ddof=1) / variance).mean())
    assert abs(ratio - 1) < 0.1, ratio


@pytest.mark.parametrize("case_id", DISPERSION_CASES)
def test_dispersion_families_are_not_simulated_with_scaled_random_effects(reference_fits: ReferenceFits, case_id: str) -> None:
    """Random effects σ̂ZΛu (covariance φ̂λλᵀ, as the reported one) would give other means: the
    draws' means reject them (while they pass the moments tests above)."""
    result = reference_fits.glmer(case_id)
    y = simulate(result, nsim=N_SIMULATIONS, seed=77)
    scaled_mean, _ = generalized_moments(result, result.sigma * np.sqrt(linear_predictor_variance(result)))
    standard_error = y.std(axis=1, ddof=1) / np.sqrt(N_SIMULATIONS)
    assert (np.abs(y.mean(axis=1) - scaled_mean) / standard_error).max() > 2 * STANDARD_ERRORS


@pytest.mark.parametrize("case_id", ["cbpp_binomial", *DISPERSION_CASES])
def test_generalized_replicates_depend_on_the_seed_and_index_alone(reference_fits: ReferenceFits, case_id: str) -> None:
    result = reference_fits.glmer(case_id)
    first = result.simulate(nsim=6, seed=4)
    assert first.shape == (result.nobs, 6)
    np.testing.assert_array_equal(first[:, :3], simulate(result, nsim=3, seed=4))
    assert not np.array_equal(first, simulate(result, nsim=6, seed=5))
