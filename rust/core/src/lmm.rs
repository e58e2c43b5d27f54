//! The linear mixed model y = Xβ + Zb + ε, b = Λ(θ)u, u ~ N(0, σ²I), ε ~ N(0, σ²W⁻¹), fitted by
//! minimising the profiled deviance (ML) or REML criterion over θ (Bates et al. 2015, JSS 67(1),
//! eqs. 34 and 41):
//!
//!   −2 log L_ML(θ)   = log|L_Z|² + n (1 + log(2π r²/n)) − Σ log wᵢ
//!   −2 log L_REML(θ) = log|L_Z|² + log|R_X|² + (n−p)(1 + log(2π r²/(n−p))) − Σ log wᵢ

use std::f64::consts::PI;

use faer::MatRef;

use crate::crossproducts::CrossProducts;
use crate::dense::scaled_inverse_gram;
use crate::derivatives::{central_differences, Derivatives};
use crate::error::{CoreError, Result};
use crate::factorization::{Factorization, FactorizationChoice};
use crate::interrupt::Interrupt;
use crate::leverage::hat_values;
use crate::optimize::{minimize, unless_interrupted, OptSummary, OptimizerSettings};
use crate::start_values::{self, moment_start};
use crate::terms::{
    conditional_covariances, random_effects, set_relative_covariance_factors, RandomEffectsTerm,
};
use crate::variance_parameters::DevianceParts;

/// Everything about a fit that depends on the design and the weights but not on the response.
pub struct LinearMixedModel {
    terms: Vec<RandomEffectsTerm>,
    weights: Option<Vec<f64>>,
    cross: CrossProducts,
    factor: Factorization,
    lambdas: Vec<Vec<f64>>,
}

/// A model's terms, θ-free blocks and λ at some θ, for computations beside the factorisation.
pub(crate) struct ModelStructure<'a> {
    pub terms: &'a [RandomEffectsTerm],
    pub cross: &'a CrossProducts,
    pub lambdas: &'a [Vec<f64>],
}

/// The estimates at the optimum.
#[derive(Debug, Clone)]
pub struct LmmFit {
    pub optimization: OptSummary,
    pub theta: Vec<f64>,
    pub beta: Vec<f64>,
    /// Cov(β̂) = σ̂² (R_X R_Xᵀ)⁻¹, p × p column-major.
    pub beta_covariance: Vec<f64>,
    pub sigma: f64,
    /// Conditional modes b = Λu per term, level-major (level a's k values together).
    pub random_effects: Vec<Vec<f64>>,
    /// −2 log L (ML) or the REML criterion at θ̂.
    pub objective: f64,
    /// −2 log L at the estimates, whatever the criterion (lme4's `deviance(m, REML = FALSE)`).
    pub deviance_ml: f64,
    /// r²(θ̂), the penalised weighted residual sum of squares.
    pub pwrss: f64,
    pub log_det_random: f64,
    pub log_det_fixed: f64,
    /// Xβ̂ + Zb̂ (without any offset).
    pub fitted: Vec<f64>,
    /// Gradient and Hessian of the objective in θ at θ̂ when asked for (lme4's
    /// `optinfo$derivs`, see [`LinearMixedModel::objective_derivatives`]).
    pub derivatives: Option<Derivatives>,
}

impl LinearMixedModel {
    /// Analyse the structure and compute the θ-free cross-products once. Terms must come in
    /// lme4's order (decreasing number of levels).
    pub fn new(
        terms: Vec<RandomEffectsTerm>,
        x: MatRef<'_, f64>,
        weights: Option<Vec<f64>>,
        choice: FactorizationChoice,
    ) -> Result<Self> {
        if terms.is_empty() {
            return Err(CoreError::Specification(
                "a mixed model needs at least one random-effects term".into(),
            ));
        }
        if x.nrows() <= x.ncols() {
            return Err(CoreError::Specification(format!(
                "{} observations are too few for {} fixed effects",
                x.nrows(),
                x.ncols()
            )));
        }
        if (0..x.ncols()).any(|c| x.col(c).iter().any(|v| !v.is_finite())) {
            return Err(CoreError::InvalidInput(
                "the fixed-effects model matrix has non-finite values".into(),
            ));
        }
        let cross = CrossProducts::new(&terms, x, weights.as_deref())?;
        let factor = Factorization::new(&cross, choice)?;
        let lambdas = terms.iter().map(|t| vec![0.0; t.k * t.k]).collect();
        Ok(Self {
            terms,
            weights,
            cross,
            factor,
            lambdas,
        })
    }

