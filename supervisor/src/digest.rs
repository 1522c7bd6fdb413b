//! The error digest a run ends with on stderr: the most frequent kinds of
//! error in `results.jsonl`, with counts and one example each, and where the
//! full list is.
//!
//! An error's kind is its message with the `line N (id "…"): ` prefix taken
//! off and every number and double-quoted value replaced (`N`, `"…"`), so
//! `line 7 (id "q4"): field counts has 15 entries, but dim 4 needs 16` is of
//! kind `field counts has N entries, but dim N needs N`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::results::RESULTS_FILE;

/// How many kinds the digest shows.
pub const DIGEST_KINDS: usize = 5;

/// One kind of error: how often, and the first message of that kind.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorKind {
    pub kind: String,
    pub count: u64,
    pub example: String,
}

/// The errors of a results file, by kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Digest {
    /// Result lines read.
    pub results: u64,
    /// Of which errors.
    pub errors: u64,
    /// Most frequent first (ties: first seen first).
    pub kinds: Vec<ErrorKind>,
}

/// The kind of an error message (see the module's documentation).
#[must_use]
pub fn error_kind(msg: &str) -> String {
    let msg = strip_line_prefix(msg);
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.chars().peekable();
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        if c == '"' {
            // A quoted value, up to the closing quote (backslash escapes).
            let mut escaped = false;
            for q in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if q == '\\' {
                    escaped = true;
                } else if q == '"' {
                    break;
                }
            }
            out.push_str("\"…\"");
            prev = Some('"');
            continue;
        }
        let sign_of_number = (c == '-' || c == '+')
            && chars.peek().is_some_and(char::is_ascii_digit)
            && !prev.is_some_and(char::is_alphanumeric);
        if c.is_ascii_digit() || sign_of_number {
            // A number: digits, one decimal point, an exponent.
            while let Some(&d) = chars.peek() {
                let decimal_point = d == '.' && {
                    let mut look = chars.clone();
                    look.next();
                    look.next().is_some_and(|x| x.is_ascii_digit())
                };
                if d.is_ascii_digit() || decimal_point {
                    chars.next();
                } else if d == 'e' || d == 'E' {
                    // An exponent only when digits (or a sign and digits) follow.
                    let mut look = chars.clone();
                    look.next();
                    let next = look.next();
                    let after = look.next();
                    let is_exp = next.is_some_and(|x| x.is_ascii_digit())
                        || (matches!(next, Some('-' | '+'))
                            && after.is_some_and(|x| x.is_ascii_digit()));
                    if !is_exp {
                        break;
                    }
                    chars.next();
                    if matches!(chars.peek(), Some('-' | '+')) {
                        chars.next();
                    }
                } else {
                    break;
                }
            }
            out.push('N');
            prev = Some('N');
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// `line 7 (id "q4"): rest` → `rest`; `line 7: rest` → `rest`.
fn strip_line_prefix(msg: &str) -> &str {
    let Some(rest) = msg.strip_prefix("line ") else {
        return msg;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return msg;
    }
    let mut rest = &rest[digits..];
    if let Some(r) = rest.strip_prefix(" (id ") {
        // The id is a JSON value; the prefix ends at the first "): ".
        match r.find("): ") {
            Some(i) => rest = &r[i + 1..],
            None => return msg,
        }
    }
    rest.strip_prefix(": ").unwrap_or(msg)
}

/// Reads `out_dir/results.jsonl` and groups its errors by kind. A missing
/// file is an empty digest; unreadable lines are skipped.
pub fn digest(out_dir: &Path) -> Digest {
    let mut d = Digest::default();
    let Ok(f) = File::open(out_dir.join(RESULTS_FILE)) else {
        return d;
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut kinds: Vec<ErrorKind> = Vec::new();
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        d.results += 1;
        if v.get("status").and_then(|s| s.as_str()) == Some("ok") {
            continue;
        }
        d.errors += 1;
        let msg = v
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("(no error message)");
        let kind = error_kind(msg);
        if let Some(&i) = index.get(&kind) {
            kinds[i].count += 1;
        } else {
            index.insert(kind.clone(), kinds.len());
            kinds.push(ErrorKind {
                kind,
                count: 1,
                example: msg.to_string(),
            });
        }
    }
    // Stable: ties keep the order first seen.
    kinds.sort_by_key(|k| std::cmp::Reverse(k.count));
    d.kinds = kinds;
    d
}

impl Digest {
    /// The digest's text (empty when there is no error): a head line, up to
    /// [`DIGEST_KINDS`] kinds with counts and an example, and where the full
    /// list is.
    #[must_use]
    pub fn render(&self, out_dir: &Path) -> String {
        if self.errors == 0 {
            return String::new();
        }
        let mut s = format!(
            "qst: {} of {} results are errors ({} kind{}){}:\n",
            self.errors,
            self.results,
            self.kinds.len(),
            if self.kinds.len() == 1 { "" } else { "s" },
            if self.kinds.len() > DIGEST_KINDS {
                format!("; the {DIGEST_KINDS} most frequent")
            } else {
                String::new()
            }
        );
        let width = self.kinds.first().map_or(1, |k| k.count.to_string().len());
        for k in self.kinds.iter().take(DIGEST_KINDS) {
            s += &format!("  {:>width$} × {}\n", k.count, k.kind);
            s += &format!("  {:>width$}   e.g. {}\n", "", k.example);
        }
        s += &format!(
            "qst: every error is in {} (status \"error\") and {} (column error)\n",
            out_dir.join(RESULTS_FILE).display(),
            out_dir.join("summary.csv").display()
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_drop_the_line_prefix_numbers_and_quoted_values() {
        assert_eq!(
            error_kind("line 7 (id \"q4\"): field counts has 15 entries, but dim 4 needs 16"),
            "field counts has N entries, but dim N needs N"
        );
        assert_eq!(
            error_kind("line 12: not valid JSON, at \"x\""),
            "not valid JSON, at \"…\""
        );
        assert_eq!(
            error_kind("worker died 4 times on this job: signal 9"),
            "worker died N times on this job: signal N"
        );
        assert_eq!(
            error_kind("count -1.5e-3 is negative; tol 1e-300 of n64."),
            "count N is negative; tol N of nN."
        );
        assert_eq!(error_kind("line x: as is"), "line x: as is");
    }

    #[test]
    fn the_digest_counts_kinds_most_frequent_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..3 {
            text += &format!(
                "{{\"line\":{i},\"status\":\"error\",\"error\":\"line {i}: dim {i} is odd\"}}\n"
            );
        }
        text += "{\"line\":9,\"status\":\"error\",\"error\":\"line 9: other\"}\n";
        text += "{\"line\":10,\"status\":\"ok\"}\n";
        std::fs::write(dir.path().join(RESULTS_FILE), text).unwrap();
        let d = digest(dir.path());
        assert_eq!((d.results, d.errors), (5, 4));
        assert_eq!(d.kinds[0].kind, "dim N is odd");
        assert_eq!(d.kinds[0].count, 3);
        assert_eq!(d.kinds[0].example, "line 0: dim 0 is odd");
        assert_eq!(d.kinds[1].kind, "other");
        let r = d.render(dir.path());
        assert!(
            r.starts_with("qst: 4 of 5 results are errors (2 kinds):\n"),
            "{r}"
        );
        assert!(r.contains("  3 × dim N is odd\n"), "{r}");
        assert!(r.contains("e.g. line 0: dim 0 is odd"), "{r}");
        assert!(r.contains("summary.csv"), "{r}");
    }
}
