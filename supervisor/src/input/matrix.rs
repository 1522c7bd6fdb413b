//! The lab's count matrices (CSV, TXT, Excel, ODS): numbers only, no header,
//! K rows (one per projector, in the design's order) and one column per
//! sample. A reader ([`super::csv`], [`super::sheet`]) turns a file into a
//! [`Grid`] of cells; this module checks what the format cannot explain (a
//! header row, samples as rows), decides the design and dimension from the
//! row count, and hands out one job per (column, method). A bad cell fails
//! only its column, and its message names the cell.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use qst_math::MathError;
use qst_npy::NpyError;
use qst_shared::{Analysis, Design, DesignError, Job, Method, ProjectorSpec};
use qst_store::{Store, StoreError};
use serde_json::Value;

use super::csv::TextError;
use super::flags::Negative;
use super::jobs::{
    BatchSettings, CountAt, DEFAULT_MAX_ITERS, DEFAULT_TOL, Entry, JobError, MAX_DIM, TruthError,
    check_count, check_not_all_zero, is_id_byte,
};
use super::sheet::SheetError;
use crate::results::ErrorRecord;

/// Why a count matrix file cannot be used (the command exits 2): how it is
/// written, or what it holds.
#[derive(Debug, thiserror::Error)]
pub enum MatrixFileError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Sheet(#[from] SheetError),
    #[error(transparent)]
    Matrix(#[from] MatrixError),
}

/// A count matrix whose shape or flags no layout explains; one sentence
/// that reads after "failed to read the batch FILE: ".
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("it holds no numbers")]
    NoNumbers,
    #[error(
        "its first column holds text ({0}): it looks like a column of row labels, but a count matrix is numbers only (one row per projector, one column per sample); delete that column and run it again"
    )]
    RowLabels(String),
    #[error(
        "its first row holds text ({text} at {cell}): it looks like a header row, but a count matrix is numbers only (one row per projector, one column per sample); delete the header row and run it again"
    )]
    HeaderRow { text: String, cell: String },
    #[error("--dim {0} is outside 2 to {MAX_DIM}")]
    DimRange(usize),
    #[error("--dim {dim}: {source}")]
    DimDesign { dim: usize, source: DesignError },
    #[error("it has {rows} rows, but --dim {dim} (design {design}) needs {k}")]
    RowsForDim {
        rows: usize,
        dim: usize,
        design: Design,
        k: usize,
    },
    #[error(
        "it has {rows} rows, which is not K = {rule} (design {design}); check the file or pass --dim"
    )]
    RowsNotK {
        rows: usize,
        rule: KRule,
        design: Design,
    },
    #[error("it has {rows} rows, but --dim {dim} needs {} (nopovm) or {} (mub)", .dim * .dim, .dim * (.dim + 1))]
    RowsForDimEither { rows: usize, dim: usize },
    #[error(
        "it has {0} rows, which is neither n² (design nopovm) nor n(n+1) (design mub) for a dimension n from 2 to {MAX_DIM}; each row is one projector and each column one sample, so check the file, or pass --design or --projectors"
    )]
    RowsNeither(usize),
    #[error("--projectors: failed to {0}")]
    ProjectorsNpy(#[source] NpyError),
    #[error("--projectors: {} has shape {shape}, not (K, n, n)", .path.display())]
    ProjectorsShape { path: PathBuf, shape: String },
    #[error("--dim {dim} does not match --projectors {}, whose projectors are {n}x{n}", .path.display())]
    DimForProjectors { dim: usize, path: PathBuf, n: usize },
    #[error(
        "it has {rows} rows, but the projector file {} has K = {k} projectors (one row each)",
        .path.display()
    )]
    RowsForProjectors {
        rows: usize,
        path: PathBuf,
        k: usize,
    },
    #[error("--projectors: failed to {0}")]
    ProjectorsStore(#[source] StoreError),
    #[error(
        "it has {rows} rows and {cols} columns; {cols} would be a projector count, so it looks like one sample per row, but qst reads one sample per column (one row per projector): transpose it ({source})"
    )]
    Transposed {
        rows: usize,
        cols: usize,
        source: Box<MatrixError>,
    },
    #[error("--columns {first}:{last} asks for column {last}, but it has {cols} columns")]
    Columns {
        first: usize,
        last: usize,
        cols: usize,
    },
    #[error("--truth: {0}")]
    Truth(#[source] TruthError),
    #[error("--bell: {0}")]
    Bell(#[source] MathError),
}

/// Which row counts K a design takes, in messages.
#[derive(Debug, Clone, PartialEq)]
pub enum KRule {
    /// n² for n from 2 to 256.
    Nopovm,
    /// n(n+1) with this n, which mub does not take.
    MubDim { n: usize, why: DesignError },
    /// n(n+1) for a prime power n.
    Mub,
    /// 4.
    Sic,
}

impl std::fmt::Display for KRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KRule::Nopovm => f.write_str("n² for a dimension n from 2 to 256"),
            KRule::MubDim { n, why } => write!(f, "n(n+1) with n = {n}, but {why}"),
            KRule::Mub => f.write_str("n(n+1) for a prime-power dimension n"),
            KRule::Sic => f.write_str("4"),
        }
    }
}

