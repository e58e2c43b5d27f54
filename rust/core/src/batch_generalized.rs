//! One count model (Poisson or negative binomial, log link) fitted to many responses: a GLMM per
//! gene on the same samples, with a common offset (e.g. log library size), as R users loop
//! lme4's `glmer` or `glmer.nb` over genes.
//!
//! Gene g's observations are the rows where its count is finite. Every gene is fitted from lme4's
//! start on a model of its own rows, never warm-started from another gene, so its estimates do
//! not depend on the number of threads or on the other genes. The negative binomial's size is
//! estimated per gene as `glmer.nb` does (see [`crate::negative_binomial`]). A gene that cannot
//! be fitted (all zero, no observations, a grouping factor left with one level, fixed effects
//! that depend on each other on its rows, a failed fit) gets its reason and NaN estimates; only
//! an interruption stops the batch.

use faer::MatRef;
use rayon::prelude::*;

use crate::batch::{on_threads, rows_structure, BatchDesign};
use crate::error::{CoreError, Result};
use crate::families::{Distribution, Family, Link};
use crate::glmm::{GeneralizedLinearMixedModel, GlmmFit, LaplaceObjective};
use crate::interrupt::Interrupt;
use crate::negative_binomial::fit_negative_binomial;
use crate::optimize::OptimizerSettings;
use crate::threads::construction_is_parallel;
use crate::unit_columns::unit_major_columns;

/// The count family of a batch: Poisson, or negative binomial with its size estimated per gene.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountFamily {
    Poisson,
    NegativeBinomial,
}

/// How every gene is fitted: the family, the quadrature (0: lme4's nAGQ = 0, 1: Laplace), the
/// Laplace objective and the optimiser's settings.
#[derive(Debug, Clone, Copy)]
pub struct CountBatchSettings {
    pub family: CountFamily,
    pub n_agq: usize,
    pub laplace: LaplaceObjective,
    pub optimizer: OptimizerSettings,
}

/// Every gene's estimates, gene-major as [`crate::batch::LinearBatchFit`]'s (NaN where a gene
/// has an error).
#[derive(Debug, Clone, PartialEq)]
pub struct CountBatchFit {
    pub n_theta: usize,
    pub n_fixed: usize,
    pub theta: Vec<f64>,
    pub beta: Vec<f64>,
    /// Cov(β̂) from the Hessian of the objective (lme4's default), or from the factorisation
    /// where there is no Hessian (nAGQ = 0) or it is not positive definite (`hessian_covariance`).
    pub beta_covariance: Vec<f64>,
    pub hessian_covariance: Vec<bool>,
    /// The optimised objective (Laplace deviance) and −2 log L with every data constant.
    pub objective: Vec<f64>,
    pub minus_twice_log_likelihood: Vec<f64>,
    /// The negative binomial's estimated size (NaN for the Poisson).
    pub size: Vec<f64>,
    pub converged: Vec<bool>,
    pub pirls_converged: Vec<bool>,
    pub n_obs: Vec<usize>,
    pub errors: Vec<Option<String>>,
}

/// One gene's fit and its size (NaN for the Poisson).
struct GeneFit {
    fit: GlmmFit,
    size: f64,
}

