//! JSON Lines batches (docs/input.md): streamed line by line, each line
//! validated as a job (docs/input.md, 2.5) by the rules of [`super::jobs`].
//! Each entry is either a [`Job`] ready to dispatch or the error record of a
//! line that cannot run; a bad line never stops the others.
//!
//! Error messages are one sentence that names the line (and the id, when it
//! is known) and the field, e.g. `line 7 (id "q4-0007"): field counts has 15
//! entries, but dim 4 needs 16`.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use qst_shared::{Analysis, Design, Job, Method, ProjectorSpec};
use qst_store::Store;
use serde_json::{Map, Value};

use super::flags::{Negative, nearest};
use super::jobs::{
    BatchSettings, CustomError, DEFAULT_MAX_ITERS, DEFAULT_TOL, Entry, JobError, MAX_DIM,
    MAX_LINE_BYTES, SetNeeds, TruthError, check_counts, is_valid_id, read_truth,
};
use crate::results::ErrorRecord;

/// A JSON Lines batch being read: one line at a time, each line's entries
/// (one per method) handed out before the next line is read.
pub struct JsonlBatch {
    reader: BufReader<File>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
    parser: Box<JobParser>,
    path: PathBuf,
    /// The entries of a line with several methods, still to hand out.
    pending: VecDeque<Entry>,
}

impl JsonlBatch {
    /// The batch at `path`, open as `file`; relative paths in its lines are
    /// resolved against its directory, and the flags of `settings` are the
    /// defaults of lines that do not say.
    #[must_use]
    pub fn new(path: &Path, file: File, settings: &BatchSettings, store: &Store) -> Self {
        JsonlBatch {
            reader: BufReader::with_capacity(1 << 16, file),
            line: 0,
            buf: Vec::new(),
            done: false,
            parser: Box::new(jsonl_parser(path, settings, store)),
            path: path.to_path_buf(),
            pending: VecDeque::new(),
        }
    }

    /// The next entry: a job, or the error record of a line that cannot run.
    pub fn next_entry(&mut self) -> Option<Entry> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            self.buf.clear();
            self.line += 1;
            let line = self.line;
            match read_line(&mut self.reader, &mut self.buf) {
                Ok(LineRead::Eof) => {
                    self.done = true;
                    return None;
                }
                Ok(LineRead::TooLong) => {
                    let rec = Known::at(line).record(&JobError::TooLong);
                    self.pending
                        .extend(self.parser.for_each_default_method(&rec));
                }
                Ok(LineRead::Line) => {
                    if line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
                        self.buf.drain(..3);
                    }
                    self.pending.extend(self.parser.parse_line(line, &self.buf));
                }
                Err(source) => {
                    self.done = true;
                    let rec = Known::at(line).record(&JobError::Read {
                        path: self.path.clone(),
                        source,
                    });
                    self.pending
                        .extend(self.parser.for_each_default_method(&rec));
                }
            }
        }
    }
}

/// The parser of a JSON Lines batch at `path`: relative paths against its
/// directory, the flags' defaults.
fn jsonl_parser(path: &Path, settings: &BatchSettings, store: &Store) -> JobParser {
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base_dir = std::path::absolute(&base_dir).unwrap_or(base_dir);
    let truth = settings
        .input
        .truth
        .as_ref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    JobParser::new(base_dir, settings.out_dir.clone(), store.clone()).with_defaults(LineDefaults {
        design: settings.input.design.unwrap_or(Design::Nopovm),
        methods: settings.input.default_methods(),
        truth,
        negative: settings.input.negative,
        bell: settings.input.bell,
        spectral: settings.input.spectral,
        bootstrap: settings.input.bootstrap,
    })
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line (without its newline) into `buf`, at most
/// [`MAX_LINE_BYTES`]; the rest of a longer line is skipped.
fn read_line(r: &mut BufReader<File>, buf: &mut Vec<u8>) -> io::Result<LineRead> {
    let k = r.by_ref().take(MAX_LINE_BYTES + 1).read_until(b'\n', buf)?;
    if k == 0 {
        return Ok(LineRead::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(LineRead::Line);
    }
    if (k as u64) <= MAX_LINE_BYTES {
        return Ok(LineRead::Line); // last line, no newline
    }
    // Skip to the end of this line.
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            r.consume(i + 1);
            break;
        }
        let n = chunk.len();
        r.consume(n);
    }
    buf.clear();
    Ok(LineRead::TooLong)
}

/// A target file, its dimension and what reading it gave.
type TruthRead = ((PathBuf, usize), Result<Vec<(f64, f64)>, Arc<TruthError>>);

/// The value of a field check, or the line's error record.
macro_rules! field {
    ($k:expr, $check:expr) => {
        match $check {
            Ok(v) => v,
            Err(e) => return Some($k.err(&JobError::from(e))),
        }
    };
}

/// Validates JSON job lines one by one, remembering ids (for duplicates) and
/// custom projector files (validated once per file and dimension).
pub struct JobParser {
    base_dir: PathBuf,
    out_dir: PathBuf,
    store: Store,
    ids: HashMap<String, u64>,
    custom: HashMap<(PathBuf, usize), Result<usize, Arc<CustomError>>>,
    /// The last target read, by (file, dimension): a file shared by many
    /// lines in a row (`--truth`) is read and checked once, and per-line
    /// files are not held.
    last_truth: Option<TruthRead>,
    /// What lines that do not say get (from the command line's flags).
    defaults: LineDefaults,
}

