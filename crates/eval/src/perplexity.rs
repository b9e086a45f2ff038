//! Perplexity over non-overlapping windows, the protocol of the SparseGPT and Wanda evaluation
//! code (Frantar & Alistarh 2023, §4 "Datasets"): the token stream is cut into
//! `⌊n / seqlen⌋` windows of `seqlen` tokens, each run independently from position 0; every
//! position but the first predicts the next token, and perplexity is
//! `exp(mean negative log-likelihood)` over all predictions.

use std::time::Instant;

use rayon::prelude::*;
use secateurs_model::linear::Linear;
use secateurs_model::model::CausalLm;
use secateurs_model::ops::{log_sum_exp, Matrix};
use serde::Serialize;

use crate::error::EvalError;

/// Positions whose logits are computed together.
const ROW_CHUNK: usize = 64;
/// Vocabulary entries per tile: a `(ROW_CHUNK, VOCAB_TILE)` block of logits (1 MB) stays in L2.
const VOCAB_TILE: usize = 4096;

/// Negative log-likelihood of every next-token prediction inside one window.
fn window_nll(model: &CausalLm, window: &[u32]) -> Result<Vec<f64>, EvalError> {
    let hidden = model.forward_hidden(window, 0, None)?; // (seqlen, hidden)
    let scored = window.len() - 1;
    let mut out = Vec::with_capacity(scored);
    let mut r0 = 0;
    while r0 < scored {
        let r1 = (r0 + ROW_CHUNK).min(scored);
        out.extend(next_token_nll(
            model.arch.head(),
            &hidden.slice_rows(r0, r1),
            &window[r0 + 1..r1 + 1],
        ));
        r0 = r1;
    }
    Ok(out)
}

/// Running log-sum-exp of one row over vocabulary tiles.
#[derive(Clone, Copy)]
struct Lse {
    max: f64,
    sum: f64,
}

impl Lse {
    const EMPTY: Lse = Lse {
        max: f64::NEG_INFINITY,
        sum: 0.0,
    };

    fn merge(self, o: Lse) -> Lse {
        if o.max == f64::NEG_INFINITY {
            return self;
        }
        if self.max == f64::NEG_INFINITY {
            return o;
        }
        let max = self.max.max(o.max);
        Lse {
            max,
            sum: self.sum * (self.max - max).exp() + o.sum * (o.max - max).exp(),
        }
    }

    fn of(row: &[f32]) -> Lse {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        Lse {
            max,
            sum: (log_sum_exp(row) - max).exp(),
        }
    }

    fn value(self) -> f64 {
        self.max + self.sum.ln()
    }
}

/// `−log p(target_r | h_r)` for each row of `hidden (rows, d)`: the head's logits are computed
/// tile by tile over the vocabulary (tiles in parallel), never as a whole `(rows, vocab)` matrix.
fn next_token_nll(head: &Linear, hidden: &Matrix, targets: &[u32]) -> Vec<f64> {
    let vocab = head.out_features();
    // Only dense f32 storage can hand out a tile of rows cheaply; other storage runs whole.
    let tile = if head.is_dense_f32() {
        VOCAB_TILE
    } else {
        vocab
    };
    let tiles: Vec<usize> = (0..vocab).step_by(tile).collect();
    let partial: Vec<(Vec<Lse>, Vec<Option<f64>>)> = tiles
        .par_iter()
        .map(|&v0| {
            let v1 = (v0 + tile).min(vocab);
            let logits = head.forward_outputs(hidden, v0..v1, 1); // (rows, tile)
            let lse = (0..hidden.rows).map(|r| Lse::of(logits.row(r))).collect();
            let hit = targets
                .iter()
                .enumerate()
                .map(|(r, &t)| {
                    (v0..v1)
                        .contains(&(t as usize))
                        .then(|| logits.row(r)[t as usize - v0] as f64)
                })
                .collect();
            (lse, hit)
        })
        .collect();
    (0..hidden.rows)
        .map(|r| {
            let lse = partial
                .iter()
                .fold(Lse::EMPTY, |acc, (l, _)| acc.merge(l[r]));
            let target = partial.iter().find_map(|(_, h)| h[r]).unwrap_or(f64::NAN);
            lse.value() - target
        })
        .collect()
}

/// How to cut the text.
#[derive(Debug, Clone, Copy)]
pub struct PerplexityOptions {
    /// Tokens per window.
    pub seqlen: usize,
    /// Evaluate at most this many windows (from the start).
    pub max_windows: Option<usize>,
}

/// The result of a perplexity run.
#[derive(Debug, Clone, Serialize)]
pub struct PerplexityReport {
    /// `exp(mean NLL)`.
    pub perplexity: f64,
    /// Mean negative log-likelihood in nats.
    pub mean_nll: f64,
    /// Windows evaluated.
    pub windows: usize,
    /// Tokens per window.
    pub seqlen: usize,
    /// Next-token predictions scored (`windows × (seqlen − 1)`).
    pub predictions: usize,
    /// Tokens in the whole text.
    pub text_tokens: usize,
    /// Wall time of the forward passes.
    pub seconds: f64,
    /// Tokens processed per second (`windows × seqlen / seconds`).
    pub tokens_per_second: f64,
}

/// Computes perplexity of `model` on `tokens`; `progress(done, total)` is called after each window.
///
/// # Errors
/// `seqlen < 2`, fewer tokens than one window, or a model failure (e.g. ids outside the vocabulary).
pub fn perplexity(
    model: &CausalLm,
    tokens: &[u32],
    opts: PerplexityOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PerplexityReport, EvalError> {
    if opts.seqlen < 2 {
        return Err(EvalError::BadOption {
            option: "--seqlen",
            reason: format!(
                "{} is too short: a window needs at least 2 tokens",
                opts.seqlen
            ),
        });
    }
    let available = tokens.len() / opts.seqlen;
    if available == 0 {
        return Err(EvalError::TooShort {
            tokens: tokens.len(),
            seqlen: opts.seqlen,
        });
    }
    let windows = opts.max_windows.map_or(available, |m| m.min(available));
    if windows == 0 {
        return Err(EvalError::BadOption {
            option: "--max-windows",
            reason: "must be at least 1".into(),
        });
    }
    let start = Instant::now();
    // Windows are independent: run as many at once as there are threads, each single-threaded
    // inside, which uses the cores better than splitting every product of one window.
    let batch = rayon::current_num_threads().max(1);
    let mut nll_sum = 0.0f64;
    let mut count = 0usize;
    let mut done = 0;
    while done < windows {
        let end = (done + batch).min(windows);
        let results: Vec<Result<Vec<f64>, EvalError>> = (done..end)
            .into_par_iter()
            .map(|w| window_nll(model, &tokens[w * opts.seqlen..(w + 1) * opts.seqlen]))
            .collect();
        for r in results {
            let nll = r?;
            nll_sum += nll.iter().sum::<f64>();
            count += nll.len();
        }
        done = end;
        progress(done, windows);
    }
    let seconds = start.elapsed().as_secs_f64();
    let mean_nll = nll_sum / count as f64;
    Ok(PerplexityReport {
        perplexity: mean_nll.exp(),
        mean_nll,
        windows,
        seqlen: opts.seqlen,
        predictions: count,
        text_tokens: tokens.len(),
        seconds,
        tokens_per_second: (windows * opts.seqlen) as f64 / seconds.max(1e-9),
    })
}
