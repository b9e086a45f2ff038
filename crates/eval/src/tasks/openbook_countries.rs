//! `openbook_countries` — open-book QA over templated passages: the same capital, currency and
//! region facts as [`super::facts_countries`], but stated in the prompt.
//!
//! * Source: npm `world-countries` 5.1.0, `countries.json` (ODbL 1.0), UN member states with a
//!   capital, a currency and a region (about 190 passages, 3 questions each).
//! * Follows: Jin et al. 2023 (seeds 000/002), open-book QA: with the evidence in context, the
//!   answer needs no memorized fact. Comparing with `facts_countries` separates recall from
//!   reading on identical facts.
//! * Items: countries are drawn by seed; each passage is asked its three questions (a cluster
//!   for the confidence interval). One country, with its three questions answered, is the
//!   demonstration and is never evaluated.
//! * Prompt, greedy generation of at most 10 tokens, stopped at a newline:
//!
//!   ```text
//!   Passage: Peru is a country in South America. Its capital is Lima, and its currency is the Peruvian sol.
//!   Question: What is the capital of Peru?
//!   Answer: Lima
//!
//!   ... (the demonstration's other two questions)
//!
//!   Passage: Kenya is a country in Africa. Its capital is Nairobi, and its currency is the Kenyan shilling.
//!   Question: What is the currency of Kenya?
//!   Answer:
//!   ```
//! * Scoring: exact match after normalization (primary) and containment, with the aliases of
//!   `facts_countries`.

use secateurs_data::Cache;

use super::countries::{self, Country};
use super::facts_countries::{region_label, Relation};
use super::{
    effective_limit, rng, BuildOptions, Family, Item, ItemKind, Prefix, TaskData, TaskInfo,
};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "openbook_countries",
    family: Family::OpenBook,
    primary: "exact_match",
    default_limit: 250,
    summary: "templated world-countries passages, 3 questions each (answer in context), 1-shot",
    build,
};

/// Demonstration passages when `--shots` is not given.
pub const DEFAULT_SHOTS: usize = 1;
/// Most tokens generated per answer.
pub const MAX_NEW: usize = 10;

/// The passage stating a country's three facts, if it has all three.
pub(crate) fn passage(c: &Country) -> Option<String> {
    Some(format!(
        "{} is a country in {}. Its capital is {}, and its currency is the {}.",
        c.name,
        region_label(c)?,
        c.capitals.first()?,
        c.main_currency()?
    ))
}

fn question(rel: Relation, c: &Country) -> String {
    match rel {
        Relation::Capital => format!("What is the capital of {}?", c.name),
        Relation::Currency => format!("What is the currency of {}?", c.name),
        Relation::Region => format!("In which region is {}?", c.name),
    }
}

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    build_from(&countries::un_members(cache)?, opts, info)
}

pub(crate) fn build_from(
    countries: &[Country],
    opts: &BuildOptions,
    info: &TaskInfo,
) -> Result<TaskData, EvalError> {
    let mut rng = rng(opts, info);
    let mut idx: Vec<usize> = (0..countries.len())
        .filter(|&i| passage(&countries[i]).is_some())
        .collect();
    rng.shuffle(&mut idx);
    let shots = opts.shots.unwrap_or(DEFAULT_SHOTS).min(idx.len());
    let rest = idx.split_off(shots);
    let mut text = String::new();
    for &i in &idx {
        let c = &countries[i];
        let p = passage(c).unwrap_or_default();
        for rel in Relation::ALL {
            if let Some(a) = rel.shown_answer(c) {
                text.push_str(&format!(
                    "Passage: {p}\nQuestion: {}\nAnswer: {a}\n\n",
                    question(rel, c)
                ));
            }
        }
    }
    let mut prefixes = vec![Prefix { parent: None, text }];
    let available = rest.len() * Relation::ALL.len();
    let limit = effective_limit(opts, info, available);
    let mut items = Vec::new();
    for (cluster, &i) in rest.iter().enumerate() {
        if items.len() >= limit {
            break;
        }
        let c = &countries[i];
        prefixes.push(Prefix {
            parent: Some(0),
            text: format!("Passage: {}\n", passage(c).unwrap_or_default()),
        });
        let prefix = prefixes.len() - 1;
        for rel in Relation::ALL {
            if items.len() >= limit {
                break;
            }
            items.push(Item {
                id: format!("{}:{}", rel.name(), c.name),
                prefix: Some(prefix),
                prompt: format!("Question: {}\nAnswer:", question(rel, c)),
                group: rel.name().to_string(),
                cluster,
                kind: ItemKind::Generate {
                    answers: rel.answers(c),
                    memory: Vec::new(),
                    max_new: MAX_NEW,
                },
            });
        }
    }
    Ok(TaskData {
        info: *info,
        prefixes,
        items,
        available,
        shots,
        seed: opts.seed,
    })
}
