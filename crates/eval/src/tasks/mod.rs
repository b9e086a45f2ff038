//! The capability task suite of issue 3, after Jin et al. 2023, "The Cost of Down-Scaling
//! Language Models: Fact Recall Deteriorates before In-Context Learning" (seeds 000 and 002):
//! tasks that need facts stored in the weights (closed-book recall) next to tasks whose answer is
//! in the prompt (open-book QA, overriding memory from context, learning a function from
//! examples), plus zero-shot multiple choice scored by log-likelihood.
//!
//! Every task lives in its own file, which documents its source, licence, prompt format and
//! scoring. A task is built from the pinned data in the cache ([`secateurs_data::Cache`]) into a
//! [`TaskData`]: plain-text prompts and references, identical for the same seed on every
//! machine, independent of the model. [`crate::runner`] then tokenizes and scores it.
//!
//! Prompts are split into shared *prefixes* (few-shot demonstrations, a passage that several
//! questions ask about) and per-item text, so that the runner computes each prefix once and
//! clones its KV cache for every item.

pub(crate) mod bigbench;
pub mod counterfactual;
pub(crate) mod countries;
pub mod facts_countries;
pub mod facts_nq;
pub mod facts_wikidata;
pub mod icl_linear;
pub mod mc_capitals;
pub mod mc_cause_effect;
pub mod mc_science;
pub mod mc_social_iqa;
pub mod mc_wikihow;
pub mod openbook_countries;
pub mod openbook_squad;
pub(crate) mod popularity;

use secateurs_data::Cache;
use serde::Serialize;

use crate::error::EvalError;
use crate::rng::Rng;

/// Which ability a task measures (seed 000's two capabilities, plus multiple choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Closed-book recall of facts stored in the weights.
    FactRecall,
    /// Questions whose answer is in a passage given in the prompt.
    OpenBook,
    /// A passage that contradicts what the model memorized.
    Counterfactual,
    /// Learning a function from examples in the prompt.
    InContext,
    /// Zero-shot multiple choice by log-likelihood.
    MultipleChoice,
}

impl Family {
    /// Snake-case name, as serialized.
    pub fn name(self) -> &'static str {
        match self {
            Family::FactRecall => "fact_recall",
            Family::OpenBook => "open_book",
            Family::Counterfactual => "counterfactual",
            Family::InContext => "in_context",
            Family::MultipleChoice => "multiple_choice",
        }
    }
}

/// How to build a task's items.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Seed of the item sampling (each task derives its own stream from it).
    pub seed: u64,
    /// Items to keep (default: the task's own default limit). `usize::MAX` keeps all.
    pub limit: Option<usize>,
    /// Few-shot demonstrations for the tasks that use them (default: each task's own).
    pub shots: Option<usize>,
}

/// A task in the registry.
#[derive(Debug, Clone, Copy)]
pub struct TaskInfo {
    /// Name used on the command line.
    pub name: &'static str,
    /// The ability measured.
    pub family: Family,
    /// The metric reported as the task's accuracy.
    pub primary: &'static str,
    /// Items scored when no `--limit` is given.
    pub default_limit: usize,
    /// One line: what the task is.
    pub summary: &'static str,
    /// Builds the items.
    pub build: fn(&Cache, &BuildOptions, &TaskInfo) -> Result<TaskData, EvalError>,
}

/// Every task, in the order `all` runs them.
pub const TASKS: &[TaskInfo] = &[
    facts_countries::INFO,
    facts_wikidata::INFO,
    facts_nq::INFO,
    openbook_squad::INFO,
    openbook_countries::INFO,
    counterfactual::INFO,
    icl_linear::INFO,
    icl_linear::INFO_SHUFFLED,
    mc_science::INFO,
    mc_social_iqa::INFO,
    mc_wikihow::INFO,
    mc_cause_effect::INFO,
    mc_capitals::INFO,
];

/// The comma-separated valid task names (for error messages and `--help`).
pub fn valid_names() -> String {
    let mut v: Vec<&str> = TASKS.iter().map(|t| t.name).collect();
    v.push("all");
    v.join(", ")
}

