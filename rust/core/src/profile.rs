//! Likelihood profiles of a linear mixed model's parameters and the intervals they give (lme4's
//! `profile.merMod` and `confint.thpr`, MixedModels.jl's `profile`; Bates et al. 2015, JSS 67(1),
//! sec. 5.1):
//!
//!   ζ(v) = sign(v − v̂) √(D(v) − D(v̂)),
//!
//! where D(v) is the ML deviance minimised over every other parameter with the profiled one fixed
//! at v. As lme4, the ML deviance is profiled whatever criterion the model was fitted by. The
//! variance parameters are the standard deviations and correlations of each random-effects term
//! (their positions those of θ: a term's λ diagonal holds its standard deviations, the entries
//! below it the correlations) followed by σ; the fixed effects follow on their own scale.
//!
//! * A fixed effect βⱼ = c: with R_X the fixed-effects factor at θ, the residual sum of squares
//!   minimised over the other β is r²(θ) + (c − β̂ⱼ(θ))² / Vⱼⱼ(θ), V = (R_X R_Xᵀ)⁻¹ (a Schur
//!   complement), so D is a profiled objective in θ alone with σ² = that sum / n.
//! * A variance parameter: D(θ, σ) = log|L_Z|² + r²(θ)/σ² + n log(2πσ²) (lme4's `devfun2`), the
//!   other variance parameters mapped to θ by θ = chol(Σ)/σ for each term's covariance Σ.
//!
//! For a GLMM, D is the objective of its fit in (θ, β) (Laplace or adaptive Gauss–Hermite) and the
//! variance parameters are the terms' sds and correlations (θ = chol(Σ)); every other parameter is
//! optimised directly, β in units of its standard errors.
//!
//! The interval at a level is where ζ = ±z; lme4 interpolates it from a spline through the
//! profile, here it is a root of ζ found by regula falsi. A standard deviation whose profile does
//! not reach −z before 0, or a correlation whose profile does not reach ±z before ±1, has that
//! limit as its bound, as lme4 reports.

use std::f64::consts::PI;

use faer::MatRef;

use crate::error::{CoreError, Result};
use crate::glmm::GeneralizedLinearMixedModel;
use crate::interrupt::Interrupt;
use crate::lmm::LinearMixedModel;
use crate::optimize::{minimize, minimize_within, OptimizerSettings};
use crate::terms::RandomEffectsTerm;

/// Profile points per side aim at steps of this fraction of the largest cutoff in ζ.
const STEPS_TO_CUTOFF: f64 = 5.0;
/// A walk that has not reached the cutoff after this many points gives up (a NaN bound).
const MAX_POINTS_PER_SIDE: usize = 40;
/// Regula falsi stops when ζ is this close to the cutoff.
const ZETA_TOLERANCE: f64 = 1e-7;
const MAX_ROOT_ITERATIONS: usize = 40;
/// σ is kept above this fraction of σ̂ by the optimiser (the deviance is infinite at 0).
const SIGMA_FLOOR: f64 = 1e-6;

