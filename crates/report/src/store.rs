//! The resume cache: `DIR/results.jsonl` (one [`PointRecord`] per line) and its flat companion
//! `DIR/results.csv` (one row per point and task).
//!
//! Every update rewrites both files under a temporary name and renames them into place, so an
//! interrupted sweep leaves either the old or the new file, never half a line. A rerun loads the
//! file and skips every point whose [`PointKey`] equals one already recorded
//! ([`ResultsStore::finished`]); any changed setting gives a different key, so an old result is
//! never taken for a new point.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{io_err, write_atomic, ReportError, Result};
use crate::record::{fmt_sparsity, PointKey, PointRecord};

/// File name of the records.
pub const RESULTS_JSONL: &str = "results.jsonl";
/// File name of the flat table.
pub const RESULTS_CSV: &str = "results.csv";

/// The records of one output directory.
#[derive(Debug, Clone)]
pub struct ResultsStore {
    dir: PathBuf,
    records: Vec<PointRecord>,
}

impl ResultsStore {
    /// Opens `dir` (created if missing) and loads `dir/results.jsonl` if it exists.
    ///
    /// # Errors
    /// An uncreatable directory, an unreadable file, or a malformed line (naming file and line).
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_err(dir, "cannot create directory"))?;
        Self::peek(dir)
    }

    /// Loads `dir/results.jsonl` if it exists, without creating anything (for a dry run).
    ///
    /// # Errors
    /// An unreadable file or a malformed line (naming file and line).
    pub fn peek(dir: &Path) -> Result<Self> {
        let path = dir.join(RESULTS_JSONL);
        let records = if path.exists() {
            read_jsonl(&path)?
        } else {
            Vec::new()
        };
        Ok(ResultsStore {
            dir: dir.to_path_buf(),
            records,
        })
    }

    /// Loads `dir/results.jsonl`, which must exist and hold at least one record.
    ///
    /// # Errors
    /// A missing, unreadable, malformed or empty file.
    pub fn load_existing(dir: &Path) -> Result<Self> {
        let path = dir.join(RESULTS_JSONL);
        if !path.is_file() {
            return Err(ReportError::Empty {
                path,
                reason: "no such file (run `secateurs sweep` or `secateurs compare` first)".into(),
            });
        }
        let records = read_jsonl(&path)?;
        if records.is_empty() {
            return Err(ReportError::Empty {
                path,
                reason: "no finished points".into(),
            });
        }
        Ok(ResultsStore {
            dir: dir.to_path_buf(),
            records,
        })
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every record, in the order finished.
    pub fn records(&self) -> &[PointRecord] {
        &self.records
    }

    /// The record of exactly this key, if the point is finished. The id is recomputed from each
    /// stored key, and the keys are compared field by field.
    pub fn finished(&self, key: &PointKey) -> Option<&PointRecord> {
        self.records.iter().find(|r| &r.key == key)
    }

    /// Adds a record (replacing one with the same key) and rewrites both files.
    ///
    /// # Errors
    /// A file that cannot be written or renamed.
    pub fn insert(&mut self, record: PointRecord) -> Result<()> {
        self.records.retain(|r| r.key != record.key);
        self.records.push(record);
        self.save()
    }

    /// Rewrites `results.jsonl` and `results.csv`.
    ///
    /// # Errors
    /// A file that cannot be written or renamed.
    pub fn save(&self) -> Result<()> {
        let mut text = String::new();
        for r in &self.records {
            text.push_str(&serde_json::to_string(r).unwrap_or_default());
            text.push('\n');
        }
        write_atomic(&self.dir.join(RESULTS_JSONL), text.as_bytes())?;
        let csv = write_csv(&csv_rows(&self.records));
        write_atomic(&self.dir.join(RESULTS_CSV), csv.as_bytes())
    }
}

