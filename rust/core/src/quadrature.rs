//! Gauss–Hermite quadrature for the standard normal density: nodes zₖ and weights wₖ with
//! Σ wₖ f(zₖ) ≈ E f(Z), Z ~ N(0, 1), exact for polynomials of degree < 2n. Computed by the
//! Golub–Welsch algorithm (Golub & Welsch 1969): the nodes are the eigenvalues of the Jacobi
//! matrix of the probabilists' Hermite polynomials (zero diagonal, √k off the diagonal), the
//! weights the squared first components of its normalised eigenvectors.

use faer::{Mat, Side};

use crate::error::{CoreError, Result};

/// lme4 accepts up to 25 nodes (`glmer(nAGQ =)`); more gains nothing for a scalar term.
pub(crate) const MAX_NODES: usize = 25;

#[derive(Debug, Clone)]
pub(crate) struct GaussHermite {
    pub nodes: Vec<f64>,
    pub log_weights: Vec<f64>,
}

impl GaussHermite {
    pub(crate) fn new(n_nodes: usize) -> Result<Self> {
        if n_nodes == 0 || n_nodes > MAX_NODES {
            return Err(CoreError::Specification(format!(
                "the number of quadrature nodes must be between 1 and {MAX_NODES}, not {n_nodes}"
            )));
        }
        let jacobi = Mat::<f64>::from_fn(n_nodes, n_nodes, |i, j| {
            if i + 1 == j || j + 1 == i {
                (i.max(j) as f64).sqrt()
            } else {
                0.0
            }
        });
        let eigen = jacobi.self_adjoint_eigen(Side::Lower).map_err(|_| {
            CoreError::Optimization("the Gauss–Hermite eigenproblem did not converge".into())
        })?;
        let values = eigen.S().column_vector();
        let vectors = eigen.U();
        let mut rule: Vec<(f64, f64)> = (0..n_nodes)
            .map(|k| {
                // Symmetric nodes: snap the middle one of an odd rule to exactly zero.
                let node = if values[k].abs() < 1e-13 {
                    0.0
                } else {
                    values[k]
                };
                (node, vectors[(0, k)].powi(2).ln())
            })
            .collect();
        rule.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Self {
            nodes: rule.iter().map(|r| r.0).collect(),
            log_weights: rule.iter().map(|r| r.1).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrates_normal_moments_exactly() {
        for n in [1, 2, 5, 9, 25] {
            let rule = GaussHermite::new(n).unwrap();
            let moment = |power: i32| -> f64 {
                rule.nodes
                    .iter()
                    .zip(&rule.log_weights)
                    .map(|(z, lw)| lw.exp() * z.powi(power))
                    .sum()
            };
            assert!((moment(0) - 1.0).abs() < 1e-12, "n = {n}");
            if n >= 2 {
                assert!((moment(2) - 1.0).abs() < 1e-11, "n = {n}");
            }
            if n >= 3 {
                assert!((moment(4) - 3.0).abs() < 1e-10, "n = {n}");
                assert!(moment(3).abs() < 1e-12);
            }
        }
        assert_eq!(GaussHermite::new(1).unwrap().nodes, vec![0.0]);
        assert!(GaussHermite::new(26).is_err());
    }
}
