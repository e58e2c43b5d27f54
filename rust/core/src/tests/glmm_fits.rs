//! GLMM fits of a simulated Poisson model: on one and on two threads every estimate must be
//! identical to the last bit, and an interrupted fit leaves its model as good as new.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::common::Lcg;
use crate::families::{Distribution, Family, Link};
use crate::glmm::{GeneralizedLinearMixedModel, GlmmFit};
use crate::{CoreError, FactorizationChoice, Interrupt, OptimizerSettings, RandomEffectsTerm};
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
        let n = self.y.len();
        let term = RandomEffectsTerm::new(self.codes.clone(), self.n_groups, 1, vec![1.0; n]);
        GeneralizedLinearMixedModel::new(
            vec![term.unwrap()],
            self.x.as_ref(),
            self.y.clone(),
            vec![1.0; n],
            vec![0.0; n],
            Family::new(Distribution::Poisson, Link::Log),
            FactorizationChoice::Automatic,
        )
        .unwrap()
    }

    fn fit(
        &self,
        model: &mut GeneralizedLinearMixedModel,
        interrupt: &Interrupt,
    ) -> Result<GlmmFit, CoreError> {
        let settings = OptimizerSettings::generalized(10_000).unwrap();
        model.fit(self.x.as_ref(), 1, settings, interrupt)
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
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| counts.fit(&mut counts.model(), &Interrupt::new()).unwrap())
    };
    assert_identical(&fit(1), &fit(2));
}

#[test]
fn an_interrupted_fit_leaves_its_model_as_good_as_new() {
    let counts = Counts::simulate(1_000, 40);
    let mut model = counts.model();
    let expected = counts.fit(&mut model, &Interrupt::new()).unwrap();
    // Count the checks of a whole fit, then stop fits at checks spread over it: in the initial
    // PIRLS, in stage one, in the curvature scales, in stage two and in the Hessian.
    let checks = AtomicUsize::new(0);
    let count = || {
        checks.fetch_add(1, Ordering::Relaxed);
        false
    };
    counts
        .fit(
            &mut model,
            &Interrupt::with_poll(Some(&count), Duration::ZERO),
        )
        .unwrap();
    let total = checks.load(Ordering::Relaxed);
    for stop_at in (1..total).step_by(total / 12) {
        let seen = AtomicUsize::new(0);
        let stop = || seen.fetch_add(1, Ordering::Relaxed) + 1 == stop_at;
        let interrupt = Interrupt::with_poll(Some(&stop), Duration::ZERO);
        let outcome = counts.fit(&mut model, &interrupt);
        assert_eq!(outcome.unwrap_err(), CoreError::Interrupted);
        assert_eq!(seen.load(Ordering::Relaxed), stop_at);
        assert_identical(
            &counts.fit(&mut model, &Interrupt::new()).unwrap(),
            &expected,
        );
    }
}
