//! Which columns of a fixed-effects model matrix X are linear combinations of earlier ones, by
//! lme4's rule (`lmerControl(check.rankX)`, as R's `lm`): going left to right, a column is kept
//! when the last diagonal entry of R in the QR decomposition of the kept columns and itself
//! exceeds `tolerance × ‖column‖ × √p` in absolute value.
//!
//! R comes from one pass over X as a tall-skinny QR (Demmel, Grigori, Hoemmen and Langou 2012,
//! SIAM J. Sci. Comput. 34(1)): each chunk of rows is reduced to its p × p triangle, then the
//! stacked triangles to one. Because X = QR, X[:, S] = Q R[:, S] for any set S of columns, so the
//! triangle of the kept columns, and every column's norm, follow from R without touching X again.

use faer::MatRef;
use rayon::prelude::*;

/// Rows per chunk: a chunk of a few columns stays in cache while it is reduced. Fixed, so the
/// result does not depend on the number of threads.
const CHUNK_ROWS: usize = 8192;

/// Indices of the columns of `x` that depend on earlier columns (lme4 drops them), in order.
pub fn dependent_columns(x: MatRef<'_, f64>, tolerance: f64) -> Vec<usize> {
    let p = x.ncols();
    if p == 0 {
        return vec![];
    }
    let r = triangular_factor(x);
    let norms: Vec<f64> = (0..p)
        .map(|c| (0..=c).map(|i| r[i + c * p].powi(2)).sum::<f64>().sqrt())
        .collect();
    let threshold = |c: usize| tolerance * norms[c].max(f64::MIN_POSITIVE) * (p as f64).sqrt();
    if (0..p).all(|c| r[c + c * p].abs() > threshold(c)) {
        return vec![];
    }
    // Some column is dependent: decide column by column on the kept columns' triangle.
    let mut kept: Vec<usize> = Vec::with_capacity(p);
    let mut dependent = Vec::new();
    for c in 0..p {
        let mut columns = kept.clone();
        columns.push(c);
        let mut block = vec![0.0; p * columns.len()];
        for (j, &source) in columns.iter().enumerate() {
            block[j * p..(j + 1) * p].copy_from_slice(&r[source * p..(source + 1) * p]);
        }
        let last = columns.len() - 1;
        reduce_to_triangle(&mut block, p, columns.len());
        if block[last + last * p].abs() > threshold(c) {
            kept.push(c);
        } else {
            dependent.push(c);
        }
    }
    dependent
}

/// R of X = QR (p × p, column-major, upper triangular), up to the signs of its rows.
fn triangular_factor(x: MatRef<'_, f64>) -> Vec<f64> {
    let (n, p) = (x.nrows(), x.ncols());
    // `block` is a per-thread buffer, reused from chunk to chunk.
    let chunk_triangle = |block: &mut Vec<f64>, first: usize| {
        let rows = CHUNK_ROWS.min(n - first);
        block.resize(rows * p, 0.0);
        for c in 0..p {
            for (out, &value) in block[c * rows..(c + 1) * rows]
                .iter_mut()
                .zip(x.col(c).subrows(first, rows).iter())
            {
                *out = value;
            }
        }
        reduce_to_triangle(&mut block[..rows * p], rows, p);
        upper_triangle(block, rows, p)
    };
    let starts: Vec<usize> = (0..n).step_by(CHUNK_ROWS).collect();
    let triangles: Vec<Vec<f64>> = if starts.len() > 1 {
        starts
            .par_iter()
            .map_init(Vec::new, |block, &first| chunk_triangle(block, first))
            .collect()
    } else {
        let mut block = Vec::new();
        starts
            .iter()
            .map(|&first| chunk_triangle(&mut block, first))
            .collect()
    };
    if triangles.len() == 1 {
        return triangles.into_iter().next().unwrap_or_default();
    }
    // Stack the chunks' triangles (in chunk order) and reduce them once more.
    let rows = triangles.len() * p;
    let mut stacked = vec![0.0; rows * p];
    for (t, triangle) in triangles.iter().enumerate() {
        for c in 0..p {
            stacked[t * p + c * rows..][..p].copy_from_slice(&triangle[c * p..(c + 1) * p]);
        }
    }
    reduce_to_triangle(&mut stacked, rows, p);
    upper_triangle(&stacked, rows, p)
}

/// The first p rows of a reduced `rows × p` block as a p × p matrix (zero rows where rows < p).
fn upper_triangle(block: &[f64], rows: usize, p: usize) -> Vec<f64> {
    let mut r = vec![0.0; p * p];
    for c in 0..p {
        for i in 0..(c + 1).min(rows) {
            r[i + c * p] = block[i + c * rows];
        }
    }
    r
}