/// One parameter's profile.
#[derive(Debug, Clone)]
pub struct ParameterProfile {
    /// The profiled parameter's values, ascending.
    pub values: Vec<f64>,
    /// ζ at each value.
    pub zeta: Vec<f64>,
    /// Every parameter (variance parameters, then β) at each point, row by row.
    pub parameters: Vec<f64>,
    /// Per cutoff, the lower and upper interval bounds (NaN where the profile did not get there).
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

/// The profiles of every parameter of a fit.
#[derive(Debug, Clone)]
pub struct LikelihoodProfile {
    /// The estimates (an LMM's ML ones): variance parameters, then β.
    pub estimates: Vec<f64>,
    /// The deviance at the estimates (an LMM's ML deviance without the −Σ log wᵢ constant).
    pub deviance: f64,
    pub parameters: Vec<ParameterProfile>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    StandardDeviation,
    Correlation,
    ResidualStandardDeviation,
    FixedEffect(usize),
}

/// A point of a profile: the profiled value, ζ, where the optimiser ended over the other
/// parameters (the warm start for the next point), and every parameter.
#[derive(Debug, Clone)]
struct Point {
    value: f64,
    zeta: f64,
    free: Vec<f64>,
    parameters: Vec<f64>,
}

/// The random-effects terms' standard deviations and correlations, in θ's order.
fn variance_kinds(terms: &[RandomEffectsTerm]) -> Vec<Kind> {
    let mut kinds = Vec::new();
    for term in terms {
        for column in 0..term.k {
            kinds.push(Kind::StandardDeviation);
            kinds.extend((column + 1..term.k).map(|_| Kind::Correlation));
        }
    }
    kinds
}

/// θ for the terms' standard deviations and correlations `v` and the residual sd `sigma` (1
/// without one): each term's θ is the lower triangle of chol(Σ)/σ. A correlation matrix that is
/// not positive semidefinite has no θ.
fn theta_from_variance(terms: &[RandomEffectsTerm], v: &[f64], sigma: f64) -> Result<Vec<f64>> {
    let mut theta = Vec::with_capacity(v.len());
    let mut next = 0;
    for term in terms {
        let k = term.k;
        let entries = &v[next..next + term.n_theta()];
        next += term.n_theta();
        // Σ's lower triangle, column-major, from the sds on the diagonal and the correlations.
        let mut sd = vec![0.0; k];
        let mut position = 0;
        for (column, sd_column) in sd.iter_mut().enumerate() {
            *sd_column = entries[position];
            position += k - column;
        }
        let mut sigma_matrix = vec![0.0; k * k];
        let mut position = 0;
        for column in 0..k {
            for row in column..k {
                sigma_matrix[row + column * k] = if row == column {
                    sd[row] * sd[row]
                } else {
                    entries[position] * sd[row] * sd[column]
                };
                position += 1;
            }
        }
        let lower = semidefinite_cholesky(&sigma_matrix, k)?;
        for column in 0..k {
            for row in column..k {
                theta.push(lower[row + column * k] / sigma);
            }
        }
    }
    Ok(theta)
}

/// The lower Cholesky factor of a symmetric positive semidefinite k×k matrix (lower triangle
/// used), with zero columns where a pivot vanishes.
fn semidefinite_cholesky(matrix: &[f64], k: usize) -> Result<Vec<f64>> {
    let mut lower = vec![0.0f64; k * k];
    for column in 0..k {
        let scale = matrix[column + column * k].abs().max(f64::MIN_POSITIVE);
        let pivot = matrix[column + column * k]
            - (0..column)
                .map(|m| lower[column + m * k].powi(2))
                .sum::<f64>();
        if pivot < -1e-10 * scale {
            return Err(CoreError::InvalidInput(
                "the correlations are not a correlation matrix".into(),
            ));
        }
        let diagonal = pivot.max(0.0).sqrt();
        lower[column + column * k] = diagonal;
        for row in column + 1..k {
            let rest = matrix[row + column * k]
                - (0..column)
                    .map(|m| lower[row + m * k] * lower[column + m * k])
                    .sum::<f64>();
            lower[row + column * k] = if diagonal > 1e-12 * scale.sqrt() {
                rest / diagonal
            } else {
                0.0
            };
        }
    }
    Ok(lower)
}

/// The terms' standard deviations and correlations at (θ, σ): those of Σ = σ²λλᵀ per term (a
/// correlation with a zero sd is 0).
fn variance_from_theta(terms: &[RandomEffectsTerm], theta: &[f64], sigma: f64) -> Vec<f64> {
    let mut v = Vec::with_capacity(theta.len() + 1);
    let mut next = 0;
    for term in terms {
        let k = term.k;
        let mut lambda = vec![0.0; k * k];
        for column in 0..k {
            for row in column..k {
                lambda[row + column * k] = theta[next];
                next += 1;
            }
        }
        let covariance = |i: usize, j: usize| {
            sigma
                * sigma
                * (0..=i.min(j))
                    .map(|m| lambda[i + m * k] * lambda[j + m * k])
                    .sum::<f64>()
        };
        let sd: Vec<f64> = (0..k).map(|i| covariance(i, i).sqrt()).collect();
        for column in 0..k {
            v.push(sd[column]);
            for row in column + 1..k {
                let scale = sd[row] * sd[column];
                v.push(if scale > 0.0 {
                    covariance(row, column) / scale
                } else {
                    0.0
                });
            }
        }
    }
    v
}

/// The profiling state: the model with the response installed and the ML estimates.
struct Profiler<'a> {
    model: &'a mut LinearMixedModel,
    kinds: Vec<Kind>,
    n_variance: usize,
    n_obs: f64,
    estimates: Vec<f64>,
    theta_hat: Vec<f64>,
    deviance: f64,
    standard_errors: Vec<f64>,
    n_levels: Vec<f64>,
    interrupt: &'a Interrupt<'a>,
}

