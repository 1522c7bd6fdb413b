//! The `.npy` header parser never panics, whatever the bytes (issue 5).

use proptest::prelude::*;
use qst_npy::parse_header;

/// A valid format 1.0 prefix followed by `dict` as the header text.
fn with_prefix(version: u8, dict: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY".to_vec();
    b.push(version);
    b.push(0);
    if version == 1 {
        let len = u16::try_from(dict.len()).expect("format 1.0 test headers fit 16 bits");
        b.extend_from_slice(&len.to_le_bytes());
    } else {
        let len = u32::try_from(dict.len()).expect("test headers fit 32 bits");
        b.extend_from_slice(&len.to_le_bytes());
    }
    b.extend_from_slice(dict);
    b
}

/// Exercises the parser and the checks on its result; any panic fails.
fn exercise(bytes: &[u8]) {
    if let Ok(h) = parse_header(bytes) {
        assert!(h.data_offset <= bytes.len());
        let _ = h.check(&["<c16"], bytes.len() as u64);
        let _ = h.check(&["<f8", "<i8"], bytes.len() as u64);
        let _ = h.data_len();
    }
}

const GOOD: &str = "{'descr': '<c16', 'fortran_order': False, 'shape': (16, 4, 4), }";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise(&bytes);
    }

    #[test]
    fn valid_prefix_then_arbitrary_text(version in 1u8..=3, dict in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise(&with_prefix(version, &dict));
    }

    #[test]
    fn valid_prefix_then_header_like_text(
        version in 1u8..=3,
        dict in r"\{('(descr|fortran_order|shape|x)': ([-+]?[0-9]{0,25}|'[<>|]?[a-zA-Z]{0,3}[0-9]{0,3}'|True|False|None|\(([-+]?[0-9]{0,22}, ?){0,4}\)|\[[^\]]{0,20}\]|[(\[{]{0,6}), ?){0,4}\}\n?",
    ) {
        exercise(&with_prefix(version, dict.as_bytes()));
    }

    #[test]
    fn mutated_valid_header(
        flips in proptest::collection::vec((0usize..128, any::<u8>()), 1..6),
        cut in 0usize..140,
    ) {
        let mut dict = GOOD.as_bytes().to_vec();
        dict.resize(118, b' ');
        dict.push(b'\n');
        let mut bytes = with_prefix(1, &dict);
        bytes.extend_from_slice(&[0u8; 16]);
        for (at, byte) in flips {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        bytes.truncate(cut.max(1));
        exercise(&bytes);
    }
}

#[test]
fn the_valid_header_parses() {
    let mut dict = GOOD.as_bytes().to_vec();
    dict.resize(117, b' ');
    dict.push(b'\n');
    let h = parse_header(&with_prefix(1, &dict)).unwrap();
    assert_eq!(
        (
            h.descr.as_str(),
            h.fortran_order,
            h.shape.as_slice(),
            h.data_offset
        ),
        ("<c16", false, &[16, 4, 4][..], 128)
    );
}

#[test]
fn deep_nesting_and_huge_lengths_are_errors_not_crashes() {
    let deep = with_prefix(1, &vec![b'('; 65_000]);
    assert!(parse_header(&deep).unwrap_err().contains("nests"));
    let deep = with_prefix(
        2,
        &[b"{'descr': ".as_slice(), &vec![b'['; 200_000]].concat(),
    );
    assert!(parse_header(&deep).unwrap_err().contains("nests"));
    // A format 2.0 header claiming 4 GiB in a 12-byte input.
    let mut huge = b"\x93NUMPY\x02\x00".to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(parse_header(&huge).unwrap_err().contains("truncated"));
    // A shape whose byte count overflows.
    let dict = format!(
        "{{'descr': '<c16', 'fortran_order': False, 'shape': ({}, {}), }}\n",
        usize::MAX,
        usize::MAX
    );
    let h = parse_header(&with_prefix(1, dict.as_bytes())).unwrap();
    assert!(
        h.check(&["<c16"], 1 << 20)
            .unwrap_err()
            .contains("too large")
    );
}