/// Reads a `results.jsonl`: one record per non-empty line. Each record's `id` is recomputed
/// from its key (it is derived data), so records written before a key field existed still load;
/// such a field takes its default, and the record matches no current point.
///
/// # Errors
/// An unreadable file or a malformed line, naming file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<PointRecord>> {
    let text = std::fs::read_to_string(path).map_err(io_err(path, "cannot read"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut r: PointRecord = serde_json::from_str(line).map_err(|e| ReportError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        r.id = r.key.id();
        out.push(r);
    }
    Ok(out)
}

/// One row of `results.csv`: a point and one of its tasks (or the point alone when it has no
/// tasks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvRow {
    /// Point id.
    pub id: String,
    /// Model as given.
    pub model: String,
    /// Model content hash.
    pub model_hash: String,
    /// Method (`dense`, `magnitude`, `wanda`, `sparsegpt`).
    pub method: String,
    /// Scope.
    pub scope: String,
    /// `unstructured` or `N:M`.
    pub pattern: String,
    /// Target sparsity.
    pub sparsity: f64,
    /// Measured sparsity of all decoder linear weights.
    pub achieved_sparsity: f64,
    /// Calibration sequences (empty when not calibrated).
    pub nsamples: Option<usize>,
    /// Calibration tokens per sequence.
    pub seqlen: Option<usize>,
    /// Calibration seed.
    pub calib_seed: Option<u64>,
    /// Items requested for this row's task.
    pub limit: Option<usize>,
    /// Evaluation seed.
    pub eval_seed: u64,
    /// Model parameters.
    pub params: u64,
    /// Perplexity.
    pub perplexity: Option<f64>,
    /// Pruning seconds.
    pub prune_s: f64,
    /// Evaluation seconds.
    pub eval_s: f64,
    /// Task name (empty when the point has no tasks).
    pub task: String,
    /// Task family.
    pub family: String,
    /// Primary metric.
    pub metric: String,
    /// Accuracy.
    pub accuracy: Option<f64>,
    /// 95 % interval, low end.
    pub lo: Option<f64>,
    /// 95 % interval, high end.
    pub hi: Option<f64>,
    /// Items.
    pub n: Option<usize>,
    /// Chance level.
    pub chance: Option<f64>,
}

const CSV_HEADER: [&str; 25] = [
    "id",
    "model",
    "model_hash",
    "method",
    "scope",
    "pattern",
    "sparsity",
    "achieved_sparsity",
    "nsamples",
    "seqlen",
    "calib_seed",
    "limit",
    "eval_seed",
    "params",
    "perplexity",
    "prune_s",
    "eval_s",
    "task",
    "family",
    "metric",
    "accuracy",
    "lo",
    "hi",
    "n",
    "chance",
];

/// The flat rows of some records.
pub fn csv_rows(records: &[PointRecord]) -> Vec<CsvRow> {
    let mut rows = Vec::new();
    for r in records {
        let k = &r.key;
        let base = CsvRow {
            id: r.id.clone(),
            model: r.model.clone(),
            model_hash: k.model_hash.clone(),
            method: k.method.clone(),
            scope: k.scope.clone(),
            pattern: k.pattern.clone(),
            sparsity: k.sparsity,
            achieved_sparsity: r.achieved_sparsity,
            nsamples: k.calibration.as_ref().map(|c| c.nsamples),
            seqlen: k.calibration.as_ref().map(|c| c.seqlen),
            calib_seed: k.calibration.as_ref().map(|c| c.seed),
            limit: None,
            eval_seed: k.eval_seed,
            params: r.params,
            perplexity: r.perplexity,
            prune_s: r.prune_seconds,
            eval_s: r.eval_seconds,
            task: String::new(),
            family: String::new(),
            metric: String::new(),
            accuracy: None,
            lo: None,
            hi: None,
            n: None,
            chance: None,
        };
        if r.tasks.is_empty() {
            rows.push(base);
            continue;
        }
        for t in &r.tasks {
            rows.push(CsvRow {
                limit: k.limits.get(&t.task).copied(),
                task: t.task.clone(),
                family: t.family.clone(),
                metric: t.metric.clone(),
                accuracy: Some(t.accuracy),
                lo: Some(t.lo),
                hi: Some(t.hi),
                n: Some(t.n),
                chance: t.chance,
                ..base.clone()
            });
        }
    }
    rows
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Renders rows as CSV (RFC 4180 quoting; floats in Rust's shortest round-trip form, so reading
/// them back gives the same numbers).
pub fn write_csv(rows: &[CsvRow]) -> String {
    let mut s = CSV_HEADER.join(",");
    s.push('\n');
    for r in rows {
        let fields = [
            csv_field(&r.id),
            csv_field(&r.model),
            csv_field(&r.model_hash),
            csv_field(&r.method),
            csv_field(&r.scope),
            csv_field(&r.pattern),
            r.sparsity.to_string(),
            r.achieved_sparsity.to_string(),
            opt(&r.nsamples),
            opt(&r.seqlen),
            opt(&r.calib_seed),
            opt(&r.limit),
            r.eval_seed.to_string(),
            r.params.to_string(),
            opt(&r.perplexity),
            r.prune_s.to_string(),
            r.eval_s.to_string(),
            csv_field(&r.task),
            csv_field(&r.family),
            csv_field(&r.metric),
            opt(&r.accuracy),
            opt(&r.lo),
            opt(&r.hi),
            opt(&r.n),
            opt(&r.chance),
        ];
        s.push_str(&fields.join(","));
        s.push('\n');
    }
    s
}

/// CSV records as `(line number, fields)`, or the line and reason of a syntax error.
type CsvRecords = std::result::Result<Vec<(usize, Vec<String>)>, (usize, String)>;

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas, doubled
/// quotes and newlines). Returns `(line number, fields)` per record.
fn split_csv(text: &str) -> CsvRecords {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut line = 1usize;
    let mut start_line = 1usize;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    cur.push(c);
                }
                _ => cur.push(c),
            }
            continue;
        }
        match c {
            '"' if cur.is_empty() => quoted = true,
            ',' => fields.push(std::mem::take(&mut cur)),
            '\r' => {}
            '\n' => {
                fields.push(std::mem::take(&mut cur));
                out.push((start_line, std::mem::take(&mut fields)));
                line += 1;
                start_line = line;
                any = false;
            }
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err((start_line, "unterminated quoted field".into()));
    }
    if any {
        fields.push(cur);
        out.push((start_line, fields));
    }
    Ok(out)
}

