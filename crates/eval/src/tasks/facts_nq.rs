//! `facts_nq` — closed-book fact recall, hard tier: Natural Questions questions with their
//! original answers, without any passage.
//!
//! * Source: BIG-bench 1.0.0 `contextual_parametric_knowledge_conflicts/task.json` (Apache-2.0;
//!   questions from Natural Questions, Kwiatkowski et al. 2019, CC BY-SA 3.0): 17,528 items,
//!   each a question, a passage where the answer entity was substituted, and the two answers.
//!   This task uses only the question and the *original* answer (the choice scored 0); the
//!   passage is never shown. [`super::counterfactual`] uses the same file with the passage.
//! * Follows: Jin et al. 2023 (seeds 000/002), closed-book Natural Questions.
//! * Prompt: `k` question–answer demonstrations (default 4, drawn by seed, never evaluated), then
//!   the question; greedy generation of at most 8 tokens, stopped at a newline:
//!
//!   ```text
//!   Q: who played the male lead role in the movie ' mughal-e-azam '?
//!   A: Dilip Kumar
//!
//!   Q: who does candace like in phineas and ferb?
//!   A:
//!   ```
//! * Scoring: exact match after normalization (primary) and containment against the original
//!   answer.

use std::collections::HashSet;

use secateurs_data::Cache;

use super::bigbench::{self, Conflict};
use super::{few_shot, BuildOptions, Family, Item, ItemKind, TaskData, TaskInfo};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "facts_nq",
    family: Family::FactRecall,
    primary: "exact_match",
    default_limit: 100,
    summary:
        "closed-book Natural Questions (original answers of the knowledge-conflicts file), 4-shot",
    build,
};

/// Demonstrations when `--shots` is not given.
pub const DEFAULT_SHOTS: usize = 4;
/// Most tokens generated per answer.
pub const MAX_NEW: usize = 8;

/// The question as shown: trimmed, with a question mark.
pub(crate) fn question_text(q: &str) -> String {
    let q = q.trim();
    if q.ends_with('?') {
        q.to_string()
    } else {
        format!("{q}?")
    }
}

/// Items with a distinct question (first occurrence kept).
pub(crate) fn distinct_questions(items: Vec<Conflict>) -> Vec<Conflict> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|c| seen.insert(c.question.to_lowercase()))
        .collect()
}

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    build_from(distinct_questions(bigbench::conflicts(cache)?), opts, info)
}

pub(crate) fn build_from(
    pool: Vec<Conflict>,
    opts: &BuildOptions,
    info: &TaskInfo,
) -> Result<TaskData, EvalError> {
    Ok(few_shot(
        pool,
        opts,
        info,
        DEFAULT_SHOTS,
        "",
        |c| format!("Q: {}\nA: {}\n\n", question_text(&c.question), c.original),
        |n, c| Item {
            id: format!("nq:{}", c.index),
            prefix: Some(0),
            prompt: format!("Q: {}\nA:", question_text(&c.question)),
            group: "nq".into(),
            cluster: n,
            kind: ItemKind::Generate {
                answers: vec![c.original],
                memory: Vec::new(),
                max_new: MAX_NEW,
            },
        },
    ))
}
