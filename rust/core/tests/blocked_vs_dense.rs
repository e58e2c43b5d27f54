//! The blocked factorisation against a plain dense Cholesky of the whole augmented matrix, on
//! small random problems of every block kind (nested, crossed, vector-valued, three factors).

use faer::prelude::Solve;
use faer::Mat;
use mixedmodels_core::cholesky::BlockedCholesky;
use mixedmodels_core::crossproducts::CrossProducts;
use mixedmodels_core::terms::{relative_covariance_factor, RandomEffectsTerm};

/// Deterministic pseudo-random numbers (a 64-bit LCG), enough for test data.
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n
    }
}

struct Problem {
    terms: Vec<RandomEffectsTerm>,
    x: Mat<f64>,
    y: Vec<f64>,
    weights: Option<Vec<f64>>,
    theta: Vec<f64>,
}

/// `levels[t]` levels and `ks[t]` columns per term; `nest[t] = Some(s)` makes term t's factor a
/// function of term s's (nested), else levels are drawn independently (crossed).
fn problem(
    seed: u64,
    n: usize,
    p: usize,
    levels: &[usize],
    ks: &[usize],
    nest: &[Option<usize>],
    weighted: bool,
) -> Problem {
    let mut rng = Lcg(seed);
    let mut codes: Vec<Vec<u32>> = Vec::new();
    for t in 0..levels.len() {
        let c: Vec<u32> = match nest[t] {
            Some(s) => codes[s]
                .iter()
                .map(|&a| (a as usize % levels[t]) as u32)
                .collect(),
            None => (0..n)
                .map(|i| {
                    if i < levels[t] {
                        i as u32
                    } else {
                        rng.below(levels[t]) as u32
                    }
                })
                .collect(),
        };
        codes.push(c);
    }
    let mut terms = Vec::new();
    let mut theta = Vec::new();
    for t in 0..levels.len() {
        let k = ks[t];
        let z: Vec<f64> = (0..n * k)
            .map(|i| {
                if i % k == 0 {
                    1.0
                } else {
                    rng.uniform() * 4.0 - 2.0
                }
            })
            .collect();
        terms.push(RandomEffectsTerm::new(codes[t].clone(), levels[t], k, z).unwrap());
        for c in 0..k {
            for r in c..k {
                theta.push(if r == c {
                    0.3 + rng.uniform()
                } else {
                    rng.uniform() - 0.5
                });
            }
        }
    }
    let x = Mat::from_fn(n, p, |_, c| if c == 0 { 1.0 } else { rng.uniform() * 2.0 });
    let y = (0..n).map(|_| rng.uniform() * 10.0).collect();
    let weights = weighted.then(|| (0..n).map(|_| 0.5 + rng.uniform() * 3.0).collect());
    Problem {
        terms,
        x,
        y,
        weights,
        theta,
    }
}

fn lambdas(problem: &Problem) -> Vec<Vec<f64>> {
    let mut next = 0;
    problem
        .terms
        .iter()
        .map(|term| {
            let mut lambda = vec![0.0; term.k * term.k];
            relative_covariance_factor(
                &problem.theta[next..next + term.n_theta()],
                term.k,
                &mut lambda,
            );
            next += term.n_theta();
            lambda
        })
        .collect()
}

/// The augmented matrix, built densely from its definition, and its dense Cholesky factor.
fn dense_factor(problem: &Problem) -> (Mat<f64>, usize) {
    let n = problem.y.len();
    let p = problem.x.ncols();
    let q: usize = problem.terms.iter().map(|t| t.n_columns()).sum();
    let lambdas = lambdas(problem);
    // ZΛ, column by column of each term.
    let mut z_lambda = Mat::<f64>::zeros(n, q);
    let mut offset = 0;
    for (term, lambda) in problem.terms.iter().zip(&lambdas) {
        let k = term.k;
        for i in 0..n {
            let level = term.codes[i] as usize;
            for c in 0..k {
                let value: f64 = (c..k).map(|r| term.z[i * k + r] * lambda[r + c * k]).sum();
                z_lambda[(i, offset + level * k + c)] = value;
            }
        }
        offset += term.n_columns();
    }
    let dim = q + p + 1;
    let mut columns = Mat::<f64>::zeros(n, dim);
    for i in 0..n {
        for c in 0..q {
            columns[(i, c)] = z_lambda[(i, c)];
        }
        for c in 0..p {
            columns[(i, q + c)] = problem.x[(i, c)];
        }
        columns[(i, q + p)] = problem.y[i];
    }
    let mut augmented = Mat::<f64>::zeros(dim, dim);
    for a in 0..dim {
        for b in 0..dim {
            augmented[(a, b)] = (0..n)
                .map(|i| {
                    problem.weights.as_ref().map_or(1.0, |w| w[i])
                        * columns[(i, a)]
                        * columns[(i, b)]
                })
                .sum();
        }
        if a < q {
            augmented[(a, a)] += 1.0;
        }
    }
    let factor = augmented.llt(faer::Side::Lower).unwrap().L().to_owned();
    (factor, q)
}

