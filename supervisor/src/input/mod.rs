//! Reading a batch, every format a sibling: [`batch`] opens a file by its
//! extension and hands out one stream of entries; [`jsonl`] (JSON Lines) and
//! [`matrix`] (count matrices, read by [`csv`] or [`sheet`]) turn it into
//! jobs, each job by the rules of [`jobs`] (limits, ids, counts, targets, and
//! [`jobs::JobError`], the one error of a job, rendered into its error
//! record). [`flags`] holds the input flags of `qst run` and the format of a
//! file; its items are re-exported here.

pub mod batch;
pub mod csv;
pub mod flags;
pub mod jobs;
pub mod jsonl;
pub mod matrix;
pub mod sheet;

pub use flags::{FlagError, InputOptions, Negative, is_matrix, parse_columns, parse_methods};
