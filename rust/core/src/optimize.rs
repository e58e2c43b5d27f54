//! Bound-constrained derivative-free minimisation of the profiled objective over θ with BOBYQA
//! (Powell 2009, as lme4 and MixedModels.jl use it), followed by lme4's boundary check.

use bobyqa::{Bobyqa, Config, Status};

use crate::error::{CoreError, Result};
use crate::interrupt::Interrupt;

/// BOBYQA has no way to be stopped from inside its objective, but it stops as soon as a value
/// reaches its target: an interrupted evaluation reports −∞, which the solver reads as −f64::MAX,
/// the target. A genuine −∞ (a perfect fit) is raised to just above it and the solve goes on.
const STOP_TARGET: f64 = f64::MIN;
const LOWEST_VALUE: f64 = f64::MIN.next_up();

/// The evaluation budget where the caller names none (the Python API's default).
pub(crate) const DEFAULT_MAX_EVALUATIONS: usize = 10_000;

/// BOBYQA's settings for one kind of optimisation, named by what it optimises; only the budget of
/// objective evaluations is the caller's (lme4's `optCtrl = list(maxfun = ...)`).
#[derive(Debug, Clone, Copy)]
pub struct OptimizerSettings {
    /// Initial trust-region radius on the scale of the parameters.
    rho_begin: f64,
    /// Final trust-region radius: the accuracy of the parameters.
    rho_end: f64,
    max_evaluations: usize,
}

impl OptimizerSettings {
    /// θ of a linear mixed model, with lme4's radii: BOBYQA starts at 0.75 (NLopt's first step
    /// for lme4's start, three quarters of the way to the bound) and stops near 1e-5 (lme4: 1e-4
    /// of the first step). Against 0.5 and 1e-6, the 24 LMM reference cases took 1,073
    /// evaluations instead of 1,251 (sleepstudy 33 instead of 60; lme4 43), and no objective rose
    /// by more than 2.4e-8.
    pub fn linear(max_evaluations: usize) -> Result<Self> {
        Self::with_budget(0.75, 1e-5, max_evaluations)
    }

    /// θ of a generalized linear mixed model in stage one (β from PIRLS, lme4's nAGQ = 0),
    /// starting a fifth of the way from θ's start of 1 to its bound. Stage two follows with
    /// [`Self::stage_two`].
    pub fn generalized(max_evaluations: usize) -> Result<Self> {
        Self::with_budget(0.2, 1e-6, max_evaluations)
    }

    /// Stage two of a GLMM fit, over (θ, β) measured in their approximate standard errors, with
    /// stage one's budget. PIRLS stops at a relative change of 1e-7 in the deviance, so the
    /// objective is not smooth below the final radius; lme4's stage-two Nelder–Mead stops at 1e-5
    /// in θ, 1e-4 SE in β.
    pub(crate) fn stage_two(self) -> Self {
        Self {
            rho_begin: 0.05,
            rho_end: 1e-5,
            ..self
        }
    }

    /// The other parameters along a likelihood profile (see [`crate::profile`]), warm-started at
    /// the previous point's optimum and measured on θ's scale: a short first step, and a final
    /// radius fine enough that the deviance is accurate far below the profile's resolution.
    pub(crate) fn profile() -> Self {
        Self {
            rho_begin: 0.05,
            rho_end: 1e-7,
            max_evaluations: DEFAULT_MAX_EVALUATIONS,
        }
    }

    /// The same settings with the optimiser's first steps no larger than `radius` (at least the
    /// final radius), for a start near the optimum.
    pub(crate) fn with_initial_radius(self, radius: f64) -> Self {
        Self {
            rho_begin: radius.clamp(self.rho_end, self.rho_begin),
            ..self
        }
    }

    /// The settings with the trust region's initial and final radii replaced where given
    /// (BOBYQA's `rhobeg` and `rhoend`, lme4's `optCtrl` names).
    pub fn with_radii(self, rho_begin: Option<f64>, rho_end: Option<f64>) -> Result<Self> {
        let rho_begin = rho_begin.unwrap_or(self.rho_begin);
        let rho_end = rho_end.unwrap_or(self.rho_end);
        if !(rho_end > 0.0 && rho_end <= rho_begin && rho_begin.is_finite()) {
            return Err(CoreError::Specification(format!(
                "the optimiser's radii must satisfy 0 < rhoend <= rhobeg < inf, not rhobeg = {rho_begin}, rhoend = {rho_end}"
            )));
        }
        Ok(Self {
            rho_begin,
            rho_end,
            ..self
        })
    }

