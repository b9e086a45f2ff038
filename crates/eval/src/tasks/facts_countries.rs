//! `facts_countries` — closed-book fact recall, easy tier: the capital, currency and region of
//! well-known countries.
//!
//! * Source: npm `world-countries` 5.1.0, `countries.json` (ODbL 1.0), entries with
//!   `unMember: true` whose common name is mentioned at least [`MIN_MENTIONS`] time in the
//!   Wikipedia paragraphs of [`super::popularity`] (135 of the 193 members); about 400 facts
//!   (one per country and relation that has a value).
//! * Follows: Jin et al. 2023 (seeds 000/002), closed-book fact recall with few-shot prompts;
//!   world-countries stands in for TriviaQA, which cannot be fetched here.
//! * Prompt: `k` demonstrations of the same relation (default 4, drawn by seed and never
//!   evaluated), one per line, then the query sentence; greedy generation of at most 10 tokens,
//!   stopped at a newline:
//!
//!   ```text
//!   The capital of Peru is Lima
//!   The capital of Kenya is Nairobi
//!   The capital of Norway is Oslo
//!   The capital of Laos is Vientiane
//!   The capital of France is
//!   ```
//!
//!   The currency relation reads `The currency of Japan is the Japanese yen`, the region relation
//!   `Kenya is a country in Africa` (for the Americas the subregion: `South America`).
//! * Scoring: exact match after normalization (primary) and containment
//!   ([`crate::normalize`]). Accepted answers: every listed capital; a currency's full name, any
//!   word suffix of it (`yen`, `dollar`) or its ISO code; the region or the subregion (plus
//!   `America`/`North America` for the Americas).

use secateurs_data::Cache;

use super::countries::{self, Country};
use super::popularity::{count_mentions, mentions, wikipedia_paragraphs};
use super::{
    effective_limit, rng, split_demos, BuildOptions, Family, Item, ItemKind, Prefix, TaskData,
    TaskInfo,
};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "facts_countries",
    family: Family::FactRecall,
    primary: "exact_match",
    default_limit: 400,
    summary: "closed-book capitals, currencies and regions of well-known countries, 4-shot",
    build,
};

/// Demonstrations per relation when `--shots` is not given.
pub const DEFAULT_SHOTS: usize = 4;
/// Most tokens generated per answer.
pub const MAX_NEW: usize = 10;
/// Mentions in the Wikipedia paragraphs that make a country well known.
pub const MIN_MENTIONS: usize = 1;

/// The three relations asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Capital,
    Currency,
    Region,
}

impl Relation {
    pub(crate) const ALL: [Relation; 3] = [Relation::Capital, Relation::Currency, Relation::Region];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Relation::Capital => "capital",
            Relation::Currency => "currency",
            Relation::Region => "region",
        }
    }

    /// The sentence up to the answer.
    pub(crate) fn query(self, c: &Country) -> String {
        match self {
            Relation::Capital => format!("The capital of {} is", c.name),
            Relation::Currency => format!("The currency of {} is the", c.name),
            Relation::Region => format!("{} is a country in", c.name),
        }
    }

    /// Accepted answers (empty when the table has no value).
    pub(crate) fn answers(self, c: &Country) -> Vec<String> {
        match self {
            Relation::Capital => c.capital_answers(),
            Relation::Currency => c.currency_answers(),
            Relation::Region => {
                if c.region.is_empty() {
                    Vec::new()
                } else {
                    c.region_answers()
                }
            }
        }
    }

    /// The answer written in a demonstration or passage.
    pub(crate) fn shown_answer(self, c: &Country) -> Option<String> {
        match self {
            Relation::Capital => c.capitals.first().cloned(),
            Relation::Currency => c.main_currency().map(str::to_string),
            Relation::Region => region_label(c),
        }
    }
}

/// The region as written in a sentence: the subregion for the Americas (`South America`,
/// `the Caribbean`), else the region (`Europe`).
pub(crate) fn region_label(c: &Country) -> Option<String> {
    if c.region.is_empty() {
        return None;
    }
    if c.region == "Americas" && !c.subregion.is_empty() {
        return Some(if c.subregion == "Caribbean" {
            "the Caribbean".to_string()
        } else {
            c.subregion.clone()
        });
    }
    Some(c.region.clone())
}

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    let members = countries::un_members(cache)?;
    let counts = count_mentions(
        &wikipedia_paragraphs(cache)?,
        members.iter().map(|c| c.name.as_str()),
    );
    let known: Vec<Country> = members
        .into_iter()
        .filter(|c| mentions(&counts, &c.name) >= MIN_MENTIONS)
        .collect();
    build_from(&known, opts, info)
}

pub(crate) fn build_from(
    countries: &[Country],
    opts: &BuildOptions,
    info: &TaskInfo,
) -> Result<TaskData, EvalError> {
    let mut rng = rng(opts, info);
    let shots = opts.shots.unwrap_or(DEFAULT_SHOTS);
    let mut prefixes = Vec::new();
    let mut pool: Vec<(usize, Relation, usize)> = Vec::new(); // (prefix, relation, country)
    for rel in Relation::ALL {
        let mut idx: Vec<usize> = (0..countries.len())
            .filter(|&i| {
                !rel.answers(&countries[i]).is_empty() && rel.shown_answer(&countries[i]).is_some()
            })
            .collect();
        rng.shuffle(&mut idx);
        let (demos, rest) = split_demos(idx, shots);
        let text: String = demos
            .iter()
            .filter_map(|&i| {
                let c = &countries[i];
                Some(format!("{} {}\n", rel.query(c), rel.shown_answer(c)?))
            })
            .collect();
        prefixes.push(Prefix { parent: None, text });
        let p = prefixes.len() - 1;
        pool.extend(rest.into_iter().map(|i| (p, rel, i)));
    }
    rng.shuffle(&mut pool);
    let available = pool.len();
    pool.truncate(effective_limit(opts, info, available));
    pool.sort_by_key(|&(p, _, _)| p); // stable: random order within each relation
    let items = pool
        .into_iter()
        .enumerate()
        .map(|(n, (p, rel, i))| {
            let c = &countries[i];
            Item {
                id: format!("{}:{}", rel.name(), c.name),
                prefix: Some(p),
                prompt: rel.query(c),
                group: rel.name().to_string(),
                cluster: n,
                kind: ItemKind::Generate {
                    answers: rel.answers(c),
                    memory: Vec::new(),
                    max_new: MAX_NEW,
                },
            }
        })
        .collect();
    Ok(TaskData {
        info: *info,
        prefixes,
        items,
        available,
        shots,
        seed: opts.seed,
    })
}
