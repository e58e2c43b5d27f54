//! Derivatives with respect to the variance parameters φ = (θ, σ) of a linear mixed model, for
//! Satterthwaite's degrees of freedom (Kuznetsova, Brockhoff & Christensen 2017, JSS 82(13),
//! sec. 3.2; lmerTest's `as_lmerModLmerTest`, `devfun_vp` and `get_covbeta`):
//!
//! * the deviance with σ not profiled out,
//!   D(θ, σ) = log|L_Z|² [+ log|R_X|²] + r²(θ)/σ² + m log(2πσ²), m = n − p (REML) or n (ML),
//!   its Hessian H at the estimates and A = 2H⁺, the asymptotic covariance of φ̂;
//! * the Jacobian of Cov(β̂)(φ) = σ² (R_X R_Xᵀ)⁻¹(θ): one p×p matrix per parameter.
//!
//! σ enters analytically; θ numerically, by central differences at the steps numDeriv's
//! `hessian` uses (h = 0.1|θᵢ|, or 10⁻⁴ where θᵢ ≈ 0, then halved three times) combined by
//! Richardson extrapolation, so the numbers agree with lmerTest's to far below its reporting
//! precision. All evaluations run one after another, so the result does not depend on threads.

use crate::dense::{symmetric_eigen, twice_spectral_inverse};
use crate::error::{CoreError, Result};
use crate::interrupt::Interrupt;
use crate::lmm::LinearMixedModel;

/// numDeriv's defaults for `hessian(method = "Richardson")`: relative step, the step where a
/// parameter is (near) zero, what counts as zero, and the number of step halvings.
const RELATIVE_STEP: f64 = 0.1;
const STEP_AT_ZERO: f64 = 1e-4;
const ZERO_TOLERANCE: f64 = 1.781_029_7e-5; // √(ε_machine / 7·10⁻⁷)
const STEPS: usize = 4;
/// Eigenvalues of H at most this are treated as zero in its pseudo-inverse (lmerTest's `tol`).
const EIGENVALUE_TOLERANCE: f64 = 1e-8;

/// What one factorisation at θ gives the deviance in φ.
pub(crate) struct DevianceParts {
    /// log|L_Z|², plus log|R_X|² for REML.
    pub(crate) log_det: f64,
    /// r²(θ), the penalised weighted residual sum of squares.
    pub(crate) pwrss: f64,
    /// (R_X R_Xᵀ)⁻¹, p×p column-major: Cov(β̂) / σ².
    pub(crate) unscaled_beta_covariance: Vec<f64>,
}

/// The derivatives at (θ̂, σ̂); φ has k = n_θ + 1 entries, σ last.
#[derive(Debug, Clone)]
pub struct VarianceParameterDerivatives {
    /// H, the Hessian of D(φ), k×k column-major.
    pub hessian: Vec<f64>,
    /// H's eigenvalues, ascending (lmerTest warns on negative or zero ones).
    pub hessian_eigenvalues: Vec<f64>,
    /// A = 2H⁺, k×k column-major (pseudo-inverse over eigenvalues > 10⁻⁸).
    pub covariance: Vec<f64>,
    /// ∂Cov(β̂)/∂φᵢ for i = 1..k, each p×p column-major, one after another.
    pub beta_covariance_jacobian: Vec<f64>,
}

/// Richardson extrapolation of central-difference estimates at steps h, h/2, h/4, ... (error a
/// series in h²), elementwise over equally long vectors.
fn extrapolate(mut estimates: Vec<Vec<f64>>) -> Vec<f64> {
    for round in 1..estimates.len() {
        let factor = 4f64.powi(round as i32);
        for k in 0..estimates.len() - round {
            let (coarse, fine) = estimates.split_at_mut(k + 1);
            for (a, &b) in coarse[k].iter_mut().zip(&fine[0]) {
                *a = (factor * b - *a) / (factor - 1.0);
            }
        }
    }
    estimates.swap_remove(0)
}

/// `theta` moved by `sign · step_i` along each listed coordinate.
fn shifted(theta: &[f64], moves: &[(usize, f64)]) -> Vec<f64> {
    let mut point = theta.to_vec();
    for &(i, delta) in moves {
        point[i] += delta;
    }
    point
}

