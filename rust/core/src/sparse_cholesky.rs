//! General sparse factor of the scaled augmented system, for structures whose dense fill-in block
//! is too large for [`crate::cholesky::BlockedCholesky`] (many levels in crossed factors, deep
//! nesting with many levels). Same system, different split (DESIGN.md, "Where the speed comes
//! from"):
//!
//!   P (ΛᵀZᵀWZΛ + I) Pᵀ = L_Z L_Zᵀ          sparse supernodal Cholesky, fill-reducing P (AMD)
//!   F = L_Z⁻¹ P ΛᵀZᵀW[X y]                 dense q × (p+1)
//!   [X y]ᵀW[X y] − FᵀF = L_XX L_XXᵀ         dense (p+1) × (p+1): [R_X 0; cᵀ r]
//!
//! The ordering, the symbolic factor and all storage come from one analysis of the tile pattern;
//! an evaluation scales the θ-free tiles of [`CrossProducts`] straight into the permuted matrix,
//! refactors numerically, and never touches the n observations or allocates.

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place_scratch, LltError, LltRegularization};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{matmul as triangular_matmul, BlockStructure};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::linalg::triangular_solve::solve_upper_triangular_in_place;
use faer::perm::PermRef;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::sparse::linalg::cholesky::supernodal::{
    factorize_supernodal_numeric_llt, factorize_supernodal_numeric_llt_scratch, SupernodalLltRef,
    SymbolicSupernodalCholesky,
};
use faer::sparse::linalg::cholesky::{
    factorize_symbolic_cholesky, CholeskySymbolicParams, SymbolicCholesky, SymbolicCholeskyRaw,
    SymmetricOrdering,
};
use faer::sparse::linalg::{amd, SupernodalThreshold};
use faer::sparse::{SparseColMatRef, SymbolicSparseColMat};
use faer::{Accum, Conj, Mat, MatMut, MatRef, Par, Side};

use crate::blocks::{Dense, TileDiagonal};
use crate::crossproducts::CrossProducts;
use crate::dense::scale_tile;
use crate::error::{CoreError, Result};
use crate::fixed_block::FixedEffectsBlock;

/// Supernodes from this dimension on are worth spreading over threads.
const PARALLEL_SUPERNODE_DIMENSION: usize = 256;

pub(crate) struct SparseCholesky {
    ks: Vec<usize>,
    /// First column of each term in the original order, plus q at the end.
    offsets: Vec<usize>,
    /// AMD ordering and supernodal symbolic factor of P (ΛᵀZᵀWZΛ + I) Pᵀ.
    symbolic: SymbolicCholesky<usize>,
    /// The fill-reducing permutation P both ways: `permuted_index[original]` is the row of L_Z an
    /// original column lands on, `original_index[permuted]` the inverse.
    permuted_index: Vec<usize>,
    original_index: Vec<usize>,
    /// Lower triangle of P (ΛᵀZᵀWZΛ + I) Pᵀ, column-compressed, values refilled per θ.
    matrix_pattern: SymbolicSparseColMat<usize>,
    matrix_values: Vec<f64>,
    /// Index into `matrix_values` of every tile entry, in the order of [`for_each_tile`] and
    /// [`tile_entries`].
    tile_positions: Vec<usize>,
    /// L_Z's values, supernode by supernode (faer's supernodal layout).
    factor_values: Vec<f64>,
    /// F = L_Z⁻¹ P ΛᵀZᵀW[X y], q × (p+1), rows in the permuted order.
    fixed_rows: Dense,
    /// L's last block, for the fixed effects and the response.
    pub fixed: FixedEffectsBlock,
    tile_scratch: Vec<f64>,
    scratch: MemBuffer,
    par: Par,
}

/// One k_row × k_col tile of ΛᵀZᵀWZΛ's θ-free part: term and level of its rows and columns.
struct Tile<'a> {
    row_term: usize,
    col_term: usize,
    row_level: usize,
    col_level: usize,
    values: &'a [f64],
}

