//! The general sparse factorisation against a plain dense Cholesky of the whole augmented matrix
//! and against the blocked factorisation, on small random problems of every kind; and, on a
//! crossed structure too large for the blocked path, against the penalised normal equations and
//! conjugate-gradient solves computed from the cross-product tiles alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use super::common::{dense_factor, lambdas, on_threads, problem, Lcg, Problem};
use crate::cholesky::BlockedCholesky;
use crate::crossproducts::CrossProducts;
use crate::dense::scale_tile;
use crate::sparse_cholesky::SparseCholesky;
use crate::terms::RandomEffectsTerm;
use crate::CoreError;
use faer::prelude::Solve;
use faer::Mat;

fn cross_products(problem: &Problem) -> CrossProducts {
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
    cross
}

fn assert_close(a: f64, b: f64, tolerance: f64, what: &str) {
    assert!(
        (a - b).abs() <= tolerance * (1.0 + b.abs()),
        "{what}: sparse {a} vs reference {b}"
    );
}

/// Sparse against dense and blocked: log|L_Z|², L's fixed-effects block, β, u and the diagonal
/// tiles of (L_Z L_Zᵀ)⁻¹. The sparse factor is first used at another θ, so a refactorisation
/// that kept anything from an earlier θ would show.
fn check(problem: Problem) {
    let close = |a: f64, b: f64, what: &str| assert_close(a, b, 1e-9, what);
    let cross = cross_products(&problem);
    let lambdas = lambdas(&problem);
    let mut sparse = SparseCholesky::new(&cross).unwrap();
    let other: Vec<Vec<f64>> = lambdas
        .iter()
        .map(|l| l.iter().map(|v| 2.5 * v + 0.1).collect())
        .collect();
    sparse.factorize(&cross, &other).unwrap();
    sparse.factorize(&cross, &lambdas).unwrap();
    let mut blocked = BlockedCholesky::new(&cross).unwrap();
    blocked.factorize(&cross, &lambdas).unwrap();
    let (dense, q) = dense_factor(&problem);
    let p = problem.x.ncols();

    let dense_log_det: f64 = (0..q).map(|c| dense[(c, c)].ln()).sum::<f64>() * 2.0;
    close(sparse.log_det_random(), dense_log_det, "log|L_Z|² vs dense");
    close(
        sparse.log_det_random(),
        blocked.log_det_random(),
        "log|L_Z|² vs blocked",
    );
    for c in 0..=p {
        for r in c..=p {
            close(
                sparse.fixed.get(r, c),
                dense[(q + r, q + c)],
                "fixed-effects block of L vs dense",
            );
            close(
                sparse.fixed.get(r, c),
                blocked.fixed.get(r, c),
                "fixed-effects block of L vs blocked",
            );
        }
    }
    let (r_x, r) = sparse.fixed.fixed_effects_factor();
    let (blocked_r_x, blocked_r) = blocked.fixed.fixed_effects_factor();
    close(r, blocked_r, "response pivot r");
    for (a, b) in r_x.values.iter().zip(&blocked_r_x.values) {
        close(*a, *b, "R_X");
    }

    // β and u from the dense factor: back-substitute Lᵀ [u; β] = l (the response row).
    let dim = q + p;
    let mut solution: Vec<f64> = (0..dim).map(|c| dense[(dim, c)]).collect();
    for r in (0..dim).rev() {
        let value: f64 = (r + 1..dim).map(|c| dense[(c, r)] * solution[c]).sum();
        solution[r] = (solution[r] - value) / dense[(r, r)];
    }
    let beta = sparse.fixed.fixed_effects();
    let blocked_beta = blocked.fixed.fixed_effects();
    for c in 0..p {
        close(beta[c], solution[q + c], "β vs dense");
        close(beta[c], blocked_beta[c], "β vs blocked");
    }
    let u = sparse.solve_random_effects(&beta);
    let blocked_u = blocked.solve_random_effects(&beta);
    for (term, (u_term, blocked_term)) in u.iter().zip(&blocked_u).enumerate() {
        assert_eq!(u_term.len(), problem.terms[term].n_columns());
        for (a, b) in u_term.iter().zip(blocked_term) {
            close(*a, *b, "u vs blocked");
        }
    }
    for (c, value) in u.concat().iter().enumerate() {
        close(*value, solution[c], "u vs dense");
    }

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
    let tiles = sparse.inverse_diagonal_tiles();
    let blocked_tiles = blocked.inverse_diagonal_tiles();
    assert_eq!(tiles.len(), problem.terms.len());
    let mut offset = 0;
    for ((term, block), blocked_block) in problem.terms.iter().zip(&tiles).zip(&blocked_tiles) {
        let k = term.k;
        assert_eq!((block.k, block.n_levels), (k, term.n_levels));
        for level in 0..term.n_levels {
            let (tile, blocked_tile) = (block.tile(level), blocked_block.tile(level));
            let at = offset + level * k;
            for c in 0..k {
                for r in 0..k {
                    close(
                        tile[r + c * k],
                        inverse[(at + r, at + c)],
                        "inverse diagonal tile vs dense",
                    );
                    close(
                        tile[r + c * k],
                        blocked_tile[r + c * k],
                        "inverse diagonal tile vs blocked",
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
fn two_crossed_scalar_terms_weighted() {
    check(problem(13, 150, 3, &[25, 18], &[1, 1], &[None, None], true));
}

#[test]
fn two_nested_terms() {
    check(problem(4, 90, 1, &[15, 5], &[1, 1], &[None, Some(0)], true));
}

#[test]
fn deep_nesting_with_vector_terms() {
    check(problem(
        14,
        240,
        2,
        &[40, 12, 4],
        &[2, 1, 2],
        &[None, Some(0), Some(1)],
        false,
    ));
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

#[test]
fn a_zero_variance_component() {
    let mut zeroed = problem(9, 120, 2, &[14, 9], &[2, 1], &[None, None], true);
    // θ of the first (k = 2) term: λ = 0, a singular fit on the boundary.
    zeroed.theta[..3].fill(0.0);
    check(zeroed);
}

/// Large enough for supernodes worth parallel dense kernels; the blocked path still works here.
#[test]
fn medium_crossed_problem_matches_the_blocked_path() {
    let problem = problem(8, 6000, 3, &[900, 400], &[1, 1], &[None, None], true);
    let cross = cross_products(&problem);
    let lambdas = lambdas(&problem);
    let mut sparse = SparseCholesky::new(&cross).unwrap();
    sparse.factorize(&cross, &lambdas).unwrap();
    let mut blocked = BlockedCholesky::new(&cross).unwrap();
    blocked.factorize(&cross, &lambdas).unwrap();
    let close = |a: f64, b: f64, what: &str| assert_close(a, b, 1e-9, what);
    close(
        sparse.log_det_random(),
        blocked.log_det_random(),
        "log|L_Z|²",
    );
    let beta = sparse.fixed.fixed_effects();
    for (a, b) in beta.iter().zip(&blocked.fixed.fixed_effects()) {
        close(*a, *b, "β");
    }
    for (a, b) in sparse
        .solve_random_effects(&beta)
        .concat()
        .iter()
        .zip(&blocked.solve_random_effects(&beta).concat())
    {
        close(*a, *b, "u");
    }
    for (a, b) in sparse
        .inverse_diagonal_tiles()
        .iter()
        .zip(&blocked.inverse_diagonal_tiles())
    {
        for (x, y) in a.values.iter().zip(&b.values) {
            close(*x, *y, "inverse diagonal tile");
        }
    }
}

/// The medium problem's supernodes are large enough for parallel dense kernels: one and two
/// threads must give identical results, to the last bit.
#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let problem = problem(8, 6000, 3, &[900, 400], &[1, 1], &[None, None], true);
    let cross = cross_products(&problem);
    let lambdas = lambdas(&problem);
    let run = |threads: usize| {
        on_threads(threads, || {
            let mut sparse = SparseCholesky::new(&cross).unwrap();
            sparse.factorize(&cross, &lambdas).unwrap();
            let beta = sparse.fixed.fixed_effects();
            (
                sparse.log_det_random().to_bits(),
                sparse.fixed.fixed_effects_factor().1.to_bits(),
                sparse.solve_random_effects(&beta),
                sparse.inverse_diagonal_tiles()[1].values.clone(),
            )
        })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn a_nan_factor_is_a_recoverable_error() {
    let problem = problem(10, 120, 2, &[14, 9], &[2, 1], &[None, None], false);
    let cross = cross_products(&problem);
    let good = lambdas(&problem);
    let mut sparse = SparseCholesky::new(&cross).unwrap();
    let mut bad = good.clone();
    bad[1][0] = f64::NAN;
    assert!(matches!(
        sparse.factorize(&cross, &bad),
        Err(CoreError::NotPositiveDefinite { .. })
    ));
    assert!(matches!(
        sparse.factorize(&cross, &good[..1]),
        Err(CoreError::InvalidInput(_))
    ));
    sparse.factorize(&cross, &good).unwrap();
    let mut blocked = BlockedCholesky::new(&cross).unwrap();
    blocked.factorize(&cross, &good).unwrap();
    assert_close(
        sparse.log_det_random(),
        blocked.log_det_random(),
        1e-9,
        "log|L_Z|² after recovering",
    );
}

/// (ΛᵀZᵀWZΛ + I) v from the cross-product tiles, in the original order.
fn apply_random_part(cross: &CrossProducts, lambdas: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    let offsets: Vec<usize> = cross
        .diagonal
        .iter()
        .scan(0, |next, d| {
            let first = *next;
            *next += d.k * d.n_levels;
            Some(first)
        })
        .collect();
    let mut out = v.to_vec();
    let mut scratch = vec![0.0; 64];
    let mut scaled = vec![0.0; 64];
    for (j, block) in cross.diagonal.iter().enumerate() {
        let k = block.k;
        for level in 0..block.n_levels {
            let size = k * k;
            let (s, t) = (&mut scratch[..size], &mut scaled[..size]);
            scale_tile(block.tile(level), &lambdas[j], k, &lambdas[j], k, s, t);
            let first = offsets[j] + level * k;
            for c in 0..k {
                for r in 0..k {
                    out[first + r] += t[r + c * k] * v[first + c];
                }
            }
        }
    }
    for (i, row) in cross.off_diagonal.iter().enumerate() {
        for (j, block) in row.iter().enumerate() {
            let (k_row, k_col) = (block.k_row, block.k_col);
            let size = k_row * k_col;
            for b in 0..block.n_col_levels {
                for (index, a) in block.column(b) {
                    let (s, t) = (&mut scratch[..size], &mut scaled[..size]);
                    scale_tile(
                        block.tile(index),
                        &lambdas[i],
                        k_row,
                        &lambdas[j],
                        k_col,
                        s,
                        t,
                    );
                    let (row_first, col_first) = (offsets[i] + a * k_row, offsets[j] + b * k_col);
                    for c in 0..k_col {
                        for r in 0..k_row {
                            out[row_first + r] += t[r + c * k_row] * v[col_first + c];
                            out[col_first + c] += t[r + c * k_row] * v[row_first + r];
                        }
                    }
                }
            }
        }
    }
    out
}

/// ΛᵀZᵀW[X y] from the cross-product tiles: q rows (original order), p + 1 columns.
fn random_fixed_block(cross: &CrossProducts, lambdas: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let p1 = cross.n_fixed + 1;
    let mut rows = Vec::new();
    for ((block, diagonal), lambda) in cross.fixed_random.iter().zip(&cross.diagonal).zip(lambdas) {
        let k = diagonal.k;
        for level in 0..diagonal.n_levels {
            for c in 0..k {
                rows.push(
                    (0..p1)
                        .map(|col| {
                            (c..k)
                                .map(|r| lambda[r + c * k] * block.get(col, level * k + r))
                                .sum()
                        })
                        .collect(),
                );
            }
        }
    }
    rows
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Conjugate gradients on (ΛᵀZᵀWZΛ + I) x = rhs; the matrix is ⪰ I, so this converges quickly.
fn conjugate_gradient(cross: &CrossProducts, lambdas: &[Vec<f64>], rhs: &[f64]) -> Vec<f64> {
    let mut x = vec![0.0; rhs.len()];
    let mut residual = rhs.to_vec();
    let mut direction = residual.clone();
    let mut residual_norm = norm(&residual).powi(2);
    let target = 1e-26 * residual_norm;
    for _ in 0..1000 {
        if residual_norm <= target {
            break;
        }
        let applied = apply_random_part(cross, lambdas, &direction);
        let step = residual_norm
            / direction
                .iter()
                .zip(&applied)
                .map(|(a, b)| a * b)
                .sum::<f64>();
        for i in 0..x.len() {
            x[i] += step * direction[i];
            residual[i] -= step * applied[i];
        }
        let next_norm = norm(&residual).powi(2);
        for i in 0..x.len() {
            direction[i] = residual[i] + next_norm / residual_norm * direction[i];
        }
        residual_norm = next_norm;
    }
    x
}

/// Two crossed scalar factors with 7000 and 6500 levels: the blocked path refuses (a dense
/// 6500 × 6500 fill-in block), the sparse path must agree with the penalised normal equations and
/// with conjugate-gradient solves, computed from the tiles without any factorisation.
#[test]
fn crossed_structure_too_large_for_the_blocked_path() {
    let problem = problem(11, 40_000, 3, &[7000, 6500], &[1, 1], &[None, None], true);
    let cross = cross_products(&problem);
    let lambdas = lambdas(&problem);
    assert!(matches!(
        BlockedCholesky::new(&cross),
        Err(CoreError::Specification(_))
    ));

    let start = Instant::now();
    let mut sparse = SparseCholesky::new(&cross).unwrap();
    let analysis = start.elapsed();
    sparse.factorize(&cross, &lambdas).unwrap();
    let start = Instant::now();
    sparse.factorize(&cross, &lambdas).unwrap();
    let factorize = start.elapsed();
    let start = Instant::now();
    let tiles = sparse.inverse_diagonal_tiles();
    let inversion = start.elapsed();
    eprintln!(
        "7000 × 6500 crossed, 40,000 observations: symbolic analysis {analysis:?}, \
         factorize {factorize:?}, inverse diagonal tiles {inversion:?}"
    );

    // The penalised normal equations [A B_X; B_Xᵀ XᵀWX] [u; β] = [B_y; XᵀWy], with
    // A = ΛᵀZᵀWZΛ + I and [B_X B_y] = ΛᵀZᵀW[X y].
    let p = cross.n_fixed;
    let beta = sparse.fixed.fixed_effects();
    let u = sparse.solve_random_effects(&beta).concat();
    let random_fixed = random_fixed_block(&cross, &lambdas);
    let mut random_residual = apply_random_part(&cross, &lambdas, &u);
    let mut random_rhs = Vec::with_capacity(u.len());
    for (row, residual) in random_fixed.iter().zip(random_residual.iter_mut()) {
        *residual += (0..p).map(|c| row[c] * beta[c]).sum::<f64>() - row[p];
        random_rhs.push(row[p]);
    }
    let relative = norm(&random_residual) / norm(&random_rhs);
    assert!(
        relative < 1e-8,
        "random-effects rows: relative residual {relative}"
    );
    let fixed_residual: Vec<f64> = (0..p)
        .map(|a| {
            let from_u: f64 = random_fixed.iter().zip(&u).map(|(row, v)| row[a] * v).sum();
            let from_beta: f64 = (0..p).map(|b| cross.fixed_fixed.get(a, b) * beta[b]).sum();
            from_u + from_beta - cross.fixed_fixed.get(a, p)
        })
        .collect();
    let fixed_rhs: Vec<f64> = (0..p).map(|a| cross.fixed_fixed.get(a, p)).collect();
    let relative = norm(&fixed_residual) / norm(&fixed_rhs);
    assert!(
        relative < 1e-8,
        "fixed-effects rows: relative residual {relative}"
    );

    // A few diagonal entries of A⁻¹ by conjugate gradients on unit vectors.
    let q = u.len();
    let mut rng = Lcg(12);
    let mut offset = 0;
    for (term, block) in problem.terms.iter().zip(&tiles) {
        for _ in 0..4 {
            let level = rng.below(term.n_levels);
            let mut unit = vec![0.0; q];
            unit[offset + level] = 1.0;
            let column = conjugate_gradient(&cross, &lambdas, &unit);
            assert_close(
                block.tile(level)[0],
                column[offset + level],
                1e-8,
                "inverse diagonal entry vs conjugate gradients",
            );
        }
        offset += term.n_columns();
    }

    // log|L_Z|² does not depend on how levels are labelled (a different AMD ordering).
    let relabelled = Problem {
        terms: problem
            .terms
            .iter()
            .map(|term| {
                let n = term.n_levels as u32;
                let codes = term.codes.iter().map(|&c| (c * 7919 + 13) % n).collect();
                RandomEffectsTerm::new(codes, term.n_levels, 1, term.z.clone()).unwrap()
            })
            .collect(),
        ..problem
    };
    let relabelled_cross = cross_products(&relabelled);
    let mut relabelled_sparse = SparseCholesky::new(&relabelled_cross).unwrap();
    relabelled_sparse
        .factorize(&relabelled_cross, &lambdas)
        .unwrap();
    assert_close(
        relabelled_sparse.log_det_random(),
        sparse.log_det_random(),
        1e-10,
        "log|L_Z|² after relabelling levels",
    );
    for (a, b) in relabelled_sparse.fixed.fixed_effects().iter().zip(&beta) {
        assert_close(*a, *b, 1e-8, "β after relabelling levels");
    }
}

/// Counts heap allocations made on threads that opt in, so one test can watch its own thread.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
        }
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// An evaluation of the objective allocates nothing (DESIGN.md): the scratch from the symbolic
/// step covers the numeric factorisation, the solve for F and the fixed-effects block.
#[test]
fn factorize_allocates_nothing() {
    let problem = problem(
        15,
        400,
        3,
        &[40, 25, 6],
        &[2, 1, 1],
        &[None, None, None],
        true,
    );
    let cross = cross_products(&problem);
    let lambdas = lambdas(&problem);
    let mut sparse = SparseCholesky::new(&cross).unwrap();
    sparse.factorize(&cross, &lambdas).unwrap();
    COUNTING.with(|counting| counting.set(true));
    let result = sparse.factorize(&cross, &lambdas);
    COUNTING.with(|counting| counting.set(false));
    result.unwrap();
    assert_eq!(ALLOCATIONS.with(Cell::get), 0);
}
