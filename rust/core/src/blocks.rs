//! Block kinds of the augmented system (MixedModels.jl's blocked Cholesky): the random-effects part
//! is made of k×k *tiles*, one per level (pair). A term's own block is tile-diagonal; the block
//! between two terms is tile-sparse (a tile wherever two levels share an observation); fill-in
//! blocks are dense (faer matrices). Small tile kernels live here too: k is 1–4 in practice, so
//! plain loops beat calling a BLAS; so do the dense kernels, which hand large blocks to faer.

use faer::dyn_stack::MemStack;
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, LltError, LltRegularization};
use faer::linalg::matmul::triangular::{matmul as triangular_matmul, BlockStructure};
use faer::{Accum, MatMut, MatRef, Par};

/// Multiply-adds below which a dense kernel runs as plain loops: a call into faer costs about a
/// microsecond of dispatch, more than the arithmetic of a small model's blocks (sleepstudy's
/// fixed-effects rows are 3 × 36, Penicillin's second diagonal block 6 × 6).
const SMALL_DENSE_WORK: usize = 4096;

/// A dense column-major matrix whose column stride is its row count, so tile kernels and faer
/// views can share it.
#[derive(Debug, Clone)]
pub struct Dense {
    pub nrows: usize,
    pub ncols: usize,
    pub values: Vec<f64>,
}

impl Dense {
    pub fn zeros(nrows: usize, ncols: usize) -> Self {
        Self {
            nrows,
            ncols,
            values: vec![0.0; nrows * ncols],
        }
    }

    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.values[row + col * self.nrows]
    }

    pub fn as_ref(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.values, self.nrows, self.ncols)
    }

    pub fn as_mut(&mut self) -> MatMut<'_, f64> {
        MatMut::from_column_major_slice_mut(&mut self.values, self.nrows, self.ncols)
    }

    /// Columns `first..` as a mutable column-major slice (column stride `nrows`).
    pub fn columns_from_mut(&mut self, first: usize) -> &mut [f64] {
        &mut self.values[first * self.nrows..]
    }

    pub fn columns_from(&self, first: usize) -> &[f64] {
        &self.values[first * self.nrows..]
    }
}

