//! End-to-end tests: the real `qst` binary, real processes, real signals, real files.
//! All integration tests live in this one test binary.

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
