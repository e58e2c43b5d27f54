//! Generalized linear mixed models: η = offset + Xβ + ZΛ(θ)u, μ = g⁻¹(η), u ~ N(0, I), fitted as
//! lme4 1.1 fits them (Bates et al. 2015, JSS 67(1), §5; lme4's `glmerLaplace`, `pwrssUpdate`,
//! `glmerAGQ`), on the same blocked/sparse factorisation as the linear model.
//!
//! The conditional modes come from penalised iteratively reweighted least squares (PIRLS). Every
//! objective evaluation restarts PIRLS from a fixed linear predictor, so the objective is a pure
//! function of its parameters (this matters for the finite-difference Hessian); the first
//! iteration's cross-products from that start are therefore computed once per stage. Stage one
//! optimises θ with β updated inside PIRLS (lme4's nAGQ = 0); stage two optimises (θ, β) with
//! PIRLS over u alone, β entering through the offset. The Laplace objective is the family's full
//! −2 log-likelihood (`aic`) + log|L_Z|² + ‖u‖²: by default exact, all three at the converged
//! conditional modes (see [`LaplaceObjective`]); optionally lme4 1.1's. Adaptive Gauss–Hermite
//! quadrature replaces it for one scalar random-effects term.

use std::sync::Arc;

use faer::{Mat, MatRef};
use rayon::prelude::*;

use crate::cholesky::DiagonalFactor;
use crate::crossproducts::CrossProducts;
use crate::dense::{invert_symmetric, scaled_inverse_gram};
use crate::derivatives::{central_differences, Derivatives};
use crate::error::{CoreError, Result};
use crate::factorization::{Factorization, FactorizationChoice};
use crate::families::Family;
use crate::interrupt::Interrupt;
use crate::negative_binomial::fit_negative_binomial;
use crate::optimize::{
    minimize, unless_interrupted, OptSummary, OptimizerSettings, DEFAULT_MAX_EVALUATIONS,
};
use crate::quadrature::GaussHermite;
use crate::terms::{
    conditional_covariances, random_effects, set_relative_covariance_factors, RandomEffectsTerm,
};

/// Observations per parallel work item: element-wise loops over observations run in chunks of
/// this size, and sums add the chunks' partial sums in order (thread-count independent).
const CHUNK: usize = 8192;
/// PIRLS stops when the penalised deviance changes by less than this, relatively (lme4's
/// `tolPwrss`).
const PIRLS_TOLERANCE: f64 = 1e-7;
/// The same for the exact Laplace objective, whose log|L_Z|² is taken at the last iterate:
/// Newton's quadratic convergence leaves that within about this change squared of the modes. On
/// the 100,000-row Bernoulli and Poisson benchmarks the objective is then within 1.4e-8 and 5e-9
/// (1e-13 relative) of its value at 1e-13, and on the glmmTMB references within 1e-9 of TMB's;
/// 1e-7 (lme4's) leaves 4.5e-8 on a 3,000-row crossed Bernoulli model.
const EXACT_PIRLS_TOLERANCE: f64 = 1e-9;
const PIRLS_MAX_ITERATIONS: usize = 100;
const PIRLS_MAX_HALVINGS: usize = 10;

/// Where stage two's Laplace approximation takes its parts (Laplace fits only; nAGQ = 0 and
/// adaptive quadrature are lme4's in both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaplaceObjective {
    /// The Laplace approximation itself: deviance residuals, ‖u‖² and log|L_Z|² at the conditional
    /// modes, L_Z with the working weights of the modes, PIRLS converged to a relative change of
    /// [`EXACT_PIRLS_TOLERANCE`] (as glmmTMB and MixedModels.jl evaluate it).
    Exact,
    /// lme4 1.1's: PIRLS stops at a relative change of 1e-7 (`tolPwrss`) and log|L_Z|² comes from
    /// the factor of its last iteration, i.e. the weights of the penultimate iterate (lme4's
    /// `glmerLaplace` after `pwrssUpdate`), which is off the Laplace value by up to ~0.1 on
    /// models with hundreds of groups.
    Lme4,
}

/// lme4's `start` and the `glmerControl` settings a fit takes from the user.
#[derive(Debug, Clone, PartialEq)]
pub struct GlmmControl {
    /// θ where stage one starts (stage two without it), lme4's order; `None`: lme4's start.
    pub theta_start: Option<Vec<f64>>,
    /// β where stage two starts; `None`: stage one's estimate (zeros without stage one).
    pub beta_start: Option<Vec<f64>>,
    /// lme4's `nAGQ0initStep`: run stage one (θ with β from PIRLS) before stage two. Without it
    /// the start comes from one PIRLS over u at β = 0 and θ's default start, as lme4's
    /// `mkGlmerDevfun` with `nAGQ = 1` computes it.
    pub initial_stage: bool,
    /// lme4's `tolPwrss`: PIRLS's relative change of the penalised deviance at which it stops.
    pub pirls_tolerance: f64,
}

impl Default for GlmmControl {
    fn default() -> Self {
        Self {
            theta_start: None,
            beta_start: None,
            initial_stage: true,
            pirls_tolerance: PIRLS_TOLERANCE,
        }
    }
}

/// One PIRLS problem: the design (with or without X) and the factorisation it solves with.
struct Pirls {
    cross: CrossProducts,
    factor: Factorization,
}

impl Pirls {
    fn new(
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        choice: FactorizationChoice,
    ) -> Result<Self> {
        let cross = CrossProducts::new(terms, x, None)?;
        let factor = Factorization::new(&cross, choice)?;
        Ok(Self { cross, factor })
    }
}

/// A generalized linear mixed model's data and structure.
pub struct GeneralizedLinearMixedModel {
    terms: Vec<RandomEffectsTerm>,
    family: Family,
    laplace: LaplaceObjective,
    control: GlmmControl,
    y: Vec<f64>,
    prior_weights: Vec<f64>,
    offset: Vec<f64>,
    /// PIRLS over (β, u): stage one, and R_X.
    joint: Pirls,
    /// PIRLS over u for a fixed β: stage two (its design has no fixed-effects columns).
    random_only: Pirls,
    no_columns: Mat<f64>,
    lambdas: Vec<Vec<f64>>,
    /// Stage one's start (see [`Self::stage_one_start`]), computed once.
    stage_one_first: Option<Arc<CrossProducts>>,
    /// Stage two's start of the last fit: the first PIRLS iteration from Xβ + ZΛu at the end of
    /// its stage one (lme4's `lp0`).
    stage_two_first: Option<Arc<CrossProducts>>,
    /// −2 log L − Σ devresᵢ, which depends on y alone for the binomial, Poisson and negative
    /// binomial (−2 × the saturated log-likelihood); `None` for families with a dispersion.
    saturated_constant: Option<f64>,
    /// Per-observation parts of the deviance residuals that depend on y alone, where the family
    /// has them (Poisson with log link): the residuals then take no logarithm.
    deviance_constants: Option<Vec<f64>>,
    /// offset + Xβ for the β held fixed (stage two), else the offset.
    fixed_part: Vec<f64>,
    eta: Vec<f64>,
    mu: Vec<f64>,
    working_weights: Vec<f64>,
    working_response: Vec<f64>,
}

