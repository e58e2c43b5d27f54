//! One linear mixed model structure fitted to many responses (genomics: a response per gene on
//! the same samples, as variancePartition's `dream` runs lme4 and lmerTest gene by gene).
//!
//! Gene g's observations are the rows where its response is finite; with per-gene prior weights,
//! its weights are its own. Every gene is fitted from lme4's start, never warm-started from
//! another gene, so its estimates depend on its own response and weights alone: not on the
//! number of threads, nor on which genes share a chunk; a fit that puts a variance on its
//! boundary is checked by probes off it and a restart ([`check_boundary_optimum`]). Genes observed on every row without
//! weights of their own refit one shared structure (a replica per chunk of genes, only the
//! response changes); any other gene gets the model of its own rows and weights, built afresh,
//! since its cross-products depend on them. A gene that cannot be fitted (constant, too few
//! observations, bad weights, a grouping factor left with one level, a numerical failure) gets
//! its reason and NaN estimates; only an interruption stops the batch.

use faer::{Mat, MatRef};
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::factorization::FactorizationChoice;
use crate::interrupt::Interrupt;
use crate::lmm::{LinearMixedModel, LmmFit};
use crate::optimize::OptimizerSettings;
use crate::rank::dependent_columns;
use crate::terms::RandomEffectsTerm;
use crate::threads::construction_is_parallel;
use crate::unit_columns::unit_major_columns;

/// A variance the optimiser left below this relative standard deviation (lme4's `isSingular`
/// tolerance) is on its boundary, and is probed.
const BOUNDARY: f64 = 1e-4;
/// Relative standard deviations at which a variance on its boundary is probed.
const BOUNDARY_PROBES: [f64; 4] = [0.1, 0.3, 1.0, 3.0];
/// The first step of a restart from a boundary fit (BOBYQA took 14 evaluations from there on the
/// gene the restart is for, 23 with lme4's 0.75).
const RESTART_RADIUS: f64 = 0.1;
/// Genes fitted one after the other on one replica of the shared structure.
const GENES_PER_CHUNK: usize = 8;
/// lme4's tolerance for fixed-effects columns that depend on earlier ones (`check.rankX`).
const RANK_TOLERANCE: f64 = 1e-7;
/// A response beyond these magnitudes over- or underflows its sums of squares, and one whose
/// spread is below this fraction of its mean loses their digits (as the single fit refuses).
const LARGEST_RESPONSE: f64 = 1e150;
const SMALLEST_RESPONSE: f64 = 1e-150;
const SMALLEST_RELATIVE_SPREAD: f64 = 1e-4;

/// The structure every gene shares: the random-effects terms and fixed-effects matrix of all
/// rows (terms in lme4's order), and the factorisation to use.
#[derive(Clone, Copy)]
pub struct BatchDesign<'a> {
    pub terms: &'a [RandomEffectsTerm],
    pub x: MatRef<'a, f64>,
    pub choice: FactorizationChoice,
}

/// The responses, n × G (column g is gene g's, NaN where missing), and optionally per-gene prior
/// weights of the same shape.
#[derive(Clone, Copy)]
pub struct BatchResponses<'a> {
    pub y: MatRef<'a, f64>,
    pub weights: Option<MatRef<'a, f64>>,
}

impl BatchResponses<'_> {
    pub fn n_genes(&self) -> usize {
        self.y.ncols()
    }
}

/// Every gene's estimates, gene-major: gene g's θ is `theta[g·n_θ .. (g+1)·n_θ]`, its Cov(β̂)
/// the p×p column-major block g. A gene with an error has NaN estimates.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearBatchFit {
    pub n_theta: usize,
    pub n_fixed: usize,
    pub theta: Vec<f64>,
    pub beta: Vec<f64>,
    pub beta_covariance: Vec<f64>,
    pub sigma: Vec<f64>,
    /// The optimised criterion: the REML criterion or −2 log L.
    pub objective: Vec<f64>,
    /// −2 log L at the estimates whatever the criterion.
    pub deviance_ml: Vec<f64>,
    pub converged: Vec<bool>,
    pub n_evaluations: Vec<usize>,
    /// Observations each gene was fitted to (its finite responses).
    pub n_obs: Vec<usize>,
    /// Why a gene has no estimates, if it has none.
    pub errors: Vec<Option<String>>,
}

/// Every gene's Satterthwaite ingredients at given (θ, σ) (see
/// [`LinearMixedModel::variance_parameter_derivatives`]), gene-major over k = n_θ + 1 variance
/// parameters: A = 2H⁺ (k×k per gene), H's ascending eigenvalues (k per gene) and ∂Cov(β̂)/∂φᵢ
/// (k p×p matrices per gene). NaN where a gene has an error.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchVarianceParameterDerivatives {
    pub covariance: Vec<f64>,
    pub hessian_eigenvalues: Vec<f64>,
    pub beta_covariance_jacobian: Vec<f64>,
    pub errors: Vec<Option<String>>,
}