/// What a JSON line gets for the fields it does not give (the command line's
/// `--design`, `--method`, `--truth`, `--negative`, `--bell`, `--spectral`,
/// `--bootstrap`).
#[derive(Clone, Debug)]
pub struct LineDefaults {
    pub design: Design,
    pub methods: Vec<Method>,
    /// Absolute.
    pub truth: Option<PathBuf>,
    pub negative: Negative,
    pub bell: bool,
    pub spectral: bool,
    /// B, for every line (0: no bootstrap).
    pub bootstrap: u32,
}

impl Default for LineDefaults {
    fn default() -> Self {
        LineDefaults {
            design: Design::Nopovm,
            methods: vec![Method::Mle],
            truth: None,
            negative: Negative::Error,
            bell: false,
            spectral: false,
            bootstrap: 0,
        }
    }
}

/// The fields a job line may have.
pub const KNOWN_FIELDS: [&str; 12] = [
    "id",
    "dim",
    "counts",
    "counts_npy",
    "method",
    "design",
    "projectors",
    "truth",
    "bell",
    "spectral",
    "max_iters",
    "tol",
];

/// A short, quoted rendering of a JSON value for messages.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(37).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// What is known of a line so far, for its error record.
struct Known<'a> {
    line: u64,
    id: Option<&'a str>,
    dim: Option<usize>,
    design: Option<&'static str>,
    method: Option<Method>,
}

impl Known<'_> {
    /// Nothing known but the line.
    fn at(line: u64) -> Self {
        Known {
            line,
            id: None,
            dim: None,
            design: None,
            method: None,
        }
    }
    fn who(&self) -> String {
        match self.id {
            Some(id) if id.chars().count() > 40 => {
                let cut: String = id.chars().take(37).collect();
                format!("line {} (id {}...)", self.line, Value::from(cut))
            }
            Some(id) => format!("line {} (id {})", self.line, Value::from(id)),
            None => format!("line {}", self.line),
        }
    }
    /// The line's error record: the one place a [`JobError`] of a JSON line
    /// is rendered.
    fn record(&self, e: &JobError) -> ErrorRecord {
        let mut r = ErrorRecord::new(self.line, self.id, format!("{}: {e}", self.who()));
        r.dim = self.dim;
        r.design = self.design.map(str::to_owned);
        r.method = self.method.map(|m| m.as_str().to_owned());
        r
    }
    fn err(&self, e: &JobError) -> Entry {
        Entry::Error(self.record(e))
    }
}

impl JobParser {
    /// A parser resolving relative paths against `base_dir` and placing ρ
    /// files under `out_dir/rho/`.
    #[must_use]
    pub fn new(base_dir: PathBuf, out_dir: PathBuf, store: Store) -> Self {
        JobParser {
            base_dir,
            out_dir,
            store,
            ids: HashMap::new(),
            custom: HashMap::new(),
            last_truth: None,
            defaults: LineDefaults::default(),
        }
    }

