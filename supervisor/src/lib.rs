//! The qst supervisor: reads a batch, prebuilds projector files, spawns and
//! feeds worker processes, writes results.
//!
//! Input/output: [`input`] (the input flags), [`batch`] (JSON Lines),
//! [`matrix`] (count matrices, read by [`csv`] and [`sheet`]), [`results`],
//! [`summary`], [`synth`].
//! Processes: [`run`] (the main loop), [`dispatch`] (scheduling state
//! machine), [`executor`] (spawn, pipes, reader threads, waitpid),
//! [`platform`] (signals, `/proc`), [`progress`], [`demo`], [`errors`].
//! Clusters: [`shard`] (`--shard`), [`merge`] (`qst merge`), [`slurm`]
//! (`qst slurm`).

pub mod batch;
pub mod bootstrap;
pub mod csv;
pub mod demo;
pub mod dispatch;
pub mod errors;
pub mod executor;
pub mod input;
pub mod matrix;
pub mod merge;
pub mod platform;
pub mod progress;
pub mod results;
pub mod run;
pub mod shard;
pub mod sheet;
pub mod slurm;
pub mod summary;
pub mod synth;