/// One cell of a count matrix as read.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Num(f64),
    Empty,
    /// Anything that is not a number, as written.
    Text(String),
}

/// How cells are named in messages.
#[derive(Clone, Debug, PartialEq)]
pub enum CellNames {
    /// A text file: `row 3, column 2` (1-based).
    Text,
    /// A spreadsheet: `sheet runB, cell C7`, `origin` the absolute (row,
    /// column) of the grid's first cell.
    Sheet {
        sheet: String,
        origin: (usize, usize),
    },
}

impl CellNames {
    /// The name of the cell at (row, column) of the grid (0-based).
    #[must_use]
    pub fn name(&self, r: usize, c: usize) -> String {
        match self {
            CellNames::Text => format!("row {}, column {}", r + 1, c + 1),
            CellNames::Sheet { sheet, origin } => {
                format!(
                    "sheet {sheet}, cell {}{}",
                    column_letters(origin.1 + c),
                    origin.0 + r + 1
                )
            }
        }
    }
}

/// Spreadsheet column letters of a 0-based column: 0 → A, 25 → Z, 26 → AA.
#[must_use]
pub fn column_letters(mut c: usize) -> String {
    let mut s = Vec::new();
    loop {
        #[allow(clippy::cast_possible_truncation)] // below 26
        let letter = (c % 26) as u8;
        s.push(b'A' + letter);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    s.reverse();
    String::from_utf8_lossy(&s).into_owned()
}

/// A count matrix as read: rows of cells (ragged rows are padded with
/// [`Cell::Empty`]).
#[derive(Clone, Debug)]
pub struct Grid {
    pub cells: Vec<Vec<Cell>>,
    pub names: CellNames,
}

impl Grid {
    /// Drops rows and columns that are empty everywhere at the end (a
    /// trailing comma, blank lines, a spreadsheet's formatted-but-empty
    /// cells), and pads ragged rows.
    fn trim(&mut self) {
        while self
            .cells
            .last()
            .is_some_and(|r| r.iter().all(|c| *c == Cell::Empty))
        {
            self.cells.pop();
        }
        let mut cols = self.cells.iter().map(Vec::len).max().unwrap_or(0);
        while cols > 0
            && self
                .cells
                .iter()
                .all(|r| r.get(cols - 1).is_none_or(|c| *c == Cell::Empty))
        {
            cols -= 1;
        }
        for r in &mut self.cells {
            r.resize(cols, Cell::Empty);
        }
    }
    fn rows(&self) -> usize {
        self.cells.len()
    }
    fn cols(&self) -> usize {
        self.cells.first().map_or(0, Vec::len)
    }
}

/// A short rendering of a text cell for messages.
fn show(s: &str) -> String {
    let s = if s.chars().count() > 30 {
        s.chars().take(27).collect::<String>() + "..."
    } else {
        s.to_owned()
    };
    Value::from(s).to_string()
}

/// Refuses what the format cannot explain: a header row or a column of row
/// labels.
fn check_no_labels(g: &Grid) -> Result<(), MatrixError> {
    if g.cols() >= 2 {
        let texts = g
            .cells
            .iter()
            .filter(|r| matches!(r.first(), Some(Cell::Text(_))))
            .count();
        if texts * 2 > g.rows()
            && let Some(Cell::Text(t)) = g
                .cells
                .iter()
                .map(|r| &r[0])
                .find(|c| matches!(c, Cell::Text(_)))
        {
            return Err(MatrixError::RowLabels(show(t)));
        }
    }
    let numeric = |c: &Cell| matches!(c, Cell::Num(_));
    let first = &g.cells[0];
    let text_at = first
        .iter()
        .position(|c| matches!(c, Cell::Text(_)))
        .map(|i| (i, &first[i]));
    if g.rows() >= 2
        && let Some((c, Cell::Text(t))) = text_at
    {
        let below = &g.cells[1..];
        let numbers_below = below.iter().filter(|r| r.iter().any(numeric)).count();
        if numbers_below * 2 >= below.len() {
            return Err(MatrixError::HeaderRow {
                text: show(t),
                cell: g.names.name(0, c),
            });
        }
    }
    Ok(())
}

/// The projector set and dimension of a count matrix with `rows` rows: from
/// `--projectors` (its K), from `--design` (K = n² for `nopovm`, n(n+1) for
/// `mub`, 4 for `sic`), or with neither from the row count alone (n²; else
/// n(n+1) selects `mub`, said in the returned note). `--dim`, when given,
/// must agree.
///
/// # Errors
///
/// When the row count fits no design, or disagrees with the flags.
pub fn matrix_layout(
    rows: usize,
    settings: &BatchSettings,
    store: &Store,
) -> Result<(ProjectorSpec, usize, Option<String>), MatrixError> {
    let input = &settings.input;
    if let Some(n) = input.dim
        && !(2..=MAX_DIM).contains(&n)
    {
        return Err(MatrixError::DimRange(n));
    }
    if let Some(path) = &input.projectors {
        return custom_layout(rows, path, input.dim, store);
    }
    let fits = |d: Design| design_fits(d, rows, input.dim);
    if let Some(d) = input.design {
        return Ok((ProjectorSpec::Builtin(d), fits(d)?, None));
    }
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
    Err(match input.dim {
        Some(dim) => MatrixError::RowsForDimEither { rows, dim },
        None => MatrixError::RowsNeither(rows),
    })
}

/// The dimension for which design `d` has `rows` projectors (`--dim`, when
/// given, must be it).
fn design_fits(d: Design, rows: usize, dim: Option<usize>) -> Result<usize, MatrixError> {
    match dim {
        Some(n) => {
            d.check_dim(n)
                .map_err(|source| MatrixError::DimDesign { dim: n, source })?;
            match d.count(n) {
                Some(k) if k == rows => Ok(n),
                k => Err(MatrixError::RowsForDim {
                    rows,
                    dim: n,
                    design: d,
                    k: k.unwrap_or(0),
                }),
            }
        }
        None => d.dim_for_count(rows).ok_or_else(|| {
            let rule = match d {
                Design::Nopovm => KRule::Nopovm,
                Design::Mub => {
                    let n = rows.isqrt();
                    match d.check_dim(n) {
                        Err(why) if n * (n + 1) == rows => KRule::MubDim { n, why },
                        _ => KRule::Mub,
                    }
                }
                Design::Sic => KRule::Sic,
            };
            MatrixError::RowsNotK {
                rows,
                rule,
                design: d,
            }
        }),
    }
}

fn custom_layout(
    rows: usize,
    path: &Path,
    dim: Option<usize>,
    store: &Store,
) -> Result<(ProjectorSpec, usize, Option<String>), MatrixError> {
    let map = qst_npy::MappedC16::open(path, None).map_err(MatrixError::ProjectorsNpy)?;
    let (k, n) = match map.shape() {
        [k, a, b] if a == b => (*k, *a),
        other => {
            return Err(MatrixError::ProjectorsShape {
                path: path.to_path_buf(),
                shape: qst_npy::shape_str(other),
            });
        }
    };
    if let Some(d) = dim
        && d != n
    {
        return Err(MatrixError::DimForProjectors {
            dim: d,
            path: path.to_path_buf(),
            n,
        });
    }
    if rows != k {
        return Err(MatrixError::RowsForProjectors {
            rows,
            path: path.to_path_buf(),
            k,
        });
    }
    store
        .validate_custom(path, n)
        .map_err(MatrixError::ProjectorsStore)?;
    Ok((
        ProjectorSpec::Custom {
            path: path.to_path_buf(),
        },
        n,
        None,
    ))
}

/// Whether `n` rows could be a count matrix's K for the settings (used to
/// recognize samples written as rows).
fn fits_some_design(k: usize, settings: &BatchSettings) -> bool {
    let input = &settings.input;
    match input.design {
        Some(d) => d.dim_for_count(k).is_some(),
        None => {
            input.projectors.is_none()
                && (Design::Nopovm.dim_for_count(k).is_some()
                    || Design::Mub.dim_for_count(k).is_some())
        }
    }
}

/// `<stem>` of an id: characters outside the id set replaced by `_`,
/// shortened so that `<stem>-<column>.<method>` stays within 128 characters.
#[must_use]
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
    // An id may not start with '.' (it names files: no hidden or `..` names).
    if s.starts_with('.') {
        s.replace_range(..1, "_");
    }
    if s.is_empty() {
        s.push('_');
    }
    let room = 128 - 1 - cols.max(1).to_string().len();
    s.truncate(room);
    s
}