impl LinearMixedModel {
    /// Hessian of the deviance in φ = (θ, σ), A = 2H⁺ and the Jacobian of Cov(β̂) in φ at
    /// (θ, σ) for the installed response (lmerTest's `vcov_varpar` and `Jac_list`).
    pub fn variance_parameter_derivatives(
        &mut self,
        theta: &[f64],
        sigma: f64,
        reml: bool,
        interrupt: &Interrupt,
    ) -> Result<VarianceParameterDerivatives> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(CoreError::InvalidInput(format!(
                "sigma must be positive and finite, not {sigma}"
            )));
        }
        let n_theta = self.n_theta();
        let k = n_theta + 1;
        let sigma2 = sigma * sigma;
        let centre = self.deviance_parts(theta, reml)?;
        let p2 = centre.unscaled_beta_covariance.len();
        // The θ-dependent part of D at fixed σ.
        let part = |parts: &DevianceParts| parts.log_det + parts.pwrss / sigma2;
        let base_steps: Vec<f64> = theta
            .iter()
            .map(|&t| {
                RELATIVE_STEP * t.abs()
                    + if t.abs() < ZERO_TOLERANCE {
                        STEP_AT_ZERO
                    } else {
                        0.0
                    }
            })
            .collect();
        let step = |i: usize, level: usize| base_steps[i] / 2f64.powi(level as i32);

        // Along each axis: ∂²D/∂θᵢ², ∂r²/∂θᵢ and ∂(R_X R_Xᵀ)⁻¹/∂θᵢ.
        let mut second = vec![0.0; n_theta * n_theta];
        let mut pwrss_gradient = vec![0.0; n_theta];
        let mut covariance_gradients = Vec::with_capacity(n_theta);
        for i in 0..n_theta {
            let mut curvature = Vec::with_capacity(STEPS);
            let mut slopes = Vec::with_capacity(STEPS);
            for level in 0..STEPS {
                interrupt.check()?;
                let h = step(i, level);
                let plus = self.deviance_parts(&shifted(theta, &[(i, h)]), reml)?;
                let minus = self.deviance_parts(&shifted(theta, &[(i, -h)]), reml)?;
                curvature.push(vec![
                    (part(&plus) - 2.0 * part(&centre) + part(&minus)) / (h * h),
                ]);
                let mut slope = Vec::with_capacity(p2 + 1);
                slope.push((plus.pwrss - minus.pwrss) / (2.0 * h));
                slope.extend(
                    plus.unscaled_beta_covariance
                        .iter()
                        .zip(&minus.unscaled_beta_covariance)
                        .map(|(a, b)| (a - b) / (2.0 * h)),
                );
                slopes.push(slope);
            }
            second[i + i * n_theta] = extrapolate(curvature)[0];
            let slope = extrapolate(slopes);
            pwrss_gradient[i] = slope[0];
            covariance_gradients.push(slope[1..].to_vec());
        }
        // Mixed second derivatives along the diagonal directions, less the pure ones (numDeriv's
        // `genD`): two evaluations per step instead of four.
        for i in 0..n_theta {
            for j in 0..i {
                let mut estimates = Vec::with_capacity(STEPS);
                for level in 0..STEPS {
                    interrupt.check()?;
                    let (hi, hj) = (step(i, level), step(j, level));
                    let plus = self.deviance_parts(&shifted(theta, &[(i, hi), (j, hj)]), reml)?;
                    let minus =
                        self.deviance_parts(&shifted(theta, &[(i, -hi), (j, -hj)]), reml)?;
                    let sum = part(&plus) - 2.0 * part(&centre) + part(&minus)
                        - second[i + i * n_theta] * hi * hi
                        - second[j + j * n_theta] * hj * hj;
                    estimates.push(vec![sum / (2.0 * hi * hj)]);
                }
                let value = extrapolate(estimates)[0];
                second[i + j * n_theta] = value;
                second[j + i * n_theta] = value;
            }
        }
        // Leave the model factored at the estimates, as every other call does.
        self.deviance_parts(theta, reml)?;

        let residual_degrees = self.residual_degrees(reml);
        let mut hessian = vec![0.0; k * k];
        for j in 0..n_theta {
            for i in 0..n_theta {
                hessian[i + j * k] = second[i + j * n_theta];
            }
            let mixed = -2.0 * pwrss_gradient[j] / (sigma2 * sigma);
            hessian[n_theta + j * k] = mixed;
            hessian[j + n_theta * k] = mixed;
        }
        hessian[k * k - 1] =
            6.0 * centre.pwrss / (sigma2 * sigma2) - 2.0 * residual_degrees / sigma2;
        let (hessian_eigenvalues, covariance) = twice_pseudo_inverse(&hessian, k)?;

        let mut beta_covariance_jacobian = Vec::with_capacity(k * p2);
        for gradient in &covariance_gradients {
            beta_covariance_jacobian.extend(gradient.iter().map(|g| sigma2 * g));
        }
        beta_covariance_jacobian.extend(
            centre
                .unscaled_beta_covariance
                .iter()
                .map(|v| 2.0 * sigma * v),
        );
        Ok(VarianceParameterDerivatives {
            hessian,
            hessian_eigenvalues,
            covariance,
            beta_covariance_jacobian,
        })
    }
}

