//! `mc_cause_effect` — zero-shot cause-and-effect multiple choice by log-likelihood.
//!
//! * Source: BIG-bench 1.0.0 `cause_and_effect` (Apache-2.0): `one_sentence` (51 items: which
//!   of two sentences "A because B" makes more sense) and `two_sentences` (51 items: which of two
//!   events caused the other). `one_sentence_no_prompt` repeats the items of `one_sentence` and
//!   is not used. 102 items in all, so the interval cannot reach ±5 points.
//! * Follows: the BIG-bench task format (its `task_prefix`, with the choices appended to the
//!   input, here in a seeded random order) and lm-eval-harness scoring.
//! * Prompt (choices are continuations):
//!
//!   ```text
//!   For each example, two events are given. Which event caused the other?
//!   Options:
//!   - The child started crying.
//!   - The child hurt their knee.
//!   Answer: The child hurt their knee.
//!   ```
//! * Scoring: `acc` and `acc_norm` (per character). Chance is 50 %.

use secateurs_data::Cache;

use super::{bigbench, rng, zero_shot, BuildOptions, Family, Item, ItemKind, TaskData, TaskInfo};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "mc_cause_effect",
    family: Family::MultipleChoice,
    primary: "acc",
    default_limit: 102,
    summary: "BIG-bench cause_and_effect (one_sentence, two_sentences), 2-way, zero-shot",
    build,
};

/// Subtasks and their BIG-bench `task_prefix`.
pub const SUBTASKS: [(&str, &str); 2] = [
    (
        "one_sentence",
        "Which of the following sentences makes more sense?",
    ),
    (
        "two_sentences",
        "For each example, two events are given. Which event caused the other?",
    ),
];

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    let mut rng = rng(opts, info);
    let mut pool = Vec::new();
    for (sub, instruction) in SUBTASKS {
        for (_, choices, gold) in
            bigbench::multiple_choice(cache, &format!("cause_and_effect/{sub}"))?
        {
            let mut order: Vec<usize> = (0..choices.len()).collect();
            rng.shuffle(&mut order);
            let listed: String = order
                .iter()
                .map(|&i| format!("- {}\n", choices[i].trim()))
                .collect();
            let prompt = format!("{instruction}\nOptions:\n{listed}Answer:");
            pool.push((sub, prompt, choices, gold));
        }
    }
    Ok(zero_shot(
        pool,
        &mut rng,
        opts,
        info,
        |n, (sub, prompt, choices, gold)| Item {
            id: format!("{sub}:{n}"),
            prefix: None,
            prompt,
            group: sub.to_string(),
            cluster: n,
            kind: ItemKind::Choice {
                choices: choices.iter().map(|c| format!(" {}", c.trim())).collect(),
                gold,
            },
        },
    ))
}