impl Profiler<'_> {
    /// The ML deviance profiled over σ and β at θ, with βⱼ fixed at c where given, and every
    /// parameter there.
    fn profiled_deviance(
        &mut self,
        theta: &[f64],
        fixed: Option<(usize, f64)>,
    ) -> Result<(f64, Vec<f64>)> {
        let parts = self.model.deviance_parts(theta, false)?;
        let mut beta = self.model.conditional_fixed_effects();
        let mut pwrss = parts.pwrss;
        if let Some((j, c)) = fixed {
            let p = beta.len();
            let v_jj = parts.unscaled_beta_covariance[j + j * p];
            let shift = (c - beta[j]) / v_jj;
            pwrss += (c - beta[j]) * shift;
            for (i, b) in beta.iter_mut().enumerate() {
                *b += parts.unscaled_beta_covariance[i + j * p] * shift;
            }
        }
        let n = self.n_obs;
        let deviance = parts.log_det + n * (1.0 + (2.0 * PI * pwrss / n).ln());
        let sigma = (pwrss / n).sqrt();
        let mut parameters = variance_from_theta(self.model.terms(), theta, sigma);
        parameters.push(sigma);
        parameters.extend(beta);
        Ok((deviance, parameters))
    }

    /// The ML deviance at variance parameters `v` with β profiled out, and every parameter there.
    fn unprofiled_deviance(&mut self, v: &[f64]) -> Result<(f64, Vec<f64>)> {
        let sigma = v[v.len() - 1];
        let theta = theta_from_variance(self.model.terms(), &v[..v.len() - 1], sigma)?;
        let parts = self.model.deviance_parts(&theta, false)?;
        let deviance = parts.log_det
            + parts.pwrss / (sigma * sigma)
            + self.n_obs * (2.0 * PI * sigma * sigma).ln();
        let mut parameters = v.to_vec();
        parameters.extend(self.model.conditional_fixed_effects());
        Ok((deviance, parameters))
    }

    /// A variance parameter's free scale: sds and σ in units of σ̂, correlations as they are.
    fn variance_scale(&self, m: usize) -> f64 {
        match self.kinds[m] {
            Kind::Correlation => 1.0,
            _ => self.estimates[self.n_variance - 1],
        }
    }
}

impl ConstrainedDeviance for Profiler<'_> {
    fn free_at_estimates(&self, index: usize) -> Vec<f64> {
        match self.kinds[index] {
            Kind::FixedEffect(_) => self.theta_hat.clone(),
            _ => (0..self.n_variance)
                .filter(|&m| m != index)
                .map(|m| self.estimates[m] / self.variance_scale(m))
                .collect(),
        }
    }

    fn constrained_minimum(&mut self, index: usize, value: f64, start: &[f64]) -> Result<Minimum> {
        let settings = OptimizerSettings::profile();
        let interrupt = self.interrupt;
        let (free, deviance, parameters) = match self.kinds[index] {
            Kind::FixedEffect(j) => {
                let lower = self.model.theta_lower_bounds();
                let summary = minimize(
                    |theta| Ok(self.profiled_deviance(theta, Some((j, value)))?.0),
                    start,
                    &lower,
                    settings,
                    interrupt,
                )?;
                let (deviance, parameters) =
                    self.profiled_deviance(&summary.theta, Some((j, value)))?;
                (summary.theta, deviance, parameters)
            }
            _ => {
                let others: Vec<usize> = (0..self.n_variance).filter(|&m| m != index).collect();
                let scales: Vec<f64> = others.iter().map(|&m| self.variance_scale(m)).collect();
                let (lower, upper): (Vec<f64>, Vec<f64>) = others
                    .iter()
                    .map(|&m| match self.kinds[m] {
                        Kind::Correlation => (-1.0, 1.0),
                        Kind::StandardDeviation => (0.0, f64::INFINITY),
                        _ => (SIGMA_FLOOR, f64::INFINITY),
                    })
                    .unzip();
                let full = |free: &[f64]| {
                    let mut v = Vec::with_capacity(free.len() + 1);
                    for (position, (&u, &scale)) in free.iter().zip(&scales).enumerate() {
                        if position == index {
                            v.push(value);
                        }
                        v.push(u * scale);
                    }
                    if index == free.len() {
                        v.push(value);
                    }
                    v
                };
                let summary = minimize_within(
                    |free| Ok(self.unprofiled_deviance(&full(free))?.0),
                    start,
                    &lower,
                    &upper,
                    settings,
                    interrupt,
                )?;
                let (deviance, parameters) = self.unprofiled_deviance(&full(&summary.theta))?;
                (summary.theta, deviance, parameters)
            }
        };
        Ok(Minimum {
            free,
            deviance,
            parameters,
        })
    }

    fn first_step(&self, index: usize) -> f64 {
        let estimate = self.estimates[index];
        let sigma = self.estimates[self.n_variance - 1];
        match self.kinds[index] {
            Kind::FixedEffect(j) => 0.5 * self.standard_errors[j],
            Kind::ResidualStandardDeviation => 0.5 * sigma / (2.0 * self.n_obs).sqrt(),
            Kind::StandardDeviation => {
                0.5 * estimate.max(0.1 * sigma) / (2.0 * self.n_levels[index]).sqrt()
            }
            Kind::Correlation => correlation_step(estimate, self.n_levels[index]),
        }
    }

    fn kind(&self, index: usize) -> Kind {
        self.kinds[index]
    }

    fn n_parameters(&self) -> usize {
        self.kinds.len()
    }

    fn estimates(&self) -> &[f64] {
        &self.estimates
    }

    fn minimum(&self) -> f64 {
        self.deviance
    }
}

/// The first step along a correlation's profile: about half its approximate standard error.
fn correlation_step(estimate: f64, n_levels: f64) -> f64 {
    (0.5 * (1.0 - estimate * estimate) / n_levels.sqrt()).max(0.01)
}

