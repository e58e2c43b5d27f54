//! The one error type of the core crate; the binding maps each variant to a Python class.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// Arrays whose sizes disagree, a code out of range, etc.: a caller bug or bad input.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A pivot of the Cholesky factorisation was not positive (recoverable inside the optimiser).
    #[error("the {block} block is not positive definite (pivot {pivot})")]
    NotPositiveDefinite { block: String, pivot: usize },
    /// The model cannot be estimated as specified.
    #[error("{0}")]
    Specification(String),
    /// The optimiser failed so that no estimate exists.
    #[error("optimisation failed: {0}")]
    Optimization(String),
    /// The work was stopped through its [`crate::interrupt::Interrupt`].
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T> = std::result::Result<T, CoreError>;
