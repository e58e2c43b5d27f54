//! Case deletion for influence diagnostics (Cook's distance, MDFFITS, COVTRACE, COVRATIO, RVC):
//! the model refitted once per deletion unit (a group, or an observation) without that unit's
//! rows, in parallel over units.
//!
//! Each unit's model is the batch machinery's model of a subset of rows
//! ([`crate::batch::rows_structure`], [`crate::batch::own_model`]): levels left without rows stay
//! in the structure with random effects 0, which is the model without them. Two methods:
//!
//! - exact: the refit is optimised from the full fit's estimates (warm start, as lme4's
//!   `influence.merMod`, but converged to the usual tolerance); a variance the refit leaves on
//!   its boundary is probed off it as in the batch fits, so a warm start does not stick there;
//! - one-step: θ and σ stay at the full fit's and only β̂ and Cov(β̂) are recomputed on the
//!   remaining rows (Christensen, Pearson & Johnson 1992; HLMdiag's approximation), linear models
//!   only.
//!
//! Every unit's answer depends on its rows and the full fit alone, not on the number of threads.

use rayon::prelude::*;

use crate::batch::{
    check_boundary_optimum, on_threads, own_model, rows_structure, BatchDesign, GeneData,
};
use crate::error::{CoreError, Result};
use crate::families::Family;
use crate::glmm::{GeneralizedLinearMixedModel, GlmmControl, LaplaceObjective};
use crate::interrupt::Interrupt;
use crate::optimize::OptimizerSettings;
use crate::threads::construction_is_parallel;

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