/// In-place Cholesky factor of a square dense block's lower triangle (the strict upper triangle is
/// not read); `Err(index)` names the first non-positive pivot.
pub fn dense_lower_cholesky(
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
pub fn subtract_lower_gram(target: &mut Dense, block: MatRef<'_, f64>, par: Par) {
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

/// `n_levels` k×k tiles along the diagonal; tile `a` is `values[a*k*k ..]`, column-major.
#[derive(Debug, Clone)]
pub struct TileDiagonal {
    pub k: usize,
    pub n_levels: usize,
    pub values: Vec<f64>,
}

impl TileDiagonal {
    pub fn zeros(k: usize, n_levels: usize) -> Self {
        Self {
            k,
            n_levels,
            values: vec![0.0; k * k * n_levels],
        }
    }

    pub fn tile(&self, level: usize) -> &[f64] {
        let size = self.k * self.k;
        &self.values[level * size..(level + 1) * size]
    }

    pub fn tile_mut(&mut self, level: usize) -> &mut [f64] {
        let size = self.k * self.k;
        &mut self.values[level * size..(level + 1) * size]
    }
}

/// A block-sparse matrix of `k_row × k_col` tiles in compressed-column form: the tiles of tile
/// column `b` are `col_ptr[b] .. col_ptr[b+1]`, with tile rows `row_level[..]` sorted ascending.
#[derive(Debug, Clone)]
pub struct TileSparse {
    pub k_row: usize,
    pub k_col: usize,
    pub n_row_levels: usize,
    pub n_col_levels: usize,
    pub col_ptr: Vec<usize>,
    pub row_level: Vec<usize>,
    pub values: Vec<f64>,
}

impl TileSparse {
    /// The pattern of Zᵢᵀ Zⱼ for row factor codes `row_codes` and column factor codes `col_codes`
    /// (one tile per distinct level pair), with zero values, plus the tile of every observation.
    pub fn pattern_from_codes(
        row_codes: &[u32],
        n_row_levels: usize,
        k_row: usize,
        col_codes: &[u32],
        n_col_levels: usize,
        k_col: usize,
    ) -> (Self, Vec<u32>) {
        let n = row_codes.len();
        // Counting sort of observations by column level: O(n), no comparison sort over n.
        let mut col_start = vec![0usize; n_col_levels + 1];
        for &b in col_codes {
            col_start[b as usize + 1] += 1;
        }
        for b in 0..n_col_levels {
            col_start[b + 1] += col_start[b];
        }
        let mut next = col_start.clone();
        let mut by_column = vec![0u32; n];
        for (obs, &b) in col_codes.iter().enumerate() {
            by_column[next[b as usize]] = obs as u32;
            next[b as usize] += 1;
        }

        let mut col_ptr = Vec::with_capacity(n_col_levels + 1);
        col_ptr.push(0);
        let mut row_level = Vec::new();
        let mut obs_tile = vec![0u32; n];
        // Position of a row level's tile within the current column (usize::MAX: absent).
        let mut slot = vec![usize::MAX; n_row_levels];
        let mut rows_here: Vec<usize> = Vec::new();
        for b in 0..n_col_levels {
            let observations = &by_column[col_start[b]..col_start[b + 1]];
            rows_here.clear();
            for &obs in observations {
                let a = row_codes[obs as usize] as usize;
                if slot[a] == usize::MAX {
                    slot[a] = 0;
                    rows_here.push(a);
                }
            }
            rows_here.sort_unstable();
            let first = row_level.len();
            for (offset, &a) in rows_here.iter().enumerate() {
                slot[a] = first + offset;
                row_level.push(a);
            }
            for &obs in observations {
                obs_tile[obs as usize] = slot[row_codes[obs as usize] as usize] as u32;
            }
            for &a in &rows_here {
                slot[a] = usize::MAX;
            }
            col_ptr.push(row_level.len());
        }
        let values = vec![0.0; row_level.len() * k_row * k_col];
        (
            Self {
                k_row,
                k_col,
                n_row_levels,
                n_col_levels,
                col_ptr,
                row_level,
                values,
            },
            obs_tile,
        )
    }

    pub fn tile_size(&self) -> usize {
        self.k_row * self.k_col
    }

    pub fn n_tiles(&self) -> usize {
        self.row_level.len()
    }

    pub fn tile(&self, index: usize) -> &[f64] {
        let size = self.tile_size();
        &self.values[index * size..(index + 1) * size]
    }

    /// Tiles of column `b`: (tile index, row level).
    pub fn column(&self, b: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (self.col_ptr[b]..self.col_ptr[b + 1]).map(move |t| (t, self.row_level[t]))
    }

    /// The tiles listed by tile row, for products computed one target column at a time.
    pub fn row_index(&self) -> RowIndex {
        let mut row_ptr = vec![0usize; self.n_row_levels + 1];
        for &a in &self.row_level {
            row_ptr[a + 1] += 1;
        }
        for a in 0..self.n_row_levels {
            row_ptr[a + 1] += row_ptr[a];
        }
        let mut next = row_ptr.clone();
        let mut tiles = vec![0usize; self.n_tiles()];
        let mut cols = vec![0usize; self.n_tiles()];
        for b in 0..self.n_col_levels {
            for (t, a) in self.column(b) {
                tiles[next[a]] = t;
                cols[next[a]] = b;
                next[a] += 1;
            }
        }
        RowIndex {
            row_ptr,
            tiles,
            cols,
        }
    }

    /// True when no tile column holds more than one tile (the row factor is nested in the
    /// column factor's levels), so products `M Mᵀ` stay tile-diagonal.
    pub fn at_most_one_tile_per_column(&self) -> bool {
        self.col_ptr.windows(2).all(|w| w[1] - w[0] <= 1)
    }
}

/// A [`TileSparse`] pattern by tile row: row level `a`'s tiles are `tiles[row_ptr[a]..row_ptr[a+1]]`
/// (indices into the block's tiles), in increasing tile column, which is `cols[..]`.
#[derive(Debug, Clone)]
pub struct RowIndex {
    pub row_ptr: Vec<usize>,
    pub tiles: Vec<usize>,
    pub cols: Vec<usize>,
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
pub fn tile_cholesky(tile: &mut [f64], k: usize) -> Result<(), usize> {
    for j in 0..k {
        let mut diagonal = tile[j + j * k];
        for c in 0..j {
            diagonal -= tile[j + c * k] * tile[j + c * k];
        }
        if !(diagonal > 0.0) {
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
pub fn right_solve_lower_transpose(
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
pub fn subtract_product_transpose(
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
pub fn scale_tile(
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
pub fn right_multiply_lower(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_counts_distinct_level_pairs() {
        // rows: factor with 3 levels, columns: factor with 2 levels.
        let row_codes = [0, 1, 0, 2, 2, 1];
        let col_codes = [0, 0, 0, 1, 1, 1];
        let (pattern, obs_tile) =
            TileSparse::pattern_from_codes(&row_codes, 3, 1, &col_codes, 2, 1);
        assert_eq!(pattern.col_ptr, vec![0, 2, 4]);
        assert_eq!(pattern.row_level, vec![0, 1, 1, 2]);
        assert_eq!(obs_tile, vec![0, 1, 0, 3, 3, 2]);
        assert!(!pattern.at_most_one_tile_per_column());
        // By row: level 0 has tile 0 (column 0); level 1 tiles 1, 2 (columns 0, 1); level 2 tile 3.
        let by_row = pattern.row_index();
        assert_eq!(by_row.row_ptr, vec![0, 1, 3, 4]);
        assert_eq!(by_row.tiles, vec![0, 1, 2, 3]);
        assert_eq!(by_row.cols, vec![0, 0, 1, 1]);
    }

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
            let mut scratch = faer::dyn_stack::MemBuffer::new(
                faer::linalg::cholesky::llt::factor::cholesky_in_place_scratch::<f64>(
                    n,
                    Par::Seq,
                    Default::default(),
                ),
            );
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
}
