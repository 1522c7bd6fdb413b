//! The lab's matrix CSV (SPEC 2.3): comma-separated numbers, no header, K rows
//! (one per projector, in the design's order) and one column per sample; a UTF-8
//! BOM and CRLF line ends are accepted. Each column becomes a job with id
//! `<stem>-<column>` and `line` = the column number; a bad cell fails only its
//! column.
//!
//! The file is column-major over samples, so it is read whole (K × samples
//! numbers), then handed out one job at a time.

use std::path::Path;

use qst_shared::{Design, Job, Method, ProjectorSpec};
use qst_store::Store;
use serde_json::Value;

use crate::batch::{BatchSettings, DEFAULT_MAX_ITERS, DEFAULT_TOL, Entry, MAX_DIM, is_id_byte};
use crate::results::ResultRecord;

/// A parsed CSV batch, handing out one job per column.
#[derive(Debug)]
pub struct CsvBatch {
    stem: String,
    rows: usize,
    cols: usize,
    dim: usize,
    method: Method,
    projectors: ProjectorSpec,
    /// What the run should tell the user about how the file was read
    /// (e.g. that its row count selected `mub`).
    note: Option<String>,
    out_dir: std::path::PathBuf,
    /// Row-major `rows × cols`; cells of a failed column are unused.
    data: Vec<f64>,
    /// The first problem of each column, if any.
    col_err: Vec<Option<String>>,
    next_col: usize,
}

impl CsvBatch {
    /// The dimension of every job.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The number of columns (jobs).
    pub fn columns(&self) -> usize {
        self.cols
    }
    /// What the run should tell the user about how the file was read.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The id of column `col` (1-based).
    pub fn id_of(&self, col: usize) -> String {
        format!("{}-{col}", self.stem)
    }

    /// The next column's job or error record.
    pub fn next_entry(&mut self) -> Option<Entry> {
        if self.next_col >= self.cols {
            return None;
        }
        let c = self.next_col;
        self.next_col += 1;
        let col = c + 1;
        let id = self.id_of(col);
        let problem = self.col_err[c].take().or_else(|| {
            if (0..self.rows).all(|r| self.data[r * self.cols + c] == 0.0) {
                Some("field counts: the counts are all zero".into())
            } else {
                None
            }
        });
        if let Some(p) = problem {
            let mut r = ResultRecord::error(
                col as u64,
                Some(&id),
                format!("column {col} (id {}): {p}", Value::from(id.as_str())),
            );
            r.dim = Some(self.dim);
            r.design = Some(self.projectors.design_name().into());
            r.method = Some(self.method.as_str().into());
            return Some(Entry::Error(r));
        }
        let counts: Vec<f64> = (0..self.rows)
            .map(|r| self.data[r * self.cols + c])
            .collect();
        let rho_path = self.out_dir.join("rho").join(format!("{id}.npy"));
        Some(Entry::Job(Job {
            line: col as u64,
            id,
            dim: self.dim,
            method: self.method,
            projectors: self.projectors.clone(),
            counts,
            truth: None,
            max_iters: DEFAULT_MAX_ITERS,
            tol: DEFAULT_TOL,
            rho_path,
        }))
    }
}

/// `<stem>` of SPEC 2.3: characters outside the id set replaced by `_`,
/// shortened so that `<stem>-<column>` stays within 128 characters.
pub fn id_stem(stem: &str, cols: usize) -> String {
    let mut s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii() && is_id_byte(c as u8) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let room = 128 - 1 - cols.max(1).to_string().len();
    s.truncate(room);
    s
}

fn cell_problem(cell: &[u8], row: usize) -> Result<f64, String> {
    let t = cell.trim_ascii();
    let t = t
        .strip_prefix(b"\"")
        .and_then(|x| x.strip_suffix(b"\""))
        .map(<[u8]>::trim_ascii)
        .unwrap_or(t);
    let k = row - 1;
    if t.is_empty() {
        return Err(format!("field counts[{k}] (row {row}) is empty"));
    }
    let s = std::str::from_utf8(t)
        .map_err(|_| format!("field counts[{k}] (row {row}) is not a number"))?;
    let x: f64 = s.parse().map_err(|_| {
        format!(
            "field counts[{k}] (row {row}) is {}, not a number",
            Value::from(short(s))
        )
    })?;
    if !x.is_finite() {
        return Err(format!(
            "field counts[{k}] (row {row}) is {s}, but counts must be finite"
        ));
    }
    if x < 0.0 {
        return Err(format!(
            "field counts[{k}] (row {row}) is {s}, but counts must be >= 0"
        ));
    }
    Ok(x)
}

fn short(s: &str) -> String {
    if s.chars().count() > 30 {
        s.chars().take(27).collect::<String>() + "..."
    } else {
        s.to_owned()
    }
}

