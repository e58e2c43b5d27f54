//! Block kinds of the augmented system (MixedModels.jl's blocked Cholesky): the random-effects part
//! is made of k×k *tiles*, one per level (pair). A term's own block is tile-diagonal; the block
//! between two terms is tile-sparse (a tile wherever two levels share an observation); fill-in
//! blocks are dense (faer matrices). The kernels working on them are in [`crate::dense`].

use faer::{MatMut, MatRef};

/// A dense column-major matrix whose column stride is its row count, so tile kernels and faer
/// views can share it.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub nrows: usize,
    pub ncols: usize,
    pub values: Vec<f64>,
}

impl Dense {
    pub(crate) fn zeros(nrows: usize, ncols: usize) -> Self {
        Self {
            nrows,
            ncols,
            values: vec![0.0; nrows * ncols],
        }
    }

    pub(crate) fn get(&self, row: usize, col: usize) -> f64 {
        self.values[row + col * self.nrows]
    }

    pub(crate) fn as_ref(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.values, self.nrows, self.ncols)
    }

    pub(crate) fn as_mut(&mut self) -> MatMut<'_, f64> {
        MatMut::from_column_major_slice_mut(&mut self.values, self.nrows, self.ncols)
    }

    /// Columns `first..` as a mutable column-major slice (column stride `nrows`).
    pub(crate) fn columns_from_mut(&mut self, first: usize) -> &mut [f64] {
        &mut self.values[first * self.nrows..]
    }

    pub(crate) fn columns_from(&self, first: usize) -> &[f64] {
        &self.values[first * self.nrows..]
    }
}

/// `n_levels` k×k tiles along the diagonal; tile `a` is `values[a*k*k ..]`, column-major.
#[derive(Debug, Clone)]
pub(crate) struct TileDiagonal {
    pub k: usize,
    pub n_levels: usize,
    pub values: Vec<f64>,
}

impl TileDiagonal {
    pub(crate) fn zeros(k: usize, n_levels: usize) -> Self {
        Self {
            k,
            n_levels,
            values: vec![0.0; k * k * n_levels],
        }
    }

    pub(crate) fn tile(&self, level: usize) -> &[f64] {
        let size = self.k * self.k;
        &self.values[level * size..(level + 1) * size]
    }

    pub(crate) fn tile_mut(&mut self, level: usize) -> &mut [f64] {
        let size = self.k * self.k;
        &mut self.values[level * size..(level + 1) * size]
    }
}

/// A block-sparse matrix of `k_row × k_col` tiles in compressed-column form: the tiles of tile
/// column `b` are `col_ptr[b] .. col_ptr[b+1]`, with tile rows `row_level[..]` sorted ascending.
#[derive(Debug, Clone)]
pub(crate) struct TileSparse {
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
    pub(crate) fn pattern_from_codes(
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

    pub(crate) fn tile_size(&self) -> usize {
        self.k_row * self.k_col
    }

    pub(crate) fn n_tiles(&self) -> usize {
        self.row_level.len()
    }

    pub(crate) fn tile(&self, index: usize) -> &[f64] {
        let size = self.tile_size();
        &self.values[index * size..(index + 1) * size]
    }

    /// Tiles of column `b`: (tile index, row level).
    pub(crate) fn column(&self, b: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (self.col_ptr[b]..self.col_ptr[b + 1]).map(move |t| (t, self.row_level[t]))
    }

    /// The tiles listed by tile row, for products computed one target column at a time.
    pub(crate) fn row_index(&self) -> RowIndex {
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
    pub(crate) fn at_most_one_tile_per_column(&self) -> bool {
        self.col_ptr.windows(2).all(|w| w[1] - w[0] <= 1)
    }
}

/// A [`TileSparse`] pattern by tile row: row level `a`'s tiles are `tiles[row_ptr[a]..row_ptr[a+1]]`
/// (indices into the block's tiles), in increasing tile column, which is `cols[..]`.
#[derive(Debug, Clone)]
pub(crate) struct RowIndex {
    pub row_ptr: Vec<usize>,
    pub tiles: Vec<usize>,
    pub cols: Vec<usize>,
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
}
