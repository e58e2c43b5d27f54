//! A GLMM fit large enough for the parallel per-observation loops, on one and on two threads:
//! every estimate must be identical to the last bit.

use super::common::Lcg;
use crate::families::{Distribution, Family, Link};
use crate::glmm::GeneralizedLinearMixedModel;
use crate::{FactorizationChoice, OptimizerSettings, RandomEffectsTerm};
use faer::Mat;

#[test]
fn glmm_results_do_not_depend_on_the_number_of_threads() {
    let n = 20_000;
    let n_groups = 300;
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
    let fit = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let term = RandomEffectsTerm::new(codes.clone(), n_groups, 1, vec![1.0; n]).unwrap();
            let mut model = GeneralizedLinearMixedModel::new(
                vec![term],
                x.as_ref(),
                y.clone(),
                vec![1.0; n],
                vec![0.0; n],
                Family::new(Distribution::Poisson, Link::Log),
                FactorizationChoice::Automatic,
            )
            .unwrap();
            model
                .fit(
                    x.as_ref(),
                    1,
                    OptimizerSettings::generalized(10_000).unwrap(),
                )
                .unwrap()
        })
    };
    let (one, two) = (fit(1), fit(2));
    assert_eq!(one.theta, two.theta);
    assert_eq!(one.beta, two.beta);
    assert_eq!(
        one.minus_twice_log_likelihood.to_bits(),
        two.minus_twice_log_likelihood.to_bits()
    );
    assert_eq!(one.beta_covariance_hessian, two.beta_covariance_hessian);
    assert_eq!(one.mu, two.mu);
}