fn check(problem: Problem) {
    let mut cross = CrossProducts::new(
        &problem.terms,
        problem.x.as_ref(),
        problem.weights.as_deref(),
    )
    .unwrap();
    cross
        .set_response(
            &problem.terms,
            problem.x.as_ref(),
            &problem.y,
            problem.weights.as_deref(),
        )
        .unwrap();
    let mut blocked = BlockedCholesky::new(&cross).unwrap();
    blocked.factorize(&cross, &lambdas(&problem)).unwrap();
    let (dense, q) = dense_factor(&problem);
    let p = problem.x.ncols();
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
            "{what}: blocked {a} vs dense {b}"
        );
    };

    let dense_log_det: f64 = (0..q).map(|c| dense[(c, c)].ln()).sum::<f64>() * 2.0;
    close(blocked.log_det_random(), dense_log_det, "log|L_Z|²");
    for c in 0..=p {
        for r in c..=p {
            close(
                blocked.fixed_fixed.get(r, c),
                dense[(q + r, q + c)],
                "fixed-effects block of L",
            );
        }
    }
    // β and u from the dense factor: back-substitute Lᵀ [u; β] = l (the response row).
    let dim = q + p;
    let mut solution: Vec<f64> = (0..dim).map(|c| dense[(dim, c)]).collect();
    for r in (0..dim).rev() {
        let value: f64 = (r + 1..dim).map(|c| dense[(c, r)] * solution[c]).sum();
        solution[r] = (solution[r] - value) / dense[(r, r)];
    }
    let beta = blocked.fixed_effects();
    for c in 0..p {
        close(beta[c], solution[q + c], "beta");
    }
    let u: Vec<f64> = blocked.solve_random_effects(&beta).concat();
    for c in 0..q {
        close(u[c], solution[c], "u");
    }
    // Diagonal tiles of (L_Z L_Zᵀ)⁻¹ against the dense inverse.
    let mut l_z = Mat::<f64>::zeros(q, q);
    for c in 0..q {
        for r in c..q {
            l_z[(r, c)] = dense[(r, c)];
        }
    }
    let gram = &l_z * l_z.transpose();
    let inverse = gram
        .llt(faer::Side::Lower)
        .unwrap()
        .solve(Mat::<f64>::identity(q, q));
    let tiles = blocked.inverse_diagonal_tiles();
    let mut offset = 0;
    for (term, block) in problem.terms.iter().zip(&tiles) {
        let k = term.k;
        for level in 0..term.n_levels {
            let tile = block.tile(level);
            for c in 0..k {
                for r in 0..k {
                    let at = offset + level * k;
                    close(
                        tile[r + c * k],
                        inverse[(at + r, at + c)],
                        "inverse diagonal tile",
                    );
                }
            }
        }
        offset += term.n_columns();
    }
}

#[test]
fn single_scalar_term() {
    check(problem(1, 60, 2, &[7], &[1], &[None], false));
}

#[test]
fn single_vector_term_weighted() {
    check(problem(2, 80, 3, &[9], &[2], &[None], true));
}

#[test]
fn two_crossed_scalar_terms() {
    check(problem(3, 90, 2, &[12, 5], &[1, 1], &[None, None], false));
}

#[test]
fn two_nested_terms_keep_the_second_block_tiled() {
    check(problem(4, 90, 1, &[15, 5], &[1, 1], &[None, Some(0)], true));
}

#[test]
fn crossed_vector_and_scalar_terms() {
    check(problem(5, 120, 2, &[10, 6], &[2, 1], &[None, None], false));
}

#[test]
fn three_terms_mixed_nesting_and_crossing() {
    check(problem(
        6,
        150,
        3,
        &[20, 8, 4],
        &[1, 2, 1],
        &[None, None, Some(1)],
        true,
    ));
}

#[test]
fn three_crossed_vector_terms() {
    check(problem(
        7,
        200,
        2,
        &[11, 7, 5],
        &[2, 3, 2],
        &[None, None, None],
        false,
    ));
}

/// The factorisation of a crossed problem large enough for parallel dense kernels, on one and
/// on two threads: results must be identical to the last bit.
#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let problem = problem(8, 6000, 3, &[900, 400], &[1, 1], &[None, None], false);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut cross = CrossProducts::new(&problem.terms, problem.x.as_ref(), None).unwrap();
            cross
                .set_response(&problem.terms, problem.x.as_ref(), &problem.y, None)
                .unwrap();
            let mut blocked = BlockedCholesky::new(&cross).unwrap();
            blocked.factorize(&cross, &lambdas(&problem)).unwrap();
            let beta = blocked.fixed_effects();
            (
                blocked.log_det_random(),
                blocked.fixed_fixed.values.clone(),
                blocked.solve_random_effects(&beta),
            )
        })
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.0.to_bits(), two.0.to_bits());
    assert_eq!(one.1, two.1);
    assert_eq!(one.2, two.2);
}