    /// What lines that do not say get.
    #[must_use]
    pub fn with_defaults(mut self, defaults: LineDefaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// One copy of an error record per default method (a line that could
    /// not be read as a job has one result per method it would have run).
    #[must_use]
    pub fn for_each_default_method(&self, rec: &ErrorRecord) -> Vec<Entry> {
        self.defaults
            .methods
            .iter()
            .map(|m| {
                let mut r = rec.clone();
                r.method = Some(m.as_str().to_owned());
                Entry::Error(r)
            })
            .collect()
    }

    /// Validates one physical line (without its newline): nothing for blank
    /// and comment lines, else one entry per method of the line (a job, or
    /// its error record).
    pub fn parse_line(&mut self, line: u64, bytes: &[u8]) -> Vec<Entry> {
        let mut methods = self.defaults.methods.clone();
        let Some(entry) = self.parse_one(line, bytes, &mut methods) else {
            return Vec::new();
        };
        let several = methods.len() > 1;
        methods
            .iter()
            .map(|&m| match &entry {
                Entry::Job(j) => {
                    let mut j = j.clone();
                    j.method = m;
                    if several {
                        j.rho_path =
                            self.out_dir
                                .join("rho")
                                .join(format!("{}.{}.npy", j.id, m.as_str()));
                    }
                    Entry::Job(j)
                }
                Entry::Error(r) => {
                    let mut r = r.clone();
                    r.method = Some(m.as_str().to_owned());
                    Entry::Error(r)
                }
            })
            .collect()
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// A path field: a string naming an existing file.
    fn file_field(
        &self,
        obj: &Map<String, Value>,
        field: &'static str,
    ) -> Result<Option<PathBuf>, JobError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => {
                let path = self.resolve(s);
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => Ok(Some(path)),
                    Ok(_) => Err(JobError::NotAFile { field, path }),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        Err(JobError::NoSuchFile { field, path })
                    }
                    Err(source) => Err(JobError::Unreadable {
                        field,
                        path,
                        source,
                    }),
                }
            }
            Some(v) => Err(value_error(field, "a file path string", v)),
        }
    }

    /// [`JobParser::parse_line`] for a line with one method.
    #[cfg(test)]
    fn parse_single(&mut self, line: u64, bytes: &[u8]) -> Option<Entry> {
        let mut v = self.parse_line(line, bytes);
        assert!(v.len() <= 1, "line {line} gave {} entries", v.len());
        v.pop()
    }

    /// Validates one line as one job (with the line's first method); its
    /// methods go to `methods`. `None` for blank and comment lines.
    fn parse_one(&mut self, line: u64, bytes: &[u8], methods: &mut Vec<Method>) -> Option<Entry> {
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            return None;
        }
        let mut k = Known::at(line);
        let obj = field!(k, parse_object(trimmed));
        let id = field!(k, id_field(&obj));
        k.id = Some(id);
        if !is_valid_id(id) {
            return Some(k.err(&JobError::BadId));
        }
        if let Some(&first) = self.ids.get(id) {
            return Some(k.err(&JobError::DuplicateId(first)));
        }
        self.ids.insert(id.to_owned(), line);
        field!(k, known_fields(&obj));
        if let Some(ms) = field!(k, method_field(&obj)) {
            *methods = ms;
        }
        let method = methods[0];
        k.method = Some(method);
        let dim = field!(k, dim_field(&obj));
        k.dim = Some(dim);
        let (spec, k_expected) = field!(k, self.projector_set(&obj, dim, &mut k.design));
        let (mut counts, field) = field!(k, self.counts_field(&obj, &spec, dim, k_expected));
        let warnings = field!(k, check_counts(&mut counts, field, self.defaults.negative));
        field!(k, self.validate_custom_once(&spec, dim));
        let (max_iters, tol) = field!(k, iteration_fields(&obj));
        let (bell, spectral) = field!(k, self.analysis_fields(&obj, dim));
        let truth = field!(k, self.truth_field(&obj, dim));
        let rho_path = self.out_dir.join("rho").join(format!("{id}.npy"));
        Some(Entry::Job(Job {
            line,
            id: id.to_owned(),
            dim,
            method,
            projectors: spec,
            counts,
            truth,
            max_iters,
            tol,
            rho_path,
            warnings,
            analysis: Box::new(Analysis {
                bell,
                spectral,
                bootstrap: self.defaults.bootstrap,
                resample: None,
            }),
        }))
    }

    /// `projectors` / `design`: the set and its K (a custom file's K from its
    /// header alone: the cheap count checks come before its validation).
    /// `design` gets the design's name as soon as it is known.
    fn projector_set(
        &self,
        obj: &Map<String, Value>,
        dim: usize,
        design_name: &mut Option<&'static str>,
    ) -> Result<(ProjectorSpec, usize), JobError> {
        let projectors_file = self.file_field(obj, "projectors").inspect_err(|_| {
            *design_name = Some("custom");
        })?;
        let design = match obj.get("design") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "custom" => Some(DesignField::Custom),
            Some(Value::String(s)) => Some(DesignField::Builtin(
                s.parse::<Design>().map_err(JobError::Design)?,
            )),
            Some(v) => return Err(value_error("design", "a string", v)),
        };
        match (design, projectors_file) {
            (Some(DesignField::Custom), None) => {
                *design_name = Some("custom");
                Err(JobError::CustomWithoutFile)
            }
            (Some(DesignField::Builtin(d)), Some(_)) => {
                *design_name = Some(d.name());
                Err(JobError::FileAndDesign(d))
            }
            (_, Some(path)) => {
                *design_name = Some("custom");
                let count = custom_count(&self.store, &path, dim)
                    .map_err(|e| JobError::Projectors(Arc::new(e)))?;
                Ok((ProjectorSpec::Custom { path }, count))
            }
            (design, None) => {
                let d = match design {
                    Some(DesignField::Builtin(d)) => d,
                    _ => self.defaults.design,
                };
                *design_name = Some(d.name());
                d.check_dim(dim).map_err(JobError::Dim)?;
                match d.count(dim) {
                    Some(count) => Ok((ProjectorSpec::Builtin(d), count)),
                    None => unreachable!("check_dim admits only dimensions whose K fits"),
                }
            }
        }
    }

    /// `counts` or `counts_npy` (a file's length from its header, before
    /// anything is read), and which of the two it was.
    fn counts_field(
        &self,
        obj: &Map<String, Value>,
        spec: &ProjectorSpec,
        dim: usize,
        expected: usize,
    ) -> Result<(Vec<f64>, &'static str), JobError> {
        let has_counts = !matches!(obj.get("counts"), None | Some(Value::Null));
        let has_npy = !matches!(obj.get("counts_npy"), None | Some(Value::Null));
        let needs = needs(spec, dim);
        match (has_counts, has_npy) {
            (true, true) => Err(JobError::BothCounts),
            (false, false) => Err(JobError::NoCounts),
            (true, false) => {
                let Value::Array(a) = &obj["counts"] else {
                    return Err(value_error("counts", "an array of numbers", &obj["counts"]));
                };
                if a.len() != expected {
                    return Err(JobError::CountsLen {
                        len: a.len(),
                        needs,
                        expected,
                    });
                }
                let c = a
                    .iter()
                    .enumerate()
                    .map(|(index, v)| {
                        v.as_f64().ok_or_else(|| JobError::NotANumber {
                            index,
                            value: show(v),
                        })
                    })
                    .collect::<Result<Vec<f64>, JobError>>()?;
                Ok((c, "counts"))
            }
            (false, true) => {
                let path = self
                    .file_field(obj, "counts_npy")?
                    .ok_or(JobError::Missing("counts_npy"))?;
                let len = qst_npy::counts_len(&path).map_err(JobError::CountsNpy)?;
                if len != expected {
                    return Err(JobError::NpyLen {
                        path,
                        len,
                        needs,
                        expected,
                    });
                }
                let c = qst_npy::read_counts_checked(&path, Some(expected))
                    .map_err(JobError::CountsNpy)?;
                Ok((c, "counts_npy"))
            }
        }
    }

    /// A custom projector file is fully validated once per (file, dimension),
    /// after the cheap checks of its line passed.
    fn validate_custom_once(&mut self, spec: &ProjectorSpec, dim: usize) -> Result<(), JobError> {
        let ProjectorSpec::Custom { path } = spec else {
            return Ok(());
        };
        let checked = self
            .custom
            .entry((path.clone(), dim))
            .or_insert_with(|| validate_custom(&self.store, path, dim).map_err(Arc::new));
        match checked {
            Ok(_) => Ok(()),
            Err(e) => Err(JobError::Projectors(Arc::clone(e))),
        }
    }

    /// `bell`, `spectral`: booleans (else `--bell`, `--spectral`); Bell needs
    /// n = m².
    fn analysis_fields(
        &self,
        obj: &Map<String, Value>,
        dim: usize,
    ) -> Result<(bool, bool), JobError> {
        let mut asked = [self.defaults.bell, self.defaults.spectral];
        for (f, on) in ["bell", "spectral"].into_iter().zip(asked.iter_mut()) {
            match obj.get(f) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => *on = *b,
                Some(v) => return Err(value_error(f, "true or false", v)),
            }
        }
        let [bell, spectral] = asked;
        if bell {
            qst_math::bell_side(dim).map_err(JobError::Bell)?;
        }
        Ok((bell, spectral))
    }

    /// `truth` (else `--truth`): the target state, as ρ.
    fn truth_field(
        &mut self,
        obj: &Map<String, Value>,
        dim: usize,
    ) -> Result<Option<Vec<(f64, f64)>>, JobError> {
        let Some(path) = self
            .file_field(obj, "truth")?
            .or_else(|| self.defaults.truth.clone())
        else {
            return Ok(None);
        };
        let key = (path, dim);
        let read = match self.last_truth.take() {
            Some((k, r)) if k == key => r,
            _ => read_truth(&key.0, dim).map_err(Arc::new),
        };
        self.last_truth = Some((key, read.clone()));
        read.map(Some).map_err(JobError::Truth)
    }
}

