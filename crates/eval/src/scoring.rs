//! The scoring engine: runs a tokenized task on a [`CausalLm`] and returns, per item, the greedy
//! output, the log-likelihood of each choice, or the label log-probabilities.
//!
//! Throughput is what this module is for (a sweep evaluates dozens of pruned models on a small
//! CPU). On such a machine a forward pass over few rows is bound by reading the weights, not by
//! arithmetic, so the engine:
//!
//! * computes every shared prefix (few-shot demonstrations, a passage) once and clones its KV
//!   cache for each item;
//! * runs the pending work of many items in *lockstep*: layer by layer, all items' inputs pass
//!   through layer *i* (in parallel, one item per thread) before any reaches layer *i + 1*, so a
//!   layer's weights are read from memory once per step and then come from cache;
//! * computes the vocabulary head only for the rows that are scored, for all items of a step in
//!   one product;
//! * decodes greedily with the reference answer as a *draft* (speculative decoding): the prompt,
//!   the reference and a newline run in one pass, and the arg-max at each position shows how far
//!   greedy decoding agrees with it. The output is exactly the greedy output; only the steps
//!   after the first disagreement are decoded one token at a time.
//!
//! Multiple-choice items run their context once, together with the longest choice; the cache is
//! then cut back to the context and every other choice continues from a copy of it. A choice's
//! first token is scored from the context's last row, so a one-token choice costs no forward
//! pass of its own.

use std::time::Instant;

use rayon::prelude::*;
use secateurs_model::arch::{LayerKvCache, SeqPart};
use secateurs_model::model::{argmax, CausalLm};
use secateurs_model::ops::{log_sum_exp, Matrix};
use secateurs_model::tokenizer::Tokenizer;
use secateurs_model::ModelError;

use crate::error::EvalError;
use crate::tasks::{ItemKind, TaskData};

/// Items in flight at once.
const WINDOW: usize = 48;
/// Upper bound on the positions held in the KV caches of the items in flight (each position
/// costs `layers × 2 × kv_width × 4` bytes: 46 KB for the default model).
const CACHE_BUDGET: usize = 12_288;
/// Rows stacked into one pass through a decoder layer: enough for the linear layers to run as
/// efficient matrix products, few enough that the layer's activations stay in cache.
const GROUP_ROWS: usize = 512;
/// Jobs of at least this many tokens run on their own (see [`forward_lockstep`]).
const LONG_JOB: usize = 48;
/// Rows of the vocabulary head computed together (`(256, vocab)` logits: 50 MB at 49k).
const HEAD_CHUNK: usize = 256;

/// A task's prompts as token ids.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub prefixes: Vec<PrefixPlan>,
    pub items: Vec<ItemPlan>,
}

/// A shared prefix: its tokens follow its parent's.
#[derive(Debug, Clone)]
pub(crate) struct PrefixPlan {
    pub parent: Option<usize>,
    /// Tokens after the parent's.
    pub tokens: Vec<u32>,
    /// Position of the first token (the parent chain's length).
    pub start: usize,
}

/// One item.
#[derive(Debug, Clone)]
pub(crate) struct ItemPlan {
    pub prefix: Option<usize>,
    /// Position of the first prompt token.
    pub start: usize,
    /// Tokens after the prefix.
    pub prompt: Vec<u32>,
    pub kind: PlanKind,
}

/// What to compute for an item.
#[derive(Debug, Clone)]
pub(crate) enum PlanKind {
    /// Greedy generation with `draft` (reference answer + newline) verified first.
    Generate { draft: Vec<u32>, max_new: usize },
    /// Summed log-probability of each continuation.
    Choice { choices: Vec<Vec<u32>> },
    /// Log-probability of each label token at each query row (a row of `prompt`).
    Labels {
        rows: Vec<usize>,
        label_ids: Vec<u32>,
    },
}

/// The raw result of one item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ItemOut {
    /// Generated tokens, the stop token included when one ended generation.
    Generated(Vec<u32>),
    /// Summed log-probability of each choice and its token count.
    Choice(Vec<(f64, usize)>),
    /// Per query row, the log-probability of each label.
    Labels(Vec<Vec<f64>>),
}

