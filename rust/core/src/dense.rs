//! Dense kernels on column-major matrices, in one place: the Cholesky factor and the lower gram
//! update of dense blocks (plain loops below [`SMALL_DENSE_WORK`], faer above), the kernels on the
//! k×k tiles of the random effects (k is 1–4 in practice, so plain loops beat calling a BLAS), and
//! the small triangular solves and inverses of the fixed effects and of the conditional covariances.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    cholesky_in_place, cholesky_in_place_scratch, LltError, LltRegularization,
};
use faer::linalg::matmul::triangular::{matmul as triangular_matmul, BlockStructure};
use faer::linalg::solvers::DenseSolveCore;
use faer::{Accum, Mat, MatRef, Par};

use crate::blocks::Dense;
use crate::error::CoreError;

/// Multiply-adds below which a dense kernel runs as plain loops: a call into faer costs about a
/// microsecond of dispatch, more than the arithmetic of a small model's blocks (sleepstudy's
/// fixed-effects rows are 3 × 36, Penicillin's second diagonal block 6 × 6).
const SMALL_DENSE_WORK: usize = 4096;

/// Clear the upper halves of the vector registers (`vzeroupper`) on this thread and, when
/// `on_every_thread`, on every thread of rayon's pool. faer's x86 matrix kernels return with them
/// in use, and until they are cleared every legacy SSE instruction pays a state-transition
/// penalty: glibc's `log` and `exp` ran about 45 times slower after a factorisation (4,000 `ln` in
/// 565 µs against 12 µs), which was most of an evaluation of a model with 2,000 2×2 tiles.
pub(crate) fn clear_upper_vector_state(on_every_thread: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx")]
        fn zero_upper() {
            std::arch::x86_64::_mm256_zeroupper();
        }
        let clear = || {
            if std::arch::is_x86_feature_detected!("avx") {
                // SAFETY: the CPU has AVX, which the function needs and nothing else.
                unsafe { zero_upper() }
            }
        };
        clear();
        if on_every_thread {
            rayon::broadcast(|_| clear());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = on_every_thread;
}

/// Scratch for [`dense_lower_cholesky`] of blocks up to `dimension` rows on `par`'s threads.
pub(crate) fn cholesky_scratch(dimension: usize, par: Par) -> MemBuffer {
    MemBuffer::new(cholesky_in_place_scratch::<f64>(
        dimension,
        par,
        Default::default(),
    ))
}

/// In-place Cholesky factor of a square dense block's lower triangle (the strict upper triangle is
/// not read); `Err(index)` names the first non-positive pivot.
pub(crate) fn dense_lower_cholesky(
    block: &mut Dense,
    par: Par,
    stack: &mut MemStack,
) -> Result<(), usize> {
    let n = block.nrows;
    if n * n * n / 6 <= SMALL_DENSE_WORK {
        return tile_cholesky(&mut block.values, n);
    }
    cholesky_in_place(
        block.as_mut(),
        LltRegularization::default(),
        par,
        stack,
        Default::default(),
    )
    .map(|_| ())
    .map_err(|LltError::NonPositivePivot { index }| index)
}

/// `target`'s lower triangle −= `block blockᵀ` (target n × n, block n × m).
pub(crate) fn subtract_lower_gram(target: &mut Dense, block: MatRef<'_, f64>, par: Par) {
    let (n, m) = (block.nrows(), block.ncols());
    match block.try_as_col_major() {
        Some(columns) if n * (n + 1) / 2 * m <= SMALL_DENSE_WORK => {
            for c in 0..m {
                let column = columns.col(c).as_slice();
                for (j, &b_jc) in column.iter().enumerate() {
                    if b_jc == 0.0 {
                        continue;
                    }
                    let out = &mut target.values[j + j * n..(j + 1) * n];
                    for (out, &b_ic) in out.iter_mut().zip(&column[j..]) {
                        *out -= b_ic * b_jc;
                    }
                }
            }
        }
        _ => triangular_matmul(
            target.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            block,
            BlockStructure::Rectangular,
            block.transpose(),
            BlockStructure::Rectangular,
            -1.0,
            par,
        ),
    }
}

/// Runs `$body` with `$k` bound as a literal for the common tile sizes 1 to 3 (else as it is), so
/// that the tile kernels inlined into the body unroll: small models spend most of an evaluation in
/// these kernels on 1×1 to 3×3 tiles, where the loop overhead exceeds the arithmetic.
macro_rules! with_tile_size {
    ($k:expr, |$size:ident| $body:expr) => {
        match $k {
            1 => {
                let $size: usize = 1;
                $body
            }
            2 => {
                let $size: usize = 2;
                $body
            }
            3 => {
                let $size: usize = 3;
                $body
            }
            other => {
                let $size: usize = other;
                $body
            }
        }
    };
}
pub(crate) use with_tile_size;

/// In-place Cholesky of a k×k column-major tile (lower triangle used and written; the strict
/// upper triangle is zeroed). Err(pivot) for a non-positive pivot.
#[inline(always)]
pub(crate) fn tile_cholesky(tile: &mut [f64], k: usize) -> Result<(), usize> {
    for j in 0..k {
        let mut diagonal = tile[j + j * k];
        for c in 0..j {
            diagonal -= tile[j + c * k] * tile[j + c * k];
        }
        if diagonal.is_nan() || diagonal <= 0.0 {
            return Err(j);
        }
        let pivot = diagonal.sqrt();
        tile[j + j * k] = pivot;
        for i in j + 1..k {
            let mut value = tile[i + j * k];
            for c in 0..j {
                value -= tile[i + c * k] * tile[j + c * k];
            }
            tile[i + j * k] = value / pivot;
        }
        for i in 0..j {
            tile[i + j * k] = 0.0;
        }
    }
    Ok(())
}

/// `block ← block L⁻ᵀ` for an `n_rows × k` column-major block with column stride `stride` and a
/// lower-triangular k×k tile `factor`.
#[inline(always)]
pub(crate) fn right_solve_lower_transpose(
    block: &mut [f64],
    n_rows: usize,
    stride: usize,
    factor: &[f64],
    k: usize,
) {
    // Row r of the result solves L x = block[r, :]ᵀ by forward substitution.
    for j in 0..k {
        let pivot = factor[j + j * k];
        for c in 0..j {
            let l_jc = factor[j + c * k];
            if l_jc != 0.0 {
                for r in 0..n_rows {
                    block[r + j * stride] -= l_jc * block[r + c * stride];
                }
            }
        }
        for r in 0..n_rows {
            block[r + j * stride] /= pivot;
        }
    }
}

/// `target ← target − A Bᵀ` for column-major A (m×k, column stride `a_stride`) and tile B (n×k,
/// contiguous); target has column stride `stride`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // a strided kernel: three slices, two strides, three sizes
pub(crate) fn subtract_product_transpose(
    target: &mut [f64],
    stride: usize,
    a: &[f64],
    a_stride: usize,
    b: &[f64],
    m: usize,
    n: usize,
    k: usize,
) {
    for c in 0..k {
        for j in 0..n {
            let b_jc = b[j + c * n];
            if b_jc == 0.0 {
                continue;
            }
            for i in 0..m {
                target[i + j * stride] -= a[i + c * a_stride] * b_jc;
            }
        }
    }
}

/// `out ← λ_rowᵀ tile λ_col` for a k_row×k_col tile (all column-major); `scratch` has k_row*k_col entries.
#[inline(always)]
pub(crate) fn scale_tile(
    tile: &[f64],
    factor_row: &[f64],
    k_row: usize,
    factor_col: &[f64],
    k_col: usize,
    scratch: &mut [f64],
    out: &mut [f64],
) {
    // scratch = tile λ_col (k_row×k_col); λ_col is lower triangular.
    for j in 0..k_col {
        for i in 0..k_row {
            let mut value = 0.0;
            for c in j..k_col {
                value += tile[i + c * k_row] * factor_col[c + j * k_col];
            }
            scratch[i + j * k_row] = value;
        }
    }
    // out = λ_rowᵀ scratch; (λᵀ)[i, c] = λ[c, i], nonzero for c ≥ i.
    for j in 0..k_col {
        for i in 0..k_row {
            let mut value = 0.0;
            for c in i..k_row {
                value += factor_row[c + i * k_row] * scratch[c + j * k_row];
            }
            out[i + j * k_row] = value;
        }
    }
}

/// `out ← block λ` for an `n_rows × k` column-major block (stride `stride`) and lower-triangular λ.
#[inline(always)]
pub(crate) fn right_multiply_lower(
    block: &[f64],
    n_rows: usize,
    stride: usize,
    factor: &[f64],
    k: usize,
    out: &mut [f64],
    out_stride: usize,
) {
    for j in 0..k {
        for r in 0..n_rows {
            out[r + j * out_stride] = 0.0;
        }
        for c in j..k {
            let l_cj = factor[c + j * k];
            if l_cj == 0.0 {
                continue;
            }
            for r in 0..n_rows {
                out[r + j * out_stride] += block[r + c * stride] * l_cj;
            }
        }
    }
}

/// Inverse of a lower-triangular n×n column-major `l` into `out` (strict upper triangle zero), by
/// forward substitution column by column.
pub(crate) fn invert_lower_triangular(l: &[f64], n: usize, out: &mut [f64]) {
    out.fill(0.0);
    for c in 0..n {
        out[c + c * n] = 1.0 / l[c + c * n];
        for row in c + 1..n {
            let value: f64 = (c..row).map(|m| l[row + m * n] * out[m + c * n]).sum();
            out[row + c * n] = -value / l[row + row * n];
        }
    }
}

/// `scale · (R Rᵀ)⁻¹` for a lower-triangular p×p column-major R.
pub(crate) fn scaled_inverse_gram(r: &[f64], p: usize, scale: f64) -> Vec<f64> {
    let mut inverse = vec![0.0; p * p];
    invert_lower_triangular(r, p, &mut inverse);
    // (R Rᵀ)⁻¹ = R⁻ᵀ R⁻¹.
    let mut out = vec![0.0; p * p];
    for j in 0..p {
        for i in 0..p {
            let start = i.max(j);
            out[i + j * p] = scale
                * (start..p)
                    .map(|m| inverse[m + i * p] * inverse[m + j * p])
                    .sum::<f64>();
        }
    }
    out
}

/// `out ← Kᵀ M K` for k×k column-major tiles.
pub(crate) fn congruence(k_tile: &[f64], middle: &[f64], k: usize, out: &mut [f64]) {
    for j in 0..k {
        for i in 0..k {
            let mut value = 0.0;
            for s in 0..k {
                for t in 0..k {
                    value += k_tile[s + i * k] * middle[s + t * k] * k_tile[t + j * k];
                }
            }
            out[i + j * k] = value;
        }
    }
}

/// `out ← scale · λ T λᵀ` for a lower-triangular k×k λ and a k×k tile T (all column-major).
pub(crate) fn scaled_lower_congruence(
    lambda: &[f64],
    tile: &[f64],
    k: usize,
    scale: f64,
    out: &mut [f64],
) {
    for j in 0..k {
        for i in 0..k {
            let mut value = 0.0;
            for s in 0..=i {
                for t in 0..=j {
                    value += lambda[i + s * k] * tile[s + t * k] * lambda[j + t * k];
                }
            }
            out[i + j * k] = scale * value;
        }
    }
}

/// Solve L x = b in place by forward substitution: L lower-triangular n×n (column stride
/// `l_stride`), b's entries `x_stride` apart in `x`.
pub(crate) fn forward_substitute(
    l: &[f64],
    l_stride: usize,
    n: usize,
    x: &mut [f64],
    x_stride: usize,
) {
    for c in 0..n {
        let mut value = x[c * x_stride];
        for m in 0..c {
            value -= x[m * x_stride] * l[c + m * l_stride];
        }
        x[c * x_stride] = value / l[c + c * l_stride];
    }
}

/// Solve Lᵀ x = b in place by back substitution: L lower-triangular n×n (column stride `l_stride`).
pub(crate) fn back_substitute_transpose(l: &[f64], l_stride: usize, x: &mut [f64]) {
    let n = x.len();
    for r in (0..n).rev() {
        let later: f64 = (r + 1..n).map(|c| l[c + r * l_stride] * x[c]).sum();
        x[r] = (x[r] - later) / l[r + r * l_stride];
    }
}

/// Eigenvalues (ascending) and eigenvectors of the symmetric k×k column-major `matrix`; an
/// InvalidInput error naming it (`what`) where faer finds no decomposition.
pub(crate) fn symmetric_eigen(
    matrix: &[f64],
    k: usize,
    what: &str,
) -> Result<(Vec<f64>, Mat<f64>), CoreError> {
    let mat = Mat::<f64>::from_fn(k, k, |i, j| matrix[i + j * k]);
    let eigen = mat
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|_| CoreError::InvalidInput(format!("{what} has no eigendecomposition")))?;
    let values = eigen.S().column_vector();
    Ok(((0..k).map(|m| values[m]).collect(), eigen.U().to_owned()))
}