/// Every gene's Kenward–Roger ingredients (see [`crate::KenwardRogerAdjustment`]), gene-major
/// over m = n_θ + 1 covariance parameters: Φ_A (p×p per gene), the Pᵢ (m p×p matrices per gene)
/// and W (m×m per gene), all column-major. NaN where a gene has an error.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchKenwardRoger {
    pub adjusted_beta_covariance: Vec<f64>,
    pub information_derivatives: Vec<f64>,
    pub parameter_covariance: Vec<f64>,
    pub errors: Vec<Option<String>>,
}

/// One gene's observed rows (None: all rows), its response and weights on them.
pub(crate) struct GeneData {
    pub rows: Option<Vec<usize>>,
    pub y: Vec<f64>,
    pub weights: Option<Vec<f64>>,
}

/// What happened to one gene: its number of observations and its result or why there is none.
type GeneOutcome<T> = (usize, std::result::Result<T, String>);

/// Fit every gene by REML (`reml`) or ML from lme4's start, on `threads` threads (0: the current
/// rayon pool); `interrupt` is checked before every gene and every objective evaluation.
pub fn fit_linear_batch(
    design: BatchDesign<'_>,
    responses: BatchResponses<'_>,
    reml: bool,
    settings: OptimizerSettings,
    threads: usize,
    interrupt: &Interrupt,
) -> Result<LinearBatchFit> {
    let n_theta: usize = design.terms.iter().map(|t| t.n_theta()).sum();
    let p = design.x.ncols();
    let outcomes = for_each_gene(
        design,
        responses,
        threads,
        interrupt,
        |_, model, x, data| {
            model.set_response(x, &data.y)?;
            let fit = model.fit(x, reml, settings, interrupt)?;
            check_boundary_optimum(model, x, fit, reml, settings, interrupt)
        },
    )?;
    let n_obs = outcomes.iter().map(|(n, _)| *n).collect();
    let converged = outcomes
        .iter()
        .map(|(_, fit)| fit.as_ref().is_ok_and(|f| f.optimization.converged))
        .collect();
    let n_evaluations = outcomes
        .iter()
        .map(|(_, fit)| fit.as_ref().map_or(0, |f| f.optimization.n_evaluations))
        .collect();
    let ([theta, beta, beta_covariance, sigma, objective, deviance_ml], errors) =
        unit_major_columns(
            outcomes.into_iter().map(|(_, fit)| fit),
            [n_theta, p, p * p, 1, 1, 1],
            |fit| {
                [
                    fit.theta,
                    fit.beta,
                    fit.beta_covariance,
                    vec![fit.sigma],
                    vec![fit.objective],
                    vec![fit.deviance_ml],
                ]
            },
        );
    Ok(LinearBatchFit {
        n_theta,
        n_fixed: p,
        theta,
        beta,
        beta_covariance,
        sigma,
        objective,
        deviance_ml,
        converged,
        n_evaluations,
        n_obs,
        errors,
    })
}

/// `fit`, or a better optimum where `fit` put a variance (a diagonal element of θ) on its lower
/// bound. BOBYQA can stop early there, and can miss a lower interior minimum (the benchmark
/// behind issue 14 found Python peers stuck at variances of 0 on up to 40 % of genes), so a
/// boundary fit is checked as lme4's `restart_edge` intends: the criterion is probed with each
/// boundary element at a few positive values, the others as fitted, and the optimiser restarted
/// from the best probe below the fit's criterion, or else from the fit itself with a small first
/// step (on the 2,000-gene benchmark one gene's other variance moved from 0.1837 to 0.1834, its
/// criterion by 1.1e-5). The restart is kept if its criterion is lower. Fits off the boundary
/// cost nothing.
pub(crate) fn check_boundary_optimum(
    model: &mut LinearMixedModel,
    x: MatRef<'_, f64>,
    fit: LmmFit,
    reml: bool,
    settings: OptimizerSettings,
    interrupt: &Interrupt,
) -> Result<LmmFit> {
    let lower = model.theta_lower_bounds();
    let on_boundary: Vec<usize> = (0..lower.len())
        .filter(|&j| lower[j] == 0.0 && fit.theta[j] < BOUNDARY)
        .collect();
    if on_boundary.is_empty() {
        return Ok(fit);
    }
    let mut best: Option<(f64, Vec<f64>)> = None;
    for &j in &on_boundary {
        for probe in BOUNDARY_PROBES {
            interrupt.check()?;
            let mut theta = fit.theta.clone();
            theta[j] = probe;
            let value = model.objective(&theta, reml)?;
            let threshold = best.as_ref().map_or(fit.objective, |(lowest, _)| *lowest);
            if value < threshold {
                best = Some((value, theta));
            }
        }
    }
    let restarted = match best {
        Some((_, start)) => model.fit_from(x, reml, &start, settings, interrupt)?,
        None => {
            let settings = settings.with_initial_radius(RESTART_RADIUS);
            model.fit_from(x, reml, &fit.theta.clone(), settings, interrupt)?
        }
    };
    if restarted.objective < fit.objective {
        Ok(restarted)
    } else {
        Ok(fit)
    }
}