/// Work counters of a run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RunStats {
    /// Positions run through the decoder layers.
    pub tokens: usize,
    /// Rows run through the vocabulary head.
    pub head_rows: usize,
    /// Lockstep steps.
    pub steps: usize,
    /// Wall time.
    pub seconds: f64,
}

/// Tokens that end a generation: any token whose text contains a newline, and end-of-sequence
/// tokens.
pub(crate) struct StopSet {
    stop: Vec<bool>,
    /// Tokens whose text is dropped from the output (end-of-sequence and similar).
    special: Vec<u32>,
}

impl StopSet {
    /// Builds the set for a tokenizer and a head of `vocab` outputs.
    pub fn new(tok: &Tokenizer, vocab: usize) -> Self {
        let mut stop = vec![false; vocab];
        let n = tok.vocab_size().min(vocab);
        let flags: Vec<bool> = (0..n as u32)
            .into_par_iter()
            .map(|id| tok.decode(&[id]).is_ok_and(|s| s.contains('\n')))
            .collect();
        stop[..n].copy_from_slice(&flags);
        let mut special: Vec<u32> = tok.eos_id.into_iter().collect();
        for name in [
            "<|im_end|>",
            "<|endoftext|>",
            "</s>",
            "<|eot_id|>",
            "<|end_of_text|>",
        ] {
            if let Some(id) = tok.token_id(name) {
                if !special.contains(&id) {
                    special.push(id);
                }
            }
        }
        for &id in &special {
            if let Some(s) = stop.get_mut(id as usize) {
                *s = true;
            }
        }
        StopSet { stop, special }
    }

    /// Whether `id` ends a generation.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stop.get(id as usize).copied().unwrap_or(false)
    }

    /// Whether `id` is an end-of-sequence-like token whose text is not part of the answer.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.contains(&id)
    }
}

/// The generated text: special stop tokens dropped, cut at the first newline, trimmed.
pub(crate) fn output_text(
    tok: &Tokenizer,
    stops: &StopSet,
    generated: &[u32],
) -> Result<String, EvalError> {
    let ids: Vec<u32> = generated
        .iter()
        .copied()
        .filter(|&t| !stops.is_special(t))
        .collect();
    let text = tok.decode(&ids)?;
    Ok(text.split('\n').next().unwrap_or("").trim().to_string())
}

/// Encodes `text`, without the tokenizer's leading BOS if it adds one.
fn encode_bare(tok: &Tokenizer, text: &str) -> Result<Vec<u32>, EvalError> {
    let mut ids = tok.encode(text)?;
    if let (Some(bos), Some(&first)) = (tok.bos_id, ids.first()) {
        if first == bos {
            ids.remove(0);
        }
    }
    Ok(ids)
}

/// The tokens of `continuation` after `context`, as the whole string `context + continuation`
/// tokenizes (lm-eval-harness's rule); when the context's tokens are not a prefix of the whole,
/// the continuation is tokenized on its own.
fn continuation_tokens(
    tok: &Tokenizer,
    context: &str,
    context_ids: &[u32],
    continuation: &str,
) -> Result<Vec<u32>, EvalError> {
    let whole = tok.encode(&format!("{context}{continuation}"))?;
    if whole.len() > context_ids.len() && whole.starts_with(context_ids) {
        return Ok(whole[context_ids.len()..].to_vec());
    }
    encode_bare(tok, continuation)
}

