//! The centred and scaled parameterisation fits are optimised in (the Python module
//! `models/internal_parameterisation.py` explains it): the column transform z' = z T of one model
//! matrix, and the map of a term's relative covariance factor between parameterisations, the
//! lower-triangular L with L Lᵀ = M Mᵀ for M = T Λ. Both are tiny (k × k, a pass over n rows);
//! they are here because numpy's per-call overhead was most of a small fit's cost.

use faer::MatRef;

/// z' = z T for the columns of one n × k model matrix: `forward` is T and `inverse` T⁻¹ (k × k,
/// row-major), exact; `is_identity` when no column varies (intercepts only: nothing changes).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnTransform {
    pub forward: Vec<f64>,
    pub inverse: Vec<f64>,
    pub is_identity: bool,
}

/// Centre every non-constant column of `columns` about the first all-ones column, when there is
/// one, and scale it by its standard deviation (without an intercept column: by its root mean
/// square). Any centre and scale give an exact map; these only need to condition the columns.
/// Sums are pairwise, as numpy's, so that the transform is the one numpy computed before.
pub fn column_transform(columns: MatRef<'_, f64>) -> ColumnTransform {
    let (n, k) = (columns.nrows(), columns.ncols());
    let mut forward = identity(k);
    let mut inverse = identity(k);
    let column = |j: usize| columns.col(j).iter().copied();
    let is_constant = |j: usize| {
        let first = columns[(0, j)];
        column(j).all(|value| value == first)
    };
    let varying: Vec<usize> = (0..k).filter(|&j| n > 0 && !is_constant(j)).collect();
    if varying.is_empty() {
        return ColumnTransform {
            forward,
            inverse,
            is_identity: true,
        };
    }
    let intercept = (0..k).find(|&j| n > 0 && column(j).all(|value| value == 1.0));
    let count = n as f64;
    for &j in &varying {
        let values: Vec<f64> = column(j).collect();
        let scale = match intercept {
            Some(one) => {
                let centre = pairwise_sum(&values) / count;
                let squares: Vec<f64> =
                    values.iter().map(|v| (v - centre) * (v - centre)).collect();
                let scale = (pairwise_sum(&squares) / count).sqrt();
                forward[one * k + j] = -centre / scale;
                inverse[one * k + j] = centre;
                scale
            }
            None => {
                let squares: Vec<f64> = values.iter().map(|v| v * v).collect();
                (pairwise_sum(&squares) / count).sqrt()
            }
        };
        forward[j * k + j] = 1.0 / scale;
        inverse[j * k + j] = scale;
    }
    ColumnTransform {
        forward,
        inverse,
        is_identity: false,
    }
}

fn identity(k: usize) -> Vec<f64> {
    let mut matrix = vec![0.0; k * k];
    for j in 0..k {
        matrix[j * k + j] = 1.0;
    }
    matrix
}

/// numpy's pairwise summation (`pairwise_sum` in numpy/_core/src/umath/loops_utils.h.src):
/// eight running sums over blocks of at most 128 values, halves above that.
fn pairwise_sum(values: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = values.len();
    if n < 8 {
        return values.iter().fold(0.0, |sum, value| sum + value);
    }
    if n <= BLOCK {
        let mut sums = [0.0; 8];
        sums.copy_from_slice(&values[..8]);
        let whole = n - n % 8;
        for chunk in values[8..whole].chunks_exact(8) {
            for (sum, value) in sums.iter_mut().zip(chunk) {
                *sum += value;
            }
        }
        let mut total = ((sums[0] + sums[1]) + (sums[2] + sums[3]))
            + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
        for value in &values[whole..] {
            total += value;
        }
        return total;
    }
    let half = n / 2 - (n / 2) % 8;
    pairwise_sum(&values[..half]) + pairwise_sum(&values[half..])
}

