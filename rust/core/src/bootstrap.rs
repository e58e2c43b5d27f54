//! Parametric bootstrap of a linear mixed model (lme4's `bootMer`, MixedModels.jl's
//! `parametricbootstrap`): simulate a response at the estimates with new random effects, refit
//! from θ̂ with the same criterion, record the estimates; repeat.
//!
//! Replicate r's response depends on (seed, r) alone ([`crate::simulate`]) and its refit on that
//! response alone, so the results do not depend on the number of threads. A small model's
//! replicates are spread over rayon's pool in chunks, each on its own copy of the model; a model
//! whose fits are parallel themselves fits its replicates one after the other.
//!
//! A generalized linear mixed model's replicate is a new model of the simulated response, fitted
//! as `glmer` fits (from lme4's start, with the fit's nAGQ); its σ is √dispersion (lme4's
//! `sigma(m)`), 1 for the families without a dispersion.

use faer::MatRef;
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::factorization::FactorizationChoice;
use crate::glmm::GeneralizedLinearMixedModel;
use crate::interrupt::Interrupt;
use crate::lmm::LinearMixedModel;
use crate::optimize::OptimizerSettings;
use crate::simulate::{
    GeneralizedParameters, GeneralizedSimulator, LinearParameters, LinearSimulator,
};

/// Replicates fitted one after the other on one copy of the model.
const REPLICATES_PER_CHUNK: usize = 8;

/// The smallest first radius of a refit: θ components closer to their bound start this far away.
const MIN_WARM_RADIUS: f64 = 1e-3;

/// The estimates of every replicate, replicate-major: row r of `theta` (n × k) and `beta`
/// (n × p) belongs to replicate r. A refit that failed (e.g. a factorisation error) has NaN
/// estimates and is not converged.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearBootstrap {
    pub theta: Vec<f64>,
    pub beta: Vec<f64>,
    pub sigma: Vec<f64>,
    /// The optimised criterion (REML criterion or −2 log L) of each refit.
    pub objective: Vec<f64>,
    pub converged: Vec<bool>,
}

/// One replicate's estimates.
struct Replicate {
    theta: Vec<f64>,
    beta: Vec<f64>,
    sigma: f64,
    objective: f64,
    converged: bool,
}

