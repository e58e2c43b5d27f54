//! Generalized linear mixed models: η = offset + Xβ + ZΛ(θ)u, μ = g⁻¹(η), u ~ N(0, I). The
//! conditional modes û come from penalised iteratively reweighted least squares (PIRLS) on the
//! same blocked/sparse factorisation as the linear model; the objective is the Laplace
//! approximation to −2 log L (Bates et al. 2015, JSS 67(1), §5; lme4's `glmerLaplace`), or
//! adaptive Gauss–Hermite quadrature for one scalar random-effects term. As lme4 does, stage one
//! optimises θ with β updated inside PIRLS (nAGQ = 0); stage two optimises (θ, β) with PIRLS over
//! u alone.

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, MatRef};

use crate::crossproducts::CrossProducts;
use crate::error::{CoreError, Result};
use crate::factorization::{Factorization, FactorizationChoice};
use crate::families::Family;
use crate::optimize::{minimize, OptSummary, OptimizerSettings};
use crate::quadrature::GaussHermite;
use crate::terms::{relative_covariance_factor, RandomEffectsTerm};

/// PIRLS stops when the penalised deviance changes by less than this, relatively.
const PIRLS_TOLERANCE: f64 = 1e-10;
const PIRLS_MAX_ITERATIONS: usize = 100;
const PIRLS_MAX_HALVINGS: usize = 30;
/// Central-difference step of the Hessian of the objective in (θ, β) (lme4's `deriv12`).
const HESSIAN_STEP: f64 = 1e-4;

/// One PIRLS problem: the design, the response and the factorisation it solves with.
struct Pirls {
    cross: CrossProducts,
    factor: Factorization,
    n_fixed: usize,
}

/// A generalized linear mixed model's data and structure.
pub struct GeneralizedLinearMixedModel {
    terms: Vec<RandomEffectsTerm>,
    family: Family,
    y: Vec<f64>,
    prior_weights: Vec<f64>,
    offset: Vec<f64>,
    /// PIRLS over (β, u) (stage one, and R_X at the end).
    joint: Pirls,
    /// PIRLS over u for fixed β (stage two); its design has no fixed-effects columns.
    random_only: Pirls,
    no_columns: Mat<f64>,
    lambdas: Vec<Vec<f64>>,
    /// Buffers for η, μ, working weights and working response, reused across iterations.
    eta: Vec<f64>,
    mu: Vec<f64>,
    working_weights: Vec<f64>,
    working_response: Vec<f64>,
}

/// The state PIRLS converged to.
#[derive(Debug, Clone)]
struct Mode {
    beta: Vec<f64>,
    /// Spherical random effects, per term, level-major.
    u: Vec<Vec<f64>>,
    /// Σ devresᵢ + ‖u‖².
    penalized_deviance: f64,
    converged: bool,
}

/// The estimates of a fit.
#[derive(Debug, Clone)]
pub struct GlmmFit {
    pub optimization: OptSummary,
    pub theta: Vec<f64>,
    pub beta: Vec<f64>,
    /// Covariance of β̂ from the finite-difference Hessian of the objective in (θ, β) (lme4's
    /// default), p × p column-major; `None` when the Hessian is not positive definite.
    pub beta_covariance_hessian: Option<Vec<f64>>,
    /// dispersion · (R_X R_Xᵀ)⁻¹ at the mode (lme4's `vcov(use.hessian = FALSE)`).
    pub beta_covariance_factor: Vec<f64>,
    pub spherical_random_effects: Vec<Vec<f64>>,
    pub random_effects: Vec<Vec<f64>>,
    /// The optimised objective (Laplace or adaptive Gauss–Hermite deviance).
    pub objective: f64,
    /// −2 log L including the data constants (R's `family$aic`), comparable across nAGQ.
    pub minus_twice_log_likelihood: f64,
    /// Σ devresᵢ at the mode.
    pub sum_deviance_residuals: f64,
    /// ‖u‖² and log |L_Z|² at the mode.
    pub sum_squared_u: f64,
    pub log_det_random: f64,
    /// Estimated dispersion (1 for binomial, Poisson, negative binomial).
    pub dispersion: f64,
    pub eta: Vec<f64>,
    pub mu: Vec<f64>,
    pub pirls_converged: bool,
}