/// The projector set and dimension of a count matrix with `rows` rows: from
/// `--projectors` (its K), from `--design` (K = n² for `nopovm`, n(n+1) for
/// `mub`), or with neither from the row count alone (n², else n(n+1) selects
/// `mub`, said in the returned note). `--dim`, when given, must agree.
pub fn matrix_layout(
    rows: usize,
    settings: &BatchSettings,
    store: &Store,
) -> Result<(ProjectorSpec, usize, Option<String>), String> {
    if let Some(n) = settings.csv_dim
        && !(2..=MAX_DIM).contains(&n)
    {
        return Err(format!("--dim {n} is outside 2 to {MAX_DIM}"));
    }
    if let Some(path) = &settings.projectors {
        let map = qst_npy::MappedC16::open(path, None)
            .map_err(|e| format!("--projectors: failed to {e}"))?;
        let (k, n) = match map.shape() {
            [k, a, b] if a == b => (*k, *a),
            other => {
                return Err(format!(
                    "--projectors: {} has shape {}, not (K, n, n)",
                    path.display(),
                    qst_npy::shape_str(other)
                ));
            }
        };
        if settings.csv_dim.is_some_and(|d| d != n) {
            return Err(format!(
                "--dim {} does not match --projectors {}, whose sets are {n}x{n}",
                settings.csv_dim.unwrap_or(n),
                path.display()
            ));
        }
        if rows != k {
            return Err(format!(
                "it has {rows} rows, but the projector file {} has K = {k} projectors (one row each)",
                path.display()
            ));
        }
        store
            .validate_custom(path, n)
            .map_err(|e| format!("--projectors: failed to {e}"))?;
        return Ok((ProjectorSpec::Custom { path: path.clone() }, n, None));
    }
    let fits = |d: Design| -> Result<usize, String> {
        match settings.csv_dim {
            Some(n) => {
                d.check_dim(n).map_err(|e| format!("--dim {n}: {e}"))?;
                match d.count(n) {
                    Some(k) if k == rows => Ok(n),
                    k => Err(format!(
                        "it has {rows} rows, but --dim {n} (design {d}) needs {}",
                        k.unwrap_or(0)
                    )),
                }
            }
            None => d.dim_for_count(rows).ok_or_else(|| {
                let why = match d {
                    Design::Nopovm => "n² for a dimension n from 2 to 256".to_string(),
                    Design::Mub => {
                        let n = rows.isqrt();
                        if n * (n + 1) == rows {
                            format!("n(n+1) with n = {n}, but {}", d.check_dim(n).err().map(|e| e.0).unwrap_or_default())
                        } else {
                            "n(n+1) for a prime-power dimension n".to_string()
                        }
                    }
                    Design::Sic => "4".to_string(),
                };
                format!("it has {rows} rows, which is not K = {why} (design {d}); check the file or pass --dim")
            }),
        }
    };
    match settings.design {
        Some(d) => Ok((ProjectorSpec::Builtin(d), fits(d)?, None)),
        None => {
            if let Ok(n) = fits(Design::Nopovm) {
                return Ok((ProjectorSpec::Builtin(Design::Nopovm), n, None));
            }
            let n = rows.isqrt();
            if n * (n + 1) == rows {
                let n = fits(Design::Mub)?;
                let note = format!(
                    "{rows} rows = n(n+1) for n = {n}: reading the file as design mub (pass --design to choose another)"
                );
                return Ok((ProjectorSpec::Builtin(Design::Mub), n, Some(note)));
            }
            Err(match settings.csv_dim {
                Some(n) => format!(
                    "it has {rows} rows, but --dim {n} needs {} (nopovm) or {} (mub)",
                    n * n,
                    n * (n + 1)
                ),
                None => format!(
                    "it has {rows} rows, which is neither n² (design nopovm) nor n(n+1) (design mub) for a dimension n from 2 to {MAX_DIM}; each row is one projector and each column one sample, so check the file, or pass --design or --projectors"
                ),
            })
        }
    }
}