/// `n_replicates` parametric-bootstrap refits of `model` at `estimates` (the response the model
/// fits, so without any offset), with the REML criterion if `reml`, each started at θ̂.
/// `interrupt` is checked before every replicate and every objective evaluation.
#[allow(clippy::too_many_arguments)]
pub fn bootstrap_linear(
    model: &mut LinearMixedModel,
    x: MatRef<'_, f64>,
    estimates: LinearParameters<'_>,
    reml: bool,
    seed: u64,
    n_replicates: usize,
    settings: OptimizerSettings,
    interrupt: &Interrupt,
) -> Result<LinearBootstrap> {
    if n_replicates == 0 {
        return Err(CoreError::Specification(
            "a bootstrap needs at least one replicate".into(),
        ));
    }
    let simulator = LinearSimulator::new(model, x, estimates, None)?;
    let settings = settings.with_initial_radius(warm_start_radius(
        estimates.theta,
        &model.theta_lower_bounds(),
    ));
    let replicates: Vec<Replicate> = if model.is_parallel() {
        let mut y = vec![0.0; simulator.n_obs()];
        (0..n_replicates)
            .map(|r| {
                simulator.fill(seed, r as u64, &mut y);
                refit(model, x, &y, estimates.theta, reml, settings, interrupt)
            })
            .collect::<Result<_>>()?
    } else {
        let model: &LinearMixedModel = model;
        let chunks: Vec<Vec<Replicate>> = (0..n_replicates.div_ceil(REPLICATES_PER_CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let mut copy = model.replica()?;
                let mut y = vec![0.0; simulator.n_obs()];
                let first = chunk * REPLICATES_PER_CHUNK;
                (first..n_replicates.min(first + REPLICATES_PER_CHUNK))
                    .map(|r| {
                        simulator.fill(seed, r as u64, &mut y);
                        refit(&mut copy, x, &y, estimates.theta, reml, settings, interrupt)
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        chunks.into_iter().flatten().collect()
    };
    let mut out = LinearBootstrap {
        theta: Vec::with_capacity(n_replicates * estimates.theta.len()),
        beta: Vec::with_capacity(n_replicates * estimates.beta.len()),
        sigma: Vec::with_capacity(n_replicates),
        objective: Vec::with_capacity(n_replicates),
        converged: Vec::with_capacity(n_replicates),
    };
    for replicate in replicates {
        out.theta.extend(replicate.theta);
        out.beta.extend(replicate.beta);
        out.sigma.push(replicate.sigma);
        out.objective.push(replicate.objective);
        out.converged.push(replicate.converged);
    }
    Ok(out)
}

/// The optimiser's first radius for a start at θ̂: three quarters of the distance of the closest
/// component to its bound, as NLopt's first step is for lme4's start of 1 (see
/// [`OptimizerSettings::linear`]). BOBYQA moves a start closer to its bound than its first radius
/// out to that radius (Powell 2009, §2), which would throw θ̂ away; at least [`MIN_WARM_RADIUS`],
/// infinite (the default radius) when every bounded component is on its bound.
fn warm_start_radius(start: &[f64], lower: &[f64]) -> f64 {
    start
        .iter()
        .zip(lower)
        .filter(|(theta, bound)| bound.is_finite() && theta > bound)
        .map(|(theta, bound)| 0.75 * (theta - bound))
        .fold(f64::INFINITY, f64::min)
        .max(MIN_WARM_RADIUS)
}

/// Fit response `y` from `start`; a failure other than an interruption is a NaN replicate.
fn refit(
    model: &mut LinearMixedModel,
    x: MatRef<'_, f64>,
    y: &[f64],
    start: &[f64],
    reml: bool,
    settings: OptimizerSettings,
    interrupt: &Interrupt,
) -> Result<Replicate> {
    interrupt.check()?;
    let fitted = model
        .set_response(x, y)
        .and_then(|()| model.fit_from(x, reml, start, settings, interrupt));
    match fitted {
        Ok(fit) => Ok(Replicate {
            theta: fit.theta,
            beta: fit.beta,
            sigma: fit.sigma,
            objective: fit.objective,
            converged: fit.optimization.converged,
        }),
        Err(CoreError::Interrupted) => Err(CoreError::Interrupted),
        Err(_) => Ok(Replicate {
            theta: vec![f64::NAN; start.len()],
            beta: vec![f64::NAN; x.ncols()],
            sigma: f64::NAN,
            objective: f64::NAN,
            converged: false,
        }),
    }
}

/// The estimates of every replicate of a generalized linear mixed model's bootstrap, laid out as
/// [`LinearBootstrap`]'s.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneralizedBootstrap {
    pub theta: Vec<f64>,
    pub beta: Vec<f64>,
    /// √dispersion of each refit (lme4's `sigma(m)`): 1 for the families without a dispersion.
    pub sigma: Vec<f64>,
    /// −2 log L of each refit (the family's `aic`, every data constant included).
    pub deviance: Vec<f64>,
    pub converged: Vec<bool>,
}

/// `n_replicates` parametric-bootstrap refits of a generalized linear mixed model at `estimates`,
/// each a new model of its simulated response fitted with `n_agq`. `interrupt` is checked before
/// every replicate and inside every fit.
#[allow(clippy::too_many_arguments)]
pub fn bootstrap_generalized(
    model: &GeneralizedLinearMixedModel,
    x: MatRef<'_, f64>,
    estimates: GeneralizedParameters<'_>,
    n_agq: usize,
    seed: u64,
    n_replicates: usize,
    settings: OptimizerSettings,
    interrupt: &Interrupt,
) -> Result<GeneralizedBootstrap> {
    if n_replicates == 0 {
        return Err(CoreError::Specification(
            "a bootstrap needs at least one replicate".into(),
        ));
    }
    let simulator = GeneralizedSimulator::new(model, x, estimates)?;
    let (theta, beta) = (estimates.theta, estimates.beta);
    let choice = if model.is_sparse() {
        FactorizationChoice::Sparse
    } else {
        FactorizationChoice::Blocked
    };
    let replicate = |r: usize| -> Result<Replicate> {
        interrupt.check()?;
        let mut y = vec![0.0; x.nrows()];
        simulator.fill(seed, r as u64, &mut y)?;
        let fitted = GeneralizedLinearMixedModel::new(
            model.terms().to_vec(),
            x,
            y,
            model.prior_weights().to_vec(),
            model.offset().to_vec(),
            model.family(),
            choice,
        )
        .and_then(|copy| {
            copy.with_laplace(model.laplace())
                .with_control(model.control().clone())
        })
        .and_then(|mut copy| copy.fit(x, n_agq, settings, interrupt));
        match fitted {
            Ok(fit) => Ok(Replicate {
                theta: fit.theta,
                beta: fit.beta,
                sigma: fit.dispersion.sqrt(),
                objective: fit.minus_twice_log_likelihood,
                converged: fit.optimization.converged,
            }),
            Err(CoreError::Interrupted) => Err(CoreError::Interrupted),
            Err(_) => Ok(Replicate {
                theta: vec![f64::NAN; theta.len()],
                beta: vec![f64::NAN; beta.len()],
                sigma: f64::NAN,
                objective: f64::NAN,
                converged: false,
            }),
        }
    };
    let replicates: Vec<Replicate> = if model.is_parallel() {
        (0..n_replicates).map(replicate).collect::<Result<_>>()?
    } else {
        (0..n_replicates)
            .into_par_iter()
            .map(replicate)
            .collect::<Result<_>>()?
    };
    let mut out = GeneralizedBootstrap {
        theta: Vec::with_capacity(n_replicates * theta.len()),
        beta: Vec::with_capacity(n_replicates * beta.len()),
        sigma: Vec::with_capacity(n_replicates),
        deviance: Vec::with_capacity(n_replicates),
        converged: Vec::with_capacity(n_replicates),
    };
    for replicate in replicates {
        out.theta.extend(replicate.theta);
        out.beta.extend(replicate.beta);
        out.sigma.push(replicate.sigma);
        out.deviance.push(replicate.objective);
        out.converged.push(replicate.converged);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factorization::FactorizationChoice;
    use crate::terms::RandomEffectsTerm;
    use crate::tests::common::on_threads;
    use faer::Mat;

    /// 30 groups of 5 observations with a random intercept and slope.
    fn slope_model() -> (LinearMixedModel, Mat<f64>) {
        let n = 150;
        let x = Mat::from_fn(n, 2, |i, c| if c == 0 { 1.0 } else { (i % 5) as f64 });
        let codes = (0..n).map(|i| (i / 5) as u32).collect();
        let z = (0..n).flat_map(|i| [1.0, (i % 5) as f64]).collect();
        let term = RandomEffectsTerm::new(codes, 30, 2, z).unwrap();
        let model =
            LinearMixedModel::new(vec![term], x.as_ref(), None, FactorizationChoice::Automatic)
                .unwrap();
        (model, x)
    }

    const ESTIMATES: LinearParameters<'static> = LinearParameters {
        theta: &[1.2, 0.2, 0.5],
        beta: &[3.0, 1.0],
        sigma: 0.7,
    };

    fn run(
        model: &mut LinearMixedModel,
        x: &Mat<f64>,
        n: usize,
        threads: usize,
    ) -> LinearBootstrap {
        let settings = OptimizerSettings::linear(10_000).unwrap();
        on_threads(threads, || {
            bootstrap_linear(
                model,
                x.as_ref(),
                ESTIMATES,
                true,
                42,
                n,
                settings,
                &Interrupt::new(),
            )
        })
        .unwrap()
    }

    #[test]
    fn results_do_not_depend_on_the_number_of_threads_or_replicates() {
        let (mut model, x) = slope_model();
        let one = run(&mut model, &x, 21, 1);
        let two = run(&mut model, &x, 21, 2);
        assert_eq!(one, two);
        let fewer = run(&mut model, &x, 5, 2);
        assert_eq!(fewer.theta, one.theta[..15]);
        assert_eq!(fewer.beta, one.beta[..10]);
        assert!(one.converged.iter().all(|&c| c));
    }

    /// Each replicate is the fit of its simulated response from θ̂.
    #[test]
    fn a_replicate_is_the_refit_of_its_simulated_response() {
        let (mut model, x) = slope_model();
        let boot = run(&mut model, &x, 3, 2);
        let simulator = LinearSimulator::new(&model, x.as_ref(), ESTIMATES, None).unwrap();
        let mut y = vec![0.0; 150];
        simulator.fill(42, 2, &mut y);
        let mut copy = model.replica().unwrap();
        copy.set_response(x.as_ref(), &y).unwrap();
        let radius = warm_start_radius(ESTIMATES.theta, &copy.theta_lower_bounds());
        let settings = OptimizerSettings::linear(10_000)
            .unwrap()
            .with_initial_radius(radius);
        let fit = copy
            .fit_from(
                x.as_ref(),
                true,
                ESTIMATES.theta,
                settings,
                &Interrupt::new(),
            )
            .unwrap();
        assert_eq!(boot.theta[6..9], fit.theta[..]);
        assert_eq!(boot.beta[4..6], fit.beta[..]);
        assert_eq!(boot.sigma[2], fit.sigma);
    }

    #[test]
    fn generalized_results_do_not_depend_on_the_number_of_threads() {
        use crate::families::{Distribution, Family, Link};
        let n = 120;
        let x = Mat::from_fn(n, 2, |i, c| if c == 0 { 1.0 } else { (i % 4) as f64 / 4.0 });
        let codes = (0..n).map(|i| (i / 6) as u32).collect();
        let term = RandomEffectsTerm::new(codes, 20, 1, vec![1.0; n]).unwrap();
        let y = (0..n).map(|i| (i % 5) as f64).collect();
        let model = GeneralizedLinearMixedModel::new(
            vec![term],
            x.as_ref(),
            y,
            vec![1.0; n],
            vec![0.0; n],
            Family::new(Distribution::Poisson, Link::Log),
            FactorizationChoice::Automatic,
        )
        .unwrap();
        let settings = OptimizerSettings::generalized(10_000).unwrap();
        let run = |threads: usize| {
            on_threads(threads, || {
                let estimates = GeneralizedParameters {
                    theta: &[0.6],
                    beta: &[0.5, 0.8],
                    dispersion: 1.0,
                };
                let interrupt = Interrupt::new();
                bootstrap_generalized(&model, x.as_ref(), estimates, 1, 8, 6, settings, &interrupt)
            })
            .unwrap()
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert!(one.converged.iter().all(|&c| c));
        assert!(one.theta.iter().all(|t| t.is_finite()));
        // No dispersion: σ = 1.
        assert!(one.sigma.iter().all(|&s| s == 1.0));
    }

    /// A Gamma GLMM's replicates: the same on one and two threads, each the fit of its simulated
    /// response with σ = √dispersion of that fit.
    #[test]
    fn a_gamma_replicate_is_the_fit_of_its_response_with_its_sigma() {
        use crate::families::{Distribution, Family, Link};
        let n = 120;
        let x = Mat::from_fn(n, 2, |i, c| if c == 0 { 1.0 } else { (i % 4) as f64 / 4.0 });
        let codes: Vec<u32> = (0..n).map(|i| (i / 6) as u32).collect();
        let term = RandomEffectsTerm::new(codes, 20, 1, vec![1.0; n]).unwrap();
        let y = (0..n).map(|i| 1.0 + (i % 5) as f64).collect();
        let weights: Vec<f64> = (0..n).map(|i| 1.0 + (i % 3) as f64).collect();
        let family = Family::new(Distribution::Gamma, Link::Log);
        let new_model = |y: Vec<f64>| {
            GeneralizedLinearMixedModel::new(
                vec![term.clone()],
                x.as_ref(),
                y,
                weights.clone(),
                vec![0.0; n],
                family,
                FactorizationChoice::Blocked,
            )
            .unwrap()
        };
        let model = new_model(y);
        let estimates = GeneralizedParameters {
            theta: &[0.6],
            beta: &[0.5, 0.8],
            dispersion: 0.3,
        };
        let settings = OptimizerSettings::generalized(10_000).unwrap();
        let run = |threads: usize| {
            on_threads(threads, || {
                bootstrap_generalized(
                    &model,
                    x.as_ref(),
                    estimates,
                    1,
                    4,
                    5,
                    settings,
                    &Interrupt::new(),
                )
            })
            .unwrap()
        };
        let one = run(1);
        assert_eq!(one, run(2));
        let simulator = GeneralizedSimulator::new(&model, x.as_ref(), estimates).unwrap();
        let mut response = vec![0.0; n];
        simulator.fill(4, 3, &mut response).unwrap();
        let fit = new_model(response)
            .fit(x.as_ref(), 1, settings, &Interrupt::new())
            .unwrap();
        assert_eq!(one.theta[3], fit.theta[0]);
        assert_eq!(one.beta[6..8], fit.beta[..]);
        assert_eq!(one.sigma[3], fit.dispersion.sqrt());
        assert!(one.sigma.iter().all(|s| s.is_finite() && *s > 0.0));
    }

    #[test]
    fn the_warm_start_radius_keeps_the_start_off_its_bounds() {
        let lower = [0.0, f64::NEG_INFINITY, 0.0];
        assert_eq!(warm_start_radius(&[1.2, -5.0, 0.4], &lower), 0.75 * 0.4);
        // Components on their bound stay there whatever the radius.
        assert_eq!(warm_start_radius(&[0.0, 0.1, 2.0], &lower), 1.5);
        assert_eq!(
            warm_start_radius(&[1e-6, 0.1, 2.0], &lower),
            MIN_WARM_RADIUS
        );
        assert_eq!(warm_start_radius(&[0.0, 0.1, 0.0], &lower), f64::INFINITY);
    }

    #[test]
    fn an_interrupted_bootstrap_stops_and_no_replicates_is_an_error() {
        let (mut model, x) = slope_model();
        let settings = OptimizerSettings::linear(10_000).unwrap();
        let interrupt = Interrupt::new();
        interrupt.request();
        let stopped = bootstrap_linear(
            &mut model,
            x.as_ref(),
            ESTIMATES,
            false,
            1,
            50,
            settings,
            &interrupt,
        );
        assert_eq!(stopped, Err(CoreError::Interrupted));
        let none = bootstrap_linear(
            &mut model,
            x.as_ref(),
            ESTIMATES,
            false,
            1,
            0,
            settings,
            &Interrupt::new(),
        );
        assert!(matches!(none, Err(CoreError::Specification(_))));
    }
}
