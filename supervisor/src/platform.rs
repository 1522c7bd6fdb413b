//! Platform code: signals to process groups, the signal-forwarding thread,
//! and memory figures from `/proc`.

use crossbeam_channel::Sender;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub use qst_shared::procfs::peak_rss_bytes;

/// Why SIGINT and SIGTERM cannot be caught; reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("install the SIGINT and SIGTERM handlers: {0}")]
    Install(#[source] std::io::Error),
    #[error("start the signal thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Sends `sig` to the process group led by `pid` (each worker leads its own).
/// A group that is already gone is not an error.
pub fn signal_group(pid: u32, sig: Signal) {
    // A pid is at most PID_MAX_LIMIT (2^22) on Linux; one that does not fit
    // an i32 names no process group.
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// Starts the thread that turns SIGINT and SIGTERM into events; returns the
/// handle that stops it.
pub fn forward_signals<E: Send + 'static>(
    tx: Sender<E>,
    wrap: fn(i32) -> E,
) -> Result<signal_hook::iterator::Handle, SignalError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(SignalError::Install)?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(wrap(sig)).is_err() {
                    break;
                }
            }
        })
        .map_err(SignalError::Thread)?;
    Ok(handle)
}