/// A field whose value is not what it must be.
fn value_error(field: &'static str, expected: &'static str, v: &Value) -> JobError {
    JobError::Value {
        field,
        expected,
        value: show(v),
    }
}

/// The line as a JSON object (a number beyond the doubles names its field).
fn parse_object(trimmed: &[u8]) -> Result<Map<String, Value>, JobError> {
    let value: Value = serde_json::from_slice(trimmed).map_err(|e| {
        if e.to_string().starts_with("number out of range")
            && let Some(field) = field_before(trimmed, e.column())
        {
            return JobError::OutOfRange(field);
        }
        JobError::Json(e)
    })?;
    match value {
        Value::Object(obj) => Ok(obj),
        _ => Err(JobError::NotAnObject),
    }
}

/// `id`: present and a string (its characters are checked by the caller,
/// whose error record then names it).
fn id_field(obj: &Map<String, Value>) -> Result<&str, JobError> {
    match obj.get("id") {
        None | Some(Value::Null) => Err(JobError::Missing("id")),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(v) => Err(value_error("id", "a string", v)),
    }
}

/// Unknown fields: a typo must not silently run the default.
fn known_fields(obj: &Map<String, Value>) -> Result<(), JobError> {
    match obj.keys().find(|f| !KNOWN_FIELDS.contains(&f.as_str())) {
        None => Ok(()),
        Some(bad) => Err(JobError::UnknownField {
            name: show(&Value::from(bad.as_str())),
            nearest: nearest(bad, &KNOWN_FIELDS),
            known: &KNOWN_FIELDS,
        }),
    }
}

/// `method`: a name or a list of names, if given.
fn method_field(obj: &Map<String, Value>) -> Result<Option<Vec<Method>>, JobError> {
    match obj.get("method") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_method_field(v).map(Some),
    }
}

/// `dim`: an integer from 2 to [`MAX_DIM`] (the message says 256: a unit
/// test checks the two agree).
const DIM_RANGE: &str = "an integer from 2 to 256";

/// `dim`: an integer from 2 to [`MAX_DIM`].
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // cast once whole and in range
fn dim_field(obj: &Map<String, Value>) -> Result<usize, JobError> {
    match obj.get("dim") {
        None | Some(Value::Null) => Err(JobError::Missing("dim")),
        Some(v) => match v.as_f64() {
            Some(d) if d.fract() == 0.0 && (2.0..=MAX_DIM as f64).contains(&d) => Ok(d as usize),
            _ => Err(value_error("dim", DIM_RANGE, v)),
        },
    }
}

