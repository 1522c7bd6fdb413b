//! The qst supervisor: reads a batch, prebuilds projector files, spawns and
//! feeds worker processes, writes results.
//!
//! Input/output: [`input`] (the input flags), [`batch`] (JSON Lines),
//! [`matrix`] (count matrices, read by [`csv`] and [`sheet`]), [`results`]
//! (the file; one line is a [`record`]),
//! [`summary`], [`synth`], [`outdir`] (the output directory's lock,
//! ownership and safe file opens).
//! Processes: [`run`] (the main loop), [`dispatch`] (scheduling state
//! machine), [`executor`] (spawn, pipes, reader threads, waitpid),
//! [`platform`] (signals, `/proc`), [`progress`], [`demo`], [`errors`].
//! Clusters: [`shard`] (`--shard`), [`merge`] (`qst merge`), [`slurm`]
//! (`qst slurm`).

#![forbid(unsafe_code)]

pub mod batch;
pub mod bootstrap;
pub mod csv;
pub mod demo;
pub mod digest;
pub mod dispatch;
pub mod errors;
pub mod executor;
pub mod input;
pub mod jobs;
pub mod matrix;
pub mod merge;
pub mod outdir;
pub mod platform;
pub mod progress;
pub mod provenance;
pub mod record;
pub mod results;
pub mod run;
pub mod shard;
pub mod sheet;
pub mod slurm;
pub mod summary;
pub mod synth;

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
