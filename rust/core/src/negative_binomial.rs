//! lme4's `glmer.nb`: a negative binomial GLMM whose size θ is estimated by an outer
//! one-dimensional search, the GLMM refitted at every size — the one implementation behind both
//! `glmer_nb` (`GeneralizedLinearMixedModel::fit_negative_binomial`) and the count batch, so a
//! batch fit of one gene gives `glmer_nb`'s answer: a Poisson fit; the size's ML estimate for
//! its means from the moment estimate (Venables & Ripley's `theta.ml`, lme4's start); Brent's
//! bounded minimisation of −2 log L over log θ within ±3 of the start to 5e-5.

use faer::MatRef;

use crate::error::{CoreError, Result};
use crate::families::{Distribution, Family, Link};
use crate::glmm::{GeneralizedLinearMixedModel, GlmmFit};
use crate::interrupt::Interrupt;
use crate::optimize::OptimizerSettings;

/// Half the width of the search interval of log θ around the start (lme4's `glmer.nb`).
const LOG_SIZE_HALF_WIDTH: f64 = 3.0;
/// The search's absolute tolerance in log θ (lme4's `optimize` tolerance, scipy's `xatol`).
const LOG_SIZE_TOLERANCE: f64 = 5e-5;
/// scipy's default budget of its bounded scalar search.
const SEARCH_MAX_EVALUATIONS: usize = 500;
/// `theta.ml`'s Newton iterations (`limit`) and its step tolerance.
const MOMENT_ML_LIMIT: usize = 20;
const MOMENT_ML_TOLERANCE: f64 = 1e-4;

/// A negative binomial fit: the estimated size and the GLMM fitted at it.
pub(crate) struct NegativeBinomialFit {
    pub size: f64,
    pub fit: GlmmFit,
}

/// `glmer.nb` for one response `y` with prior weights `weights`: `model(family)` builds the GLMM of
/// the data with that family (log `link` for the Poisson start and every size), each fitted with
/// `n_agq` nodes and `settings`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_negative_binomial(
    model: impl Fn(Family) -> Result<GeneralizedLinearMixedModel>,
    x: MatRef<'_, f64>,
    y: &[f64],
    weights: &[f64],
    link: Link,
    n_agq: usize,
    settings: OptimizerSettings,
    interrupt: &Interrupt,
) -> Result<NegativeBinomialFit> {
    let poisson =
        model(Family::new(Distribution::Poisson, link))?.fit(x, n_agq, settings, interrupt)?;
    let start = size_moment_ml(y, &poisson.mu, weights).ln();
    let fit_at = |log_size: f64| -> Result<(f64, GlmmFit)> {
        let family = Family::new(
            Distribution::NegativeBinomial {
                theta: log_size.exp(),
            },
            link,
        );
        let fit = model(family)?.fit(x, n_agq, settings, interrupt)?;
        Ok((fit.minus_twice_log_likelihood, fit))
    };
    let (log_size, _, fit) = minimize_bounded(
        fit_at,
        start - LOG_SIZE_HALF_WIDTH,
        start + LOG_SIZE_HALF_WIDTH,
        LOG_SIZE_TOLERANCE,
        SEARCH_MAX_EVALUATIONS,
    )?;
    Ok(NegativeBinomialFit {
        size: log_size.exp(),
        fit,
    })
}

/// ML estimate of the negative binomial size for fixed means μ by Newton's method from the
/// moment estimate (MASS's `theta.ml`, lme4's start for `glmer.nb`), at least 1e-8.
pub(crate) fn size_moment_ml(y: &[f64], mu: &[f64], weights: &[f64]) -> f64 {
    let total: f64 = weights.iter().sum();
    let moments: f64 = y
        .iter()
        .zip(mu)
        .zip(weights)
        .map(|((&y, &mu), &w)| w * (y / mu - 1.0).powi(2))
        .sum();
    let mut theta = total / moments;
    let mut step = 1.0_f64;
    for _ in 1..MOMENT_ML_LIMIT {
        if step.abs() <= MOMENT_ML_TOLERANCE {
            break;
        }
        theta = theta.abs();
        let (mut score, mut information) = (0.0, 0.0);
        for ((&y, &mu), &w) in y.iter().zip(mu).zip(weights) {
            score += w
                * (digamma(theta + y) - digamma(theta) + theta.ln() + 1.0
                    - (theta + mu).ln()
                    - (y + theta) / (mu + theta));
            information += w
                * (-trigamma(theta + y) + trigamma(theta) - 1.0 / theta + 2.0 / (mu + theta)
                    - (y + theta) / (mu + theta).powi(2));
        }
        step = score / information;
        theta += step;
    }
    theta.max(1e-8)
}