/// What profiling needs of a model: each parameter's kind, the estimates and the deviance there,
/// and the deviance minimised over the other parameters with one held fixed.
trait ConstrainedDeviance {
    fn kind(&self, index: usize) -> Kind;
    fn n_parameters(&self) -> usize;
    fn estimates(&self) -> &[f64];
    /// The deviance at the estimates.
    fn minimum(&self) -> f64;
    /// Where the optimisation over the other parameters starts at the estimates.
    fn free_at_estimates(&self, index: usize) -> Vec<f64>;
    /// The first step away from the estimate: about half an approximate standard error.
    fn first_step(&self, index: usize) -> f64;
    /// The minimum of the deviance over the other parameters with parameter `index` at `value`,
    /// from `start`.
    fn constrained_minimum(&mut self, index: usize, value: f64, start: &[f64]) -> Result<Minimum>;
}

/// Where the optimiser ended over the other parameters, the deviance there and every parameter.
struct Minimum {
    free: Vec<f64>,
    deviance: f64,
    parameters: Vec<f64>,
}

/// Profiling along one parameter of any [`ConstrainedDeviance`].
struct Walker<'a, D: ConstrainedDeviance>(&'a mut D);

impl<D: ConstrainedDeviance> Walker<'_, D> {
    fn point(&mut self, index: usize, value: f64, start: &[f64]) -> Result<Point> {
        let minimum = self.0.constrained_minimum(index, value, start)?;
        let estimate = self.0.estimates()[index];
        let excess = (minimum.deviance - self.0.minimum()).max(0.0);
        Ok(Point {
            value,
            zeta: (value - estimate).signum() * excess.sqrt(),
            free: minimum.free,
            parameters: minimum.parameters,
        })
    }

    /// The profile from the estimate outward in `direction` (±1) until |ζ| reaches `cutoff` or
    /// the parameter its limit (a standard deviation's 0, a correlation's ±1); the points in
    /// walking order, the estimate first, and whether the walk ended at that limit.
    fn walk(&mut self, index: usize, direction: f64, cutoff: f64) -> Result<(Vec<Point>, bool)> {
        let estimate = self.0.estimates()[index];
        let mut points = vec![Point {
            value: estimate,
            zeta: 0.0,
            free: self.0.free_at_estimates(index),
            parameters: self.0.estimates().to_vec(),
        }];
        let (limit, attainable) = match (self.0.kind(index), direction < 0.0) {
            (Kind::StandardDeviation, true) => (0.0, true),
            (Kind::ResidualStandardDeviation, true) => (0.0, false),
            (Kind::Correlation, _) => (direction, true),
            _ => (f64::INFINITY * direction, false),
        };
        let beyond = |value: f64| (value - limit) * direction >= 0.0;
        let mut step = self.0.first_step(index);
        while points.len() <= MAX_POINTS_PER_SIDE {
            let last = &points[points.len() - 1];
            if attainable && last.value == limit {
                return Ok((points, true));
            }
            let mut value = last.value + direction * step;
            if beyond(value) {
                value = if attainable {
                    limit
                } else {
                    0.5 * (last.value + limit)
                };
            }
            let point = self.point(index, value, &last.free.clone())?;
            let reached = point.zeta.abs() >= cutoff;
            let previous = &points[points.len() - 1];
            let slope = ((point.zeta - previous.zeta) / (point.value - previous.value)).abs();
            points.push(point);
            if reached {
                return Ok((points, false));
            }
            let target = cutoff / STEPS_TO_CUTOFF;
            step = if slope > 0.0 && slope.is_finite() {
                (target / slope).clamp(0.5 * step, 4.0 * step)
            } else {
                4.0 * step
            };
        }
        Ok((points, false))
    }

    /// The bound where ζ = `direction`·`cutoff` between the walk's points, refining by regula
    /// falsi (Illinois); the refinement's points are added to `extra`.
    fn bound(
        &mut self,
        index: usize,
        points: &[Point],
        at_limit: bool,
        direction: f64,
        cutoff: f64,
        extra: &mut Vec<Point>,
    ) -> Result<f64> {
        let Some(outer) = points.iter().position(|p| p.zeta.abs() >= cutoff) else {
            return Ok(if at_limit {
                points[points.len() - 1].value
            } else {
                f64::NAN
            });
        };
        let target = direction * cutoff;
        let mut inner = points[outer - 1].clone();
        let mut outer = points[outer].clone();
        if outer.zeta == target {
            return Ok(outer.value);
        }
        let (mut g_inner, mut g_outer) = (inner.zeta - target, outer.zeta - target);
        let mut kept_side = 0i8;
        for _ in 0..MAX_ROOT_ITERATIONS {
            let value = inner.value - g_inner * (outer.value - inner.value) / (g_outer - g_inner);
            let start = if g_inner.abs() < g_outer.abs() {
                inner.free.clone()
            } else {
                outer.free.clone()
            };
            let point = self.point(index, value, &start)?;
            let g = point.zeta - target;
            extra.push(point.clone());
            if g.abs() < ZETA_TOLERANCE || point.value == inner.value || point.value == outer.value
            {
                return Ok(point.value);
            }
            if g.signum() == g_inner.signum() {
                inner = point;
                g_inner = g;
                if kept_side == 1 {
                    g_outer *= 0.5;
                }
                kept_side = 1;
            } else {
                outer = point;
                g_outer = g;
                if kept_side == -1 {
                    g_inner *= 0.5;
                }
                kept_side = -1;
            }
        }
        Ok(f64::NAN)
    }

    fn profile_parameter(&mut self, index: usize, cutoffs: &[f64]) -> Result<ParameterProfile> {
        let largest = cutoffs.iter().copied().fold(0.0, f64::max);
        let mut all: Vec<Point> = Vec::new();
        let mut bounds = [vec![f64::NAN; cutoffs.len()], vec![f64::NAN; cutoffs.len()]];
        for (side, direction) in [-1.0, 1.0].into_iter().enumerate() {
            let (points, at_limit) = self.walk(index, direction, largest)?;
            let mut extra = Vec::new();
            for (bound, &cutoff) in bounds[side].iter_mut().zip(cutoffs) {
                *bound = self.bound(index, &points, at_limit, direction, cutoff, &mut extra)?;
            }
            // The estimate is in both walks: keep it once.
            let skip = usize::from(side == 1);
            all.extend(points.into_iter().skip(skip));
            all.extend(extra);
        }
        all.sort_by(|a, b| a.value.total_cmp(&b.value));
        all.dedup_by(|a, b| a.value == b.value);
        let [lower, upper] = bounds;
        Ok(ParameterProfile {
            values: all.iter().map(|p| p.value).collect(),
            zeta: all.iter().map(|p| p.zeta).collect(),
            parameters: all.into_iter().flat_map(|p| p.parameters).collect(),
            lower,
            upper,
        })
    }
}

