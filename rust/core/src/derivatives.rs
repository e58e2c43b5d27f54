//! Gradient and Hessian of an objective by central differences, as lme4's `deriv12` (R/deriv.R)
//! computes them at the optimum for its post-fit convergence check (`checkConv`) and, for GLMMs,
//! for the covariance of the fixed effects: step h in every coordinate,
//!
//!   gᵢ  = (f(x + h eᵢ) − f(x − h eᵢ)) / 2h
//!   Hᵢᵢ = (f(x + h eᵢ) − 2 f(x) + f(x − h eᵢ)) / h²
//!   Hᵢⱼ = (f(x + h eᵢ + h eⱼ) − f(x + h eᵢ − h eⱼ) − f(x − h eᵢ + h eⱼ) + f(x − h eᵢ − h eⱼ)) / 4h²
//!
//! 2m + 2m(m − 1) evaluations for m parameters besides f(x). Like `optwrap`, no bounds are
//! passed: a θ on its lower bound is stepped across it (the objectives are defined there).

use crate::error::Result;

/// lme4's `deriv12` step.
pub(crate) const STEP: f64 = 1e-4;

/// Gradient and Hessian of an objective at a point.
#[derive(Debug, Clone)]
pub struct Derivatives {
    pub gradient: Vec<f64>,
    /// m × m, column-major, symmetric.
    pub hessian: Vec<f64>,
}

/// Central-difference gradient and Hessian of `objective` at `at`, where it has the value
/// `centre`, with step [`STEP`] (evaluated in lme4's order).
pub(crate) fn central_differences(
    mut objective: impl FnMut(&[f64]) -> Result<f64>,
    at: &[f64],
    centre: f64,
) -> Result<Derivatives> {
    let m = at.len();
    let h = STEP;
    let mut shifted = at.to_vec();
    let mut value = |changes: &[(usize, f64)]| -> Result<f64> {
        shifted.copy_from_slice(at);
        for &(index, delta) in changes {
            shifted[index] += delta;
        }
        objective(&shifted)
    };
    let mut gradient = vec![0.0; m];
    let mut hessian = vec![0.0; m * m];
    for j in 0..m {
        let plus = value(&[(j, h)])?;
        let minus = value(&[(j, -h)])?;
        hessian[j + j * m] = (plus - 2.0 * centre + minus) / (h * h);
        gradient[j] = (plus - minus) / (2.0 * h);
        for i in 0..j {
            let pp = value(&[(i, h), (j, h)])?;
            let pm = value(&[(i, h), (j, -h)])?;
            let mp = value(&[(i, -h), (j, h)])?;
            let mm = value(&[(i, -h), (j, -h)])?;
            let entry = (pp - pm - mp + mm) / (4.0 * h * h);
            hessian[i + j * m] = entry;
            hessian[j + i * m] = entry;
        }
    }
    Ok(Derivatives { gradient, hessian })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;

    /// f(x) = exp(x₀) + x₀² x₁ + sin(x₁) x₂ + 3 x₂², with its analytic gradient and Hessian.
    fn f(x: &[f64]) -> f64 {
        x[0].exp() + x[0] * x[0] * x[1] + x[1].sin() * x[2] + 3.0 * x[2] * x[2]
    }

    #[test]
    fn matches_the_analytic_derivatives() {
        let x = [0.3, -1.2, 0.7];
        let derivatives = central_differences(|x| Ok(f(x)), &x, f(&x)).unwrap();
        let gradient = [
            x[0].exp() + 2.0 * x[0] * x[1],
            x[0] * x[0] + x[1].cos() * x[2],
            x[1].sin() + 6.0 * x[2],
        ];
        #[rustfmt::skip]
        let hessian = [
            x[0].exp() + 2.0 * x[1], 2.0 * x[0],                0.0,
            2.0 * x[0],              -x[1].sin() * x[2],        x[1].cos(),
            0.0,                     x[1].cos(),                6.0,
        ];
        // Truncation error O(h²) ≈ 1e-8 times third/fourth derivatives; rounding ≈ ε f / h².
        for (got, want) in derivatives.gradient.iter().zip(gradient) {
            assert!((got - want).abs() < 1e-7, "gradient {got} vs {want}");
        }
        for (got, want) in derivatives.hessian.iter().zip(hessian) {
            assert!((got - want).abs() < 1e-6, "Hessian {got} vs {want}");
        }
    }

    #[test]
    fn a_quadratic_is_differentiated_to_rounding() {
        // f = ½ xᵀ A x + bᵀ x: g = A x + b, H = A (central differences are exact but for rounding).
        let a = [4.0, 1.0, 1.0, 2.0];
        let b = [-1.0, 0.5];
        let q = |x: &[f64]| {
            0.5 * (a[0] * x[0] * x[0] + 2.0 * a[1] * x[0] * x[1] + a[3] * x[1] * x[1])
                + b[0] * x[0]
                + b[1] * x[1]
        };
        let x = [2.0, -3.0];
        let derivatives = central_differences(|x| Ok(q(x)), &x, q(&x)).unwrap();
        let gradient = [
            a[0] * x[0] + a[1] * x[1] + b[0],
            a[1] * x[0] + a[3] * x[1] + b[1],
        ];
        for (got, want) in derivatives.gradient.iter().zip(gradient) {
            assert!((got - want).abs() < 1e-9);
        }
        for (got, want) in derivatives.hessian.iter().zip(a) {
            assert!((got - want).abs() < 1e-6);
        }
    }

    #[test]
    fn an_evaluation_error_is_passed_on() {
        let failing = |_: &[f64]| -> Result<f64> { Err(CoreError::Interrupted) };
        assert!(central_differences(failing, &[1.0], 0.0).is_err());
    }
}