    pub fn n_theta(&self) -> usize {
        self.terms.iter().map(|t| t.n_theta()).sum()
    }

    fn theta_start(&self) -> Vec<f64> {
        self.terms.iter().flat_map(|t| t.theta_start()).collect()
    }

    pub(crate) fn theta_lower_bounds(&self) -> Vec<f64> {
        self.terms
            .iter()
            .flat_map(|t| t.theta_lower_bounds())
            .collect()
    }

    /// Whether fitting has parallel loops (see [`crate::threads::run_job`]).
    pub fn is_parallel(&self) -> bool {
        self.cross.is_parallel() || self.factor.is_parallel()
    }

    /// Whether factorising has parallel loops (large dense blocks), whatever n.
    pub(crate) fn factorization_is_parallel(&self) -> bool {
        self.factor.is_parallel()
    }

    /// Whether the general sparse factorisation is in use.
    pub fn is_sparse(&self) -> bool {
        self.factor.is_sparse()
    }

    pub fn terms(&self) -> &[RandomEffectsTerm] {
        &self.terms
    }

    fn set_theta(&mut self, theta: &[f64]) -> Result<()> {
        set_relative_covariance_factors(&self.terms, theta, &mut self.lambdas)
    }

    /// The terms, the θ-free blocks and every term's λ at θ (the factorisation is untouched).
    pub(crate) fn structure_at(&mut self, theta: &[f64]) -> Result<ModelStructure<'_>> {
        self.set_theta(theta)?;
        Ok(ModelStructure {
            terms: &self.terms,
            cross: &self.cross,
            lambdas: &self.lambdas,
        })
    }

    /// Prior weights, if any.
    pub(crate) fn weights(&self) -> Option<&[f64]> {
        self.weights.as_deref()
    }

    /// An independent copy for another thread: the same cross-products and the same kind of
    /// factorisation, analysed afresh (the factorisations keep scratch space that is not cloned).
    pub(crate) fn replica(&self) -> Result<Self> {
        let choice = if self.is_sparse() {
            FactorizationChoice::Sparse
        } else {
            FactorizationChoice::Blocked
        };
        Ok(Self {
            terms: self.terms.clone(),
            weights: self.weights.clone(),
            cross: self.cross.clone(),
            factor: Factorization::new(&self.cross, choice)?,
            lambdas: self.lambdas.clone(),
        })
    }

    /// Make this model, a [`Self::replica`] of `full`, the model of `full`'s rows but `rows`:
    /// `full`'s cross-products (response `y` installed; `x` its fixed-effects matrix) downdated
    /// by those rows ([`CrossProducts::remove_rows`]; `rows_left[t][level]` counts the rows each
    /// level of term t keeps). The terms and the factorisation's structure stay `full`'s: a
    /// level left without rows has zero blocks, its random effects are 0 and add nothing to
    /// the criterion (L's tile there is I), which is the criterion of the model without the
    /// level. The prior weights kept are `full`'s, used only by the hat values.
    pub(crate) fn set_without_rows(
        &mut self,
        full: &Self,
        x: MatRef<'_, f64>,
        y: &[f64],
        rows: &[usize],
        rows_left: &[Vec<u32>],
    ) {
        self.cross.copy_values_from(&full.cross);
        self.cross.n_informative = full.cross.n_informative;
        self.cross.sum_log_weights = full.cross.sum_log_weights;
        self.cross
            .remove_rows(&self.terms, x, y, self.weights.as_deref(), rows, rows_left);
    }

    /// Install a new response (the only y-dependent part of the cross-products).
    pub fn set_response(&mut self, x: MatRef<'_, f64>, y: &[f64]) -> Result<()> {
        self.cross
            .set_response(&self.terms, x, y, self.weights.as_deref())
    }

    fn criterion(&self, reml: bool) -> f64 {
        let n = self.cross.n_informative as f64;
        let p = self.cross.n_fixed as f64;
        let r = self.factor.fixed().response_pivot();
        let pwrss = r * r;
        let log_det = self.factor.log_det_random();
        let degrees = if reml { n - p } else { n };
        let mut value = log_det + degrees * (1.0 + (2.0 * PI * pwrss / degrees).ln())
            - self.cross.sum_log_weights;
        if reml {
            value += self.factor.fixed().log_det_fixed();
        }
        value
    }

    /// The profiled objective at θ for the installed response.
    pub fn objective(&mut self, theta: &[f64], reml: bool) -> Result<f64> {
        self.set_theta(theta)?;
        self.factor.factorize(&self.cross, &self.lambdas)?;
        Ok(self.criterion(reml))
    }

    /// Central-difference gradient and Hessian of the profiled objective in θ at `theta` for the
    /// installed response (lme4's `deriv12(devfun, θ̂)` for its convergence check); `interrupt`
    /// is checked before every evaluation. Where the objective cannot be evaluated the value is
    /// NaN, which lme4's check reports as a gradient with NAs. The model is left factorised at
    /// `theta`.
    pub fn objective_derivatives(
        &mut self,
        theta: &[f64],
        reml: bool,
        interrupt: &Interrupt,
    ) -> Result<Derivatives> {
        let centre = self.objective(theta, reml)?;
        let derivatives = central_differences(
            |at| {
                interrupt.check()?;
                Ok(unless_interrupted(self.objective(at, reml))?.unwrap_or(f64::NAN))
            },
            theta,
            centre,
        )?;
        self.objective(theta, reml)?;
        Ok(derivatives)
    }

    /// The parts of the deviance at θ with σ not profiled out, for the installed response.
    pub(crate) fn deviance_parts(&mut self, theta: &[f64], reml: bool) -> Result<DevianceParts> {
        self.set_theta(theta)?;
        self.factor.factorize(&self.cross, &self.lambdas)?;
        let fixed = self.factor.fixed();
        let (r_x, r) = fixed.fixed_effects_factor();
        let mut log_det = self.factor.log_det_random();
        if reml {
            log_det += fixed.log_det_fixed();
        }
        Ok(DevianceParts {
            log_det,
            pwrss: r * r,
            unscaled_beta_covariance: scaled_inverse_gram(&r_x.values, self.cross.n_fixed, 1.0),
        })
    }

    /// β̂(θ) at the θ of the last factorisation (the generalised least-squares estimate there).
    pub(crate) fn conditional_fixed_effects(&self) -> Vec<f64> {
        self.factor.fixed().fixed_effects()
    }

    /// The residual degrees of freedom the criterion uses: n − p (REML) or n (ML).
    pub(crate) fn residual_degrees(&self, reml: bool) -> f64 {
        let n = self.cross.n_informative as f64;
        if reml {
            n - self.cross.n_fixed as f64
        } else {
            n
        }
    }

    /// Optimise θ for the installed response and report the estimates; `interrupt` is checked
    /// before every evaluation. The optimiser starts where [`moment_start`] says, else at lme4's
    /// start.
    pub fn fit(
        &mut self,
        x: MatRef<'_, f64>,
        reml: bool,
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<LmmFit> {
        match moment_start(&self.terms, &self.cross) {
            Some(start) => {
                let largest = start.iter().fold(1.0f64, |m, v| m.max(*v));
                let settings = settings.with_initial_radius(start_values::RADIUS * largest);
                self.fit_from(x, reml, &start, settings, interrupt)
            }
            None => {
                let start = self.theta_start();
                self.fit_from(x, reml, &start, settings, interrupt)
            }
        }
    }

    /// As [`Self::fit`] with the optimiser started at `start` (lme4's `refit` starts at the
    /// previous θ̂).
    pub fn fit_from(
        &mut self,
        x: MatRef<'_, f64>,
        reml: bool,
        start: &[f64],
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<LmmFit> {
        if start.len() != self.n_theta() {
            return Err(CoreError::InvalidInput(format!(
                "the starting theta has {} values, the model {}",
                start.len(),
                self.n_theta()
            )));
        }
        let lower = self.theta_lower_bounds();
        let summary = minimize(
            |theta| self.objective(theta, reml),
            start,
            &lower,
            settings,
            interrupt,
        )?;
        self.estimates_at(x, summary, reml)
    }

    /// Estimates at a given θ (no optimisation): refactor there and solve for β, u, b, σ.
    fn estimates_at(
        &mut self,
        x: MatRef<'_, f64>,
        optimization: OptSummary,
        reml: bool,
    ) -> Result<LmmFit> {
        let theta = optimization.theta.clone();
        let objective = self.objective(&theta, reml)?;
        let n = self.cross.n_obs;
        let p = self.cross.n_fixed;
        let (r_x, r) = self.factor.fixed().fixed_effects_factor();
        let pwrss = r * r;
        let informative = self.cross.n_informative;
        let sigma = (pwrss
            / if reml {
                (informative - p) as f64
            } else {
                informative as f64
            })
        .sqrt();
        let beta = self.factor.fixed().fixed_effects();
        let beta_covariance = scaled_inverse_gram(&r_x.values, p, sigma * sigma);
        let spherical = self.factor.solve_random_effects(&beta);
        let random_effects = random_effects(&self.terms, &self.lambdas, &spherical);
        let mut fitted = vec![0.0; n];
        for (c, &beta_c) in beta.iter().enumerate() {
            for (value, x_ic) in fitted.iter_mut().zip(x.col(c).iter()) {
                *value += beta_c * x_ic;
            }
        }
        for (term, b) in self.terms.iter().zip(&random_effects) {
            let k = term.k;
            for (i, &level) in term.codes.iter().enumerate() {
                let first = level as usize * k;
                fitted[i] += (0..k)
                    .map(|c| term.z[i * k + c] * b[first + c])
                    .sum::<f64>();
            }
        }
        let log_det_random = self.factor.log_det_random();
        let nf = informative as f64;
        let deviance_ml =
            log_det_random + nf * (1.0 + (2.0 * PI * pwrss / nf).ln()) - self.cross.sum_log_weights;
        Ok(LmmFit {
            optimization: OptSummary {
                objective,
                ..optimization
            },
            theta,
            beta,
            beta_covariance,
            sigma,
            random_effects,
            objective,
            deviance_ml,
            pwrss,
            log_det_random,
            log_det_fixed: self.factor.fixed().log_det_fixed(),
            fitted,
            derivatives: None,
        })
    }

    /// lme4's `hatvalues(m)` at θ: the diagonal of the hat matrix of the penalised least-squares
    /// fit, prior weights entering as √w (see [`crate::leverage`]).
    pub fn hat_values(&mut self, x: MatRef<'_, f64>, theta: &[f64]) -> Result<Vec<f64>> {
        if x.nrows() != self.cross.n_obs || x.ncols() != self.cross.n_fixed {
            return Err(CoreError::InvalidInput(format!(
                "x is {} x {}, the model's {} x {}",
                x.nrows(),
                x.ncols(),
                self.cross.n_obs,
                self.cross.n_fixed
            )));
        }
        self.set_theta(theta)?;
        self.factor.factorize(&self.cross, &self.lambdas)?;
        Ok(hat_values(
            &self.terms,
            &self.lambdas,
            x,
            self.weights.as_deref(),
            &self.factor,
        ))
    }

    /// Conditional covariances of the random effects given the data at (θ, σ): per term, one
    /// k×k tile per level, σ² λ [(L_Z L_Zᵀ)⁻¹]_level λᵀ (lme4's `ranef(condVar = TRUE)`).
    pub fn conditional_covariances(&mut self, theta: &[f64], sigma: f64) -> Result<Vec<Vec<f64>>> {
        self.set_theta(theta)?;
        self.factor.factorize(&self.cross, &self.lambdas)?;
        let tiles = self.factor.inverse_diagonal_tiles();
        Ok(conditional_covariances(
            &tiles,
            &self.lambdas,
            sigma * sigma,
        ))
    }
}
