//! `qst`: the command line (SPEC 3), a thin layer over the supervisor and worker crates.
fn main() {}