/// Fit every column of `counts` (n × G, NaN = missing) with the common `offset` (n values), each
/// gene from lme4's start, on `threads` threads (0: the current rayon pool); `interrupt` is
/// checked before every gene and inside every fit.
pub fn fit_count_batch(
    design: BatchDesign<'_>,
    counts: MatRef<'_, f64>,
    offset: &[f64],
    settings: CountBatchSettings,
    threads: usize,
    interrupt: &Interrupt,
) -> Result<CountBatchFit> {
    check_common_input(design, counts, offset, settings)?;
    let n_genes = counts.ncols();
    let fit_gene = |gene: usize| -> Result<(usize, std::result::Result<GeneFit, String>)> {
        interrupt.check()?;
        let rows: Vec<usize> = (0..counts.nrows())
            .filter(|&i| counts[(i, gene)].is_finite())
            .collect();
        let outcome = match fit_one(design, counts, offset, settings, gene, &rows, interrupt) {
            Ok(fit) => Ok(fit),
            Err(GeneError::Interrupted) => return Err(CoreError::Interrupted),
            Err(GeneError::Reason(reason)) => Err(reason),
        };
        Ok((rows.len(), outcome))
    };
    // A fit with parallel loops of its own runs the genes one after the other.
    let outcomes: Vec<_> = if construction_is_parallel(design.x.nrows()) {
        (0..n_genes).map(fit_gene).collect::<Result<_>>()?
    } else {
        on_threads(threads, || {
            (0..n_genes)
                .into_par_iter()
                .map(fit_gene)
                .collect::<Result<_>>()
        })??
    };
    let n_theta: usize = design.terms.iter().map(|t| t.n_theta()).sum();
    let p = design.x.ncols();
    let n_obs = outcomes.iter().map(|(n, _)| *n).collect();
    let flag = |of: fn(&GeneFit) -> bool| -> Vec<bool> {
        outcomes
            .iter()
            .map(|(_, gene)| gene.as_ref().is_ok_and(of))
            .collect()
    };
    let hessian_covariance = flag(|g| g.fit.beta_covariance_hessian.is_some());
    let converged = flag(|g| g.fit.optimization.converged);
    let pirls_converged = flag(|g| g.fit.pirls_converged);
    let ([theta, beta, beta_covariance, objective, minus_twice_log_likelihood, size], errors) =
        unit_major_columns(
            outcomes.into_iter().map(|(_, gene)| gene),
            [n_theta, p, p * p, 1, 1, 1],
            |GeneFit { fit, size }| {
                [
                    fit.theta,
                    fit.beta,
                    fit.beta_covariance_hessian
                        .unwrap_or(fit.beta_covariance_factor),
                    vec![fit.objective],
                    vec![fit.minus_twice_log_likelihood],
                    vec![size],
                ]
            },
        );
    Ok(CountBatchFit {
        n_theta,
        n_fixed: p,
        theta,
        beta,
        beta_covariance,
        hessian_covariance,
        objective,
        minus_twice_log_likelihood,
        size,
        converged,
        pirls_converged,
        n_obs,
        errors,
    })
}

/// Why a gene has no fit: an interruption (stops the batch) or its own reason.
enum GeneError {
    Interrupted,
    Reason(String),
}

impl From<CoreError> for GeneError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::Interrupted => Self::Interrupted,
            // A gene's bad data (e.g. all zero) is its reason, not a caller's bad input.
            CoreError::InvalidInput(reason) => Self::Reason(reason),
            other => Self::Reason(other.to_string()),
        }
    }
}

/// Gene `gene`'s fit on its observed `rows`.
fn fit_one(
    design: BatchDesign<'_>,
    counts: MatRef<'_, f64>,
    offset: &[f64],
    settings: CountBatchSettings,
    gene: usize,
    rows: &[usize],
    interrupt: &Interrupt,
) -> std::result::Result<GeneFit, GeneError> {
    if rows.is_empty() {
        return Err(GeneError::Reason("no observed values".into()));
    }
    let complete = rows.len() == counts.nrows();
    let (terms, own_x) = if complete {
        (design.terms.to_vec(), None)
    } else {
        let (terms, x) = rows_structure(design, rows, false).map_err(GeneError::Reason)?;
        (terms, Some(x))
    };
    let x = own_x.as_ref().map_or(design.x, |x| x.as_ref());
    let y: Vec<f64> = rows.iter().map(|&i| counts[(i, gene)]).collect();
    let gene_offset: Vec<f64> = rows.iter().map(|&i| offset[i]).collect();
    let weights = vec![1.0; rows.len()];
    let model = |family: Family| {
        GeneralizedLinearMixedModel::new(
            terms.clone(),
            x,
            y.clone(),
            weights.clone(),
            gene_offset.clone(),
            family,
            design.choice,
        )
        .map(|model| model.with_laplace(settings.laplace))
    };
    match settings.family {
        CountFamily::Poisson => {
            let fit = model(Family::new(Distribution::Poisson, Link::Log))?.fit(
                x,
                settings.n_agq,
                settings.optimizer,
                interrupt,
            )?;
            Ok(GeneFit {
                fit,
                size: f64::NAN,
            })
        }
        CountFamily::NegativeBinomial => {
            let fit = fit_negative_binomial(
                model,
                x,
                &y,
                &weights,
                Link::Log,
                settings.n_agq,
                settings.optimizer,
                interrupt,
            )?;
            Ok(GeneFit {
                fit: fit.fit,
                size: fit.size,
            })
        }
    }
}

