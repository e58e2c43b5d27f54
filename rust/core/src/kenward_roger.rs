//! Kenward and Roger's adjusted covariance of β̂ for a linear mixed model fitted by REML
//! (Kenward & Roger 1997, Biometrics 53(3); Halekoh & Højsgaard 2014, JSS 59(9), sec. 4, whose
//! pbkrtest `vcovAdj` this reproduces).
//!
//! V = Σᵢ γᵢ Gᵢ is linear in the covariance parameters γ: every variance and covariance of each
//! random-effects term (Gᵢ = Z Eᵢ Zᵀ, Eᵢ the indicator of one element of the term's covariance
//! matrix repeated over its levels) and σ² (G = W⁻¹). With Φ = (XᵀV⁻¹X)⁻¹,
//!
//!   Pᵢ = −XᵀV⁻¹GᵢV⁻¹X,   Qᵢⱼ = XᵀV⁻¹GᵢV⁻¹GⱼV⁻¹X,
//!   Iᵢⱼ = tr(V⁻¹GᵢV⁻¹Gⱼ) − 2 tr(ΦQᵢⱼ) + tr(ΦPᵢΦPⱼ)   (twice the expected REML information),
//!   W = 2I⁻¹,   Φ_A = Φ + 2Φ [Σᵢⱼ Wᵢⱼ (Qᵢⱼ − PᵢΦPⱼ)] Φ.
//!
//! pbkrtest forms the n×n V⁻¹ (O(n³)); here no n×n matrix exists. With the prior weights absorbed
//! into Z and X (so that σ²'s G is the identity), A = ZᵀWZ, M = ΛᵀAΛ + I and T = ΛM⁻¹Λᵀ,
//! Woodbury gives V⁻¹ = σ⁻²(I − ZTZᵀ), hence
//!
//!   ZᵀV⁻¹Z = σ⁻²(A − ATA),   ZᵀV⁻¹X = σ⁻²(ZᵀX − ATZᵀX),   tr V⁻² = σ⁻⁴(n − 2 tr TA + tr (TA)²),
//!
//! and every trace above is a contraction of q×q matrices (q random effects): O(q³) time for M⁻¹,
//! O(nnz(A)·q) for the products with the sparse A, O(q²) memory.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::inverse::{inverse, inverse_scratch};
use faer::linalg::matmul::matmul;
use faer::linalg::solvers::DenseSolveCore;
use faer::{Accum, Mat, Par, Side};
use rayon::prelude::*;

use crate::blocks::Dense;
use crate::crossproducts::CrossProducts;
use crate::dense::{
    cholesky_scratch, dense_lower_cholesky, symmetric_eigen, twice_spectral_inverse,
};
use crate::error::{CoreError, Result};
use crate::interrupt::Interrupt;
use crate::lmm::LinearMixedModel;
use crate::terms::RandomEffectsTerm;

/// Above this many random effects the dense q×q matrices (three at the peak) would need more
/// than six gigabytes.
const MAX_RANDOM_EFFECTS: usize = 16_000;
/// Dense work on q×q matrices from this q on runs on all of rayon's threads.
const PARALLEL_DIMENSION: usize = 256;
/// pbkrtest inverts I when its smallest |eigenvalue| exceeds this and takes its Moore–Penrose
/// inverse otherwise (`vcovAdj_internal`'s `condi`).
const SINGULAR_INFORMATION: f64 = 1e-10;
/// MASS::ginv's tolerance: eigenvalues below √ε times the largest count as zero.
const PSEUDO_INVERSE_TOLERANCE: f64 = 1.490_116_119_384_765_6e-8;