    fn with_budget(rho_begin: f64, rho_end: f64, max_evaluations: usize) -> Result<Self> {
        if max_evaluations == 0 {
            return Err(CoreError::Specification(
                "max_evaluations must be at least 1".into(),
            ));
        }
        Ok(Self {
            rho_begin,
            rho_end,
            max_evaluations,
        })
    }
}

/// What the optimiser did: lme4's `optinfo` / MixedModels.jl's `OptSummary`.
#[derive(Debug, Clone)]
pub struct OptSummary {
    pub theta_start: Vec<f64>,
    pub theta: Vec<f64>,
    pub objective: f64,
    pub n_evaluations: usize,
    /// Why the optimiser stopped, in words.
    pub status: String,
    pub converged: bool,
    /// θ components moved onto their lower bound by the final boundary check.
    pub n_set_to_boundary: usize,
}

/// The value of an evaluation, `None` where the objective cannot be evaluated there (a
/// factorisation failed), or the interruption that ends the work.
pub(crate) fn unless_interrupted(value: Result<f64>) -> Result<Option<f64>> {
    match value {
        Ok(value) => Ok(Some(value)),
        Err(CoreError::Interrupted) => Err(CoreError::Interrupted),
        Err(_) => Ok(None),
    }
}

/// Minimise `objective` from `start` within `[lower, ∞)`, checking `interrupt` before every
/// evaluation. Where the objective cannot be evaluated BOBYQA sees the starting value, which keeps
/// its quadratic model finite (MixedModels.jl does the same).
pub(crate) fn minimize(
    objective: impl FnMut(&[f64]) -> Result<f64>,
    start: &[f64],
    lower: &[f64],
    settings: OptimizerSettings,
    interrupt: &Interrupt,
) -> Result<OptSummary> {
    let upper = vec![f64::INFINITY; start.len()];
    minimize_within(objective, start, lower, &upper, settings, interrupt)
}

