//! Progress on stderr: an indicatif bar on a terminal (done/total, rate, ETA,
//! failures); plain lines every few seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is printed.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    total: u64,
    done: u64,
    failed: u64,
    started: Instant,
    last_line: Instant,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// `quiet`: print nothing at all.
    pub fn new(total: u64, quiet: bool) -> Self {
        let bar = if !quiet && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} jobs  {per_sec}  ETA {eta}  {msg}",
            ) {
                bar.set_style(style);
            }
            bar.set_message("0 failed");
            Some(bar)
        } else {
            None
        };
        let now = Instant::now();
        Progress {
            total,
            done: 0,
            failed: 0,
            started: now,
            last_line: now,
            bar,
            quiet,
        }
    }

    /// One job ended.
    pub fn job_done(&mut self, ok: bool) {
        self.done += 1;
        if !ok {
            self.failed += 1;
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if !ok {
                bar.set_message(format!("{} failed", self.failed));
            }
        }
    }

    /// Called every tick: prints a plain line when one is due.
    pub fn tick(&mut self) {
        if self.bar.is_none() && !self.quiet && self.last_line.elapsed() >= PLAIN_EVERY {
            self.last_line = Instant::now();
            crate::say!("{}", self.line());
        }
    }

    /// `qst: 120/200 jobs done, 3 failed, 12.5 jobs/s, ETA 6 s`.
    pub fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        let left = self.total.saturating_sub(self.done) as f64;
        let eta = if rate > 0.0 {
            format!("{:.0} s", left / rate)
        } else {
            "unknown".into()
        };
        format!(
            "qst: {}/{} jobs done, {} failed, {:.1} jobs/s, ETA {eta}",
            self.done, self.total, self.failed, rate
        )
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            // Left where it stands: after a signal it must not claim the
            // jobs that never ran.
            bar.abandon();
        } else if !self.quiet {
            crate::say!("{}", self.line());
        }
    }
}

/// A [`qst_store::BuildProgress`] hook that shows each projector file's build
/// as a bar of bytes written, when stderr is a terminal (else `None`: the
/// logs have its start and end).
#[must_use]
pub fn build_bar() -> Option<qst_store::BuildProgress> {
    use qst_store::BuildEvent;
    use std::sync::Mutex;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    Some(std::sync::Arc::new(move |ev: BuildEvent<'_>| {
        let mut bar = bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = |p: &std::path::Path| {
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        };
        match ev {
            BuildEvent::Started { path, bytes } => {
                let b = ProgressBar::new(bytes);
                if let Ok(style) = ProgressStyle::with_template(
                    "building {msg} {bar:30} {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}",
                ) {
                    b.set_style(style);
                }
                b.set_message(name(path));
                b.tick();
                *bar = Some(b);
            }
            BuildEvent::Progress { written, .. } => {
                if let Some(b) = bar.as_ref() {
                    b.set_position(written);
                }
            }
            BuildEvent::Ended { path, ok } => {
                if let Some(b) = bar.take() {
                    if ok {
                        b.set_position(b.length().unwrap_or(0));
                        b.finish_with_message(format!("{} (built)", name(path)));
                    } else {
                        b.abandon_with_message(format!("{} (failed)", name(path)));
                    }
                }
            }
        }
    }))
}