/// Kenward and Roger's ingredients at (θ, σ); m covariance parameters (the elements of every
/// term's covariance matrix, lower triangle column by column in θ's order, then σ²).
#[derive(Debug, Clone)]
pub struct KenwardRogerAdjustment {
    /// Φ = (XᵀV⁻¹X)⁻¹, p×p column-major.
    pub beta_covariance: Vec<f64>,
    /// Φ_A, the adjusted covariance of β̂, p×p column-major.
    pub adjusted_beta_covariance: Vec<f64>,
    /// Pᵢ = ∂(XᵀV⁻¹X)/∂γᵢ for i = 1..m, each p×p column-major, one after another.
    pub information_derivatives: Vec<f64>,
    /// W = 2I⁻¹, the asymptotic covariance of the covariance parameters, m×m column-major.
    pub parameter_covariance: Vec<f64>,
    /// The smallest |eigenvalue| of I (W is a pseudo-inverse when it is at most 10⁻¹⁰).
    pub smallest_information_eigenvalue: f64,
}

impl LinearMixedModel {
    /// Kenward and Roger's adjustment at (θ, σ) (the REML estimates, as pbkrtest uses them).
    pub fn kenward_roger_adjustment(
        &mut self,
        theta: &[f64],
        sigma: f64,
        interrupt: &Interrupt,
    ) -> Result<KenwardRogerAdjustment> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(CoreError::InvalidInput(format!(
                "sigma must be positive and finite, not {sigma}"
            )));
        }
        let structure = self.structure_at(theta)?;
        adjustment(
            structure.terms,
            structure.cross,
            structure.lambdas,
            sigma,
            interrupt,
        )
    }
}

/// One covariance parameter: element (row, col), row ≥ col, of a term's covariance matrix, or σ².
#[derive(Debug, Clone, Copy)]
enum Parameter {
    Element { term: usize, row: usize, col: usize },
    Residual,
}

impl Parameter {
    /// Eᵢ = weight · Σ_levels (e_row e_colᵀ + e_col e_rowᵀ): ½ on the diagonal, 1 off it.
    fn weight(self) -> f64 {
        match self {
            Self::Element { row, col, .. } if row == col => 0.5,
            _ => 1.0,
        }
    }
}

fn parameters(terms: &[RandomEffectsTerm]) -> Vec<Parameter> {
    let mut parameters = Vec::new();
    for (term, t) in terms.iter().enumerate() {
        for col in 0..t.k {
            for row in col..t.k {
                parameters.push(Parameter::Element { term, row, col });
            }
        }
    }
    parameters.push(Parameter::Residual);
    parameters
}

/// A = ZᵀWZ with both triangles, compressed by column (rows ascending within a column).
struct SparseGram {
    col_ptr: Vec<usize>,
    rows: Vec<usize>,
    values: Vec<f64>,
}

impl SparseGram {
    fn new(cross: &CrossProducts, offsets: &[usize], q: usize) -> Self {
        let mut columns: Vec<Vec<(usize, f64)>> = vec![Vec::new(); q];
        for (s, block) in cross.diagonal.iter().enumerate() {
            let k = block.k;
            for level in 0..block.n_levels {
                let tile = block.tile(level);
                let base = offsets[s] + level * k;
                for c in 0..k {
                    for r in 0..k {
                        columns[base + c].push((base + r, tile[r + c * k]));
                    }
                }
            }
        }
        for (i, row_blocks) in cross.off_diagonal.iter().enumerate() {
            for (j, block) in row_blocks.iter().enumerate() {
                let (k_row, k_col) = (block.k_row, block.k_col);
                for b in 0..block.n_col_levels {
                    for (tile_index, a) in block.column(b) {
                        let tile = block.tile(tile_index);
                        for c in 0..k_col {
                            for r in 0..k_row {
                                let (row, col) =
                                    (offsets[i] + a * k_row + r, offsets[j] + b * k_col + c);
                                let value = tile[r + c * k_row];
                                columns[col].push((row, value));
                                columns[row].push((col, value));
                            }
                        }
                    }
                }
            }
        }
        let mut col_ptr = Vec::with_capacity(q + 1);
        col_ptr.push(0);
        let nnz = columns.iter().map(Vec::len).sum();
        let (mut rows, mut values) = (Vec::with_capacity(nnz), Vec::with_capacity(nnz));
        for mut column in columns {
            column.sort_unstable_by_key(|&(row, _)| row);
            for (row, value) in column {
                rows.push(row);
                values.push(value);
            }
            col_ptr.push(rows.len());
        }
        Self {
            col_ptr,
            rows,
            values,
        }
    }