/// Each of a θ vector's terms mapped through its transform: per term of size k (θ lists Λ's lower
/// triangle column by column), Λ ↦ the lower-triangular L with a non-negative diagonal and
/// L Lᵀ = T Λ Λᵀ Tᵀ. `transforms` holds T (k × k, row-major) per term, None where the term is
/// left as it is. `theta` may hold several vectors one after another.
pub fn map_theta(theta: &mut [f64], sizes: &[usize], transforms: &[Option<&[f64]>]) {
    let length: usize = sizes.iter().map(|k| k * (k + 1) / 2).sum();
    if length == 0 {
        return;
    }
    for vector in theta.chunks_exact_mut(length) {
        let mut position = 0;
        for (&k, transform) in sizes.iter().zip(transforms) {
            let block = &mut vector[position..position + k * (k + 1) / 2];
            position += block.len();
            if let Some(transform) = transform {
                let mapped = lower_factor(&product_with_lower(transform, block, k), k);
                write_lower(&mapped, block, k);
            }
        }
    }
}

/// T Λ (row-major) for Λ given by its lower triangle in θ's order.
fn product_with_lower(transform: &[f64], theta: &[f64], k: usize) -> Vec<f64> {
    let mut lower = vec![0.0; k * k];
    let mut position = 0;
    for column in 0..k {
        for row in column..k {
            lower[row * k + column] = theta[position];
            position += 1;
        }
    }
    let mut product = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            product[i * k + j] = (0..k)
                .map(|m| transform[i * k + m] * lower[m * k + j])
                .sum();
        }
    }
    product
}

/// L's lower triangle written into θ's order.
fn write_lower(lower: &[f64], theta: &mut [f64], k: usize) {
    let mut position = 0;
    for column in 0..k {
        for row in column..k {
            theta[position] = lower[row * k + column];
            position += 1;
        }
    }
}

