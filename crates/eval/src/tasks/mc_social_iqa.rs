//! `mc_social_iqa` — zero-shot social common-sense multiple choice by log-likelihood.
//!
//! * Source: BIG-bench 1.0.0 `social_iqa/task.json` (Apache-2.0; Social IQa, Sap et al. 2019,
//!   CC BY 4.0): 1,954 items with three choices.
//! * Follows: lm-evaluation-harness's `siqa` format.
//! * Prompt (choices are continuations):
//!
//!   ```text
//!   Q: Tracy didn't go home that evening and resisted Riley's attacks. What does Tracy need to do before this?
//!   A: Find somewhere to go
//!   ```
//! * Scoring: `acc` (highest summed log-probability) and `acc_norm` (per character, as
//!   lm-eval-harness). Chance is 33 %.

use secateurs_data::Cache;

use super::{bigbench, rng, zero_shot, BuildOptions, Family, Item, ItemKind, TaskData, TaskInfo};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "mc_social_iqa",
    family: Family::MultipleChoice,
    primary: "acc",
    default_limit: 400,
    summary: "BIG-bench social_iqa, 3-way, zero-shot",
    build,
};

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    let pool = bigbench::multiple_choice(cache, "social_iqa")?;
    let mut rng = rng(opts, info);
    Ok(zero_shot(
        pool,
        &mut rng,
        opts,
        info,
        |n, (input, choices, gold)| Item {
            id: format!("social_iqa:{n}"),
            prefix: None,
            prompt: format!(
                "Q: {}\nA:",
                input.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            group: "social_iqa".into(),
            cluster: n,
            kind: ItemKind::Choice {
                choices: choices.iter().map(|c| format!(" {}", c.trim())).collect(),
                gold,
            },
        },
    ))
}
