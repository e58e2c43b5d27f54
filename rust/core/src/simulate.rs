//! Responses simulated from a fitted linear mixed model with new random effects (lme4's
//! `simulate(m, use.u = FALSE)`, MixedModels.jl's `simulate!`):
//!
//!   y* = offset + Xβ + σ (Σⱼ Zⱼ Λⱼ uⱼ + ε / √w),   u ~ N(0, I), ε ~ N(0, I)
//!
//! (σu is the spherical random effect of Bates et al. 2015, JSS 67(1), eq. 4: u ~ N(0, σ²I)).
//!
//! A generalized linear mixed model's responses are drawn from its family at μ = g⁻¹(offset + Xβ +
//! ZΛu) (lme4's `simulate.merMod` for `glmer` fits): binomial proportions out of the prior weights'
//! trials, Poisson and negative binomial counts, and for the families with a dispersion φ the
//! model's variance φV(μ)/w: Gaussian N(μ, φ/w), Gamma with shape w/φ, inverse Gaussian with
//! shape λ = w/φ. lme4 1.1-31 draws Gamma responses with shape σ·w (`Gamma_simfun`, variance
//! μ²/(σw)), inverse Gaussian ones with shape w/σ and Gaussian ones with variance φ whatever the
//! weights; the model's variance is followed here (lme4 has since moved its Gamma to shape w/φ,
//! lme4 issue #782).
//!
//! The random effects are ΛΛᵀ-distributed for every family, without the dispersion: the objective
//! a GLMM is fitted by ([`crate::glmm`]) is the family's −2 log L at φ plus ‖u‖² with u ~ N(0, I),
//! and lme4's simulate adds ZΛu unscaled too. (lme4 1.1-31's `VarCorr`, and the reported
//! covariances here, multiply ΛΛᵀ by φ for these families; lme4 has since dropped that factor,
//! lme4 PR #906.)
//!
//! Replicate r draws from its own ChaCha8 stream r of the seed, so its values depend on (seed, r)
//! alone: not on how many replicates are drawn, in which order, or on how many threads.

use faer::MatRef;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution as _, Gamma, InverseGaussian, Poisson, StandardNormal};
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::families::{Distribution, Family};
use crate::glmm::GeneralizedLinearMixedModel;
use crate::lmm::LinearMixedModel;
use crate::terms::{relative_covariance_factor, RandomEffectsTerm};

/// The random-number stream of replicate `replicate` of `seed`.
pub(crate) fn replicate_rng(seed: u64, replicate: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(replicate);
    rng
}

/// The parameters a linear mixed model is simulated at: θ, β and σ.
#[derive(Debug, Clone, Copy)]
pub struct LinearParameters<'a> {
    pub theta: &'a [f64],
    pub beta: &'a [f64],
    pub sigma: f64,
}

/// The random-effects part Σⱼ Zⱼ (sλⱼ) uⱼ of a replicate's linear predictor, with its own copy
/// of the terms so that the model stays free for refits.
struct RandomEffectsDraw {
    terms: Vec<RandomEffectsTerm>,
    /// sλ per term (k×k, column-major).
    lambdas: Vec<Vec<f64>>,
}

impl RandomEffectsDraw {
    /// λ from θ (lme4's layout, checked by the caller), times `scale`.
    fn new(terms: &[RandomEffectsTerm], theta: &[f64], scale: f64) -> Self {
        let mut next = 0;
        let lambdas = terms
            .iter()
            .map(|term| {
                let mut lambda = vec![0.0; term.k * term.k];
                relative_covariance_factor(
                    &theta[next..next + term.n_theta()],
                    term.k,
                    &mut lambda,
                );
                lambda.iter_mut().for_each(|value| *value *= scale);
                next += term.n_theta();
                lambda
            })
            .collect();
        Self {
            terms: terms.to_vec(),
            lambdas,
        }
    }