/// Where PIRLS ended: β (solved for, or the fixed one) and u; `converged` is false when it ran
/// out of iterations (e.g. under complete separation, where β grows without bound).
#[derive(Debug, Clone)]
struct Mode {
    beta: Vec<f64>,
    u: Vec<Vec<f64>>,
    /// Σ devresᵢ + ‖u‖² at this state.
    penalized_deviance: f64,
    converged: bool,
}

/// Where stage one ended: its optimisation, the objective and the PIRLS mode at θ̂, and the start
/// of stage two.
struct StageOne {
    optimization: OptSummary,
    value: f64,
    mode: Mode,
    stage_two_first: Arc<CrossProducts>,
}

/// The estimates of a fit.
#[derive(Debug, Clone)]
pub struct GlmmFit {
    pub optimization: OptSummary,
    pub theta: Vec<f64>,
    pub beta: Vec<f64>,
    /// Covariance of β̂ from the finite-difference Hessian H of the objective in (θ, β): the β
    /// block of 2H⁻¹ (lme4's default); `None` without stage two or when H is not positive definite.
    pub beta_covariance_hessian: Option<Vec<f64>>,
    /// σ² (R_X R_Xᵀ)⁻¹ (lme4's `vcov(use.hessian = FALSE)`), p × p column-major.
    pub beta_covariance_factor: Vec<f64>,
    pub random_effects: Vec<Vec<f64>>,
    /// The optimised objective: the Laplace value, or lme4's adaptive Gauss–Hermite deviance.
    pub objective: f64,
    /// −2 log L with every data constant (the family's `aic`), comparable across nAGQ.
    pub minus_twice_log_likelihood: f64,
    /// Σ devresᵢ at the estimates (lme4's `deviance(m)`).
    pub sum_deviance_residuals: f64,
    pub sum_squared_u: f64,
    pub log_det_random: f64,
    /// σ² = (Σ wᵢ(yᵢ−μᵢ)²/V(μᵢ) + ‖u‖²)/n for families with a dispersion (lme4's `sigma(m)²`), else 1.
    pub dispersion: f64,
    pub eta: Vec<f64>,
    pub mu: Vec<f64>,
    /// Whether PIRLS converged at the estimates (within its 100 iterations).
    pub pirls_converged: bool,
    /// Gradient and Hessian of the objective in (θ, β) at the estimates (lme4's
    /// `optinfo$derivs`); `None` without stage two (nAGQ = 0), as in lme4.
    pub derivatives: Option<Derivatives>,
}

