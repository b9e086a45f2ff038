//! `mc_science` — zero-shot science multiple choice by log-likelihood.
//!
//! * Source: BIG-bench 1.0.0 (Apache-2.0): `physics/task.json` (229 word problems; pick the
//!   formula needed, 4 choices) and
//!   `natural_instructions/subtask047_misc_answering_science_questions/task.json` (251
//!   four-option school science questions, from Natural Instructions, Mishra et al. 2022; the
//!   options `(A)`–`(D)` are parsed out of the question text and the target letter gives the
//!   answer). 480 items in all; the group says which file an item comes from.
//! * Follows: the multiple-choice protocol of lm-evaluation-harness (Gao et al.), as for ARC.
//! * Prompt (the choices are continuations, not listed in the prompt):
//!
//!   ```text
//!   Question: When a guitar string is plucked, sound is produced by
//!   Answer: the vibrations of the string
//!   ```
//! * Scoring: `acc` — the choice with the highest summed log-probability; `acc_norm` — the
//!   highest log-probability divided by the choice's length in characters (lm-eval-harness's
//!   `acc_norm`). Chance is 25 %.

use secateurs_data::Cache;

use super::{bigbench, rng, zero_shot, BuildOptions, Family, Item, ItemKind, TaskData, TaskInfo};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "mc_science",
    family: Family::MultipleChoice,
    primary: "acc",
    default_limit: 400,
    summary: "BIG-bench physics + natural_instructions science questions, 4-way, zero-shot",
    build,
};

/// The two source files.
pub const PHYSICS: &str = "physics";
/// Natural Instructions subtask 047.
pub const SCIENCE_QA: &str = "natural_instructions/subtask047_misc_answering_science_questions";

/// Splits `Question: ... (A) x (B) y (C) z (D) w?` into the question and the four options.
pub(crate) fn parse_lettered(input: &str) -> Option<(String, Vec<String>)> {
    let body = input.trim();
    let body = body.strip_prefix("Question:").unwrap_or(body).trim();
    let markers = ["(A)", "(B)", "(C)", "(D)"];
    let mut pos = Vec::new();
    let mut from = 0;
    for m in markers {
        let p = from + body[from..].find(m)?;
        pos.push(p);
        from = p + m.len();
    }
    let question = body[..pos[0]].trim().to_string();
    let mut options = Vec::new();
    for i in 0..4 {
        let start = pos[i] + 3;
        let end = if i + 1 < 4 { pos[i + 1] } else { body.len() };
        let mut o = body[start..end].trim();
        if i == 3 {
            o = o.strip_suffix('?').unwrap_or(o).trim();
        }
        if o.is_empty() {
            return None;
        }
        options.push(o.to_string());
    }
    (!question.is_empty()).then_some((question, options))
}

fn letter_index(target: &str) -> Option<usize> {
    match target.trim().chars().next()? {
        'A' => Some(0),
        'B' => Some(1),
        'C' => Some(2),
        'D' => Some(3),
        _ => None,
    }
}

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    let mut pool: Vec<(String, String, Vec<String>, usize)> = Vec::new(); // (group, q, choices, gold)
    for (input, choices, gold) in bigbench::multiple_choice(cache, PHYSICS)? {
        pool.push(("physics".into(), input.trim().to_string(), choices, gold));
    }
    let mut parsed = 0;
    for e in bigbench::load(cache, SCIENCE_QA)? {
        let Some((q, options)) = parse_lettered(&e.input) else {
            continue;
        };
        let Some(gold) = e.targets().first().and_then(|t| letter_index(t)) else {
            continue;
        };
        parsed += 1;
        pool.push(("science_qa".into(), q, options, gold));
    }
    if parsed == 0 {
        return Err(EvalError::BadData {
            path: bigbench::task_path(cache, SCIENCE_QA),
            reason: "no example has options (A)-(D) and a target letter".into(),
        });
    }
    let mut rng = rng(opts, info);
    Ok(zero_shot(
        pool,
        &mut rng,
        opts,
        info,
        |n, (group, q, choices, gold)| Item {
            id: format!("{group}:{n}"),
            prefix: None,
            prompt: format!(
                "Question: {}\nAnswer:",
                q.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            group,
            cluster: n,
            kind: ItemKind::Choice {
                choices: choices
                    .iter()
                    .map(|c| format!(" {}", c.split_whitespace().collect::<Vec<_>>().join(" ")))
                    .collect(),
                gold,
            },
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lettered_options() {
        let (q, o) = parse_lettered(
            "Question: When a guitar string is plucked, sound is produced by  (A) the size of the guitar. (B) the metal on the guitar. (C) the wood on the guitar. (D) the vibrations of the string?",
        )
        .unwrap();
        assert_eq!(q, "When a guitar string is plucked, sound is produced by");
        assert_eq!(
            o,
            [
                "the size of the guitar.",
                "the metal on the guitar.",
                "the wood on the guitar.",
                "the vibrations of the string"
            ]
        );
        assert_eq!(parse_lettered("Question: no options here"), None);
        assert_eq!(letter_index("D."), Some(3));
        assert_eq!(letter_index("E"), None);
    }
}