    /// Draw u term by term, level by level, and add Z(sλ)u to `out`.
    fn add_to(&self, rng: &mut ChaCha8Rng, out: &mut [f64]) {
        let mut u = Vec::new();
        let mut b = Vec::new();
        for (term, lambda) in self.terms.iter().zip(&self.lambdas) {
            let k = term.k;
            u.clear();
            u.extend((0..term.n_levels * k).map(|_| -> f64 { StandardNormal.sample(rng) }));
            // b = sλu level by level, λ lower triangular.
            b.clear();
            b.extend((0..term.n_levels * k).map(|index| {
                let (level, r) = (index / k, index % k);
                (0..=r)
                    .map(|c| lambda[r + c * k] * u[level * k + c])
                    .sum::<f64>()
            }));
            for ((value, &level), z) in out.iter_mut().zip(&term.codes).zip(term.z.chunks(k)) {
                let b_level = &b[level as usize * k..(level as usize + 1) * k];
                *value += z.iter().zip(b_level).map(|(z, b)| z * b).sum::<f64>();
            }
        }
    }
}

/// Check θ and β against the model's sizes and `x`, and compute offset + Xβ.
fn fixed_part(
    n_theta: usize,
    x: MatRef<'_, f64>,
    theta: &[f64],
    beta: &[f64],
    offset: Option<&[f64]>,
) -> Result<Vec<f64>> {
    let n = x.nrows();
    if beta.len() != x.ncols() {
        return Err(CoreError::InvalidInput(format!(
            "beta has {} values, the model {}",
            beta.len(),
            x.ncols()
        )));
    }
    if theta.len() != n_theta {
        return Err(CoreError::InvalidInput(format!(
            "theta has {} values, the model {n_theta}",
            theta.len()
        )));
    }
    if theta.iter().chain(beta).any(|v| !v.is_finite()) {
        return Err(CoreError::InvalidInput(
            "theta and beta must be finite".into(),
        ));
    }
    let mut fixed = match offset {
        Some(offset) if offset.len() != n => {
            return Err(CoreError::InvalidInput(format!(
                "{} offsets for {n} observations",
                offset.len()
            )))
        }
        Some(offset) => offset.to_vec(),
        None => vec![0.0; n],
    };
    for (c, &beta_c) in beta.iter().enumerate() {
        for (value, x_ic) in fixed.iter_mut().zip(x.col(c).iter()) {
            *value += beta_c * x_ic;
        }
    }
    Ok(fixed)
}

/// The parameters a generalized linear mixed model is simulated at: θ, β and the dispersion φ
/// (lme4's `sigma(m)²`; 1 for the families without one).
#[derive(Debug, Clone, Copy)]
pub struct GeneralizedParameters<'a> {
    pub theta: &'a [f64],
    pub beta: &'a [f64],
    pub dispersion: f64,
}

/// Everything a replicate of a linear mixed model needs that does not change between replicates.
pub(crate) struct LinearSimulator {
    random_effects: RandomEffectsDraw,
    /// offset + Xβ.
    fixed: Vec<f64>,
    /// σ / √wᵢ per observation.
    noise_scale: Vec<f64>,
}

impl LinearSimulator {
    pub(crate) fn new(
        model: &LinearMixedModel,
        x: MatRef<'_, f64>,
        parameters: LinearParameters<'_>,
        offset: Option<&[f64]>,
    ) -> Result<Self> {
        let LinearParameters { theta, beta, sigma } = parameters;
        if x.nrows() != model.terms()[0].n_obs() {
            return Err(CoreError::InvalidInput(format!(
                "x has {} rows, the model {} observations",
                x.nrows(),
                model.terms()[0].n_obs()
            )));
        }
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(CoreError::InvalidInput(
                "sigma must be finite and non-negative".into(),
            ));
        }
        let fixed = fixed_part(model.n_theta(), x, theta, beta, offset)?;
        let noise_scale = match model.weights() {
            Some(weights) => weights.iter().map(|w| sigma / w.sqrt()).collect(),
            None => vec![sigma; fixed.len()],
        };
        Ok(Self {
            random_effects: RandomEffectsDraw::new(model.terms(), theta, sigma),
            fixed,
            noise_scale,
        })
    }

    pub(crate) fn n_obs(&self) -> usize {
        self.fixed.len()
    }

    /// Replicate `replicate` of `seed` into `out` (n values): the spherical random effects term
    /// by term, level by level, then the observations' noise.
    pub(crate) fn fill(&self, seed: u64, replicate: u64, out: &mut [f64]) {
        let mut rng = replicate_rng(seed, replicate);
        out.copy_from_slice(&self.fixed);
        self.random_effects.add_to(&mut rng, out);
        for (value, scale) in out.iter_mut().zip(&self.noise_scale) {
            let epsilon: f64 = StandardNormal.sample(&mut rng);
            *value += scale * epsilon;
        }
    }
}