    fn dimension(&self) -> usize {
        self.col_ptr.len() - 1
    }

    fn column(&self, j: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let range = self.col_ptr[j]..self.col_ptr[j + 1];
        self.rows[range.clone()]
            .iter()
            .copied()
            .zip(self.values[range].iter().copied())
    }

    fn to_dense(&self) -> Dense {
        let q = self.dimension();
        let mut dense = Dense::zeros(q, q);
        for j in 0..q {
            for (i, value) in self.column(j) {
                dense.values[i + j * q] = value;
            }
        }
        dense
    }

    /// `out = A x` for one dense column.
    fn times_column(&self, x: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for (j, &x_j) in x.iter().enumerate() {
            if x_j != 0.0 {
                for (i, value) in self.column(j) {
                    out[i] += value * x_j;
                }
            }
        }
    }

    /// A · `matrix` (q × c), column by column.
    fn times(&self, matrix: &Dense, par: Par) -> Dense {
        let q = self.dimension();
        let mut out = Dense::zeros(q, matrix.ncols);
        for_each_chunk(&mut out.values, q, par, |j, out_column| {
            self.times_column(&matrix.values[j * q..(j + 1) * q], out_column)
        });
        out
    }

    /// `matrix` (q × q) · A, column by column: column j is Σᵢ matrix[:, i] A[i, j].
    fn left_multiplied_by(&self, matrix: &Dense, par: Par) -> Dense {
        let q = self.dimension();
        let mut out = Dense::zeros(q, q);
        for_each_chunk(&mut out.values, q, par, |j, out_column| {
            for (i, value) in self.column(j) {
                let source = &matrix.values[i * q..(i + 1) * q];
                for (o, s) in out_column.iter_mut().zip(source) {
                    *o += value * s;
                }
            }
        });
        out
    }
}

/// Λ, block-diagonal with every term's λ repeated over its levels.
struct BlockDiagonalFactor<'a> {
    terms: &'a [RandomEffectsTerm],
    lambdas: &'a [Vec<f64>],
    offsets: &'a [usize],
}

/// Entry (r, c) of λ or of λᵀ (k×k column-major).
fn factor_entry(lambda: &[f64], k: usize, r: usize, c: usize, transpose: bool) -> f64 {
    if transpose {
        lambda[c + r * k]
    } else {
        lambda[r + c * k]
    }
}

impl BlockDiagonalFactor<'_> {
    /// `column ← Λ column` (or Λᵀ), tile by tile.
    fn left_multiply_column(&self, column: &mut [f64], transpose: bool) {
        for ((term, lambda), &offset) in self.terms.iter().zip(self.lambdas).zip(self.offsets) {
            let k = term.k;
            let rows = &mut column[offset..offset + term.n_columns()];
            if k == 1 {
                rows.iter_mut().for_each(|v| *v *= lambda[0]);
                continue;
            }
            let mut buffer = vec![0.0; k];
            for level in rows.chunks_exact_mut(k) {
                buffer.copy_from_slice(level);
                for (r, value) in level.iter_mut().enumerate() {
                    *value = (0..k)
                        .map(|c| factor_entry(lambda, k, r, c, transpose) * buffer[c])
                        .sum();
                }
            }
        }
    }

    /// `matrix ← Λ matrix` (or Λᵀ matrix).
    fn left_multiply(&self, matrix: &mut Dense, transpose: bool, par: Par) {
        let q = matrix.nrows;
        for_each_chunk(&mut matrix.values, q, par, |_, column| {
            self.left_multiply_column(column, transpose)
        });
    }

    /// `matrix ← matrix Λ` (or matrix Λᵀ): each level's k columns mix.
    fn right_multiply(&self, matrix: &mut Dense, transpose: bool, par: Par) {
        let q = matrix.nrows;
        for ((term, lambda), &offset) in self.terms.iter().zip(self.lambdas).zip(self.offsets) {
            let k = term.k;
            let columns = &mut matrix.values[offset * q..(offset + term.n_columns()) * q];
            if k == 1 {
                columns.iter_mut().for_each(|v| *v *= lambda[0]);
                continue;
            }
            for_each_chunk(columns, k * q, par, |_, level| {
                let original = level.to_vec();
                for c in 0..k {
                    let out = &mut level[c * q..(c + 1) * q];
                    out.fill(0.0);
                    for r in 0..k {
                        let entry = factor_entry(lambda, k, r, c, transpose);
                        if entry != 0.0 {
                            for (o, s) in out.iter_mut().zip(&original[r * q..(r + 1) * q]) {
                                *o += entry * s;
                            }
                        }
                    }
                }
            });
        }
    }
}