impl Pirls {
    fn new(terms: &[RandomEffectsTerm], x: MatRef<'_, f64>, choice: FactorizationChoice) -> Result<Self> {
        let cross = CrossProducts::new(terms, x, None)?;
        let factor = Factorization::new(&cross, choice)?;
        Ok(Self { cross, factor, n_fixed: x.ncols() })
    }
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
            return Err(CoreError::Specification("a mixed model needs at least one random-effects term".into()));
        }
        if y.len() != n || prior_weights.len() != n || offset.len() != n {
            return Err(CoreError::InvalidInput(format!(
                "response, weights and offset must have {n} values (got {}, {}, {})",
                y.len(),
                prior_weights.len(),
                offset.len()
            )));
        }
        if prior_weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(CoreError::InvalidInput("weights must be positive and finite".into()));
        }
        if offset.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::InvalidInput("the offset has non-finite values".into()));
        }
        if (0..x.ncols()).any(|c| x.col(c).iter().any(|v| !v.is_finite())) {
            return Err(CoreError::InvalidInput("the fixed-effects model matrix has non-finite values".into()));
        }
        family.check_response(&y, &prior_weights)?;
        let joint = Pirls::new(&terms, x, choice)?;
        let no_columns = Mat::<f64>::zeros(n, 0);
        let random_only = Pirls::new(&terms, no_columns.as_ref(), choice)?;
        let lambdas = terms.iter().map(|t| vec![0.0; t.k * t.k]).collect();
        Ok(Self {
            terms,
            family,
            y,
            prior_weights,
            offset,
            joint,
            random_only,
            no_columns,
            lambdas,
            eta: vec![0.0; n],
            mu: vec![0.0; n],
            working_weights: vec![0.0; n],
            working_response: vec![0.0; n],
        })
    }

    pub fn n_theta(&self) -> usize {
        self.terms.iter().map(|t| t.n_theta()).sum()
    }

    pub fn terms(&self) -> &[RandomEffectsTerm] {
        &self.terms
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn is_sparse(&self) -> bool {
        self.joint.factor.is_sparse()
    }

    fn set_theta(&mut self, theta: &[f64]) -> Result<()> {
        if theta.len() != self.n_theta() {
            return Err(CoreError::InvalidInput(format!(
                "theta has {} values, the model {}",
                theta.len(),
                self.n_theta()
            )));
        }
        let mut next = 0;
        for (term, lambda) in self.terms.iter().zip(self.lambdas.iter_mut()) {
            let count = term.n_theta();
            relative_covariance_factor(&theta[next..next + count], term.k, lambda);
            next += count;
        }
        Ok(())
    }

    /// η = offset + Xβ + Σⱼ Zⱼ Λⱼ uⱼ into `self.eta`, μ into `self.mu`.
    fn update_eta(&mut self, x: MatRef<'_, f64>, beta: &[f64], u: &[Vec<f64>]) {
        self.eta.copy_from_slice(&self.offset);
        for (c, &beta_c) in beta.iter().enumerate() {
            for (eta, x_ic) in self.eta.iter_mut().zip(x.col(c).iter()) {
                *eta += beta_c * x_ic;
            }
        }
        for ((term, lambda), u) in self.terms.iter().zip(&self.lambdas).zip(u) {
            let k = term.k;
            for (i, &level) in term.codes.iter().enumerate() {
                let u_level = &u[level as usize * k..(level as usize + 1) * k];
                // zᵢᵀ λ u_level
                let mut value = 0.0;
                for r in 0..k {
                    let b_r: f64 = (0..=r).map(|c| lambda[r + c * k] * u_level[c]).sum();
                    value += term.z[i * k + r] * b_r;
                }
                self.eta[i] += value;
            }
        }
        let link = self.family.link;
        for (mu, &eta) in self.mu.iter_mut().zip(&self.eta) {
            *mu = link.inverse(eta);
        }
    }

    fn sum_deviance_residuals(&self) -> f64 {
        self.y
            .iter()
            .zip(&self.mu)
            .zip(&self.prior_weights)
            .map(|((&y, &mu), &w)| self.family.deviance_residual(y, mu, w))
            .sum()
    }

    /// Working weights and working response (without the offset and, for `subtract_fixed`,
    /// without Xβ) at the current η.
    fn update_working(&mut self, x: MatRef<'_, f64>, beta: &[f64], subtract_fixed: bool) {
        let link = self.family.link;
        for i in 0..self.y.len() {
            let eta = self.eta[i];
            let mu = self.mu[i];
            let mu_eta = link.mu_eta(eta);
            self.working_weights[i] = self.prior_weights[i] * mu_eta * mu_eta / self.family.variance(mu);
            let mut response = eta - self.offset[i] + (self.y[i] - mu) / mu_eta;
            if subtract_fixed {
                for (c, &beta_c) in beta.iter().enumerate() {
                    response -= beta_c * x[(i, c)];
                }
            }
            self.working_response[i] = response;
        }
    }

    /// PIRLS to the conditional mode. `joint`: update β with u (stage one), else β is fixed.
    /// `start`: the (β, u) to start from; `start_eta` instead starts from η = g(μ₀).
    fn pirls(&mut self, x: MatRef<'_, f64>, start: Mode, joint: bool, start_from_initial_mu: bool) -> Result<Mode> {
        let mut beta = start.beta;
        let mut u = start.u;
        if start_from_initial_mu {
            for i in 0..self.y.len() {
                self.mu[i] = self.family.initial_mu(self.y[i], self.prior_weights[i]);
                self.eta[i] = self.family.link.link(self.mu[i]);
            }
        } else {
            self.update_eta(x, &beta, &u);
        }
        let mut penalized = if start_from_initial_mu {
            f64::INFINITY
        } else {
            self.sum_deviance_residuals() + sum_squares(&u)
        };
        let mut converged = false;
        for _ in 0..PIRLS_MAX_ITERATIONS {
            self.update_working(x, &beta, !joint);
            let (pirls, design) = if joint {
                (&mut self.joint, x)
            } else {
                (&mut self.random_only, self.no_columns.as_ref())
            };
            pirls.cross.reweight(&self.terms, design, &self.working_weights, &self.working_response)?;
            pirls.factor.factorize(&pirls.cross, &self.lambdas)?;
            let new_beta = if joint { pirls.factor.fixed().fixed_effects() } else { beta.clone() };
            let fixed_for_solve: Vec<f64> = if joint { new_beta.clone() } else { Vec::new() };
            let new_u = pirls.factor.solve_random_effects(&fixed_for_solve);
            // Step-halving on the penalised deviance.
            let mut step = 1.0;
            let mut accepted = None;
            for _ in 0..PIRLS_MAX_HALVINGS {
                let trial_beta: Vec<f64> = beta.iter().zip(&new_beta).map(|(a, b)| a + step * (b - a)).collect();
                let trial_u: Vec<Vec<f64>> = u
                    .iter()
                    .zip(&new_u)
                    .map(|(old, new)| old.iter().zip(new).map(|(a, b)| a + step * (b - a)).collect())
                    .collect();
                self.update_eta(x, &trial_beta, &trial_u);
                let valid = self.mu.iter().all(|&m| self.family.valid_mu(m))
                    && self.eta.iter().all(|&e| self.family.link.valid_eta(e));
                let value = if valid { self.sum_deviance_residuals() + sum_squares(&trial_u) } else { f64::INFINITY };
                if value.is_finite() && (value <= penalized || !penalized.is_finite()) {
                    accepted = Some((trial_beta, trial_u, value));
                    break;
                }
                step /= 2.0;
            }
            let Some((next_beta, next_u, value)) = accepted else {
                // No step lowers the penalised deviance: we are at the mode to working precision.
                self.update_eta(x, &beta, &u);
                converged = true;
                break;
            };
            let change = (penalized - value).abs();
            beta = next_beta;
            u = next_u;
            let previous = penalized;
            penalized = value;
            if previous.is_finite() && change <= PIRLS_TOLERANCE * (value.abs() + PIRLS_TOLERANCE) {
                converged = true;
                break;
            }
        }
        Ok(Mode { beta, u, penalized_deviance: penalized, converged })
    }

    /// The Laplace objective at the current mode: refactor at the mode's weights for log|L_Z|².
    fn laplace_at_mode(&mut self, x: MatRef<'_, f64>, mode: &Mode, joint: bool) -> Result<f64> {
        self.update_eta(x, &mode.beta, &mode.u);
        self.update_working(x, &mode.beta, !joint);
        let (pirls, design) = if joint { (&mut self.joint, x) } else { (&mut self.random_only, self.no_columns.as_ref()) };
        pirls.cross.reweight(&self.terms, design, &self.working_weights, &self.working_response)?;
        pirls.factor.factorize(&pirls.cross, &self.lambdas)?;
        Ok(mode.penalized_deviance + pirls.factor.log_det_random())
    }

    fn zero_mode(&self, beta: Vec<f64>) -> Mode {
        Mode {
            beta,
            u: self.terms.iter().map(|t| vec![0.0; t.n_columns()]).collect(),
            penalized_deviance: f64::INFINITY,
            converged: false,
        }
    }

    /// Stage one's objective at θ: PIRLS over (β, u) from the initial μ, then Laplace.
    fn stage_one(&mut self, x: MatRef<'_, f64>, theta: &[f64]) -> Result<(f64, Mode)> {
        self.set_theta(theta)?;
        let start = self.zero_mode(vec![0.0; self.joint.n_fixed]);
        let mode = self.pirls(x, start, true, true)?;
        let value = self.laplace_at_mode(x, &mode, true)?;
        Ok((value, mode))
    }

    /// Stage two's objective at (θ, β): PIRLS over u from u = 0, then Laplace (n_nodes = 1) or
    /// adaptive Gauss–Hermite quadrature.
    fn stage_two(&mut self, x: MatRef<'_, f64>, theta: &[f64], beta: &[f64], rule: Option<&GaussHermite>) -> Result<(f64, Mode)> {
        self.set_theta(theta)?;
        let start = self.zero_mode(beta.to_vec());
        let mode = self.pirls(x, start, false, false)?;
        let laplace = self.laplace_at_mode(x, &mode, false)?;
        let value = match rule {
            Some(rule) => self.adaptive_quadrature(x, &mode, rule),
            None => laplace,
        };
        Ok((value, mode))
    }

    /// −2 log of the adaptive Gauss–Hermite approximation for one scalar term (Pinheiro & Bates
    /// 1995; lme4's `glmerAGQ`): per level, nodes u_j + z_k / L_jj around the mode, with the
    /// level's deviance residuals summed at each node. Uses the factor of the last Laplace step.
    fn adaptive_quadrature(&mut self, x: MatRef<'_, f64>, mode: &Mode, rule: &GaussHermite) -> f64 {
        let term = &self.terms[0];
        let n_levels = term.n_levels;
        let lambda = self.lambdas[0][0];
        let tiles = match &self.random_only.factor {
            Factorization::Blocked(blocked) => match &blocked.diagonal[0] {
                crate::cholesky::DiagonalFactor::Tiles(tiles) => tiles.values.clone(),
                crate::cholesky::DiagonalFactor::Dense(_) => unreachable!("a single term's block is tile-diagonal"),
            },
            Factorization::Sparse(_) => unreachable!("a single scalar term uses the blocked factorisation"),
        };
        // Fixed part of η per observation.
        let mut fixed_eta = self.offset.clone();
        for (c, &beta_c) in mode.beta.iter().enumerate() {
            for (eta, x_ic) in fixed_eta.iter_mut().zip(x.col(c).iter()) {
                *eta += beta_c * x_ic;
            }
        }
        let u_mode = &mode.u[0];
        let mut node_deviance = vec![0.0; n_levels * rule.nodes.len()];
        let link = self.family.link;
        for (i, &level) in term.codes.iter().enumerate() {
            let level = level as usize;
            let sd = 1.0 / tiles[level];
            for (k, &node) in rule.nodes.iter().enumerate() {
                let u = u_mode[level] + node * sd;
                let eta = fixed_eta[i] + term.z[i] * lambda * u;
                let mu = link.inverse(eta);
                node_deviance[level * rule.nodes.len() + k] += self.family.deviance_residual(self.y[i], mu, self.prior_weights[i]);
            }
        }
        let mut total = 0.0;
        for level in 0..n_levels {
            let sd = 1.0 / tiles[level];
            let terms: Vec<f64> = rule
                .nodes
                .iter()
                .enumerate()
                .map(|(k, &node)| {
                    let u = u_mode[level] + node * sd;
                    rule.log_weights[k] - 0.5 * (node_deviance[level * rule.nodes.len() + k] + u * u) + 0.5 * node * node
                })
                .collect();
            let largest = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let log_sum = largest + terms.iter().map(|t| (t - largest).exp()).sum::<f64>().ln();
            total += -2.0 * log_sum + 2.0 * tiles[level].ln();
        }
        total
    }
}