/// `n_replicates` responses simulated at `parameters` (plus `offset`), replicates 0, 1, … of
/// `seed`: n × n_replicates, column-major, one column per replicate.
pub fn simulate_linear(
    model: &LinearMixedModel,
    x: MatRef<'_, f64>,
    parameters: LinearParameters<'_>,
    offset: Option<&[f64]>,
    seed: u64,
    n_replicates: usize,
) -> Result<Vec<f64>> {
    let simulator = LinearSimulator::new(model, x, parameters, offset)?;
    let n = simulator.n_obs();
    let mut out = vec![0.0; n * n_replicates];
    out.par_chunks_mut(n)
        .enumerate()
        .for_each(|(replicate, column)| simulator.fill(seed, replicate as u64, column));
    Ok(out)
}

/// Everything a replicate of a generalized linear mixed model needs.
pub(crate) struct GeneralizedSimulator {
    random_effects: RandomEffectsDraw,
    /// offset + Xβ.
    fixed: Vec<f64>,
    family: Family,
    /// Binomial trials per observation (the prior weights, whole numbers).
    trials: Vec<u64>,
    /// wᵢ/φ per observation for the families with a dispersion: the Gamma's and inverse
    /// Gaussian's shape, the Gaussian's precision.
    precision: Vec<f64>,
}

impl GeneralizedSimulator {
    pub(crate) fn new(
        model: &GeneralizedLinearMixedModel,
        x: MatRef<'_, f64>,
        parameters: GeneralizedParameters<'_>,
    ) -> Result<Self> {
        let GeneralizedParameters {
            theta,
            beta,
            dispersion,
        } = parameters;
        let family = model.family();
        if !(dispersion.is_finite() && dispersion > 0.0) {
            return Err(CoreError::InvalidInput(format!(
                "the dispersion must be positive and finite, not {dispersion}"
            )));
        }
        if !family.has_dispersion() && dispersion != 1.0 {
            return Err(CoreError::InvalidInput(format!(
                "the {:?} family has no dispersion parameter (it is 1, not {dispersion})",
                family.distribution
            )));
        }
        let weights = model.prior_weights();
        let trials = if family.distribution == Distribution::Binomial {
            if weights.iter().any(|w| w.fract() != 0.0) {
                return Err(CoreError::Specification(
                    "binomial responses are simulated out of whole numbers of trials; the prior weights are not whole numbers".into(),
                ));
            }
            weights.iter().map(|&w| w as u64).collect()
        } else {
            Vec::new()
        };
        let precision = if family.has_dispersion() {
            weights.iter().map(|w| w / dispersion).collect()
        } else {
            Vec::new()
        };
        if x.nrows() != model.offset().len() {
            return Err(CoreError::InvalidInput(format!(
                "x has {} rows, the model {} observations",
                x.nrows(),
                model.offset().len()
            )));
        }
        Ok(Self {
            random_effects: RandomEffectsDraw::new(model.terms(), theta, 1.0),
            fixed: fixed_part(model.n_theta(), x, theta, beta, Some(model.offset()))?,
            family,
            trials,
            precision,
        })
    }