impl GeneralizedLinearMixedModel {
    /// `y`: the response (proportions for the binomial), `prior_weights`: prior weights (numbers
    /// of trials for the binomial), `offset`: a known part of η. Terms come in lme4's order.
    pub fn new(
        terms: Vec<RandomEffectsTerm>,
        x: MatRef<'_, f64>,
        y: Vec<f64>,
        prior_weights: Vec<f64>,
        offset: Vec<f64>,
        family: Family,
        choice: FactorizationChoice,
    ) -> Result<Self> {
        let n = x.nrows();
        if terms.is_empty() {
            return Err(CoreError::Specification(
                "a mixed model needs at least one random-effects term".into(),
            ));
        }
        if y.len() != n || prior_weights.len() != n || offset.len() != n {
            return Err(CoreError::InvalidInput(format!(
                "response, weights and offset must have {n} values (got {}, {}, {})",
                y.len(),
                prior_weights.len(),
                offset.len()
            )));
        }
        // A row of weight 0 (a binomial row of no trials) adds nothing to the likelihood or to
        // PIRLS's weighted cross-products, as in lme4's glmer.
        if prior_weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(CoreError::InvalidInput(
                "weights must be non-negative and finite".into(),
            ));
        }
        if prior_weights.iter().all(|&w| w == 0.0) {
            return Err(CoreError::InvalidInput("all weights are 0".into()));
        }
        if offset.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::InvalidInput(
                "the offset has non-finite values".into(),
            ));
        }
        if (0..x.ncols()).any(|c| x.col(c).iter().any(|v| !v.is_finite())) {
            return Err(CoreError::InvalidInput(
                "the fixed-effects model matrix has non-finite values".into(),
            ));
        }
        family.check_response(&y, &prior_weights)?;
        if y.iter().all(|&v| v == y[0]) {
            return Err(CoreError::InvalidInput("the response is constant".into()));
        }
        let saturated_constant = (!family.has_dispersion())
            .then(|| family.minus_twice_log_likelihood(&y, &y, &prior_weights, 0.0));
        let deviance_constants = family.deviance_constants(&y, &prior_weights);
        let joint = Pirls::new(&terms, x, choice)?;
        let no_columns = Mat::<f64>::zeros(n, 0);
        let random_only = Pirls::new(&terms, no_columns.as_ref(), choice)?;
        let lambdas = terms.iter().map(|t| vec![0.0; t.k * t.k]).collect();
        Ok(Self {
            terms,
            family,
            laplace: LaplaceObjective::Exact,
            control: GlmmControl::default(),
            y,
            prior_weights,
            offset,
            joint,
            random_only,
            no_columns,
            lambdas,
            stage_one_first: None,
            stage_two_first: None,
            saturated_constant,
            deviance_constants,
            fixed_part: vec![0.0; n],
            eta: vec![0.0; n],
            mu: vec![0.0; n],
            working_weights: vec![0.0; n],
            working_response: vec![0.0; n],
        })
    }

    /// The model with stage two's Laplace objective taken as `laplace` says (exact by default).
    pub fn with_laplace(mut self, laplace: LaplaceObjective) -> Self {
        self.laplace = laplace;
        self.stage_two_first = None;
        self
    }

    pub fn laplace(&self) -> LaplaceObjective {
        self.laplace
    }

    /// The model with lme4's start values and controls (see [`GlmmControl`]), checked against its
    /// structure: θ's length and bounds, a positive finite PIRLS tolerance (β's length is checked
    /// by the fit, which knows X).
    pub fn with_control(mut self, control: GlmmControl) -> Result<Self> {
        if let Some(theta) = &control.theta_start {
            let lower = self.theta_lower_bounds();
            if theta.len() != lower.len() {
                return Err(CoreError::InvalidInput(format!(
                    "the starting theta has {} values, the model {}",
                    theta.len(),
                    lower.len()
                )));
            }
            if theta
                .iter()
                .zip(&lower)
                .any(|(t, l)| !t.is_finite() || t < l)
            {
                return Err(CoreError::InvalidInput(
                    "the starting theta must be finite, with the diagonal elements of each term's factor non-negative".into(),
                ));
            }
        }
        if let Some(beta) = &control.beta_start {
            if beta.iter().any(|b| !b.is_finite()) {
                return Err(CoreError::InvalidInput(
                    "the starting fixed effects must be finite".into(),
                ));
            }
        }
        if !(control.pirls_tolerance > 0.0 && control.pirls_tolerance < 1.0) {
            return Err(CoreError::Specification(format!(
                "tolPwrss must be between 0 and 1, not {}",
                control.pirls_tolerance
            )));
        }
        self.control = control;
        self.stage_one_first = None;
        self.stage_two_first = None;
        Ok(self)
    }

    pub fn control(&self) -> &GlmmControl {
        &self.control
    }

    pub fn n_theta(&self) -> usize {
        self.terms.iter().map(|t| t.n_theta()).sum()
    }

    pub fn terms(&self) -> &[RandomEffectsTerm] {
        &self.terms
    }

    pub fn is_sparse(&self) -> bool {
        self.joint.factor.is_sparse()
    }

    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// Prior weights (numbers of trials for the binomial).
    pub(crate) fn prior_weights(&self) -> &[f64] {
        &self.prior_weights
    }

    pub(crate) fn offset(&self) -> &[f64] {
        &self.offset
    }

    /// Whether fitting has parallel loops (see [`crate::threads::run_job`]): the O(n) passes over
    /// the observations from two chunks on, the cross-products, or a factorisation.
    pub fn is_parallel(&self) -> bool {
        self.eta.len() > CHUNK
            || self.joint.cross.is_parallel()
            || self.joint.factor.is_parallel()
            || self.random_only.factor.is_parallel()
    }

    fn set_theta(&mut self, theta: &[f64]) -> Result<()> {
        set_relative_covariance_factors(&self.terms, theta, &mut self.lambdas)
    }

    /// η = offset + Xβ + Σⱼ Zⱼ Λⱼ uⱼ and μ = g⁻¹(η) into the model's buffers.
    fn update_eta(&mut self, x: MatRef<'_, f64>, beta: &[f64], u: &[Vec<f64>]) {
        self.set_fixed_part(x, beta);
        self.update_state(x, &[], u);
    }

    /// `fixed_part` = offset + Xβ.
    fn set_fixed_part(&mut self, x: MatRef<'_, f64>, beta: &[f64]) {
        self.fixed_part.copy_from_slice(&self.offset);
        for (c, &beta_c) in beta.iter().enumerate() {
            for (value, x_ic) in self.fixed_part.iter_mut().zip(x.col(c).iter()) {
                *value += beta_c * x_ic;
            }
        }
    }

    /// η = fixed_part + X·`extra_beta` + Σⱼ Zⱼ bⱼ (bⱼ = Λⱼ uⱼ) and μ = g⁻¹(η), returning Σ devresᵢ
    /// at the new μ: one pass over the observations in chunks, each built column by column
    /// (tight loops) and its partial sum added in order, so the value does not depend on the
    /// number of threads.
    fn update_state(&mut self, x: MatRef<'_, f64>, extra_beta: &[f64], u: &[Vec<f64>]) -> f64 {
        let family = self.family;
        let columns: Vec<_> = (0..extra_beta.len()).map(|c| x.col(c)).collect();
        let effects = random_effects(&self.terms, &self.lambdas, u);
        let (terms, fixed, y, weights, constants) = (
            &self.terms,
            &self.fixed_part,
            &self.y,
            &self.prior_weights,
            self.deviance_constants.as_deref(),
        );
        let chunk_state = |(chunk, (eta, mu)): (usize, (&mut [f64], &mut [f64]))| -> f64 {
            let range = chunk * CHUNK..chunk * CHUNK + eta.len();
            eta.copy_from_slice(&fixed[range.clone()]);
            for (&beta_c, column) in extra_beta.iter().zip(&columns) {
                for (eta, &x) in eta.iter_mut().zip(column.iter().skip(range.start)) {
                    *eta += beta_c * x;
                }
            }
            for (term, b) in terms.iter().zip(&effects) {
                let codes = &term.codes[range.clone()];
                let k = term.k;
                if k == 1 {
                    for ((eta, &level), &z) in eta.iter_mut().zip(codes).zip(&term.z[range.clone()])
                    {
                        *eta += z * b[level as usize];
                    }
                    continue;
                }
                let z_rows = term.z[range.start * k..range.end * k].chunks_exact(k);
                for ((eta, &level), z) in eta.iter_mut().zip(codes).zip(z_rows) {
                    let b_level = &b[level as usize * k..(level as usize + 1) * k];
                    *eta += z.iter().zip(b_level).map(|(z, b)| z * b).sum::<f64>();
                }
            }
            family.mean_and_deviance(
                eta,
                mu,
                &y[range.clone()],
                &weights[range.clone()],
                constants.map(|c| &c[range]),
            )
        };
        if self.eta.len() <= CHUNK {
            return chunk_state((0, (&mut self.eta, &mut self.mu)));
        }
        let partial: Vec<f64> = self
            .eta
            .par_chunks_mut(CHUNK)
            .zip(self.mu.par_chunks_mut(CHUNK))
            .enumerate()
            .map(chunk_state)
            .collect();
        partial.iter().sum()
    }

    fn update_mu(&mut self) {
        let link = self.family.link;
        let inverse = |(mu, eta): (&mut [f64], &[f64])| {
            for (mu, &eta) in mu.iter_mut().zip(eta) {
                *mu = link.inverse(eta);
            }
        };
        if self.mu.len() <= CHUNK {
            inverse((&mut self.mu, &self.eta));
        } else {
            self.mu
                .par_chunks_mut(CHUNK)
                .zip(self.eta.par_chunks(CHUNK))
                .for_each(inverse);
        }
    }

    /// Σ devresᵢ, summed chunk by chunk and the chunks in order, so the value does not depend on
    /// the number of threads.
    fn sum_deviance_residuals(&self) -> f64 {
        let family = self.family;
        let chunk_sum = |((y, mu), w): ((&[f64], &[f64]), &[f64])| {
            y.iter()
                .zip(mu)
                .zip(w)
                .map(|((&y, &mu), &w)| family.deviance_residual(y, mu, w))
                .sum::<f64>()
        };
        if self.y.len() <= CHUNK {
            return chunk_sum(((&self.y, &self.mu), &self.prior_weights));
        }
        let partial: Vec<f64> = self
            .y
            .par_chunks(CHUNK)
            .zip(self.mu.par_chunks(CHUNK))
            .zip(self.prior_weights.par_chunks(CHUNK))
            .map(chunk_sum)
            .collect();
        partial.iter().sum()
    }

    /// Working weights w·μ'(η)²/V(μ) and working response η − fixed_part + (y − μ)/μ'(η) at
    /// the current η.
    fn update_working(&mut self) {
        let family = self.family;
        let (eta, mu, y, weights, fixed) = (
            &self.eta,
            &self.mu,
            &self.y,
            &self.prior_weights,
            &self.fixed_part,
        );
        let fill =
            |(chunk, (working_weights, working_response)): (usize, (&mut [f64], &mut [f64]))| {
                let first = chunk * CHUNK;
                for (offset, (weight, response)) in working_weights
                    .iter_mut()
                    .zip(working_response.iter_mut())
                    .enumerate()
                {
                    let i = first + offset;
                    let mu_eta = family.link.mu_eta_at(eta[i], mu[i]);
                    *weight = weights[i] * mu_eta * mu_eta / family.variance(mu[i]);
                    *response = eta[i] - fixed[i] + (y[i] - mu[i]) / mu_eta;
                }
            };
        if self.working_weights.len() <= CHUNK {
            fill((0, (&mut self.working_weights, &mut self.working_response)));
        } else {
            self.working_weights
                .par_chunks_mut(CHUNK)
                .zip(self.working_response.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(fill);
        }
    }

    /// The cross-products of PIRLS's first iteration from the current η and μ (a stage's start),
    /// with the fixed-effects columns and the working response taken relative to the offset.
    /// They depend on the start alone, so every evaluation that starts there shares them (see
    /// [`Self::pirls`]). η and μ are left as they are.
    fn first_iteration(&mut self, x: MatRef<'_, f64>) -> Result<CrossProducts> {
        self.set_fixed_part(x, &[]);
        self.update_working();
        self.joint.cross.reweight(
            &self.terms,
            x,
            &self.working_weights,
            &self.working_response,
        )?;
        Ok(self.joint.cross.clone())
    }

    /// PIRLS from the start whose first iteration is `first` (lme4's `pwrssUpdate`): over (β, u)
    /// when `fixed_beta` is `None`, else over u with β fixed (the first iteration's working
    /// response then loses Xβ, which the cross-products absorb without a pass over the data).
    /// Each iteration solves the penalised weighted least squares problem for the whole (β, u)
    /// at the current weights; a step that raises the penalised deviance Σ devresᵢ + ‖u‖² is
    /// halved up to ten times. Leaves η, μ at the last iterate and the factorisation at the
    /// weights of the one before. Running out of iterations is reported in the mode, not as an
    /// error, so a fit can say why it is suspect.
    fn pirls(
        &mut self,
        x: MatRef<'_, f64>,
        first: &CrossProducts,
        fixed_beta: Option<&[f64]>,
        tolerance: f64,
        interrupt: &Interrupt,
    ) -> Result<Mode> {
        let joint = fixed_beta.is_none();
        // offset (+ Xβ when β is fixed): constant through the iterations.
        self.set_fixed_part(x, fixed_beta.unwrap_or(&[]));
        let mut beta: Vec<f64> = fixed_beta.map_or_else(Vec::new, <[f64]>::to_vec);
        let mut u: Vec<Vec<f64>> = self
            .terms
            .iter()
            .map(|t| vec![0.0; t.n_columns()])
            .collect();
        let mut previous = f64::MAX;
        for iteration in 0..PIRLS_MAX_ITERATIONS {
            interrupt.check()?;
            let (old_beta, old_u) = (beta.clone(), u.clone());
            if iteration > 0 {
                self.update_working();
            }
            let (pirls, design) = if joint {
                (&mut self.joint, x)
            } else {
                (&mut self.random_only, self.no_columns.as_ref())
            };
            match (iteration, fixed_beta) {
                (0, None) => pirls.cross.copy_values_from(first),
                (0, Some(fixed_beta)) => pirls.cross.set_from_fixed_offset(first, fixed_beta),
                _ => pirls.cross.reweight(
                    &self.terms,
                    design,
                    &self.working_weights,
                    &self.working_response,
                )?,
            }
            pirls.factor.factorize(&pirls.cross, &self.lambdas)?;
            if joint {
                beta = pirls.factor.fixed().fixed_effects();
                u = pirls.factor.solve_random_effects(&beta);
            } else {
                u = pirls.factor.solve_random_effects(&[]);
            }
            let mut deviance =
                self.update_state(x, if joint { &beta } else { &[] }, &u) + sum_squares(&u);
            if ((previous - deviance) / deviance).abs() < tolerance {
                return Ok(Mode {
                    beta,
                    u,
                    penalized_deviance: deviance,
                    converged: true,
                });
            }
            let mut halvings = 0;
            while (deviance.is_nan() || deviance > previous) && halvings < PIRLS_MAX_HALVINGS {
                halve_toward(&mut u, &old_u);
                if joint {
                    halve_toward(
                        std::slice::from_mut(&mut beta),
                        std::slice::from_ref(&old_beta),
                    );
                }
                deviance =
                    self.update_state(x, if joint { &beta } else { &[] }, &u) + sum_squares(&u);
                halvings += 1;
            }
            if deviance.is_nan() || deviance - previous > PIRLS_TOLERANCE {
                return Err(CoreError::Optimization(
                    "PIRLS step-halvings failed to reduce the penalised deviance".into(),
                ));
            }
            previous = deviance;
        }
        Ok(Mode {
            beta,
            u,
            penalized_deviance: previous,
            converged: false,
        })
    }

    fn factor(&self, joint: bool) -> &Factorization {
        if joint {
            &self.joint.factor
        } else {
            &self.random_only.factor
        }
    }

    /// The Laplace value at the state PIRLS left: the family's −2 log-likelihood + log|L_Z|² + ‖u‖².
    fn laplace_value(&self, mode: &Mode, joint: bool) -> f64 {
        let log_likelihood_part = match self.saturated_constant {
            // −2 log L = Σ devresᵢ + (its value at μ = y), the latter computed once.
            Some(constant) => mode.penalized_deviance + constant,
            None => {
                let deviance = self.sum_deviance_residuals();
                self.family.minus_twice_log_likelihood(
                    &self.y,
                    &self.mu,
                    &self.prior_weights,
                    deviance,
                ) + sum_squares(&mode.u)
            }
        };
        log_likelihood_part + self.factor(joint).log_det_random()
    }

    /// Stage one's objective at θ: PIRLS over (β, u) from stage one's start, then the Laplace
    /// value.
    fn stage_one(
        &mut self,
        x: MatRef<'_, f64>,
        theta: &[f64],
        first: &CrossProducts,
        interrupt: &Interrupt,
    ) -> Result<(f64, Mode)> {
        self.set_theta(theta)?;
        let mode = self.pirls(x, first, None, self.control.pirls_tolerance, interrupt)?;
        Ok((self.laplace_value(&mode, true), mode))
    }

    /// Stage two's objective at (θ, β): PIRLS over u from the stage-two start whose first
    /// iteration is `first`, then the Laplace value or, with a rule, the adaptive Gauss–Hermite
    /// deviance.
    fn stage_two(
        &mut self,
        x: MatRef<'_, f64>,
        first: &CrossProducts,
        theta: &[f64],
        beta: &[f64],
        rule: Option<&GaussHermite>,
        interrupt: &Interrupt,
    ) -> Result<(f64, Mode)> {
        self.set_theta(theta)?;
        let exact = rule.is_none() && self.laplace == LaplaceObjective::Exact;
        let tolerance = if exact {
            EXACT_PIRLS_TOLERANCE.min(self.control.pirls_tolerance)
        } else {
            self.control.pirls_tolerance
        };
        let mode = self.pirls(x, first, Some(beta), tolerance, interrupt)?;
        let value = match rule {
            Some(rule) => self.adaptive_quadrature(x, &mode, rule, interrupt)?,
            None => {
                if exact {
                    self.factor_at_mode()?;
                }
                self.laplace_value(&mode, false)
            }
        };
        Ok((value, mode))
    }

    /// Stage two's L_Z refactorised with the working weights of the state PIRLS ended at (the
    /// modes), for the exact Laplace value; the working response is not used by the value.
    fn factor_at_mode(&mut self) -> Result<()> {
        self.update_working();
        self.random_only.cross.reweight(
            &self.terms,
            self.no_columns.as_ref(),
            &self.working_weights,
            &self.working_response,
        )?;
        self.random_only
            .factor
            .factorize(&self.random_only.cross, &self.lambdas)
    }

    /// lme4's adaptive Gauss–Hermite deviance for one scalar term (Pinheiro & Bates 1995):
    /// Σⱼ devc0ⱼ + log|L_Z|² − 2 Σⱼ log Σₖ wₖ exp(zₖ²/2 − (devcⱼ(ûⱼ + zₖ/Lⱼⱼ) − devc0ⱼ)/2), with
    /// devcⱼ(v) = v² + the deviance residuals of level j at uⱼ = v.
    fn adaptive_quadrature(
        &self,
        x: MatRef<'_, f64>,
        mode: &Mode,
        rule: &GaussHermite,
        interrupt: &Interrupt,
    ) -> Result<f64> {
        let term = &self.terms[0];
        let lambda = self.lambdas[0][0];
        let Factorization::Blocked(blocked) = &self.random_only.factor else {
            unreachable!("the quadrature rule requires the blocked factorisation")
        };
        let DiagonalFactor::Tiles(pivots) = &blocked.diagonal[0] else {
            unreachable!("a single term's block is tile-diagonal")
        };
        let n_levels = term.n_levels;
        let n_nodes = rule.nodes.len();
        let u_mode = &mode.u[0];
        let mut fixed_eta = self.offset.clone();
        for (c, &beta_c) in mode.beta.iter().enumerate() {
            for (eta, x_ic) in fixed_eta.iter_mut().zip(x.col(c).iter()) {
                *eta += beta_c * x_ic;
            }
        }
        let mut at_mode = vec![0.0; n_levels];
        let mut at_nodes = vec![0.0; n_levels * n_nodes];
        let link = self.family.link;
        for (i, &level) in term.codes.iter().enumerate() {
            if i % CHUNK == 0 {
                interrupt.check()?;
            }
            let level = level as usize;
            let (y, w) = (self.y[i], self.prior_weights[i]);
            at_mode[level] += self.family.deviance_residual(y, self.mu[i], w);
            let sd = 1.0 / pivots.values[level];
            for (k, &node) in rule.nodes.iter().enumerate() {
                let eta = fixed_eta[i] + term.z[i] * lambda * (u_mode[level] + node * sd);
                at_nodes[level * n_nodes + k] +=
                    self.family.deviance_residual(y, link.inverse(eta), w);
            }
        }
        let mut total = 0.0;
        for level in 0..n_levels {
            let pivot = pivots.values[level];
            let centre = at_mode[level] + u_mode[level] * u_mode[level];
            let exponents: Vec<f64> = rule
                .nodes
                .iter()
                .enumerate()
                .map(|(k, &node)| {
                    let v = u_mode[level] + node / pivot;
                    let deviance = at_nodes[level * n_nodes + k] + v * v;
                    rule.log_weights[k] + 0.5 * node * node - 0.5 * (deviance - centre)
                })
                .collect();
            let largest = exponents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log_sum = largest
                + exponents
                    .iter()
                    .map(|e| (e - largest).exp())
                    .sum::<f64>()
                    .ln();
            total += centre + 2.0 * pivot.ln() - 2.0 * log_sum;
        }
        Ok(total)
    }

    /// Fit: stage one (θ, with β from PIRLS) with `settings` (see
    /// [`OptimizerSettings::generalized`]); with `n_agq ≥ 1` stage two over (θ, β) with the
    /// Laplace (1) or adaptive Gauss–Hermite (> 1, one scalar term only) objective.
    pub fn fit(
        &mut self,
        x: MatRef<'_, f64>,
        n_agq: usize,
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<GlmmFit> {
        let rule = self.quadrature_rule(n_agq)?;
        self.check_start(x, n_agq)?;
        if !self.control.initial_stage {
            return self.fit_without_stage_one(x, rule, settings, interrupt);
        }
        let stage_one_first = self.stage_one_start(x, interrupt)?;
        let stage_one = self.optimize_stage_one(x, &stage_one_first, settings, interrupt)?;
        let stage_two_first = Arc::clone(&stage_one.stage_two_first);
        let fit = if n_agq == 0 {
            self.estimates_stage_one(stage_one)
        } else {
            self.optimize_stage_two(x, &stage_one_first, stage_one, rule, settings, interrupt)
        }?;
        // Stage two of later objectives and conditional covariances starts where this fit's would.
        self.stage_two_first = Some(stage_two_first);
        Ok(fit)
    }

    /// lme4's `glmer.nb` on this model's data with its family's link (the family itself, e.g. a
    /// Poisson, is not used): a Poisson fit, the size's moment-ML start, a bounded search of log size refitting
    /// the GLMM at each size (see [`crate::negative_binomial`]); the estimated size and the fit at
    /// it, with this model's Laplace objective and controls.
    pub fn fit_negative_binomial(
        &self,
        x: MatRef<'_, f64>,
        n_agq: usize,
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<(f64, GlmmFit)> {
        let choice = if self.is_sparse() {
            FactorizationChoice::Sparse
        } else {
            FactorizationChoice::Blocked
        };
        let model = |family: Family| {
            GeneralizedLinearMixedModel::new(
                self.terms.clone(),
                x,
                self.y.clone(),
                self.prior_weights.clone(),
                self.offset.clone(),
                family,
                choice,
            )
            .and_then(|model| {
                model
                    .with_laplace(self.laplace)
                    .with_control(self.control.clone())
            })
        };
        let fit = fit_negative_binomial(
            model,
            x,
            &self.y,
            &self.prior_weights,
            self.family.link,
            n_agq,
            settings,
            interrupt,
        )?;
        Ok((fit.size, fit.fit))
    }

    /// The objective at θ (lme4's `devFunOnly`, MixedModels.jl's `objective!`). With `beta`,
    /// stage two's at (θ, β), the function its optimiser minimises: the Laplace approximation, or
    /// with `n_agq > 1` the adaptive Gauss–Hermite deviance. Without, stage one's (nAGQ = 0), β
    /// from PIRLS. Stage one starts where every fit's does; stage two where the last fit's did,
    /// or before any fit where stage one's optimisation ends (what `glmer(..., devFunOnly = TRUE)`
    /// computes first).
    pub fn objective(
        &mut self,
        x: MatRef<'_, f64>,
        theta: &[f64],
        beta: Option<&[f64]>,
        n_agq: usize,
        interrupt: &Interrupt,
    ) -> Result<f64> {
        match beta {
            None if n_agq > 1 => Err(CoreError::Specification(
                "adaptive Gauss-Hermite quadrature (nAGQ > 1) is evaluated at given fixed effects"
                    .into(),
            )),
            None => {
                let first = self.stage_one_start(x, interrupt)?;
                Ok(self.stage_one(x, theta, &first, interrupt)?.0)
            }
            Some(_) if n_agq == 0 => Err(CoreError::Specification(
                "nAGQ = 0 optimises θ alone: its objective takes no fixed effects".into(),
            )),
            Some(beta) => {
                self.check_fixed_effects(x, beta)?;
                let rule = self.quadrature_rule(n_agq)?;
                let first = self.stage_two_start(x, interrupt)?;
                Ok(self
                    .stage_two(x, &first, theta, beta, rule.as_ref(), interrupt)?
                    .0)
            }
        }
    }

    /// The start values and stages a fit is asked for must fit together, as lme4's `glmer`
    /// requires: nAGQ = 0 is stage one alone, so it needs stage one and takes no β.
    fn check_start(&self, x: MatRef<'_, f64>, n_agq: usize) -> Result<()> {
        if let Some(beta) = &self.control.beta_start {
            if n_agq == 0 {
                return Err(CoreError::Specification(
                    "nAGQ = 0 estimates the fixed effects inside PIRLS: it takes no starting fixed effects".into(),
                ));
            }
            self.check_fixed_effects(x, beta)?;
        }
        if n_agq == 0 && !self.control.initial_stage {
            return Err(CoreError::Specification(
                "nAGQ = 0 is the initial nAGQ = 0 stage itself: it cannot be turned off (nAGQ0initStep)".into(),
            ));
        }
        Ok(())
    }

    /// A fit without stage one (lme4's `nAGQ0initStep = FALSE`): PIRLS over u at β = 0 and θ's
    /// default start gives the linear predictor stage two starts from; stage two then starts at
    /// the given (θ, β), else (θ's default start, 0), with unit scales for θ and β scaled by its
    /// standard errors from the factor at that start.
    fn fit_without_stage_one(
        &mut self,
        x: MatRef<'_, f64>,
        rule: Option<GaussHermite>,
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<GlmmFit> {
        let p = x.ncols();
        let default_theta: Vec<f64> = self.terms.iter().flat_map(|t| t.theta_start()).collect();
        let initial_first = self.initial_first_iteration(x)?;
        self.set_theta(&default_theta)?;
        let zero_beta = vec![0.0; p];
        let tolerance = self.control.pirls_tolerance;
        let initial = self.pirls(x, &initial_first, Some(&zero_beta), tolerance, interrupt)?;
        self.update_eta(x, &zero_beta, &initial.u);
        let first = Arc::new(self.first_iteration(x)?);
        let theta_start = self.control.theta_start.clone().unwrap_or(default_theta);
        let beta_start = self.control.beta_start.clone().unwrap_or(zero_beta);
        self.set_theta(&theta_start)?;
        self.joint.factor.factorize(&first, &self.lambdas)?;
        let mut scales = vec![1.0; theta_start.len()];
        scales.extend(self.beta_scales(p));
        let fit = self.minimize_stage_two(
            x,
            &first,
            theta_start,
            beta_start,
            scales,
            0,
            rule,
            settings,
            interrupt,
        )?;
        self.stage_two_first = Some(first);
        Ok(fit)
    }

    /// β's standard errors from the joint factor's R_X (σ = 1), capped at 10 as lme4 caps its
    /// Nelder–Mead steps: stage two's scales of β.
    fn beta_scales(&self, p: usize) -> Vec<f64> {
        let (r_x, _) = self.joint.factor.fixed().fixed_effects_factor();
        let unscaled_covariance = scaled_inverse_gram(&r_x.values, p, 1.0);
        (0..p)
            .map(|c| unscaled_covariance[c + c * p].sqrt().min(10.0))
            .collect()
    }

    fn check_fixed_effects(&self, x: MatRef<'_, f64>, beta: &[f64]) -> Result<()> {
        if beta.len() == x.ncols() {
            Ok(())
        } else {
            Err(CoreError::InvalidInput(format!(
                "beta has {} values, the model {}",
                beta.len(),
                x.ncols()
            )))
        }
    }

    /// The adaptive Gauss–Hermite rule of `n_agq > 1` nodes, which needs a single scalar term.
    fn quadrature_rule(&self, n_agq: usize) -> Result<Option<GaussHermite>> {
        if n_agq <= 1 {
            return Ok(None);
        }
        if self.terms.len() != 1 || self.terms[0].k != 1 {
            return Err(CoreError::Specification(
                "adaptive Gauss-Hermite quadrature (nAGQ > 1) needs a single scalar random-effects term such as (1 | g)"
                    .into(),
            ));
        }
        // The quadrature reads L_Z's pivots from the blocked factor, which a single scalar term
        // always gets unless the sparse one is forced.
        if self.random_only.factor.is_sparse() {
            return Err(CoreError::Specification(
                "adaptive Gauss-Hermite quadrature (nAGQ > 1) needs the blocked factorisation"
                    .into(),
            ));
        }
        GaussHermite::new(n_agq).map(Some)
    }

    /// Stage one's start: the first PIRLS iteration from the mode of lme4's initial PIRLS at θ's
    /// start, itself from η = offset + g(μ₀). It depends on the model's data alone.
    fn stage_one_start(
        &mut self,
        x: MatRef<'_, f64>,
        interrupt: &Interrupt,
    ) -> Result<Arc<CrossProducts>> {
        if let Some(first) = &self.stage_one_first {
            return Ok(Arc::clone(first));
        }
        let initial_first = self.initial_first_iteration(x)?;
        let theta_start: Vec<f64> = self.terms.iter().flat_map(|t| t.theta_start()).collect();
        self.set_theta(&theta_start)?;
        let tolerance = self.control.pirls_tolerance;
        let initial = self.pirls(x, &initial_first, None, tolerance, interrupt)?;
        self.update_eta(x, &initial.beta, &initial.u);
        let first = Arc::new(self.first_iteration(x)?);
        self.stage_one_first = Some(Arc::clone(&first));
        Ok(first)
    }

    /// The first PIRLS iteration from η = offset + g(μ₀), μ₀ the family's start (lme4's
    /// `mustart`).
    fn initial_first_iteration(&mut self, x: MatRef<'_, f64>) -> Result<CrossProducts> {
        let family = self.family;
        for (((eta, offset), &y), &w) in self
            .eta
            .iter_mut()
            .zip(&self.offset)
            .zip(&self.y)
            .zip(&self.prior_weights)
        {
            *eta = offset + family.link.link(family.initial_mu(y, w));
        }
        self.update_mu();
        self.first_iteration(x)
    }

    /// Stage two's start of the last fit or, before any fit, of stage one optimised with the
    /// default budget.
    fn stage_two_start(
        &mut self,
        x: MatRef<'_, f64>,
        interrupt: &Interrupt,
    ) -> Result<Arc<CrossProducts>> {
        if let Some(first) = &self.stage_two_first {
            return Ok(Arc::clone(first));
        }
        let stage_one_first = self.stage_one_start(x, interrupt)?;
        let settings = OptimizerSettings::generalized(DEFAULT_MAX_EVALUATIONS)?;
        let stage_one = self.optimize_stage_one(x, &stage_one_first, settings, interrupt)?;
        self.stage_two_first = Some(Arc::clone(&stage_one.stage_two_first));
        Ok(stage_one.stage_two_first)
    }

    /// Stage one: θ optimised with β from PIRLS, from the start whose first iteration is `first`.
    fn optimize_stage_one(
        &mut self,
        x: MatRef<'_, f64>,
        first: &CrossProducts,
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<StageOne> {
        let theta_start: Vec<f64> = match &self.control.theta_start {
            Some(theta) => theta.clone(),
            None => self.terms.iter().flat_map(|t| t.theta_start()).collect(),
        };
        let theta_lower = self.theta_lower_bounds();
        let optimization = minimize(
            |theta| Ok(self.stage_one(x, theta, first, interrupt)?.0),
            &theta_start,
            &theta_lower,
            settings,
            interrupt,
        )?;
        let (value, mode) = self.stage_one(x, &optimization.theta, first, interrupt)?;
        // Stage two's start (also what conditional covariances of a nAGQ = 0 fit start from), while
        // Λ(θ̂) of stage one is still set: the curvature evaluations of stage two change it.
        self.update_eta(x, &mode.beta, &mode.u);
        let stage_two_first = Arc::new(self.first_iteration(x)?);
        Ok(StageOne {
            optimization: OptSummary {
                objective: value,
                ..optimization
            },
            value,
            mode,
            stage_two_first,
        })
    }

    fn theta_lower_bounds(&self) -> Vec<f64> {
        self.terms
            .iter()
            .flat_map(|t| t.theta_lower_bounds())
            .collect()
    }

    /// Stage two over scaled parameters: β by its stage-one standard errors (capped at 10, as
    /// lme4 scales its Nelder–Mead steps), θ by the curvature of stage one's objective at θ̂, so
    /// the objective's Hessian is near 2I in every direction and one trust region suits all.
    fn optimize_stage_two(
        &mut self,
        x: MatRef<'_, f64>,
        stage_one_first: &CrossProducts,
        stage_one: StageOne,
        rule: Option<GaussHermite>,
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<GlmmFit> {
        let p = stage_one.mode.beta.len();
        let theta_lower = self.theta_lower_bounds();
        let theta_hat = stage_one.optimization.theta.clone();
        let beta_scales = self.beta_scales(p);
        let mut scales = self.curvature_scales(
            x,
            &theta_hat,
            stage_one.value,
            &theta_lower,
            stage_one_first,
            interrupt,
        )?;
        scales.extend(beta_scales);
        let beta_start = match &self.control.beta_start {
            Some(beta) => beta.clone(),
            None => stage_one.mode.beta.clone(),
        };
        self.minimize_stage_two(
            x,
            &stage_one.stage_two_first,
            theta_hat,
            beta_start,
            scales,
            stage_one.optimization.n_evaluations,
            rule,
            settings,
            interrupt,
        )
    }

    /// Stage two's optimisation from (θ, β) = (`theta_start`, `beta_start`) over the parameters
    /// divided by `scales`, PIRLS starting from the start whose first iteration is `first`;
    /// `earlier_evaluations` are those of stage one, counted in the summary.
    #[allow(clippy::too_many_arguments)]
    fn minimize_stage_two(
        &mut self,
        x: MatRef<'_, f64>,
        first: &CrossProducts,
        theta_start: Vec<f64>,
        beta_start: Vec<f64>,
        scales: Vec<f64>,
        earlier_evaluations: usize,
        rule: Option<GaussHermite>,
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<GlmmFit> {
        let n_theta = theta_start.len();
        let p = beta_start.len();
        let theta_lower = self.theta_lower_bounds();
        let mut parameters_start = theta_start;
        parameters_start.extend_from_slice(&beta_start);
        let start: Vec<f64> = parameters_start
            .iter()
            .zip(&scales)
            .map(|(v, s)| v / s)
            .collect();
        let lower: Vec<f64> = theta_lower
            .iter()
            .zip(&scales)
            .map(|(l, s)| l / s)
            .chain(std::iter::repeat_n(f64::NEG_INFINITY, p))
            .collect();
        let unscale = |scaled: &[f64]| -> Vec<f64> {
            scaled.iter().zip(&scales).map(|(v, s)| v * s).collect()
        };
        let stage_two = minimize(
            |scaled| {
                let parameters = unscale(scaled);
                let (theta, beta) = parameters.split_at(n_theta);
                Ok(self
                    .stage_two(x, first, theta, beta, rule.as_ref(), interrupt)?
                    .0)
            },
            &start,
            &lower,
            settings.stage_two(),
            interrupt,
        )?;
        let parameters = unscale(&stage_two.theta);
        let theta = parameters[..n_theta].to_vec();
        let beta = parameters[n_theta..].to_vec();
        let summary = OptSummary {
            theta_start: parameters_start,
            theta: theta.clone(),
            n_evaluations: earlier_evaluations + stage_two.n_evaluations,
            ..stage_two
        };
        self.estimates_stage_two(x, first, summary, theta, beta, rule, interrupt)
    }

    /// Scale of each θ component for stage two: √(2 / ∂²f/∂θᵢ²) of stage one's objective f at
    /// θ̂, so that a unit step changes −2 log L by about two, as a standard error does; from a
    /// second difference (one-sided at a bound), 1 where that fails or is not positive.
    fn curvature_scales(
        &mut self,
        x: MatRef<'_, f64>,
        theta: &[f64],
        value: f64,
        lower: &[f64],
        first: &CrossProducts,
        interrupt: &Interrupt,
    ) -> Result<Vec<f64>> {
        const STEP: f64 = 1e-3;
        (0..theta.len())
            .map(|i| {
                let mut at = |delta: f64| {
                    let mut shifted = theta.to_vec();
                    shifted[i] += delta;
                    unless_interrupted(
                        self.stage_one(x, &shifted, first, interrupt)
                            .map(|(value, _)| value),
                    )
                };
                let curvature = if theta[i] - STEP >= lower[i] {
                    at(STEP)?
                        .zip(at(-STEP)?)
                        .map(|(plus, minus)| (plus - 2.0 * value + minus) / (STEP * STEP))
                } else {
                    at(STEP)?
                        .zip(at(2.0 * STEP)?)
                        .map(|(one, two)| (two - 2.0 * one + value) / (STEP * STEP))
                };
                Ok(match curvature {
                    Some(c) if c.is_finite() && c > 0.0 => (2.0 / c).sqrt().clamp(1e-4, 1.0),
                    _ => 1.0,
                })
            })
            .collect()
    }

    /// Estimates of a nAGQ = 0 fit: the stage-one state at θ̂.
    fn estimates_stage_one(&mut self, stage_one: StageOne) -> Result<GlmmFit> {
        let theta = stage_one.optimization.theta.clone();
        let log_det_random = self.joint.factor.log_det_random();
        let (r_x, _) = self.joint.factor.fixed().fixed_effects_factor();
        self.collect(
            stage_one.optimization,
            theta,
            stage_one.mode,
            stage_one.value,
            stage_one.value,
            log_det_random,
            &r_x.values,
            None,
        )
    }

    /// Estimates after stage two: the state at (θ̂, β̂), R_X at the same weights, and the Hessian.
    #[allow(clippy::too_many_arguments)]
    fn estimates_stage_two(
        &mut self,
        x: MatRef<'_, f64>,
        first: &CrossProducts,
        optimization: OptSummary,
        theta: Vec<f64>,
        beta: Vec<f64>,
        rule: Option<GaussHermite>,
        interrupt: &Interrupt,
    ) -> Result<GlmmFit> {
        let mut at = theta.clone();
        at.extend_from_slice(&beta);
        let derivatives = self.derivatives(x, first, &at, theta.len(), rule.as_ref(), interrupt)?;
        let hessian = &derivatives.hessian;
        let (objective, mode) =
            self.stage_two(x, first, &theta, &beta, rule.as_ref(), interrupt)?;
        let log_det_random = self.random_only.factor.log_det_random();
        // −2 log L with the data constants: the quadrature deviance is built from deviance
        // residuals, whose difference from the family's full −2 log L depends on y alone.
        let minus_twice_log_likelihood = if rule.is_some() {
            let deviance = self.sum_deviance_residuals();
            objective - deviance
                + self.family.minus_twice_log_likelihood(
                    &self.y,
                    &self.mu,
                    &self.prior_weights,
                    deviance,
                )
        } else {
            objective
        };
        // R_X at the weights of the last PIRLS iteration, as lme4's decomposition has it.
        self.joint.cross.reweight(
            &self.terms,
            x,
            &self.working_weights,
            &self.working_response,
        )?;
        self.joint
            .factor
            .factorize(&self.joint.cross, &self.lambdas)?;
        let (r_x, _) = self.joint.factor.fixed().fixed_effects_factor();
        let n_theta = theta.len();
        let p = beta.len();
        let covariance_from_hessian = invert_symmetric(hessian, at.len()).map(|inverse| {
            let m = at.len();
            let mut block = vec![0.0; p * p];
            for c in 0..p {
                for r in 0..p {
                    block[r + c * p] = inverse[(n_theta + r) + (n_theta + c) * m]
                        + inverse[(n_theta + c) + (n_theta + r) * m];
                }
            }
            block
        });
        self.collect(
            optimization,
            theta,
            mode,
            objective,
            minus_twice_log_likelihood,
            log_det_random,
            &r_x.values,
            covariance_from_hessian,
        )
        .map(|fit| GlmmFit {
            derivatives: Some(derivatives),
            ..fit
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn collect(
        &mut self,
        optimization: OptSummary,
        theta: Vec<f64>,
        mode: Mode,
        objective: f64,
        minus_twice_log_likelihood: f64,
        log_det_random: f64,
        r_x: &[f64],
        beta_covariance_hessian: Option<Vec<f64>>,
    ) -> Result<GlmmFit> {
        let n = self.y.len() as f64;
        let sum_squared_u = sum_squares(&mode.u);
        let dispersion = if self.family.has_dispersion() {
            let pearson: f64 = self
                .y
                .iter()
                .zip(&self.mu)
                .zip(&self.prior_weights)
                .map(|((&y, &m), &w)| w * (y - m).powi(2) / self.family.variance(m))
                .sum();
            (pearson + sum_squared_u) / n
        } else {
            1.0
        };
        let p = mode.beta.len();
        let random_effects = random_effects(&self.terms, &self.lambdas, &mode.u);
        Ok(GlmmFit {
            optimization: OptSummary {
                objective,
                ..optimization
            },
            theta,
            beta_covariance_hessian,
            beta_covariance_factor: scaled_inverse_gram(r_x, p, dispersion),
            random_effects,
            objective,
            minus_twice_log_likelihood,
            sum_deviance_residuals: self.sum_deviance_residuals(),
            sum_squared_u,
            log_det_random,
            dispersion,
            eta: self.eta.clone(),
            mu: self.mu.clone(),
            pirls_converged: mode.converged,
            beta: mode.beta,
            derivatives: None,
        })
    }

    /// Central-difference gradient and Hessian of stage two's objective at `at` = (θ, β) (lme4's
    /// `deriv12`, which `glmer` computes there for the covariance of β̂ and `checkConv`).
    fn derivatives(
        &mut self,
        x: MatRef<'_, f64>,
        first: &CrossProducts,
        at: &[f64],
        n_theta: usize,
        rule: Option<&GaussHermite>,
        interrupt: &Interrupt,
    ) -> Result<Derivatives> {
        let value = |model: &mut Self, point: &[f64]| -> Result<f64> {
            let (theta, beta) = point.split_at(n_theta);
            Ok(model.stage_two(x, first, theta, beta, rule, interrupt)?.0)
        };
        let centre = value(self, at)?;
        central_differences(|point| value(self, point), at, centre)
    }

    /// [`Self::derivatives`] at (θ, β), stage two starting as [`Self::objective`]'s does.
    pub fn objective_derivatives(
        &mut self,
        x: MatRef<'_, f64>,
        theta: &[f64],
        beta: &[f64],
        n_agq: usize,
        interrupt: &Interrupt,
    ) -> Result<Derivatives> {
        if n_agq == 0 {
            return Err(CoreError::Specification(
                "nAGQ = 0 optimises θ alone: lme4 computes no derivatives in (θ, β)".into(),
            ));
        }
        self.check_fixed_effects(x, beta)?;
        let rule = self.quadrature_rule(n_agq)?;
        let first = self.stage_two_start(x, interrupt)?;
        let mut at = theta.to_vec();
        at.extend_from_slice(beta);
        self.derivatives(x, &first, &at, theta.len(), rule.as_ref(), interrupt)
    }

    /// Conditional covariances of the random effects at (θ, β): per term one k×k tile per level,
    /// σ² λ [(L_Z L_Zᵀ)⁻¹]_level λᵀ with L_Z at the weights PIRLS ends with, from stage two's
    /// start (see [`Self::objective`]).
    pub fn conditional_covariances(
        &mut self,
        x: MatRef<'_, f64>,
        theta: &[f64],
        beta: &[f64],
        dispersion: f64,
        interrupt: &Interrupt,
    ) -> Result<Vec<Vec<f64>>> {
        self.check_fixed_effects(x, beta)?;
        let first = self.stage_two_start(x, interrupt)?;
        self.stage_two(x, &first, theta, beta, None, interrupt)?;
        let tiles = self.random_only.factor.inverse_diagonal_tiles();
        Ok(conditional_covariances(&tiles, &self.lambdas, dispersion))
    }
}

fn sum_squares(u: &[Vec<f64>]) -> f64 {
    u.iter().flatten().map(|v| v * v).sum()
}

/// `values ← (values + previous) / 2`, block by block (a halved PIRLS step).
fn halve_toward(values: &mut [Vec<f64>], previous: &[Vec<f64>]) {
    for (block, old) in values.iter_mut().zip(previous) {
        for (value, old) in block.iter_mut().zip(old) {
            *value = 0.5 * (*value + old);
        }
    }
}