/// `max_iters`, `tol` of `mle` (else the defaults).
// `max_iters` is cast once whole and in [1, 2^64] (2^64 saturates to u64::MAX).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn iteration_fields(obj: &Map<String, Value>) -> Result<(u64, f64), JobError> {
    let max_iters = match obj.get("max_iters") {
        None | Some(Value::Null) => DEFAULT_MAX_ITERS,
        Some(v) => match v.as_f64() {
            Some(x) if x.fract() == 0.0 && x >= 1.0 && x <= u64::MAX as f64 => x as u64,
            _ => return Err(value_error("max_iters", "a whole number >= 1", v)),
        },
    };
    let tol = match obj.get("tol") {
        None | Some(Value::Null) => DEFAULT_TOL,
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => x,
            _ => return Err(value_error("tol", "a number > 0", v)),
        },
    };
    Ok((max_iters, tol))
}

/// The `design` field of a line: a built-in design, or `custom`.
#[derive(Clone, Copy)]
enum DesignField {
    Builtin(Design),
    Custom,
}

fn needs(spec: &ProjectorSpec, dim: usize) -> SetNeeds {
    match spec {
        ProjectorSpec::Builtin(design) => SetNeeds::Design {
            dim,
            design: *design,
        },
        ProjectorSpec::Custom { .. } => SetNeeds::Custom,
    }
}

/// The `method` field: a name, or a non-empty list of distinct names.
fn parse_method_field(v: &Value) -> Result<Vec<Method>, JobError> {
    let names: Vec<&Value> = match v {
        Value::Array(a) if !a.is_empty() => a.iter().collect(),
        Value::Array(_) => return Err(JobError::NoMethods),
        v => vec![v],
    };
    let mut out = Vec::new();
    for n in names {
        let Value::String(s) = n else {
            return Err(JobError::NotAMethodName(show(n)));
        };
        let m = Method::parse(s)?;
        if out.contains(&m) {
            return Err(JobError::MethodTwice(s.clone()));
        }
        out.push(m);
    }
    Ok(out)
}

/// Validates a custom projector file (docs/reference.md) through the store and
/// returns its number of projectors K.
fn validate_custom(store: &Store, path: &Path, dim: usize) -> Result<usize, CustomError> {
    store.validate_custom(path, dim)?;
    custom_shape(path, dim)
}

