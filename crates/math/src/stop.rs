//! Why an iterative reconstruction stopped (as argmin's `TerminationReason`
//! says it): the `converged` flag alone cannot tell a budget that ran out from
//! an iteration that could not improve any more.

use std::fmt;

/// Why [`crate::mle`] or [`crate::wls`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The optimality certificate holds at the returned ρ (`converged`).
    Certified,
    /// `max_iters` iterations ran before the certificate held.
    MaxIterations,
    /// The iteration could not improve the objective any more (no step was
    /// accepted, or the projected-gradient finish gave up) before the
    /// certificate held: usually a tolerance below what rounding allows.
    Stalled,
    /// A fixed number of iterations was asked for (benchmarks): the
    /// certificate was not the criterion.
    Fixed,
}

impl Stop {
    /// The reason from what a run ended with: certified, out of budget, or
    /// neither (stalled).
    pub(crate) fn of(converged: bool, iterations: u64, max_iters: u64, fixed: bool) -> Stop {
        if fixed {
            Stop::Fixed
        } else if converged {
            Stop::Certified
        } else if iterations >= max_iters {
            Stop::MaxIterations
        } else {
            Stop::Stalled
        }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Certified => "its certificate held",
            Stop::MaxIterations => "it reached max_iters",
            Stop::Stalled => "it stalled: no step improved the objective any more",
            Stop::Fixed => "it ran the fixed number of iterations asked for",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_follows_the_flag_and_the_budget() {
        assert_eq!(Stop::of(true, 5, 10, false), Stop::Certified);
        assert_eq!(Stop::of(true, 10, 10, false), Stop::Certified);
        assert_eq!(Stop::of(false, 10, 10, false), Stop::MaxIterations);
        assert_eq!(Stop::of(false, 3, 10, false), Stop::Stalled);
        assert_eq!(Stop::of(true, 10, 10, true), Stop::Fixed);
    }
}
