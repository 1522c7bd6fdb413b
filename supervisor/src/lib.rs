//! The qst supervisor: reads a batch, prebuilds projector files, spawns and
//! feeds worker processes, writes results.
//!
//! Input/output: [`input`] (the input flags and the formats: [`batch`] opens
//! a batch, [`input::jsonl`] JSON Lines, [`matrix`] count matrices read by
//! [`csv`] and [`sheet`], [`jobs`] the rules of a job), [`results`] (the
//! file; one line is a [`record`]),
//! [`summary`], [`synth`], [`outdir`] (the output directory's lock,
//! ownership and safe file opens).
//! Processes: [`run`] (the main loop), [`dispatch`] (scheduling state
//! machine), [`executor`] (spawn, pipes, reader threads, waitpid),
//! [`platform`] (signals, `/proc`), [`progress`], [`demo`], [`errors`].
//! Clusters: [`shard`] (`--shard`), [`merge`] (`qst merge`), [`slurm`]
//! (`qst slurm`).

#![forbid(unsafe_code)]
// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Formulas in the docs (p_k = Tr(Π_k ρ), N·q_k(ρ̂)) are math notation, not code.
    clippy::doc_markdown,
    // Counts, iterations, dimensions and seconds averaged or shown are far below
    // 2^53: exact as f64 (a spreadsheet's integer cell is rounded, as numpy does).
    clippy::cast_precision_loss,
    // Messages and tables are built line by line with `s += &format!(..)`: one
    // readable line per output line, on text that is small and written once.
    clippy::format_push_string,
    // Options are copied field by field into a fresh value: `x = y.clone()` reads as
    // the copy it is, and there is no earlier allocation for `clone_from` to reuse.
    clippy::assigning_clones,
    // The names matched are qst's own, exact and lower-case (`worker-*.log`):
    // `X.LOG` is not one of them.
    clippy::case_sensitive_file_extension_comparisons,
    // Short names follow the docs' notation (n, k, p, ρ) and the usual idiom
    // (f a file, w a writer, r a reader, s a shard).
    clippy::many_single_char_names
)]

pub mod bootstrap;
pub mod demo;
pub mod digest;
pub mod dispatch;
pub mod errors;
pub mod executor;
pub mod input;
pub mod merge;
pub mod outdir;
pub mod platform;
pub mod progress;
pub mod provenance;
pub mod record;
pub mod results;
pub mod run;
pub mod shard;
pub mod slurm;
pub mod summary;
pub mod synth;

// The input modules at their former paths (`crate::batch::open_batch`, …).
pub use input::{batch, csv, jobs, matrix, sheet};

/// `eprintln!` that never panics: a closed or full stderr (`2>&1 | head -1`)
/// must never stop a run.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that never panics (a closed stdout).
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