/// `work(index, chunk)` on each `size`-long chunk of `values`, on rayon's threads unless `par` is
/// sequential; every chunk is written by one call, so the result does not depend on the threads.
fn for_each_chunk(
    values: &mut [f64],
    size: usize,
    par: Par,
    work: impl Fn(usize, &mut [f64]) + Sync + Send,
) {
    if matches!(par, Par::Seq) {
        values
            .chunks_mut(size)
            .enumerate()
            .for_each(|(index, chunk)| work(index, chunk));
    } else {
        values
            .par_chunks_mut(size)
            .enumerate()
            .for_each(|(index, chunk)| work(index, chunk));
    }
}

/// Copy the lower triangle of a square matrix into its upper triangle.
fn symmetrize_from_lower(matrix: &mut Dense) {
    let q = matrix.nrows;
    for j in 0..q {
        for i in j + 1..q {
            matrix.values[j + i * q] = matrix.values[i + j * q];
        }
    }
}

fn product(a: &Dense, b: &Dense, par: Par) -> Dense {
    let mut out = Dense::zeros(a.nrows, b.ncols);
    matmul(
        out.as_mut(),
        Accum::Replace,
        a.as_ref(),
        b.as_ref(),
        1.0,
        par,
    );
    out
}

/// aᵀ b for two matrices with the same rows, as a faer matrix.
fn cross_product(a: &Dense, b: &Dense) -> Mat<f64> {
    let mut out = Mat::zeros(a.ncols, b.ncols);
    matmul(
        out.as_mut(),
        Accum::Replace,
        a.as_ref().transpose(),
        b.as_ref(),
        1.0,
        Par::Seq,
    );
    out
}

fn column_major(matrix: &Mat<f64>) -> impl Iterator<Item = f64> + '_ {
    (0..matrix.ncols()).flat_map(move |j| (0..matrix.nrows()).map(move |i| matrix[(i, j)]))
}

fn trace_of_product(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    (0..a.nrows())
        .map(|i| (0..a.ncols()).map(|j| a[(i, j)] * b[(j, i)]).sum::<f64>())
        .sum()
}

/// Eᵢ F restricted to the rows of parameter i's term (F q×p): row (level, row) gets
/// weight · F[(level, col)] and row (level, col) gets weight · F[(level, row)].
fn element_rows(
    parameter: Parameter,
    terms: &[RandomEffectsTerm],
    offsets: &[usize],
    f: &Dense,
) -> Dense {
    let Parameter::Element { term, row, col } = parameter else {
        unreachable!("σ² has no rows of its own")
    };
    let (k, n_levels, offset) = (terms[term].k, terms[term].n_levels, offsets[term]);
    let weight = parameter.weight();
    let mut out = Dense::zeros(n_levels * k, f.ncols);
    for c in 0..f.ncols {
        for level in 0..n_levels {
            let (at_row, at_col) = (level * k + row, level * k + col);
            out.values[at_row + c * out.nrows] += weight * f.get(offset + at_col, c);
            out.values[at_col + c * out.nrows] += weight * f.get(offset + at_row, c);
        }
    }
    out
}

/// Rows `first..first + count` of `matrix`.
fn rows_of(matrix: &Dense, first: usize, count: usize) -> Dense {
    let mut out = Dense::zeros(count, matrix.ncols);
    for c in 0..matrix.ncols {
        out.values[c * count..(c + 1) * count].copy_from_slice(
            &matrix.values[first + c * matrix.nrows..first + count + c * matrix.nrows],
        );
    }
    out
}