/// Tokenizes a task. Each prefix chain (up to its last non-whitespace character) and each full
/// prompt is tokenized as one string; a prefix (or item) is attached to its parent only when the
/// parent's tokens are a prefix of its own, otherwise it stands alone, so the tokens the model
/// sees are always those of the whole prompt string.
///
/// # Errors
/// Tokenizer failures, an empty prompt, or label strings that are not single tokens.
pub(crate) fn plan(task: &TaskData, tok: &Tokenizer) -> Result<Plan, EvalError> {
    let name = task.info.name;
    // Full token sequence of every prefix chain.
    let mut prefix_full: Vec<Vec<u32>> = Vec::with_capacity(task.prefixes.len());
    let mut prefixes: Vec<PrefixPlan> = Vec::with_capacity(task.prefixes.len());
    for (i, p) in task.prefixes.iter().enumerate() {
        if p.parent.is_some_and(|q| q >= i) {
            return Err(EvalError::Format {
                task: name.into(),
                reason: format!("prefix {i} names a later parent"),
            });
        }
        // The shared part ends at the last non-whitespace character: whitespace before the next
        // piece (`"\n\n"` then `"Q:"`) may tokenize differently from whitespace at the end of a
        // string, so it goes with what follows.
        let full_text = task.prefix_text(Some(i));
        let text = full_text.trim_end();
        let full = if text.is_empty() {
            Vec::new()
        } else {
            tok.encode(text)?
        };
        let (parent, tokens, start) = match p.parent {
            Some(q) if full.starts_with(&prefix_full[q]) => (
                Some(q),
                full[prefix_full[q].len()..].to_vec(),
                prefix_full[q].len(),
            ),
            _ => (None, full.clone(), 0),
        };
        prefixes.push(PrefixPlan {
            parent,
            tokens,
            start,
        });
        prefix_full.push(full);
    }
    let mut items = Vec::with_capacity(task.items.len());
    for (i, it) in task.items.iter().enumerate() {
        let text = task.full_prompt(i);
        let full = tok.encode(&text)?;
        let (prefix, start) = match it.prefix {
            Some(p) if full.len() > prefix_full[p].len() && full.starts_with(&prefix_full[p]) => {
                (Some(p), prefix_full[p].len())
            }
            _ => (None, 0),
        };
        let prompt = full[start..].to_vec();
        if prompt.is_empty() {
            return Err(EvalError::Format {
                task: name.into(),
                reason: format!("item {} has an empty prompt", it.id),
            });
        }
        let kind = match &it.kind {
            ItemKind::Generate {
                answers, max_new, ..
            } => {
                let draft = match answers.first() {
                    Some(a) => {
                        let whole = tok.encode(&format!("{text} {}\n", a.trim()))?;
                        if whole.len() > full.len() && whole.starts_with(&full) {
                            whole[full.len()..].to_vec()
                        } else {
                            Vec::new()
                        }
                    }
                    None => Vec::new(),
                };
                PlanKind::Generate {
                    draft,
                    max_new: (*max_new).max(1),
                }
            }
            ItemKind::Choice { choices, .. } => {
                let mut toks = Vec::with_capacity(choices.len());
                for c in choices {
                    let ids = continuation_tokens(tok, &text, &full, c)?;
                    if ids.is_empty() {
                        return Err(EvalError::Format {
                            task: name.into(),
                            reason: format!("item {}: choice {c:?} has no tokens", it.id),
                        });
                    }
                    toks.push(ids);
                }
                PlanKind::Choice { choices: toks }
            }
            ItemKind::Labels {
                labels,
                shown,
                queries,
                ..
            } => {
                let mut label_ids = Vec::with_capacity(labels.len());
                for l in labels {
                    match encode_bare(tok, l)?.as_slice() {
                        [id] => label_ids.push(*id),
                        other => {
                            return Err(EvalError::Format {
                                task: name.into(),
                                reason: format!(
                                    "label {l:?} is {} tokens for this tokenizer; it must be one",
                                    other.len()
                                ),
                            })
                        }
                    }
                }
                // Positions of the label tokens, which must spell the shown labels in order.
                let found: Vec<(usize, usize)> = prompt
                    .iter()
                    .enumerate()
                    .filter_map(|(pos, t)| label_ids.iter().position(|l| l == t).map(|l| (pos, l)))
                    .collect();
                let spelled: Vec<usize> = found.iter().map(|f| f.1).collect();
                if spelled != *shown {
                    return Err(EvalError::Format {
                        task: name.into(),
                        reason: format!(
                            "item {}: the label tokens could not be located in the tokenized prompt",
                            it.id
                        ),
                    });
                }
                let mut rows = Vec::with_capacity(queries.len());
                for &q in queries {
                    let pos = found.get(q).map(|f| f.0).unwrap_or(0);
                    if pos == 0 {
                        return Err(EvalError::Format {
                            task: name.into(),
                            reason: format!("item {}: query line {q} has no label token", it.id),
                        });
                    }
                    rows.push(pos - 1);
                }
                PlanKind::Labels { rows, label_ids }
            }
        };
        items.push(ItemPlan {
            prefix,
            start,
            prompt,
            kind,
        });
    }
    Ok(Plan { prefixes, items })
}