/// Every gene's Satterthwaite ingredients at its (θ, σ): `theta` gene-major (G × n_θ), `sigma`
/// one per gene, each gene on its own rows and weights as [`fit_linear_batch`] fits it. A gene
/// whose θ or σ is not finite (not fitted) gets an error.
pub fn linear_batch_variance_parameter_derivatives(
    design: BatchDesign<'_>,
    responses: BatchResponses<'_>,
    theta: &[f64],
    sigma: &[f64],
    reml: bool,
    threads: usize,
    interrupt: &Interrupt,
) -> Result<BatchVarianceParameterDerivatives> {
    let n_theta: usize = design.terms.iter().map(|t| t.n_theta()).sum();
    let k = n_theta + 1;
    let p = design.x.ncols();
    let outcomes = at_each_gene_estimates(
        design,
        responses,
        theta,
        sigma,
        threads,
        interrupt,
        |model, x, data, theta, sigma| {
            model.set_response(x, &data.y)?;
            model.variance_parameter_derivatives(theta, sigma, reml, interrupt)
        },
    )?;
    let ([covariance, hessian_eigenvalues, beta_covariance_jacobian], errors) = unit_major_columns(
        outcomes.into_iter().map(|(_, derivatives)| derivatives),
        [k * k, k, k * p * p],
        |d| {
            [
                d.covariance,
                d.hessian_eigenvalues,
                d.beta_covariance_jacobian,
            ]
        },
    );
    Ok(BatchVarianceParameterDerivatives {
        covariance,
        hessian_eigenvalues,
        beta_covariance_jacobian,
        errors,
    })
}

/// Every gene's Kenward–Roger ingredients at its REML (θ, σ) (see
/// [`LinearMixedModel::kenward_roger_adjustment`]), arguments as
/// [`linear_batch_variance_parameter_derivatives`]'s.
pub fn linear_batch_kenward_roger(
    design: BatchDesign<'_>,
    responses: BatchResponses<'_>,
    theta: &[f64],
    sigma: &[f64],
    threads: usize,
    interrupt: &Interrupt,
) -> Result<BatchKenwardRoger> {
    let m: usize = design.terms.iter().map(|t| t.n_theta()).sum::<usize>() + 1;
    let p = design.x.ncols();
    let outcomes = at_each_gene_estimates(
        design,
        responses,
        theta,
        sigma,
        threads,
        interrupt,
        |model, _, _, theta, sigma| model.kenward_roger_adjustment(theta, sigma, interrupt),
    )?;
    let ([adjusted_beta_covariance, information_derivatives, parameter_covariance], errors) =
        unit_major_columns(
            outcomes.into_iter().map(|(_, adjustment)| adjustment),
            [p * p, m * p * p, m * m],
            |a| {
                [
                    a.adjusted_beta_covariance,
                    a.information_derivatives,
                    a.parameter_covariance,
                ]
            },
        );
    Ok(BatchKenwardRoger {
        adjusted_beta_covariance,
        information_derivatives,
        parameter_covariance,
        errors,
    })
}

