//! Running the task suite on a loaded model: [`build_tasks`] (model-independent; a sweep builds
//! once and scores many models), [`score_task`] / [`score_tasks`] and the one-call
//! [`evaluate`]. Results are plain serializable structs.

use std::collections::BTreeMap;
use std::time::Instant;

use secateurs_data::Cache;
use secateurs_model::model::CausalLm;
use secateurs_model::tokenizer::Tokenizer;
use serde::Serialize;

use crate::ci::{clustered_proportion, Proportion};
use crate::error::EvalError;
use crate::normalize::{contains_answer, exact_match};
use crate::scoring::{self, ItemOut, StopSet};
use crate::tasks::{self, BuildOptions, Family, ItemKind, TaskData, TaskInfo};

/// Options of an evaluation run.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalOptions {
    /// Seed of item sampling.
    pub seed: u64,
    /// Items per task (default: each task's own default limit).
    pub limit: Option<usize>,
    /// Few-shot demonstrations (default: each task's own).
    pub shots: Option<usize>,
    /// Sample items whose prompts and outputs are returned per task.
    pub show: usize,
}

impl EvalOptions {
    fn build(&self) -> BuildOptions {
        BuildOptions {
            seed: self.seed,
            limit: self.limit,
            shots: self.shots,
        }
    }
}

/// One item shown with `--show`.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Item id.
    pub id: String,
    /// The exact prompt text (prefixes included).
    pub prompt: String,
    /// The greedy output, the chosen choice, or the predicted labels.
    pub output: String,
    /// The references, the correct choice, or the true labels.
    pub expected: Vec<String>,
    /// Whether the primary metric counts it correct (for label sequences: all queries).
    pub correct: bool,
    /// Per choice: the continuation and its summed log-probability (multiple choice only).
    pub scores: Vec<(String, f64)>,
}

/// The result of one task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// Task name.
    pub task: String,
    /// The ability measured.
    pub family: Family,
    /// One-line description.
    pub summary: String,
    /// Name of the primary metric.
    pub metric: String,
    /// The primary metric with its 95 % interval.
    pub accuracy: Proportion,
    /// Chance level of the primary metric, when it has one.
    pub chance: Option<f64>,
    /// Every metric of the task.
    pub metrics: BTreeMap<String, Proportion>,
    /// The primary metric per group (relation, sub-task, dimension, ...).
    pub breakdown: BTreeMap<String, Proportion>,
    /// Items scored (label sequences count once per query).
    pub items: usize,
    /// Items the data offered before the limit.
    pub available: usize,
    /// Few-shot demonstrations per prompt.
    pub shots: usize,
    /// Seed of the item sampling.
    pub seed: u64,
    /// Wall time of the scoring (tokenization included).
    pub seconds: f64,
    /// CPU time (all threads) of this process during the scoring, where the platform reports it
    /// (Linux): on a shared machine it shows the work done regardless of other load.
    pub cpu_seconds: Option<f64>,
    /// Items per second.
    pub items_per_second: f64,
    /// Positions run through the decoder layers.
    pub tokens: usize,
    /// `tokens / seconds`.
    pub tokens_per_second: f64,
    /// Rows run through the vocabulary head.
    pub head_rows: usize,
    /// Lockstep steps of the scoring engine (each one pass through the layers for every item
    /// in flight).
    pub steps: usize,
    /// Sample prompts and outputs (`--show`).
    pub samples: Vec<Sample>,
}

/// The result of a run over several tasks.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Per task, in the order run.
    pub tasks: Vec<TaskResult>,
    /// Seed of the item sampling.
    pub seed: u64,
    /// Wall time of everything (building the items included).
    pub seconds: f64,
    /// Worker threads.
    pub threads: usize,
}

/// Builds the items of several tasks.
///
/// # Errors
/// Missing data (the error says to run `secateurs fetch`), malformed data or bad options.
pub fn build_tasks(
    cache: &Cache,
    infos: &[&TaskInfo],
    opts: &EvalOptions,
) -> Result<Vec<TaskData>, EvalError> {
    let b = opts.build();
    infos.iter().map(|i| tasks::build(i, cache, &b)).collect()
}

