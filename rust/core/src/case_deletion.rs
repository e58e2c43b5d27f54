//! Case deletion for influence diagnostics (Cook's distance, MDFFITS, COVTRACE, COVRATIO, RVC):
//! the model refitted once per deletion unit (a group, or an observation) without that unit's
//! rows, in parallel over units.
//!
//! A linear model's unit that removes few rows (at most [`LARGEST_DOWNDATED_FRACTION`] of them,
//! e.g. one observation) is refitted on the full model's cross-products minus its rows'
//! contributions, on the full model's structure and symbolic factorisation
//! ([`LinearMixedModel::set_without_rows`]): O(rows removed) to set up instead of a pass over
//! the n − 1 others. Any other unit, and every unit of a generalized model (whose PIRLS passes
//! over the rows anyway), gets the batch machinery's model of its remaining rows
//! ([`crate::batch::rows_structure`], [`crate::batch::own_model`]). Either way, levels left
//! without rows stay in the structure with random effects 0, which is the model without them,
//! and lme4's checks on the remaining rows apply. Two methods:
//!
//! - exact: the refit is optimised from the full fit's estimates (warm start, as lme4's
//!   `influence.merMod`, but converged to the usual tolerance); a variance the refit leaves on
//!   its boundary is probed off it as in the batch fits, so a warm start does not stick there;
//! - one-step: θ and σ stay at the full fit's and only β̂ and Cov(β̂) are recomputed on the
//!   remaining rows (Christensen, Pearson & Johnson 1992; HLMdiag's approximation), linear models
//!   only.
//!
//! Every unit's answer depends on its rows and the full fit alone, not on the number of threads.

use faer::MatRef;
use rayon::prelude::*;

use crate::batch::{
    check_boundary_optimum, on_threads, own_model, rows_structure, BatchDesign, GeneData,
};
use crate::error::{CoreError, Result};
use crate::families::Family;
use crate::glmm::{GeneralizedLinearMixedModel, GlmmControl, LaplaceObjective};
use crate::interrupt::Interrupt;
use crate::lmm::LinearMixedModel;
use crate::optimize::OptimizerSettings;
use crate::threads::construction_is_parallel;
use crate::unit_columns::unit_major_columns;

/// A linear model's unit removing at most this fraction of the rows is refitted on the full
/// model's cross-products downdated by its rows; a larger one on the model rebuilt from the rows
/// it leaves. Subtracting a row from a sum over the n rows leaves an error of about ε times the
/// sum, which is ε relative to what remains while most of the rows remain; the more is removed,
/// the larger the remainder's relative error (and lme4's checks, which the downdate settles
/// only when they clearly pass, become likelier to bite), so large units are recomputed exactly
/// from their rows. A level emptied by the unit is zeroed exactly either way.
const LARGEST_DOWNDATED_FRACTION: f64 = 0.1;
/// The first step of a linear refit from the full fit's θ (lme4's start is 0.75 away from its
/// optimum, the full fit's a deletion away). On the 5,000-row observation-deletion benchmark
/// the refits took 23 evaluations each on average from this radius, against 53 from 0.75 and
/// 21 from 0.01; the final radius, the accuracy, is unchanged.
const WARM_START_RADIUS: f64 = 0.05;
/// After a downdate the fixed-effects columns left count as independent when every pivot of the
/// Cholesky factor of their cross-product is at least this fraction of its column's norm: far
/// above lme4's rank tolerance (1e-7 × √p, `check.rankX`), so the conditioning the
/// cross-product squares cannot turn the answer. Anything less goes to the rebuilt model's QR
/// check ([`crate::rank::dependent_columns`]), which decides and words the refusal.
const CLEARLY_INDEPENDENT: f64 = 1e-3;

/// How a deleted unit's estimates are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionMethod {
    /// Refit every parameter, warm-started at the full fit.
    Exact,
    /// θ and σ held at the full fit; β̂ and Cov(β̂) on the remaining rows.
    OneStep,
}

/// The rows and data of a case-deletion analysis: `units[i]` is the deletion unit of row i (in
/// `0..n_units`; for observation deletion, i itself).
#[derive(Clone, Copy)]
pub struct DeletionUnits<'a> {
    pub design: BatchDesign<'a>,
    pub units: &'a [u32],
    pub n_units: usize,
}