/// A count matrix batch, handing out one job per (column, method).
#[derive(Debug)]
pub struct MatrixBatch {
    stem: String,
    dim: usize,
    methods: Vec<Method>,
    projectors: ProjectorSpec,
    truth: Option<Vec<(f64, f64)>>,
    analysis: Analysis,
    note: Option<String>,
    out_dir: PathBuf,
    /// Per selected column: its 1-based number and its counts (or the first
    /// problem, one sentence) and warnings.
    columns: VecDeque<Column>,
    pending: VecDeque<Entry>,
}

#[derive(Debug)]
struct Column {
    number: usize,
    counts: Result<Vec<f64>, JobError>,
    warnings: Vec<String>,
}

impl MatrixBatch {
    /// Checks a grid and lays it out as jobs. `Err`: the file as a whole
    /// cannot be used (one sentence; the command exits 2).
    ///
    /// # Errors
    ///
    /// As above.
    pub fn new(
        mut grid: Grid,
        stem: &str,
        settings: &BatchSettings,
        store: &Store,
    ) -> Result<MatrixBatch, MatrixError> {
        grid.trim();
        let (rows, cols) = (grid.rows(), grid.cols());
        if rows == 0 || cols == 0 {
            return Err(MatrixError::NoNumbers);
        }
        check_no_labels(&grid)?;
        let (projectors, dim, note) = match matrix_layout(rows, settings, store) {
            Ok(l) => l,
            Err(e) if cols > 1 && fits_some_design(cols, settings) => {
                return Err(MatrixError::Transposed {
                    rows,
                    cols,
                    source: Box::new(e),
                });
            }
            Err(e) => return Err(e),
        };
        let (first, last) = match settings.input.columns {
            None => (1, cols),
            Some((a, b)) if b <= cols => (a, b),
            Some((first, last)) => {
                return Err(MatrixError::Columns { first, last, cols });
            }
        };
        let truth = match &settings.input.truth {
            Some(p) => Some(super::jobs::read_truth(p, dim).map_err(MatrixError::Truth)?),
            None => None,
        };
        if settings.input.bell
            && let Err(e) = qst_math::bell_side(dim)
        {
            return Err(MatrixError::Bell(e));
        }
        let analysis = Analysis {
            bell: settings.input.bell,
            spectral: settings.input.spectral,
            bootstrap: settings.input.bootstrap,
            resample: None,
        };
        let columns = (first..=last)
            .map(|number| column(&grid, number - 1, settings.input.negative))
            .collect();
        Ok(MatrixBatch {
            stem: id_stem(stem, cols),
            dim,
            methods: settings.input.default_methods(),
            projectors,
            truth,
            analysis,
            note,
            out_dir: settings.out_dir.clone(),
            columns,
            pending: VecDeque::new(),
        })
    }

