//! `mc_capitals` — zero-shot 4-way choice of a country's capital by log-likelihood.
//!
//! * Source: npm `world-countries` 5.1.0, `countries.json` (ODbL 1.0): UN member states with a
//!   capital (about 190 items).
//! * Follows: the multiple-choice protocol of lm-evaluation-harness; the multiple-choice
//!   counterpart of the generation task [`super::facts_countries`].
//! * Items: the correct capital (the first listed) and three distractors: capitals of other UN
//!   members of the same region, drawn by seed (topped up from any region when the region has
//!   too few), in a seeded random order.
//! * Prompt: `The capital of France is` continued by ` Paris`, ` Madrid`, ` Vienna`, ` Rome`.
//! * Scoring: `acc` and `acc_norm` (per character). Chance is 25 %.

use secateurs_data::Cache;

use super::countries::{self, Country};
use super::{effective_limit, rng, BuildOptions, Family, Item, ItemKind, TaskData, TaskInfo};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "mc_capitals",
    family: Family::MultipleChoice,
    primary: "acc",
    default_limit: 300,
    summary: "capital of a UN member among 4 capitals of the same region, zero-shot",
    build,
};

/// Choices per item.
pub const CHOICES: usize = 4;

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    build_from(&countries::un_members(cache)?, opts, info)
}

pub(crate) fn build_from(
    countries: &[Country],
    opts: &BuildOptions,
    info: &TaskInfo,
) -> Result<TaskData, EvalError> {
    let mut rng = rng(opts, info);
    let with_capital: Vec<usize> = (0..countries.len())
        .filter(|&i| !countries[i].capitals.is_empty())
        .collect();
    let mut order = with_capital.clone();
    rng.shuffle(&mut order);
    let available = order.len();
    order.truncate(effective_limit(opts, info, available));
    let mut items = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        let c = &countries[i];
        let answer = &c.capitals[0];
        let others = |same_region: bool| -> Vec<&String> {
            with_capital
                .iter()
                .filter(|&&j| j != i && (countries[j].region == c.region) == same_region)
                .map(|&j| &countries[j].capitals[0])
                .filter(|cap| !c.capitals.contains(cap))
                .collect()
        };
        let mut near = others(true);
        rng.shuffle(&mut near);
        let mut far = others(false);
        rng.shuffle(&mut far);
        let mut choices: Vec<String> = vec![answer.clone()];
        for cap in near.into_iter().chain(far) {
            if choices.len() == CHOICES {
                break;
            }
            if !choices.contains(cap) {
                choices.push(cap.clone());
            }
        }
        if choices.len() < 2 {
            continue;
        }
        let mut perm: Vec<usize> = (0..choices.len()).collect();
        rng.shuffle(&mut perm);
        let gold = perm.iter().position(|&p| p == 0).unwrap_or(0);
        items.push(Item {
            id: format!("capital:{}", c.name),
            prefix: None,
            prompt: format!("The capital of {} is", c.name),
            group: c.region.clone(),
            cluster: n,
            kind: ItemKind::Choice {
                choices: perm.iter().map(|&p| format!(" {}", choices[p])).collect(),
                gold,
            },
        });
    }
    Ok(TaskData {
        info: *info,
        prefixes: Vec::new(),
        items,
        available,
        shots: 0,
        seed: opts.seed,
    })
}