impl LinearMixedModel {
    /// Fit the installed response by ML and profile every parameter out to the largest of
    /// `cutoffs` (values of |ζ|, e.g. 1.96 for 95%), with the interval bounds at each cutoff.
    /// `settings` are the ML fit's; `interrupt` is checked before every deviance evaluation.
    pub fn profile(
        &mut self,
        x: MatRef<'_, f64>,
        cutoffs: &[f64],
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<LikelihoodProfile> {
        check_cutoffs(cutoffs)?;
        let fit = self.fit(x, false, settings, interrupt)?;
        let p = fit.beta.len();
        let n_levels: Vec<f64> = self
            .terms()
            .iter()
            .flat_map(|term| vec![term.n_levels as f64; term.n_theta()])
            .collect();
        let mut kinds = variance_kinds(self.terms());
        kinds.push(Kind::ResidualStandardDeviation);
        let n_variance = kinds.len();
        kinds.extend((0..p).map(Kind::FixedEffect));
        let standard_errors = (0..p)
            .map(|j| fit.beta_covariance[j + j * p].sqrt())
            .collect();
        let n_obs = self.residual_degrees(false);
        let mut profiler = Profiler {
            model: self,
            kinds,
            n_variance,
            n_obs,
            estimates: Vec::new(),
            theta_hat: Vec::new(),
            deviance: 0.0,
            standard_errors,
            n_levels,
            interrupt,
        };
        // Polish the optimum at the profile's accuracy, so no profile point lies below it.
        let lower = profiler.model.theta_lower_bounds();
        let polished = minimize(
            |theta| Ok(profiler.profiled_deviance(theta, None)?.0),
            &fit.theta,
            &lower,
            OptimizerSettings::profile(),
            interrupt,
        )?;
        let (deviance, estimates) = profiler.profiled_deviance(&polished.theta, None)?;
        profiler.theta_hat = polished.theta;
        profiler.deviance = deviance;
        profiler.estimates = estimates;
        let mut walker = Walker(&mut profiler);
        let parameters = (0..walker.0.n_parameters())
            .map(|index| walker.profile_parameter(index, cutoffs))
            .collect::<Result<Vec<_>>>()?;
        Ok(LikelihoodProfile {
            estimates: profiler.estimates,
            deviance,
            parameters,
        })
    }
}

/// The profiling state of a GLMM: its objective at (θ, β) (Laplace, or adaptive Gauss–Hermite
/// with `n_agq` > 1) with the estimates of its fit. The variance parameters are the terms'
/// standard deviations and correlations (no σ), the free ones on their own scale and β in units
/// of its standard errors.
struct GeneralizedProfiler<'a> {
    model: &'a mut GeneralizedLinearMixedModel,
    x: MatRef<'a, f64>,
    n_agq: usize,
    kinds: Vec<Kind>,
    n_variance: usize,
    estimates: Vec<f64>,
    theta_hat: Vec<f64>,
    theta_lower: Vec<f64>,
    deviance: f64,
    standard_errors: Vec<f64>,
    n_levels: Vec<f64>,
    interrupt: &'a Interrupt<'a>,
}

