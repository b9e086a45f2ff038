//! `openbook_squad` — open-book QA: a Wikipedia passage and a question whose answer is a span of
//! the passage.
//!
//! * Source: SQuAD v1.1 dev (Rajpurkar et al. 2016, CC BY-SA 4.0), the copy in BIG-bench 1.0.0
//!   `squad_shifts/squaddev_v1.1.json`: 2,067 paragraphs, 10,565 questions. To keep prompts
//!   short only paragraphs of at most [`MAX_CONTEXT_CHARS`] characters are used (201
//!   paragraphs, 1,113 questions).
//! * Follows: Jin et al. 2023 (seeds 000/002), open-book QA (their TriviaQA with evidence).
//! * Items: whole paragraphs are drawn by seed, each with all its questions (until the limit), so
//!   that the passage is computed once; the questions of one passage form a cluster for the
//!   confidence interval. One paragraph, with one of its questions, is the demonstration
//!   (`k` = 1 by default) and is never evaluated.
//! * Prompt, greedy generation of at most 12 tokens, stopped at a newline:
//!
//!   ```text
//!   Passage: <demonstration paragraph>
//!   Question: <demonstration question>
//!   Answer: <its first reference answer>
//!
//!   Passage: <paragraph>
//!   Question: <question>
//!   Answer:
//!   ```
//! * Scoring: exact match after normalization against any reference answer (primary; the SQuAD
//!   metric) and containment.

use secateurs_data::squad::{squad_examples, SquadExample, SquadSet};
use secateurs_data::Cache;

use super::{
    effective_limit, one_line, rng, BuildOptions, Family, Item, ItemKind, Prefix, TaskData,
    TaskInfo,
};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "openbook_squad",
    family: Family::OpenBook,
    primary: "exact_match",
    default_limit: 400,
    summary: "SQuAD v1.1 dev, passages <= 500 characters, passage + question -> span, 1-shot",
    build,
};

/// Demonstrations when `--shots` is not given.
pub const DEFAULT_SHOTS: usize = 1;
/// Most tokens generated per answer.
pub const MAX_NEW: usize = 12;
/// Longest passage used, in characters.
pub const MAX_CONTEXT_CHARS: usize = 500;

/// A passage with its questions and answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Paragraph {
    pub context: String,
    pub questions: Vec<(String, String, Vec<String>)>, // (id, question, answers)
}

/// Groups SQuAD records by passage (file order) and keeps usable ones.
pub(crate) fn paragraphs(examples: Vec<SquadExample>, max_chars: usize) -> Vec<Paragraph> {
    let mut out: Vec<Paragraph> = Vec::new();
    for e in examples {
        let context = e.context.split_whitespace().collect::<Vec<_>>().join(" ");
        let question = e.question.split_whitespace().collect::<Vec<_>>().join(" ");
        let answers: Vec<String> = e.answers.into_iter().filter(|a| one_line(a)).collect();
        if context.chars().count() > max_chars || question.is_empty() || answers.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(p) if p.context == context => p.questions.push((e.id, question, answers)),
            _ => out.push(Paragraph {
                context,
                questions: vec![(e.id, question, answers)],
            }),
        }
    }
    out
}

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    let paras = paragraphs(squad_examples(cache, SquadSet::Dev)?, MAX_CONTEXT_CHARS);
    if paras.is_empty() {
        return Err(EvalError::BadData {
            path: cache.squad_dev(),
            reason: format!("no paragraph of at most {MAX_CONTEXT_CHARS} characters"),
        });
    }
    build_from(paras, opts, info)
}

pub(crate) fn build_from(
    mut paras: Vec<Paragraph>,
    opts: &BuildOptions,
    info: &TaskInfo,
) -> Result<TaskData, EvalError> {
    let mut rng = rng(opts, info);
    rng.shuffle(&mut paras);
    let shots = opts.shots.unwrap_or(DEFAULT_SHOTS).min(paras.len());
    let rest = paras.split_off(shots);
    let mut text = String::new();
    for p in &paras {
        let (_, q, a) = &p.questions[rng.below(p.questions.len())];
        text.push_str(&format!(
            "Passage: {}\nQuestion: {q}\nAnswer: {}\n\n",
            p.context, a[0]
        ));
    }
    let mut prefixes = vec![Prefix { parent: None, text }];
    let available: usize = rest.iter().map(|p| p.questions.len()).sum();
    let limit = effective_limit(opts, info, available);
    let mut items = Vec::new();
    for (cluster, p) in rest.into_iter().enumerate() {
        if items.len() >= limit {
            break;
        }
        prefixes.push(Prefix {
            parent: Some(0),
            text: format!("Passage: {}\n", p.context),
        });
        let prefix = prefixes.len() - 1;
        for (id, q, answers) in p.questions {
            if items.len() >= limit {
                break;
            }
            items.push(Item {
                id,
                prefix: Some(prefix),
                prompt: format!("Question: {q}\nAnswer:"),
                group: "squad".into(),
                cluster,
                kind: ItemKind::Generate {
                    answers,
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