/// Per-item outcome: the metrics it scores, its breakdown group and cluster.
struct Outcome {
    group: String,
    cluster: usize,
    metrics: Vec<(&'static str, bool)>,
}

/// Index of the largest value (first on ties).
fn best(v: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, x) in v.enumerate() {
        if x > best.1 {
            best = (i, x);
        }
    }
    best.0
}

/// Scores one built task on a model; `progress(done, total)` is called as items finish.
///
/// # Errors
/// Tokenizer or model failures, or a prompt format the tokenizer cannot render.
pub fn score_task(
    model: &CausalLm,
    tok: &Tokenizer,
    task: &TaskData,
    show: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TaskResult, EvalError> {
    let stops = StopSet::new(tok, model.arch.head().out_features());
    score_with(model, tok, &stops, task, show, progress)
}

fn score_with(
    model: &CausalLm,
    tok: &Tokenizer,
    stops: &StopSet,
    task: &TaskData,
    show: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TaskResult, EvalError> {
    let t0 = Instant::now();
    let cpu0 = process_cpu_seconds();
    let plan = scoring::plan(task, tok)?;
    let (outs, stats) = scoring::run(model, &plan, stops, progress)?;
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut samples = Vec::new();
    for (i, (item, out)) in task.items.iter().zip(&outs).enumerate() {
        let want_sample = i < show;
        match (&item.kind, out) {
            (
                ItemKind::Generate {
                    answers, memory, ..
                },
                ItemOut::Generated(ids),
            ) => {
                let text = scoring::output_text(tok, stops, ids)?;
                let em = exact_match(&text, answers);
                let contains = contains_answer(&text, answers);
                let metrics = if memory.is_empty() {
                    vec![("exact_match", em), ("contains", contains)]
                } else {
                    vec![
                        ("context_em", em),
                        ("context_contains", contains),
                        ("memory_em", exact_match(&text, memory)),
                        ("memory_contains", contains_answer(&text, memory)),
                    ]
                };
                let correct = metrics
                    .iter()
                    .find(|m| m.0 == task.info.primary)
                    .is_some_and(|m| m.1);
                if want_sample {
                    let mut expected = answers.clone();
                    expected.extend(memory.iter().map(|m| format!("(memory) {m}")));
                    samples.push(Sample {
                        id: item.id.clone(),
                        prompt: task.full_prompt(i),
                        output: text,
                        expected,
                        correct,
                        scores: Vec::new(),
                    });
                }
                outcomes.push(Outcome {
                    group: item.group.clone(),
                    cluster: item.cluster,
                    metrics,
                });
            }
            (ItemKind::Choice { choices, gold }, ItemOut::Choice(ll)) => {
                let acc = best(ll.iter().map(|l| l.0)) == *gold;
                let norm = best(
                    ll.iter()
                        .zip(choices)
                        .map(|(l, c)| l.0 / c.trim_start().chars().count().max(1) as f64),
                ) == *gold;
                if want_sample {
                    let chosen = best(ll.iter().map(|l| l.0));
                    samples.push(Sample {
                        id: item.id.clone(),
                        prompt: task.full_prompt(i),
                        output: choices[chosen].trim().to_string(),
                        expected: vec![choices[*gold].trim().to_string()],
                        correct: acc,
                        scores: choices
                            .iter()
                            .zip(ll)
                            .map(|(c, l)| (c.trim().to_string(), l.0))
                            .collect(),
                    });
                }
                outcomes.push(Outcome {
                    group: item.group.clone(),
                    cluster: item.cluster,
                    metrics: vec![("acc", acc), ("acc_norm", norm)],
                });
            }
            (
                ItemKind::Labels {
                    labels,
                    truth,
                    queries,
                    query_groups,
                    ..
                },
                ItemOut::Labels(lp),
            ) => {
                let mut predicted = Vec::new();
                let mut all = true;
                for ((q, g), l) in queries.iter().zip(query_groups).zip(lp) {
                    let p = best(l.iter().copied());
                    let ok = p == truth[*q];
                    all &= ok;
                    predicted.push(labels[p].trim().to_string());
                    outcomes.push(Outcome {
                        group: g.clone(),
                        cluster: item.cluster,
                        metrics: vec![("acc", ok)],
                    });
                }
                if want_sample {
                    samples.push(Sample {
                        id: item.id.clone(),
                        prompt: task.full_prompt(i),
                        output: predicted.join(" "),
                        expected: vec![queries
                            .iter()
                            .map(|&q| labels[truth[q]].trim())
                            .collect::<Vec<_>>()
                            .join(" ")],
                        correct: all,
                        scores: Vec::new(),
                    });
                }
            }
            _ => {
                return Err(EvalError::Format {
                    task: task.info.name.into(),
                    reason: format!("item {}: result of the wrong kind", item.id),
                })
            }
        }
    }
    // Aggregate every metric by cluster; the primary one also by group.
    let mut per_metric: BTreeMap<String, BTreeMap<usize, (usize, usize)>> = BTreeMap::new();
    let mut per_group: BTreeMap<String, BTreeMap<usize, (usize, usize)>> = BTreeMap::new();
    for o in &outcomes {
        for &(name, ok) in &o.metrics {
            let c = per_metric
                .entry(name.to_string())
                .or_default()
                .entry(o.cluster)
                .or_default();
            c.0 += usize::from(ok);
            c.1 += 1;
            if name == task.info.primary {
                let g = per_group
                    .entry(o.group.clone())
                    .or_default()
                    .entry(o.cluster)
                    .or_default();
                g.0 += usize::from(ok);
                g.1 += 1;
            }
        }
    }
    let prop = |m: &BTreeMap<usize, (usize, usize)>| {
        clustered_proportion(&m.values().copied().collect::<Vec<_>>())
    };
    let metrics: BTreeMap<String, Proportion> = per_metric
        .iter()
        .map(|(k, v)| (k.clone(), prop(v)))
        .collect();
    let breakdown: BTreeMap<String, Proportion> = per_group
        .iter()
        .map(|(k, v)| (k.clone(), prop(v)))
        .collect();
    let accuracy = metrics
        .get(task.info.primary)
        .copied()
        .unwrap_or_else(|| crate::ci::proportion(0, 0));
    let seconds = t0.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    Ok(TaskResult {
        task: task.info.name.to_string(),
        family: task.info.family,
        summary: task.info.summary.to_string(),
        metric: task.info.primary.to_string(),
        accuracy,
        chance: task.chance(),
        metrics,
        breakdown,
        items: task.scored_units(),
        available: task.available,
        shots: task.shots,
        seed: task.seed,
        seconds,
        cpu_seconds,
        items_per_second: task.scored_units() as f64 / seconds.max(1e-9),
        tokens: stats.tokens,
        tokens_per_second: stats.tokens as f64 / seconds.max(1e-9),
        head_rows: stats.head_rows,
        steps: stats.steps,
        samples,
    })
}

/// User plus system CPU time of this process, from `/proc/self/stat` (Linux; `None` elsewhere).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / CLOCK_TICKS_PER_SECOND)
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux platform Rust supports.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Scores several built tasks; `progress(task, done, total)` is called as items finish.
///
/// # Errors
/// As [`score_task`].
pub fn score_tasks(
    model: &CausalLm,
    tok: &Tokenizer,
    tasks: &[TaskData],
    opts: &EvalOptions,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Vec<TaskResult>, EvalError> {
    let stops = StopSet::new(tok, model.arch.head().out_features());
    tasks
        .iter()
        .map(|t| {
            score_with(model, tok, &stops, t, opts.show, &mut |d, n| {
                progress(t.info.name, d, n)
            })
        })
        .collect()
}

/// Builds and scores the tasks named by `spec` (`all` or a comma-separated list).
///
/// # Errors
/// An unknown task name (listing the valid ones), missing data (saying to run
/// `secateurs fetch`), or a model failure.
pub fn evaluate(
    model: &CausalLm,
    tok: &Tokenizer,
    cache: &Cache,
    spec: &str,
    opts: &EvalOptions,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<EvalReport, EvalError> {
    let t0 = Instant::now();
    let infos = tasks::resolve(spec)?;
    let built = build_tasks(cache, &infos, opts)?;
    let results = score_tasks(model, tok, &built, opts, progress)?;
    Ok(EvalReport {
        tasks: results,
        seed: opts.seed,
        seconds: t0.elapsed().as_secs_f64(),
        threads: rayon::current_num_threads(),
    })
}