/// One forward pass of a step: `tokens` at positions `start..` after what `cache` holds.
struct Job {
    cache: Vec<LayerKvCache>,
    tokens: Vec<u32>,
    start: usize,
    /// Rows of the output to score, with the tokens whose log-probabilities are wanted there.
    rows: Vec<(usize, Vec<u32>)>,
    owner: Owner,
}

#[derive(Debug, Clone, Copy)]
enum Owner {
    Prefix(usize),
    /// Item index and, for a choice continuation, the choice.
    Item(usize, Option<usize>),
}

/// A scored row.
#[derive(Debug, Clone)]
struct RowOut {
    argmax: u32,
    logprobs: Vec<f64>,
}

/// The result of one job.
struct JobOut {
    cache: Vec<LayerKvCache>,
    rows: Vec<RowOut>,
    owner: Owner,
}

/// Runs the decoder layers for all jobs in lockstep and returns each job's final-normed hidden
/// states `(tokens, hidden)`; every job passes layer *i* before any reaches layer *i + 1*, so a
/// layer's weights are read from memory once per step.
///
/// Short jobs (decode steps, choice continuations) are stacked into groups of up to
/// [`GROUP_ROWS`] rows, so that each linear layer runs once per group as a matrix product over
/// all of their rows ([`secateurs_model::arch::DecoderLayer::forward_batch`]; attention stays
/// per job). Long jobs (prompts) are already matrix products: they run side by side, one per
/// thread, which also spreads their norms and activations over the threads.
fn forward_lockstep(model: &CausalLm, jobs: &mut [&mut Job]) -> Result<Vec<Matrix>, ModelError> {
    let arch = &model.arch;
    let hidden = model.config().hidden_size;
    // Groups of consecutive jobs: a long job alone, short ones stacked.
    let mut bounds: Vec<(usize, usize)> = Vec::new();
    let (mut g0, mut rows) = (0, 0);
    for (i, j) in jobs.iter().enumerate() {
        let n = j.tokens.len();
        let long = n >= LONG_JOB;
        if i > g0 && (long || rows + n > GROUP_ROWS || jobs[g0].tokens.len() >= LONG_JOB) {
            bounds.push((g0, i));
            (g0, rows) = (i, 0);
        }
        rows += n;
    }
    bounds.push((g0, jobs.len()));
    let mut xs: Vec<Matrix> = Vec::with_capacity(bounds.len());
    for &(a, b) in &bounds {
        let mut data = Vec::new();
        for j in &jobs[a..b] {
            data.extend_from_slice(&arch.embed(&j.tokens, j.start)?.data);
        }
        xs.push(Matrix::from_vec(data.len() / hidden, hidden, data)); // (Σ tokens, hidden)
    }
    // Split the jobs along the group bounds so that groups can run in parallel.
    let mut groups: Vec<&mut [&mut Job]> = Vec::with_capacity(bounds.len());
    let mut rest: &mut [&mut Job] = jobs;
    for &(a, b) in &bounds {
        let (g, r) = std::mem::take(&mut rest).split_at_mut(b - a);
        groups.push(g);
        rest = r;
    }
    for (li, layer) in arch.layers().iter().enumerate() {
        let run = |x: &mut Matrix, g: &mut [&mut Job]| -> Result<(), ModelError> {
            let mut parts: Vec<SeqPart<'_>> = g
                .iter_mut()
                .map(|j| SeqPart {
                    start: j.start,
                    rows: j.tokens.len(),
                    cache: Some(&mut j.cache[li]),
                })
                .collect();
            *x = layer.forward_batch(x, &mut parts)?;
            Ok(())
        };
        // Stacked groups use every thread inside their matrix products; long jobs one each.
        for (x, g) in xs.iter_mut().zip(groups.iter_mut()) {
            if g[0].tokens.len() < LONG_JOB {
                run(x, g)?;
            }
        }
        xs.par_iter_mut()
            .zip(groups.par_iter_mut())
            .filter(|(_, g)| g[0].tokens.len() >= LONG_JOB)
            .try_for_each(|(x, g)| run(x, g))?;
    }
    let mut out = Vec::with_capacity(bounds.len());
    for (x, g) in xs.iter().zip(&groups) {
        let x = arch.final_norm(x); // (Σ tokens, hidden)
        let mut r0 = 0;
        for j in g.iter() {
            let r1 = r0 + j.tokens.len();
            out.push(Matrix::from_vec(
                r1 - r0,
                hidden,
                x.data[r0 * hidden..r1 * hidden].to_vec(),
            ));
            r0 = r1;
        }
    }
    Ok(out)
}