/// K of a custom projector file, from its header (shape and length checked,
/// nothing read).
fn custom_count(store: &Store, path: &Path, dim: usize) -> Result<usize, CustomError> {
    let bytes = std::fs::metadata(path)
        .map_err(|source| CustomError::Metadata {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if bytes > store.config.max_bytes {
        return Err(CustomError::Store(qst_store::StoreError::OverBudget {
            path: path.to_path_buf(),
            bytes,
            budget: store.config.max_bytes,
        }));
    }
    custom_shape(path, dim)
}

/// K of a custom projector file whose header says (K, dim, dim), K ≥ dim².
fn custom_shape(path: &Path, dim: usize) -> Result<usize, CustomError> {
    let map = qst_npy::MappedC16::open(path, None)?;
    match map.shape() {
        [k, a, b] if *a == dim && *b == dim && *k >= dim * dim => Ok(*k),
        s => Err(CustomError::Shape {
            path: path.to_path_buf(),
            shape: s.to_vec(),
            dim,
        }),
    }
}

/// The JSON object key that precedes 1-based `column` of `line`: the field a
/// value at that column belongs to.
fn field_before(line: &[u8], column: usize) -> Option<String> {
    let upto = &line[..column.min(line.len())];
    let colon = upto.iter().rposition(|&b| b == b':')?;
    let key_end = upto[..colon].iter().rposition(|&b| b == b'"')?;
    let key_start = upto[..key_end].iter().rposition(|&b| b == b'"')?;
    let key = std::str::from_utf8(&upto[key_start + 1..key_end]).ok()?;
    (!key.is_empty() && key.len() <= 40).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use qst_store::StoreConfig;

    fn parser(dir: &Path) -> JobParser {
        let store = Store::new(StoreConfig {
            dir: dir.join("cache"),
            max_bytes: 1 << 30,
        });
        JobParser::new(dir.to_path_buf(), dir.join("out"), store)
    }

    fn err_of(e: Option<Entry>) -> ErrorRecord {
        match e {
            Some(Entry::Error(r)) => r,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn good_line_becomes_a_job() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = parser(tmp.path());
        let e = p.parse_single(3, br#"{"id":"q2-1","dim":2,"counts":[1,2,3,4.5],"method":"linear","tol":1e-6,"max_iters":50}"#);
        let Some(Entry::Job(j)) = e else {
            panic!("{e:?}")
        };
        assert_eq!(j.line, 3);
        assert_eq!(j.counts, vec![1.0, 2.0, 3.0, 4.5]);
        assert_eq!(j.method, Method::Linear);
        assert_eq!(j.projectors, ProjectorSpec::Builtin(Design::Nopovm));
        assert_eq!((j.max_iters, j.tol), (50, 1e-6));
        assert_eq!(j.rho_path, tmp.path().join("out/rho/q2-1.npy"));
        let Some(Entry::Job(j)) =
            p.parse_single(4, br#"{"id":"q2-2","dim":2.0,"counts":[0,0,0,1]}"#)
        else {
            panic!()
        };
        assert_eq!(
            (j.method, j.max_iters, j.tol),
            (Method::Mle, DEFAULT_MAX_ITERS, DEFAULT_TOL)
        );
        assert!(p.parse_single(5, b"   ").is_none());
        assert!(p.parse_single(6, b"  # a comment").is_none());
    }

    #[test]
    #[allow(clippy::too_many_lines)] // one case per field, in a row
    fn each_bad_field_gets_its_own_sentence() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = parser(tmp.path());
        assert!(matches!(
            p.parse_single(12, br#"{"id":"a","dim":2,"counts":[1,1,1,1]}"#),
            Some(Entry::Job(_))
        ));
        let cases: &[(&[u8], &str, Option<&str>)] = &[
            (b"{not json", "not valid JSON", None),
            (b"[1,2]", "not a JSON object", None),
            (
                br#"{"dim":2,"counts":[1,1,1,1]}"#,
                "field id is missing",
                None,
            ),
            (
                br#"{"id":7,"dim":2,"counts":[1,1,1,1]}"#,
                "field id must be a string",
                None,
            ),
            (
                br#"{"id":"a","dim":2,"counts":[1,1,1,1]}"#,
                "field id: duplicate id, first used on line 12",
                Some("a"),
            ),
            (
                br#"{"id":"a/b","dim":2,"counts":[1,1,1,1]}"#,
                "field id must be",
                Some("a/b"),
            ),
            (
                br#"{"id":"b","counts":[1,1,1,1]}"#,
                "field dim is missing",
                Some("b"),
            ),
            (
                br#"{"id":"c","dim":1,"counts":[1]}"#,
                "field dim must be an integer",
                Some("c"),
            ),
            (
                br#"{"id":"c2","dim":"4","counts":[1]}"#,
                "field dim must be an integer",
                Some("c2"),
            ),
            (
                br#"{"id":"d","dim":2,"counts":[1,1,1]}"#,
                "field counts has 3 entries, but dim 2 (design nopovm) needs 4",
                Some("d"),
            ),
            (
                br#"{"id":"e","dim":2,"counts":[1,-1,1,1]}"#,
                "field counts[1] is -1, but counts must be >= 0",
                Some("e"),
            ),
            (
                br#"{"id":"f","dim":2,"counts":[1,"x",1,1]}"#,
                "field counts[1] is \"x\", not a number",
                Some("f"),
            ),
            (
                br#"{"id":"g","dim":2,"counts":[0,0,0,0]}"#,
                "field counts: the counts are all zero",
                Some("g"),
            ),
            (
                br#"{"id":"h","dim":2,"counts":[1,1,1,1],"counts_npy":"x.npy"}"#,
                "fields counts and counts_npy are both given",
                Some("h"),
            ),
            (
                br#"{"id":"i","dim":2}"#,
                "field counts is missing",
                Some("i"),
            ),
            (
                br#"{"id":"j","dim":2,"counts":[1,1,1,1],"method":"bayes"}"#,
                "field method: unknown method \"bayes\"",
                Some("j"),
            ),
            (
                br#"{"id":"k","dim":2,"counts":[1,1,1,1],"design":"tetra"}"#,
                "field design: unknown design \"tetra\" (known: \"nopovm\", \"mub\", \"sic\")",
                Some("k"),
            ),
            (
                br#"{"id":"l","dim":2,"counts_npy":"nope.npy"}"#,
                "field counts_npy: file",
                Some("l"),
            ),
            (
                br#"{"id":"m","dim":2,"counts":[1,1,1,1],"truth":"nope.npy"}"#,
                "field truth: file",
                Some("m"),
            ),
            (
                br#"{"id":"n","dim":2,"counts":[1,1,1,1],"projectors":"nope.npy"}"#,
                "field projectors: file",
                Some("n"),
            ),
            (
                br#"{"id":"o","dim":2,"counts":[1,1,1,1],"max_iters":0}"#,
                "field max_iters must be",
                Some("o"),
            ),
            (
                br#"{"id":"p","dim":2,"counts":[1,1,1,1],"tol":-1}"#,
                "field tol must be",
                Some("p"),
            ),
            (
                br#"{"id":"q","dim":2,"counts":{"a":1}}"#,
                "field counts must be an array",
                Some("q"),
            ),
        ];
        for (i, (text, want, id)) in cases.iter().enumerate() {
            let line = 20 + i as u64;
            let r = err_of(p.parse_single(line, text));
            assert_eq!(r.line, line);
            assert_eq!(r.id.as_deref(), *id, "{}", String::from_utf8_lossy(text));
            let msg = r.error;
            assert!(msg.starts_with(&format!("line {line}")), "{msg}");
            assert!(msg.contains(want), "{msg:?} should contain {want:?}");
            assert!(!msg.contains('\n'));
        }
    }

    /// The `nopovm` set of n = 2 plus `extra` copies of Π = e1e1†, dense.
    fn custom_set(extra: usize) -> Vec<qst_math::C64> {
        use qst_math::C64;
        let h = 1.0 / 2f64.sqrt();
        let z = C64::new(0.0, 0.0);
        let mut kets = vec![
            [C64::new(1.0, 0.0), z],
            [z, C64::new(1.0, 0.0)],
            [C64::new(h, 0.0), C64::new(h, 0.0)],
            [C64::new(h, 0.0), C64::new(0.0, -h)],
        ];
        kets.extend(std::iter::repeat_n([z, C64::new(1.0, 0.0)], extra));
        kets.iter()
            .flat_map(|k| {
                [
                    k[0] * k[0].conj(),
                    k[0] * k[1].conj(),
                    k[1] * k[0].conj(),
                    k[1] * k[1].conj(),
                ]
            })
            .collect()
    }

    #[test]
    fn custom_projector_files_are_validated_once_and_set_k() {
        let tmp = tempfile::tempdir().unwrap();
        let good = custom_set(1);
        qst_npy::write_c16(&tmp.path().join("five.npy"), &[5, 2, 2], &good).unwrap();
        let mut bad = custom_set(0);
        bad[3] = qst_math::C64::new(-1.0, 0.0); // Π_0 = diag(1, -1): not PSD
        qst_npy::write_c16(&tmp.path().join("bad.npy"), &[4, 2, 2], &bad).unwrap();
        let mut p = parser(tmp.path());
        for i in 0..3 {
            let line =
                format!(r#"{{"id":"c{i}","dim":2,"counts":[1,2,3,4,5],"projectors":"five.npy"}}"#);
            let Some(Entry::Job(j)) = p.parse_single(i + 1, line.as_bytes()) else {
                panic!("line {i}")
            };
            assert_eq!(
                j.projectors,
                ProjectorSpec::Custom {
                    path: tmp.path().join("five.npy")
                }
            );
            assert_eq!(j.counts.len(), 5);
        }
        let r = err_of(p.parse_single(
            4,
            br#"{"id":"c4","dim":2,"counts":[1,2,3,4],"projectors":"five.npy"}"#,
        ));
        assert!(
            r.error
                .contains("field counts has 4 entries, but the custom projector set needs 5")
        );
        assert_eq!(r.design.as_deref(), Some("custom"));
        for i in 5..7 {
            let line =
                format!(r#"{{"id":"c{i}","dim":2,"counts":[1,2,3,4],"projectors":"bad.npy"}}"#);
            let r = err_of(p.parse_single(i, line.as_bytes()));
            let msg = r.error;
            assert!(
                msg.contains("field projectors") && msg.contains("semidefinite"),
                "{msg}"
            );
        }
        let r = err_of(p.parse_single(8, br#"{"id":"c8","dim":2,"counts":[1,2,3,4,5],"projectors":"five.npy","design":"nopovm"}"#));
        assert!(r.error.contains("field design"));
        // Two files, each validated once, however many jobs name them.
        assert_eq!(p.store.validations(), 2);
    }

    #[test]
    fn the_dim_message_names_max_dim() {
        assert!(DIM_RANGE.ends_with(&format!("to {MAX_DIM}")));
    }

    #[test]
    fn error_records_carry_what_is_known() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = parser(tmp.path());
        let r = err_of(p.parse_single(1, br#"{"id":"x","dim":3,"method":"linear","counts":[1]}"#));
        assert_eq!(r.dim, Some(3));
        assert_eq!(r.method.as_deref(), Some("linear"));
        assert_eq!(r.design.as_deref(), Some("nopovm"));
    }

    fn near_valid_line() -> impl Strategy<Value = String> {
        let id = prop_oneof![
            Just("\"ok-1\"".to_string()),
            "\\PC{0,8}".prop_map(|s| Value::from(s).to_string()),
            Just("null".to_string()),
            Just("3".to_string()),
        ];
        let dim = prop_oneof![
            Just("2".to_string()),
            (-3i64..300).prop_map(|d| d.to_string()),
            Just("2.5".to_string()),
            Just("1e300".to_string()),
            Just("\"2\"".to_string()),
        ];
        let count = prop_oneof![
            (-5.0f64..5.0).prop_map(|x| x.to_string()),
            Just("0".to_string()),
            Just("null".to_string()),
            Just("[]".to_string()),
            Just("1e308".to_string()),
        ];
        let extra = prop_oneof![
            Just(String::new()),
            Just(",\"method\":\"linear\"".to_string()),
            Just(",\"design\":\"custom\"".to_string()),
            Just(",\"max_iters\":-1".to_string()),
            Just(",\"tol\":1e999".to_string()),
            Just(",\"counts_npy\":\"\"".to_string()),
        ];
        (id, dim, proptest::collection::vec(count, 0..10), extra).prop_map(
            |(id, dim, counts, extra)| {
                format!(
                    "{{\"id\":{id},\"dim\":{dim},\"counts\":[{}]{extra}}}",
                    counts.join(",")
                )
            },
        )
    }

    #[test]
    fn targets_as_matrix_ket_or_amplitude_phase_text() {
        use qst_math::C64;
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let s = 0.5f64.sqrt();
        // |+i⟩ = (|0⟩ + i|1⟩)/√2 in each form.
        let want = [(0.5, 0.0), (0.0, -0.5), (0.0, 0.5), (0.5, 0.0)];
        let close = |got: &[(f64, f64)]| {
            got.iter()
                .zip(want)
                .all(|(a, b)| (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12)
        };
        let m: Vec<C64> = want.iter().map(|&(r, i)| C64::new(r, i)).collect();
        qst_npy::write_c16(&d.join("rho.npy"), &[2, 2], &m).unwrap();
        assert!(close(&read_truth(&d.join("rho.npy"), 2).unwrap()));
        // A ket, not normalized.
        let ket = [C64::new(3.0 * s, 0.0), C64::new(0.0, 3.0 * s)];
        qst_npy::write_c16(&d.join("ket.npy"), &[2], &ket).unwrap();
        assert!(close(&read_truth(&d.join("ket.npy"), 2).unwrap()));
        // The lab's text form: amplitude,phase (units of π), any extension.
        std::fs::write(d.join("t.txt"), "# target\n2, 0\n2,0.5\n").unwrap();
        assert!(close(&read_truth(&d.join("t.txt"), 2).unwrap()));
        std::fs::write(d.join("t2"), "1,1\n1,-0.5\r\n").unwrap();
        let t2 = read_truth(&d.join("t2"), 2).unwrap();
        assert!(
            (t2[1].1 + 0.5).abs() < 1e-12 && (t2[1].0).abs() < 1e-12,
            "{t2:?}"
        );
        // A real ket (<f8).
        qst_npy::write_f8(&d.join("real.npy"), &[1.0, 1.0]).unwrap();
        assert!((read_truth(&d.join("real.npy"), 2).unwrap()[1].0 - 0.5).abs() < 1e-12);

        let err = |name: &str, n: usize| read_truth(&d.join(name), n).unwrap_err().to_string();
        assert!(err("ket.npy", 3).contains("expected (3,) for a ket"));
        let e = err("t.txt", 3);
        assert!(
            e.contains("has 2 amplitude,phase lines, but dim 3 needs 3"),
            "{e}"
        );
        std::fs::write(d.join("zero.txt"), "0,0\n0,1\n").unwrap();
        assert!(err("zero.txt", 2).contains("zero state vector"));
        qst_npy::write_c16(&d.join("zero.npy"), &[2], &[C64::new(0.0, 0.0); 2]).unwrap();
        assert!(err("zero.npy", 2).contains("zero ket vector"));
        std::fs::write(d.join("bad.txt"), "1;0\n1;0\n").unwrap();
        assert!(err("bad.txt", 2).contains("line 1 of"));
        let h = [
            C64::new(0.5, 0.0),
            C64::new(0.3, 0.0),
            C64::new(0.0, 0.0),
            C64::new(0.5, 0.0),
        ];
        qst_npy::write_c16(&d.join("h.npy"), &[2, 2], &h).unwrap();
        assert!(err("h.npy", 2).contains("is not Hermitian"));
        let t = [
            C64::new(0.6, 0.0),
            C64::new(0.0, 0.0),
            C64::new(0.0, 0.0),
            C64::new(0.6, 0.0),
        ];
        qst_npy::write_c16(&d.join("t.npy"), &[2, 2], &t).unwrap();
        assert!(err("t.npy", 2).contains("trace"));
    }

    #[test]
    fn bell_and_spectral_fields_override_the_flags() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = parser(tmp.path()).with_defaults(LineDefaults {
            bell: true,
            bootstrap: 7,
            ..Default::default()
        });
        let c4 = "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]";
        let line = format!(r#"{{"id":"a","dim":4,"counts":{c4},"spectral":true}}"#);
        let Some(Entry::Job(j)) = p.parse_single(1, line.as_bytes()) else {
            panic!()
        };
        assert!(j.analysis.bell && j.analysis.spectral);
        assert_eq!(j.analysis.bootstrap, 7);
        let line = format!(r#"{{"id":"b","dim":4,"counts":{c4},"bell":false}}"#);
        let Some(Entry::Job(j)) = p.parse_single(2, line.as_bytes()) else {
            panic!()
        };
        assert!(!j.analysis.bell && !j.analysis.spectral);
        // --bell on a dimension that is not a square: that line's error.
        let r = err_of(p.parse_single(3, br#"{"id":"c","dim":2,"counts":[1,1,1,1]}"#));
        assert_eq!(
            Some(r.error.as_str()),
            Some("line 3 (id \"c\"): field bell: dimension 2 is not a square m² (m ≥ 2)")
        );
        let line = format!(r#"{{"id":"d","dim":4,"counts":{c4},"bell":1}}"#);
        let r = err_of(p.parse_single(4, line.as_bytes()));
        assert!(r.error.contains("field bell must be true or false"));
    }

    proptest! {
        #[test]
        fn job_line_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let tmp = tempfile::tempdir().unwrap();
            let mut p = parser(tmp.path());
            let _ = p.parse_single(1, &bytes);
        }

        #[test]
        fn job_line_parser_never_panics_on_near_valid_json(line in near_valid_line()) {
            let tmp = tempfile::tempdir().unwrap();
            let mut p = parser(tmp.path());
            let e = p.parse_single(1, line.as_bytes());
            prop_assert!(e.is_some());
        }
    }
}
