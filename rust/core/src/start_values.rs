//! Where the optimiser starts θ. lme4's start (1 on the diagonal, 0 off it) unless every
//! random-effects term is scalar and there are many random effects: then each term's one-way
//! moment estimate of its variance relative to the residual variance, from the θ-free
//! cross-products alone (Searle, Casella & McCulloch 1992, sec. 3.5: on the residuals of the
//! fixed effects by least squares, E[SSB] = (G − 1)σ² + (N − Σaᵢ²/N)σ²_g). Crossed terms inflate
//! each other's within-group variance, so this is a start, not an estimate; on InstEval it lands
//! within 0.03 of θ̂, and BOBYQA took 33 evaluations from it (first radius 0.1) instead of 73.
//! Small models keep lme4's start, and with it lme4's optimisation path.

use crate::crossproducts::CrossProducts;
use crate::dense::invert_symmetric;
use crate::terms::RandomEffectsTerm;

/// Fewer random effects than this: lme4's start (an evaluation costs microseconds there).
const MIN_RANDOM_EFFECTS: usize = 1000;
/// The optimiser's first radius from a moment start, relative to its largest component (at least 1).
pub(crate) const RADIUS: f64 = 0.1;
/// A term whose moment estimate is zero or negative starts here, off the boundary.
const SMALLEST: f64 = 0.05;

/// The moment start of θ, or None where lme4's start applies (or the moments are degenerate).
pub(crate) fn moment_start(terms: &[RandomEffectsTerm], cross: &CrossProducts) -> Option<Vec<f64>> {
    let q: usize = terms.iter().map(|t| t.n_columns()).sum();
    if q < MIN_RANDOM_EFFECTS || terms.iter().any(|t| t.k != 1) {
        return None;
    }
    let p = cross.n_fixed;
    let gram = &cross.fixed_fixed;
    let x_gram: Vec<f64> = (0..p * p).map(|i| gram.get(i % p, i / p)).collect();
    let x_response: Vec<f64> = (0..p).map(|r| gram.get(r, p)).collect();
    let inverse = invert_symmetric(&x_gram, p)?;
    let beta: Vec<f64> = (0..p)
        .map(|r| (0..p).map(|c| inverse[r + c * p] * x_response[c]).sum())
        .collect();
    let residual_sum_of_squares = gram.get(p, p)
        - beta
            .iter()
            .zip(&x_response)
            .map(|(b, v)| b * v)
            .sum::<f64>();
    let n = cross.n_informative as f64;
    terms
        .iter()
        .enumerate()
        .map(|(s, term)| {
            let rows = &cross.fixed_random[s];
            let (mut between, mut total, mut squares, mut groups) = (0.0, 0.0, 0.0, 0.0);
            for level in 0..term.n_levels {
                let size = cross.diagonal[s].values[level];
                if size <= 0.0 {
                    continue;
                }
                let residual_sum =
                    rows.get(p, level) - (0..p).map(|r| rows.get(r, level) * beta[r]).sum::<f64>();
                between += residual_sum * residual_sum / size;
                total += size;
                squares += size * size;
                groups += 1.0;
            }
            let within = (residual_sum_of_squares - between) / (n - groups);
            let variance = (between - (groups - 1.0) * within) / (total - squares / total);
            let ratio = variance / within;
            (within > 0.0 && ratio.is_finite()).then(|| ratio.max(0.0).sqrt().max(SMALLEST))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    /// Normal draws from a 64-bit LCG by Box–Muller (enough for a test's data).
    fn normals(seed: u64, n: usize) -> Vec<f64> {
        let mut state = seed;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos())
            .collect()
    }

    /// y = 1 + 0.5 x + b_g + c_h + ε with sd(b) = 0.6, sd(c) = 0.3, sd(ε) = 1: two crossed scalar
    /// terms, 1,500 × 40 levels, 30,000 rows.
    fn crossed(k_first: usize) -> (Vec<RandomEffectsTerm>, CrossProducts) {
        let n = 30_000;
        let (g, h) = (1500, 40);
        let noise = normals(7, n);
        let (b, c) = (normals(8, g), normals(9, h));
        let x: Vec<f64> = normals(10, n);
        let first: Vec<u32> = (0..n).map(|i| (i % g) as u32).collect();
        let second: Vec<u32> = (0..n).map(|i| ((i / g + i * 7) % h) as u32).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| {
                1.0 + 0.5 * x[i]
                    + 0.6 * b[first[i] as usize]
                    + 0.3 * c[second[i] as usize]
                    + noise[i]
            })
            .collect();
        let z_first: Vec<f64> = (0..n)
            .flat_map(|i| [1.0, x[i]].into_iter().take(k_first))
            .collect();
        let terms = vec![
            RandomEffectsTerm::new(first, g, k_first, z_first).unwrap(),
            RandomEffectsTerm::new(second, h, 1, vec![1.0; n]).unwrap(),
        ];
        let design = Mat::from_fn(n, 2, |i, col| if col == 0 { 1.0 } else { x[i] });
        let mut cross = CrossProducts::new(&terms, design.as_ref(), None).unwrap();
        cross
            .set_response(&terms, design.as_ref(), &y, None)
            .unwrap();
        (terms, cross)
    }

    #[test]
    fn scalar_terms_start_near_their_relative_standard_deviations() {
        let (terms, cross) = crossed(1);
        let start = moment_start(&terms, &cross).unwrap();
        // θ = sd(term) / sd(ε): 0.6 and 0.3, within the moments' sampling error (and the second
        // factor's 40 levels).
        assert!((start[0] - 0.6).abs() < 0.06, "{start:?}");
        assert!((start[1] - 0.3).abs() < 0.15, "{start:?}");
    }

    #[test]
    fn vector_terms_and_small_models_keep_lme4s_start() {
        let (terms, cross) = crossed(2);
        assert_eq!(moment_start(&terms, &cross), None);
        let (terms, cross) = crossed(1);
        assert_eq!(moment_start(&terms[1..], &cross), None); // 40 random effects
    }
}