/// Parses the bytes of a CSV batch named `<stem>.csv`. `Err` when the file as
/// a whole cannot be used (no rows, a row count that fits no design, settings
/// that do not fit); a bad cell is an error for its column only.
pub fn parse_csv(
    bytes: &[u8],
    stem: &str,
    settings: &BatchSettings,
    store: &Store,
) -> Result<CsvBatch, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    let rows = lines.len();
    if rows == 0 {
        return Err("it has no rows of counts".into());
    }
    let (projectors, dim, note) = matrix_layout(rows, settings, store)?;
    let split: Vec<Vec<&[u8]>> = lines
        .iter()
        .map(|l| l.split(|&b| b == b',').collect())
        .collect();
    let mut cols = split.iter().map(Vec::len).max().unwrap_or(0);
    // Trailing columns empty in every row (e.g. a trailing comma) are not samples.
    while cols > 0
        && split
            .iter()
            .all(|r| r.get(cols - 1).is_none_or(|c| c.trim_ascii().is_empty()))
    {
        cols -= 1;
    }
    if cols == 0 {
        return Err("it has no columns of counts".into());
    }
    let mut data = vec![0.0; rows * cols];
    let mut col_err: Vec<Option<String>> = vec![None; cols];
    for (r, cells) in split.iter().enumerate() {
        for c in 0..cols {
            if col_err[c].is_some() {
                continue;
            }
            let got = match cells.get(c) {
                Some(cell) => cell_problem(cell, r + 1),
                None => Err(format!("field counts[{r}] (row {}) is missing", r + 1)),
            };
            match got {
                Ok(x) => data[r * cols + c] = x,
                Err(e) => col_err[c] = Some(e),
            }
        }
    }
    Ok(CsvBatch {
        stem: id_stem(stem, cols),
        rows,
        cols,
        dim,
        method: settings.csv_method,
        projectors,
        note,
        out_dir: settings.out_dir.clone(),
        data,
        col_err,
        next_col: 0,
    })
}

/// Reads and parses a CSV batch file.
pub fn open_csv(path: &Path, settings: &BatchSettings, store: &Store) -> Result<CsvBatch, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("failed to read the batch {}: {e}", path.display()))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_csv(&bytes, &stem, settings, store)
        .map_err(|e| format!("failed to read the batch {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            Entry::Error(r) => r.error.clone().unwrap(),
            _ => panic!("{e:?}"),
        };
        assert_eq!(
            msg(&e[1]),
            "column 2 (id \"s-2\"): field counts[1] (row 2) is \"x\", not a number"
        );
        assert_eq!(
            msg(&e[2]),
            "column 3 (id \"s-3\"): field counts[0] (row 1) is empty"
        );
        assert_eq!(
            msg(&e[3]),
            "column 4 (id \"s-4\"): field counts[2] (row 3) is -4, but counts must be >= 0"
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
        let e = parse_csv(b"1\n2\n3\n", "s", &settings(), &store()).unwrap_err();
        assert!(e.contains("3 rows") && e.contains("n(n+1)"), "{e}");
        let mut s = settings();
        s.csv_dim = Some(3);
        let e = parse_csv(b"1\n2\n3\n4\n", "s", &s, &store()).unwrap_err();
        assert!(e.contains("--dim 3") && e.contains("needs 9"), "{e}");
        s.csv_dim = None;
        s.design = Some(Design::Sic);
        let b = parse_csv(b"1\n2\n3\n4\n", "s", &s, &store()).unwrap();
        assert_eq!(b.dim(), 2);
        assert!(
            parse_csv(b"1\n2\n3\n4\n5\n6\n", "s", &s, &store())
                .unwrap_err()
                .contains("design sic")
        );
        // 12 = 3·4 rows: mub, inferred and said.
        s.design = None;
        let b = parse_csv(b"1\n2\n3\n4\n5\n6\n7\n8\n9\n1\n2\n3\n", "s", &s, &store()).unwrap();
        assert_eq!(b.dim(), 3);
        assert!(b.note().is_some_and(|n| n.contains("mub")));
        assert!(
            parse_csv(b"\r\n", "s", &settings(), &store())
                .unwrap_err()
                .contains("no rows")
        );
    }

    #[test]
    fn long_stems_are_cut_to_keep_ids_valid() {
        let stem = "x".repeat(300);
        let e = all(parse_csv(b"1\n1\n1\n1\n", &stem, &settings(), &store()).unwrap());
        let Entry::Job(j) = &e[0] else { panic!() };
        assert!(crate::batch::is_valid_id(&j.id), "{}", j.id);
        assert!(j.id.ends_with("-1"));
    }

    proptest! {
        #[test]
        fn csv_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), dim in proptest::option::of(0usize..6)) {
            let mut s = settings();
            s.csv_dim = dim;
            if let Ok(b) = parse_csv(&bytes, "p", &s, &store()) {
                let n = b.columns();
                prop_assert_eq!(all(b).len(), n);
            }
        }

        #[test]
        fn csv_parser_never_panics_on_near_valid_files(
            cells in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just("1".to_string()), Just("".to_string()), Just("-2".to_string()), Just("nan".to_string()), Just("a".to_string()), (0.0f64..1e6).prop_map(|x| x.to_string())], 1..5), 4..5)
        ) {
            let text: String = cells.iter().map(|r| r.join(",") + "\r\n").collect();
            if let Ok(b) = parse_csv(text.as_bytes(), "p", &settings(), &store()) {
                let n = b.columns();
                prop_assert_eq!(all(b).len(), n);
            }
        }
    }
}
