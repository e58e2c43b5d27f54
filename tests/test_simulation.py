"""Responses simulated from fitted linear mixed models (lme4's ``simulate(m, use.u = FALSE)``).

Replicates are random, so there are no R values to compare with: a large draw's moments are
checked against the model's, y* ~ N(offset + Xβ̂, V) with V = Σⱼ Zⱼ Σⱼ Zⱼᵀ + σ̂² W⁻¹ and
Σⱼ = σ̂² λⱼλⱼᵀ, each statistic within 4.5 of its sampling standard errors; the same checks are shown
to reject a wrong σ and a missing random effect.
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


def test_generalized_models_are_not_simulated(reference_fits: ReferenceFits) -> None:
    with pytest.raises(mm.SpecificationError, match="linear mixed models"):
        simulate(reference_fits.glmer("cbpp_binomial"), seed=1)