/// The full fit a deletion analysis starts from (user's θ order, the fitted parameterisation).
#[derive(Clone, Copy)]
pub struct FullEstimates<'a> {
    pub theta: &'a [f64],
    pub beta: &'a [f64],
    /// σ (linear) or √dispersion (generalized).
    pub sigma: f64,
}

/// Every unit's estimates, unit-major: unit u's θ is `theta[u·n_θ .. (u+1)·n_θ]`, its Cov(β̂)
/// the p×p column-major block u. A unit whose refit failed has NaN estimates and its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletionFits {
    pub n_theta: usize,
    pub n_fixed: usize,
    pub theta: Vec<f64>,
    pub beta: Vec<f64>,
    /// Cov(β̂) of the refit: σ² (R_X R_Xᵀ)⁻¹ (for a GLMM the dispersion times it, lme4's
    /// `vcov(use.hessian = FALSE)`).
    pub beta_covariance: Vec<f64>,
    /// σ (linear) or √dispersion (generalized).
    pub sigma: Vec<f64>,
    pub converged: Vec<bool>,
    pub n_evaluations: Vec<usize>,
    /// Rows each unit removes.
    pub n_rows_deleted: Vec<usize>,
    pub errors: Vec<Option<String>>,
}

/// One unit's estimates, as [`DeletionFits`] holds them.
struct UnitEstimates {
    theta: Vec<f64>,
    beta: Vec<f64>,
    beta_covariance: Vec<f64>,
    sigma: f64,
    converged: bool,
    n_evaluations: usize,
}

/// Refit a linear mixed model without each unit, by REML (`reml`) or ML, from `full`.
#[allow(clippy::too_many_arguments)]
pub fn linear_case_deletion(
    deletion: DeletionUnits<'_>,
    y: &[f64],
    weights: Option<&[f64]>,
    reml: bool,
    full: FullEstimates<'_>,
    method: DeletionMethod,
    settings: OptimizerSettings,
    threads: usize,
    interrupt: &Interrupt,
) -> Result<DeletionFits> {
    check_lengths(deletion, &[y.len()], weights.map(<[f64]>::len))?;
    let design = deletion.design;
    let n_fixed = design.x.ncols();
    let settings = settings.with_initial_radius(WARM_START_RADIUS);
    let refit = |model: &mut LinearMixedModel, x: MatRef<'_, f64>| -> Result<UnitEstimates> {
        match method {
            DeletionMethod::Exact => {
                let fit = model.fit_from(x, reml, full.theta, settings, interrupt)?;
                let fit = check_boundary_optimum(model, x, fit, reml, settings, interrupt)?;
                Ok(UnitEstimates {
                    theta: fit.theta,
                    beta: fit.beta,
                    beta_covariance: fit.beta_covariance,
                    sigma: fit.sigma,
                    converged: fit.optimization.converged,
                    n_evaluations: fit.optimization.n_evaluations,
                })
            }
            DeletionMethod::OneStep => {
                let parts = model.deviance_parts(full.theta, reml)?;
                let scale = full.sigma * full.sigma;
                let covariance = parts
                    .unscaled_beta_covariance
                    .iter()
                    .map(|v| v * scale)
                    .collect();
                let beta = model.conditional_fixed_effects();
                debug_assert_eq!(beta.len(), n_fixed);
                Ok(UnitEstimates {
                    theta: full.theta.to_vec(),
                    beta,
                    beta_covariance: covariance,
                    sigma: full.sigma,
                    converged: true,
                    n_evaluations: 1,
                })
            }
        }
    };
    let rebuilt = |rows: &[usize]| -> Result<UnitEstimates> {
        let data = GeneData {
            rows: Some(rows.to_vec()),
            y: rows.iter().map(|&i| y[i]).collect(),
            weights: weights.map(|w| rows.iter().map(|&i| w[i]).collect()),
        };
        let (mut model, x) = own_model(design, &data).map_err(CoreError::Specification)?;
        model.set_response(x.as_ref(), &data.y)?;
        refit(&mut model, x.as_ref())
    };
    let shared = SharedFull::new(design, y, weights)?;
    let unit_rows = UnitRows::new(deletion);
    // Refits with parallel loops of their own (large dense blocks) run one after the other.
    let sequential = shared.model.factorization_is_parallel();
    let outcomes = over_units(
        deletion.n_units,
        sequential,
        threads,
        || shared.workspace(),
        |workspace, u| {
            interrupt.check()?;
            let deleted = unit_rows.of(u);
            let downdated = match workspace {
                Ok(workspace) => workspace.downdate(&shared, design.x, y, deleted),
                Err(err) => Err(err.clone()),
            }?;
            let estimates = match downdated {
                Some(model) => refit(model, design.x),
                None => rebuilt(&unit_rows.kept(u)),
            };
            outcome(deleted.len(), estimates)
        },
    )?;
    Ok(collect(outcomes, full.theta.len(), n_fixed))
}

