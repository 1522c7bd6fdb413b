//! The qst supervisor: reads a batch, prebuilds projector files, spawns and
//! feeds worker processes, writes results.

pub mod batch;
pub mod csv;
pub mod results;
pub mod summary;
pub mod synth;