/// Brent's minimisation of `f` on [lower, upper] without derivatives (Brent 1973, *Algorithms for
/// Minimization without Derivatives*, ch. 5: golden-section steps, parabolic interpolation through
/// the three best points when it is safe), with the constants and rules of scipy's
/// `minimize_scalar(method="bounded")` and R's `optimize`: it stops when the best point is within
/// 2·tol of the middle of the bracket less half its width, tol = √(2.2e-16)·|x| + `x_tolerance`/3.
/// `f` returns the value and what goes with it; the result is the best point, its value and the
/// payload of its evaluation.
pub(crate) fn minimize_bounded<T>(
    mut f: impl FnMut(f64) -> Result<(f64, T)>,
    lower: f64,
    upper: f64,
    x_tolerance: f64,
    max_evaluations: usize,
) -> Result<(f64, f64, T)> {
    let sqrt_eps = 2.2e-16_f64.sqrt();
    let golden_mean = 0.5 * (3.0 - 5.0_f64.sqrt());
    let checked = |x: f64, value: f64| -> Result<f64> {
        if value.is_nan() {
            return Err(CoreError::Optimization(format!(
                "the objective of the scalar search is not a number at {x}"
            )));
        }
        Ok(value)
    };
    let (mut a, mut b) = (lower, upper);
    // best: the lowest value so far; second, third: the two before it (for the parabola).
    let mut best = a + golden_mean * (b - a);
    let (value, mut payload) = f(best)?;
    let mut best_value = checked(best, value)?;
    let (mut second, mut second_value) = (best, best_value);
    let (mut third, mut third_value) = (best, best_value);
    let (mut step, mut previous_step) = (0.0_f64, 0.0_f64);
    let mut evaluations = 1;
    let mut middle = 0.5 * (a + b);
    let mut tol = sqrt_eps * best.abs() + x_tolerance / 3.0;
    while (best - middle).abs() > 2.0 * tol - 0.5 * (b - a) {
        let mut golden = true;
        if previous_step.abs() > tol {
            golden = false;
            let r = (best - second) * (best_value - third_value);
            let mut q = (best - third) * (best_value - second_value);
            let mut p = (best - third) * q - (best - second) * r;
            q = 2.0 * (q - r);
            if q > 0.0 {
                p = -p;
            }
            q = q.abs();
            let older_step = previous_step;
            previous_step = step;
            if p.abs() < (0.5 * q * older_step).abs() && p > q * (a - best) && p < q * (b - best) {
                step = p / q;
                let x = best + step;
                if x - a < 2.0 * tol || b - x < 2.0 * tol {
                    step = tol * sign_or_one(middle - best);
                }
            } else {
                golden = true;
            }
        }
        if golden {
            previous_step = if best >= middle { a - best } else { b - best };
            step = golden_mean * previous_step;
        }
        let x = best + sign_or_one(step) * step.abs().max(tol);
        let (value, evaluated) = f(x)?;
        let value = checked(x, value)?;
        evaluations += 1;
        if value <= best_value {
            if x >= best {
                a = best;
            } else {
                b = best;
            }
            (third, third_value) = (second, second_value);
            (second, second_value) = (best, best_value);
            (best, best_value, payload) = (x, value, evaluated);
        } else {
            if x < best {
                a = x;
            } else {
                b = x;
            }
            if value <= second_value || second == best {
                (third, third_value) = (second, second_value);
                (second, second_value) = (x, value);
            } else if value <= third_value || third == best || third == second {
                (third, third_value) = (x, value);
            }
        }
        middle = 0.5 * (a + b);
        tol = sqrt_eps * best.abs() + x_tolerance / 3.0;
        if evaluations >= max_evaluations {
            break;
        }
    }
    Ok((best, best_value, payload))
}

/// sign(v), with 1 for 0 (the direction of a step of size 0).
fn sign_or_one(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else {
        1.0
    }
}

