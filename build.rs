//! Embeds the git commit the binary is built from as `QST_GIT_COMMIT`: the
//! short hash, with `-dirty` when the work tree has changes, or `unknown`
//! when git or the repository is not there (a source tarball).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) if !hash.is_empty() => {
            let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{hash}-dirty") } else { hash }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=QST_GIT_COMMIT={commit}");
    // Rerun on a new commit or a change to the index, and on source changes
    // (for the -dirty mark); a work tree without git reruns on source changes.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = Path::new(&dir);
        for f in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={}", dir.join(f).display());
        }
        if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
            println!(
                "cargo:rerun-if-changed={}",
                Path::new(&common).join("refs").display()
            );
        }
    }
    for p in [
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "supervisor",
        "worker",
        "shared",
        "crates",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
}
