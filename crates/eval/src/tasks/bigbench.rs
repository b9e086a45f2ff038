//! Reading the BIG-bench 1.0.0 task files extracted by `secateurs fetch` (Apache-2.0; see
//! docs/data.md for the pin and the licences of the underlying data sets).

use std::path::{Path, PathBuf};

use secateurs_data::cache::read_fetched;
use secateurs_data::{Cache, DataError};
use serde::Deserialize;
use serde_json::Value;

use crate::error::EvalError;

#[derive(Deserialize)]
struct TaskFile {
    #[serde(default)]
    examples: Vec<Example>,
}

/// One example of a BIG-bench `task.json`, as stored.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Example {
    /// The input text.
    #[serde(default)]
    pub input: String,
    /// Free-form target(s): a string or a list of strings.
    #[serde(default)]
    pub target: Option<Value>,
    /// Multiple-choice scores: choice → score (1 for correct).
    #[serde(default)]
    pub target_scores: Option<serde_json::Map<String, Value>>,
}

impl Example {
    /// The target strings (a string target becomes a list of one).
    pub fn targets(&self) -> Vec<String> {
        match &self.target {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Choices and the index of the single best-scored one, or `None` when the example is not a
    /// well-formed multiple-choice item (fewer than two choices, or not exactly one top score).
    /// Choices keep the file's key order as parsed (sorted by serde_json's map).
    pub fn choices(&self) -> Option<(Vec<String>, usize)> {
        let ts = self.target_scores.as_ref()?;
        if ts.len() < 2 {
            return None;
        }
        let scores: Vec<(String, f64)> = ts
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0)))
            .collect();
        let best = scores.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        let winners: Vec<usize> = (0..scores.len()).filter(|&i| scores[i].1 == best).collect();
        if winners.len() != 1 || best <= 0.0 {
            return None;
        }
        Some((scores.into_iter().map(|s| s.0).collect(), winners[0]))
    }
}

/// The path of a BIG-bench task file in the cache (`task` may name a subtask:
/// `goal_step_wikihow/goal_inference`).
pub(crate) fn task_path(cache: &Cache, task: &str) -> PathBuf {
    cache.bigbench_task(task)
}

/// Reads and parses a BIG-bench `task.json`.
///
/// # Errors
/// [`DataError::NotFetched`] (run `secateurs fetch`) or a parse error naming the file.
pub(crate) fn load(cache: &Cache, task: &str) -> Result<Vec<Example>, EvalError> {
    let path = task_path(cache, task);
    load_path(&path, &format!("BIG-bench task {task}"))
}

pub(crate) fn load_path(path: &Path, what: &str) -> Result<Vec<Example>, EvalError> {
    let text = read_fetched(what, path)?;
    let file: TaskFile = serde_json::from_str(&text).map_err(|err| DataError::Json {
        path: path.to_path_buf(),
        err,
    })?;
    Ok(file.examples)
}

/// One item of `contextual_parametric_knowledge_conflicts`: a Natural Questions question with a
/// passage in which the original answer was replaced by another entity of the same type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conflict {
    /// Index in the file.
    pub index: usize,
    /// The question (lowercase, as in Natural Questions, without a question mark).
    pub question: String,
    /// The counterfactual passage.
    pub context: String,
    /// The answer the passage supports (the substituted entity; the file's `target`).
    pub substituted: String,
    /// The original Natural Questions answer (the choice scored 0).
    pub original: String,
}

/// The knowledge-conflict file's relative task name.
pub(crate) const CONFLICTS: &str = "contextual_parametric_knowledge_conflicts";

/// Reads the knowledge-conflict items; examples that do not have the expected
/// `\nQuestion: ...\nContext: ...` input or two target scores are skipped.
///
/// # Errors
/// As [`load`]; [`EvalError::BadData`] if no example is usable.
pub(crate) fn conflicts(cache: &Cache) -> Result<Vec<Conflict>, EvalError> {
    let examples = load(cache, CONFLICTS)?;
    let mut out = Vec::new();
    for (index, e) in examples.iter().enumerate() {
        let Some(rest) = e.input.trim_start().strip_prefix("Question:") else {
            continue;
        };
        let Some((q, c)) = rest.split_once("\nContext:") else {
            continue;
        };
        let Some(ts) = &e.target_scores else {
            continue;
        };
        let sub: Vec<&String> = ts
            .iter()
            .filter(|(_, v)| v.as_f64() == Some(1.0))
            .map(|(k, _)| k)
            .collect();
        let orig: Vec<&String> = ts
            .iter()
            .filter(|(_, v)| v.as_f64() == Some(0.0))
            .map(|(k, _)| k)
            .collect();
        if sub.len() != 1 || orig.len() != 1 {
            continue;
        }
        let (question, context) = (q.trim().to_string(), c.trim().to_string());
        if !super::one_line(&question)
            || !super::one_line(&context)
            || !super::one_line(sub[0])
            || !super::one_line(orig[0])
        {
            continue;
        }
        out.push(Conflict {
            index,
            question,
            context,
            substituted: sub[0].trim().to_string(),
            original: orig[0].trim().to_string(),
        });
    }
    if out.is_empty() {
        return Err(EvalError::BadData {
            path: task_path(cache, CONFLICTS),
            reason:
                "no example has the '\\nQuestion: ...\\nContext: ...' input and two target_scores"
                    .into(),
        });
    }
    Ok(out)
}

/// Multiple-choice examples of a task file as `(input, choices, gold)`; malformed ones skipped.
///
/// # Errors
/// As [`load`]; [`EvalError::BadData`] if no example is a well-formed multiple-choice item.
pub(crate) fn multiple_choice(
    cache: &Cache,
    task: &str,
) -> Result<Vec<(String, Vec<String>, usize)>, EvalError> {
    let out: Vec<_> = load(cache, task)?
        .into_iter()
        .filter_map(|e| {
            let (choices, gold) = e.choices()?;
            Some((e.input, choices, gold))
        })
        .collect();
    if out.is_empty() {
        return Err(EvalError::BadData {
            path: task_path(cache, task),
            reason: "no example has target_scores with exactly one best choice".into(),
        });
    }
    Ok(out)
}