/// ψ(x) for x > 0: the recurrence ψ(x) = ψ(x + 1) − 1/x up to x ≥ 10, then the asymptotic series
/// ln x − 1/(2x) − Σ B₂ₖ/(2k x²ᵏ) (Abramowitz & Stegun 6.3.18), whose first omitted term is
/// below 1e-16 there.
pub(crate) fn digamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let z = 1.0 / (x * x);
    let series = z
        * (1.0 / 12.0
            - z * (1.0 / 120.0
                - z * (1.0 / 252.0
                    - z * (1.0 / 240.0 - z * (1.0 / 132.0 - z * (691.0 / 32760.0 - z / 12.0))))));
    shift + x.ln() - 0.5 / x - series
}

/// ψ′(x) for x > 0: ψ′(x) = ψ′(x + 1) + 1/x² up to x ≥ 10, then 1/x + 1/(2x²) + Σ B₂ₖ/x²ᵏ⁺¹
/// (Abramowitz & Stegun 6.4.12).
pub(crate) fn trigamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    let z = 1.0 / (x * x);
    let series = z
        * (1.0 / 6.0
            - z * (1.0 / 30.0
                - z * (1.0 / 42.0
                    - z * (1.0 / 30.0 - z * (5.0 / 66.0 - z * (691.0 / 2730.0 - z * 7.0 / 6.0))))));
    shift + 1.0 / x + 0.5 * z + series / x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_and_trigamma_match_known_values() {
        // ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2, ψ′(1) = π²/6, ψ′(1/2) = π²/2; R's digamma(123.4)
        // and trigamma(123.4).
        let gamma = 0.577_215_664_901_532_9;
        let pi2 = std::f64::consts::PI.powi(2);
        assert!((digamma(1.0) + gamma).abs() < 1e-15);
        assert!((digamma(0.5) + gamma + 2.0 * 2f64.ln()).abs() < 1e-14);
        assert!((trigamma(1.0) - pi2 / 6.0).abs() < 1e-14);
        assert!((trigamma(0.5) - pi2 / 2.0).abs() < 1e-13);
        assert!((digamma(123.4) - 4.811_373_775_116_277_5).abs() < 1e-14);
        assert!((trigamma(123.4) - 0.008_136_651_610_865_263).abs() < 1e-16);
    }

    #[test]
    fn the_bounded_search_finds_minima_inside_and_on_the_bounds() {
        let search = |f: &dyn Fn(f64) -> f64, lower: f64, upper: f64| {
            minimize_bounded(|x| Ok((f(x), x)), lower, upper, 1e-8, 500).unwrap()
        };
        let (x, value, payload) = search(&|x| (x - 1.3).powi(2) + 2.0, -2.0, 4.0);
        assert!((x - 1.3).abs() < 1e-7 && (value - 2.0).abs() < 1e-12 && payload == x);
        let (x, ..) = search(&|x| x.cos(), 0.0, 5.0);
        assert!((x - std::f64::consts::PI).abs() < 1e-7);
        let (x, ..) = search(&|x| x, 1.0, 2.0);
        assert!(x - 1.0 < 1e-7);
        let failed = minimize_bounded(|_| Ok((f64::NAN, ())), 0.0, 1.0, 1e-8, 500);
        assert!(matches!(failed, Err(CoreError::Optimization(_))));
    }

    #[test]
    fn the_moment_ml_size_is_the_ml_estimate_for_fixed_means() {
        // Score zero at the estimate: Σ ψ(θ + y) − ψ(θ) + log θ + 1 − log(θ + μ) − (y + θ)/(μ + θ).
        let y = [0.0, 3.0, 7.0, 1.0, 12.0, 4.0, 0.0, 9.0, 2.0, 5.0];
        let mu = [2.0, 4.0, 5.0, 2.5, 6.0, 3.0, 1.5, 5.5, 3.5, 4.0];
        let weights = [1.0; 10];
        let theta = size_moment_ml(&y, &mu, &weights);
        let score: f64 = y
            .iter()
            .zip(&mu)
            .map(|(&y, &mu)| {
                digamma(theta + y) - digamma(theta) + theta.ln() + 1.0
                    - (theta + mu).ln()
                    - (y + theta) / (mu + theta)
            })
            .sum();
        assert!(theta > 0.0 && score.abs() < 1e-6, "{theta} {score}");
    }
}
