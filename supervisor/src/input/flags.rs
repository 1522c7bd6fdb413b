//! The input flags of `qst run` that shape how a batch is read, in one place:
//! defaults for JSON lines (`--method`, `--design`, `--truth`, `--bell`,
//! `--spectral`), the analysis (`--bootstrap`, `--seed`) and the layout
//! of a count matrix (`--dim`, `--projectors`, `--sheet`, `--columns`,
//! `--negative`). `qst run`, its resume command and `qst slurm` all take
//! them from here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use qst_shared::{Design, Method, UnknownMethod};

/// A flag of `qst run` whose value cannot be read; clap prints it after
/// "invalid value … for '--flag': ".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("--negative must be error or clip, not {0:?}")]
    Negative(String),
    #[error("--columns must be A:B with 1 <= A <= B (1-based column numbers), not {0:?}")]
    Columns(String),
    #[error(transparent)]
    Method(#[from] UnknownMethod),
    #[error("method {} is named twice", .0.as_str())]
    MethodTwice(Method),
}

/// What a negative count (background subtraction) does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Negative {
    /// An error for its sample (the default).
    #[default]
    Error,
    /// Set to 0, with a warning in the sample's result.
    Clip,
}

impl Negative {
    /// The `--negative` policy named `s`.
    ///
    /// # Errors
    ///
    /// [`FlagError`] when `s` is neither `error` nor `clip`.
    pub fn parse(s: &str) -> Result<Negative, FlagError> {
        match s {
            "error" => Ok(Negative::Error),
            "clip" => Ok(Negative::Clip),
            _ => Err(FlagError::Negative(s.to_owned())),
        }
    }
}

/// The input flags (all optional).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputOptions {
    /// `--dim`: a count matrix's dimension (else from its rows).
    pub dim: Option<usize>,
    /// `--method`: the methods of lines that name none (empty: `mle`).
    pub methods: Vec<Method>,
    /// `--design`: a count matrix's design (else from its rows), and that of
    /// JSON lines that name none (else `nopovm`).
    pub design: Option<Design>,
    /// `--projectors`: a custom projector file for a count matrix.
    pub projectors: Option<PathBuf>,
    /// `--truth`: the target state of lines that name none.
    pub truth: Option<PathBuf>,
    /// `--sheet`: a spreadsheet's sheet, by name or 0-based index.
    pub sheet: Option<String>,
    /// `--columns A:B`: a count matrix's columns A to B (1-based, inclusive).
    pub columns: Option<(usize, usize)>,
    /// `--negative`.
    pub negative: Negative,
    /// `--bell`: the Bell analysis for lines that do not say (and every
    /// column of a count matrix).
    pub bell: bool,
    /// `--spectral`: the dominant component, likewise.
    pub spectral: bool,
    /// `--bootstrap B`: B resamples per job (0: none).
    pub bootstrap: u32,
    /// `--seed S` of the bootstrap (`None`: `DEFAULT_SEED`, 1).
    pub seed: Option<u64>,
}

/// The bootstrap's seed when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 1;

impl InputOptions {
    /// The methods of a line that names none: `--method`, else `mle`.
    #[must_use]
    pub fn default_methods(&self) -> Vec<Method> {
        if self.methods.is_empty() {
            vec![Method::Mle]
        } else {
            self.methods.clone()
        }
    }

    /// The bootstrap's seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(DEFAULT_SEED)
    }

    /// These flags as command-line arguments (for resume commands and
    /// scripts), with paths made absolute by `abs`.
    pub fn args(&self, quote: impl Fn(&Path) -> String) -> String {
        let mut s = String::new();
        if let Some(d) = self.dim {
            let _ = write!(s, " --dim {d}");
        }
        if !self.methods.is_empty() {
            let m: Vec<&str> = self.methods.iter().map(|m| m.as_str()).collect();
            let _ = write!(s, " --method {}", m.join(","));
        }
        if let Some(d) = self.design {
            let _ = write!(s, " --design {d}");
        }
        if let Some(p) = &self.projectors {
            let _ = write!(s, " --projectors {}", quote(p));
        }
        if let Some(p) = &self.truth {
            let _ = write!(s, " --truth {}", quote(p));
        }
        if let Some(sh) = &self.sheet {
            let _ = write!(s, " --sheet {}", quote(Path::new(sh)));
        }
        if let Some((a, b)) = self.columns {
            let _ = write!(s, " --columns {a}:{b}");
        }
        if self.negative == Negative::Clip {
            s += " --negative clip";
        }
        if self.bell {
            s += " --bell";
        }
        if self.spectral {
            s += " --spectral";
        }
        if self.bootstrap > 0 {
            let _ = write!(s, " --bootstrap {}", self.bootstrap);
        }
        if let Some(seed) = self.seed {
            let _ = write!(s, " --seed {seed}");
        }
        s
    }
}

/// Parses `--method mle,linear,wls` (no repeats).
///
/// # Errors
///
/// [`FlagError`] on an unknown or repeated method.
pub fn parse_methods(s: &str) -> Result<Vec<Method>, FlagError> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let m = Method::parse(part.trim())?;
        if out.contains(&m) {
            return Err(FlagError::MethodTwice(m));
        }
        out.push(m);
    }
    Ok(out)
}