/// Runs one step: the decoder layers for every job, then the head for every scored row.
fn run_step(
    model: &CausalLm,
    mut jobs: Vec<Job>,
    stats: &mut RunStats,
) -> Result<Vec<JobOut>, EvalError> {
    let hidden_size = model.config().hidden_size;
    let mut runnable: Vec<&mut Job> = jobs.iter_mut().filter(|j| !j.tokens.is_empty()).collect();
    stats.tokens += runnable.iter().map(|j| j.tokens.len()).sum::<usize>();
    stats.steps += 1;
    let hidden = if runnable.is_empty() {
        Vec::new()
    } else {
        forward_lockstep(model, &mut runnable)?
    };
    // Every scored row, stacked: (rows, hidden).
    let mut stacked: Vec<f32> = Vec::new();
    let mut targets: Vec<&[u32]> = Vec::new();
    let mut h = hidden.iter();
    for j in jobs.iter().filter(|j| !j.tokens.is_empty()) {
        let Some(hj) = h.next() else { break };
        for (r, t) in &j.rows {
            if *r >= hj.rows {
                return Err(EvalError::Model(ModelError::Input(format!(
                    "internal: row {r} of a {}-token job scored",
                    hj.rows
                ))));
            }
            stacked.extend_from_slice(hj.row(*r));
            targets.push(t);
        }
    }
    let n_rows = targets.len();
    stats.head_rows += n_rows;
    let head = model.arch.head();
    let mut scored: Vec<RowOut> = Vec::with_capacity(n_rows);
    let mut r0 = 0;
    while r0 < n_rows {
        let r1 = (r0 + HEAD_CHUNK).min(n_rows);
        let x = Matrix::from_vec(
            r1 - r0,
            hidden_size,
            stacked[r0 * hidden_size..r1 * hidden_size].to_vec(),
        ); // (r1 - r0, hidden)
        let logits = head.forward(&x); // (r1 - r0, vocab)
        let vocab = logits.cols;
        let outs: Vec<Result<RowOut, EvalError>> = (r0..r1)
            .into_par_iter()
            .map(|r| {
                let row = logits.row(r - r0);
                let lse = log_sum_exp(row);
                let logprobs = targets[r]
                    .iter()
                    .map(|&t| {
                        row.get(t as usize).map(|&v| v as f64 - lse).ok_or_else(|| {
                            EvalError::Model(ModelError::Input(format!(
                                "token id {t} is outside the head's {vocab} outputs"
                            )))
                        })
                    })
                    .collect::<Result<Vec<f64>, EvalError>>()?;
                Ok(RowOut {
                    argmax: argmax(row),
                    logprobs,
                })
            })
            .collect();
        for o in outs {
            scored.push(o?);
        }
        r0 = r1;
    }
    drop(targets);
    let mut it = scored.into_iter();
    Ok(jobs
        .into_iter()
        .map(|j| JobOut {
            rows: it.by_ref().take(j.rows.len()).collect(),
            cache: j.cache,
            owner: j.owner,
        })
        .collect())
}

/// Keeps the first `len` positions of every layer's cache (drops rejected draft tokens).
fn truncate_cache(cache: &mut [LayerKvCache], len: usize) {
    for c in cache {
        c.truncate(len);
    }
}