/// What the downdated refits share: the full model with its response installed, every level's
/// number of rows, the number of levels with rows per term, the rows of positive weight and XᵀX
/// (unweighted, p × p).
struct SharedFull {
    model: LinearMixedModel,
    informative_rows: usize,
    level_rows: Vec<Vec<u32>>,
    observed_levels: Vec<usize>,
    gram: Vec<f64>,
}

impl SharedFull {
    fn new(design: BatchDesign<'_>, y: &[f64], weights: Option<&[f64]>) -> Result<Self> {
        let x = design.x;
        let mut model = LinearMixedModel::new(
            design.terms.to_vec(),
            x,
            weights.map(<[f64]>::to_vec),
            design.choice,
        )?;
        model.set_response(x, y)?;
        let level_rows: Vec<Vec<u32>> = design
            .terms
            .iter()
            .map(|term| {
                let mut counts = vec![0u32; term.n_levels];
                for &code in &term.codes {
                    counts[code as usize] += 1;
                }
                counts
            })
            .collect();
        let observed_levels = level_rows
            .iter()
            .map(|counts| counts.iter().filter(|&&c| c > 0).count())
            .collect();
        let p = x.ncols();
        let gram = (0..p * p)
            .map(|e| {
                let (a, b) = (e % p, e / p);
                x.col(a)
                    .iter()
                    .zip(x.col(b).iter())
                    .map(|(u, v)| u * v)
                    .sum()
            })
            .collect();
        Ok(Self {
            model,
            informative_rows: weights.map_or(x.nrows(), |w| w.iter().filter(|&&v| v > 0.0).count()),
            level_rows,
            observed_levels,
            gram,
        })
    }

    /// One thread's model to downdate (a replica of the full one) and level counts to update.
    fn workspace(&self) -> Result<Workspace> {
        Ok(Workspace {
            model: self.model.replica()?,
            rows_left: self.level_rows.clone(),
        })
    }
}

/// One thread's scratch: the model it downdates, and every level's rows left (the full counts
/// between units).
struct Workspace {
    model: LinearMixedModel,
    rows_left: Vec<Vec<u32>>,
}

impl Workspace {
    /// The model without the `deleted` rows, downdated from the full one, when the unit is small
    /// and lme4's checks on the rows left clearly pass; None sends the unit to the rebuilt model
    /// (which runs the checks exactly and says why a unit cannot be refitted).
    fn downdate(
        &mut self,
        shared: &SharedFull,
        x: MatRef<'_, f64>,
        y: &[f64],
        deleted: &[usize],
    ) -> Result<Option<&mut LinearMixedModel>> {
        let (n, p) = (x.nrows(), x.ncols());
        let kept = n - deleted.len();
        if deleted.len() as f64 > LARGEST_DOWNDATED_FRACTION * n as f64 || kept <= p {
            return Ok(None);
        }
        let terms = shared.model.terms();
        let mut levels_left = shared.observed_levels.clone();
        for (t, term) in terms.iter().enumerate() {
            for &i in deleted {
                let count = &mut self.rows_left[t][term.codes[i] as usize];
                *count -= 1;
                if *count == 0 {
                    levels_left[t] -= 1;
                }
            }
        }
        // rows_structure's checks for lmer: two levels or more, fewer levels and random
        // effects than observations; some positive weight left; X of full rank.
        let levels_pass = terms
            .iter()
            .zip(&levels_left)
            .all(|(term, &levels)| levels >= 2 && levels < kept && levels * term.k < kept);
        let informative = match shared.model.weights() {
            Some(w) => deleted.iter().filter(|&&i| w[i] > 0.0).count() < shared.informative_rows,
            None => true,
        };
        let clear = levels_pass && informative && clearly_full_rank(&shared.gram, x, deleted);
        if clear {
            self.model
                .set_without_rows(&shared.model, x, y, deleted, &self.rows_left);
        }
        for (t, term) in terms.iter().enumerate() {
            for &i in deleted {
                self.rows_left[t][term.codes[i] as usize] += 1;
            }
        }
        Ok(clear.then_some(&mut self.model))
    }
}