/// The lower-triangular L with a non-negative diagonal and L Lᵀ = M Mᵀ, M (k × k, row-major) =
/// L Q by Householder reflections of M's rows (the LQ decomposition; Golub and Van Loan,
/// Matrix Computations, 4th ed., 5.2). A row whose part right of the diagonal is already zero is
/// not reflected (as LAPACK's dlarfg), so singular and triangular M are handled exactly.
fn lower_factor(matrix: &[f64], k: usize) -> Vec<f64> {
    let mut a = matrix.to_vec();
    for j in 0..k {
        let rest = a[j * k + j + 1..(j + 1) * k]
            .iter()
            .map(|v| v * v)
            .sum::<f64>();
        if rest == 0.0 {
            continue;
        }
        let alpha = a[j * k + j];
        let norm = (alpha * alpha + rest).sqrt();
        // Reflect row j's tail onto −sign(α)‖·‖ e₁, which avoids cancellation.
        let beta = if alpha > 0.0 { -norm } else { norm };
        let mut reflector = a[j * k + j..(j + 1) * k].to_vec();
        reflector[0] -= beta;
        let squared_length: f64 = reflector.iter().map(|v| v * v).sum();
        for i in j + 1..k {
            let row = &mut a[i * k + j..(i + 1) * k];
            let projection = 2.0
                * reflector
                    .iter()
                    .zip(row.iter())
                    .map(|(u, v)| u * v)
                    .sum::<f64>()
                / squared_length;
            for (value, u) in row.iter_mut().zip(&reflector) {
                *value -= projection * u;
            }
        }
        a[j * k + j] = beta;
        for value in &mut a[j * k + j + 1..(j + 1) * k] {
            *value = 0.0;
        }
    }
    // Columns with a negative diagonal change sign (L Lᵀ is unchanged).
    for j in 0..k {
        if a[j * k + j] < 0.0 {
            for i in j..k {
                a[i * k + j] = -a[i * k + j];
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    fn gram(m: &[f64], k: usize) -> Vec<f64> {
        let mut g = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                g[i * k + j] = (0..k).map(|c| m[i * k + c] * m[j * k + c]).sum();
            }
        }
        g
    }

    fn assert_close(a: &[f64], b: &[f64], tolerance: f64) {
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= tolerance * y.abs().max(1.0),
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn pairwise_sums_are_exact_on_integers_of_every_length() {
        for n in [0, 1, 7, 8, 9, 127, 128, 129, 300, 1001] {
            let values: Vec<f64> = (1..=n).map(|i| i as f64).collect();
            assert_eq!(pairwise_sum(&values), (n * (n + 1) / 2) as f64, "n = {n}");
        }
    }

    #[test]
    fn columns_are_centred_about_the_intercept_and_scaled() {
        // Intercept, x = 10, 14 (mean 12, sd 2), a constant 3.
        let columns = Mat::from_fn(2, 3, |i, j| [[1.0, 10.0, 3.0], [1.0, 14.0, 3.0]][i][j]);
        let transform = column_transform(columns.as_ref());
        assert!(!transform.is_identity);
        assert_eq!(
            transform.forward,
            vec![1.0, -6.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0]
        );
        assert_eq!(
            transform.inverse,
            vec![1.0, 12.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0]
        );
    }

    #[test]
    fn without_an_intercept_columns_are_scaled_by_their_root_mean_square() {
        let columns = Mat::from_fn(2, 1, |i, _| [3.0, 4.0][i]);
        let transform = column_transform(columns.as_ref());
        assert_eq!(transform.inverse, vec![(12.5f64).sqrt()]);
        assert_eq!(transform.forward, vec![1.0 / (12.5f64).sqrt()]);
    }

    #[test]
    fn intercepts_only_are_the_identity() {
        let columns = Mat::from_fn(4, 2, |_, _| 1.0);
        let transform = column_transform(columns.as_ref());
        assert!(transform.is_identity);
        assert_eq!(transform.forward, identity(2));
    }

    #[test]
    fn the_lower_factor_reproduces_m_m_transposed_with_a_non_negative_diagonal() {
        let m = vec![0.3, -1.2, 0.7, 2.0, 0.1, -0.4, -0.5, 0.9, 1.1];
        let lower = lower_factor(&m, 3);
        assert_close(&gram(&lower, 3), &gram(&m, 3), 1e-14);
        for j in 0..3 {
            assert!(lower[j * 3 + j] >= 0.0);
            for c in j + 1..3 {
                assert_eq!(lower[j * 3 + c], 0.0);
            }
        }
    }

    #[test]
    fn singular_and_triangular_factors_are_exact() {
        // Rank one: the second row is twice the first.
        let m = vec![1.0, 2.0, 2.0, 4.0];
        let lower = lower_factor(&m, 2);
        assert_close(&gram(&lower, 2), &gram(&m, 2), 1e-15);
        assert_eq!(lower[3], 0.0);
        // Already lower triangular, with a negative diagonal entry: only signs change.
        let triangular = vec![-2.0, 0.0, 0.5, 3.0];
        assert_eq!(lower_factor(&triangular, 2), vec![2.0, 0.0, -0.5, 3.0]);
    }

    #[test]
    fn the_theta_map_and_its_inverse_round_trip() {
        // A 2 × 2 term mapped through T (intercept, centred and scaled slope), a scalar term left alone.
        let forward = [1.0, -1.5, 0.0, 0.25];
        let inverse = [1.0, 6.0, 0.0, 4.0];
        let theta = vec![0.9, 0.2, 0.4, 1.3, 0.8, 0.1, 0.3, 0.7];
        let mut mapped = theta.clone();
        map_theta(&mut mapped, &[2, 1], &[Some(&forward), None]);
        assert_eq!(mapped[3], 1.3);
        map_theta(&mut mapped, &[2, 1], &[Some(&inverse), None]);
        assert_close(&mapped, &theta, 1e-14);
    }
}