impl GeneralizedLinearMixedModel {
    /// Fit: stage one (θ, β from PIRLS); with `n_agq ≥ 1` stage two over (θ, β) with the Laplace
    /// (1) or adaptive Gauss–Hermite (> 1, one scalar term only) objective.
    pub fn fit(&mut self, x: MatRef<'_, f64>, n_agq: usize, settings: OptimizerSettings) -> Result<GlmmFit> {
        let rule = if n_agq > 1 {
            if self.terms.len() != 1 || self.terms[0].k != 1 {
                return Err(CoreError::Specification(
                    "adaptive Gauss-Hermite quadrature (nAGQ > 1) needs a single scalar random-effects term such as (1 | g)".into(),
                ));
            }
            Some(GaussHermite::new(n_agq)?)
        } else {
            None
        };
        let start: Vec<f64> = self.terms.iter().flat_map(|t| t.theta_start()).collect();
        let theta_lower: Vec<f64> = self.terms.iter().flat_map(|t| t.theta_lower_bounds()).collect();
        let stage_one = minimize(|theta| self.stage_one(x, theta).ok().map(|r| r.0), &start, &theta_lower, settings)?;
        let (_, stage_one_mode) = self.stage_one(x, &stage_one.theta)?;
        if n_agq == 0 {
            return self.estimates(x, stage_one, stage_one_mode.beta, None, false);
        }
        let n_theta = start.len();
        let mut parameters = stage_one.theta.clone();
        parameters.extend_from_slice(&stage_one_mode.beta);
        let mut lower = theta_lower.clone();
        lower.extend(std::iter::repeat(f64::NEG_INFINITY).take(stage_one_mode.beta.len()));
        let stage_two = minimize(
            |p| self.stage_two(x, &p[..n_theta], &p[n_theta..], rule.as_ref()).ok().map(|r| r.0),
            &parameters,
            &lower,
            settings,
        )?;
        let theta = stage_two.theta[..n_theta].to_vec();
        let beta = stage_two.theta[n_theta..].to_vec();
        let optimization = OptSummary {
            theta_start: parameters,
            n_evaluations: stage_one.n_evaluations + stage_two.n_evaluations,
            ..stage_two
        };
        let summary = OptSummary { theta: theta.clone(), ..optimization };
        self.estimates(x, summary, beta, rule, true)
    }