/// 2 Σ vᵢvᵢᵀ/λᵢ over the eigenpairs whose λᵢ `keep` accepts (k×k column-major): twice an inverse
/// (all kept) or a pseudo-inverse of the matrix they decompose.
pub(crate) fn twice_spectral_inverse(
    values: &[f64],
    vectors: &Mat<f64>,
    keep: impl Fn(f64) -> bool,
) -> Vec<f64> {
    let k = values.len();
    let mut inverse = vec![0.0; k * k];
    for (m, &lambda) in values.iter().enumerate() {
        if keep(lambda) {
            for j in 0..k {
                for i in 0..k {
                    inverse[i + j * k] += 2.0 * vectors[(i, m)] * vectors[(j, m)] / lambda;
                }
            }
        }
    }
    inverse
}

/// Inverse of a symmetric positive-definite m×m column-major matrix, `None` when it is not.
pub(crate) fn invert_symmetric(matrix: &[f64], m: usize) -> Option<Vec<f64>> {
    let mat = Mat::<f64>::from_fn(m, m, |i, j| matrix[i + j * m]);
    let inverse = mat.llt(faer::Side::Lower).ok()?.inverse();
    Some(
        (0..m * m)
            .map(|index| inverse[(index % m, index / m)])
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_cholesky_reproduces_the_matrix() {
        let original = [4.0, 2.0, 2.0, 3.0];
        let mut tile = original;
        tile_cholesky(&mut tile, 2).unwrap();
        // L Lᵀ
        let l = tile;
        let rebuilt = [
            l[0] * l[0],
            l[1] * l[0],
            l[0] * l[1],
            l[1] * l[1] + l[3] * l[3],
        ];
        for (a, b) in rebuilt.iter().zip(original.iter()) {
            assert!((a - b).abs() < 1e-12);
        }
        let mut singular = [1.0, 1.0, 1.0, 1.0];
        assert_eq!(tile_cholesky(&mut singular, 2), Err(1));
    }

    #[test]
    fn right_solve_inverts_the_transpose() {
        let factor = [2.0, 1.0, 0.0, 3.0]; // L = [[2,0],[1,3]]
                                           // block = x Lᵀ for x = [[1, 2]] → [[2, 1+6]] = [[2, 7]]
        let mut block = [2.0, 7.0];
        right_solve_lower_transpose(&mut block, 1, 1, &factor, 2);
        assert!((block[0] - 1.0).abs() < 1e-15 && (block[1] - 2.0).abs() < 1e-15);
    }

    #[test]
    fn scale_tile_matches_explicit_product() {
        let tile = [1.0, 2.0, 3.0, 4.0];
        let lambda = [2.0, 1.0, 0.0, 3.0];
        let mut scratch = [0.0; 4];
        let mut out = [0.0; 4];
        scale_tile(&tile, &lambda, 2, &lambda, 2, &mut scratch, &mut out);
        // λᵀ T λ computed by hand: λᵀ = [[2,1],[0,3]], T = [[1,3],[2,4]], λ = [[2,0],[1,3]]
        // T λ = [[5, 9],[8, 12]]; λᵀ (T λ) = [[18, 30],[24, 36]]
        assert_eq!(out, [18.0, 24.0, 30.0, 36.0]);
    }

    fn filled(nrows: usize, ncols: usize, seed: u64) -> Dense {
        let mut m = Dense::zeros(nrows, ncols);
        let mut state = seed;
        for value in &mut m.values {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *value = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        }
        m
    }

    #[test]
    fn subtract_lower_gram_matches_the_explicit_product_on_both_paths() {
        // 3 × 5 runs as loops, 20 × 40 through faer; the transposed view is not column-major.
        for (n, m) in [(3, 5), (20, 40)] {
            let block = filled(n, m, 3);
            let transposed = filled(m, n, 3);
            for view in [block.as_ref(), transposed.as_ref().transpose()] {
                let mut target = filled(n, n, 9);
                let original = target.clone();
                subtract_lower_gram(&mut target, view, Par::Seq);
                for j in 0..n {
                    for i in j..n {
                        let product: f64 = (0..m).map(|c| view[(i, c)] * view[(j, c)]).sum();
                        let expected = original.get(i, j) - product;
                        assert!(
                            (target.get(i, j) - expected).abs() < 1e-12,
                            "{n}×{m} ({i},{j})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dense_lower_cholesky_reproduces_the_matrix_on_both_paths() {
        // 5 × 5 runs as loops, 40 × 40 through faer.
        for n in [5, 40] {
            let half = filled(n, n, 5);
            let mut matrix = Dense::zeros(n, n);
            subtract_lower_gram(&mut matrix, half.as_ref(), Par::Seq);
            for j in 0..n {
                for i in j..n {
                    matrix.values[i + j * n] = -matrix.values[i + j * n];
                }
                matrix.values[j + j * n] += 1.0;
            }
            let mut factor = matrix.clone();
            let mut scratch = cholesky_scratch(n, Par::Seq);
            dense_lower_cholesky(&mut factor, Par::Seq, MemStack::new(&mut scratch)).unwrap();
            for j in 0..n {
                for i in j..n {
                    let rebuilt: f64 = (0..=j).map(|c| factor.get(i, c) * factor.get(j, c)).sum();
                    assert!((rebuilt - matrix.get(i, j)).abs() < 1e-10, "{n} ({i},{j})");
                }
            }
            let mut singular = Dense::zeros(n, n);
            assert_eq!(
                dense_lower_cholesky(&mut singular, Par::Seq, MemStack::new(&mut scratch)),
                Err(0)
            );
        }
    }

    /// A lower-triangular n×n matrix with a well-conditioned diagonal.
    fn lower(n: usize, seed: u64) -> Vec<f64> {
        let mut l = filled(n, n, seed).values;
        for c in 0..n {
            for r in 0..c {
                l[r + c * n] = 0.0;
            }
            l[c + c * n] += 1.5;
        }
        l
    }

    #[test]
    fn the_triangular_inverse_and_the_inverse_gram_are_inverses() {
        let n = 4;
        let l = lower(n, 11);
        let mut inverse = vec![f64::NAN; n * n];
        invert_lower_triangular(&l, n, &mut inverse);
        let gram_inverse = scaled_inverse_gram(&l, n, 2.0);
        for j in 0..n {
            for i in 0..n {
                let identity = f64::from(u8::from(i == j));
                let product: f64 = (0..n).map(|m| l[i + m * n] * inverse[m + j * n]).sum();
                assert!((product - identity).abs() < 1e-12, "L L⁻¹ ({i},{j})");
                // (L Lᵀ) · (L Lᵀ)⁻¹ = I, the latter scaled by 2.
                let gram_row: Vec<f64> = (0..n)
                    .map(|m| (0..n).map(|c| l[i + c * n] * l[m + c * n]).sum())
                    .collect();
                let product: f64 = (0..n).map(|m| gram_row[m] * gram_inverse[m + j * n]).sum();
                assert!((product - 2.0 * identity).abs() < 1e-12, "gram ({i},{j})");
            }
        }
        let symmetric_inverse = invert_symmetric(
            &(0..n * n)
                .map(|index| {
                    let (i, j) = (index % n, index / n);
                    (0..n).map(|c| l[i + c * n] * l[j + c * n]).sum()
                })
                .collect::<Vec<f64>>(),
            n,
        )
        .unwrap();
        for (a, b) in symmetric_inverse.iter().zip(&gram_inverse) {
            assert!((2.0 * a - b).abs() < 1e-12);
        }
        assert!(invert_symmetric(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn triangular_solves_invert_the_products() {
        let n = 4;
        let l = lower(n, 12);
        let x: Vec<f64> = (0..n).map(|i| i as f64 - 1.5).collect();
        // b = L x, with b's entries three apart.
        let mut strided = vec![0.0; 3 * n];
        for r in 0..n {
            strided[3 * r] = (0..n).map(|c| l[r + c * n] * x[c]).sum();
        }
        forward_substitute(&l, n, n, &mut strided, 3);
        // b = Lᵀ x.
        let mut transposed: Vec<f64> = (0..n)
            .map(|r| (0..n).map(|c| l[c + r * n] * x[c]).sum())
            .collect();
        back_substitute_transpose(&l, n, &mut transposed);
        for r in 0..n {
            assert!((strided[3 * r] - x[r]).abs() < 1e-12);
            assert!((transposed[r] - x[r]).abs() < 1e-12);
        }
    }

    #[test]
    fn congruences_match_the_explicit_products() {
        let k = 3;
        let (a, t) = (filled(k, k, 21).values, filled(k, k, 22).values);
        let lambda = lower(k, 23);
        let product = |left: &dyn Fn(usize, usize) -> f64, right: &dyn Fn(usize, usize) -> f64| {
            (0..k * k)
                .map(|index| {
                    let (i, j) = (index % k, index / k);
                    (0..k).map(|m| left(i, m) * right(m, j)).sum::<f64>()
                })
                .collect::<Vec<f64>>()
        };
        // Aᵀ T A.
        let t_a = product(&|i, m| t[i + m * k], &|m, j| a[m + j * k]);
        let expected = product(&|i, m| a[m + i * k], &|m, j| t_a[m + j * k]);
        let mut out = vec![0.0; k * k];
        congruence(&a, &t, k, &mut out);
        for (x, y) in out.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-12);
        }
        // 2 λ T λᵀ.
        let t_lt = product(&|i, m| t[i + m * k], &|m, j| lambda[j + m * k]);
        let expected = product(&|i, m| lambda[i + m * k], &|m, j| t_lt[m + j * k]);
        scaled_lower_congruence(&lambda, &t, k, 2.0, &mut out);
        for (x, y) in out.iter().zip(&expected) {
            assert!((x - 2.0 * y).abs() < 1e-12);
        }
    }
}
