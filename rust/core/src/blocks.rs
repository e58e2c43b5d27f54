//! Block kinds of the augmented system (MixedModels.jl's blocked Cholesky): the random-effects part
//! is made of k×k *tiles*, one per level (pair). A term's own block is tile-diagonal; the block
//! between two terms is tile-sparse (a tile wherever two levels share an observation); fill-in
//! blocks are dense (faer matrices). Small tile kernels live here too: k is 1–4 in practice, so
//! plain loops beat calling a BLAS.

use faer::{MatMut, MatRef};

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

/// In-place Cholesky of a k×k column-major tile (lower triangle used and written; the strict
/// upper triangle is zeroed). Err(pivot) for a non-positive pivot.
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
}