    /// The objective of stage two at (θ, β), for the Hessian.
    fn stage_two_value(&mut self, x: MatRef<'_, f64>, parameters: &[f64], n_theta: usize, rule: Option<&GaussHermite>) -> Result<f64> {
        Ok(self.stage_two(x, &parameters[..n_theta], &parameters[n_theta..], rule)?.0)
    }

    /// Central-difference Hessian of stage two's objective at `at` (lme4's `deriv12`).
    fn hessian(&mut self, x: MatRef<'_, f64>, at: &[f64], n_theta: usize, rule: Option<&GaussHermite>) -> Result<Vec<f64>> {
        let m = at.len();
        let h = HESSIAN_STEP;
        let center = self.stage_two_value(x, at, n_theta, rule)?;
        let mut hessian = vec![0.0; m * m];
        let mut shifted = at.to_vec();
        let evaluate = |model: &mut Self, changes: &[(usize, f64)], shifted: &mut Vec<f64>| -> Result<f64> {
            shifted.copy_from_slice(at);
            for &(index, delta) in changes {
                shifted[index] += delta;
            }
            model.stage_two_value(x, shifted, n_theta, rule)
        };
        for i in 0..m {
            let plus = evaluate(self, &[(i, h)], &mut shifted)?;
            let minus = evaluate(self, &[(i, -h)], &mut shifted)?;
            hessian[i + i * m] = (plus - 2.0 * center + minus) / (h * h);
            for j in 0..i {
                let pp = evaluate(self, &[(i, h), (j, h)], &mut shifted)?;
                let pm = evaluate(self, &[(i, h), (j, -h)], &mut shifted)?;
                let mp = evaluate(self, &[(i, -h), (j, h)], &mut shifted)?;
                let mm = evaluate(self, &[(i, -h), (j, -h)], &mut shifted)?;
                let value = (pp - pm - mp + mm) / (4.0 * h * h);
                hessian[i + j * m] = value;
                hessian[j + i * m] = value;
            }
        }
        Ok(hessian)
    }

