//! The supervisor's errors. Each message is one sentence that reads after
//! "failed to …"; [`Fatal`] carries the exit status of docs/reference.md.

use std::fmt;

/// The command could not run (bad flags, unreadable batch, unwritable output
/// directory, a changed batch on `--resume`): exit 2, before any worker starts.
/// The message is a whole sentence starting "failed to …".
#[derive(Debug, Clone, PartialEq)]
pub struct Fatal(pub String);

impl Fatal {
    /// From the part that reads after "failed to ".
    pub fn to(what: impl fmt::Display) -> Self {
        Fatal(format!("failed to {what}"))
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fatal {}

/// Exit status when the command could not run.
pub const EXIT_CANNOT_RUN: i32 = 2;

/// How a worker ended, as a result's error message says it: `signal 9`,
/// `exit status 1`.
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    crate::executor::WorkerExit::from(&status).to_string()
}

/// The error of a job whose worker died too often.
pub fn worker_died(times: u32, how: impl fmt::Display) -> String {
    let plural = if times == 1 { "time" } else { "times" };
    format!("worker died {times} {plural} on this job: {how}")
}

/// The error of a job over `--job-timeout`.
pub fn job_timed_out(seconds: f64) -> String {
    format!("job ran over the --job-timeout of {seconds} s and its worker was stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_one_sentence() {
        assert_eq!(
            worker_died(4, "signal 9"),
            "worker died 4 times on this job: signal 9"
        );
        assert_eq!(
            worker_died(1, "signal 9"),
            "worker died 1 time on this job: signal 9"
        );
        assert_eq!(
            Fatal::to("read batch x: gone").to_string(),
            "failed to read batch x: gone"
        );
        let st = std::process::Command::new("sh")
            .args(["-c", "kill -9 $$"])
            .status()
            .unwrap();
        assert_eq!(describe_exit(st), "signal 9");
        let st = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .status()
            .unwrap();
        assert_eq!(describe_exit(st), "exit status 3");
    }
}
