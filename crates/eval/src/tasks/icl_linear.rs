//! `icl_linear` and `icl_linear_shuffled` — in-context learning of a linear classifier, and its
//! shuffled-label control.
//!
//! * Source: synthetic by nature, as in the paper; no data file. Each sequence draws
//!   `w ~ N(0, I_d)` with `d` cycling through 2, 4, 8, then 33 points `x = clamp(round(3·z), −9,
//!   9)`, `z ~ N(0, I_d)` (one signed digit per coordinate keeps each coordinate at two tokens),
//!   labelled `A` if `w·x > 0` and `B` if `w·x < 0` (points with `w·x = 0` are redrawn).
//! * Follows: Jin et al. 2023 (seeds 000/002), "in-context linear classification": accuracy vs
//!   50 % chance as a function of the dimension `d` and the number of examples `k`.
//! * Prompt: the points, one per line, each followed by its label; no instruction:
//!
//!   ```text
//!   3 -1 -> A
//!   0 2 -> B
//!   ...
//!   ```
//!
//!   Every line from the 9th to the 33rd is a query: the model has seen `k` = 8 … 32 labelled
//!   examples before it. One forward pass scores all of them (teacher forcing: the shown labels
//!   of earlier lines are in the prompt). A query counts as correct when the true label's token
//!   has a higher log-probability than the other label's token, so no generation is needed.
//!   The breakdown groups queries by `d` and by `k` in [8, 16), [16, 32) and 32.
//! * Control (`icl_linear_shuffled`): the same construction, but the labels shown in the prompt
//!   are a random permutation of the true labels (same class counts); queries are still scored
//!   against the true labels, so accuracy should be near 50 %. Above-chance accuracy on
//!   `icl_linear` together with chance on the control shows the model uses the mapping from
//!   `x` to label, not label frequencies.
//! * `--limit` counts queries (25 per sequence); the queries of one sequence form a cluster for
//!   the confidence interval.

use secateurs_data::Cache;

use super::{effective_limit, rng, BuildOptions, Family, Item, ItemKind, TaskData, TaskInfo};
use crate::error::EvalError;
use crate::rng::Rng;

/// Registry entry of the task.
pub const INFO: TaskInfo = TaskInfo {
    name: "icl_linear",
    family: Family::InContext,
    primary: "acc",
    default_limit: 750,
    summary:
        "in-context linear classifier, d in {2,4,8}, k = 8..32 examples, label log-probabilities",
    build,
};

/// Registry entry of the shuffled-label control.
pub const INFO_SHUFFLED: TaskInfo = TaskInfo {
    name: "icl_linear_shuffled",
    family: Family::InContext,
    primary: "acc",
    default_limit: 750,
    summary: "control for icl_linear: labels in the prompt shuffled (expect ~50%)",
    build,
};

/// Dimensions cycled through.
pub const DIMS: [usize; 3] = [2, 4, 8];
/// Fewest labelled examples before a query.
pub const K_MIN: usize = 8;
/// Most labelled examples before a query.
pub const K_MAX: usize = 32;
/// The label strings (one token each with a byte-level BPE tokenizer).
pub const LABELS: [&str; 2] = [" A", " B"];

/// Most queries one run may ask for (the data is synthetic, so this only bounds the run).
pub const MAX_QUERIES: usize = 10_000;

/// Queries per sequence.
pub const fn queries_per_sequence() -> usize {
    K_MAX - K_MIN + 1
}

/// One sequence: the rendered points and their true labels (0 = A, 1 = B).
pub(crate) fn sequence(rng: &mut Rng, d: usize, lines: usize) -> (Vec<String>, Vec<usize>) {
    let w: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
    let mut xs = Vec::with_capacity(lines);
    let mut ys = Vec::with_capacity(lines);
    while xs.len() < lines {
        let x: Vec<i32> = (0..d)
            .map(|_| (3.0 * rng.normal()).round().clamp(-9.0, 9.0) as i32)
            .collect();
        let dot: f64 = x.iter().zip(&w).map(|(&a, b)| a as f64 * b).sum();
        if dot == 0.0 {
            continue;
        }
        ys.push(usize::from(dot < 0.0));
        xs.push(
            x.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    (xs, ys)
}

fn k_bin(k: usize) -> &'static str {
    if k < 16 {
        "k=8..15"
    } else if k < 32 {
        "k=16..31"
    } else {
        "k=32"
    }
}

fn build(_cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    Ok(build_synthetic(opts, info))
}

/// Builds the sequences (no data file needed).
pub fn build_synthetic(opts: &BuildOptions, info: &TaskInfo) -> TaskData {
    let shuffled = info.name == INFO_SHUFFLED.name;
    let mut rng = rng(opts, info);
    let per = queries_per_sequence();
    // The control draws the same sequences as the task (same stream) and then shuffles labels.
    let mut seq_rng = Rng::for_task(opts.seed, INFO.name);
    let available = MAX_QUERIES;
    let limit = effective_limit(opts, info, available);
    let sequences = limit.div_ceil(per);
    let lines = K_MAX + 1;
    let mut items = Vec::with_capacity(sequences);
    let mut remaining = limit;
    for s in 0..sequences {
        let d = DIMS[s % DIMS.len()];
        let (xs, truth) = sequence(&mut seq_rng, d, lines);
        let mut shown = truth.clone();
        if shuffled {
            rng.shuffle(&mut shown);
        }
        let n_q = per.min(remaining);
        remaining -= n_q;
        let queries: Vec<usize> = (K_MIN..K_MIN + n_q).collect();
        let query_groups = queries
            .iter()
            .map(|&k| format!("d={d} {}", k_bin(k)))
            .collect();
        let prompt: String = xs
            .iter()
            .zip(&shown)
            .map(|(x, &y)| format!("{x} ->{}\n", LABELS[y]))
            .collect();
        items.push(Item {
            id: format!("seq{s}:d={d}"),
            prefix: None,
            prompt,
            group: format!("d={d}"),
            cluster: s,
            kind: ItemKind::Labels {
                labels: LABELS.iter().map(|s| s.to_string()).collect(),
                shown,
                truth,
                queries,
                query_groups,
            },
        });
    }
    TaskData {
        info: *info,
        prefixes: Vec::new(),
        items,
        available,
        shots: 0,
        seed: opts.seed,
    }
}