/// `work(model, x, data, θ, σ)` for every gene at its (θ, σ) (`theta` gene-major): the shared
/// checks of the per-gene computations at estimates. A gene whose θ or σ is not finite (not
/// fitted) gets an error.
fn at_each_gene_estimates<T: Send>(
    design: BatchDesign<'_>,
    responses: BatchResponses<'_>,
    theta: &[f64],
    sigma: &[f64],
    threads: usize,
    interrupt: &Interrupt,
    work: impl Fn(&mut LinearMixedModel, MatRef<'_, f64>, &GeneData, &[f64], f64) -> Result<T> + Sync,
) -> Result<Vec<GeneOutcome<T>>> {
    let n_theta: usize = design.terms.iter().map(|t| t.n_theta()).sum();
    let n_genes = responses.n_genes();
    if theta.len() != n_genes * n_theta || sigma.len() != n_genes {
        return Err(CoreError::InvalidInput(format!(
            "{n_genes} genes need {} theta values and {n_genes} sigmas, not {} and {}",
            n_genes * n_theta,
            theta.len(),
            sigma.len()
        )));
    }
    for_each_gene(
        design,
        responses,
        threads,
        interrupt,
        |gene, model, x, data| {
            let theta = &theta[gene * n_theta..(gene + 1) * n_theta];
            if !theta.iter().all(|t| t.is_finite()) || !sigma[gene].is_finite() {
                return Err(CoreError::Specification("the gene was not fitted".into()));
            }
            work(model, x, data, theta, sigma[gene])
        },
    )
}

/// `work(gene, model, x, data)` for every gene on the model of its rows and weights, in chunks of
/// genes spread over the pool (one after the other when a fit has parallel loops itself). An
/// error of `work` other than an interruption is that gene's outcome.
fn for_each_gene<T: Send>(
    design: BatchDesign<'_>,
    responses: BatchResponses<'_>,
    threads: usize,
    interrupt: &Interrupt,
    work: impl Fn(usize, &mut LinearMixedModel, MatRef<'_, f64>, &GeneData) -> Result<T> + Sync,
) -> Result<Vec<GeneOutcome<T>>> {
    check_shapes(design, responses)?;
    let n_genes = responses.n_genes();
    let has_complete_gene = responses.weights.is_none()
        && (0..n_genes).any(|g| responses.y.col(g).iter().all(|v| v.is_finite()));
    let shared = if has_complete_gene {
        Some(LinearMixedModel::new(
            design.terms.to_vec(),
            design.x,
            None,
            design.choice,
        )?)
    } else {
        None
    };
    let parallel_fits = construction_is_parallel(design.x.nrows())
        || shared.as_ref().is_some_and(|model| model.is_parallel());
    let chunk = |index: usize| -> Result<Vec<GeneOutcome<T>>> {
        let mut replica: Option<LinearMixedModel> = None;
        let first = index * GENES_PER_CHUNK;
        (first..n_genes.min(first + GENES_PER_CHUNK))
            .map(|gene| {
                interrupt.check()?;
                let (n_obs, data) = gene_data(responses, gene);
                let data = match data {
                    Ok(data) => data,
                    Err(message) => return Ok((n_obs, Err(message))),
                };
                let outcome = match (&shared, &data.rows, &data.weights) {
                    (Some(shared), None, None) => {
                        let model = match replica {
                            Some(ref mut model) => model,
                            None => replica.insert(shared.replica()?),
                        };
                        work(gene, model, design.x, &data)
                    }
                    _ => match own_model(design, &data) {
                        Ok((mut model, x)) => work(gene, &mut model, x.as_ref(), &data),
                        Err(message) => return Ok((n_obs, Err(message))),
                    },
                };
                match outcome {
                    Ok(value) => Ok((n_obs, Ok(value))),
                    Err(CoreError::Interrupted) => Err(CoreError::Interrupted),
                    Err(err) => Ok((n_obs, Err(err.to_string()))),
                }
            })
            .collect()
    };
    let n_chunks = n_genes.div_ceil(GENES_PER_CHUNK);
    let chunks: Vec<Vec<GeneOutcome<T>>> = if parallel_fits {
        (0..n_chunks).map(chunk).collect::<Result<_>>()?
    } else {
        on_threads(threads, || {
            (0..n_chunks)
                .into_par_iter()
                .map(chunk)
                .collect::<Result<_>>()
        })??
    };
    Ok(chunks.into_iter().flatten().collect())
}

/// `work` on a pool of `threads` threads, or on the current pool when `threads` is 0.
pub(crate) fn on_threads<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> Result<R> {
    if threads == 0 {
        return Ok(work());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|err| {
            CoreError::Specification(format!("cannot start {threads} threads: {err}"))
        })?;
    Ok(pool.install(work))
}

fn check_shapes(design: BatchDesign<'_>, responses: BatchResponses<'_>) -> Result<()> {
    let n = design.x.nrows();
    if responses.y.nrows() != n {
        return Err(CoreError::InvalidInput(format!(
            "the responses have {} samples, the design {n}",
            responses.y.nrows()
        )));
    }
    if let Some(weights) = responses.weights {
        if weights.nrows() != n || weights.ncols() != responses.y.ncols() {
            return Err(CoreError::InvalidInput(format!(
                "the weights are {} x {}, the responses {n} x {}",
                weights.nrows(),
                weights.ncols(),
                responses.y.ncols()
            )));
        }
    }
    if let Some(term) = design.terms.iter().find(|t| t.n_obs() != n) {
        return Err(CoreError::InvalidInput(format!(
            "a random-effects term has {} observations, the design {n}",
            term.n_obs()
        )));
    }
    Ok(())
}

/// Gene g's number of observations and its data, or why it cannot be fitted.
fn gene_data(
    responses: BatchResponses<'_>,
    gene: usize,
) -> (usize, std::result::Result<GeneData, String>) {
    let y = responses.y;
    let rows: Vec<usize> = (0..y.nrows())
        .filter(|&i| y[(i, gene)].is_finite())
        .collect();
    (rows.len(), observed_data(responses, gene, rows))
}

/// A gene's data on its observed `rows`, checked.
fn observed_data(
    responses: BatchResponses<'_>,
    gene: usize,
    rows: Vec<usize>,
) -> std::result::Result<GeneData, String> {
    if rows.is_empty() {
        return Err("no observed values".to_string());
    }
    let y: Vec<f64> = rows.iter().map(|&i| responses.y[(i, gene)]).collect();
    let weights = match responses.weights {
        Some(weights) => {
            let values: Vec<f64> = rows.iter().map(|&i| weights[(i, gene)]).collect();
            let bad = values
                .iter()
                .filter(|w| !(w.is_finite() && **w >= 0.0))
                .count();
            if bad > 0 {
                return Err(format!(
                    "{bad} weights of observed samples are negative or not finite"
                ));
            }
            if values.iter().all(|&w| w == 0.0) {
                return Err("every observed sample has weight 0".to_string());
            }
            Some(values)
        }
        None => None,
    };
    check_response_scale(&y)?;
    let complete = rows.len() == responses.y.nrows();
    Ok(GeneData {
        rows: (!complete).then_some(rows),
        y,
        weights,
    })
}

/// The single fit's refusals (`check_response_scale` in Python): a constant response, one beyond
/// ±1e150 or within ±1e-150, or one whose spread is below 1e-4 of its mean.
fn check_response_scale(y: &[f64]) -> std::result::Result<(), String> {
    let (low, high) = y
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if low == high {
        return Err(format!(
            "the response is constant (every value {low}): the residual variance is zero and the likelihood unbounded"
        ));
    }
    let largest = low.abs().max(high.abs());
    if !(SMALLEST_RESPONSE < largest && largest < LARGEST_RESPONSE) {
        return Err(format!(
            "the response reaches {largest:e} in absolute value: its sums of squares over- or underflow"
        ));
    }
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let spread = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    if spread < SMALLEST_RELATIVE_SPREAD * mean.abs() {
        return Err(format!(
            "the response varies by {spread:e} around {mean}: its sums of squares would lose their digits"
        ));
    }
    Ok(())
}

/// The model of a gene's own rows and weights and its fixed-effects matrix, or why it cannot be
/// fitted: too few observations for the fixed effects, or [`rows_structure`]'s checks for lmer.
pub(crate) fn own_model(
    design: BatchDesign<'_>,
    data: &GeneData,
) -> std::result::Result<(LinearMixedModel, Mat<f64>), String> {
    let all: Vec<usize>;
    let rows = match &data.rows {
        Some(rows) => rows,
        None => {
            all = (0..design.x.nrows()).collect();
            &all
        }
    };
    let (n, p) = (rows.len(), design.x.ncols());
    if n <= p {
        return Err(format!(
            "{n} observations are too few for {p} fixed effects"
        ));
    }
    let (terms, x) = rows_structure(design, rows, true)?;
    let model = LinearMixedModel::new(terms, x.as_ref(), data.weights.clone(), design.choice)
        .map_err(|e| e.to_string())?;
    Ok((model, x))
}

/// The random-effects terms and fixed-effects matrix of a gene's `rows`, or why it cannot be
/// fitted: lme4's checks on the rows left (every grouping factor with at least two levels
/// observed; for lmer (`linear`) also fewer levels and random effects than observations, which
/// glmer does not ask; X of full column rank). Levels without rows stay in the structure: their
/// random effects are 0 and add nothing to the objective, which is that of the model without them.
pub(crate) fn rows_structure(
    design: BatchDesign<'_>,
    rows: &[usize],
    linear: bool,
) -> std::result::Result<(Vec<RandomEffectsTerm>, Mat<f64>), String> {
    let n = rows.len();
    let mut terms = Vec::with_capacity(design.terms.len());
    for (position, term) in design.terms.iter().enumerate() {
        let codes: Vec<u32> = rows.iter().map(|&i| term.codes[i]).collect();
        let mut observed = vec![false; term.n_levels];
        for &code in &codes {
            observed[code as usize] = true;
        }
        let levels = observed.iter().filter(|&&o| o).count();
        if levels < 2 {
            return Err(format!(
                "the grouping factor of random-effects term {} has {levels} level with observations: its variance cannot be estimated",
                position + 1
            ));
        }
        if linear && (levels >= n || levels * term.k >= n) {
            return Err(format!(
                "random-effects term {} has {} random effects for {n} observations: unidentifiable",
                position + 1,
                levels * term.k
            ));
        }
        let z = rows
            .iter()
            .flat_map(|&i| term.z[i * term.k..(i + 1) * term.k].iter().copied())
            .collect();
        terms.push(
            RandomEffectsTerm::new(codes, term.n_levels, term.k, z).map_err(|e| e.to_string())?,
        );
    }
    let x = Mat::from_fn(n, design.x.ncols(), |r, c| design.x[(rows[r], c)]);
    let dependent = dependent_columns(x.as_ref(), RANK_TOLERANCE);
    if !dependent.is_empty() {
        let columns: Vec<String> = dependent.iter().map(|c| (c + 1).to_string()).collect();
        return Err(format!(
            "fixed-effects column(s) {} depend on earlier ones on this gene's observations",
            columns.join(", ")
        ));
    }
    Ok((terms, x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::common::{on_threads as on_pool, Lcg};

    const N_SUBJECTS: usize = 12;
    const N_ITEMS: usize = 5;
    const N: usize = N_SUBJECTS * N_ITEMS;

    /// 12 subjects × 5 items crossed, an intercept and a covariate.
    fn design_parts() -> (Vec<RandomEffectsTerm>, Mat<f64>) {
        let subjects = RandomEffectsTerm::new(
            (0..N).map(|i| (i / N_ITEMS) as u32).collect(),
            N_SUBJECTS,
            1,
            vec![1.0; N],
        )
        .unwrap();
        let items = RandomEffectsTerm::new(
            (0..N).map(|i| (i % N_ITEMS) as u32).collect(),
            N_ITEMS,
            1,
            vec![1.0; N],
        )
        .unwrap();
        let x = Mat::from_fn(N, 2, |i, c| {
            if c == 0 {
                1.0
            } else {
                ((i * 7) % 11) as f64 / 3.0
            }
        });
        (vec![subjects, items], x)
    }

    /// `genes` responses with subject and item effects of varying size.
    fn responses(genes: usize, seed: u64) -> Mat<f64> {
        let mut rng = Lcg(seed);
        let mut y = Mat::zeros(N, genes);
        for g in 0..genes {
            let subject: Vec<f64> = (0..N_SUBJECTS).map(|_| rng.uniform() - 0.5).collect();
            let item: Vec<f64> = (0..N_ITEMS).map(|_| rng.uniform() - 0.5).collect();
            for i in 0..N {
                y[(i, g)] = 2.0
                    + 0.3 * ((i * 7) % 11) as f64
                    + (g % 3) as f64 * subject[i / N_ITEMS]
                    + item[i % N_ITEMS]
                    + rng.uniform();
            }
        }
        y
    }

    fn settings() -> OptimizerSettings {
        OptimizerSettings::linear(10_000).unwrap()
    }

    fn fit(
        terms: &[RandomEffectsTerm],
        x: &Mat<f64>,
        y: &Mat<f64>,
        weights: Option<&Mat<f64>>,
        threads: usize,
    ) -> LinearBatchFit {
        let design = BatchDesign {
            terms,
            x: x.as_ref(),
            choice: FactorizationChoice::Automatic,
        };
        let responses = BatchResponses {
            y: y.as_ref(),
            weights: weights.map(|w| w.as_ref()),
        };
        fit_linear_batch(
            design,
            responses,
            true,
            settings(),
            threads,
            &Interrupt::new(),
        )
        .unwrap()
    }

    /// The single fit of one gene's rows and weights.
    fn single_fit(
        terms: &[RandomEffectsTerm],
        x: &Mat<f64>,
        y: &[f64],
        weights: Option<Vec<f64>>,
        rows: &[usize],
    ) -> crate::lmm::LmmFit {
        let sub_terms = terms
            .iter()
            .map(|t| {
                RandomEffectsTerm::new(
                    rows.iter().map(|&i| t.codes[i]).collect(),
                    t.n_levels,
                    t.k,
                    rows.iter().map(|&i| t.z[i]).collect(),
                )
                .unwrap()
            })
            .collect();
        let sub_x = Mat::from_fn(rows.len(), x.ncols(), |r, c| x[(rows[r], c)]);
        let mut model = LinearMixedModel::new(
            sub_terms,
            sub_x.as_ref(),
            weights,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        let sub_y: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
        model.set_response(sub_x.as_ref(), &sub_y).unwrap();
        model
            .fit(sub_x.as_ref(), true, settings(), &Interrupt::new())
            .unwrap()
    }

    #[test]
    fn every_gene_is_its_own_single_fit_whatever_the_threads() {
        let (terms, x) = design_parts();
        let mut y = responses(19, 3);
        for i in [4, 17, 40] {
            y[(i, 5)] = f64::NAN;
        }
        let one = on_pool(1, || fit(&terms, &x, &y, None, 0));
        let two = fit(&terms, &x, &y, None, 2);
        assert_eq!(one, two);
        assert!(one.errors.iter().all(|e| e.is_none()));
        assert_eq!(one.n_obs[5], N - 3);
        assert_eq!(one.n_obs[6], N);
        let all: Vec<usize> = (0..N).collect();
        for gene in [0, 6, 18] {
            let column: Vec<f64> = y.col(gene).iter().copied().collect();
            let single = single_fit(&terms, &x, &column, None, &all);
            assert_eq!(one.theta[gene * 2..gene * 2 + 2], single.theta[..]);
            assert_eq!(one.beta[gene * 2..gene * 2 + 2], single.beta[..]);
            assert_eq!(
                one.beta_covariance[gene * 4..gene * 4 + 4],
                single.beta_covariance[..]
            );
            assert_eq!(one.sigma[gene], single.sigma);
            assert_eq!(one.objective[gene], single.objective);
        }
        let column: Vec<f64> = y.col(5).iter().copied().collect();
        let rows: Vec<usize> = (0..N).filter(|i| ![4, 17, 40].contains(i)).collect();
        let single = single_fit(&terms, &x, &column, None, &rows);
        assert_eq!(one.theta[10..12], single.theta[..]);
        assert_eq!(one.objective[5], single.objective);
    }

    #[test]
    fn genes_with_weights_are_fitted_with_their_own() {
        let (terms, x) = design_parts();
        let y = responses(5, 8);
        let mut rng = Lcg(2);
        let weights = Mat::from_fn(N, 5, |_, _| 0.5 + rng.uniform());
        let batch = fit(&terms, &x, &y, Some(&weights), 2);
        let all: Vec<usize> = (0..N).collect();
        for gene in 0..5 {
            let column: Vec<f64> = y.col(gene).iter().copied().collect();
            let w = weights.col(gene).iter().copied().collect();
            let single = single_fit(&terms, &x, &column, Some(w), &all);
            assert_eq!(batch.theta[gene * 2..gene * 2 + 2], single.theta[..]);
            assert_eq!(batch.sigma[gene], single.sigma);
        }
    }

    #[test]
    fn a_gene_that_cannot_be_fitted_gets_its_reason_and_nans() {
        let (terms, x) = design_parts();
        let mut y = responses(6, 5);
        let mut weights = Mat::from_fn(N, 6, |_, _| 1.0);
        // 0: constant; 1: all missing; 2: one subject left; 3: a negative weight; 4: too few rows.
        for i in 0..N {
            y[(i, 0)] = 7.25;
            y[(i, 1)] = f64::NAN;
            if i >= N_ITEMS {
                y[(i, 2)] = f64::NAN;
            }
            if i >= 2 {
                y[(i, 4)] = f64::NAN;
            }
        }
        weights[(9, 3)] = -1.0;
        let batch = fit(&terms, &x, &y, Some(&weights), 2);
        let error = |g: usize| batch.errors[g].clone().unwrap_or_default();
        assert!(error(0).contains("constant"), "{}", error(0));
        assert!(error(1).contains("no observed"), "{}", error(1));
        assert!(error(2).contains("1 level"), "{}", error(2));
        assert!(error(3).contains("negative"), "{}", error(3));
        assert!(error(4).contains("too few"), "{}", error(4));
        assert_eq!(batch.errors[5], None);
        assert_eq!(batch.n_obs[..3], [N, 0, N_ITEMS]);
        assert!(batch.theta[..10].iter().all(|t| t.is_nan()));
        assert!(batch.sigma[5].is_finite() && batch.converged[5] && !batch.converged[0]);
    }

    #[test]
    fn derivatives_are_the_single_fits_and_unfitted_genes_get_an_error() {
        let (terms, x) = design_parts();
        let mut y = responses(4, 11);
        y[(3, 1)] = f64::NAN;
        let batch = fit(&terms, &x, &y, None, 2);
        let mut theta = batch.theta.clone();
        theta[6] = f64::NAN;
        let design = BatchDesign {
            terms: &terms,
            x: x.as_ref(),
            choice: FactorizationChoice::Automatic,
        };
        let responses = BatchResponses {
            y: y.as_ref(),
            weights: None,
        };
        let run = |threads: usize| {
            linear_batch_variance_parameter_derivatives(
                design,
                responses,
                &theta,
                &batch.sigma,
                true,
                threads,
                &Interrupt::new(),
            )
            .unwrap()
        };
        let derivatives = run(2);
        // NaN ≠ NaN: compare the printed values, which round-trip.
        assert_eq!(format!("{derivatives:?}"), format!("{:?}", run(1)));
        assert!(derivatives.errors[3].is_some());
        assert!(derivatives.covariance[27..].iter().all(|v| v.is_nan()));
        let mut model = LinearMixedModel::new(
            terms.clone(),
            x.as_ref(),
            None,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        let column: Vec<f64> = y.col(2).iter().copied().collect();
        model.set_response(x.as_ref(), &column).unwrap();
        let single = model
            .variance_parameter_derivatives(&theta[4..6], batch.sigma[2], true, &Interrupt::new())
            .unwrap();
        assert_eq!(derivatives.covariance[18..27], single.covariance[..]);
        assert_eq!(
            derivatives.beta_covariance_jacobian[24..36],
            single.beta_covariance_jacobian[..]
        );
    }

    #[test]
    fn kenward_roger_ingredients_are_the_single_fits_also_on_a_gene_with_missing_rows() {
        let (terms, x) = design_parts();
        let mut y = responses(3, 17);
        y[(5, 1)] = f64::NAN;
        let batch = fit(&terms, &x, &y, None, 2);
        let design = BatchDesign {
            terms: &terms,
            x: x.as_ref(),
            choice: FactorizationChoice::Automatic,
        };
        let responses = BatchResponses {
            y: y.as_ref(),
            weights: None,
        };
        let run = |threads: usize| {
            linear_batch_kenward_roger(
                design,
                responses,
                &batch.theta,
                &batch.sigma,
                threads,
                &Interrupt::new(),
            )
            .unwrap()
        };
        let adjustments = run(2);
        assert_eq!(adjustments, run(1));
        assert!(adjustments.errors.iter().all(Option::is_none));
        let (p, m) = (x.ncols(), 3);
        let observed: Vec<usize> = (0..x.nrows()).filter(|&i| i != 5).collect();
        let (gene_terms, gene_x) = rows_structure(design, &observed, true).unwrap();
        let mut model = LinearMixedModel::new(
            gene_terms,
            gene_x.as_ref(),
            None,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        let single = model
            .kenward_roger_adjustment(&batch.theta[2..4], batch.sigma[1], &Interrupt::new())
            .unwrap();
        assert_eq!(
            adjustments.adjusted_beta_covariance[p * p..2 * p * p],
            single.adjusted_beta_covariance[..]
        );
        assert_eq!(
            adjustments.information_derivatives[m * p * p..2 * m * p * p],
            single.information_derivatives[..]
        );
        assert_eq!(
            adjustments.parameter_covariance[m * m..2 * m * m],
            single.parameter_covariance[..]
        );
    }

    #[test]
    fn a_variance_left_on_its_boundary_below_an_interior_optimum_is_refitted() {
        let (terms, x) = design_parts();
        let y = responses(3, 5);
        let mut model =
            LinearMixedModel::new(terms, x.as_ref(), None, FactorizationChoice::Automatic).unwrap();
        let interrupt = Interrupt::new();
        let fit_gene = |model: &mut LinearMixedModel, gene: usize| {
            let column: Vec<f64> = y.col(gene).iter().copied().collect();
            model.set_response(x.as_ref(), &column).unwrap();
            model.fit(x.as_ref(), true, settings(), &interrupt).unwrap()
        };
        // Gene 2 has a large subject variance: an optimum with it on the boundary is a false one.
        let optimum = fit_gene(&mut model, 2);
        assert!(optimum.theta[0] > 0.5);
        let mut theta = optimum.theta.clone();
        theta[0] = 0.0;
        let stuck = LmmFit {
            objective: model.objective(&theta, true).unwrap(),
            theta,
            ..optimum.clone()
        };
        assert!(stuck.objective > optimum.objective + 1.0);
        let left =
            check_boundary_optimum(&mut model, x.as_ref(), stuck, true, settings(), &interrupt)
                .unwrap();
        assert!((left.objective - optimum.objective).abs() < 1e-8 * optimum.objective.abs());
        assert!((left.theta[0] - optimum.theta[0]).abs() < 1e-3);
        // Gene 0 has no subject variance: it stays on the boundary, at a criterion no higher.
        let singular = fit_gene(&mut model, 0);
        assert!(singular.theta[0] < BOUNDARY);
        let kept = check_boundary_optimum(
            &mut model,
            x.as_ref(),
            singular.clone(),
            true,
            settings(),
            &interrupt,
        )
        .unwrap();
        assert!(kept.theta[0] < BOUNDARY);
        assert!(kept.objective <= singular.objective);
    }

    #[test]
    fn an_interrupted_batch_stops_and_bad_shapes_are_refused() {
        let (terms, x) = design_parts();
        let y = responses(20, 1);
        let design = BatchDesign {
            terms: &terms,
            x: x.as_ref(),
            choice: FactorizationChoice::Automatic,
        };
        let interrupt = Interrupt::new();
        interrupt.request();
        let responses = BatchResponses {
            y: y.as_ref(),
            weights: None,
        };
        let stopped = fit_linear_batch(design, responses, true, settings(), 2, &interrupt);
        assert_eq!(stopped, Err(CoreError::Interrupted));
        let short = Mat::<f64>::zeros(N - 1, 3);
        let responses = BatchResponses {
            y: short.as_ref(),
            weights: None,
        };
        let refused = fit_linear_batch(design, responses, true, settings(), 0, &Interrupt::new());
        assert!(matches!(refused, Err(CoreError::InvalidInput(_))));
    }
}
