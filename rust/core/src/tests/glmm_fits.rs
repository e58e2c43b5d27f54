//! GLMM fits of a simulated Poisson model: on one and on two threads every estimate must be
//! identical to the last bit, an interrupted fit leaves its model as good as new, and the
//! objective at a fit's estimates is the fit's objective.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::common::{on_threads, Lcg};
use crate::families::{Distribution, Family, Link};
use crate::glmm::{GeneralizedLinearMixedModel, GlmmFit, LaplaceObjective};
use crate::{
    CoreError, FactorizationChoice, Interrupt, OptimizerSettings, Poll, RandomEffectsTerm,
};
use faer::Mat;

/// Counts with a log-linear mean in x and one random intercept per group.
struct Counts {
    codes: Vec<u32>,
    n_groups: usize,
    x: Mat<f64>,
    y: Vec<f64>,
}

impl Counts {
    fn simulate(n: usize, n_groups: usize) -> Self {
        let mut rng = Lcg(42);
        let codes: Vec<u32> = (0..n).map(|i| (i % n_groups) as u32).collect();
        let effects: Vec<f64> = (0..n_groups).map(|_| rng.uniform() - 0.5).collect();
        let x = Mat::from_fn(n, 2, |_, c| {
            if c == 0 {
                1.0
            } else {
                rng.uniform() * 2.0 - 1.0
            }
        });
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let mean = (0.3 + 0.5 * x[(i, 1)] + effects[codes[i] as usize]).exp();
                // A small Poisson draw by inversion.
                let (mut k, mut p, target) = (0.0, (-mean).exp(), rng.uniform());
                let mut cumulative = p;
                while cumulative < target && k < 50.0 {
                    k += 1.0;
                    p *= mean / k;
                    cumulative += p;
                }
                k
            })
            .collect();
        Self {
            codes,
            n_groups,
            x,
            y,
        }
    }

    fn model(&self) -> GeneralizedLinearMixedModel {
        self.model_with(FactorizationChoice::Automatic)
    }

    fn model_with(&self, choice: FactorizationChoice) -> GeneralizedLinearMixedModel {
        let n = self.y.len();
        let term = RandomEffectsTerm::new(self.codes.clone(), self.n_groups, 1, vec![1.0; n]);
        GeneralizedLinearMixedModel::new(
            vec![term.unwrap()],
            self.x.as_ref(),
            self.y.clone(),
            vec![1.0; n],
            vec![0.0; n],
            Family::new(Distribution::Poisson, Link::Log),
            choice,
        )
        .unwrap()
    }

    fn fit(
        &self,
        model: &mut GeneralizedLinearMixedModel,
        interrupt: &Interrupt,
    ) -> Result<GlmmFit, CoreError> {
        self.fit_with(model, 1, interrupt)
    }

    fn fit_with(
        &self,
        model: &mut GeneralizedLinearMixedModel,
        n_agq: usize,
        interrupt: &Interrupt,
    ) -> Result<GlmmFit, CoreError> {
        let settings = OptimizerSettings::generalized(10_000).unwrap();
        model.fit(self.x.as_ref(), n_agq, settings, interrupt)
    }

    fn objective(
        &self,
        model: &mut GeneralizedLinearMixedModel,
        theta: &[f64],
        beta: Option<&[f64]>,
        n_agq: usize,
    ) -> Result<f64, CoreError> {
        model.objective(self.x.as_ref(), theta, beta, n_agq, &Interrupt::new())
    }
}

fn assert_identical(one: &GlmmFit, two: &GlmmFit) {
    assert_eq!(one.theta, two.theta);
    assert_eq!(one.beta, two.beta);
    assert_eq!(
        one.minus_twice_log_likelihood.to_bits(),
        two.minus_twice_log_likelihood.to_bits()
    );
    assert_eq!(one.beta_covariance_hessian, two.beta_covariance_hessian);
    assert_eq!(one.mu, two.mu);
}

#[test]
fn glmm_results_do_not_depend_on_the_number_of_threads() {
    let counts = Counts::simulate(20_000, 300);
    let fit = |threads: usize| {
        on_threads(threads, || {
            counts.fit(&mut counts.model(), &Interrupt::new()).unwrap()
        })
    };
    assert_identical(&fit(1), &fit(2));
}

