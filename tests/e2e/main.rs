//! End-to-end tests: the real `qst` binary, real processes, real signals, real files.
//! All integration tests live in this one test binary.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not
// fit tests that drive real processes and read their files:
#![allow(
    // Counts, seconds and job numbers of a test are far below 2^53 and 2^31;
    // pids are below Linux's PID_MAX_LIMIT (2^22): exact in every cast made.
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::cast_possible_truncation,
    // Expected figures that are exact (0.0, 1.0, a value written and read back
    // bit for bit) are compared exactly on purpose.
    clippy::float_cmp,
    // A scenario test reads top to bottom as the story it checks: splitting it
    // would hide the order of events that is under test.
    clippy::too_many_lines,
    // File names matched are qst's own, lower-case (`.npy`, `.log`).
    clippy::case_sensitive_file_extension_comparisons,
    // Tests build small texts (batches, scripts) with `format!` line by line.
    clippy::format_collect,
    clippy::format_push_string,
    // Helpers take owned test values (paths, argument lists) as the call sites build them.
    clippy::needless_pass_by_value,
    // Short names follow the docs' notation (n, k, ρ) and similar names pair
    // what a test compares (`ok1`/`ok2`).
    clippy::many_single_char_names,
    clippy::similar_names
)]

mod analysis;
mod attacks;
mod cache;
mod cli;
mod cluster;
mod designs;
mod faults;
mod input;
mod interop;
mod lab_files;
mod pool;
mod report;
mod util;
