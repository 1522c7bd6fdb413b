//! Opening a batch: its format from its extension (never guessed), the
//! flags checked against it, and one stream of [`Entry`] whatever the format:
//! JSON Lines ([`super::jsonl`]) or a count matrix ([`super::matrix`], read by
//! [`super::csv`] or [`super::sheet`]). A batch the command cannot run at all
//! is a [`BatchError`] (exit 2); a bad line or column is its entry's error
//! record and never stops the others.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use qst_store::Store;

use super::flags::{Format, UnknownFormat, format_of};
pub use super::jobs::{BatchSettings, Entry, MAX_DIM, MAX_LINE_BYTES};
use super::jsonl::JsonlBatch;
use super::matrix::{MatrixBatch, MatrixFileError};
use crate::errors::Fatal;

/// A batch the command cannot run at all (exit 2): one sentence starting
/// "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("failed to read the batch: {0}")]
    Format(#[from] UnknownFormat),
    #[error("failed to read the batch {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("failed to read the batch {}: it is a directory", .path.display())]
    IsDir { path: PathBuf },
    #[error("failed to resolve the output directory {}: {source}", .path.display())]
    OutDir { path: PathBuf, source: io::Error },
    /// A flag given for a format it does not apply to.
    #[error("failed to read the batch {}: {flag} applies to {what} only", .path.display())]
    Misplaced {
        path: PathBuf,
        flag: &'static str,
        what: &'static str,
    },
    #[error("failed to read the batch {}: {source}", .path.display())]
    Matrix {
        path: PathBuf,
        source: Box<MatrixFileError>,
    },
}

impl From<BatchError> for Fatal {
    fn from(e: BatchError) -> Self {
        Fatal(e.to_string())
    }
}

/// Opens a batch, its format chosen by its extension (never guessed): JSON
/// Lines (`.jsonl`, `.ndjson`) or a count matrix (`.csv`, `.txt`, `.xlsx`,
/// `.xls`, `.ods`). `Err` (one sentence) when the command cannot run at all:
/// an unreadable batch, an unknown extension, a count matrix whose shape no
/// design explains, or flags that do not fit the file.
///
/// # Errors
///
/// As above: the batch cannot be used as a whole.
pub fn open_batch(
    path: &Path,
    settings: &BatchSettings,
    store: &Store,
) -> Result<Batch, BatchError> {
    let format = format_of(path)?;
    let read_err = |source| BatchError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        return Err(BatchError::IsDir {
            path: path.to_path_buf(),
        });
    }
    let out_dir = std::path::absolute(&settings.out_dir).map_err(|source| BatchError::OutDir {
        path: settings.out_dir.clone(),
        source,
    })?;
    let settings = BatchSettings {
        out_dir: out_dir.clone(),
        input: settings.input.clone(),
    };
    if let Some((flag, what)) = misplaced_flag(format, &settings) {
        return Err(BatchError::Misplaced {
            path: path.to_path_buf(),
            flag,
            what,
        });
    }
    let matrix = |m: Result<MatrixBatch, MatrixFileError>| {
        m.map(|m| Batch {
            source: Source::Matrix(m),
        })
        .map_err(|source| BatchError::Matrix {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    };
    match format {
        Format::Text => return matrix(super::csv::open_text(path, &settings, store)),
        Format::Sheet => return matrix(super::sheet::open_sheet(path, &settings, store)),
        Format::JsonLines => {}
    }
    let file = File::open(path).map_err(read_err)?;
    let jsonl = JsonlBatch::new(path, file, &settings, store);
    Ok(Batch {
        source: Source::Jsonl(jsonl),
    })
}

/// The first flag given that does not apply to the batch's format, and what
/// it applies to.
fn misplaced_flag(
    format: Format,
    settings: &BatchSettings,
) -> Option<(&'static str, &'static str)> {
    let i = &settings.input;
    match format {
        Format::JsonLines => [
            ("--dim", i.dim.is_some()),
            ("--projectors", i.projectors.is_some()),
            ("--sheet", i.sheet.is_some()),
            ("--columns", i.columns.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(flag, _)| (flag, "count matrices (.csv, .txt, .xlsx, .xls, .ods); a JSON line gives its own dim and projectors")),
        Format::Text => i
            .sheet
            .is_some()
            .then_some(("--sheet", "spreadsheets (.xlsx, .xls, .ods)")),
        Format::Sheet => None,
    }
}

/// A batch being read: an iterator of [`Entry`], one per job line (blank and
/// comment lines yield nothing). A JSON Lines batch is streamed.
pub struct Batch {
    source: Source,
}

impl Batch {
    /// What the run should tell the user about how the batch was read.
    #[must_use]
    pub fn note(&self) -> Option<&str> {
        match &self.source {
            Source::Matrix(c) => c.note(),
            Source::Jsonl(_) => None,
        }
    }
}

enum Source {
    Jsonl(JsonlBatch),
    Matrix(MatrixBatch),
}

impl Iterator for Batch {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        match &mut self.source {
            Source::Matrix(c) => c.next_entry(),
            Source::Jsonl(j) => j.next_entry(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qst_store::StoreConfig;

    #[test]
    fn streams_a_file_with_physical_line_numbers_bom_and_crlf() {
        let tmp = tempfile::tempdir().unwrap();
        let batch = tmp.path().join("b.jsonl");
        let text = "\u{feff}{\"id\":\"a\",\"dim\":2,\"counts\":[1,1,1,1]}\r\n\r\n# comment\n{oops\n{\"id\":\"b\",\"dim\":2,\"counts\":[1,2,3,4]}";
        std::fs::write(&batch, text).unwrap();
        let store = Store::new(StoreConfig {
            dir: tmp.path().join("c"),
            max_bytes: 1 << 30,
        });
        let entries: Vec<Entry> =
            open_batch(&batch, &BatchSettings::new(tmp.path().join("out")), &store)
                .unwrap()
                .collect();
        let lines: Vec<u64> = entries.iter().map(Entry::line).collect();
        assert_eq!(lines, vec![1, 4, 5]);
        assert!(matches!(&entries[0], Entry::Job(j) if j.id == "a"));
        assert!(matches!(&entries[1], Entry::Error(r) if r.id.is_none()));
        assert!(matches!(&entries[2], Entry::Job(j) if j.id == "b"));

        let err = open_batch(
            &tmp.path().join("none.jsonl"),
            &BatchSettings::new("o"),
            &store,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.starts_with("failed to read the batch"), "{err}");
    }
}
