//! Shared by the unit tests: small random mixed-model problems, a dense reference factor of
//! their augmented matrix built straight from the definition, and a small random-intercept model.

use crate::terms::{relative_covariance_factor, RandomEffectsTerm};
use faer::Mat;

/// Rows per group of [`random_intercept_data`].
pub const PER_GROUP: usize = 6;

/// `groups` groups of [`PER_GROUP`] rows: a random intercept per group, an intercept and a
/// covariate (0..PER_GROUP within each group), and a response with group effects and noise.
pub fn random_intercept_data(groups: usize) -> (Vec<RandomEffectsTerm>, Mat<f64>, Vec<f64>) {
    let n = groups * PER_GROUP;
    let mut rng = Lcg(4);
    let codes: Vec<u32> = (0..n).map(|i| (i / PER_GROUP) as u32).collect();
    let x = Mat::from_fn(
        n,
        2,
        |i, c| if c == 0 { 1.0 } else { (i % PER_GROUP) as f64 },
    );
    let effects: Vec<f64> = (0..groups).map(|_| 2.0 * rng.uniform() - 1.0).collect();
    let y = (0..n)
        .map(|i| 1.0 + 0.5 * x[(i, 1)] + effects[i / PER_GROUP] + rng.uniform())
        .collect();
    let term = RandomEffectsTerm::new(codes, groups, 1, vec![1.0; n]).unwrap();
    (vec![term], x, y)
}

/// Deterministic pseudo-random numbers (a 64-bit LCG), enough for test data.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n
    }
}

/// `work` run on a pool of `threads` threads (tests of thread-count invariance).
pub fn on_threads<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(work)
}

pub struct Problem {
    pub terms: Vec<RandomEffectsTerm>,
    pub x: Mat<f64>,
    pub y: Vec<f64>,
    pub weights: Option<Vec<f64>>,
    pub theta: Vec<f64>,
}

/// `levels[t]` levels and `ks[t]` columns per term; `nest[t] = Some(s)` makes term t's factor a
/// function of term s's (nested), else levels are drawn independently (crossed).
pub fn problem(
    seed: u64,
    n: usize,
    p: usize,
    levels: &[usize],
    ks: &[usize],
    nest: &[Option<usize>],
    weighted: bool,
) -> Problem {
    let mut rng = Lcg(seed);
    let mut codes: Vec<Vec<u32>> = Vec::new();
    for t in 0..levels.len() {
        let c: Vec<u32> = match nest[t] {
            Some(s) => codes[s]
                .iter()
                .map(|&a| (a as usize % levels[t]) as u32)
                .collect(),
            None => (0..n)
                .map(|i| {
                    if i < levels[t] {
                        i as u32
                    } else {
                        rng.below(levels[t]) as u32
                    }
                })
                .collect(),
        };
        codes.push(c);
    }
    let mut terms = Vec::new();
    let mut theta = Vec::new();
    for t in 0..levels.len() {
        let k = ks[t];
        let z: Vec<f64> = (0..n * k)
            .map(|i| {
                if i % k == 0 {
                    1.0
                } else {
                    rng.uniform() * 4.0 - 2.0
                }
            })
            .collect();
        terms.push(RandomEffectsTerm::new(codes[t].clone(), levels[t], k, z).unwrap());
        for c in 0..k {
            for r in c..k {
                theta.push(if r == c {
                    0.3 + rng.uniform()
                } else {
                    rng.uniform() - 0.5
                });
            }
        }
    }
    let x = Mat::from_fn(n, p, |_, c| if c == 0 { 1.0 } else { rng.uniform() * 2.0 });
    let y = (0..n).map(|_| rng.uniform() * 10.0).collect();
    let weights = weighted.then(|| (0..n).map(|_| 0.5 + rng.uniform() * 3.0).collect());
    Problem {
        terms,
        x,
        y,
        weights,
        theta,
    }
}

pub fn lambdas(problem: &Problem) -> Vec<Vec<f64>> {
    let mut next = 0;
    problem
        .terms
        .iter()
        .map(|term| {
            let mut lambda = vec![0.0; term.k * term.k];
            relative_covariance_factor(
                &problem.theta[next..next + term.n_theta()],
                term.k,
                &mut lambda,
            );
            next += term.n_theta();
            lambda
        })
        .collect()
}

/// The augmented matrix, built densely from its definition, and its dense Cholesky factor.
pub fn dense_factor(problem: &Problem) -> (Mat<f64>, usize) {
    let n = problem.y.len();
    let p = problem.x.ncols();
    let q: usize = problem.terms.iter().map(|t| t.n_columns()).sum();
    let lambdas = lambdas(problem);
    // ZΛ, column by column of each term.
    let mut z_lambda = Mat::<f64>::zeros(n, q);
    let mut offset = 0;
    for (term, lambda) in problem.terms.iter().zip(&lambdas) {
        let k = term.k;
        for i in 0..n {
            let level = term.codes[i] as usize;
            for c in 0..k {
                let value: f64 = (c..k).map(|r| term.z[i * k + r] * lambda[r + c * k]).sum();
                z_lambda[(i, offset + level * k + c)] = value;
            }
        }
        offset += term.n_columns();
    }
    let dim = q + p + 1;
    let mut columns = Mat::<f64>::zeros(n, dim);
    for i in 0..n {
        for c in 0..q {
            columns[(i, c)] = z_lambda[(i, c)];
        }
        for c in 0..p {
            columns[(i, q + c)] = problem.x[(i, c)];
        }
        columns[(i, q + p)] = problem.y[i];
    }
    let mut augmented = Mat::<f64>::zeros(dim, dim);
    for a in 0..dim {
        for b in 0..dim {
            augmented[(a, b)] = (0..n)
                .map(|i| {
                    problem.weights.as_ref().map_or(1.0, |w| w[i])
                        * columns[(i, a)]
                        * columns[(i, b)]
                })
                .sum();
        }
        if a < q {
            augmented[(a, a)] += 1.0;
        }
    }
    let factor = augmented.llt(faer::Side::Lower).unwrap().L().to_owned();
    (factor, q)
}