/// tr(C Eᵢ C Eⱼ) for every pair of element parameters of terms s and t (C = ZᵀV⁻¹Z):
/// Σ over level pairs of C[(g,a),(h,d)]·C[(g,b),(h,c)] + C[(g,a),(h,c)]·C[(g,b),(h,d)], times
/// 2 wᵢwⱼ, for i = (a, b) of s and j = (c, d) of t. One parallel task per level of t.
fn element_traces(
    c_matrix: &Dense,
    (s, params_s): (usize, &[(usize, Parameter)]),
    (t, params_t): (usize, &[(usize, Parameter)]),
    terms: &[RandomEffectsTerm],
    offsets: &[usize],
    par: Par,
) -> Vec<f64> {
    let q = c_matrix.nrows;
    let (k_s, k_t) = (terms[s].k, terms[t].k);
    let n_s = params_s.len();
    let entries = |parameter: Parameter| match parameter {
        Parameter::Element { row, col, .. } => (row, col),
        Parameter::Residual => unreachable!("σ² is not an element"),
    };
    let level_sums = |h: usize| -> Vec<f64> {
        let mut sums = vec![0.0; n_s * params_t.len()];
        for (jj, &(_, pt)) in params_t.iter().enumerate() {
            let (c, d) = entries(pt);
            let column_c = &c_matrix.values[(offsets[t] + h * k_t + c) * q..][..q];
            let column_d = &c_matrix.values[(offsets[t] + h * k_t + d) * q..][..q];
            for (ii, &(_, ps)) in params_s.iter().enumerate() {
                let (a, b) = entries(ps);
                let mut sum = 0.0;
                for g in 0..terms[s].n_levels {
                    let (ga, gb) = (offsets[s] + g * k_s + a, offsets[s] + g * k_s + b);
                    sum += column_d[ga] * column_c[gb] + column_c[ga] * column_d[gb];
                }
                sums[ii + jj * n_s] = sum;
            }
        }
        sums
    };
    let per_level: Vec<Vec<f64>> = if matches!(par, Par::Seq) {
        (0..terms[t].n_levels).map(level_sums).collect()
    } else {
        (0..terms[t].n_levels)
            .into_par_iter()
            .map(level_sums)
            .collect()
    };
    let mut totals = vec![0.0; n_s * params_t.len()];
    for sums in per_level {
        for (total, value) in totals.iter_mut().zip(sums) {
            *total += value;
        }
    }
    for (jj, &(_, pt)) in params_t.iter().enumerate() {
        for (ii, &(_, ps)) in params_s.iter().enumerate() {
            totals[ii + jj * n_s] *= 2.0 * ps.weight() * pt.weight();
        }
    }
    totals
}

/// 2 × the inverse of the symmetric m×m `information`, or 2 × its Moore–Penrose inverse when its
/// smallest |eigenvalue| is at most [`SINGULAR_INFORMATION`]; and that eigenvalue.
fn parameter_covariance(information: &Mat<f64>) -> Result<(Mat<f64>, f64)> {
    let m = information.nrows();
    let (eigenvalues, vectors) = symmetric_eigen(
        &column_major(information).collect::<Vec<_>>(),
        m,
        "the covariance parameters' information",
    )?;
    let smallest = eigenvalues
        .iter()
        .map(|v| v.abs())
        .fold(f64::INFINITY, f64::min);
    let largest = eigenvalues.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let cutoff = if smallest > SINGULAR_INFORMATION {
        0.0
    } else {
        PSEUDO_INVERSE_TOLERANCE * largest
    };
    let covariance = twice_spectral_inverse(&eigenvalues, &vectors, |lambda| lambda.abs() > cutoff);
    Ok((Mat::from_fn(m, m, |i, j| covariance[i + j * m]), smallest))
}

