//! The projector cache through the command line: `qst prebuild` builds and
//! re-checks, `qst cache verify` finds what spot checks cannot, `ls` and
//! `clear` see exactly the cache's files.

use std::fs;

use crate::util::Tmp;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn prebuild_rebuilds_bad_files_and_verify_finds_a_flipped_byte() {
    let t = Tmp::new();
    let o = t.run(&["prebuild", "--dims", "2,3,5"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(text(&o).matches(": built:").count(), 3, "{}", text(&o));
    let (n3, n5) = (t.join("cache/nopovm_n3.npy"), t.join("cache/nopovm_n5.npy"));
    let o = t.run(&["cache", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A truncated file is caught when prebuild re-checks it, and rebuilt.
    let full = fs::read(&n3).unwrap();
    fs::write(&n3, &full[..full.len() - 16]).unwrap();
    let o = t.run(&["prebuild", "--dims", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("dim 3: rebuilt ("), "{}", text(&o));
    assert_eq!(fs::read(&n3).unwrap(), full, "rebuilt file differs");

    // One flipped low bit in the data: verify compares every byte.
    let mut bytes = fs::read(&n5).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    fs::write(&n5, &bytes).unwrap();
    let o = t.run(&["cache", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = text(&o);
    let bad: Vec<&str> = report.lines().filter(|l| l.contains("BAD")).collect();
    assert_eq!(bad.len(), 1, "{report}");
    assert!(bad[0].contains("nopovm_n5.npy"), "{report}");

    // ls lists the three files (no lock or temporary files); clear removes them.
    let o = t.run(&["cache", "ls"]);
    assert!(o.status.success());
    let ls = text(&o);
    assert_eq!(ls.matches(".npy").count(), 3, "{ls}");
    assert!(!ls.contains(".lock") && !ls.contains(".tmp"), "{ls}");
    let o = t.run(&["cache", "clear"]);
    assert!(o.status.success(), "{}", text(&o));
    let left: Vec<_> = fs::read_dir(t.join("cache"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".npy"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
