//! The projector cache through the command line: `qst prebuild` builds and
//! re-checks, `qst cache verify` finds what spot checks cannot, `ls` and
//! `clear` see exactly the cache's files.

use std::fs;

use crate::util::Tmp;

#[test]
fn prebuild_rebuilds_bad_files_and_verify_finds_a_flipped_byte() {
    let t = Tmp::new();
    let said = t.qst_prebuild("2,3,5").assert_ok().text();
    assert_eq!(said.matches(": built:").count(), 3, "{said}");
    let (n3, n5) = (t.join("cache/nopovm_n3.npy"), t.join("cache/nopovm_n5.npy"));
    t.qst(["cache", "verify"]).assert_ok();

    // A truncated file is caught when prebuild re-checks it, and rebuilt.
    let full = fs::read(&n3).unwrap();
    fs::write(&n3, &full[..full.len() - 16]).unwrap();
    let said = t.qst_prebuild("3").assert_ok().text();
    assert!(said.contains("dim 3: rebuilt ("), "{said}");
    assert_eq!(fs::read(&n3).unwrap(), full, "rebuilt file differs");

    // One flipped low bit in the data: verify compares every byte.
    let mut bytes = fs::read(&n5).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    fs::write(&n5, &bytes).unwrap();
    let report = t.qst(["cache", "verify"]).assert_exit(1).text();
    let bad: Vec<&str> = report.lines().filter(|l| l.contains("BAD")).collect();
    assert_eq!(bad.len(), 1, "{report}");
    assert!(bad[0].contains("nopovm_n5.npy"), "{report}");

    // ls lists the three files (no lock or temporary files); clear removes them.
    let ls = t.qst(["cache", "ls"]).assert_ok().text();
    assert_eq!(ls.matches(".npy").count(), 3, "{ls}");
    assert!(!ls.contains(".lock") && !ls.contains(".tmp"), "{ls}");
    t.qst(["cache", "clear"]).assert_ok();
    let left: Vec<_> = fs::read_dir(t.join("cache"))
        .unwrap()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".npy"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