/// A prefix's computed state.
#[derive(Default)]
struct PrefixSlot {
    cache: Option<Vec<LayerKvCache>>,
    ready: bool,
    scheduled: bool,
    /// Items and child prefixes that have not yet taken a copy.
    users_left: usize,
}

/// An item in flight.
enum State {
    /// Waiting for its prefix.
    Start,
    /// Its first job (prompt, plus the draft for generation) is running.
    First,
    /// Generation: a one-token job is running; the cache will hold `pos + 1` positions.
    Decoding { pos: usize, generated: Vec<u32> },
    /// Multiple choice: context done, `pending` continuation jobs running.
    Choices {
        first: Vec<f64>,
        rest: Vec<f64>,
        pending: usize,
    },
}

struct Active {
    item: usize,
    state: State,
    /// Positions this item may hold in its caches (for the memory budget).
    footprint: usize,
}

/// Runs every item of `plan`; `progress(done, total)` is called after each step.
///
/// # Errors
/// A model failure (e.g. a prompt longer than the model's context).
pub(crate) fn run(
    model: &CausalLm,
    plan: &Plan,
    stops: &StopSet,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<ItemOut>, RunStats), EvalError> {
    let t0 = Instant::now();
    let mut stats = RunStats::default();
    let n = plan.items.len();
    let mut results: Vec<Option<ItemOut>> = vec![None; n];
    let mut slots: Vec<PrefixSlot> = plan
        .prefixes
        .iter()
        .map(|_| PrefixSlot::default())
        .collect();
    for p in &plan.prefixes {
        if let Some(q) = p.parent {
            slots[q].users_left += 1;
        }
    }
    for it in &plan.items {
        if let Some(p) = it.prefix {
            slots[p].users_left += 1;
        }
    }
    let mut active: Vec<Active> = Vec::new();
    let mut carry: Vec<Job> = Vec::new(); // follow-up jobs created while dispatching
    let mut next = 0;
    let mut done = 0;
    loop {
        // Refill the window within the cache budget.
        let mut held: usize = active.iter().map(|a| a.footprint).sum();
        while next < n && active.len() < WINDOW {
            let it = &plan.items[next];
            let extra = match &it.kind {
                PlanKind::Generate { max_new, .. } => *max_new,
                PlanKind::Choice { choices } => choices.iter().map(Vec::len).sum(),
                PlanKind::Labels { .. } => 0,
            };
            let footprint = it.start + it.prompt.len() + extra;
            if !active.is_empty() && held + footprint > CACHE_BUDGET {
                break;
            }
            held += footprint;
            active.push(Active {
                item: next,
                state: State::Start,
                footprint,
            });
            next += 1;
        }
        if active.is_empty() {
            break;
        }
        let mut jobs: Vec<Job> = std::mem::take(&mut carry);
        // Prefixes needed by waiting items: the first not-ready one on each chain whose parent
        // is ready.
        for a in &active {
            if !matches!(a.state, State::Start) {
                continue;
            }
            let mut p = plan.items[a.item].prefix;
            while let Some(i) = p {
                if slots[i].ready {
                    break;
                }
                let parent = plan.prefixes[i].parent;
                if parent.is_none_or(|q| slots[q].ready) {
                    if !slots[i].scheduled {
                        slots[i].scheduled = true;
                        let (cache, _) = take_prefix(model, &mut slots, parent);
                        jobs.push(Job {
                            cache,
                            tokens: plan.prefixes[i].tokens.clone(),
                            start: plan.prefixes[i].start,
                            rows: Vec::new(),
                            owner: Owner::Prefix(i),
                        });
                    }
                    break;
                }
                p = parent;
            }
        }
        // Items whose prefix is ready start.
        for a in active.iter_mut() {
            if !matches!(a.state, State::Start) {
                continue;
            }
            let it = &plan.items[a.item];
            if !it.prefix.is_none_or(|p| slots[p].ready) {
                continue;
            }
            let (cache, _) = take_prefix(model, &mut slots, it.prefix);
            jobs.push(first_job(a.item, it, cache));
            a.state = State::First;
        }
        if jobs.is_empty() {
            return Err(EvalError::Model(ModelError::Input(
                "internal: the scoring engine made no progress".into(),
            )));
        }
        for out in run_step(model, jobs, &mut stats)? {
            match out.owner {
                Owner::Prefix(i) => {
                    let slot = &mut slots[i];
                    slot.ready = true;
                    if slot.users_left > 0 {
                        slot.cache = Some(out.cache);
                    }
                }
                Owner::Item(idx, choice) => {
                    let Some(a) = active.iter_mut().find(|a| a.item == idx) else {
                        continue;
                    };
                    if let Some(res) = advance(a, &plan.items[idx], out, choice, stops, &mut carry)?
                    {
                        results[idx] = Some(res);
                    }
                }
            }
        }
        let before = active.len();
        active.retain(|a| results[a.item].is_none());
        done += before - active.len();
        progress(done, n);
    }
    stats.seconds = t0.elapsed().as_secs_f64();
    results
        .into_iter()
        .map(|r| {
            r.ok_or_else(|| {
                EvalError::Model(ModelError::Input("internal: an item was not scored".into()))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|r| (r, stats))
}

/// A copy of a prefix's cache (an empty cache without a prefix); the prefix's own cache is
/// handed over to its last user instead of copied.
fn take_prefix(
    model: &CausalLm,
    slots: &mut [PrefixSlot],
    prefix: Option<usize>,
) -> (Vec<LayerKvCache>, Option<usize>) {
    let Some(p) = prefix else {
        return (model.new_cache(), None);
    };
    let slot = &mut slots[p];
    slot.users_left = slot.users_left.saturating_sub(1);
    let cache = if slot.users_left == 0 {
        slot.cache.take()
    } else {
        slot.cache.clone()
    };
    (cache.unwrap_or_else(|| model.new_cache()), Some(p))
}

/// The first job of an item: the prompt (plus the draft for generation).
fn first_job(idx: usize, it: &ItemPlan, cache: Vec<LayerKvCache>) -> Job {
    let m = it.prompt.len(); // ≥ 1 (checked by `plan`)
    let mut tokens = it.prompt.clone();
    let rows = match &it.kind {
        PlanKind::Generate { draft, .. } => {
            tokens.extend_from_slice(draft);
            (0..=draft.len()).map(|i| (m - 1 + i, Vec::new())).collect()
        }
        PlanKind::Choice { choices } => {
            // The context, then the longest choice's tokens (scored here too; the cache is cut
            // back to the context afterwards), so the context costs no pass of its own.
            let mut rows = vec![(m - 1, choices.iter().map(|c| c[0]).collect())];
            if let Some(c) = ride_along(choices) {
                let toks = &choices[c];
                tokens.extend_from_slice(&toks[..toks.len() - 1]);
                rows.extend((1..toks.len()).map(|i| (m - 1 + i, vec![toks[i]])));
            }
            rows
        }
        PlanKind::Labels { rows, label_ids } => {
            rows.iter().map(|&r| (r, label_ids.clone())).collect()
        }
    };
    Job {
        cache,
        tokens,
        start: it.start,
        rows,
        owner: Owner::Item(idx, None),
    }
}

/// The multi-token choice that runs in the same pass as the context: the longest one (ties: the
/// first), or `None` when every choice is one token.
fn ride_along(choices: &[Vec<u32>]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (c, t) in choices.iter().enumerate() {
        if t.len() > 1 && best.is_none_or(|b| t.len() > choices[b].len()) {
            best = Some(c);
        }
    }
    best
}

/// Feeds a job's result to its item. Returns the item's result when it is finished; otherwise
/// pushes the item's next jobs onto `next`.
fn advance(
    a: &mut Active,
    it: &ItemPlan,
    out: JobOut,
    choice: Option<usize>,
    stops: &StopSet,
    next: &mut Vec<Job>,
) -> Result<Option<ItemOut>, EvalError> {
    let state = std::mem::replace(&mut a.state, State::First);
    let mut decode = |a: &mut Active, cache: Vec<LayerKvCache>, pos: usize, generated: Vec<u32>| {
        let last = generated.last().copied().unwrap_or(0);
        next.push(Job {
            cache,
            tokens: vec![last],
            start: pos,
            rows: vec![(0, Vec::new())],
            owner: Owner::Item(a.item, None),
        });
        a.state = State::Decoding { pos, generated };
    };
    match (&it.kind, state) {
        (PlanKind::Generate { draft, max_new }, State::First) => {
            // Verify the draft: accept while greedy agrees with it.
            let mut generated = Vec::new();
            let mut j = 0;
            loop {
                let g = out.rows[j].argmax;
                generated.push(g);
                if stops.is_stop(g) || generated.len() >= *max_new {
                    return Ok(Some(ItemOut::Generated(generated)));
                }
                if j < draft.len() && g == draft[j] {
                    j += 1;
                } else {
                    break;
                }
            }
            // The cache holds the prompt and the whole draft; keep the accepted part.
            let mut cache = out.cache;
            let pos = it.start + it.prompt.len() + j;
            truncate_cache(&mut cache, pos);
            decode(a, cache, pos, generated);
            Ok(None)
        }
        (PlanKind::Generate { max_new, .. }, State::Decoding { pos, mut generated }) => {
            let g = out.rows[0].argmax;
            generated.push(g);
            if stops.is_stop(g) || generated.len() >= *max_new {
                return Ok(Some(ItemOut::Generated(generated)));
            }
            decode(a, out.cache, pos + 1, generated);
            Ok(None)
        }
        (PlanKind::Choice { choices }, State::First) => {
            // Context done (with the ride-along choice): first-token log-probabilities; queue the
            // other multi-token choices from a copy of the context's cache.
            let first = out.rows[0].logprobs.clone();
            let mut rest = vec![0.0; choices.len()];
            let riding = ride_along(choices);
            if let Some(c) = riding {
                rest[c] = out.rows[1..].iter().map(|r| r.logprobs[0]).sum();
            }
            let pos = it.start + it.prompt.len();
            let multi: Vec<usize> = (0..choices.len())
                .filter(|&c| choices[c].len() > 1 && Some(c) != riding)
                .collect();
            if multi.is_empty() {
                return Ok(Some(ItemOut::Choice(
                    (0..choices.len())
                        .map(|c| (first[c] + rest[c], choices[c].len()))
                        .collect(),
                )));
            }
            let mut cache = Some(out.cache);
            if let Some(c) = cache.as_mut() {
                truncate_cache(c, pos);
            }
            for (n, &c) in multi.iter().enumerate() {
                let toks = &choices[c];
                let job_cache = if n + 1 == multi.len() {
                    cache.take()
                } else {
                    cache.clone()
                }
                .unwrap_or_default();
                next.push(Job {
                    cache: job_cache,
                    tokens: toks[..toks.len() - 1].to_vec(),
                    start: pos,
                    rows: (0..toks.len() - 1)
                        .map(|i| (i, vec![toks[i + 1]]))
                        .collect(),
                    owner: Owner::Item(a.item, Some(c)),
                });
            }
            a.state = State::Choices {
                first,
                rest,
                pending: multi.len(),
            };
            Ok(None)
        }
        (
            PlanKind::Choice { choices },
            State::Choices {
                first,
                mut rest,
                pending,
            },
        ) => {
            if let Some(c) = choice {
                rest[c] = out.rows.iter().map(|r| r.logprobs[0]).sum();
            }
            let pending = pending.saturating_sub(1);
            if pending == 0 {
                return Ok(Some(ItemOut::Choice(
                    (0..choices.len())
                        .map(|c| (first[c] + rest[c], choices[c].len()))
                        .collect(),
                )));
            }
            a.state = State::Choices {
                first,
                rest,
                pending,
            };
            Ok(None)
        }
        (PlanKind::Labels { .. }, State::First) => Ok(Some(ItemOut::Labels(
            out.rows.into_iter().map(|r| r.logprobs).collect(),
        ))),
        _ => Err(EvalError::Model(ModelError::Input(
            "internal: unexpected item state in the scoring engine".into(),
        ))),
    }
}