/// Every tile of the random-effects part of `cross` in the lower triangle, in a fixed order that
/// the symbolic step records positions in and every evaluation scatters in.
fn for_each_tile(cross: &CrossProducts, mut visit: impl FnMut(Tile<'_>)) {
    for (term, block) in cross.diagonal.iter().enumerate() {
        for level in 0..block.n_levels {
            visit(Tile {
                row_term: term,
                col_term: term,
                row_level: level,
                col_level: level,
                values: block.tile(level),
            });
        }
    }
    for (row_term, blocks) in cross.off_diagonal.iter().enumerate() {
        for (col_term, block) in blocks.iter().enumerate() {
            for col_level in 0..block.n_col_levels {
                for (index, row_level) in block.column(col_level) {
                    visit(Tile {
                        row_term,
                        col_term,
                        row_level,
                        col_level,
                        values: block.tile(index),
                    });
                }
            }
        }
    }
}

/// (row, column) within a tile of the entries stored: all of an off-diagonal tile, the lower
/// triangle of a diagonal one.
fn tile_entries(
    k_row: usize,
    k_col: usize,
    on_diagonal: bool,
) -> impl Iterator<Item = (usize, usize)> {
    (0..k_col).flat_map(move |c| ((if on_diagonal { c } else { 0 })..k_row).map(move |r| (r, c)))
}

/// The supernodal factor inside `symbolic`; [`SparseCholesky::new`] accepts no other.
fn supernodal_part(symbolic: &SymbolicCholesky<usize>) -> &SymbolicSupernodalCholesky<usize> {
    match symbolic.raw() {
        SymbolicCholeskyRaw::Supernodal(supernodal) => supernodal,
        SymbolicCholeskyRaw::Simplicial(_) => unreachable!("`new` accepts supernodal factors only"),
    }
}

fn analysis_failed(err: impl std::fmt::Debug) -> CoreError {
    CoreError::Specification(format!(
        "the sparse factorisation could not be set up: {err:?}"
    ))
}

impl SparseCholesky {
    /// Whether factorising uses more than one thread (large supernodes).
    pub(crate) fn is_parallel(&self) -> bool {
        !matches!(self.par, Par::Seq)
    }

    /// Symbolic analysis once: the pattern of ΛᵀZᵀWZΛ + I (every tile taken as full, since λ is
    /// dense lower-triangular), an AMD ordering, the supernodal symbolic factor, and all numeric
    /// storage and scratch.
    pub(crate) fn new(cross: &CrossProducts) -> Result<Self> {
        let ks: Vec<usize> = cross.diagonal.iter().map(|d| d.k).collect();
        let mut offsets = Vec::with_capacity(ks.len() + 1);
        offsets.push(0);
        for block in &cross.diagonal {
            offsets.push(offsets[offsets.len() - 1] + block.k * block.n_levels);
        }
        let q = offsets[ks.len()];
        if q == 0 {
            return Err(CoreError::Specification(
                "a mixed model needs at least one random effect".into(),
            ));
        }
        let p1 = cross.n_fixed + 1;
        // Original (row, column) of every stored entry, in scatter order.
        let mut entries: Vec<(usize, usize)> = Vec::new();
        for_each_tile(cross, |tile| {
            let row_first = offsets[tile.row_term] + tile.row_level * ks[tile.row_term];
            let col_first = offsets[tile.col_term] + tile.col_level * ks[tile.col_term];
            let on_diagonal = tile.row_term == tile.col_term;
            for (r, c) in tile_entries(ks[tile.row_term], ks[tile.col_term], on_diagonal) {
                entries.push((row_first + r, col_first + c));
            }
        });

        let original_pattern = lower_pattern(q, entries.iter().copied());
        // AMD first, then the symbolic factor for that ordering: with a given ordering faer always
        // builds a supernodal factor (one code path for the factor, its solves and the selected
        // inversion; this path only serves structures with heavy fill-in anyway).
        let mut original_index = vec![0usize; q];
        let mut permuted_index = vec![0usize; q];
        let mut ordering_scratch =
            MemBuffer::try_new(amd::order_maybe_unsorted_scratch::<usize>(q, entries.len()))
                .map_err(analysis_failed)?;
        amd::order_maybe_unsorted(
            &mut original_index,
            &mut permuted_index,
            original_pattern.as_ref(),
            amd::Control::default(),
            MemStack::new(&mut ordering_scratch),
        )
        .map_err(analysis_failed)?;
        let symbolic = factorize_symbolic_cholesky(
            original_pattern.as_ref(),
            Side::Lower,
            SymmetricOrdering::Custom(PermRef::new_checked(&original_index, &permuted_index, q)),
            CholeskySymbolicParams {
                supernodal_flop_ratio_threshold: SupernodalThreshold::FORCE_SUPERNODAL,
                ..Default::default()
            },
        )
        .map_err(analysis_failed)?;
        let supernodal = match symbolic.raw() {
            SymbolicCholeskyRaw::Supernodal(supernodal) => supernodal,
            SymbolicCholeskyRaw::Simplicial(_) => {
                return Err(analysis_failed("faer chose a simplicial factor"))
            }
        };

        // The permuted lower triangle: entry (r, c) moves to (max, min) of the new indices.
        let permuted_entries = entries.iter().map(|&(row, col)| {
            let (a, b) = (permuted_index[row], permuted_index[col]);
            (a.max(b), a.min(b))
        });
        let matrix_pattern = lower_pattern(q, permuted_entries.clone());
        let mut next_in_column = matrix_pattern.col_ptr()[..q].to_vec();
        let tile_positions = permuted_entries
            .map(|(_, col)| {
                let position = next_in_column[col];
                next_in_column[col] += 1;
                position
            })
            .collect();

        let largest_supernode = (0..supernodal.n_supernodes())
            .map(|s| {
                supernodal.supernode_end()[s] - supernodal.supernode_begin()[s]
                    + supernodal.supernode(s).pattern().len()
            })
            .max()
            .unwrap_or(0)
            .max(p1);
        let par = if largest_supernode >= PARALLEL_SUPERNODE_DIMENSION {
            Par::rayon(0)
        } else {
            Par::Seq
        };
        let scratch = MemBuffer::try_new(StackReq::any_of(&[
            factorize_supernodal_numeric_llt_scratch::<usize, f64>(
                supernodal,
                par,
                Default::default(),
            ),
            supernodal.solve_in_place_scratch::<f64>(p1, par),
            cholesky_in_place_scratch::<f64>(p1 - 1, par, Default::default()),
        ]))
        .map_err(analysis_failed)?;
        let max_k = ks.iter().copied().max().unwrap_or(1);
        Ok(Self {
            matrix_values: vec![0.0; entries.len()],
            factor_values: vec![0.0; supernodal.len_val()],
            fixed_rows: Dense::zeros(q, p1),
            fixed: FixedEffectsBlock::new(p1 - 1),
            tile_scratch: vec![0.0; 2 * max_k * max_k],
            ks,
            offsets,
            symbolic,
            permuted_index,
            original_index,
            matrix_pattern,
            tile_positions,
            scratch,
            par,
        })
    }

    fn supernodal(&self) -> &SymbolicSupernodalCholesky<usize> {
        supernodal_part(&self.symbolic)
    }

    /// Numeric refactorisation for relative covariance factors `lambdas` (one k×k column-major
    /// lower-triangular λ per term). Allocates nothing.
    pub(crate) fn factorize(&mut self, cross: &CrossProducts, lambdas: &[Vec<f64>]) -> Result<()> {
        if lambdas.len() != self.ks.len()
            || lambdas.iter().zip(&self.ks).any(|(l, &k)| l.len() != k * k)
        {
            return Err(CoreError::InvalidInput(format!(
                "{} relative covariance factors for {} terms of sizes {:?}",
                lambdas.len(),
                self.ks.len(),
                self.ks
            )));
        }
        self.assemble(cross, lambdas);
        let par = self.par;
        let supernodal = supernodal_part(&self.symbolic);
        let stack = MemStack::new(&mut self.scratch);
        let matrix = SparseColMatRef::new(self.matrix_pattern.as_ref(), &self.matrix_values);
        if let Err(LltError::NonPositivePivot { index }) = factorize_supernodal_numeric_llt(
            &mut self.factor_values,
            matrix,
            LltRegularization::default(),
            supernodal,
            par,
            stack,
            Default::default(),
        ) {
            return Err(self.not_positive_definite(index));
        }

        // F = L_Z⁻¹ P ΛᵀZᵀW[X y]: row (level b, column c) of term j is λⱼ's column c against the
        // level's k columns of [X y]ᵀWZⱼ.
        let p1 = self.fixed_rows.ncols;
        for (term, block) in cross.fixed_random.iter().enumerate() {
            let k = self.ks[term];
            let lambda = &lambdas[term];
            for level in 0..block.ncols / k {
                for c in 0..k {
                    let row = self.permuted_index[self.offsets[term] + level * k + c];
                    for col in 0..p1 {
                        self.fixed_rows.values[row + col * self.fixed_rows.nrows] = (c..k)
                            .map(|r| lambda[r + c * k] * block.get(col, level * k + r))
                            .sum();
                    }
                }
            }
        }
        SupernodalLltRef::new(supernodal, &self.factor_values).l_solve_with_conj(
            Conj::No,
            self.fixed_rows.as_mut(),
            par,
            stack,
        );

        self.fixed.factor_schur_complement(
            &cross.fixed_fixed,
            [self.fixed_rows.as_ref().transpose()],
            par,
            stack,
        )
    }

    /// Scale every θ-free tile by its terms' λ and scatter it into the permuted matrix.
    fn assemble(&mut self, cross: &CrossProducts, lambdas: &[Vec<f64>]) {
        let ks = &self.ks;
        let values = &mut self.matrix_values;
        let half = self.tile_scratch.len() / 2;
        let (scratch, scaled) = self.tile_scratch.split_at_mut(half);
        let mut positions = self.tile_positions.iter();
        for_each_tile(cross, |tile| {
            let (k_row, k_col) = (ks[tile.row_term], ks[tile.col_term]);
            let size = k_row * k_col;
            let scaled = &mut scaled[..size];
            scale_tile(
                tile.values,
                &lambdas[tile.row_term],
                k_row,
                &lambdas[tile.col_term],
                k_col,
                &mut scratch[..size],
                scaled,
            );
            let on_diagonal = tile.row_term == tile.col_term;
            for ((r, c), &position) in tile_entries(k_row, k_col, on_diagonal).zip(&mut positions) {
                let identity = if on_diagonal && r == c { 1.0 } else { 0.0 };
                values[position] = scaled[r + c * k_row] + identity;
            }
        });
    }

    /// The error for a non-positive pivot at permuted column `index`, named by term and level.
    fn not_positive_definite(&self, index: usize) -> CoreError {
        let original = self.original_index[index];
        let term = self.offsets.partition_point(|&first| first <= original) - 1;
        let within = original - self.offsets[term];
        CoreError::NotPositiveDefinite {
            block: format!(
                "random-effects term {term}, level {} (sparse factor)",
                within / self.ks[term]
            ),
            pivot: within % self.ks[term],
        }
    }

    /// log |L_Z|², the log-determinant of ΛᵀZᵀWZΛ + I.
    pub(crate) fn log_det_random(&self) -> f64 {
        let factor = SupernodalLltRef::new(self.supernodal(), &self.factor_values);
        (0..self.supernodal().n_supernodes())
            .map(|s| {
                let block = factor.supernode(s).val();
                (0..block.ncols()).map(|c| block[(c, c)].ln()).sum::<f64>()
            })
            .sum::<f64>()
            * 2.0
    }

    /// Spherical random effects u = Pᵀ L_Z⁻ᵀ (F[:, p] − F[:, :p] β), per term, level-major in the
    /// original level order.
    pub(crate) fn solve_random_effects(&self, beta: &[f64]) -> Vec<Vec<f64>> {
        let q = self.fixed_rows.nrows;
        let p = beta.len();
        let mut permuted: Vec<f64> = (0..q)
            .map(|row| {
                self.fixed_rows.get(row, p)
                    - (0..p)
                        .map(|c| self.fixed_rows.get(row, c) * beta[c])
                        .sum::<f64>()
            })
            .collect();
        let supernodal = self.supernodal();
        let mut scratch = MemBuffer::new(supernodal.solve_in_place_scratch::<f64>(1, self.par));
        SupernodalLltRef::new(supernodal, &self.factor_values).l_transpose_solve_with_conj(
            Conj::No,
            MatMut::from_column_major_slice_mut(&mut permuted, q, 1),
            self.par,
            MemStack::new(&mut scratch),
        );
        (0..self.ks.len())
            .map(|term| {
                (self.offsets[term]..self.offsets[term + 1])
                    .map(|original| permuted[self.permuted_index[original]])
                    .collect()
            })
            .collect()
    }

    /// One observation's part of the hat values (see [`crate::leverage`]): a = L_Z⁻¹ P v for v
    /// given by its non-zero `entries` (original column, value); returns ‖a‖² and writes
    /// F[:, :p]ᵀ a (the fixed-effects rows of L times a) into `fixed`. `work` holds q values.
    /// A dense solve, O(nnz(L_Z)) per call.
    pub(crate) fn leverage_parts(
        &self,
        entries: &[(usize, f64)],
        work: &mut [f64],
        fixed: &mut [f64],
        stack: &mut MemStack,
    ) -> f64 {
        work.fill(0.0);
        for &(original, value) in entries {
            work[self.permuted_index[original]] += value;
        }
        let q = work.len();
        SupernodalLltRef::new(self.supernodal(), &self.factor_values).l_solve_with_conj(
            Conj::No,
            MatMut::from_column_major_slice_mut(work, q, 1),
            Par::Seq,
            stack,
        );
        for (m, value) in fixed.iter_mut().enumerate() {
            *value = (0..q).map(|r| self.fixed_rows.get(r, m) * work[r]).sum();
        }
        work.iter().map(|a| a * a).sum()
    }

    /// Scratch for one [`Self::leverage_parts`] call at a time.
    pub(crate) fn leverage_scratch(&self) -> MemBuffer {
        MemBuffer::new(self.supernodal().solve_in_place_scratch::<f64>(1, Par::Seq))
    }

    /// q, the number of random effects.
    pub(crate) fn n_random(&self) -> usize {
        self.fixed_rows.nrows
    }

    /// Diagonal k×k tiles of (L_Z L_Zᵀ)⁻¹ — in the original order, so of (ΛᵀZᵀWZΛ + I)⁻¹ — per
    /// term: σ² λ·tile·λᵀ is a level's conditional covariance (lme4's `condVar`).
    ///
    /// Selected inversion: the entries of Z = (L_Z L_Zᵀ)⁻¹ on L_Z's pattern follow from Z L_Z =
    /// L_Z⁻ᵀ, which is upper triangular (Takahashi, Fagan & Chen 1973; Erisman & Tinney 1975). For
    /// a supernode with columns J and below-diagonal rows R, with Y = L_RJ L_JJ⁻¹,
    ///
    ///   Z_RJ = −Z_RR Y,    Z_JJ = L_JJ⁻ᵀ L_JJ⁻¹ − Yᵀ Z_RJ,
    ///
    /// and Z_RR lies on the pattern of later supernodes (the same closure the factorisation relies
    /// on), so sweeping supernodes backwards fills Z on the whole pattern. Flops: Σ |R|²·|J| +
    /// |R|·|J|² + ⅔|J|³ over supernodes, about twice one numeric factorisation; memory: one more
    /// factor plus a dense |R|×|R| buffer for the largest R.
    pub(crate) fn inverse_diagonal_tiles(&self) -> Vec<TileDiagonal> {
        let par = self.par;
        let supernodal = self.supernodal();
        let n_supernodes = supernodal.n_supernodes();
        let begin = supernodal.supernode_begin();
        let end = supernodal.supernode_end();
        let value_start = supernodal.col_ptr_for_val();
        let q = supernodal.nrows();
        let mut supernode_of = vec![0usize; q];
        for s in 0..n_supernodes {
            supernode_of[begin[s]..end[s]].fill(s);
        }
        let max_cols = (0..n_supernodes)
            .map(|s| end[s] - begin[s])
            .max()
            .unwrap_or(0);
        let max_rows = (0..n_supernodes)
            .map(|s| supernodal.supernode(s).pattern().len())
            .max()
            .unwrap_or(0);
        let mut inverse = vec![0.0; self.factor_values.len()];
        let mut below_below = Mat::<f64>::zeros(max_rows, max_rows);
        let mut below_factor = Mat::<f64>::zeros(max_rows, max_cols);
        let mut diagonal_inverse = Mat::<f64>::zeros(max_cols, max_cols);
        // Local row of a global row within the supernode being gathered from.
        let mut local_row = vec![0usize; q];

        for s in (0..n_supernodes).rev() {
            let n_cols = end[s] - begin[s];
            let pattern = supernodal.supernode(s).pattern();
            let n_below = pattern.len();
            let factor = MatRef::from_column_major_slice(
                &self.factor_values[value_start[s]..value_start[s + 1]],
                n_cols + n_below,
                n_cols,
            );
            let (l_diagonal, l_below) = factor.split_at_row(n_cols);

            let mut y = below_factor.as_mut().submatrix_mut(0, 0, n_below, n_cols);
            y.copy_from(l_below);
            solve_upper_triangular_in_place(
                l_diagonal.transpose(),
                y.rb_mut().transpose_mut(),
                par,
            );

            // Gather Z_RR, column by column; consecutive rows of R share a supernode t.
            let mut z_rr = below_below.as_mut().submatrix_mut(0, 0, n_below, n_below);
            let mut b = 0;
            while b < n_below {
                let t = supernode_of[pattern[b]];
                let t_pattern = supernodal.supernode(t).pattern();
                let t_cols = end[t] - begin[t];
                let t_rows = t_cols + t_pattern.len();
                for (index, &row) in t_pattern.iter().enumerate() {
                    local_row[row] = t_cols + index;
                }
                let t_inverse = &inverse[value_start[t]..value_start[t + 1]];
                while b < n_below && pattern[b] < end[t] {
                    let column = pattern[b] - begin[t];
                    for a in b..n_below {
                        let row = pattern[a];
                        let local = if row < end[t] {
                            row - begin[t]
                        } else {
                            local_row[row]
                        };
                        let value = t_inverse[local + column * t_rows];
                        z_rr[(a, b)] = value;
                        z_rr[(b, a)] = value;
                    }
                    b += 1;
                }
            }

            let mut z = MatMut::from_column_major_slice_mut(
                &mut inverse[value_start[s]..value_start[s + 1]],
                n_cols + n_below,
                n_cols,
            );
            let (mut z_diagonal, mut z_below) = z.rb_mut().split_at_row_mut(n_cols);
            matmul(
                z_below.rb_mut(),
                Accum::Replace,
                z_rr.rb(),
                y.rb(),
                -1.0,
                par,
            );
            // Only the lower triangles of Z's diagonal blocks are ever read.
            let mut l_inverse = diagonal_inverse
                .as_mut()
                .submatrix_mut(0, 0, n_cols, n_cols);
            invert_lower_triangular(l_inverse.rb_mut(), l_diagonal, par);
            triangular_matmul(
                z_diagonal.rb_mut(),
                BlockStructure::TriangularLower,
                Accum::Replace,
                l_inverse.rb().transpose(),
                BlockStructure::TriangularUpper,
                l_inverse.rb(),
                BlockStructure::TriangularLower,
                1.0,
                par,
            );
            triangular_matmul(
                z_diagonal.rb_mut(),
                BlockStructure::TriangularLower,
                Accum::Add,
                y.rb().transpose(),
                BlockStructure::Rectangular,
                z_below.rb(),
                BlockStructure::Rectangular,
                -1.0,
                par,
            );
        }

        // Read each diagonal tile back in the original order.
        let entry = |original_row: usize, original_col: usize| {
            let (a, b) = (
                self.permuted_index[original_row],
                self.permuted_index[original_col],
            );
            let (row, col) = (a.max(b), a.min(b));
            let t = supernode_of[col];
            let t_pattern = supernodal.supernode(t).pattern();
            let t_cols = end[t] - begin[t];
            let local = if row < end[t] {
                row - begin[t]
            } else {
                t_cols
                    + t_pattern
                        .binary_search(&row)
                        .expect("a diagonal tile lies on the factor's pattern")
            };
            inverse[value_start[t] + local + (col - begin[t]) * (t_cols + t_pattern.len())]
        };
        (0..self.ks.len())
            .map(|term| {
                let k = self.ks[term];
                let n_levels = (self.offsets[term + 1] - self.offsets[term]) / k;
                let mut tiles = TileDiagonal::zeros(k, n_levels);
                for level in 0..n_levels {
                    let first = self.offsets[term] + level * k;
                    let tile = tiles.tile_mut(level);
                    for c in 0..k {
                        for r in 0..k {
                            tile[r + c * k] = entry(first + r, first + c);
                        }
                    }
                }
                tiles
            })
            .collect()
    }
}

/// The column-compressed lower-triangle pattern of a q × q matrix from its entries (row ≥ column,
/// no duplicates), rows in the order given within each column.
fn lower_pattern(
    q: usize,
    entries: impl Iterator<Item = (usize, usize)> + Clone,
) -> SymbolicSparseColMat<usize> {
    let mut col_ptr = vec![0usize; q + 1];
    for (_, col) in entries.clone() {
        col_ptr[col + 1] += 1;
    }
    for col in 0..q {
        col_ptr[col + 1] += col_ptr[col];
    }
    let mut next = col_ptr[..q].to_vec();
    let mut row_idx = vec![0usize; col_ptr[q]];
    for (row, col) in entries {
        row_idx[next[col]] = row;
        next[col] += 1;
    }
    SymbolicSparseColMat::new_unsorted_checked(q, q, col_ptr, None, row_idx)
}