impl GeneralizedProfiler<'_> {
    fn objective(&mut self, theta: &[f64], beta: &[f64]) -> Result<f64> {
        self.model
            .objective(self.x, theta, Some(beta), self.n_agq, self.interrupt)
    }

    /// β from its free entries (in standard errors), with βⱼ = c where given.
    fn beta(&self, free: &[f64], fixed: Option<(usize, f64)>) -> Vec<f64> {
        let mut scaled = free.iter();
        (0..self.standard_errors.len())
            .map(|j| match fixed {
                Some((k, c)) if k == j => c,
                _ => scaled
                    .next()
                    .map_or(f64::NAN, |u| u * self.standard_errors[j]),
            })
            .collect()
    }

    fn bounds(&self, index: usize) -> (Vec<f64>, Vec<f64>) {
        let p = self.standard_errors.len();
        let (mut lower, mut upper): (Vec<f64>, Vec<f64>) = match self.kinds[index] {
            Kind::FixedEffect(_) => self.theta_lower.iter().map(|&l| (l, f64::INFINITY)).unzip(),
            _ => (0..self.n_variance)
                .filter(|&m| m != index)
                .map(|m| match self.kinds[m] {
                    Kind::Correlation => (-1.0, 1.0),
                    _ => (0.0, f64::INFINITY),
                })
                .unzip(),
        };
        let n_beta = if matches!(self.kinds[index], Kind::FixedEffect(_)) {
            p - 1
        } else {
            p
        };
        lower.extend(std::iter::repeat_n(f64::NEG_INFINITY, n_beta));
        upper.extend(std::iter::repeat_n(f64::INFINITY, n_beta));
        (lower, upper)
    }

    /// (θ, β) from the free parameters with parameter `index` at `value`.
    fn parameters(&self, index: usize, value: f64, free: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        match self.kinds[index] {
            Kind::FixedEffect(j) => {
                let n_theta = self.theta_lower.len();
                let theta = free[..n_theta].to_vec();
                Ok((theta, self.beta(&free[n_theta..], Some((j, value)))))
            }
            _ => {
                let n_others = self.n_variance - 1;
                let mut v = free[..n_others].to_vec();
                v.insert(index, value);
                let theta = theta_from_variance(self.model.terms(), &v, 1.0)?;
                Ok((theta, self.beta(&free[n_others..], None)))
            }
        }
    }
}

impl ConstrainedDeviance for GeneralizedProfiler<'_> {
    fn kind(&self, index: usize) -> Kind {
        self.kinds[index]
    }

    fn n_parameters(&self) -> usize {
        self.kinds.len()
    }

    fn estimates(&self) -> &[f64] {
        &self.estimates
    }

    fn minimum(&self) -> f64 {
        self.deviance
    }

    fn free_at_estimates(&self, index: usize) -> Vec<f64> {
        let mut free = match self.kinds[index] {
            Kind::FixedEffect(_) => self.theta_hat.clone(),
            _ => (0..self.n_variance)
                .filter(|&m| m != index)
                .map(|m| self.estimates[m])
                .collect(),
        };
        free.extend(
            (0..self.standard_errors.len())
                .filter(|&j| self.kinds[index] != Kind::FixedEffect(j))
                .map(|j| self.estimates[self.n_variance + j] / self.standard_errors[j]),
        );
        free
    }

    fn first_step(&self, index: usize) -> f64 {
        let estimate = self.estimates[index];
        match self.kinds[index] {
            Kind::FixedEffect(j) => 0.5 * self.standard_errors[j],
            Kind::Correlation => correlation_step(estimate, self.n_levels[index]),
            _ => 0.5 * estimate.max(0.1) / (2.0 * self.n_levels[index]).sqrt(),
        }
    }

    fn constrained_minimum(&mut self, index: usize, value: f64, start: &[f64]) -> Result<Minimum> {
        let (lower, upper) = self.bounds(index);
        let interrupt = self.interrupt;
        let summary = minimize_within(
            |free| {
                let (theta, beta) = self.parameters(index, value, free)?;
                self.objective(&theta, &beta)
            },
            start,
            &lower,
            &upper,
            OptimizerSettings::profile(),
            interrupt,
        )?;
        let (theta, beta) = self.parameters(index, value, &summary.theta)?;
        let deviance = self.objective(&theta, &beta)?;
        let mut parameters = variance_from_theta(self.model.terms(), &theta, 1.0);
        parameters.extend(beta);
        Ok(Minimum {
            free: summary.theta,
            deviance,
            parameters,
        })
    }
}

