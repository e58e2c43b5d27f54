//! Exponential-family distributions and link functions of generalized linear (mixed) models, as R's
//! `family` objects define them (McCullagh & Nelder 1989; R's `binomial()`, `poisson()`, `Gamma()`,
//! `inverse.gaussian()`, `gaussian()`, MASS's `negative.binomial()`): variance function, deviance
//! residuals, the full log-likelihood (R's `family$aic`), and links with R's clamping so that μ
//! stays inside the family's range.

use std::f64::consts::PI;

use crate::error::{CoreError, Result};

const EPSILON: f64 = f64::EPSILON;
/// −qnorm(ε): probit's η is clamped to ±this, where Φ(η) leaves (ε, 1 − ε).
const PROBIT_THRESHOLD: f64 = 8.125890664701906;
/// −qcauchy(ε) = 1 / tan(π ε).
const CAUCHIT_THRESHOLD: f64 = 1.4335281153718196e15;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    Logit,
    Probit,
    Cloglog,
    Cauchit,
    Log,
    Identity,
    Inverse,
    Sqrt,
    /// 1/μ², the canonical link of the inverse Gaussian.
    InverseSquare,
}

impl Link {
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "logit" => Self::Logit,
            "probit" => Self::Probit,
            "cloglog" => Self::Cloglog,
            "cauchit" => Self::Cauchit,
            "log" => Self::Log,
            "identity" => Self::Identity,
            "inverse" => Self::Inverse,
            "sqrt" => Self::Sqrt,
            "1/mu^2" => Self::InverseSquare,
            other => return Err(CoreError::Specification(format!("unknown link {other:?}"))),
        })
    }

    /// η = g(μ).
    pub fn link(self, mu: f64) -> f64 {
        match self {
            Self::Logit => (mu / (1.0 - mu)).ln(),
            Self::Probit => normal_quantile(mu),
            Self::Cloglog => (-(-mu).ln_1p()).ln(),
            Self::Cauchit => (PI * (mu - 0.5)).tan(),
            Self::Log => mu.ln(),
            Self::Identity => mu,
            Self::Inverse => 1.0 / mu,
            Self::Sqrt => mu.sqrt(),
            Self::InverseSquare => 1.0 / (mu * mu),
        }
    }

    /// μ = g⁻¹(η), clamped as R clamps it.
    pub fn inverse(self, eta: f64) -> f64 {
        match self {
            Self::Logit => {
                let e = if eta < -30.0 {
                    EPSILON
                } else if eta > 30.0 {
                    1.0 / EPSILON
                } else {
                    eta.exp()
                };
                e / (1.0 + e)
            }
            Self::Probit => normal_cdf(eta.clamp(-PROBIT_THRESHOLD, PROBIT_THRESHOLD)),
            Self::Cloglog => (-(-eta.exp()).exp_m1()).clamp(EPSILON, 1.0 - EPSILON),
            Self::Cauchit => 0.5 + eta.clamp(-CAUCHIT_THRESHOLD, CAUCHIT_THRESHOLD).atan() / PI,
            Self::Log => eta.exp().max(EPSILON),
            Self::Identity => eta,
            Self::Inverse => 1.0 / eta,
            Self::Sqrt => eta * eta,
            Self::InverseSquare => 1.0 / eta.sqrt(),
        }
    }

    /// dμ/dη at η, bounded away from zero as R bounds it.
    pub fn mu_eta(self, eta: f64) -> f64 {
        match self {
            Self::Logit => {
                if eta.abs() > 30.0 {
                    EPSILON
                } else {
                    let e = eta.exp();
                    e / ((1.0 + e) * (1.0 + e))
                }
            }
            Self::Probit => normal_density(eta).max(EPSILON),
            Self::Cloglog => {
                let eta = eta.min(700.0);
                (eta.exp() * (-eta.exp()).exp()).max(EPSILON)
            }
            Self::Cauchit => (1.0 / (PI * (1.0 + eta * eta))).max(EPSILON),
            Self::Log => eta.exp().max(EPSILON),
            Self::Identity => 1.0,
            Self::Inverse => -1.0 / (eta * eta),
            Self::Sqrt => 2.0 * eta,
            Self::InverseSquare => -1.0 / (2.0 * eta.powf(1.5)),
        }
    }

    /// dμ/dη given both η and μ = g⁻¹(η): for the log link it is μ itself (both clamped at ε as
    /// R clamps them), which saves an exponential per observation and iteration.
    pub(crate) fn mu_eta_at(self, eta: f64, mu: f64) -> f64 {
        match self {
            Self::Log => mu,
            _ => self.mu_eta(eta),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    Binomial,
    Poisson,
    Gamma,
    InverseGaussian,
    Gaussian,
    /// NB2 with size θ: Var = μ + μ²/θ.
    NegativeBinomial {
        theta: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Family {
    pub(crate) distribution: Distribution,
    pub link: Link,
}

/// y log(y/μ), 0 at y = 0.
fn y_log_y_over_mu(y: f64, mu: f64) -> f64 {
    if y > 0.0 {
        y * (y / mu).ln()
    } else {
        0.0
    }
}

impl Family {
    pub fn new(distribution: Distribution, link: Link) -> Self {
        Self { distribution, link }
    }

    /// Families whose likelihood has a free dispersion parameter (estimated, reported, counted).
    pub(crate) fn has_dispersion(&self) -> bool {
        matches!(
            self.distribution,
            Distribution::Gamma | Distribution::InverseGaussian | Distribution::Gaussian
        )
    }

    /// V(μ).
    pub fn variance(&self, mu: f64) -> f64 {
        match self.distribution {
            Distribution::Binomial => mu * (1.0 - mu),
            Distribution::Poisson => mu,
            Distribution::Gamma => mu * mu,
            Distribution::InverseGaussian => mu * mu * mu,
            Distribution::Gaussian => 1.0,
            Distribution::NegativeBinomial { theta } => mu + mu * mu / theta,
        }
    }

    /// Unit deviance times the prior weight (R's `dev.resids`), the square of a deviance residual.
    pub fn deviance_residual(&self, y: f64, mu: f64, weight: f64) -> f64 {
        weight
            * match self.distribution {
                Distribution::Binomial => {
                    2.0 * (y_log_y_over_mu(y, mu) + y_log_y_over_mu(1.0 - y, 1.0 - mu))
                }
                Distribution::Poisson => 2.0 * (y_log_y_over_mu(y, mu) - (y - mu)),
                Distribution::Gamma => {
                    -2.0 * ((if y == 0.0 { 1.0 } else { y / mu }).ln() - (y - mu) / mu)
                }
                Distribution::InverseGaussian => (y - mu).powi(2) / (y * mu * mu),
                Distribution::Gaussian => (y - mu).powi(2),
                Distribution::NegativeBinomial { theta } => {
                    2.0 * (y * (y.max(1.0) / mu).ln()
                        - (y + theta) * ((y + theta) / (mu + theta)).ln())
                }
            }
    }

    /// For the Poisson with log link, the part of each deviance residual that depends on y
    /// alone, 2w(y log y − y); `None` for other families. With them, [`Self::mean_and_deviance`]
    /// needs no logarithm: log μ is η itself.
    pub(crate) fn deviance_constants(&self, y: &[f64], weights: &[f64]) -> Option<Vec<f64>> {
        matches!(
            (self.distribution, self.link),
            (Distribution::Poisson, Link::Log)
        )
        .then(|| {
            y.iter()
                .zip(weights)
                .map(|(&y, &w)| 2.0 * w * (xlogy(y, y) - y))
                .collect()
        })
    }

    /// μ = g⁻¹(η) into `mu` and Σ devresᵢ at it, in order. With the family's
    /// [`Self::deviance_constants`] a residual is 2w(μ − y log μ) + constant, log μ being η
    /// except where μ is clamped at ε: the logarithm this saves was a quarter of a Poisson fit.
    pub(crate) fn mean_and_deviance(
        &self,
        eta: &[f64],
        mu: &mut [f64],
        y: &[f64],
        weights: &[f64],
        constants: Option<&[f64]>,
    ) -> f64 {
        let mut sum = 0.0;
        match constants {
            Some(constants) => {
                for ((((mu, &eta), &y), &w), &constant) in
                    mu.iter_mut().zip(eta).zip(y).zip(weights).zip(constants)
                {
                    *mu = self.link.inverse(eta);
                    let log_mu = if *mu > EPSILON { eta } else { mu.ln() };
                    sum += constant + 2.0 * w * (*mu - y * log_mu);
                }
            }
            None => {
                for (((mu, &eta), &y), &w) in mu.iter_mut().zip(eta).zip(y).zip(weights) {
                    *mu = self.link.inverse(eta);
                    sum += self.deviance_residual(y, *mu, w);
                }
            }
        }
        sum
    }

    /// −2 log-likelihood of the data at μ including every constant (R's `family$aic`, which for
    /// the dispersion families plugs in the estimate `deviance / Σw` and adds 2 for it).
    /// For the binomial, `y` are proportions and `weights` the numbers of trials.
    pub(crate) fn minus_twice_log_likelihood(
        &self,
        y: &[f64],
        mu: &[f64],
        weights: &[f64],
        deviance: f64,
    ) -> f64 {
        let pairs = y.iter().zip(mu).zip(weights);
        match self.distribution {
            Distribution::Binomial => {
                -2.0 * pairs
                    .filter(|(_, &w)| w > 0.0)
                    .map(|((&y, &mu), &w)| {
                        let trials = w.round();
                        let successes = (w * y).round();
                        log_choose(trials, successes)
                            + xlogy(successes, mu)
                            + xlogy(trials - successes, 1.0 - mu)
                    })
                    .sum::<f64>()
            }
            Distribution::Poisson => {
                -2.0 * pairs
                    .map(|((&y, &mu), &w)| w * (xlogy(y, mu) - mu - libm::lgamma(y + 1.0)))
                    .sum::<f64>()
            }
            Distribution::Gamma => {
                let total_weight: f64 = weights.iter().sum();
                let dispersion = deviance / total_weight;
                let shape = 1.0 / dispersion;
                -2.0 * pairs
                    .map(|((&y, &mu), &w)| {
                        let scale = mu * dispersion;
                        w * ((shape - 1.0) * y.ln()
                            - y / scale
                            - libm::lgamma(shape)
                            - shape * scale.ln())
                    })
                    .sum::<f64>()
                    + 2.0
            }
            Distribution::InverseGaussian => {
                let total_weight: f64 = weights.iter().sum();
                let dispersion = deviance / total_weight;
                total_weight * ((dispersion * 2.0 * PI).ln() + 1.0)
                    + 3.0
                        * y.iter()
                            .zip(weights)
                            .map(|(&y, &w)| w * y.ln())
                            .sum::<f64>()
                    + 2.0
            }
            Distribution::Gaussian => {
                let n = y.len() as f64;
                let log_weights: f64 = weights.iter().map(|w| w.ln()).sum();
                n * ((2.0 * PI * deviance / n).ln() + 1.0) + 2.0 - log_weights
            }
            Distribution::NegativeBinomial { theta } => {
                -2.0 * pairs
                    .map(|((&y, &mu), &w)| {
                        w * (libm::lgamma(theta + y) - libm::lgamma(theta) - libm::lgamma(y + 1.0)
                            + theta * theta.ln()
                            + y * (mu + if y == 0.0 { 1.0 } else { 0.0 }).ln()
                            - (theta + y) * (theta + mu).ln())
                    })
                    .sum::<f64>()
            }
        }
    }

    /// Starting μ for PIRLS (R's `family$initialize`, `mustart`).
    pub(crate) fn initial_mu(&self, y: f64, weight: f64) -> f64 {
        match self.distribution {
            Distribution::Binomial => (weight * y + 0.5) / (weight + 1.0),
            Distribution::Poisson => y + 0.1,
            Distribution::NegativeBinomial { .. } => y + if y == 0.0 { 1.0 / 6.0 } else { 0.0 },
            Distribution::Gamma | Distribution::InverseGaussian | Distribution::Gaussian => y,
        }
    }

    /// Check a response against the family's support; the message names the first bad value.
    pub(crate) fn check_response(&self, y: &[f64], weights: &[f64]) -> Result<()> {
        let bad = |index: usize, why: &str| {
            Err(CoreError::InvalidInput(format!(
                "response value {} (observation {}) {why}",
                y[index],
                index + 1
            )))
        };
        for (index, (&value, &weight)) in y.iter().zip(weights).enumerate() {
            if !value.is_finite() {
                return bad(index, "is not finite");
            }
            match self.distribution {
                Distribution::Binomial => {
                    if !(0.0..=1.0).contains(&value) {
                        return bad(index, "is outside [0, 1] for the binomial family");
                    }
                    let successes = value * weight;
                    if (successes - successes.round()).abs() > 1e-8 * weight.max(1.0) {
                        return bad(index, "times its weight (number of trials) is not a whole number of successes");
                    }
                }
                Distribution::Poisson | Distribution::NegativeBinomial { .. } => {
                    if value < 0.0 {
                        return bad(index, "is negative; counts must be non-negative");
                    }
                    if value != value.round() {
                        return bad(index, "is not a whole number; counts must be integers");
                    }
                }
                Distribution::Gamma | Distribution::InverseGaussian => {
                    if value <= 0.0 {
                        return bad(index, "is not positive, as the family requires");
                    }
                }
                Distribution::Gaussian => {}
            }
        }
        Ok(())
    }
}

/// x log y, 0 when x = 0 (R's `dbinom`/`dpois` convention).
fn xlogy(x: f64, y: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x * y.ln()
    }
}

/// log C(n, k).
fn log_choose(n: f64, k: f64) -> f64 {
    libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
}

pub(crate) fn normal_density(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Φ⁻¹(p) by Acklam's rational approximation refined with one Halley step (|error| < 1e-15).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let error = normal_cdf(x) - p;
    let u = error * (2.0 * PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINKS: [Link; 9] = [
        Link::Logit,
        Link::Probit,
        Link::Cloglog,
        Link::Cauchit,
        Link::Log,
        Link::Identity,
        Link::Inverse,
        Link::Sqrt,
        Link::InverseSquare,
    ];

    #[test]
    fn links_invert_and_differentiate() {
        for link in LINKS {
            for mu in [0.1, 0.35, 0.8] {
                let eta = link.link(mu);
                assert!((link.inverse(eta) - mu).abs() < 1e-12, "{link:?} at {mu}");
                let h = 1e-6;
                let numeric = (link.inverse(eta + h) - link.inverse(eta - h)) / (2.0 * h);
                assert!(
                    (link.mu_eta(eta) - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
                    "{link:?} mu_eta at {mu}"
                );
            }
        }
    }

    #[test]
    fn clamped_links_keep_mu_inside_the_unit_interval() {
        for link in [Link::Logit, Link::Probit, Link::Cloglog, Link::Cauchit] {
            for eta in [-1e3, 1e3] {
                let mu = link.inverse(eta);
                assert!(
                    mu > 0.0 && mu < 1.0 || (link == Link::Cauchit && (0.0..=1.0).contains(&mu)),
                    "{link:?} {eta}"
                );
                assert!(link.mu_eta(eta) > 0.0);
            }
        }
    }

    #[test]
    fn normal_quantile_inverts_the_cdf() {
        for p in [1e-10, 0.01, 0.3, 0.5, 0.9, 0.999999] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-14 * p.max(1e-3) / 1e-3);
        }
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-13);
        assert!((-normal_quantile(EPSILON) - PROBIT_THRESHOLD).abs() < 1e-9);
    }

    #[test]
    fn poisson_likelihood_is_the_sum_of_log_probabilities() {
        let family = Family::new(Distribution::Poisson, Link::Log);
        let (y, mu, w) = ([0.0, 3.0, 7.0], [0.5, 2.5, 6.0], [1.0, 1.0, 1.0]);
        let direct: f64 = y
            .iter()
            .zip(mu)
            .map(|(&y, mu): (&f64, f64)| {
                let factorial: f64 = (1..=(y as u64)).map(|k| k as f64).product();
                (mu.powf(y) * (-mu).exp() / factorial).ln()
            })
            .sum();
        assert!((family.minus_twice_log_likelihood(&y, &mu, &w, 0.0) + 2.0 * direct).abs() < 1e-12);
    }

    #[test]
    fn binomial_likelihood_matches_the_probability_mass() {
        let family = Family::new(Distribution::Binomial, Link::Logit);
        // 3 successes of 5 at p = 0.4: C(5,3) 0.4³ 0.6² = 0.2304.
        let value = family.minus_twice_log_likelihood(&[0.6], &[0.4], &[5.0], 0.0);
        assert!((value + 2.0 * 0.2304f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn deviance_residuals_vanish_at_the_data() {
        for (distribution, y) in [
            (Distribution::Binomial, 0.3),
            (Distribution::Poisson, 4.0),
            (Distribution::Gamma, 2.5),
            (Distribution::InverseGaussian, 1.5),
            (Distribution::Gaussian, -1.0),
            (Distribution::NegativeBinomial { theta: 2.0 }, 3.0),
        ] {
            let family = Family::new(distribution, Link::Log);
            assert!(
                family.deviance_residual(y, y, 1.0).abs() < 1e-12,
                "{distribution:?}"
            );
            assert!(
                family.deviance_residual(y, y * 0.8, 1.0) > 0.0,
                "{distribution:?}"
            );
        }
    }

    #[test]
    fn poisson_deviance_from_eta_matches_the_logarithmic_form() {
        let poisson = Family::new(Distribution::Poisson, Link::Log);
        let y = [0.0, 1.0, 3.0, 17.0, 2.0];
        let weights = [1.0, 2.5, 0.5, 1.0, 1.0];
        let constants = poisson.deviance_constants(&y, &weights).unwrap();
        for eta in [-40.0, -2.0, 0.3, 1.1, 2.9] {
            let etas = [eta; 5];
            let mut mu = [0.0; 5];
            let from_eta =
                poisson.mean_and_deviance(&etas, &mut mu, &y, &weights, Some(&constants));
            let mut mu_direct = [0.0; 5];
            let direct = poisson.mean_and_deviance(&etas, &mut mu_direct, &y, &weights, None);
            let by_hand: f64 = (0..5)
                .map(|i| poisson.deviance_residual(y[i], Link::Log.inverse(eta), weights[i]))
                .sum();
            assert_eq!(mu, mu_direct);
            assert!((direct - by_hand).abs() <= 1e-14 * by_hand.abs());
            assert!(
                (direct - from_eta).abs() < 1e-12 * (1.0 + direct.abs()),
                "η {eta}: {direct} vs {from_eta}"
            );
        }
        let binomial = Family::new(Distribution::Binomial, Link::Logit);
        assert!(binomial.deviance_constants(&y, &weights).is_none());
        assert!(Family::new(Distribution::Poisson, Link::Sqrt)
            .deviance_constants(&y, &weights)
            .is_none());
    }

    #[test]
    fn responses_outside_the_support_are_named() {
        let binomial = Family::new(Distribution::Binomial, Link::Logit);
        let err = binomial
            .check_response(&[0.5, 1.5], &[2.0, 2.0])
            .unwrap_err();
        assert!(err.to_string().contains("observation 2"));
        assert!(binomial.check_response(&[0.5], &[3.0]).is_err());
        let poisson = Family::new(Distribution::Poisson, Link::Log);
        assert!(poisson.check_response(&[1.5], &[1.0]).is_err());
        assert!(poisson.check_response(&[-1.0], &[1.0]).is_err());
        let gamma = Family::new(Distribution::Gamma, Link::Log);
        assert!(gamma.check_response(&[0.0], &[1.0]).is_err());
    }
}
