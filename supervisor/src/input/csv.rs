//! Count matrices as text (`.csv`, `.txt`): comma-separated numbers, no
//! header; a UTF-8 BOM, CRLF line ends and spaces after commas are accepted,
//! blank lines are skipped. Files the format cannot explain are refused with
//! a sentence saying what was seen: `;` or tab separators, decimal commas,
//! numbers separated by spaces. See [`super::matrix`] for the rest.

use std::path::Path;

use qst_store::Store;

use super::jobs::BatchSettings;
use super::matrix::{Cell, CellNames, Grid, MatrixBatch, MatrixFileError};

/// What to do about a text matrix qst does not read.
const HOW: &str = "qst reads comma-separated numbers with '.' as the decimal point (one row per projector, one column per sample): export the data as CSV with ',' separators, or pass the spreadsheet itself (.xlsx, .xls, .ods)";

/// A text count matrix written in a way qst does not read: `line` is
/// 1-based, `text` the line as shown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("line {line} ({text}) separates numbers with ';'{}; {HOW}", if *.decimal_comma { " and writes decimal commas" } else { "" })]
    Semicolons {
        line: usize,
        text: String,
        decimal_comma: bool,
    },
    #[error("line {line} ({text}) separates numbers with tabs; {HOW}")]
    Tabs { line: usize, text: String },
    #[error("line {line} ({text}) writes a decimal comma; {HOW}")]
    DecimalComma { line: usize, text: String },
    #[error("line {line} ({text}) separates numbers with spaces; {HOW}")]
    Spaces { line: usize, text: String },
}

/// A short, quoted rendering of a line for messages.
fn show_line(l: &[u8]) -> String {
    let s = String::from_utf8_lossy(l);
    let s: String = if s.chars().count() > 40 {
        s.chars().take(37).collect::<String>() + "..."
    } else {
        s.into_owned()
    };
    serde_json::Value::from(s).to_string()
}

fn parse_cell(cell: &[u8]) -> Cell {
    let t = cell.trim_ascii();
    let t = t
        .strip_prefix(b"\"")
        .and_then(|x| x.strip_suffix(b"\""))
        .map_or(t, <[u8]>::trim_ascii);
    if t.is_empty() {
        return Cell::Empty;
    }
    let s = String::from_utf8_lossy(t);
    match s.parse::<f64>() {
        Ok(x) => Cell::Num(x),
        Err(_) => Cell::Text(s.into_owned()),
    }
}

