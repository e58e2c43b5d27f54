//! Rows of prior weight 0 carry no information: an LMM with them has the objective, at every θ and
//! by either criterion, of the LMM without them.

use super::common::{problem, Problem};
use crate::{FactorizationChoice, LinearMixedModel, RandomEffectsTerm};
use faer::Mat;

/// The objectives at `theta` of a model of `problem` restricted to the rows `keep` (all rows
/// when it keeps every one), with `weights`.
fn objectives(problem: &Problem, keep: &[usize], weights: &[f64]) -> [f64; 2] {
    let terms = problem
        .terms
        .iter()
        .map(|term| {
            let z = keep
                .iter()
                .flat_map(|&i| term.z[i * term.k..(i + 1) * term.k].iter().copied())
                .collect();
            let codes = keep.iter().map(|&i| term.codes[i]).collect();
            RandomEffectsTerm::new(codes, term.n_levels, term.k, z).unwrap()
        })
        .collect();
    let x = Mat::from_fn(keep.len(), problem.x.ncols(), |r, c| {
        problem.x[(keep[r], c)]
    });
    let y: Vec<f64> = keep.iter().map(|&i| problem.y[i]).collect();
    let w = keep.iter().map(|&i| weights[i]).collect();
    let mut model =
        LinearMixedModel::new(terms, x.as_ref(), Some(w), FactorizationChoice::Automatic).unwrap();
    model.set_response(x.as_ref(), &y).unwrap();
    [true, false].map(|reml| model.objective(&problem.theta, reml).unwrap())
}

#[test]
fn rows_of_weight_zero_leave_the_objective_unchanged() {
    let problem = problem(11, 120, 2, &[12, 5], &[2, 1], &[None, None], true);
    let mut weights = problem.weights.clone().unwrap();
    for i in [3, 40, 41, 97] {
        weights[i] = 0.0;
    }
    let all: Vec<usize> = (0..120).collect();
    let informative: Vec<usize> = all.iter().copied().filter(|&i| weights[i] > 0.0).collect();
    let with_zeros = objectives(&problem, &all, &weights);
    let without = objectives(&problem, &informative, &weights);
    for (a, b) in with_zeros.iter().zip(&without) {
        assert!(
            a.is_finite() && (a - b).abs() <= 1e-9 * b.abs(),
            "{a} vs {b}"
        );
    }
}