/// Resolves a `--tasks` value: `all`, or a comma-separated list of names (order kept, duplicates
/// dropped).
///
/// # Errors
/// [`EvalError::UnknownTask`] naming the first unknown name and listing the valid ones.
pub fn resolve(spec: &str) -> Result<Vec<&'static TaskInfo>, EvalError> {
    let mut out: Vec<&'static TaskInfo> = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name == "all" {
            for t in TASKS {
                if !out.iter().any(|o| o.name == t.name) {
                    out.push(t);
                }
            }
            continue;
        }
        let t = TASKS
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| EvalError::UnknownTask {
                name: name.to_string(),
                valid: valid_names(),
            })?;
        if !out.iter().any(|o| o.name == t.name) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(EvalError::UnknownTask {
            name: spec.to_string(),
            valid: valid_names(),
        });
    }
    Ok(out)
}

/// Builds one task from the cache.
///
/// # Errors
/// Missing data ([`EvalError::Data`], saying to run `secateurs fetch`), malformed data
/// ([`EvalError::BadData`]) or a bad option.
pub fn build(info: &TaskInfo, cache: &Cache, opts: &BuildOptions) -> Result<TaskData, EvalError> {
    if opts.limit == Some(0) {
        return Err(EvalError::BadOption {
            option: "--limit",
            reason: "must be at least 1".into(),
        });
    }
    (info.build)(cache, opts, info)
}

/// A shared piece of prompt: its text follows its parent's text directly.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefix {
    /// The prefix this one continues, if any (always an earlier index).
    pub parent: Option<usize>,
    /// Text after the parent's text.
    pub text: String,
}

/// What an item asks and how it is scored.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// Greedy generation, scored by exact match and containment (see [`crate::normalize`]).
    Generate {
        /// Correct answers (any one counts).
        answers: Vec<String>,
        /// A second set of answers scored separately (the memorized answer of a counterfactual
        /// item); empty for other tasks.
        memory: Vec<String>,
        /// Most tokens generated; generation also stops at a newline or end-of-sequence token.
        max_new: usize,
    },
    /// Multiple choice: each choice is a continuation of the prompt, scored by its summed
    /// log-probability (`acc`) and by that sum divided by its length in characters (`acc_norm`).
    Choice {
        /// Continuations, each including its leading space.
        choices: Vec<String>,
        /// Index of the correct one.
        gold: usize,
    },
    /// A sequence of `x -> label` lines; at each query line the model's preference between the
    /// label tokens (their log-probabilities) is compared with the true label.
    Labels {
        /// The label strings, each one token (with its leading space), e.g. `" A"`, `" B"`.
        labels: Vec<String>,
        /// Label index shown on each line of the prompt.
        shown: Vec<usize>,
        /// True label index of each line.
        truth: Vec<usize>,
        /// Lines whose label is predicted and scored.
        queries: Vec<usize>,
        /// Breakdown group of each query.
        query_groups: Vec<String>,
    },
}

/// One evaluation item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Stable identifier (from the source data where it has one).
    pub id: String,
    /// Shared prefix the prompt continues.
    pub prefix: Option<usize>,
    /// Text after the prefix (the whole prompt when there is no prefix).
    pub prompt: String,
    /// Breakdown group (relation, sub-task, ...).
    pub group: String,
    /// Items with the same cluster share context (questions on one passage), which the
    /// confidence interval accounts for ([`crate::ci::clustered_proportion`]).
    pub cluster: usize,
    /// What is asked.
    pub kind: ItemKind,
}

/// A built task: prompts and references, ready to be scored on any model.
#[derive(Debug, Clone)]
pub struct TaskData {
    /// Registry entry.
    pub info: TaskInfo,
    /// Shared prompt prefixes.
    pub prefixes: Vec<Prefix>,
    /// The items, ordered so that items sharing a prefix are adjacent.
    pub items: Vec<Item>,
    /// Items available before the limit was applied.
    pub available: usize,
    /// Few-shot demonstrations in each prompt (0 for zero-shot tasks).
    pub shots: usize,
    /// The seed the items were drawn with.
    pub seed: u64,
}

impl TaskData {
    /// The full prompt text of item `i`: its prefixes followed by its own text.
    pub fn full_prompt(&self, i: usize) -> String {
        let item = &self.items[i];
        let mut s = self.prefix_text(item.prefix);
        s.push_str(&item.prompt);
        s
    }