    #[cfg(test)]
    /// The dimension of every job.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    #[cfg(test)]
    /// The number of columns (samples) still to hand out.
    #[must_use]
    pub fn columns(&self) -> usize {
        self.columns.len()
    }

    /// What the run should tell the user about how the file was read.
    #[must_use]
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The id of column `col` (1-based).
    #[must_use]
    pub fn id_of(&self, col: usize) -> String {
        format!("{}-{col}", self.stem)
    }

    /// The next (column, method)'s job or error record.
    pub fn next_entry(&mut self) -> Option<Entry> {
        if let Some(e) = self.pending.pop_front() {
            return Some(e);
        }
        let col = self.columns.pop_front()?;
        let id = self.id_of(col.number);
        let several = self.methods.len() > 1;
        for &method in &self.methods {
            let entry = match &col.counts {
                Err(p) => {
                    let mut r = ErrorRecord::new(
                        col.number as u64,
                        Some(&id),
                        format!(
                            "column {} (id {}): {p}",
                            col.number,
                            Value::from(id.as_str())
                        ),
                    );
                    r.dim = Some(self.dim);
                    r.design = Some(self.projectors.design_name().into());
                    r.method = Some(method.as_str().into());
                    Entry::Error(r)
                }
                Ok(counts) => {
                    let file = if several {
                        format!("{id}.{}.npy", method.as_str())
                    } else {
                        format!("{id}.npy")
                    };
                    Entry::Job(Job {
                        line: col.number as u64,
                        id: id.clone(),
                        dim: self.dim,
                        method,
                        projectors: self.projectors.clone(),
                        counts: counts.clone(),
                        truth: self.truth.clone(),
                        max_iters: DEFAULT_MAX_ITERS,
                        tol: DEFAULT_TOL,
                        rho_path: self.out_dir.join("rho").join(file),
                        warnings: col.warnings.clone(),
                        analysis: Box::new(self.analysis.clone()),
                    })
                }
            };
            self.pending.push_back(entry);
        }
        self.pending.pop_front()
    }
}

