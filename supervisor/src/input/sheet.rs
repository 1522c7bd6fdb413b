//! Count matrices in spreadsheets (`.xlsx`, `.xls`, `.ods`, read with
//! calamine): the first sheet unless `--sheet` names one (by name, or by
//! 0-based index as pandas does). Numbers only: text, booleans, errors and
//! dates are errors for their column; an empty cell too (a formula saved
//! without its value reads as empty). Cells are named as the spreadsheet
//! names them (`sheet runB, cell C7`).

use std::path::Path;

use calamine::{Data, Reader, open_workbook_auto};
use qst_store::Store;

use super::jobs::BatchSettings;
use super::matrix::{Cell, CellNames, Grid, MatrixBatch, MatrixFileError};

/// A spreadsheet that cannot be read, or has no such sheet.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("it cannot be opened as a spreadsheet: {0}")]
    Open(#[source] calamine::Error),
    #[error("it has no sheets")]
    NoSheets,
    #[error(
        "it has no sheet {asked:?} (--sheet takes a name or a 0-based index; its sheets are {})",
        list_sheets(.sheets)
    )]
    NoSuchSheet { asked: String, sheets: Vec<String> },
    #[error("sheet {name} cannot be read: {source}")]
    Range {
        name: String,
        source: calamine::Error,
    },
}

/// `0: "runA", 1: "runB"`.
fn list_sheets(names: &[String]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i}: {n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cell(d: &Data) -> Cell {
    match d {
        Data::Int(i) => Cell::Num(*i as f64),
        Data::Float(f) => Cell::Num(*f),
        Data::Empty => Cell::Empty,
        Data::String(s) if s.trim().is_empty() => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_string()),
    }
}

/// Reads one sheet of a spreadsheet into a grid.
///
/// # Errors
///
/// [`SheetError`] when the workbook cannot be opened, the sheet is missing, or a cell is not a
/// number.
pub fn read_sheet(path: &Path, sheet: Option<&str>) -> Result<Grid, SheetError> {
    let mut book = open_workbook_auto(path).map_err(SheetError::Open)?;
    let names = book.sheet_names();
    if names.is_empty() {
        return Err(SheetError::NoSheets);
    }
    let name = match sheet {
        None => names[0].clone(),
        Some(s) => match names.iter().find(|n| n.as_str() == s) {
            Some(n) => n.clone(),
            None => match s.parse::<usize>() {
                Ok(i) if i < names.len() => names[i].clone(),
                _ => {
                    return Err(SheetError::NoSuchSheet {
                        asked: s.to_owned(),
                        sheets: names,
                    });
                }
            },
        },
    };
    let range = match book.worksheet_range(&name) {
        Ok(r) => r,
        Err(source) => return Err(SheetError::Range { name, source }),
    };
    let origin = range
        .start()
        .map_or((0, 0), |(r, c)| (r as usize, c as usize));
    let cells = range
        .rows()
        .map(|row| row.iter().map(cell).collect())
        .collect();
    Ok(Grid {
        cells,
        names: CellNames::Sheet {
            sheet: name,
            origin,
        },
    })
}

/// Reads, checks and lays out a spreadsheet count matrix.
///
/// # Errors
///
/// When the sheet cannot be read, or its matrix cannot be laid out as jobs.
pub fn open_sheet(
    path: &Path,
    settings: &BatchSettings,
    store: &Store,
) -> Result<MatrixBatch, MatrixFileError> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let grid = read_sheet(path, settings.input.sheet.as_deref())?;
    Ok(MatrixBatch::new(grid, &stem, settings, store)?)
}
