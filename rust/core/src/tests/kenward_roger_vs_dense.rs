//! Kenward–Roger's adjustment against pbkrtest's `vcovAdj_internal` transcribed literally onto
//! dense n×n matrices (V, every Gᵢ, V⁻¹), on random problems of every block kind.

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};

use super::common::{lambdas, on_threads, problem, Problem};
use crate::crossproducts::CrossProducts;
use crate::interrupt::Interrupt;
use crate::kenward_roger::{adjustment, KenwardRogerAdjustment};

/// (Z, per term: offset and k) with Z's columns level-major within each term.
fn model_matrix(problem: &Problem) -> (Mat<f64>, Vec<(usize, usize)>) {
    let n = problem.y.len();
    let q: usize = problem.terms.iter().map(|t| t.n_columns()).sum();
    let mut z = Mat::<f64>::zeros(n, q);
    let mut layout = Vec::new();
    let mut offset = 0;
    for term in &problem.terms {
        for i in 0..n {
            for r in 0..term.k {
                z[(i, offset + term.codes[i] as usize * term.k + r)] = term.z[i * term.k + r];
            }
        }
        layout.push((offset, term.k));
        offset += term.n_columns();
    }
    (z, layout)
}

/// pbkrtest's computation: Σ = Σᵢ γᵢ Gᵢ (with G = W⁻¹ for σ²), then P, Q, Ktrace, IE2, W, Φ_A.
fn dense_adjustment(problem: &Problem, sigma: f64) -> KenwardRogerAdjustment {
    let n = problem.y.len();
    let p = problem.x.ncols();
    let (z, layout) = model_matrix(problem);
    let lambdas = lambdas(problem);
    let mut g_matrices: Vec<Mat<f64>> = Vec::new();
    let mut gammas = Vec::new();
    for ((term, lambda), &(offset, k)) in problem.terms.iter().zip(&lambdas).zip(&layout) {
        let covariance = Mat::<f64>::from_fn(k, k, |r, c| {
            sigma
                * sigma
                * (0..k)
                    .map(|m| lambda[r + m * k] * lambda[c + m * k])
                    .sum::<f64>()
        });
        for col in 0..k {
            for row in col..k {
                let mut e = Mat::<f64>::zeros(z.ncols(), z.ncols());
                for level in 0..term.n_levels {
                    let (a, b) = (offset + level * k + row, offset + level * k + col);
                    e[(a, b)] = 1.0;
                    e[(b, a)] = 1.0;
                }
                g_matrices.push(&z * &e * z.transpose());
                gammas.push(covariance[(row, col)]);
            }
        }
    }
    let w = problem.weights.clone().unwrap_or_else(|| vec![1.0; n]);
    g_matrices.push(Mat::from_fn(
        n,
        n,
        |i, j| if i == j { 1.0 / w[i] } else { 0.0 },
    ));
    gammas.push(sigma * sigma);
    let mut v = Mat::<f64>::zeros(n, n);
    for (g, &gamma) in g_matrices.iter().zip(&gammas) {
        v += gamma * g;
    }
    let v_inverse = v.llt(Side::Lower).unwrap().inverse();
    let x = &problem.x;
    let phi = (x.transpose() * &v_inverse * x)
        .llt(Side::Lower)
        .unwrap()
        .inverse();
    let m = g_matrices.len();
    let t = &v_inverse * x;
    let h: Vec<Mat<f64>> = g_matrices.iter().map(|g| g * &v_inverse).collect();
    let o: Vec<Mat<f64>> = h.iter().map(|h| h * x).collect();
    let pp: Vec<Mat<f64>> = o.iter().map(|o| -(o.transpose() * &t)).collect();
    let qq = |i: usize, j: usize| o[i].transpose() * &v_inverse * &o[j];
    let trace = |a: &Mat<f64>, b: &Mat<f64>| -> f64 {
        (0..a.nrows())
            .map(|i| (0..a.ncols()).map(|j| a[(i, j)] * b[(j, i)]).sum::<f64>())
            .sum()
    };
    let information = Mat::<f64>::from_fn(m, m, |i, j| {
        trace(&h[i], &h[j]) - 2.0 * trace(&phi, &qq(i, j))
            + trace(&(&phi * &pp[i]), &(&phi * &pp[j]))
    });
    let w_matrix = 2.0 * information.llt(Side::Lower).unwrap().inverse();
    let mut u = Mat::<f64>::zeros(p, p);
    for i in 0..m {
        for j in 0..m {
            u += w_matrix[(i, j)] * (qq(i, j) - &pp[i] * &phi * &pp[j]);
        }
    }
    let adjusted = &phi + 2.0 * (&phi * &u * &phi);
    let flat = |a: &Mat<f64>| -> Vec<f64> {
        (0..a.ncols())
            .flat_map(|j| (0..a.nrows()).map(move |i| a[(i, j)]))
            .collect()
    };
    KenwardRogerAdjustment {
        beta_covariance: flat(&phi),
        adjusted_beta_covariance: flat(&adjusted),
        information_derivatives: pp.iter().flat_map(flat).collect(),
        parameter_covariance: flat(&w_matrix),
        smallest_information_eigenvalue: f64::NAN,
    }
}