/// Column `c` (0-based) as counts, or its first problem naming the cell;
/// each count by the rules of [`super::jobs`]. (The warnings matter only
/// for a column that passed.)
fn column(g: &Grid, c: usize, negative: Negative) -> Column {
    let mut warnings = Vec::new();
    let counts = column_counts(g, c, negative, &mut warnings);
    Column {
        number: c + 1,
        counts,
        warnings,
    }
}

fn column_counts(
    g: &Grid,
    c: usize,
    negative: Negative,
    warnings: &mut Vec<String>,
) -> Result<Vec<f64>, JobError> {
    let mut counts = Vec::with_capacity(g.rows());
    for (r, row) in g.cells.iter().enumerate() {
        let at = || CountAt {
            field: "counts",
            index: r,
            cell: Some(g.names.name(r, c)),
        };
        match &row[c] {
            Cell::Num(x) => {
                let mut x = *x;
                warnings.extend(check_count(&mut x, at, negative)?);
                counts.push(x);
            }
            Cell::Empty => {
                let sheet = matches!(g.names, CellNames::Sheet { .. });
                return Err(JobError::EmptyCell { at: at(), sheet });
            }
            Cell::Text(t) => {
                return Err(JobError::TextCell {
                    at: at(),
                    text: show(t),
                });
            }
        }
    }
    check_not_all_zero(&counts, "counts")?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_names() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
        let s = CellNames::Sheet {
            sheet: "runB".into(),
            origin: (0, 0),
        };
        assert_eq!(s.name(6, 2), "sheet runB, cell C7");
        assert_eq!(CellNames::Text.name(0, 1), "row 1, column 2");
    }
}