/// The adjustment from the model's θ-free blocks, its λ at θ and σ.
pub(crate) fn adjustment(
    terms: &[RandomEffectsTerm],
    cross: &CrossProducts,
    lambdas: &[Vec<f64>],
    sigma: f64,
    interrupt: &Interrupt,
) -> Result<KenwardRogerAdjustment> {
    let p = cross.n_fixed;
    let sigma2 = sigma * sigma;
    let offsets: Vec<usize> = terms
        .iter()
        .scan(0, |next, t| {
            let offset = *next;
            *next += t.n_columns();
            Some(offset)
        })
        .collect();
    let q: usize = terms.iter().map(|t| t.n_columns()).sum();
    if q > MAX_RANDOM_EFFECTS {
        return Err(CoreError::Specification(format!(
            "Kenward-Roger works on dense {q}×{q} matrices of the random effects, more than the \
             {MAX_RANDOM_EFFECTS} it allows; use Satterthwaite's degrees of freedom"
        )));
    }
    let par = if q >= PARALLEL_DIMENSION {
        Par::rayon(0)
    } else {
        Par::Seq
    };
    let factor = BlockDiagonalFactor {
        terms,
        lambdas,
        offsets: &offsets,
    };
    let gram = SparseGram::new(cross, &offsets, q);
    let mut zx = Dense::zeros(q, p);
    for (s, block) in cross.fixed_random.iter().enumerate() {
        for c in 0..p {
            for j in 0..block.ncols {
                zx.values[offsets[s] + j + c * q] = block.get(c, j);
            }
        }
    }
    let xx = Mat::<f64>::from_fn(p, p, |i, j| cross.fixed_fixed.get(i, j));

    // M = ΛᵀAΛ + I, its Cholesky factor, then T = ΛM⁻¹Λᵀ.
    let mut m = gram.to_dense();
    factor.left_multiply(&mut m, true, par);
    factor.right_multiply(&mut m, false, par);
    for i in 0..q {
        m.values[i + i * q] += 1.0;
    }
    interrupt.check()?;
    dense_lower_cholesky(&mut m, par, MemStack::new(&mut cholesky_scratch(q, par))).map_err(
        |pivot| CoreError::NotPositiveDefinite {
            block: "random-effects".into(),
            pivot,
        },
    )?;
    for j in 0..q {
        m.values[j * q..j * q + j].fill(0.0);
    }
    let mut t_matrix = Dense::zeros(q, q);
    inverse(
        t_matrix.as_mut(),
        m.as_ref(),
        par,
        MemStack::new(&mut MemBuffer::new(inverse_scratch::<f64>(q, par))),
    );
    drop(m);
    symmetrize_from_lower(&mut t_matrix);
    factor.left_multiply(&mut t_matrix, false, par);
    factor.right_multiply(&mut t_matrix, true, par);
    interrupt.check()?;

    // The p-column quantities.
    let t_zx = product(&t_matrix, &zx, par);
    let a_t_zx = gram.times(&t_zx, Par::Seq);
    let mut f = Dense::zeros(q, p);
    for (out, (z, a)) in f
        .values
        .iter_mut()
        .zip(zx.values.iter().zip(&a_t_zx.values))
    {
        *out = (z - a) / sigma2;
    }
    let t_f = product(&t_matrix, &f, par);
    let a_t_f = gram.times(&t_f, Par::Seq);
    // ZᵀV⁻²X = σ⁻²(ZᵀV⁻¹X − ATZᵀV⁻¹X)
    let mut z_v2_x = Dense::zeros(q, p);
    for (out, (f_value, a)) in z_v2_x
        .values
        .iter_mut()
        .zip(f.values.iter().zip(&a_t_f.values))
    {
        *out = (f_value - a) / sigma2;
    }
    let x_v1_x = (&xx - cross_product(&zx, &t_zx)) / sigma2;
    let x_v2_x = (&x_v1_x - cross_product(&f, &t_zx)) / sigma2;
    let x_v3_x = (&x_v2_x - cross_product(&f, &t_f)) / sigma2;
    let phi = x_v1_x
        .llt(Side::Lower)
        .map_err(|_| {
            CoreError::Specification(
                "XᵀV⁻¹X is not positive definite: the fixed effects are not estimable".into(),
            )
        })?
        .inverse();

    // G = TA and AG = ATA (symmetric); T is not needed after G.
    let g_matrix = gram.left_multiplied_by(&t_matrix, par);
    drop(t_matrix);
    interrupt.check()?;
    let mut c_matrix = gram.times(&g_matrix, par);
    interrupt.check()?;
    let trace_g: f64 = (0..q).map(|i| g_matrix.values[i + i * q]).sum();
    let trace_g2: f64 = (0..q)
        .map(|j| {
            (0..q)
                .map(|i| g_matrix.values[i + j * q] * g_matrix.values[j + i * q])
                .sum::<f64>()
        })
        .sum();
    // The diagonal tiles of ZᵀV⁻²Z = σ⁻⁴(A − 2AG + AG·G): tile entry (u, v) of AG·G is
    // (column u of AG)·(column v of G), AG being symmetric.
    let sigma4 = sigma2 * sigma2;
    let z_v2_z_tile = |term: usize, level: usize, r: usize, c: usize| -> f64 {
        let k = terms[term].k;
        let (u, v) = (offsets[term] + level * k + r, offsets[term] + level * k + c);
        let ag_u = &c_matrix.values[u * q..(u + 1) * q];
        let g_v = &g_matrix.values[v * q..(v + 1) * q];
        let agg: f64 = ag_u.iter().zip(g_v).map(|(a, b)| a * b).sum();
        let a_uv = gram
            .column(v)
            .find(|&(i, _)| i == u)
            .map_or(0.0, |(_, value)| value);
        (a_uv - 2.0 * ag_u[v] + agg) / sigma4
    };

    let parameters = parameters(terms);
    let n_parameters = parameters.len();
    let residual = n_parameters - 1;
    let mut traces = Mat::<f64>::zeros(n_parameters, n_parameters);
    for (i, &parameter) in parameters[..residual].iter().enumerate() {
        let Parameter::Element { term, row, col } = parameter else {
            unreachable!()
        };
        let sum: f64 = (0..terms[term].n_levels)
            .map(|level| z_v2_z_tile(term, level, row, col))
            .sum();
        traces[(i, residual)] = 2.0 * parameter.weight() * sum;
        traces[(residual, i)] = traces[(i, residual)];
    }
    traces[(residual, residual)] = (cross.n_informative as f64 - 2.0 * trace_g + trace_g2) / sigma4;
    drop(g_matrix);

    // C = ZᵀV⁻¹Z = σ⁻²(A − AG), in place.
    for value in c_matrix.values.iter_mut() {
        *value = -*value / sigma2;
    }
    for j in 0..q {
        for (i, value) in gram.column(j) {
            c_matrix.values[i + j * q] += value / sigma2;
        }
    }
    interrupt.check()?;
    let by_term: Vec<Vec<(usize, Parameter)>> = (0..terms.len())
        .map(|s| {
            parameters
                .iter()
                .enumerate()
                .filter(|(_, parameter)| matches!(parameter, Parameter::Element { term, .. } if *term == s))
                .map(|(i, &parameter)| (i, parameter))
                .collect()
        })
        .collect();
    for s in 0..terms.len() {
        for t in s..terms.len() {
            let values = element_traces(
                &c_matrix,
                (s, &by_term[s]),
                (t, &by_term[t]),
                terms,
                &offsets,
                par,
            );
            let n_s = by_term[s].len();
            for (jj, &(j, _)) in by_term[t].iter().enumerate() {
                for (ii, &(i, _)) in by_term[s].iter().enumerate() {
                    traces[(i, j)] = values[ii + jj * n_s];
                    traces[(j, i)] = values[ii + jj * n_s];
                }
            }
        }
    }
    interrupt.check()?;

    // Pᵢ and Qᵢⱼ. Eᵢ F lives on term s's rows; C Eⱼ F = C[:, term t] (Eⱼ F).
    let term_rows = |term: usize| (offsets[term], terms[term].n_columns());
    let element_f: Vec<Option<Dense>> = parameters
        .iter()
        .map(|&parameter| match parameter {
            Parameter::Element { .. } => Some(element_rows(parameter, terms, &offsets, &f)),
            Parameter::Residual => None,
        })
        .collect();
    let c_element_f: Vec<Option<Dense>> = parameters
        .iter()
        .zip(&element_f)
        .map(|(&parameter, rows)| {
            let (Parameter::Element { term, .. }, Some(rows)) = (parameter, rows) else {
                return None;
            };
            let (first, count) = term_rows(term);
            let columns = Dense {
                nrows: q,
                ncols: count,
                values: c_matrix.values[first * q..(first + count) * q].to_vec(),
            };
            Some(product(&columns, rows, Par::Seq))
        })
        .collect();
    let mut p_matrices = Vec::with_capacity(n_parameters);
    for (&parameter, rows) in parameters.iter().zip(&element_f) {
        p_matrices.push(match (parameter, rows) {
            (Parameter::Element { term, .. }, Some(rows)) => {
                let (first, count) = term_rows(term);
                -cross_product(&rows_of(&f, first, count), rows)
            }
            _ => -&x_v2_x,
        });
    }
    // Qᵢⱼ for i ≤ j (σ², last, never comes first); Qⱼᵢ = Qᵢⱼᵀ.
    let q_matrix = |i: usize, j: usize| -> Mat<f64> {
        match (parameters[i], parameters[j]) {
            (Parameter::Element { term, .. }, Parameter::Element { .. }) => {
                let (first, count) = term_rows(term);
                let c_ej_f = c_element_f[j].as_ref().expect("an element");
                cross_product(
                    element_f[i].as_ref().expect("an element"),
                    &rows_of(c_ej_f, first, count),
                )
            }
            (Parameter::Element { term, .. }, Parameter::Residual) => {
                let (first, count) = term_rows(term);
                cross_product(
                    element_f[i].as_ref().expect("an element"),
                    &rows_of(&z_v2_x, first, count),
                )
            }
            (Parameter::Residual, Parameter::Element { .. }) => {
                unreachable!("σ² is the last parameter")
            }
            (Parameter::Residual, Parameter::Residual) => x_v3_x.clone(),
        }
    };

    // I, W, then Φ_A = Φ + 2Φ [Σᵢⱼ Wᵢⱼ (Qᵢⱼ − PᵢΦPⱼ)] Φ.
    let mut q_matrices = vec![vec![Mat::<f64>::zeros(p, p); n_parameters]; n_parameters];
    for (i, j) in (0..n_parameters).flat_map(|i| (i..n_parameters).map(move |j| (i, j))) {
        let q = q_matrix(i, j);
        q_matrices[j][i] = q.transpose().to_owned();
        q_matrices[i][j] = q;
    }
    let phi_p: Vec<Mat<f64>> = p_matrices.iter().map(|p_i| &phi * p_i).collect();
    let mut information = Mat::<f64>::zeros(n_parameters, n_parameters);
    for i in 0..n_parameters {
        for j in i..n_parameters {
            information[(i, j)] = traces[(i, j)] - 2.0 * trace_of_product(&phi, &q_matrices[i][j])
                + trace_of_product(&phi_p[i], &phi_p[j]);
            information[(j, i)] = information[(i, j)];
        }
    }
    let (w, smallest) = parameter_covariance(&information)?;
    let mut u = Mat::<f64>::zeros(p, p);
    for i in 0..n_parameters {
        for j in 0..n_parameters {
            u += w[(i, j)] * (&q_matrices[i][j] - &p_matrices[i] * &phi_p[j]);
        }
    }
    let adjusted = &phi + 2.0 * (&phi * &u * &phi);
    // Symmetric in exact arithmetic; make it so in floating point.
    let adjusted = Mat::<f64>::from_fn(p, p, |i, j| 0.5 * (adjusted[(i, j)] + adjusted[(j, i)]));
    Ok(KenwardRogerAdjustment {
        beta_covariance: column_major(&phi).collect(),
        adjusted_beta_covariance: column_major(&adjusted).collect(),
        information_derivatives: p_matrices.iter().flat_map(column_major).collect(),
        parameter_covariance: column_major(&w).collect(),
        smallest_information_eigenvalue: smallest,
    })
}
