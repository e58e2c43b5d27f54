//! The blocked factorisation against a plain dense Cholesky of the whole augmented matrix, on
//! small random problems of every block kind (nested, crossed, vector-valued, three factors).

use super::common::{dense_factor, lambdas, on_threads, problem, Problem};
use crate::cholesky::BlockedCholesky;
use crate::crossproducts::CrossProducts;
use faer::prelude::Solve;
use faer::Mat;

/// Compare both kinds of the first term's lower blocks (tile-sparse and dense) with the dense
/// reference.
fn check(problem: Problem) {
    check_kind(&problem, false);
    check_kind(&problem, true);
}

fn check_kind(problem: &Problem, dense_first_column: bool) {
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
    let mut blocked = BlockedCholesky::with_dense_first_column(&cross, dense_first_column).unwrap();
    blocked.factorize(&cross, &lambdas(problem)).unwrap();
    let (dense, q) = dense_factor(problem);
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
                blocked.fixed.get(r, c),
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
    let beta = blocked.fixed.fixed_effects();
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

#[test]
fn many_rows_below_a_dense_block_are_solved_block_by_block() {
    // Term 1's dense block has 30 + 3 rows below it: more than are stacked into one solve.
    check(problem(
        8,
        900,
        2,
        &[40, 36, 30],
        &[1, 1, 1],
        &[None, None, None],
        false,
    ));
}

#[test]
fn few_rows_below_a_large_dense_block_are_solved_in_two_halves() {
    // Term 1's 300 × 300 block uses parallel kernels; its 3 fixed-effects rows are split.
    check(problem(
        9,
        4000,
        2,
        &[600, 300],
        &[1, 1],
        &[None, None],
        false,
    ));
}

/// The factorisation of a crossed problem large enough for parallel dense kernels, on one and
/// on two threads: results must be identical to the last bit.
#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let problem = problem(8, 6000, 3, &[900, 400], &[1, 1], &[None, None], false);
    let run = |threads: usize| {
        on_threads(threads, || {
            let mut cross = CrossProducts::new(&problem.terms, problem.x.as_ref(), None).unwrap();
            cross
                .set_response(&problem.terms, problem.x.as_ref(), &problem.y, None)
                .unwrap();
            let mut blocked = BlockedCholesky::new(&cross).unwrap();
            blocked.factorize(&cross, &lambdas(&problem)).unwrap();
            let beta = blocked.fixed.fixed_effects();
            (
                blocked.log_det_random(),
                blocked.fixed.fixed_effects_factor().0.values,
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

/// Whether the upper halves of this thread's vector registers are in use (XINUSE bit 2 of
/// `xgetbv(1)`), or None where the CPU cannot say.
#[cfg(target_arch = "x86_64")]
fn upper_vector_state_in_use() -> Option<bool> {
    #[target_feature(enable = "xsave")]
    fn in_use() -> bool {
        // SAFETY: reading XCR1 (xgetbv with ECX = 1) needs XSAVE and XGETBV_ECX1, checked below.
        unsafe { std::arch::x86_64::_xgetbv(1) & 0b100 != 0 }
    }
    // CPUID leaf 0xD, sub-leaf 1, EAX bit 2: XGETBV with ECX = 1 is supported.
    let supported = std::arch::is_x86_feature_detected!("xsave")
        && std::arch::x86_64::__cpuid_count(0xD, 1).eax & 0b100 != 0;
    // SAFETY: XSAVE is available.
    supported.then(|| unsafe { in_use() })
}

/// faer's kernels leave the vector registers' upper halves in use, which makes every later SSE
/// instruction (glibc's log and exp) pay a transition penalty; a factorisation clears them. On
/// this machine (AVX-512) the Schur complement of a 2,000-level 2×2 term's fixed-effects rows left
/// them in use, and this test failed without the clearing.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_factorisation_leaves_the_vector_registers_clean() {
    use crate::factorization::{Factorization, FactorizationChoice};
    let problem = problem(9, 20000, 2, &[2000], &[2], &[None], false);
    let cross = CrossProducts::new(&problem.terms, problem.x.as_ref(), None).unwrap();
    let mut factor = Factorization::new(&cross, FactorizationChoice::Blocked).unwrap();
    factor.factorize(&cross, &lambdas(&problem)).unwrap();
    // None: the CPU cannot report its register state.
    assert_ne!(upper_vector_state_in_use(), Some(true));
}