/// Problems common to every gene, refused before any fitting.
fn check_common_input(
    design: BatchDesign<'_>,
    counts: MatRef<'_, f64>,
    offset: &[f64],
    settings: CountBatchSettings,
) -> Result<()> {
    let n = design.x.nrows();
    if counts.nrows() != n || offset.len() != n {
        return Err(CoreError::InvalidInput(format!(
            "the counts have {} samples and the offset {}, the design {n}",
            counts.nrows(),
            offset.len()
        )));
    }
    if let Some(term) = design.terms.iter().find(|t| t.n_obs() != n) {
        return Err(CoreError::InvalidInput(format!(
            "a random-effects term has {} observations, the design {n}",
            term.n_obs()
        )));
    }
    if offset.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::InvalidInput(
            "the offset has non-finite values".into(),
        ));
    }
    if settings.n_agq > 1 {
        return Err(CoreError::Specification(format!(
            "batch count fits take nAGQ 0 or 1, not {}",
            settings.n_agq
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factorization::FactorizationChoice;
    use crate::terms::RandomEffectsTerm;
    use crate::tests::common::{on_threads as on_pool, Lcg};
    use faer::Mat;

    const N_GROUPS: usize = 10;
    const PER_GROUP: usize = 6;
    const N: usize = N_GROUPS * PER_GROUP;

    /// 10 groups of 6 samples, an intercept and a treatment indicator, offsets of log library
    /// sizes around log 1000.
    fn design_parts() -> (Vec<RandomEffectsTerm>, Mat<f64>, Vec<f64>) {
        let term = RandomEffectsTerm::new(
            (0..N).map(|i| (i / PER_GROUP) as u32).collect(),
            N_GROUPS,
            1,
            vec![1.0; N],
        )
        .unwrap();
        let x = Mat::from_fn(N, 2, |i, c| if c == 0 { 1.0 } else { (i % 2) as f64 });
        let offset = (0..N)
            .map(|i| (1000.0 + 37.0 * ((i * 7) % 13) as f64).ln())
            .collect();
        (vec![term], x, offset)
    }

    /// Overdispersed counts of mean around 5: Poisson draws with a gamma-like multiplicative noise
    /// and group effects of varying size.
    fn counts(genes: usize, seed: u64) -> Mat<f64> {
        let mut rng = Lcg(seed);
        let mut y = Mat::zeros(N, genes);
        for g in 0..genes {
            let groups: Vec<f64> = (0..N_GROUPS).map(|_| rng.uniform() - 0.5).collect();
            for i in 0..N {
                let mean = 5.0
                    * (0.4 * (i % 2) as f64 + (g % 3) as f64 * 0.5 * groups[i / PER_GROUP]).exp()
                    * (0.5 + rng.uniform());
                // Poisson by inversion.
                let (mut k, mut p, u) = (0.0, (-mean).exp(), rng.uniform());
                let mut cumulative = p;
                while u > cumulative {
                    k += 1.0;
                    p *= mean / k;
                    cumulative += p;
                }
                y[(i, g)] = k;
            }
        }
        y
    }

    fn settings(family: CountFamily) -> CountBatchSettings {
        CountBatchSettings {
            family,
            n_agq: 1,
            laplace: LaplaceObjective::Exact,
            optimizer: OptimizerSettings::generalized(10_000).unwrap(),
        }
    }

    fn fit(
        terms: &[RandomEffectsTerm],
        x: &Mat<f64>,
        y: &Mat<f64>,
        offset: &[f64],
        family: CountFamily,
        threads: usize,
    ) -> CountBatchFit {
        let design = BatchDesign {
            terms,
            x: x.as_ref(),
            choice: FactorizationChoice::Automatic,
        };
        fit_count_batch(
            design,
            y.as_ref(),
            offset,
            settings(family),
            threads,
            &Interrupt::new(),
        )
        .unwrap()
    }

    /// The single fit of one gene's column on all rows.
    fn single_fit(
        terms: &[RandomEffectsTerm],
        x: &Mat<f64>,
        y: Vec<f64>,
        offset: &[f64],
        family: Family,
    ) -> GlmmFit {
        let mut model = GeneralizedLinearMixedModel::new(
            terms.to_vec(),
            x.as_ref(),
            y,
            vec![1.0; N],
            offset.to_vec(),
            family,
            FactorizationChoice::Automatic,
        )
        .unwrap();
        model
            .fit(
                x.as_ref(),
                1,
                OptimizerSettings::generalized(10_000).unwrap(),
                &Interrupt::new(),
            )
            .unwrap()
    }

    #[test]
    fn poisson_genes_are_their_single_fits_whatever_the_threads() {
        let (terms, x, offset) = design_parts();
        let mut y = counts(9, 4);
        y[(3, 2)] = f64::NAN;
        let one = on_pool(1, || fit(&terms, &x, &y, &offset, CountFamily::Poisson, 0));
        let two = fit(&terms, &x, &y, &offset, CountFamily::Poisson, 2);
        assert_eq!(format!("{one:?}"), format!("{two:?}"));
        assert!(one.errors.iter().all(|e| e.is_none()));
        assert_eq!((one.n_obs[2], one.n_obs[3]), (N - 1, N));
        for gene in [0, 5] {
            let column = y.col(gene).iter().copied().collect();
            let single = single_fit(
                &terms,
                &x,
                column,
                &offset,
                Family::new(Distribution::Poisson, Link::Log),
            );
            assert_eq!(one.theta[gene], single.theta[0]);
            assert_eq!(one.beta[gene * 2..gene * 2 + 2], single.beta[..]);
            assert_eq!(
                one.minus_twice_log_likelihood[gene],
                single.minus_twice_log_likelihood
            );
            assert_eq!(
                one.beta_covariance[gene * 4..gene * 4 + 4],
                single.beta_covariance_hessian.unwrap()[..]
            );
        }
        assert!(one.size.iter().all(|s| s.is_nan()));
    }

    #[test]
    fn the_negative_binomial_size_maximises_the_likelihood() {
        let (terms, x, offset) = design_parts();
        let y = counts(3, 9);
        let one = on_pool(1, || {
            fit(&terms, &x, &y, &offset, CountFamily::NegativeBinomial, 0)
        });
        let two = fit(&terms, &x, &y, &offset, CountFamily::NegativeBinomial, 2);
        assert_eq!(format!("{one:?}"), format!("{two:?}"));
        for gene in 0..3 {
            let size = one.size[gene];
            let column: Vec<f64> = y.col(gene).iter().copied().collect();
            let at = |size: f64| {
                let family = Family::new(Distribution::NegativeBinomial { theta: size }, Link::Log);
                single_fit(&terms, &x, column.clone(), &offset, family).minus_twice_log_likelihood
            };
            let best = one.minus_twice_log_likelihood[gene];
            assert_eq!(best, at(size));
            // Within the search's tolerance of the optimum: a step of 1e-3 in log θ either side
            // is no better.
            for factor in [(-1e-3f64).exp(), 1e-3f64.exp()] {
                assert!(at(size * factor) >= best - 1e-9, "gene {gene}");
            }
        }
    }

    #[test]
    fn genes_that_cannot_be_fitted_get_a_reason_and_bad_common_input_is_refused() {
        let (terms, x, offset) = design_parts();
        let mut y = counts(4, 2);
        for i in 0..N {
            y[(i, 0)] = 0.0;
            y[(i, 1)] = f64::NAN;
            if i >= PER_GROUP {
                y[(i, 2)] = f64::NAN;
            }
        }
        let batch = fit(&terms, &x, &y, &offset, CountFamily::Poisson, 2);
        let error = |g: usize| batch.errors[g].clone().unwrap_or_default();
        assert!(error(0).contains("constant"), "{}", error(0));
        assert!(error(1).contains("no observed"), "{}", error(1));
        assert!(error(2).contains("1 level"), "{}", error(2));
        assert_eq!(batch.errors[3], None);
        assert!(batch.beta[..6].iter().all(|b| b.is_nan()));
        let design = BatchDesign {
            terms: &terms,
            x: x.as_ref(),
            choice: FactorizationChoice::Automatic,
        };
        let mut bad_offset = offset.clone();
        bad_offset[4] = f64::INFINITY;
        let refused = fit_count_batch(
            design,
            y.as_ref(),
            &bad_offset,
            settings(CountFamily::Poisson),
            0,
            &Interrupt::new(),
        );
        assert!(matches!(refused, Err(CoreError::InvalidInput(_))));
        let interrupt = Interrupt::new();
        interrupt.request();
        let stopped = fit_count_batch(
            design,
            y.as_ref(),
            &offset,
            settings(CountFamily::NegativeBinomial),
            2,
            &interrupt,
        );
        assert_eq!(stopped, Err(CoreError::Interrupted));
    }
}