    fn estimates(
        &mut self,
        x: MatRef<'_, f64>,
        optimization: OptSummary,
        beta: Vec<f64>,
        rule: Option<GaussHermite>,
        with_hessian: bool,
    ) -> Result<GlmmFit> {
        let theta = optimization.theta.clone();
        let n_theta = theta.len();
        // The mode over u at (θ, β) and the objective there.
        let (objective, mode) = self.stage_two(x, &theta, &beta, rule.as_ref())?;
        let log_det_random = self.random_only.factor.log_det_random();
        let sum_squared_u = sum_squares(&mode.u);
        self.update_eta(x, &mode.beta, &mode.u);
        let sum_deviance_residuals = self.sum_deviance_residuals();
        let eta = self.eta.clone();
        let mu = self.mu.clone();
        let n = self.y.len() as f64;
        let dispersion = if self.family.has_dispersion() {
            // Pearson-type estimate of lme4's sigma²: (Σ wᵢ(yᵢ−μᵢ)²/V(μᵢ) + ‖u‖²) / n.
            let pearson: f64 = self
                .y
                .iter()
                .zip(&mu)
                .zip(&self.prior_weights)
                .map(|((&y, &m), &w)| w * (y - m).powi(2) / self.family.variance(m))
                .sum();
            (pearson + sum_squared_u) / n
        } else {
            1.0
        };
        // −2 log L with the data constants: the family's full log-likelihood replaces the deviance
        // residuals; their difference depends on y alone, so it also lifts the quadrature value.
        let full = self.family.minus_twice_log_likelihood(&self.y, &mu, &self.prior_weights, sum_deviance_residuals);
        let minus_twice_log_likelihood = objective - sum_deviance_residuals + full;
        // R_X at the mode's weights, from the joint factorisation.
        self.laplace_at_mode(x, &mode, true)?;
        let (r_x, _) = self.joint.factor.fixed().fixed_effects_factor();
        let p = beta.len();
        let beta_covariance_factor = crate::lmm::scaled_inverse_gram(&r_x.values, p, dispersion);
        let beta_covariance_hessian = if with_hessian && p > 0 {
            let mut at = theta.clone();
            at.extend_from_slice(&beta);
            let hessian = self.hessian(x, &at, n_theta, rule.as_ref())?;
            invert_symmetric(&hessian, at.len()).map(|inverse| {
                let m = at.len();
                let mut block = vec![0.0; p * p];
                for c in 0..p {
                    for r in 0..p {
                        block[r + c * p] = 2.0 * inverse[(n_theta + r) + (n_theta + c) * m];
                    }
                }
                block
            })
        } else {
            None
        };
        // Leave the model's buffers at the estimates.
        self.stage_two(x, &theta, &beta, rule.as_ref())?;
        let random_effects = self
            .terms
            .iter()
            .zip(&self.lambdas)
            .zip(&mode.u)
            .map(|((term, lambda), u)| {
                let k = term.k;
                let mut b = vec![0.0; u.len()];
                for level in 0..term.n_levels {
                    for r in 0..k {
                        b[level * k + r] = (0..=r).map(|c| lambda[r + c * k] * u[level * k + c]).sum();
                    }
                }
                b
            })
            .collect();
        Ok(GlmmFit {
            optimization: OptSummary { objective, ..optimization },
            theta,
            beta,
            beta_covariance_hessian,
            beta_covariance_factor,
            spherical_random_effects: mode.u.clone(),
            random_effects,
            objective,
            minus_twice_log_likelihood,
            sum_deviance_residuals,
            sum_squared_u,
            log_det_random,
            dispersion,
            eta,
            mu,
            pirls_converged: mode.converged,
        })
    }

