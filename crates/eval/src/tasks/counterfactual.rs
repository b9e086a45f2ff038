//! `counterfactual` — overriding memory with context (DissentQA-like): a passage asserts a
//! substituted answer that contradicts the real one.
//!
//! * Source: BIG-bench 1.0.0 `contextual_parametric_knowledge_conflicts/task.json` (Apache-2.0;
//!   Natural Questions, CC BY-SA 3.0; built like DissentQA, Neeman et al. 2022, by replacing the
//!   answer entity in the gold passage with another entity of the same type). 17,528 items; to
//!   keep prompts short only passages of at most [`MAX_CONTEXT_CHARS`] characters are used
//!   (about 2,950 items).
//! * Follows: Jin et al. 2023 (seeds 000/002), DissentQA: "can the model override its memory
//!   formed during pre-training with new context".
//! * Prompt: the task's own BIG-bench instruction, `k` demonstrations (default 2, drawn by seed,
//!   never evaluated) answered with their substituted answers, then the item; greedy generation
//!   of at most 10 tokens, stopped at a newline:
//!
//!   ```text
//!   What is the answer to the question, assuming the context is true.
//!
//!   Context: Chalino Sánchez as Senator Joseph Harrison `` Joe '' Paine
//!   Question: who is joseph paine in mr smith goes to washington?
//!   Answer: Chalino Sánchez
//!
//!   Context: ...
//!   Question: ...?
//!   Answer:
//!   ```
//! * Scoring, separately: `context_em` / `context_contains` (the output is the substituted
//!   answer: answered from context; primary) and `memory_em` / `memory_contains` (the output is
//!   the original answer: answered from memory).

use secateurs_data::Cache;

use super::bigbench::{self, Conflict};
use super::facts_nq::question_text;
use super::{few_shot, BuildOptions, Family, Item, ItemKind, TaskData, TaskInfo};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "counterfactual",
    family: Family::Counterfactual,
    primary: "context_em",
    default_limit: 300,
    summary: "knowledge-conflict passages: answered from context vs from memory, 2-shot",
    build,
};

/// Demonstrations when `--shots` is not given.
pub const DEFAULT_SHOTS: usize = 2;
/// Most tokens generated per answer.
pub const MAX_NEW: usize = 10;
/// Longest passage used, in characters.
pub const MAX_CONTEXT_CHARS: usize = 200;
/// The instruction of the BIG-bench task (`task_prefix`).
pub const INSTRUCTION: &str =
    "What is the answer to the question, assuming the context is true.\n\n";

fn block(c: &Conflict) -> String {
    format!(
        "Context: {}\nQuestion: {}\nAnswer:",
        c.context,
        question_text(&c.question)
    )
}

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    let pool: Vec<Conflict> = bigbench::conflicts(cache)?
        .into_iter()
        .filter(|c| c.context.chars().count() <= MAX_CONTEXT_CHARS)
        .collect();
    build_from(pool, opts, info)
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
        INSTRUCTION,
        |d| format!("{} {}\n\n", block(d), d.substituted),
        |n, c| Item {
            id: format!("conflict:{}", c.index),
            prefix: Some(0),
            prompt: block(&c),
            group: "counterfactual".into(),
            cluster: n,
            kind: ItemKind::Generate {
                answers: vec![c.substituted],
                memory: vec![c.original],
                max_new: MAX_NEW,
            },
        },
    ))
}