impl GeneralizedLinearMixedModel {
    /// Fit with `n_agq` ≥ 1 and profile the objective along every parameter (the terms' sds and
    /// correlations, then β; lme4's `profile.merMod` for a glmer fit) out to the largest of
    /// `cutoffs`, with the interval bounds at each cutoff.
    pub fn profile(
        &mut self,
        x: MatRef<'_, f64>,
        n_agq: usize,
        cutoffs: &[f64],
        settings: OptimizerSettings,
        interrupt: &Interrupt,
    ) -> Result<LikelihoodProfile> {
        check_cutoffs(cutoffs)?;
        if n_agq == 0 {
            return Err(CoreError::Specification(
                "a nAGQ = 0 fit has no deviance in the fixed effects to profile".into(),
            ));
        }
        let fit = self.fit(x, n_agq, settings, interrupt)?;
        let p = fit.beta.len();
        let covariance = fit
            .beta_covariance_hessian
            .as_ref()
            .unwrap_or(&fit.beta_covariance_factor);
        let standard_errors = (0..p).map(|j| covariance[j + j * p].sqrt()).collect();
        let mut kinds = variance_kinds(self.terms());
        let n_variance = kinds.len();
        kinds.extend((0..p).map(Kind::FixedEffect));
        let n_levels = self
            .terms()
            .iter()
            .flat_map(|term| vec![term.n_levels as f64; term.n_theta()])
            .collect();
        let theta_lower = self
            .terms()
            .iter()
            .flat_map(|term| term.theta_lower_bounds())
            .collect();
        let mut profiler = GeneralizedProfiler {
            model: self,
            x,
            n_agq,
            kinds,
            n_variance,
            estimates: Vec::new(),
            theta_hat: Vec::new(),
            theta_lower,
            deviance: 0.0,
            standard_errors,
            n_levels,
            interrupt,
        };
        // Polish the optimum at the profile's accuracy, over θ and β in its standard errors.
        let mut start = fit.theta.clone();
        start.extend(
            fit.beta
                .iter()
                .zip(&profiler.standard_errors)
                .map(|(b, se)| b / se),
        );
        let n_theta = fit.theta.len();
        let mut lower = profiler.theta_lower.clone();
        lower.extend(std::iter::repeat_n(f64::NEG_INFINITY, p));
        let polished = minimize(
            |free| {
                let beta = profiler.beta(&free[n_theta..], None);
                profiler.objective(&free[..n_theta], &beta)
            },
            &start,
            &lower,
            OptimizerSettings::profile(),
            interrupt,
        )?;
        let theta_hat = polished.theta[..n_theta].to_vec();
        let beta_hat = profiler.beta(&polished.theta[n_theta..], None);
        profiler.deviance = profiler.objective(&theta_hat, &beta_hat)?;
        profiler.estimates = variance_from_theta(profiler.model.terms(), &theta_hat, 1.0);
        profiler.estimates.extend(beta_hat);
        profiler.theta_hat = theta_hat;
        let deviance = profiler.deviance;
        let mut walker = Walker(&mut profiler);
        let parameters = (0..walker.0.n_parameters())
            .map(|index| walker.profile_parameter(index, cutoffs))
            .collect::<Result<Vec<_>>>()?;
        Ok(LikelihoodProfile {
            estimates: profiler.estimates,
            deviance,
            parameters,
        })
    }
}

