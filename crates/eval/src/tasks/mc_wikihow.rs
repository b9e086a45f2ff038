//! `mc_wikihow` — zero-shot wikiHow goal/step reasoning by log-likelihood.
//!
//! * Source: BIG-bench 1.0.0 `goal_step_wikihow` (Apache-2.0; Zhang, Lyu & Callison-Burch 2020,
//!   from wikiHow): `goal_inference` (1,703 items, 4 choices), `step_inference` (2,250, 4
//!   choices) and `step_ordering` (3,100, 2 choices); the group names the subtask.
//! * Follows: the multiple-choice protocol of lm-evaluation-harness.
//! * Prompt: the BIG-bench input, trimmed, continued by each choice:
//!
//!   ```text
//!   The most reasonable step of 'Solve an Algebraic Expression' is Know the order of operations
//!   ```
//! * Scoring: `acc` and `acc_norm` (per character). Chance is the mean of 1 / choices (about
//!   37 % over the three subtasks' mix).

use secateurs_data::Cache;

use super::{bigbench, rng, zero_shot, BuildOptions, Family, Item, ItemKind, TaskData, TaskInfo};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "mc_wikihow",
    family: Family::MultipleChoice,
    primary: "acc",
    default_limit: 400,
    summary: "BIG-bench goal_step_wikihow (goal/step inference, step ordering), zero-shot",
    build,
};

/// The subtasks used.
pub const SUBTASKS: [&str; 3] = ["goal_inference", "step_inference", "step_ordering"];

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    let mut pool = Vec::new();
    for sub in SUBTASKS {
        for (input, choices, gold) in
            bigbench::multiple_choice(cache, &format!("goal_step_wikihow/{sub}"))?
        {
            pool.push((sub, input, choices, gold));
        }
    }
    let mut rng = rng(opts, info);
    Ok(zero_shot(
        pool,
        &mut rng,
        opts,
        info,
        |n, (sub, input, choices, gold)| Item {
            id: format!("{sub}:{n}"),
            prefix: None,
            prompt: input.split_whitespace().collect::<Vec<_>>().join(" "),
            group: sub.to_string(),
            cluster: n,
            kind: ItemKind::Choice {
                choices: choices.iter().map(|c| format!(" {}", c.trim())).collect(),
                gold,
            },
        },
    ))
}