    /// Replicate `replicate` of `seed` into `out`: the random effects as for a linear mixed
    /// model, then one response per observation at its mean.
    pub(crate) fn fill(&self, seed: u64, replicate: u64, out: &mut [f64]) -> Result<()> {
        let mut rng = replicate_rng(seed, replicate);
        out.copy_from_slice(&self.fixed);
        self.random_effects.add_to(&mut rng, out);
        let invalid = |err: &dyn std::fmt::Display| {
            CoreError::InvalidInput(format!("cannot draw a response at its mean: {err}"))
        };
        for (i, value) in out.iter_mut().enumerate() {
            let mu = self.family.link.inverse(*value);
            *value = match self.family.distribution {
                Distribution::Binomial => {
                    let n = self.trials[i];
                    let successes = Binomial::new(n, mu).map_err(|e| invalid(&e))?;
                    successes.sample(&mut rng) as f64 / n as f64
                }
                Distribution::Poisson => poisson(mu, &mut rng).map_err(|e| invalid(&e))?,
                Distribution::NegativeBinomial { theta } => {
                    // NB2 as a gamma mixture of Poissons: λ ~ Gamma(θ, μ/θ), y ~ Poisson(λ).
                    let rate = Gamma::new(theta, mu / theta).map_err(|e| invalid(&e))?;
                    poisson(rate.sample(&mut rng), &mut rng).map_err(|e| invalid(&e))?
                }
                Distribution::Gaussian => {
                    if !mu.is_finite() {
                        return Err(invalid(&format!("the mean is {mu}")));
                    }
                    let epsilon: f64 = StandardNormal.sample(&mut rng);
                    mu + epsilon / self.precision[i].sqrt()
                }
                // Shape k = w/φ and scale μ/k: mean μ, variance φμ²/w (a mean that is not
                // positive is a scale that is not, an error).
                Distribution::Gamma => {
                    let shape = self.precision[i];
                    let draw = Gamma::new(shape, mu / shape).map_err(|e| invalid(&e))?;
                    draw.sample(&mut rng)
                }
                // IG(μ, λ) has variance μ³/λ: λ = w/φ gives φμ³/w.
                Distribution::InverseGaussian => {
                    let draw =
                        InverseGaussian::new(mu, self.precision[i]).map_err(|e| invalid(&e))?;
                    draw.sample(&mut rng)
                }
            };
        }
        Ok(())
    }
}

/// A Poisson draw with mean `mean` (0 for a mean of 0, which rand_distr refuses).
fn poisson(mean: f64, rng: &mut ChaCha8Rng) -> std::result::Result<f64, rand_distr::PoissonError> {
    if mean == 0.0 {
        return Ok(0.0);
    }
    Ok(Poisson::new(mean)?.sample(rng))
}