/// Whether the columns of `x` without the `deleted` rows are clearly independent: the Cholesky
/// factor of their cross-product (`gram`, all rows', minus the deleted rows') has every pivot at
/// least [`CLEARLY_INDEPENDENT`] of its column's norm.
fn clearly_full_rank(gram: &[f64], x: MatRef<'_, f64>, deleted: &[usize]) -> bool {
    let p = x.ncols();
    let mut g = gram.to_vec();
    for &i in deleted {
        for b in 0..p {
            for a in 0..p {
                g[a + b * p] -= x[(i, a)] * x[(i, b)];
            }
        }
    }
    // Left-looking Cholesky of the lower triangle, in place.
    for c in 0..p {
        let norm_squared = g[c + c * p];
        let pivot = norm_squared - (0..c).map(|j| g[c + j * p].powi(2)).sum::<f64>();
        if !(norm_squared > 0.0 && pivot > CLEARLY_INDEPENDENT.powi(2) * norm_squared) {
            return false;
        }
        let pivot = pivot.sqrt();
        g[c + c * p] = pivot;
        for r in c + 1..p {
            let dot: f64 = (0..c).map(|j| g[r + j * p] * g[c + j * p]).sum();
            g[r + c * p] = (g[r + c * p] - dot) / pivot;
        }
    }
    true
}

/// Every unit's rows, grouped once (a counting sort): unit u's are `rows[start[u]..start[u+1]]`.
struct UnitRows {
    start: Vec<usize>,
    rows: Vec<usize>,
    units: Vec<u32>,
}

impl UnitRows {
    fn new(deletion: DeletionUnits<'_>) -> Self {
        let mut start = vec![0usize; deletion.n_units + 1];
        for &u in deletion.units {
            start[u as usize + 1] += 1;
        }
        for u in 0..deletion.n_units {
            start[u + 1] += start[u];
        }
        let mut next = start.clone();
        let mut rows = vec![0usize; deletion.units.len()];
        for (i, &u) in deletion.units.iter().enumerate() {
            rows[next[u as usize]] = i;
            next[u as usize] += 1;
        }
        Self {
            start,
            rows,
            units: deletion.units.to_vec(),
        }
    }

    /// Unit u's rows, ascending.
    fn of(&self, u: usize) -> &[usize] {
        &self.rows[self.start[u]..self.start[u + 1]]
    }

    /// The rows unit u leaves, ascending.
    fn kept(&self, u: usize) -> Vec<usize> {
        (0..self.units.len())
            .filter(|&i| self.units[i] as usize != u)
            .collect()
    }
}

/// A generalized model's data for case deletion: response (proportions for the binomial), prior
/// weights, offset, family, Laplace objective and the number of quadrature points.
#[derive(Clone, Copy)]
pub struct GeneralizedData<'a> {
    pub y: &'a [f64],
    pub prior_weights: &'a [f64],
    pub offset: &'a [f64],
    pub family: Family,
    pub laplace: LaplaceObjective,
    pub n_agq: usize,
}