/// [`minimize`] within `[lower, upper]`.
pub(crate) fn minimize_within(
    mut objective: impl FnMut(&[f64]) -> Result<f64>,
    start: &[f64],
    lower: &[f64],
    upper: &[f64],
    settings: OptimizerSettings,
    interrupt: &Interrupt,
) -> Result<OptSummary> {
    let mut evaluate = |x: &[f64]| {
        interrupt.check()?;
        unless_interrupted(objective(x))
    };
    let n = start.len();
    let first = evaluate(start)?.ok_or_else(|| {
        CoreError::Optimization("the objective cannot be evaluated at the starting values".into())
    })?;
    if n == 0 {
        return Ok(OptSummary {
            theta_start: vec![],
            theta: vec![],
            objective: first,
            n_evaluations: 1,
            status: "no covariance parameters to optimise".into(),
            converged: true,
            n_set_to_boundary: 0,
        });
    }
    let mut config = Config::new(n);
    config.rho_begin = settings.rho_begin;
    config.rho_end = settings.rho_end;
    config.max_fun = settings.max_evaluations.max(config.npt + 1);
    config.f_target = STOP_TARGET;
    let mut solver =
        Bobyqa::new(n, config).map_err(|status| CoreError::Optimization(status.to_string()))?;
    let mut theta = start.to_vec();
    let mut n_evaluations = 1;
    // BOBYQA's first point is the start, already evaluated: the objective is a pure function of
    // its parameters, so the value is reused rather than recomputed.
    let mut start_pending = true;
    let mut interrupted = None;
    let outcome = solver.minimize(
        |x| {
            if interrupted.is_some() {
                return f64::NEG_INFINITY;
            }
            if std::mem::take(&mut start_pending) && x == start {
                return first;
            }
            n_evaluations += 1;
            match evaluate(x) {
                Ok(Some(value)) if value < LOWEST_VALUE => LOWEST_VALUE,
                Ok(value) => value.unwrap_or(first),
                Err(err) => {
                    interrupted = Some(err);
                    f64::NEG_INFINITY
                }
            }
        },
        &mut theta,
        lower,
        upper,
    );
    if let Some(err) = interrupted {
        return Err(err);
    }
    let converged = matches!(outcome.status, Status::Converged | Status::FtolReached);
    let mut best = outcome.f;
    // Boundary check: a component that ended within reach of its bound is moved onto it when the
    // objective does not get worse (lme4 reports θ = 0 exactly for a singular fit).
    let mut n_set_to_boundary = 0;
    for i in 0..n {
        if lower[i].is_finite() && theta[i] != lower[i] && theta[i] - lower[i] < 1e-4 {
            let kept = theta[i];
            theta[i] = lower[i];
            n_evaluations += 1;
            match evaluate(&theta)? {
                Some(value) if value <= best + 1e-10 * best.abs().max(1.0) => {
                    best = value;
                    n_set_to_boundary += 1;
                }
                _ => theta[i] = kept,
            }
        }
    }
    Ok(OptSummary {
        theta_start: start.to_vec(),
        theta,
        objective: best,
        n_evaluations,
        status: outcome.status.to_string(),
        converged,
        n_set_to_boundary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: OptimizerSettings = OptimizerSettings {
        rho_begin: 0.2,
        rho_end: 1e-7,
        max_evaluations: 10_000,
    };

    #[test]
    fn an_empty_budget_is_a_specification_error() {
        assert!(matches!(
            OptimizerSettings::linear(0),
            Err(CoreError::Specification(_))
        ));
        assert!(OptimizerSettings::generalized(1).is_ok());
    }

    #[test]
    fn finds_a_bounded_minimum_and_snaps_to_the_bound() {
        // Minimum of (x-2)² + (y+1)² with y ≥ 0 lies at (2, 0).
        let summary = minimize(
            |t| Ok((t[0] - 2.0).powi(2) + (t[1] + 1.0).powi(2)),
            &[1.0, 1.0],
            &[f64::NEG_INFINITY, 0.0],
            SETTINGS,
            &Interrupt::new(),
        )
        .unwrap();
        assert!(summary.converged, "{}", summary.status);
        assert!((summary.theta[0] - 2.0).abs() < 1e-6);
        assert_eq!(summary.theta[1], 0.0);
        assert!((summary.objective - 1.0).abs() < 1e-10);
    }

    #[test]
    fn the_start_is_evaluated_once() {
        let mut points: Vec<Vec<f64>> = Vec::new();
        let summary = minimize(
            |t| {
                points.push(t.to_vec());
                Ok((t[0] - 0.3).powi(2))
            },
            &[1.0],
            &[0.0],
            SETTINGS,
            &Interrupt::new(),
        )
        .unwrap();
        assert_eq!(points.iter().filter(|p| p[0] == 1.0).count(), 1);
        assert_eq!(summary.n_evaluations, points.len());
    }

    #[test]
    fn an_unevaluable_start_is_an_error() {
        let unevaluable = |_: &[f64]| Err(CoreError::Optimization("no value".into()));
        let outcome = minimize(unevaluable, &[1.0], &[0.0], SETTINGS, &Interrupt::new());
        assert!(matches!(outcome, Err(CoreError::Optimization(_))));
    }

    #[test]
    fn an_interruption_ends_the_optimisation_at_once() {
        for interrupted_in_objective in [false, true] {
            let interrupt = Interrupt::new();
            let mut evaluations = 0;
            let outcome = minimize(
                |t| {
                    evaluations += 1;
                    if evaluations == 5 {
                        if interrupted_in_objective {
                            return Err(CoreError::Interrupted);
                        }
                        interrupt.request();
                    }
                    Ok((t[0] - 0.3).powi(2) + t[1].powi(2))
                },
                &[1.0, 1.0],
                &[0.0, f64::NEG_INFINITY],
                SETTINGS,
                &interrupt,
            );
            assert_eq!(outcome.unwrap_err(), CoreError::Interrupted);
            assert_eq!(evaluations, 5);
        }
    }

    #[test]
    fn failed_evaluations_do_not_stop_the_optimisation() {
        let summary = minimize(
            |t| match t[0] {
                x if x > 1.1 => Err(CoreError::Optimization("no value".into())),
                x => Ok((x - 0.5).powi(2)),
            },
            &[1.0],
            &[0.0],
            SETTINGS,
            &Interrupt::new(),
        )
        .unwrap();
        assert!(summary.converged, "{}", summary.status);
        assert!((summary.theta[0] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn a_genuine_minus_infinity_is_not_taken_for_an_interruption() {
        let summary = minimize(
            |t| Ok(if t[0] < 0.9 { f64::NEG_INFINITY } else { t[0] }),
            &[1.0],
            &[0.0],
            SETTINGS,
            &Interrupt::new(),
        )
        .unwrap();
        assert_ne!(summary.status, Status::TargetReached.to_string());
    }
}