/// `n_replicates` responses simulated from a generalized linear mixed model at `parameters`
/// (offset included), as [`simulate_linear`]; binomial responses are proportions of the trials.
pub fn simulate_generalized(
    model: &GeneralizedLinearMixedModel,
    x: MatRef<'_, f64>,
    parameters: GeneralizedParameters<'_>,
    seed: u64,
    n_replicates: usize,
) -> Result<Vec<f64>> {
    let simulator = GeneralizedSimulator::new(model, x, parameters)?;
    let n = simulator.fixed.len();
    let mut out = vec![0.0; n * n_replicates];
    out.par_chunks_mut(n)
        .enumerate()
        .try_for_each(|(replicate, column)| simulator.fill(seed, replicate as u64, column))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factorization::FactorizationChoice;
    use crate::tests::common::on_threads;
    use faer::Mat;

    /// 40 groups of 6 observations, a random intercept and slope, optionally unequal weights.
    fn slope_model(weighted: bool) -> (LinearMixedModel, Mat<f64>) {
        let n = 240;
        let x = Mat::from_fn(n, 2, |i, c| if c == 0 { 1.0 } else { (i % 6) as f64 });
        let codes = (0..n).map(|i| (i / 6) as u32).collect();
        let z = (0..n).flat_map(|i| [1.0, (i % 6) as f64]).collect();
        let term = RandomEffectsTerm::new(codes, 40, 2, z).unwrap();
        let weights = weighted.then(|| (0..n).map(|i| 0.5 + (i % 7) as f64 * 0.3).collect());
        let model = LinearMixedModel::new(
            vec![term],
            x.as_ref(),
            weights,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        (model, x)
    }

    const THETA: [f64; 3] = [1.5, 0.3, 0.4];
    const BETA: [f64; 2] = [10.0, -2.0];
    const SIGMA: f64 = 0.8;

    fn parameters() -> LinearParameters<'static> {
        LinearParameters {
            theta: &THETA,
            beta: &BETA,
            sigma: SIGMA,
        }
    }

    #[test]
    fn a_replicate_depends_on_the_seed_and_its_index_alone() {
        let (model, x) = slope_model(false);
        let three = simulate_linear(&model, x.as_ref(), parameters(), None, 11, 3).unwrap();
        let ten = on_threads(1, || {
            simulate_linear(&model, x.as_ref(), parameters(), None, 11, 10)
        })
        .unwrap();
        assert_eq!(three, ten[..three.len()]);
        let other_seed = simulate_linear(&model, x.as_ref(), parameters(), None, 12, 1).unwrap();
        assert_ne!(three[..240], other_seed[..]);
        assert_ne!(three[..240], three[240..480]);
    }

    /// Mean, variance and within-group covariance of observations 0 (t = 0) and 1 (t = 1) over
    /// many replicates against the model's: with Σ = σ² λλᵀ, Var yᵢ = zᵢᵀΣzᵢ + σ²/wᵢ.
    #[test]
    fn simulated_responses_have_the_models_moments() {
        let (model, x) = slope_model(true);
        let weights = model.weights().unwrap().to_vec();
        let n_replicates = 20_000;
        let offset: Vec<f64> = (0..240).map(|i| i as f64 / 100.0).collect();
        let y = simulate_linear(
            &model,
            x.as_ref(),
            parameters(),
            Some(&offset),
            5,
            n_replicates,
        )
        .unwrap();
        let column = |i: usize| -> Vec<f64> { y.iter().skip(i).step_by(240).copied().collect() };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let covariance = |a: &[f64], b: &[f64]| {
            let (ma, mb) = (mean(a), mean(b));
            a.iter()
                .zip(b)
                .map(|(a, b)| (a - ma) * (b - mb))
                .sum::<f64>()
                / (a.len() - 1) as f64
        };
        // Σ = σ² λλᵀ with λ = [1.5 0; 0.3 0.4].
        let s2 = SIGMA * SIGMA;
        let (s00, s01, s11) = (s2 * 2.25, s2 * 0.45, s2 * (0.09 + 0.16));
        let (y0, y1) = (column(0), column(1));
        let var0 = s00 + s2 / weights[0];
        let var1 = s00 + 2.0 * s01 + s11 + s2 / weights[1];
        let cov01 = s00 + s01;
        let m = n_replicates as f64;
        // Four standard errors: of a mean √(v/m), of a variance v√(2/m), of a covariance
        // √((v₀v₁ + c²)/m).
        assert!((mean(&y0) - (10.0 + offset[0])).abs() < 4.0 * (var0 / m).sqrt());
        assert!((mean(&y1) - (8.0 + offset[1])).abs() < 4.0 * (var1 / m).sqrt());
        assert!((covariance(&y0, &y0) - var0).abs() < 4.0 * var0 * (2.0 / m).sqrt());
        assert!((covariance(&y1, &y1) - var1).abs() < 4.0 * var1 * (2.0 / m).sqrt());
        let se_cov = ((var0 * var1 + cov01 * cov01) / m).sqrt();
        assert!((covariance(&y0, &y1) - cov01).abs() < 4.0 * se_cov);
        // Observations of different groups are independent.
        let y6 = column(6);
        let var6 = s00 + s2 / weights[6];
        assert!(covariance(&y0, &y6).abs() < 4.0 * (var0 * var6 / m).sqrt());
    }

    /// 20 groups of 10 observations with a random intercept: a response of `family` (whose
    /// values only need to be valid for it) with prior weights `weight(i)`.
    fn intercept_glmm(
        family: Family,
        weight: impl Fn(usize) -> f64,
    ) -> (GeneralizedLinearMixedModel, Mat<f64>) {
        let n = 200;
        let x = Mat::from_fn(n, 1, |_, _| 1.0);
        let codes = (0..n).map(|i| (i / 10) as u32).collect();
        let term = RandomEffectsTerm::new(codes, 20, 1, vec![1.0; n]).unwrap();
        let binomial = family.distribution == Distribution::Binomial;
        let y = (0..n)
            .map(|i| {
                if binomial {
                    (i % 4) as f64 / 3.0
                } else {
                    (i % 4 + 1) as f64
                }
            })
            .collect();
        let model = GeneralizedLinearMixedModel::new(
            vec![term],
            x.as_ref(),
            y,
            (0..n).map(weight).collect(),
            vec![0.0; n],
            family,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        (model, x)
    }

    /// Three trials per observation.
    fn three_trials(_: usize) -> f64 {
        3.0
    }

    /// Four classes of prior weights, observation i in class i mod 4.
    fn unequal_weights(i: usize) -> f64 {
        0.5 + (i % 4) as f64 * 0.75
    }

    fn at<'a>(theta: &'a [f64], beta: &'a [f64], dispersion: f64) -> GeneralizedParameters<'a> {
        GeneralizedParameters {
            theta,
            beta,
            dispersion,
        }
    }

    /// With η ~ N(β, θ²): a Poisson mean exp(β + θ²/2) and binomial proportions in thirds whose
    /// replicates do not depend on the thread count.
    #[test]
    fn generalized_responses_come_from_their_family() {
        use crate::families::Link;
        let (poisson, x) =
            intercept_glmm(Family::new(Distribution::Poisson, Link::Log), three_trials);
        let draws =
            simulate_generalized(&poisson, x.as_ref(), at(&[0.5], &[1.0], 1.0), 3, 2000).unwrap();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let expected = (1.0f64 + 0.125).exp();
        // Draws within a group share their random effect: the SE of the mean is about that of
        // 2000 × 20 group means, whose variance is at most Var(y) = E μ + (e^{θ²} − 1)(E μ)².
        let variance = expected + (0.25f64.exp() - 1.0) * expected * expected;
        assert!((mean - expected).abs() < 4.0 * (variance / 40_000.0).sqrt());
        assert!(draws.iter().all(|y| y.fract() == 0.0 && *y >= 0.0));

        let (binomial, x) = intercept_glmm(
            Family::new(Distribution::Binomial, Link::Logit),
            three_trials,
        );
        let simulate =
            || simulate_generalized(&binomial, x.as_ref(), at(&[1.0], &[0.2], 1.0), 9, 20);
        let one = on_threads(1, simulate).unwrap();
        assert_eq!(one, simulate().unwrap());
        assert!(one
            .iter()
            .all(|y| [0.0, 1.0, 2.0, 3.0].contains(&(y * 3.0))));
    }

    /// A family with a dispersion, its φ and its V(μ).
    type DispersionFamily = (Family, f64, fn(f64) -> f64);

    /// The families with a dispersion φ, log link.
    fn dispersion_families() -> [DispersionFamily; 3] {
        use crate::families::Link;
        [
            (Family::new(Distribution::Gaussian, Link::Log), 0.5, |_| 1.0),
            (Family::new(Distribution::Gamma, Link::Log), 0.2, |mu| {
                mu * mu
            }),
            (
                Family::new(Distribution::InverseGaussian, Link::Log),
                0.1,
                |mu| mu * mu * mu,
            ),
        ]
    }

    /// Without random-effect variance (θ = 0) every draw has mean μ = e^β and variance
    /// φV(μ)/w: per class of prior weights, the mean of y and of the squared standardised
    /// residual z² = w(y − μ)²/(φV(μ)) against μ and 1, within four standard errors (that of z²
    /// from the draws' own fourth moment, the responses not being normal).
    #[test]
    fn dispersion_families_have_mean_mu_and_variance_phi_v_over_w() {
        let beta: f64 = 0.4;
        let mu = beta.exp();
        for (family, dispersion, variance) in dispersion_families() {
            let (model, x) = intercept_glmm(family, unequal_weights);
            let draws =
                simulate_generalized(&model, x.as_ref(), at(&[0.0], &[beta], dispersion), 5, 2000)
                    .unwrap();
            if family.distribution != Distribution::Gaussian {
                assert!(draws.iter().all(|&y| y > 0.0));
            }
            for class in 0..4 {
                let w = unequal_weights(class);
                let sd = (dispersion * variance(mu) / w).sqrt();
                let y: Vec<f64> = draws.iter().skip(class).step_by(4).copied().collect();
                let m = y.len() as f64;
                let mean = y.iter().sum::<f64>() / m;
                assert!(
                    (mean - mu).abs() < 4.0 * sd / m.sqrt(),
                    "{family:?} weight {w}: mean {mean}, not {mu}"
                );
                let z2: Vec<f64> = y.iter().map(|y| ((y - mu) / sd).powi(2)).collect();
                let mean_z2 = z2.iter().sum::<f64>() / m;
                let se =
                    (z2.iter().map(|v| (v - mean_z2).powi(2)).sum::<f64>() / (m - 1.0) / m).sqrt();
                assert!(
                    (mean_z2 - 1.0).abs() < 4.0 * se,
                    "{family:?} weight {w}: variance ratio {mean_z2} ± {se}"
                );
            }
        }
    }

    /// With θ > 0 the random effects are ZΛu without the dispersion (see the module's notes):
    /// E y = E e^η = exp(β + θ²/2), which φ·θ² in its place would miss by about 25 SE.
    #[test]
    fn dispersion_families_average_over_unscaled_random_effects() {
        let (theta, beta): (f64, f64) = (0.5, 0.4);
        let expected = (beta + theta * theta / 2.0).exp();
        for (family, dispersion, variance) in dispersion_families() {
            let (model, x) = intercept_glmm(family, unequal_weights);
            let draws = simulate_generalized(
                &model,
                x.as_ref(),
                at(&[theta], &[beta], dispersion),
                6,
                2000,
            )
            .unwrap();
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            // As for the Poisson above, with Var(y) = E[φV(μ)/w] + Var(μ) bounded at the smallest
            // weight, E μ² = e^{2β+2θ²} and E μ³ = e^{3β+9θ²/2}.
            let (t2, w) = (theta * theta, unequal_weights(0));
            let mean_variance = match family.distribution {
                Distribution::Gaussian => variance(1.0),
                Distribution::Gamma => (2.0 * beta + 2.0 * t2).exp(),
                _ => (3.0 * beta + 4.5 * t2).exp(),
            };
            let bound = dispersion * mean_variance / w + (t2.exp() - 1.0) * expected * expected;
            assert!(
                (mean - expected).abs() < 4.0 * (bound / 40_000.0).sqrt(),
                "{family:?}: mean {mean}, not {expected}"
            );
        }
    }

    #[test]
    fn dispersion_replicates_do_not_depend_on_the_thread_count() {
        for (family, dispersion, _) in dispersion_families() {
            let (model, x) = intercept_glmm(family, unequal_weights);
            let simulate =
                || simulate_generalized(&model, x.as_ref(), at(&[0.7], &[0.3], dispersion), 13, 9);
            let one = on_threads(1, simulate).unwrap();
            let two = on_threads(2, simulate).unwrap();
            assert_eq!(one, two);
            assert_ne!(one[..200], one[200..400]);
        }
    }

    /// A dispersion that is not positive and finite, one other than 1 for a family without a
    /// dispersion, and a Gamma mean that is not positive are errors.
    #[test]
    fn bad_dispersions_and_means_are_errors() {
        use crate::families::Link;
        let (gamma, x) = intercept_glmm(Family::new(Distribution::Gamma, Link::Log), three_trials);
        for dispersion in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                simulate_generalized(&gamma, x.as_ref(), at(&[0.5], &[0.2], dispersion), 1, 1),
                Err(CoreError::InvalidInput(_))
            ));
        }
        let (poisson, x) =
            intercept_glmm(Family::new(Distribution::Poisson, Link::Log), three_trials);
        assert!(matches!(
            simulate_generalized(&poisson, x.as_ref(), at(&[0.5], &[0.2], 2.0), 1, 1),
            Err(CoreError::InvalidInput(_))
        ));
        let (inverse, x) = intercept_glmm(
            Family::new(Distribution::Gamma, Link::Identity),
            three_trials,
        );
        assert!(matches!(
            simulate_generalized(&inverse, x.as_ref(), at(&[0.0], &[-1.0], 0.5), 1, 1),
            Err(CoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn bad_parameters_are_errors() {
        let (model, x) = slope_model(false);
        let simulate = |theta: &[f64], beta: &[f64], sigma: f64, offset: Option<&[f64]>| {
            let parameters = LinearParameters { theta, beta, sigma };
            simulate_linear(&model, x.as_ref(), parameters, offset, 0, 1)
        };
        assert!(simulate(&THETA, &BETA, SIGMA, None).is_ok());
        assert!(simulate(&THETA[..2], &BETA, SIGMA, None).is_err());
        assert!(simulate(&THETA, &BETA[..1], SIGMA, None).is_err());
        assert!(simulate(&THETA, &BETA, -1.0, None).is_err());
        assert!(simulate(&THETA, &[f64::NAN, 0.0], SIGMA, None).is_err());
        assert!(simulate(&THETA, &BETA, SIGMA, Some(&[0.0; 3])).is_err());
    }
}