/// Householder reduction of a column-major `rows × cols` block in place: afterwards its upper
/// triangle (upper trapezoid when rows < cols) is R. Below the diagonal is left undefined.
fn reduce_to_triangle(block: &mut [f64], rows: usize, cols: usize) {
    let mut reflector = vec![0.0; rows];
    for j in 0..cols.min(rows) {
        let column = &block[j * rows + j..(j + 1) * rows];
        let norm = column.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        // Reflect the column onto −sign(a_jj)‖a‖ e₁, which avoids cancellation.
        let alpha = if column[0] > 0.0 { -norm } else { norm };
        let length = rows - j;
        let reflector = &mut reflector[..length];
        reflector.copy_from_slice(column);
        reflector[0] -= alpha;
        let squared_length: f64 = reflector.iter().map(|v| v * v).sum();
        block[j + j * rows] = alpha;
        for k in j + 1..cols {
            let target = &mut block[k * rows + j..(k + 1) * rows];
            let projection = 2.0
                * reflector
                    .iter()
                    .zip(target.iter())
                    .map(|(u, v)| u * v)
                    .sum::<f64>()
                / squared_length;
            for (value, u) in target.iter_mut().zip(reflector.iter()) {
                *value -= projection * u;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    fn pseudo_random(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    fn matrix(n: usize, columns: &[Vec<f64>]) -> Mat<f64> {
        Mat::from_fn(n, columns.len(), |i, j| columns[j][i])
    }

    #[test]
    fn the_triangle_reproduces_the_gram_matrix_across_chunks() {
        let n = 3 * CHUNK_ROWS + 17;
        let columns: Vec<Vec<f64>> = (0..4).map(|c| pseudo_random(n, c + 1)).collect();
        let x = matrix(n, &columns);
        let r = triangular_factor(x.as_ref());
        for a in 0..4 {
            for b in 0..4 {
                let gram: f64 = (0..n).map(|i| columns[a][i] * columns[b][i]).sum();
                let from_r: f64 = (0..4).map(|i| r[i + a * 4] * r[i + b * 4]).sum();
                assert!(
                    (gram - from_r).abs() < 1e-9 * gram.abs().max(1.0),
                    "{a},{b}"
                );
            }
        }
    }

    #[test]
    fn full_rank_columns_are_all_kept() {
        let n = 50;
        let columns: Vec<Vec<f64>> = (0..3).map(|c| pseudo_random(n, c + 7)).collect();
        assert!(dependent_columns(matrix(n, &columns).as_ref(), 1e-7).is_empty());
    }

    #[test]
    fn combinations_of_earlier_columns_and_zero_columns_are_dropped() {
        let n = 2 * CHUNK_ROWS + 5;
        let a = pseudo_random(n, 3);
        let b = pseudo_random(n, 4);
        let sum: Vec<f64> = a.iter().zip(&b).map(|(u, v)| 2.0 * u - v).collect();
        let c = pseudo_random(n, 5);
        let columns = vec![a.clone(), b, sum, vec![0.0; n], c, a];
        assert_eq!(
            dependent_columns(matrix(n, &columns).as_ref(), 1e-7),
            vec![2, 3, 5]
        );
    }

    #[test]
    fn a_column_dependent_up_to_the_tolerance_is_dropped_and_one_beyond_it_kept() {
        let n = 40;
        let a = pseudo_random(n, 11);
        let noise = pseudo_random(n, 12);
        let nearly = |size: f64| a.iter().zip(&noise).map(|(u, e)| u + size * e).collect();
        let close = vec![a.clone(), nearly(1e-10)];
        assert_eq!(dependent_columns(matrix(n, &close).as_ref(), 1e-7), vec![1]);
        let apart = vec![a.clone(), nearly(1e-4)];
        assert!(dependent_columns(matrix(n, &apart).as_ref(), 1e-7).is_empty());
    }

    #[test]
    fn without_rows_every_column_is_dependent() {
        let x = Mat::<f64>::zeros(0, 2);
        assert_eq!(dependent_columns(x.as_ref(), 1e-7), vec![0, 1]);
    }

    #[test]
    fn fewer_rows_than_columns_leave_the_excess_columns_dependent() {
        let columns: Vec<Vec<f64>> = (0..4).map(|c| pseudo_random(2, c + 20)).collect();
        assert_eq!(
            dependent_columns(matrix(2, &columns).as_ref(), 1e-7),
            vec![2, 3]
        );
    }
}