/// The eigenvalues of the symmetric k×k `matrix` and 2 × its Moore–Penrose inverse over the
/// eigenvalues above [`EIGENVALUE_TOLERANCE`] (lmerTest's `vcov_varpar`).
fn twice_pseudo_inverse(matrix: &[f64], k: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let (eigenvalues, vectors) = symmetric_eigen(
        matrix,
        k,
        "the Hessian of the deviance in the variance parameters",
    )?;
    let inverse = twice_spectral_inverse(&eigenvalues, &vectors, |lambda| {
        lambda > EIGENVALUE_TOLERANCE
    });
    Ok((eigenvalues, inverse))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factorization::FactorizationChoice;
    use crate::terms::RandomEffectsTerm;
    use faer::Mat;

    #[test]
    fn extrapolation_removes_even_powers_of_the_step() {
        // f(h) = 3 + h² − 2h⁴ + h⁶ at h = 1, 1/2, 1/4, 1/8 → 3 exactly.
        let estimates = (0..4)
            .map(|m| {
                let h = 0.5f64.powi(m);
                vec![3.0 + h * h - 2.0 * h.powi(4) + h.powi(6)]
            })
            .collect();
        assert!((extrapolate(estimates)[0] - 3.0).abs() < 1e-12);
    }

    /// A balanced one-way random-intercept model y_ij = μ + b_i + ε_ij (a groups of size m):
    /// D(θ, σ) has closed forms, so does Cov(μ̂) = σ²(1 + mθ²)/(am).
    fn one_way() -> (LinearMixedModel, Vec<f64>) {
        let (a, m) = (6usize, 5usize);
        let n = a * m;
        let codes: Vec<u32> = (0..n).map(|i| (i / m) as u32).collect();
        let term = RandomEffectsTerm::new(codes, a, 1, vec![1.0; n]).unwrap();
        let x = Mat::<f64>::from_fn(n, 1, |_, _| 1.0);
        let y: Vec<f64> = (0..n)
            .map(|i| ((i * 7919) % 13) as f64 / 3.0 + (i / m) as f64)
            .collect();
        let mut model =
            LinearMixedModel::new(vec![term], x.as_ref(), None, FactorizationChoice::Automatic)
                .unwrap();
        model.set_response(x.as_ref(), &y).unwrap();
        (model, y)
    }

    /// The one-way model's deviance in (θ, σ), from the group means (Searle et al.'s ANOVA
    /// decomposition): |V| = (1 + mθ²)^a, within and between sums of squares.
    fn one_way_deviance(y: &[f64], theta: f64, sigma: f64, reml: bool) -> f64 {
        let (a, m) = (6usize, 5usize);
        let n = (a * m) as f64;
        let means: Vec<f64> = (0..a)
            .map(|g| y[g * m..(g + 1) * m].iter().sum::<f64>() / m as f64)
            .collect();
        let grand = y.iter().sum::<f64>() / n;
        let within: f64 = (0..a * m).map(|i| (y[i] - means[i / m]).powi(2)).sum();
        let between: f64 = means.iter().map(|mu| m as f64 * (mu - grand).powi(2)).sum();
        let gamma = 1.0 + m as f64 * theta * theta;
        let sigma2 = sigma * sigma;
        let mut deviance = a as f64 * gamma.ln()
            + (within + between / gamma) / sigma2
            + n * (2.0 * std::f64::consts::PI * sigma2).ln();
        if reml {
            // log|X'V⁻¹X| with V = σ²(I + θ²ZZ') in σ-free form: log(n/γ), less log(2πσ²).
            deviance += (n / gamma).ln() - (2.0 * std::f64::consts::PI * sigma2).ln();
        }
        deviance
    }

    fn fine_hessian(y: &[f64], theta: f64, sigma: f64, reml: bool) -> [f64; 4] {
        let f = |t: f64, s: f64| one_way_deviance(y, t, s, reml);
        let (ht, hs) = (1e-4, 1e-4);
        let d_tt =
            (f(theta + ht, sigma) - 2.0 * f(theta, sigma) + f(theta - ht, sigma)) / (ht * ht);
        let d_ss =
            (f(theta, sigma + hs) - 2.0 * f(theta, sigma) + f(theta, sigma - hs)) / (hs * hs);
        let d_ts =
            (f(theta + ht, sigma + hs) - f(theta + ht, sigma - hs) - f(theta - ht, sigma + hs)
                + f(theta - ht, sigma - hs))
                / (4.0 * ht * hs);
        [d_tt, d_ts, d_ts, d_ss]
    }

    #[test]
    fn one_way_hessian_and_jacobian_match_the_closed_forms() {
        for reml in [false, true] {
            let (mut model, y) = one_way();
            let (theta, sigma) = (0.8, 1.3);
            let derivatives = model
                .variance_parameter_derivatives(&[theta], sigma, reml, &Interrupt::new())
                .unwrap();
            let expected = fine_hessian(&y, theta, sigma, reml);
            for (ours, theirs) in derivatives.hessian.iter().zip(expected) {
                assert!(
                    (ours - theirs).abs() < 1e-5 * theirs.abs().max(1.0),
                    "reml {reml}: Hessian {ours} vs {theirs}"
                );
            }
            // Cov(μ̂) = σ²γ/n with γ = 1 + mθ²: ∂/∂θ = 2mθσ²/n, ∂/∂σ = 2σγ/n.
            let (m, n) = (5.0, 30.0);
            let d_theta = 2.0 * m * theta * sigma * sigma / n;
            let d_sigma = 2.0 * sigma * (1.0 + m * theta * theta) / n;
            let jacobian = &derivatives.beta_covariance_jacobian;
            assert!((jacobian[0] - d_theta).abs() < 1e-9 * d_theta);
            assert!((jacobian[1] - d_sigma).abs() < 1e-12 * d_sigma);
            // A = 2H⁻¹ for a positive definite H.
            let h = &derivatives.hessian;
            let det = h[0] * h[3] - h[1] * h[2];
            let inverse = [h[3] / det, -h[1] / det, -h[2] / det, h[0] / det];
            for (a, b) in derivatives.covariance.iter().zip(inverse) {
                assert!((a - 2.0 * b).abs() < 1e-10 * (2.0 * b).abs().max(1e-12));
            }
        }
    }

    #[test]
    fn a_zero_variance_steps_to_both_sides() {
        let (mut model, _) = one_way();
        let derivatives = model
            .variance_parameter_derivatives(&[0.0], 1.0, true, &Interrupt::new())
            .unwrap();
        assert!(derivatives.hessian.iter().all(|v| v.is_finite()));
        // At θ = 0 the deviance is even in θ: no mixed θσ curvature.
        assert!(derivatives.hessian[1].abs() < 1e-8);
        assert!(derivatives.beta_covariance_jacobian[0].abs() < 1e-10);
    }

    #[test]
    fn sigma_must_be_positive() {
        let (mut model, _) = one_way();
        assert!(model
            .variance_parameter_derivatives(&[0.5], 0.0, true, &Interrupt::new())
            .is_err());
    }
}