/// Whether a cell reads as a number with a decimal comma (`148,5`).
fn decimal_comma(t: &[u8]) -> bool {
    let t = t.trim_ascii();
    let t = t.strip_prefix(b"-").unwrap_or(t);
    match t.iter().position(|&b| b == b',') {
        Some(i) => {
            i > 0
                && i + 1 < t.len()
                && t[..i].iter().all(u8::is_ascii_digit)
                && t[i + 1..].iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

/// The cells of one line, split at commas outside double quotes.
fn split_cells(l: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, &b) in l.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(&l[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&l[start..]);
    out
}

/// Reads the bytes of a text count matrix into a grid, or refuses it.
///
/// # Errors
///
/// [`TextError`] when the bytes are not a rectangular matrix of numbers.
pub fn read_text(bytes: &[u8]) -> Result<Grid, TextError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let lines: Vec<(usize, &[u8])> = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .filter(|(_, l)| !l.trim_ascii().is_empty())
        .collect();
    for &(i, l) in &lines {
        let (line, text) = (i + 1, show_line(l));
        if l.contains(&b';') {
            let decimal_comma = l.split(|&b| b == b';').any(decimal_comma);
            return Err(TextError::Semicolons {
                line,
                text,
                decimal_comma,
            });
        }
        if l.contains(&b'\t') {
            return Err(TextError::Tabs { line, text });
        }
        for cell in split_cells(l) {
            let t = cell.trim_ascii();
            let inner = t
                .strip_prefix(b"\"")
                .and_then(|x| x.strip_suffix(b"\""))
                .unwrap_or(t);
            if inner.len() != t.len() && decimal_comma(inner) {
                return Err(TextError::DecimalComma { line, text });
            }
            let words: Vec<&[u8]> = inner
                .split(u8::is_ascii_whitespace)
                .filter(|w| !w.is_empty())
                .collect();
            if words.len() > 1 && words.iter().all(|w| matches!(parse_cell(w), Cell::Num(_))) {
                return Err(TextError::Spaces { line, text });
            }
        }
    }
    let cells = lines
        .iter()
        .map(|(_, l)| split_cells(l).into_iter().map(parse_cell).collect())
        .collect();
    Ok(Grid {
        cells,
        names: CellNames::Text,
    })
}

/// Reads, checks and lays out a text count matrix.
///
/// # Errors
///
/// When the file cannot be read, or its matrix cannot be read or laid out.
pub fn open_text(
    path: &Path,
    settings: &BatchSettings,
    store: &Store,
) -> Result<MatrixBatch, MatrixFileError> {
    let bytes = std::fs::read(path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_csv(&bytes, &stem, settings, store)
}

/// Parses the bytes of a text count matrix named `<stem>.csv`.
///
/// # Errors
///
/// When the matrix cannot be read or laid out as jobs.
pub fn parse_csv(
    bytes: &[u8],
    stem: &str,
    settings: &BatchSettings,
    store: &Store,
) -> Result<MatrixBatch, MatrixFileError> {
    Ok(MatrixBatch::new(read_text(bytes)?, stem, settings, store)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::jobs::Entry;
    use crate::input::matrix::MatrixBatch as CsvBatch;
    use proptest::prelude::*;
    use qst_shared::Design;

    fn settings() -> BatchSettings {
        BatchSettings::new("/out")
    }

    /// A store the parser never touches without `--projectors`.
    fn store() -> Store {
        Store::new(qst_store::StoreConfig::resolve(
            Some(Path::new("/nonexistent/qst-cache")),
            None,
        ))
    }

    fn all(mut b: CsvBatch) -> Vec<Entry> {
        std::iter::from_fn(|| b.next_entry()).collect()
    }

    #[test]
    fn columns_become_jobs_with_stem_ids() {
        // d = 2: 4 rows, 3 samples; BOM, CRLF, spaces, trailing comma.
        let text = "\u{feff}1, 2,3,\r\n4,5,6,\r\n7,8,9,\r\n10,11,12,\r\n";
        let b = parse_csv(text.as_bytes(), "lab data(1)", &settings(), &store()).unwrap();
        assert_eq!((b.dim(), b.columns()), (2, 3));
        let e = all(b);
        assert_eq!(e.len(), 3);
        for (i, e) in e.iter().enumerate() {
            let Entry::Job(j) = e else { panic!("{e:?}") };
            assert_eq!(j.id, format!("lab_data_1_-{}", i + 1));
            assert_eq!(j.line, i as u64 + 1);
            let c = (i + 1) as f64;
            assert_eq!(j.counts, vec![c, c + 3.0, c + 6.0, c + 9.0]);
            assert_eq!(
                j.rho_path,
                Path::new("/out/rho").join(format!("lab_data_1_-{}.npy", i + 1))
            );
        }
    }

    #[test]
    fn a_bad_cell_fails_only_its_column() {
        let text = "1,2,,4,0\n1,x,3,4,0\n1,2,3,-4,0\n1,2,3,4,0\n";
        let e = all(parse_csv(text.as_bytes(), "s", &settings(), &store()).unwrap());
        assert_eq!(e.len(), 5);
        assert!(matches!(&e[0], Entry::Job(j) if j.id == "s-1"));
        let msg = |e: &Entry| match e {
            Entry::Error(r) => r.error.clone(),
            Entry::Job(_) => panic!("{e:?}"),
        };
        assert_eq!(
            msg(&e[1]),
            "column 2 (id \"s-2\"): field counts[1] (row 2, column 2) is \"x\", not a number"
        );
        assert_eq!(
            msg(&e[2]),
            "column 3 (id \"s-3\"): field counts[0] (row 1, column 3) is empty"
        );
        assert_eq!(
            msg(&e[3]),
            "column 4 (id \"s-4\"): field counts[2] (row 3, column 4) is -4, but counts must be >= 0 (pass --negative clip to set negative counts to 0)"
        );
        assert_eq!(
            msg(&e[4]),
            "column 5 (id \"s-5\"): field counts: the counts are all zero"
        );
        let Entry::Error(r) = &e[4] else { panic!() };
        assert_eq!((r.line, r.dim, r.id.as_deref()), (5, Some(2), Some("s-5")));
    }

    #[test]
    fn whole_file_problems_are_errors() {
        let e = parse_csv(b"1\n2\n3\n", "s", &settings(), &store())
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 rows") && e.contains("n(n+1)"), "{e}");
        let mut s = settings();
        s.input.dim = Some(3);
        let e = parse_csv(b"1\n2\n3\n4\n", "s", &s, &store())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--dim 3") && e.contains("needs 9"), "{e}");
        s.input.dim = None;
        s.input.design = Some(Design::Sic);
        let b = parse_csv(b"1\n2\n3\n4\n", "s", &s, &store()).unwrap();
        assert_eq!(b.dim(), 2);
        assert!(
            parse_csv(b"1\n2\n3\n4\n5\n6\n", "s", &s, &store())
                .unwrap_err()
                .to_string()
                .contains("design sic")
        );
        // 12 = 3·4 rows: mub, inferred and said.
        s.input.design = None;
        let b = parse_csv(b"1\n2\n3\n4\n5\n6\n7\n8\n9\n1\n2\n3\n", "s", &s, &store()).unwrap();
        assert_eq!(b.dim(), 3);
        assert!(b.note().is_some_and(|n| n.contains("mub")));
        assert!(
            parse_csv(b"\r\n", "s", &settings(), &store())
                .unwrap_err()
                .to_string()
                .contains("no numbers")
        );
    }

    #[test]
    fn long_stems_are_cut_to_keep_ids_valid() {
        let stem = "x".repeat(300);
        let e = all(parse_csv(b"1\n1\n1\n1\n", &stem, &settings(), &store()).unwrap());
        let Entry::Job(j) = &e[0] else { panic!() };
        assert!(crate::input::jobs::is_valid_id(&j.id), "{}", j.id);
        assert!(j.id.ends_with("-1"));
    }

    proptest! {
        #[test]
        fn csv_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), dim in proptest::option::of(0usize..6)) {
            let mut s = settings();
            s.input.dim = dim;
            if let Ok(b) = parse_csv(&bytes, "p", &s, &store()) {
                let n = b.columns();
                prop_assert_eq!(all(b).len(), n);
            }
        }

        #[test]
        fn csv_parser_never_panics_on_near_valid_files(
            cells in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just("1".to_string()), Just(String::new()), Just("-2".to_string()), Just("nan".to_string()), Just("a".to_string()), (0.0f64..1e6).prop_map(|x| x.to_string())], 1..5), 4..5)
        ) {
            let text: String = cells.iter().map(|r| r.join(",") + "\r\n").collect();
            if let Ok(b) = parse_csv(text.as_bytes(), "p", &settings(), &store()) {
                let n = b.columns();
                prop_assert_eq!(all(b).len(), n);
            }
        }
    }
}