/// Parses `--columns A:B` (1-based, inclusive; `A` alone is one column).
///
/// # Errors
///
/// [`FlagError`] when `s` is not one column or a range of them.
pub fn parse_columns(s: &str) -> Result<(usize, usize), FlagError> {
    let bad = || FlagError::Columns(s.to_owned());
    let (a, b) = match s.split_once(':') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let a: usize = a.parse().map_err(|_| bad())?;
    let b: usize = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// What kind of batch a file is, from its extension alone (never guessed
/// from its content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.jsonl`, `.ndjson`: one JSON job per line.
    JsonLines,
    /// `.csv`, `.txt`: a comma-separated count matrix.
    Text,
    /// `.xlsx`, `.xls`, `.ods`: a spreadsheet count matrix.
    Sheet,
}

/// A batch file whose extension names no format qst reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} is not a kind of batch qst reads ({}): a JSON Lines batch (one job per line) ends in .jsonl or .ndjson; a count matrix (one row per projector, one column per sample) in .csv or .txt (comma-separated) or .xlsx, .xls or .ods; rename the file to the extension of its format",
    .path.display(),
    extension_phrase(.ext.as_deref())
)]
pub struct UnknownFormat {
    pub path: PathBuf,
    /// The extension, lowercase (`None`: the file has none).
    pub ext: Option<String>,
}

/// `its extension is .json`, `it has no extension`.
fn extension_phrase(ext: Option<&str>) -> String {
    match ext {
        Some(e) => format!("its extension is .{e}"),
        None => "it has no extension".to_string(),
    }
}

/// The format of the batch at `path`; `Err` names the extensions qst reads.
///
/// # Errors
///
/// [`UnknownFormat`] when the extension is not one qst reads.
pub fn format_of(path: &Path) -> Result<Format, UnknownFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jsonl" | "ndjson") => Ok(Format::JsonLines),
        Some("csv" | "txt") => Ok(Format::Text),
        Some("xlsx" | "xls" | "ods") => Ok(Format::Sheet),
        _ => Err(UnknownFormat {
            path: path.to_path_buf(),
            ext,
        }),
    }
}

/// Whether the batch is a count matrix (one job per column).
#[must_use]
pub fn is_matrix(path: &Path) -> bool {
    matches!(format_of(path), Ok(Format::Text | Format::Sheet))
}

/// The closest of `known` to `word` (edit distance at most 3), for "did you
/// mean" hints.
#[must_use]
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_render() {
        assert_eq!(
            parse_methods("mle,linear").unwrap(),
            vec![Method::Mle, Method::Linear]
        );
        assert!(parse_methods("mle,mle").is_err());
        assert_eq!(
            parse_methods("mle,lin").unwrap_err().to_string(),
            r#"unknown method "lin" (known: "mle", "linear", "wls")"#
        );
        assert_eq!(
            parse_methods("mle,mle").unwrap_err().to_string(),
            "method mle is named twice"
        );
        assert_eq!(
            parse_columns("x").unwrap_err().to_string(),
            r#"--columns must be A:B with 1 <= A <= B (1-based column numbers), not "x""#
        );
        assert_eq!(
            Negative::parse("zero").unwrap_err().to_string(),
            r#"--negative must be error or clip, not "zero""#
        );
        assert_eq!(parse_columns("3:7").unwrap(), (3, 7));
        assert_eq!(parse_columns("4").unwrap(), (4, 4));
        assert!(parse_columns("0:2").is_err());
        assert!(parse_columns("5:2").is_err());
        let o = InputOptions {
            methods: vec![Method::Mle, Method::Linear],
            columns: Some((2, 3)),
            negative: Negative::Clip,
            ..Default::default()
        };
        assert_eq!(
            o.args(|p| p.display().to_string()),
            " --method mle,linear --columns 2:3 --negative clip"
        );
        let o = InputOptions {
            bell: true,
            spectral: true,
            bootstrap: 50,
            seed: Some(7),
            ..Default::default()
        };
        assert_eq!(
            o.args(|p| p.display().to_string()),
            " --bell --spectral --bootstrap 50 --seed 7"
        );
        assert_eq!(InputOptions::default().seed(), 1);
    }

    #[test]
    fn formats_come_from_extensions_only() {
        assert_eq!(format_of(Path::new("a.JSONL")), Ok(Format::JsonLines));
        assert_eq!(format_of(Path::new("a.txt")), Ok(Format::Text));
        assert_eq!(format_of(Path::new("a.ods")), Ok(Format::Sheet));
        let e = format_of(Path::new("a.json")).unwrap_err().to_string();
        assert!(
            e.starts_with("a.json is not a kind of batch qst reads (its extension is .json): "),
            "{e}"
        );
        let e = format_of(Path::new("dir/batch")).unwrap_err().to_string();
        assert!(e.contains("(it has no extension)"), "{e}");
        assert!(format_of(Path::new("/dev/stdin")).is_err());
    }

    #[test]
    fn nearest_known_word() {
        let known = ["method", "design", "dim"];
        assert_eq!(nearest("metod", &known), Some("method"));
        assert_eq!(nearest("zzzzzzzz", &known), None);
    }
}
