//! Safety of the output directory: it must be the user's own (not writable by
//! others without the sticky bit, not owned by another user), one run at a time
//! holds it (an exclusive lock on `.qst-run.lock` naming the holder's PID), files
//! at fixed names are opened without following symbolic links, and files
//! replaced whole are written to uniquely named temporaries (`O_EXCL`) and
//! renamed into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The lock file a run holds in its output directory.
pub const LOCK_FILE: &str = ".qst-run.lock";

/// Why an output directory (or a file in it) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    #[error(
        "use the output directory {path}: it is writable by {who} without the sticky bit, so another user could plant files in it; make it private (chmod go-w) or pass another --out"
    )]
    Writable { path: PathBuf, who: &'static str },
    #[error(
        "use the output directory {path}: it is owned by user {owner}, not by you (user {me}); pass an --out of your own"
    )]
    Owner { path: PathBuf, owner: u32, me: u32 },
    #[error("use the output directory {path}: it is not a directory")]
    NotDir { path: PathBuf },
    #[error(
        "start: another qst run (PID {pid}) is writing to the output directory {path}; wait for it to end or pass another --out"
    )]
    Busy { path: PathBuf, pid: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OutDirError {
    let path = path.to_path_buf();
    move |source| OutDirError::Io { what, path, source }
}

/// This process's effective user id.
#[must_use]
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    nix::unistd::geteuid().as_raw()
}

/// Whether files owned by `uid` are trusted: the user's own, or root's.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

/// Creates `dir` (and its parents, mode 0755 before the umask) and checks it
/// with [`check_dir`].
///
/// # Errors
///
/// [`OutDirError`] when `dir` cannot be created, or fails [`check_dir`].
pub fn create_dir(dir: &Path) -> Result<(), OutDirError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(io_err("create the directory", dir))?;
    check_dir(dir)
}

/// Refuses a directory that another user could write into (group or world
/// writable without the sticky bit), or that another user owns (the
/// directory, or a symbolic link naming it).
///
/// # Errors
///
/// [`OutDirError`] when `dir` cannot be inspected, or is writable or owned by another user.
pub fn check_dir(dir: &Path) -> Result<(), OutDirError> {
    let me = euid();
    let link = fs::symlink_metadata(dir).map_err(io_err("read", dir))?;
    if link.file_type().is_symlink() && !trusted_owner(link.uid()) {
        return Err(OutDirError::Owner {
            path: dir.to_path_buf(),
            owner: link.uid(),
            me,
        });
    }
    let meta = fs::metadata(dir).map_err(io_err("read", dir))?;
    if !meta.is_dir() {
        return Err(OutDirError::NotDir {
            path: dir.to_path_buf(),
        });
    }
    if !trusted_owner(meta.uid()) {
        return Err(OutDirError::Owner {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0;
    if !sticky && mode & 0o002 != 0 {
        return Err(OutDirError::Writable {
            path: dir.to_path_buf(),
            who: "everyone",
        });
    }
    if !sticky && mode & 0o020 != 0 {
        return Err(OutDirError::Writable {
            path: dir.to_path_buf(),
            who: "its group",
        });
    }
    Ok(())
}

/// Takes the exclusive lock of an output directory for the life of the
/// returned file (and writes this process's PID into it), or says which
/// process holds it.
///
/// # Errors
///
/// [`OutDirError`] when the lock file cannot be opened or written, or another process holds the
/// lock.
pub fn lock_dir(dir: &Path) -> Result<File, OutDirError> {
    let path = dir.join(LOCK_FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&path)
        .map_err(io_err("open the lock file", &path))?;
    let meta = f.metadata().map_err(io_err("read", &path))?;
    if !meta.is_file() || !trusted_owner(meta.uid()) {
        return Err(OutDirError::Io {
            what: "use the lock file",
            path,
            source: io::Error::other("it is not a regular file of yours"),
        });
    }
    match f.try_lock() {
        Ok(()) => {
            let pid = std::process::id();
            f.set_len(0)
                .and_then(|()| f.rewind())
                .and_then(|()| writeln!(f, "{pid}"))
                .map_err(io_err("write the lock file", &path))?;
            Ok(f)
        }
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = f.read_to_string(&mut text);
            let pid = text.trim();
            Err(OutDirError::Busy {
                path: dir.to_path_buf(),
                pid: if pid.is_empty() {
                    "unknown".to_string()
                } else {
                    pid.chars().take(20).collect()
                },
            })
        }
        Err(fs::TryLockError::Error(e)) => Err(OutDirError::Io {
            what: "lock",
            path,
            source: e,
        }),
    }
}

/// Opens a file at a fixed name for appending, never through a symbolic link
/// (`O_NOFOLLOW`), and only if it is a regular file (`O_NONBLOCK` so that a
/// FIFO planted there cannot block the open).
///
/// # Errors
///
/// When the open fails, or `path` is not a regular file.
pub fn open_append(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("it is not a regular file"));
    }
    Ok(f)
}

/// Writes `bytes` to `path` atomically: a uniquely named temporary file
/// beside it (created with `O_EXCL`, so nothing planted there is followed),
/// fsync, rename.
///
/// # Errors
///
/// When the temporary file cannot be created, written, synced or renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] with the content written by `body`.
///
/// # Errors
///
/// When the temporary file cannot be created, synced or renamed, or `body` fails.
pub fn write_atomic_with(
    path: &Path,
    body: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    {
        let mut w = io::BufWriter::new(tmp.as_file());
        body(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn shared_directories_are_refused_and_sticky_ones_accepted() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("o");
        create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(&d).unwrap_err().to_string();
        assert!(e.contains("writable by everyone"), "{e}");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o775)).unwrap();
        assert!(check_dir(&d).is_err());
        fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).unwrap();
        check_dir(&d).unwrap();
    }

    #[test]
    fn a_second_lock_names_the_holder_and_links_are_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let held = lock_dir(t.path()).unwrap();
        let e = lock_dir(t.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("PID {}", std::process::id())), "{e}");
        drop(held);
        lock_dir(t.path()).unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let link = t.path().join("log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(open_append(&link).is_err());
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join(".x.tmp")).unwrap();
        write_atomic(&t.path().join("x"), b"new").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    }
}