/// Parses CSV written by [`write_csv`].
///
/// # Errors
/// [`ReportError::Parse`] naming `path`, the line and the column of a bad header, a wrong
/// number of fields or a malformed number.
pub fn read_csv(path: &Path, text: &str) -> Result<Vec<CsvRow>> {
    let bad = |line: usize, reason: String| ReportError::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let records = split_csv(text).map_err(|(l, r)| bad(l, r))?;
    let mut it = records.into_iter();
    let Some((_, header)) = it.next() else {
        return Err(bad(1, "empty file: no header".into()));
    };
    if header != CSV_HEADER {
        return Err(bad(
            1,
            format!(
                "header is not the one secateurs writes ({})",
                CSV_HEADER.join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for (line, f) in it {
        if f.len() == 1 && f[0].is_empty() {
            continue;
        }
        if f.len() != CSV_HEADER.len() {
            return Err(bad(
                line,
                format!("{} fields, expected {}", f.len(), CSV_HEADER.len()),
            ));
        }
        let num = |i: usize| -> Result<f64> {
            f[i].parse::<f64>().map_err(|_| {
                bad(
                    line,
                    format!("column {}: '{}' is not a number", CSV_HEADER[i], f[i]),
                )
            })
        };
        let int = |i: usize| -> Result<u64> {
            f[i].parse::<u64>().map_err(|_| {
                bad(
                    line,
                    format!("column {}: '{}' is not an integer", CSV_HEADER[i], f[i]),
                )
            })
        };
        let onum = |i: usize| -> Result<Option<f64>> {
            if f[i].is_empty() {
                Ok(None)
            } else {
                num(i).map(Some)
            }
        };
        let oint = |i: usize| -> Result<Option<u64>> {
            if f[i].is_empty() {
                Ok(None)
            } else {
                int(i).map(Some)
            }
        };
        let to_usize = |v: Option<u64>| v.map(|x| x as usize);
        rows.push(CsvRow {
            id: f[0].clone(),
            model: f[1].clone(),
            model_hash: f[2].clone(),
            method: f[3].clone(),
            scope: f[4].clone(),
            pattern: f[5].clone(),
            sparsity: num(6)?,
            achieved_sparsity: num(7)?,
            nsamples: to_usize(oint(8)?),
            seqlen: to_usize(oint(9)?),
            calib_seed: oint(10)?,
            limit: to_usize(oint(11)?),
            eval_seed: int(12)?,
            params: int(13)?,
            perplexity: onum(14)?,
            prune_s: num(15)?,
            eval_s: num(16)?,
            task: f[17].clone(),
            family: f[18].clone(),
            metric: f[19].clone(),
            accuracy: onum(20)?,
            lo: onum(21)?,
            hi: onum(22)?,
            n: to_usize(oint(23)?),
            chance: onum(24)?,
        });
    }
    Ok(rows)
}

/// A one-line description of a row's point, for messages.
pub fn row_label(r: &CsvRow) -> String {
    if r.method == crate::record::DENSE {
        "dense".into()
    } else if r.pattern == "unstructured" {
        format!("{} {} {}", r.method, r.scope, fmt_sparsity(r.sparsity))
    } else {
        format!("{} {} {}", r.method, r.scope, r.pattern)
    }
}
