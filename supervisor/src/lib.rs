//! The qst supervisor: reads a batch, prebuilds projector files, spawns and
//! feeds worker processes, writes results.
//!
//! The public API is what the `qst` binary calls: [`run`] (with
//! [`RunOptions`]), [`demo`], [`generate_with`], [`merge`], [`slurm`],
//! [`digest`] and their option types; every module is private.
//!
//! Modules. Input: `input/` (the input flags in `flags.rs`; `batch.rs` opens
//! a batch by its extension; `jsonl.rs` JSON Lines; `matrix.rs` count
//! matrices read by `csv.rs` and `sheet.rs`; `jobs.rs` the rules of a job).
//! Output: `results.rs` (the file; one line is a `record.rs` record),
//! `summary.rs`, `synth.rs`, `outdir.rs` (the output directory's lock,
//! ownership and safe file opens), `digest.rs`, `provenance.rs`.
//! Processes: `run.rs` (the main loop; `run/slot.rs` a worker slot's state),
//! `dispatch.rs` (scheduling), `executor.rs` (spawn, pipes, reader threads,
//! waitpid), `platform.rs` (signals, `/proc`), `progress.rs`, `bootstrap.rs`,
//! `demo.rs`, `errors.rs`. Clusters: `shard.rs` (`--shard`), `merge.rs`
//! (`qst merge`), `slurm.rs` (`qst slurm`).

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
    clippy::many_single_char_names,
    // A `match` on an Option or a pair whose two arms are the two cases (the
    // loop's events, a resample or a job) reads as the case analysis it is.
    clippy::single_match_else
)]

mod bootstrap;
mod demo;
mod digest;
mod dispatch;
mod errors;
mod executor;
mod input;
mod merge;
mod outdir;
mod platform;
mod progress;
mod provenance;
mod record;
mod results;
mod run;
mod shard;
mod slurm;
mod summary;
mod synth;

// The input modules at their former paths (`crate::batch::open_batch`, …).
use input::batch;

// The public API: what the `qst` binary calls. Everything else is private to
// this crate.
pub use demo::{DemoOptions, demo, demo_spec, format_table};
pub use digest::digest;
pub use errors::{EXIT_CANNOT_RUN, Fatal};
pub use input::{FlagError, InputOptions, Negative, parse_columns, parse_methods};
pub use merge::{MergeError, MergeOutcome, merge};
pub use progress::build_bar;
pub use provenance::Invocation;
pub use run::{RunOptions, RunReport, log_to_stderr, run};
pub use shard::{Shard, ShardError};
pub use slurm::{SlurmError, SlurmOptions, slurm};
pub use synth::{GenError, GenSpec, StateKind, generate, generate_with};

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