/// Refit a generalized linear mixed model without each unit, exactly: stage two (θ, β) started
/// at the full fit's estimates.
pub fn generalized_case_deletion(
    deletion: DeletionUnits<'_>,
    data: GeneralizedData<'_>,
    full: FullEstimates<'_>,
    settings: OptimizerSettings,
    threads: usize,
    interrupt: &Interrupt,
) -> Result<DeletionFits> {
    check_lengths(
        deletion,
        &[data.y.len(), data.prior_weights.len(), data.offset.len()],
        None,
    )?;
    let n_fixed = deletion.design.x.ncols();
    let n = deletion.design.x.nrows();
    let unit_rows = UnitRows::new(deletion);
    let refit = |rows: &[usize]| -> Result<UnitEstimates> {
        let (terms, x) =
            rows_structure(deletion.design, rows, false).map_err(CoreError::Specification)?;
        let pick = |values: &[f64]| rows.iter().map(|&i| values[i]).collect::<Vec<f64>>();
        // lme4 1.1's Laplace value depends on where each evaluation's PIRLS starts, which
        // lme4 takes from the end of its first stage (θ with β from PIRLS, nAGQ = 0): that
        // objective is the one of a refit that runs stage one too (from the full fit's θ, which
        // moves stage one's optimum no further than its tolerance), as lme4's own refit from
        // scratch. Without stage one the evaluations start elsewhere, and on cbpp without a herd
        // the fixed effects ended up to 5e-4 relative away, at the exact Laplace fit's. The exact
        // objective does not depend on PIRLS's start: stage two alone, from (θ̂, β̂).
        let lme4_path = data.laplace == LaplaceObjective::Lme4;
        let control = GlmmControl {
            theta_start: Some(full.theta.to_vec()),
            beta_start: (!lme4_path).then(|| full.beta.to_vec()),
            initial_stage: lme4_path,
            ..GlmmControl::default()
        };
        let mut model = GeneralizedLinearMixedModel::new(
            terms,
            x.as_ref(),
            pick(data.y),
            pick(data.prior_weights),
            pick(data.offset),
            data.family,
            deletion.design.choice,
        )?
        .with_laplace(data.laplace)
        .with_control(control)?;
        let fit = model.fit(x.as_ref(), data.n_agq, settings, interrupt)?;
        Ok(UnitEstimates {
            theta: fit.theta,
            beta: fit.beta,
            beta_covariance: fit.beta_covariance_factor,
            sigma: fit.dispersion.sqrt(),
            converged: fit.optimization.converged,
            n_evaluations: fit.optimization.n_evaluations,
        })
    };
    // One refit after the other when the model is large enough for its construction to be
    // parallel itself.
    let outcomes = over_units(
        deletion.n_units,
        construction_is_parallel(n),
        threads,
        || (),
        |_, u| {
            interrupt.check()?;
            let kept = unit_rows.kept(u);
            outcome(n - kept.len(), refit(&kept))
        },
    )?;
    Ok(collect(outcomes, full.theta.len(), n_fixed))
}

fn check_lengths(
    deletion: DeletionUnits<'_>,
    lengths: &[usize],
    weights: Option<usize>,
) -> Result<()> {
    let n = deletion.design.x.nrows();
    if deletion.units.len() != n
        || lengths.iter().any(|&len| len != n)
        || weights.is_some_and(|len| len != n)
    {
        return Err(CoreError::InvalidInput(format!(
            "the deletion units, response, weights and offset must have one value per row ({n})"
        )));
    }
    if let Some(&bad) = deletion
        .units
        .iter()
        .find(|&&u| u as usize >= deletion.n_units)
    {
        return Err(CoreError::InvalidInput(format!(
            "deletion unit {bad} out of range for {} units",
            deletion.n_units
        )));
    }
    Ok(())
}

/// `work(scratch, u)` for every unit u: in parallel over units on `threads` threads (0: the
/// current pool), each rayon job with scratch from `init`, or one after the other
/// (`sequential`). Every unit's answer must depend on the unit alone, not on the scratch's past.
fn over_units<S, T: Send>(
    n_units: usize,
    sequential: bool,
    threads: usize,
    init: impl Fn() -> S + Sync + Send,
    work: impl Fn(&mut S, usize) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    if sequential {
        let mut scratch = init();
        return (0..n_units).map(|u| work(&mut scratch, u)).collect();
    }
    on_threads(threads, || {
        (0..n_units)
            .into_par_iter()
            .map_init(&init, |scratch, u| work(scratch, u))
            .collect::<Result<Vec<_>>>()
    })?
}

/// A unit's rows deleted and estimates, or why it has none; an interruption stops everything.
fn outcome(
    deleted: usize,
    estimates: Result<UnitEstimates>,
) -> Result<(usize, std::result::Result<UnitEstimates, String>)> {
    match estimates {
        Ok(estimates) => Ok((deleted, Ok(estimates))),
        Err(CoreError::Interrupted) => Err(CoreError::Interrupted),
        Err(err) => Ok((deleted, Err(err.to_string()))),
    }
}