    /// Conditional covariances of the random effects at θ and the estimates' mode: per term, one
    /// k×k tile per level, dispersion · λ [(L_Z L_Zᵀ)⁻¹]_level λᵀ at the final working weights.
    pub fn conditional_covariances(&mut self, x: MatRef<'_, f64>, theta: &[f64], beta: &[f64], dispersion: f64) -> Result<Vec<Vec<f64>>> {
        let (_, mode) = self.stage_two(x, theta, beta, None)?;
        self.laplace_at_mode(x, &mode, false)?;
        let tiles = self.random_only.factor.inverse_diagonal_tiles();
        Ok(crate::lmm::scale_inverse_tiles(&tiles, &self.lambdas, dispersion))
    }
}

/// Inverse of a symmetric positive-definite m×m column-major matrix, `None` when it is not.
fn invert_symmetric(matrix: &[f64], m: usize) -> Option<Vec<f64>> {
    let mat = Mat::<f64>::from_fn(m, m, |i, j| matrix[i + j * m]);
    let llt = mat.llt(faer::Side::Lower).ok()?;
    let inverse = llt.inverse();
    Some((0..m * m).map(|index| inverse[(index % m, index / m)]).collect())
}

fn sum_squares(u: &[Vec<f64>]) -> f64 {
    u.iter().flatten().map(|v| v * v).sum()
}