    /// The concatenated text of a prefix chain (empty for `None`).
    pub fn prefix_text(&self, prefix: Option<usize>) -> String {
        let mut chain = Vec::new();
        let mut p = prefix;
        while let Some(i) = p {
            chain.push(i);
            p = self.prefixes[i].parent;
        }
        chain
            .iter()
            .rev()
            .map(|&i| self.prefixes[i].text.as_str())
            .collect()
    }

    /// Chance accuracy of the primary metric, if it has one (multiple choice: the mean of
    /// 1 / choices; labels: 1 / labels).
    pub fn chance(&self) -> Option<f64> {
        let mut sum = 0.0;
        let mut n = 0usize;
        for it in &self.items {
            match &it.kind {
                ItemKind::Generate { .. } => return None,
                ItemKind::Choice { choices, .. } => {
                    sum += 1.0 / choices.len() as f64;
                    n += 1;
                }
                ItemKind::Labels {
                    labels, queries, ..
                } => {
                    sum += queries.len() as f64 / labels.len() as f64;
                    n += queries.len();
                }
            }
        }
        (n > 0).then(|| sum / n as f64)
    }

    /// Scored units: items, except that a label sequence counts once per query.
    pub fn scored_units(&self) -> usize {
        self.items
            .iter()
            .map(|it| match &it.kind {
                ItemKind::Labels { queries, .. } => queries.len(),
                _ => 1,
            })
            .sum()
    }
}

/// The limit to apply: the option, else the task's default; `available` caps it.
pub(crate) fn effective_limit(opts: &BuildOptions, info: &TaskInfo, available: usize) -> usize {
    opts.limit.unwrap_or(info.default_limit).min(available)
}

/// A task-specific random stream.
pub(crate) fn rng(opts: &BuildOptions, info: &TaskInfo) -> Rng {
    Rng::for_task(opts.seed, info.name)
}

/// Takes `k` demonstrations off the front of a shuffled pool (the rest are the evaluation items),
/// so that no demonstration is ever an evaluation item.
pub(crate) fn split_demos<T>(mut pool: Vec<T>, k: usize) -> (Vec<T>, Vec<T>) {
    let k = k.min(pool.len());
    let rest = pool.split_off(k);
    (pool, rest)
}

/// A few-shot task over a pool of examples: the pool is shuffled by the task's seed, the first
/// `shots` (option, else `default_shots`) become one shared prefix (`header`, then `demo(d)` for
/// each), and the rest, up to the limit, become the items (`item(n, x)` for the n-th, which
/// continues prefix 0).
pub(crate) fn few_shot<T>(
    mut pool: Vec<T>,
    opts: &BuildOptions,
    info: &TaskInfo,
    default_shots: usize,
    header: &str,
    demo: impl Fn(&T) -> String,
    item: impl Fn(usize, T) -> Item,
) -> TaskData {
    rng(opts, info).shuffle(&mut pool);
    let shots = opts.shots.unwrap_or(default_shots);
    let (demos, mut rest) = split_demos(pool, shots);
    let mut text = header.to_string();
    for d in &demos {
        text.push_str(&demo(d));
    }
    let available = rest.len();
    rest.truncate(effective_limit(opts, info, available));
    let items = rest
        .into_iter()
        .enumerate()
        .map(|(n, x)| item(n, x))
        .collect();
    TaskData {
        info: *info,
        prefixes: vec![Prefix { parent: None, text }],
        items,
        available,
        shots,
        seed: opts.seed,
    }
}

/// A zero-shot task over a pool of examples: the pool is shuffled with `rng` and cut to the
/// limit, and the n-th example becomes `item(n, x)` (no shared prefix).
pub(crate) fn zero_shot<T>(
    mut pool: Vec<T>,
    rng: &mut Rng,
    opts: &BuildOptions,
    info: &TaskInfo,
    item: impl Fn(usize, T) -> Item,
) -> TaskData {
    rng.shuffle(&mut pool);
    let available = pool.len();
    pool.truncate(effective_limit(opts, info, available));
    TaskData {
        info: *info,
        prefixes: Vec::new(),
        items: pool
            .into_iter()
            .enumerate()
            .map(|(n, x)| item(n, x))
            .collect(),
        available,
        shots: 0,
        seed: opts.seed,
    }
}

/// Whether a string is usable as a one-line answer or prompt fragment.
pub(crate) fn one_line(s: &str) -> bool {
    !s.trim().is_empty() && !s.contains('\n')
}