#[test]
fn an_interrupted_fit_leaves_its_model_as_good_as_new() {
    let counts = Counts::simulate(1_000, 40);
    let expected = counts.fit(&mut counts.model(), &Interrupt::new()).unwrap();
    // Count the checks of a whole fit, then stop fits at checks spread over it: in the initial
    // PIRLS, in stage one, in the curvature scales, in stage two and in the Hessian.
    let checks = AtomicUsize::new(0);
    let count = || {
        checks.fetch_add(1, Ordering::Relaxed);
        false
    };
    fn every_check(poll: Poll<'_>) -> Interrupt<'_> {
        Interrupt::with_poll(Some(poll), Duration::ZERO)
    }
    counts
        .fit(&mut counts.model(), &every_check(&count))
        .unwrap();
    let total = checks.load(Ordering::Relaxed);
    for stop_at in (1..total).step_by(total / 12) {
        let mut model = counts.model();
        let seen = AtomicUsize::new(0);
        let stop = || seen.fetch_add(1, Ordering::Relaxed) + 1 == stop_at;
        let outcome = counts.fit(&mut model, &every_check(&stop));
        assert_eq!(outcome.unwrap_err(), CoreError::Interrupted);
        assert_eq!(seen.load(Ordering::Relaxed), stop_at);
        assert_identical(
            &counts.fit(&mut model, &Interrupt::new()).unwrap(),
            &expected,
        );
    }
}

#[test]
fn the_objective_at_a_fits_estimates_is_the_fits_objective() {
    let counts = Counts::simulate(1_000, 40);
    for n_agq in [0, 1, 5] {
        let beta_for = |fit: &GlmmFit| (n_agq > 0).then(|| fit.beta.clone());
        let mut model = counts.model();
        let fit = counts
            .fit_with(&mut model, n_agq, &Interrupt::new())
            .unwrap();
        let beta = beta_for(&fit);
        let value = counts.objective(&mut model, &fit.theta, beta.as_deref(), n_agq);
        assert_eq!(
            value.unwrap().to_bits(),
            fit.objective.to_bits(),
            "nAGQ {n_agq}"
        );
        // Before any fit the stages' starts are computed first, as a fit computes them.
        let mut unfitted = counts.model();
        let value = counts.objective(&mut unfitted, &fit.theta, beta.as_deref(), n_agq);
        assert_eq!(
            value.unwrap().to_bits(),
            fit.objective.to_bits(),
            "nAGQ {n_agq}"
        );
    }
}

#[test]
fn an_objective_that_cannot_be_evaluated_is_an_error() {
    let counts = Counts::simulate(1_000, 40);
    let mut model = counts.model();
    let specification = |outcome| matches!(outcome, Err(CoreError::Specification(_)));
    let invalid = |outcome| matches!(outcome, Err(CoreError::InvalidInput(_)));
    assert!(specification(counts.objective(&mut model, &[1.0], None, 2)));
    assert!(specification(counts.objective(
        &mut model,
        &[1.0],
        Some(&[0.0, 0.0]),
        0
    )));
    assert!(invalid(counts.objective(
        &mut model,
        &[1.0],
        Some(&[0.0]),
        1
    )));
    assert!(invalid(counts.objective(&mut model, &[1.0, 1.0], None, 1)));
    assert!(counts
        .objective(&mut model, &[1.0], Some(&[0.0, 0.0]), 1)
        .is_ok());
}

#[test]
fn quadrature_on_the_sparse_factorisation_is_a_specification_error() {
    let counts = Counts::simulate(1_000, 40);
    let mut model = counts.model_with(FactorizationChoice::Sparse);
    let outcome = counts.fit_with(&mut model, 5, &Interrupt::new());
    assert!(matches!(outcome, Err(CoreError::Specification(_))));
    assert!(counts.fit_with(&mut model, 1, &Interrupt::new()).is_ok());
}

/// The exact Laplace objective of a Poisson model with one random intercept, computed group by
/// group: each uᵢ by Newton's method to machine precision, then Σ (2 log yᵢ! + devresᵢ) + uᵢ² +
/// log(1 + λ² Σ μⱼ) with the weights μⱼ of the mode (canonical link: working weights = μ).
fn independent_exact_laplace(counts: &Counts, lambda: f64, beta: &[f64]) -> f64 {
    let family = Family::new(Distribution::Poisson, Link::Log);
    let n = counts.y.len();
    let fixed: Vec<f64> = (0..n)
        .map(|i| beta[0] + beta[1] * counts.x[(i, 1)])
        .collect();
    let mut total = 0.0;
    for group in 0..counts.n_groups {
        let rows: Vec<usize> = (0..n)
            .filter(|&i| counts.codes[i] as usize == group)
            .collect();
        let mut u = 0.0_f64;
        for _ in 0..100 {
            let (mut gradient, mut curvature) = (2.0 * u, 2.0);
            for &i in &rows {
                let mu = (fixed[i] + lambda * u).exp();
                gradient += 2.0 * lambda * (mu - counts.y[i]);
                curvature += 2.0 * lambda * lambda * mu;
            }
            let step = gradient / curvature;
            u -= step;
            if step.abs() < 1e-14 {
                break;
            }
        }
        let mut weight_sum = 0.0;
        total += u * u;
        for &i in &rows {
            let mu = (fixed[i] + lambda * u).exp();
            weight_sum += mu;
            let log_factorial: f64 = (1..=counts.y[i] as usize).map(|k| (k as f64).ln()).sum();
            total += family.deviance_residual(counts.y[i], mu, 1.0) + 2.0 * log_factorial
                - 2.0 * (counts.y[i] * counts.y[i].max(1e-300).ln() - counts.y[i]);
        }
        total += (1.0 + lambda * lambda * weight_sum).ln();
    }
    total
}

#[test]
fn the_exact_laplace_objective_is_the_laplace_approximation_at_the_modes() {
    let counts = Counts::simulate(600, 30);
    for (theta, beta) in [(0.4, [0.3, 0.5]), (1.3, [-0.2, 0.9])] {
        let exact = counts
            .objective(&mut counts.model(), &[theta], Some(&beta), 1)
            .unwrap();
        let expected = independent_exact_laplace(&counts, theta, &beta);
        assert!(
            (exact - expected).abs() < 1e-8 * expected.abs(),
            "{exact} against {expected}"
        );
        // lme4 1.1's objective takes log|L|² one PIRLS iteration early: not the same value.
        let lme4 = counts
            .objective(
                &mut counts.model().with_laplace(LaplaceObjective::Lme4),
                &[theta],
                Some(&beta),
                1,
            )
            .unwrap();
        assert!((lme4 - expected).abs() > 1e-7, "{lme4} against {expected}");
    }
}