/// One unit's estimates: θ, β, Cov(β̂), σ, converged, evaluations.
type UnitEstimates = (Vec<f64>, Vec<f64>, Vec<f64>, f64, bool, usize);

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
    let n_fixed = deletion.design.x.ncols();
    let outcomes = for_each_unit(deletion, threads, interrupt, |rows| {
        let data = GeneData {
            rows: Some(rows.to_vec()),
            y: rows.iter().map(|&i| y[i]).collect(),
            weights: weights.map(|w| rows.iter().map(|&i| w[i]).collect()),
        };
        let (mut model, x) = own_model(deletion.design, &data).map_err(CoreError::Specification)?;
        model.set_response(x.as_ref(), &data.y)?;
        match method {
            DeletionMethod::Exact => {
                let fit = model.fit_from(x.as_ref(), reml, full.theta, settings, interrupt)?;
                let fit =
                    check_boundary_optimum(&mut model, x.as_ref(), fit, reml, settings, interrupt)?;
                Ok((
                    fit.theta,
                    fit.beta,
                    fit.beta_covariance,
                    fit.sigma,
                    fit.optimization.converged,
                    fit.optimization.n_evaluations,
                ))
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
                Ok((full.theta.to_vec(), beta, covariance, full.sigma, true, 1))
            }
        }
    })?;
    Ok(collect(outcomes, full.theta.len(), n_fixed))
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
    let outcomes = for_each_unit(deletion, threads, interrupt, |rows| {
        let (terms, x) =
            rows_structure(deletion.design, rows, false).map_err(CoreError::Specification)?;
        let pick = |values: &[f64]| rows.iter().map(|&i| values[i]).collect::<Vec<f64>>();
        let control = GlmmControl {
            theta_start: Some(full.theta.to_vec()),
            beta_start: Some(full.beta.to_vec()),
            initial_stage: false,
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
        Ok((
            fit.theta,
            fit.beta,
            fit.beta_covariance_factor,
            fit.dispersion.sqrt(),
            fit.optimization.converged,
            fit.optimization.n_evaluations,
        ))
    })?;
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

/// `work(rows kept)` for every unit, in parallel over units (one after the other when the model
/// is large enough for its construction to be parallel itself); an error other than an
/// interruption is that unit's outcome.
fn for_each_unit(
    deletion: DeletionUnits<'_>,
    threads: usize,
    interrupt: &Interrupt,
    work: impl Fn(&[usize]) -> Result<UnitEstimates> + Sync,
) -> Result<Vec<(usize, std::result::Result<UnitEstimates, String>)>> {
    let n = deletion.design.x.nrows();
    let unit = |u: usize| -> Result<(usize, std::result::Result<UnitEstimates, String>)> {
        interrupt.check()?;
        let rows: Vec<usize> = (0..n)
            .filter(|&i| deletion.units[i] as usize != u)
            .collect();
        let deleted = n - rows.len();
        match work(&rows) {
            Ok(estimates) => Ok((deleted, Ok(estimates))),
            Err(CoreError::Interrupted) => Err(CoreError::Interrupted),
            Err(err) => Ok((deleted, Err(err.to_string()))),
        }
    };
    if construction_is_parallel(n) {
        (0..deletion.n_units).map(unit).collect()
    } else {
        on_threads(threads, || {
            (0..deletion.n_units)
                .into_par_iter()
                .map(unit)
                .collect::<Result<Vec<_>>>()
        })?
    }
}

fn collect(
    outcomes: Vec<(usize, std::result::Result<UnitEstimates, String>)>,
    n_theta: usize,
    p: usize,
) -> DeletionFits {
    let n_units = outcomes.len();
    let mut out = DeletionFits {
        n_theta,
        n_fixed: p,
        theta: Vec::with_capacity(n_units * n_theta),
        beta: Vec::with_capacity(n_units * p),
        beta_covariance: Vec::with_capacity(n_units * p * p),
        sigma: Vec::with_capacity(n_units),
        converged: Vec::with_capacity(n_units),
        n_evaluations: Vec::with_capacity(n_units),
        n_rows_deleted: Vec::with_capacity(n_units),
        errors: Vec::with_capacity(n_units),
    };
    for (deleted, outcome) in outcomes {
        out.n_rows_deleted.push(deleted);
        match outcome {
            Ok((theta, beta, covariance, sigma, converged, evaluations)) => {
                out.theta.extend(theta);
                out.beta.extend(beta);
                out.beta_covariance.extend(covariance);
                out.sigma.push(sigma);
                out.converged.push(converged);
                out.n_evaluations.push(evaluations);
                out.errors.push(None);
            }
            Err(message) => {
                out.theta.extend(std::iter::repeat_n(f64::NAN, n_theta));
                out.beta.extend(std::iter::repeat_n(f64::NAN, p));
                out.beta_covariance
                    .extend(std::iter::repeat_n(f64::NAN, p * p));
                out.sigma.push(f64::NAN);
                out.converged.push(false);
                out.n_evaluations.push(0);
                out.errors.push(Some(message));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factorization::FactorizationChoice;
    use crate::lmm::LinearMixedModel;
    use crate::terms::RandomEffectsTerm;
    use crate::tests::common::{on_threads as on_pool, Lcg};
    use faer::Mat;

    const GROUPS: usize = 8;
    const PER_GROUP: usize = 6;
    const N: usize = GROUPS * PER_GROUP;

    fn data() -> (Vec<RandomEffectsTerm>, Mat<f64>, Vec<f64>) {
        let mut rng = Lcg(4);
        let codes: Vec<u32> = (0..N).map(|i| (i / PER_GROUP) as u32).collect();
        let x = Mat::from_fn(
            N,
            2,
            |i, c| if c == 0 { 1.0 } else { (i % PER_GROUP) as f64 },
        );
        let effects: Vec<f64> = (0..GROUPS).map(|_| 2.0 * rng.uniform() - 1.0).collect();
        let y = (0..N)
            .map(|i| 1.0 + 0.5 * x[(i, 1)] + effects[i / PER_GROUP] + rng.uniform())
            .collect();
        let term = RandomEffectsTerm::new(codes, GROUPS, 1, vec![1.0; N]).unwrap();
        (vec![term], x, y)
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
        let (sub_terms, sub_x) = rows_structure(deletion.design, &rows, true).unwrap();
        let mut model = LinearMixedModel::new(
            sub_terms,
            sub_x.as_ref(),
            None,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        let sub_y: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
        model.set_response(sub_x.as_ref(), &sub_y).unwrap();
        let scratch = model
            .fit(sub_x.as_ref(), true, settings(), &Interrupt::new())
            .unwrap();
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
    fn hat_values_are_the_diagonal_of_the_dense_hat_matrix() {
        let (terms, x, y) = data();
        let mut rng = Lcg(9);
        let weights: Vec<f64> = (0..N).map(|_| 0.5 + rng.uniform()).collect();
        let mut model = LinearMixedModel::new(
            terms.clone(),
            x.as_ref(),
            Some(weights.clone()),
            FactorizationChoice::Automatic,
        )
        .unwrap();
        model.set_response(x.as_ref(), &y).unwrap();
        let theta = [0.7];
        let hat = model.hat_values(x.as_ref(), &theta).unwrap();
        // H = W½ M (MᵀWM + diag(I_q, 0))⁻¹ Mᵀ W½ with M = [ZΛ X].
        let q = GROUPS;
        let m = Mat::from_fn(N, q + 2, |i, c| {
            if c < q {
                if terms[0].codes[i] as usize == c {
                    theta[0]
                } else {
                    0.0
                }
            } else {
                x[(i, c - q)]
            }
        });
        let mut a = Mat::from_fn(q + 2, q + 2, |r, c| {
            (0..N)
                .map(|i| m[(i, r)] * weights[i] * m[(i, c)])
                .sum::<f64>()
                + if r == c && r < q { 1.0 } else { 0.0 }
        });
        let inverse = crate::dense::invert_symmetric(
            &(0..(q + 2) * (q + 2))
                .map(|e| a[(e % (q + 2), e / (q + 2))])
                .collect::<Vec<_>>(),
            q + 2,
        )
        .unwrap();
        a.fill(0.0);
        for i in 0..N {
            let mut h = 0.0;
            for r in 0..q + 2 {
                for c in 0..q + 2 {
                    h += m[(i, r)] * inverse[r + c * (q + 2)] * m[(i, c)];
                }
            }
            h *= weights[i];
            assert!((hat[i] - h).abs() < 1e-12, "{i}: {} vs {h}", hat[i]);
        }
    }
}