fn assert_close(name: &str, ours: &[f64], dense: &[f64]) {
    assert_eq!(ours.len(), dense.len(), "{name}: sizes");
    let scale = dense.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in ours.iter().zip(dense) {
        assert!(
            (a - b).abs() <= 1e-9 * scale,
            "{name}: {a} vs {b} (scale {scale})"
        );
    }
}

fn check(problem: Problem, sigma: f64) {
    let cross = CrossProducts::new(
        &problem.terms,
        problem.x.as_ref(),
        problem.weights.as_deref(),
    )
    .unwrap();
    let ours = adjustment(
        &problem.terms,
        &cross,
        &lambdas(&problem),
        sigma,
        &Interrupt::new(),
    )
    .unwrap();
    let dense = dense_adjustment(&problem, sigma);
    assert_close("Φ", &ours.beta_covariance, &dense.beta_covariance);
    assert_close(
        "Φ_A",
        &ours.adjusted_beta_covariance,
        &dense.adjusted_beta_covariance,
    );
    assert_close(
        "P",
        &ours.information_derivatives,
        &dense.information_derivatives,
    );
    assert_close("W", &ours.parameter_covariance, &dense.parameter_covariance);
    assert!(ours.smallest_information_eigenvalue > 0.0);
}

#[test]
fn single_scalar_term() {
    check(problem(1, 40, 2, &[7], &[1], &[None], false), 1.3);
}

#[test]
fn vector_term_with_prior_weights() {
    check(problem(2, 60, 3, &[8], &[2], &[None], true), 0.7);
}

#[test]
fn crossed_vector_and_scalar_terms() {
    check(
        problem(3, 70, 2, &[9, 5], &[2, 1], &[None, None], false),
        2.0,
    );
}

#[test]
fn nested_terms_with_weights() {
    check(
        problem(4, 60, 2, &[12, 4], &[1, 1], &[None, Some(0)], true),
        1.1,
    );
}

#[test]
fn three_terms_with_a_three_column_term() {
    check(
        problem(
            5,
            90,
            3,
            &[10, 6, 3],
            &[3, 1, 2],
            &[None, None, None],
            false,
        ),
        0.9,
    );
}

/// The dense kernels run on two threads from 256 random effects on: results must not change.
#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let problem = problem(6, 3000, 2, &[300, 40], &[1, 2], &[None, None], false);
    let cross = CrossProducts::new(&problem.terms, problem.x.as_ref(), None).unwrap();
    let run = |threads: usize| {
        on_threads(threads, || {
            adjustment(
                &problem.terms,
                &cross,
                &lambdas(&problem),
                1.5,
                &Interrupt::new(),
            )
            .unwrap()
        })
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.adjusted_beta_covariance, two.adjusted_beta_covariance);
    assert_eq!(one.parameter_covariance, two.parameter_covariance);
    assert_eq!(one.information_derivatives, two.information_derivatives);
}
