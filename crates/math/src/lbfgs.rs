//! The L-BFGS memory shared by the MLE and WLS iterations: a ring of the
//! last correction pairs (s, y) over flat complex vectors with the real inner
//! product Re⟨x, y⟩, and the two-loop recursion that turns a gradient into a
//! search direction; and the bracket of trial steps of one line search.

use crate::C64;
use crate::vector::{axpy, axpy_dot, diff_norms, dot, scale, scaled_copy};

/// The correction pairs (a ring of the last `memory`).
pub(crate) struct History {
    s: Vec<Vec<C64>>,
    y: Vec<Vec<C64>>,
    /// 1/⟨s, y⟩.
    rho: Vec<f64>,
    /// ⟨y, y⟩.
    yy: Vec<f64>,
    /// Two-loop coefficients.
    alpha: Vec<f64>,
    len: usize,
    head: usize,
}

impl History {
    /// Room for `memory` pairs of vectors of length `len`.
    pub fn new(len: usize, memory: usize) -> Self {
        History {
            s: vec![vec![C64::new(0.0, 0.0); len]; memory],
            y: vec![vec![C64::new(0.0, 0.0); len]; memory],
            rho: vec![0.0; memory],
            yy: vec![0.0; memory],
            alpha: vec![0.0; memory],
            len: 0,
            head: 0,
        }
    }

    fn memory(&self) -> usize {
        self.rho.len()
    }

    /// Forgets every pair.
    pub fn clear(&mut self) {
        self.len = 0;
        self.head = 0;
    }

    /// Whether no pair is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of the i-th newest pair (0 = newest).
    fn newest(&self, i: usize) -> usize {
        let m = self.memory();
        (self.head + m - 1 - i) % m
    }

    /// Stores the pair of an accepted step: s = α·d, y = g_new − g_old, with
    /// ⟨s, y⟩ = `sy` (from the slopes already taken). The pair is kept only
    /// when its curvature is positive. Returns ‖g_new‖².
    pub fn push(&mut self, alpha: f64, d: &[C64], g_new: &[C64], g_old: &[C64], sy: f64) -> f64 {
        let h = self.head;
        scaled_copy(alpha, d, &mut self.s[h]);
        let (yy, gg) = diff_norms(g_new, g_old, &mut self.y[h]);
        if sy > 0.0 && yy > 0.0 {
            self.rho[h] = 1.0 / sy;
            self.yy[h] = yy;
            self.head = (h + 1) % self.memory();
            self.len = (self.len + 1).min(self.memory());
        }
        gg
    }

    /// d ← −H·d by the two-loop recursion (d holds the gradient on entry);
    /// needs at least one pair.
    pub fn two_loop(&mut self, d: &mut [C64]) {
        let len = self.len;
        debug_assert!(len > 0, "the two-loop recursion needs a pair");
        // Newest to oldest: α_i = ρ_i⟨s_i, d⟩, d ← d − α_i·y_i.
        let mut ip = dot(&self.s[self.newest(0)], d);
        for i in 0..len {
            let h = self.newest(i);
            let a = self.rho[h] * ip;
            self.alpha[h] = a;
            if i + 1 < len {
                ip = axpy_dot(-a, &self.y[h], d, &self.s[self.newest(i + 1)]);
            } else {
                axpy(-a, &self.y[h], d);
            }
        }
        // d ← γ·d, γ = ⟨s, y⟩/⟨y, y⟩ of the newest pair.
        let h0 = self.newest(0);
        scale(1.0 / (self.rho[h0] * self.yy[h0]), d);
        // Oldest to newest: β_i = ρ_i⟨y_i, d⟩, d ← d + (α_i − β_i)·s_i.
        let mut ip = dot(&self.y[self.newest(len - 1)], d);
        for i in (0..len).rev() {
            let h = self.newest(i);
            let coef = self.alpha[h] - self.rho[h] * ip;
            if i > 0 {
                ip = axpy_dot(coef, &self.s[h], d, &self.y[self.newest(i - 1)]);
            } else {
                axpy(coef, &self.s[h], d);
            }
        }
        scale(-1.0, d);
    }
}

/// The trial steps of one line search along a descent direction (slope
/// d₀ < 0 at x): α starts at 1, doubles while the slope stays steep, and is
/// bisected once a trial overshoots or leaves the objective's domain. A
/// trial is accepted by the approximate Wolfe test of Hager & Zhang: the
/// slope has grown to ≥ 0.9·d₀, with a sufficient decrease, or with the
/// objective equal to within its rounding and the slope still ≤ −0.8·d₀.
pub(crate) struct Bracket {
    /// The step to try next.
    pub alpha: f64,
    lo: f64,
    hi: f64,
}

impl Bracket {
    pub fn new() -> Self {
        Bracket {
            alpha: 1.0,
            lo: 0.0,
            hi: f64::INFINITY,
        }
    }

    /// The trial at `alpha` fell outside the domain: shorter.
    pub fn outside(&mut self) {
        self.hi = self.alpha;
        self.alpha = 0.5 * (self.lo + self.hi);
    }

    /// Judges the trial at `alpha`: `f` and `d0` the objective and slope at
    /// x, `f_new` and `d_new` at the trial point. True when it is accepted
    /// (`alpha` is then the step taken); else `alpha` is the next trial.
    pub fn accept(&mut self, f: f64, d0: f64, f_new: f64, d_new: f64) -> bool {
        let decrease = f_new <= f + 1e-4 * self.alpha * d0;
        // Equal to within its rounding: judged by the slope alone.
        let flat = f_new - f <= 1e-12 * f.abs();
        if d_new >= 0.9 * d0 && (decrease || (flat && d_new <= -0.8 * d0)) {
            return true;
        }
        if d_new < 0.9 * d0 && (decrease || flat) {
            // Still steep: longer.
            self.lo = self.alpha;
            self.alpha = if self.hi.is_finite() {
                0.5 * (self.lo + self.hi)
            } else {
                2.0 * self.alpha
            };
        } else {
            self.hi = self.alpha;
            self.alpha = 0.5 * (self.lo + self.hi);
        }
        false
    }
}
