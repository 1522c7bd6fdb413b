//! Count matrices in spreadsheets (`.xlsx`, `.xls`, `.ods`, read with
//! calamine): the first sheet unless `--sheet` names one (by name, or by
//! 0-based index as pandas does). Numbers only: text, booleans, errors and
//! dates are errors for their column; an empty cell too (a formula saved
//! without its value reads as empty). Cells are named as the spreadsheet
//! names them (`sheet runB, cell C7`).

use std::path::Path;

use calamine::{Data, Reader, open_workbook_auto};
use qst_store::Store;

use crate::jobs::BatchSettings;
use crate::matrix::{Cell, CellNames, Grid, MatrixBatch};

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
pub fn read_sheet(path: &Path, sheet: Option<&str>) -> Result<Grid, String> {
    let mut book = open_workbook_auto(path)
        .map_err(|e| format!("it cannot be opened as a spreadsheet: {e}"))?;
    let names = book.sheet_names();
    if names.is_empty() {
        return Err("it has no sheets".into());
    }
    let list = || {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{i}: {n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = match sheet {
        None => names[0].clone(),
        Some(s) => match names.iter().find(|n| n.as_str() == s) {
            Some(n) => n.clone(),
            None => match s.parse::<usize>() {
                Ok(i) if i < names.len() => names[i].clone(),
                _ => {
                    return Err(format!(
                        "it has no sheet {s:?} (--sheet takes a name or a 0-based index; its sheets are {})",
                        list()
                    ));
                }
            },
        },
    };
    let range = book
        .worksheet_range(&name)
        .map_err(|e| format!("sheet {name} cannot be read: {e}"))?;
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
pub fn open_sheet(
    path: &Path,
    settings: &BatchSettings,
    store: &Store,
) -> Result<MatrixBatch, String> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    read_sheet(path, settings.input.sheet.as_deref())
        .and_then(|g| MatrixBatch::new(g, &stem, settings, store))
        .map_err(|e| format!("failed to read the batch {}: {e}", path.display()))
}