fn check_cutoffs(cutoffs: &[f64]) -> Result<()> {
    if cutoffs.is_empty() || cutoffs.iter().any(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(CoreError::InvalidInput(
            "profile cutoffs must be positive and finite".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factorization::FactorizationChoice;
    use crate::families::{Distribution, Family, Link};
    use faer::Mat;

    const GROUPS: usize = 12;
    const PER_GROUP: usize = 8;

    fn time(i: usize) -> f64 {
        (i % PER_GROUP) as f64
    }

    /// A response with group-specific intercepts and slopes, less `slope`·t.
    fn response(slope: f64) -> Vec<f64> {
        (0..GROUPS * PER_GROUP)
            .map(|i| {
                let g = (i / PER_GROUP) as f64;
                let noise = ((i * 7919 + 17) % 101) as f64 / 25.0 - 2.0;
                10.0 + (g - 5.5) * 0.8
                    + (2.0 + ((g * 3.0) % 5.0 - 2.0) * 0.4 - slope) * time(i)
                    + noise
            })
            .collect()
    }

    /// A random intercept and slope per group on x = (1, t), or on x = 1 alone.
    fn model(with_slope: bool, y: &[f64]) -> (LinearMixedModel, Mat<f64>) {
        let n = GROUPS * PER_GROUP;
        let codes: Vec<u32> = (0..n).map(|i| (i / PER_GROUP) as u32).collect();
        let z: Vec<f64> = (0..n).flat_map(|i| [1.0, time(i)]).collect();
        let term = RandomEffectsTerm::new(codes, GROUPS, 2, z).unwrap();
        let p = if with_slope { 2 } else { 1 };
        let x = Mat::<f64>::from_fn(n, p, |i, c| if c == 0 { 1.0 } else { time(i) });
        let mut model =
            LinearMixedModel::new(vec![term], x.as_ref(), None, FactorizationChoice::Automatic)
                .unwrap();
        model.set_response(x.as_ref(), y).unwrap();
        (model, x)
    }

    fn settings() -> OptimizerSettings {
        OptimizerSettings::linear(10_000).unwrap()
    }

    #[test]
    fn variance_parameters_and_theta_map_both_ways() {
        let (model, _) = model(true, &response(0.0));
        let theta = [0.9, -0.3, 0.4];
        let v = variance_from_theta(model.terms(), &theta, 2.0);
        assert!((v[0] - 1.8).abs() < 1e-12);
        assert!((v[2] - 2.0 * 0.5).abs() < 1e-12);
        assert!((v[1] + 0.6).abs() < 1e-12);
        let back = theta_from_variance(model.terms(), &v, 2.0).unwrap();
        for (a, b) in back.iter().zip(theta) {
            assert!((a - b).abs() < 1e-12);
        }
        // A perfect correlation is a singular Σ, not an error.
        let singular = theta_from_variance(model.terms(), &[1.0, 1.0, 2.0], 1.0).unwrap();
        assert!(singular[2].abs() < 1e-12);
        assert!(theta_from_variance(model.terms(), &[1.0, 1.5, 2.0], 1.0).is_err());
    }

    #[test]
    fn a_fixed_effect_bound_is_where_the_reduced_model_deviance_is_z_squared_higher() {
        // β₁ = c leaves the response y − c·t on the intercept alone: the ML deviance of that
        // model, minimised over θ, is D(c).
        let (mut full, x) = model(true, &response(0.0));
        let profile = full
            .profile(x.as_ref(), &[1.96], settings(), &Interrupt::new())
            .unwrap();
        for bound in [
            profile.parameters[5].lower[0],
            profile.parameters[5].upper[0],
        ] {
            let (mut reduced, intercept) = model(false, &response(bound));
            let fit = reduced
                .fit(intercept.as_ref(), false, settings(), &Interrupt::new())
                .unwrap();
            let zeta = (fit.deviance_ml - profile.deviance).sqrt();
            assert!((zeta - 1.96).abs() < 1e-4, "ζ {zeta}");
        }
    }

    #[test]
    fn profiles_are_monotone_and_zero_at_the_estimates() {
        let (mut model, x) = model(true, &response(0.0));
        let profile = model
            .profile(x.as_ref(), &[1.96, 2.576], settings(), &Interrupt::new())
            .unwrap();
        assert_eq!(profile.parameters.len(), 6);
        for (index, parameter) in profile.parameters.iter().enumerate() {
            let estimate = profile.estimates[index];
            let at = parameter
                .values
                .iter()
                .position(|&v| v == estimate)
                .unwrap();
            assert_eq!(parameter.zeta[at], 0.0);
            assert!(
                parameter.zeta.windows(2).all(|w| w[0] <= w[1] + 1e-9),
                "{index}"
            );
            assert!(parameter.lower[1] < parameter.lower[0] && parameter.lower[0] < estimate);
            assert!(parameter.upper[1] > parameter.upper[0] && parameter.upper[0] > estimate);
            // Each side is walked outward to the largest cutoff.
            assert!(
                parameter.zeta[0] <= -2.576 && parameter.zeta[parameter.zeta.len() - 1] >= 2.576
            );
        }
    }

    #[test]
    fn a_poisson_glmm_profile_is_monotone_and_a_nagq0_fit_is_refused() {
        let n = GROUPS * PER_GROUP;
        let codes: Vec<u32> = (0..n).map(|i| (i / PER_GROUP) as u32).collect();
        let term = RandomEffectsTerm::new(codes, GROUPS, 1, vec![1.0; n]).unwrap();
        let x = Mat::<f64>::from_fn(n, 2, |i, c| if c == 0 { 1.0 } else { time(i) / 4.0 });
        let y: Vec<f64> = (0..n)
            .map(|i| ((i * 7919 + 3 * (i / PER_GROUP)) % 7) as f64)
            .collect();
        let mut model = GeneralizedLinearMixedModel::new(
            vec![term],
            x.as_ref(),
            y,
            vec![1.0; n],
            vec![0.0; n],
            Family::new(Distribution::Poisson, Link::Log),
            FactorizationChoice::Automatic,
        )
        .unwrap();
        let settings = OptimizerSettings::generalized(10_000).unwrap();
        let profile = model
            .profile(x.as_ref(), 1, &[1.96], settings, &Interrupt::new())
            .unwrap();
        assert_eq!(profile.parameters.len(), 3);
        for (index, parameter) in profile.parameters.iter().enumerate() {
            let estimate = profile.estimates[index];
            assert!(parameter.values.contains(&estimate));
            assert!(
                parameter.zeta.windows(2).all(|w| w[0] <= w[1] + 1e-9),
                "{index}"
            );
            assert!(parameter.lower[0] <= estimate && estimate < parameter.upper[0]);
        }
        let nagq0 = model.profile(x.as_ref(), 0, &[1.96], settings, &Interrupt::new());
        assert!(matches!(nagq0, Err(CoreError::Specification(_))));
    }

    #[test]
    fn cutoffs_must_be_positive() {
        let (mut model, x) = model(true, &response(0.0));
        let outcome = model.profile(x.as_ref(), &[0.0], settings(), &Interrupt::new());
        assert!(matches!(outcome, Err(CoreError::InvalidInput(_))));
    }
}
