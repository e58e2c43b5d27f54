//! Random-effects terms: the level of each observation, its per-observation model-matrix row, and
//! the relative covariance factor λ(θ) (a k×k lower-triangular matrix, repeated for every level).

use crate::blocks::TileDiagonal;
use crate::dense::scaled_lower_congruence;
use crate::error::{CoreError, Result};

/// One random-effects term `(expr | g)`: `k` columns of `expr`, `n_levels` levels of `g`.
#[derive(Debug, Clone)]
pub struct RandomEffectsTerm {
    /// Level of every observation, in `0..n_levels`.
    pub(crate) codes: Vec<u32>,
    pub n_levels: usize,
    /// Number of columns of the term's model matrix (1 for a scalar term).
    pub k: usize,
    /// Per-observation model-matrix rows, observation-major: row i is `z[i*k .. (i+1)*k]`.
    pub(crate) z: Vec<f64>,
}

impl RandomEffectsTerm {
    pub fn new(codes: Vec<u32>, n_levels: usize, k: usize, z: Vec<f64>) -> Result<Self> {
        if k == 0 {
            return Err(CoreError::InvalidInput(
                "a random-effects term has no columns".into(),
            ));
        }
        if z.len() != codes.len() * k {
            return Err(CoreError::InvalidInput(format!(
                "term model matrix has {} values, expected {} observations x {} columns",
                z.len(),
                codes.len(),
                k
            )));
        }
        if let Some(&bad) = codes.iter().find(|&&c| c as usize >= n_levels) {
            return Err(CoreError::InvalidInput(format!(
                "level code {bad} out of range for a factor with {n_levels} levels"
            )));
        }
        if z.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::InvalidInput(
                "a random-effects model matrix has non-finite values".into(),
            ));
        }
        Ok(Self {
            codes,
            n_levels,
            k,
            z,
        })
    }

    pub(crate) fn n_obs(&self) -> usize {
        self.codes.len()
    }

    /// Columns of Z contributed by this term.
    pub(crate) fn n_columns(&self) -> usize {
        self.n_levels * self.k
    }

    /// Entries of θ for this term: the lower triangle of λ.
    pub(crate) fn n_theta(&self) -> usize {
        self.k * (self.k + 1) / 2
    }

    /// Lower bounds of this term's θ: 0 on λ's diagonal, unbounded below it (lme4's convention).
    pub(crate) fn theta_lower_bounds(&self) -> Vec<f64> {
        let mut bounds = Vec::with_capacity(self.n_theta());
        for column in 0..self.k {
            for row in column..self.k {
                bounds.push(if row == column {
                    0.0
                } else {
                    f64::NEG_INFINITY
                });
            }
        }
        bounds
    }

    /// lme4's starting value: λ = I.
    pub(crate) fn theta_start(&self) -> Vec<f64> {
        let mut start = Vec::with_capacity(self.n_theta());
        for column in 0..self.k {
            for row in column..self.k {
                start.push(if row == column { 1.0 } else { 0.0 });
            }
        }
        start
    }
}

/// Fill `factor` (k×k, column-major) with the lower-triangular λ whose lower triangle, column by
/// column, is `theta`.
pub(crate) fn relative_covariance_factor(theta: &[f64], k: usize, factor: &mut [f64]) {
    debug_assert_eq!(theta.len(), k * (k + 1) / 2);
    debug_assert_eq!(factor.len(), k * k);
    factor.fill(0.0);
    let mut next = 0;
    for column in 0..k {
        for row in column..k {
            factor[row + column * k] = theta[next];
            next += 1;
        }
    }
}

/// Every term's λ from the concatenated θ (lme4's order), into `lambdas`.
pub(crate) fn set_relative_covariance_factors(
    terms: &[RandomEffectsTerm],
    theta: &[f64],
    lambdas: &mut [Vec<f64>],
) -> Result<()> {
    let expected: usize = terms.iter().map(|t| t.n_theta()).sum();
    if theta.len() != expected {
        return Err(CoreError::InvalidInput(format!(
            "theta has {} values, the model {expected}",
            theta.len()
        )));
    }
    let mut next = 0;
    for (term, lambda) in terms.iter().zip(lambdas.iter_mut()) {
        let count = term.n_theta();
        relative_covariance_factor(&theta[next..next + count], term.k, lambda);
        next += count;
    }
    Ok(())
}

/// The random effects b = Λu per term, level-major, from the spherical u.
pub(crate) fn random_effects(
    terms: &[RandomEffectsTerm],
    lambdas: &[Vec<f64>],
    spherical: &[Vec<f64>],
) -> Vec<Vec<f64>> {
    terms
        .iter()
        .zip(lambdas)
        .zip(spherical)
        .map(|((term, lambda), u)| {
            let k = term.k;
            let mut b = vec![0.0; u.len()];
            for level in 0..term.n_levels {
                for r in 0..k {
                    b[level * k + r] = (0..=r).map(|c| lambda[r + c * k] * u[level * k + c]).sum();
                }
            }
            b
        })
        .collect()
}

/// Per term, `scale · λ T λᵀ` for each level's tile T of (L_Z L_Zᵀ)⁻¹: the conditional
/// covariances of the random effects b = Λu.
pub(crate) fn conditional_covariances(
    tiles: &[TileDiagonal],
    lambdas: &[Vec<f64>],
    scale: f64,
) -> Vec<Vec<f64>> {
    tiles
        .iter()
        .zip(lambdas)
        .map(|(block, lambda)| {
            let k = block.k;
            let mut out = vec![0.0; block.values.len()];
            for level in 0..block.n_levels {
                scaled_lower_congruence(
                    lambda,
                    block.tile(level),
                    k,
                    scale,
                    &mut out[level * k * k..(level + 1) * k * k],
                );
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theta_layout_is_column_major_lower_triangle() {
        let mut factor = vec![0.0; 4];
        relative_covariance_factor(&[1.0, 2.0, 3.0], 2, &mut factor);
        assert_eq!(factor, vec![1.0, 2.0, 0.0, 3.0]);
        let term = RandomEffectsTerm::new(vec![0, 1], 2, 2, vec![1.0, 0.0, 1.0, 1.0]).unwrap();
        assert_eq!(term.theta_start(), vec![1.0, 0.0, 1.0]);
        assert_eq!(term.theta_lower_bounds(), vec![0.0, f64::NEG_INFINITY, 0.0]);
    }

    #[test]
    fn rejects_out_of_range_codes_and_bad_sizes() {
        assert!(RandomEffectsTerm::new(vec![0, 3], 2, 1, vec![1.0, 1.0]).is_err());
        assert!(RandomEffectsTerm::new(vec![0, 1], 2, 1, vec![1.0]).is_err());
        assert!(RandomEffectsTerm::new(vec![0, 1], 2, 1, vec![1.0, f64::NAN]).is_err());
    }
}