fn collect(
    outcomes: Vec<(usize, std::result::Result<UnitEstimates, String>)>,
    n_theta: usize,
    p: usize,
) -> DeletionFits {
    let n_rows_deleted = outcomes.iter().map(|(deleted, _)| *deleted).collect();
    let converged = outcomes
        .iter()
        .map(|(_, estimates)| estimates.as_ref().is_ok_and(|e| e.converged))
        .collect();
    let n_evaluations = outcomes
        .iter()
        .map(|(_, estimates)| estimates.as_ref().map_or(0, |e| e.n_evaluations))
        .collect();
    let ([theta, beta, beta_covariance, sigma], errors) = unit_major_columns(
        outcomes.into_iter().map(|(_, estimates)| estimates),
        [n_theta, p, p * p, 1],
        |e| [e.theta, e.beta, e.beta_covariance, vec![e.sigma]],
    );
    DeletionFits {
        n_theta,
        n_fixed: p,
        theta,
        beta,
        beta_covariance,
        sigma,
        converged,
        n_evaluations,
        n_rows_deleted,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factorization::FactorizationChoice;
    use crate::lmm::LinearMixedModel;
    use crate::terms::RandomEffectsTerm;
    use crate::tests::common::{on_threads as on_pool, random_intercept_data, Lcg, PER_GROUP};
    use faer::Mat;

    const GROUPS: usize = 8;
    const N: usize = GROUPS * PER_GROUP;

    fn data() -> (Vec<RandomEffectsTerm>, Mat<f64>, Vec<f64>) {
        random_intercept_data(GROUPS)
    }

    /// The model of `rows` alone, built from scratch, and its REML fit.
    fn fit_from_scratch(
        design: BatchDesign<'_>,
        y: &[f64],
        rows: &[usize],
    ) -> (LinearMixedModel, crate::lmm::LmmFit) {
        let (sub_terms, sub_x) = rows_structure(design, rows, true).unwrap();
        let mut model = LinearMixedModel::new(
            sub_terms,
            sub_x.as_ref(),
            None,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        let sub_y: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
        model.set_response(sub_x.as_ref(), &sub_y).unwrap();
        let fit = model
            .fit(sub_x.as_ref(), true, settings(), &Interrupt::new())
            .unwrap();
        (model, fit)
    }

    fn settings() -> OptimizerSettings {
        OptimizerSettings::linear(10_000).unwrap()
    }

    #[test]
    fn exact_deletion_is_the_refit_without_the_unit_whatever_the_threads() {
        let (terms, x, y) = data();
        let mut full = LinearMixedModel::new(
            terms.clone(),
            x.as_ref(),
            None,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        full.set_response(x.as_ref(), &y).unwrap();
        let fit = full
            .fit(x.as_ref(), true, settings(), &Interrupt::new())
            .unwrap();
        let units: Vec<u32> = terms[0].codes.clone();
        let deletion = DeletionUnits {
            design: BatchDesign {
                terms: &terms,
                x: x.as_ref(),
                choice: FactorizationChoice::Automatic,
            },
            units: &units,
            n_units: GROUPS,
        };
        let estimates = FullEstimates {
            theta: &fit.theta,
            beta: &fit.beta,
            sigma: fit.sigma,
        };
        let run = |threads: usize, method: DeletionMethod| {
            linear_case_deletion(
                deletion,
                &y,
                None,
                true,
                estimates,
                method,
                settings(),
                threads,
                &Interrupt::new(),
            )
            .unwrap()
        };
        let exact = run(2, DeletionMethod::Exact);
        assert_eq!(exact, on_pool(1, || run(0, DeletionMethod::Exact)));
        assert_eq!(exact.n_rows_deleted, vec![PER_GROUP; GROUPS]);
        // Group 3 deleted, fitted from scratch.
        let rows: Vec<usize> = (0..N).filter(|i| i / PER_GROUP != 3).collect();
        let (mut model, scratch) = fit_from_scratch(deletion.design, &y, &rows);
        for c in 0..2 {
            assert!((exact.beta[3 * 2 + c] - scratch.beta[c]).abs() < 1e-5);
        }
        assert!((exact.sigma[3] - scratch.sigma).abs() < 1e-5 * scratch.sigma);
        // One-step keeps θ and σ and gives the generalised least-squares β̂ at them.
        let one_step = run(2, DeletionMethod::OneStep);
        assert_eq!(one_step.theta[3], fit.theta[0]);
        assert_eq!(one_step.sigma[3], fit.sigma);
        let parts = model.deviance_parts(&fit.theta, true).unwrap();
        let beta = model.conditional_fixed_effects();
        assert_eq!(one_step.beta[6..8], beta[..]);
        assert!(
            (one_step.beta_covariance[12] - parts.unscaled_beta_covariance[0] * fit.sigma.powi(2))
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn a_downdated_model_has_the_criterion_of_the_model_of_the_rows_left() {
        // 20 groups: deleting group 3 removes 5 % of the rows and empties its level.
        let (terms, x, y) = random_intercept_data(20);
        let mut rng = Lcg(12);
        let weights: Vec<f64> = (0..x.nrows()).map(|_| 0.5 + rng.uniform()).collect();
        let design = BatchDesign {
            terms: &terms,
            x: x.as_ref(),
            choice: FactorizationChoice::Automatic,
        };
        let shared = SharedFull::new(design, &y, Some(&weights)).unwrap();
        let mut workspace = shared.workspace().unwrap();
        let deleted: Vec<usize> = (3 * PER_GROUP..4 * PER_GROUP).collect();
        let kept: Vec<usize> = (0..x.nrows()).filter(|i| !deleted.contains(i)).collect();
        let data = GeneData {
            rows: Some(kept.clone()),
            y: kept.iter().map(|&i| y[i]).collect(),
            weights: Some(kept.iter().map(|&i| weights[i]).collect()),
        };
        let (mut rebuilt, sub_x) = own_model(design, &data).unwrap();
        rebuilt.set_response(sub_x.as_ref(), &data.y).unwrap();
        let downdated = workspace
            .downdate(&shared, x.as_ref(), &y, &deleted)
            .unwrap()
            .expect("a small unit is downdated");
        for theta in [0.0, 0.4, 1.3] {
            for reml in [true, false] {
                let a = downdated.objective(&[theta], reml).unwrap();
                let b = rebuilt.objective(&[theta], reml).unwrap();
                assert!((a - b).abs() < 1e-10 * b.abs(), "θ = {theta}: {a} vs {b}");
            }
        }
        // The level counts are the full model's again for the next unit.
        assert_eq!(workspace.rows_left, shared.level_rows);
    }

    #[test]
    fn observation_deletion_is_the_refit_without_the_row_and_keeps_lme4s_checks() {
        // A second factor whose level 1 has only the last row, and a column that is 1 on row 0
        // alone: deleting either row leaves what lme4 refuses.
        let (mut terms, x, mut y) = random_intercept_data(10);
        let n = x.nrows();
        let second = RandomEffectsTerm::new(
            (0..n).map(|i| u32::from(i == n - 1)).collect(),
            2,
            1,
            vec![1.0; n],
        )
        .unwrap();
        terms.push(second);
        let x = Mat::from_fn(
            n,
            3,
            |i, c| if c < 2 { x[(i, c)] } else { f64::from(i == 0) },
        );
        y[0] += 0.3;
        let mut model = LinearMixedModel::new(
            terms.clone(),
            x.as_ref(),
            None,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        model.set_response(x.as_ref(), &y).unwrap();
        let fit = model
            .fit(x.as_ref(), true, settings(), &Interrupt::new())
            .unwrap();
        let units: Vec<u32> = (0..n as u32).collect();
        let deletion = DeletionUnits {
            design: BatchDesign {
                terms: &terms,
                x: x.as_ref(),
                choice: FactorizationChoice::Automatic,
            },
            units: &units,
            n_units: n,
        };
        let estimates = FullEstimates {
            theta: &fit.theta,
            beta: &fit.beta,
            sigma: fit.sigma,
        };
        let run = |threads: usize| {
            linear_case_deletion(
                deletion,
                &y,
                None,
                true,
                estimates,
                DeletionMethod::Exact,
                settings(),
                threads,
                &Interrupt::new(),
            )
            .unwrap()
        };
        let fits = run(2);
        // NaN ≠ NaN: compare the printed values, which round-trip.
        assert_eq!(format!("{fits:?}"), format!("{:?}", on_pool(1, || run(0))));
        let error = |u: usize| fits.errors[u].clone().unwrap_or_default();
        assert!(error(0).contains("depend on earlier"), "{}", error(0));
        assert!(error(n - 1).contains("1 level"), "{}", error(n - 1));
        assert!(fits.errors[1..n - 1].iter().all(Option::is_none));
        // Row 17 deleted, fitted from scratch.
        let rows: Vec<usize> = (0..n).filter(|&i| i != 17).collect();
        let (_, scratch) = fit_from_scratch(deletion.design, &y, &rows);
        for c in 0..3 {
            let ours = fits.beta[17 * 3 + c];
            assert!((ours - scratch.beta[c]).abs() < 1e-5 * (1.0 + scratch.beta[c].abs()));
        }
        assert!((fits.sigma[17] - scratch.sigma).abs() < 1e-5 * scratch.sigma);
        assert_eq!(fits.n_rows_deleted, vec![1; n]);
    }
}
