//! The layer-by-layer calibration loop, written once for every architecture: the sequential
//! scheme of SparseGPT (Frantar & Alistarh 2023, §3 and Algorithm 1's outer loop) and Wanda (Sun
//! et al. 2023, §3): capture the inputs of decoder layer 0 for N calibration sequences, then for
//! each layer in turn
//!
//! 1. run it and show the input of every in-scope linear layer to its pruner (statistics),
//! 2. prune those linear layers,
//! 3. run it again with the pruned weights; its outputs are the next layer's inputs.
//!
//! Linear layers that read the same input (q/k/v; gate/up) share one pruner, so their
//! statistics are gathered once. Sequences run in parallel, one per thread.

use std::time::Instant;

use rayon::prelude::*;
use secateurs_model::arch::{DecoderLayer, LinearKind, LinearObserver, NoObserver};
use secateurs_model::model::CausalLm;
use secateurs_model::ops::{gemm_into, threads, Matrix, View};
use serde::{Deserialize, Serialize};

use crate::error::{PruneError, Result};
use crate::methods::{new_pruner, Method, Pruner, SparseGptOptions};
use crate::pattern::Pattern;
use crate::scope::Scope;

/// What to prune and how.
#[derive(Debug, Clone, Serialize)]
pub struct PruneSettings {
    /// Scoring / reconstruction method.
    pub method: Method,
    /// Sparsity pattern.
    pub pattern: Pattern,
    /// Which layers and modules.
    pub scope: Scope,
    /// SparseGPT's damping and block size.
    pub sparsegpt: SparseGptOptions,
    /// Calibration sequences whose inputs measure each matrix's reconstruction error.
    pub error_samples: usize,
}

/// The outcome for one pruned matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixOutcome {
    /// Hugging Face name of the weight.
    pub name: String,
    /// Decoder layer.
    pub layer: usize,
    /// Module type.
    pub kind: LinearKind,
    /// `(out, in)`.
    pub shape: [usize; 2],
    /// The pattern applied.
    pub pattern: Pattern,
    /// Exact zeros after pruning.
    pub zeros: usize,
    /// `zeros / numel`.
    pub sparsity: f64,
    /// `‖WX − ŴX‖² / ‖WX‖²` on the inputs of the first `error_samples` sequences.
    pub relative_error: f64,
    /// SparseGPT: relative damping actually used.
    pub damping: Option<f64>,
    /// Recoveries and other notices.
    pub warnings: Vec<String>,
}

/// Wall time of each phase, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseTimes {
    /// Decoder-layer forward passes (statistics pass + recompute pass).
    pub forward: f64,
    /// Feeding inputs to the pruners (norms, Hessians).
    pub statistics: f64,
    /// Computing masks and updates.
    pub solve: f64,
    /// Reconstruction errors.
    pub error: f64,
}

/// Progress notifications.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// Decoder layer `layer` is done (`total` layers).
    LayerDone {
        /// Index of the finished layer.
        layer: usize,
        /// Number of layers.
        total: usize,
    },
}

/// Called after each layer with the model and the next layer's inputs (for checkpoints).
pub trait LayerHook {
    /// `layer` is finished; `inputs` are the inputs of layer `layer + 1`.
    ///
    /// # Errors
    /// Whatever the hook fails with (e.g. an I/O error writing a checkpoint).
    fn layer_done(
        &mut self,
        layer: usize,
        model: &CausalLm,
        inputs: &[Matrix],
        outcomes: &[MatrixOutcome],
    ) -> Result<()>;
}

/// A hook that does nothing.
pub struct NoHook;

impl LayerHook for NoHook {
    fn layer_done(
        &mut self,
        _: usize,
        _: &CausalLm,
        _: &[Matrix],
        _: &[MatrixOutcome],
    ) -> Result<()> {
        Ok(())
    }
}

/// Index of the input a linear layer reads: q/k/v share one, gate/up share one.
fn input_group(kind: LinearKind) -> usize {
    match kind {
        LinearKind::Q | LinearKind::K | LinearKind::V => 0,
        LinearKind::O => 1,
        LinearKind::Gate | LinearKind::Up => 2,
        LinearKind::Down => 3,
    }
}

const GROUPS: usize = 4;

/// Records the first input of each wanted group during one layer forward.
struct Recorder {
    want: [bool; GROUPS],
    seen: [Option<Matrix>; GROUPS],
}

impl LinearObserver for Recorder {
    fn observe(&mut self, kind: LinearKind, x: &Matrix) {
        let g = input_group(kind);
        if self.want[g] && self.seen[g].is_none() {
            self.seen[g] = Some(x.clone());
        }
    }

    fn satisfied(&self) -> bool {
        self.want
            .iter()
            .zip(&self.seen)
            .all(|(w, s)| !w || s.is_some())
    }
}

/// Embeds each calibration sequence: the inputs of decoder layer 0, `(seqlen, hidden)` each.
///
/// # Errors
/// Token ids outside the vocabulary.
pub fn capture_inputs(model: &CausalLm, samples: &[Vec<u32>]) -> Result<Vec<Matrix>> {
    samples
        .iter()
        .map(|s| model.arch.embed(s, 0).map_err(PruneError::from))
        .collect()
}

/// What one sequence's pass through a layer produced.
enum Pass {
    /// The inputs of the wanted linear groups (statistics pass; no output computed).
    Observed([Option<Matrix>; GROUPS]),
    /// The layer's output.
    Output(Matrix),
}

/// Runs `layer` on every input, in parallel batches of one sequence per thread. With `want`,
/// only observes the inputs of those groups (the statistics pass); without, computes outputs.
fn run_layer(
    layer: &dyn DecoderLayer,
    inputs: &[Matrix],
    want: Option<[bool; GROUPS]>,
    mut sink: impl FnMut(usize, Pass) -> Result<()>,
    forward_secs: &mut f64,
) -> Result<()> {
    let batch = rayon::current_num_threads().max(1);
    for (b, chunk) in inputs.chunks(batch).enumerate() {
        let t = Instant::now();
        let outs: Vec<Result<Pass>> = chunk
            .par_iter()
            .map(|x| match want {
                Some(want) => {
                    let mut rec = Recorder {
                        want,
                        seen: [None, None, None, None],
                    };
                    layer.observe_inputs(x, &mut rec)?;
                    Ok(Pass::Observed(rec.seen))
                }
                None => Ok(Pass::Output(layer.forward(x, 0, None, &mut NoObserver)?)),
            })
            .collect();
        *forward_secs += t.elapsed().as_secs_f64();
        for (i, o) in outs.into_iter().enumerate() {
            sink(b * batch + i, o?)?;
        }
    }
    Ok(())
}

/// `‖X(W − Ŵ)ᵀ‖² / ‖XWᵀ‖²` over the rows of `xs`.
fn relative_error(w: &[f32], w_hat: &[f32], rows: usize, cols: usize, xs: &[Matrix]) -> f64 {
    let diff: Vec<f32> = w.iter().zip(w_hat).map(|(a, b)| a - b).collect(); // (out, in)
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for x in xs {
        let mut y = vec![0.0f32; x.rows * rows]; // (tokens, out)
        gemm_into(
            &mut y,
            rows,
            View::row_major(&x.data, x.rows, cols),
            View::row_major(w, rows, cols).t(),
            false,
            threads(),
        );
        den += y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        gemm_into(
            &mut y,
            rows,
            View::row_major(&x.data, x.rows, cols),
            View::row_major(&diff, rows, cols).t(),
            false,
            threads(),
        );
        num += y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// Prunes decoder layers `start..` of `model` in place. `inputs` are the inputs of layer
/// `start` (from [`capture_inputs`], or a checkpoint). Returns one outcome per pruned matrix.
///
/// # Errors
/// Invalid patterns for a matrix, non-finite weights or inputs, an unrecoverable Hessian, or a
/// hook failure — each naming the tensor.
pub fn prune_layers(
    model: &mut CausalLm,
    mut inputs: Vec<Matrix>,
    start: usize,
    settings: &PruneSettings,
    times: &mut PhaseTimes,
    hook: &mut dyn LayerHook,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<MatrixOutcome>> {
    if inputs.is_empty() {
        return Err(PruneError::Calibration("no calibration sequences".into()));
    }
    if !settings.method.needs_calibration() {
        // Magnitude pruning needs no statistics: run only the sequences that measure the
        // reconstruction error.
        inputs.truncate(settings.error_samples.max(1));
    }
    let total = model.arch.layers().len();
    let mut outcomes = Vec::new();
    for li in start..total {
        let kinds: Vec<LinearKind> = model.arch.layers()[li]
            .linears()
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| settings.scope.includes(li, *k))
            .collect();
        let mut want = [false; GROUPS];
        for k in &kinds {
            want[input_group(*k)] = true;
        }
        let layer_outcomes = if kinds.is_empty() {
            Vec::new()
        } else {
            // 1. Statistics pass.
            let widths: Vec<(usize, usize)> = {
                let layer = &model.arch.layers()[li];
                let lin = layer.linears();
                (0..GROUPS)
                    .map(|g| {
                        lin.iter()
                            .find(|(k, _)| input_group(*k) == g)
                            .map_or((0, 0), |(_, l)| (l.in_features(), l.out_features()))
                    })
                    .collect()
            };
            let mut pruners: Vec<Option<Box<dyn Pruner>>> = (0..GROUPS)
                .map(|g| {
                    want[g].then(|| new_pruner(settings.method, widths[g].0, &settings.sparsegpt))
                })
                .collect();
            let mut error_inputs: Vec<Vec<Matrix>> = vec![Vec::new(); GROUPS];
            let mut stats_secs = 0.0;
            {
                let layer = model.arch.layers()[li].as_ref();
                run_layer(
                    layer,
                    &inputs,
                    Some(want),
                    |idx, pass| {
                        let Pass::Observed(seen) = pass else {
                            return Ok(());
                        };
                        let t = Instant::now();
                        for (g, m) in seen.into_iter().enumerate() {
                            if let (Some(m), Some(p)) = (m, pruners[g].as_mut()) {
                                p.observe(&m);
                                if idx < settings.error_samples {
                                    error_inputs[g].push(m);
                                }
                            }
                        }
                        stats_secs += t.elapsed().as_secs_f64();
                        Ok(())
                    },
                    &mut times.forward,
                )?;
            }
            times.statistics += stats_secs;
            // 2. Prune every in-scope matrix.
            let pattern = settings.scope.pattern_for(li, &settings.pattern);
            let mut layer_outcomes = Vec::new();
            for kind in kinds {
                let g = input_group(kind);
                let Some(pruner) = pruners[g].as_mut() else {
                    continue;
                };
                let layer = &mut model.arch.layers_mut()[li];
                let name = format!("model.layers.{li}.{}", layer.linear_name(kind));
                let Some(lin) = layer.linear_mut(kind) else {
                    continue;
                };
                let (rows, cols) = (lin.out_features(), lin.in_features());
                let original = lin.dense_weight().to_vec(); // (out, in)
                let mut w = original.clone();
                let t = Instant::now();
                let report = pruner.prune(&name, &mut w, rows, cols, &pattern)?;
                times.solve += t.elapsed().as_secs_f64();
                let t = Instant::now();
                let relative_error = relative_error(&original, &w, rows, cols, &error_inputs[g]);
                times.error += t.elapsed().as_secs_f64();
                let zeros = w.iter().filter(|v| **v == 0.0).count();
                lin.set_dense_weight(w);
                layer_outcomes.push(MatrixOutcome {
                    name: format!("{name}.weight"),
                    layer: li,
                    kind,
                    shape: [rows, cols],
                    pattern,
                    zeros,
                    sparsity: zeros as f64 / (rows * cols) as f64,
                    relative_error,
                    damping: report.damping,
                    warnings: report.warnings,
                });
            }
            layer_outcomes
        };
        // 3. Recompute this layer's outputs with the pruned weights.
        let mut next = Vec::with_capacity(inputs.len());
        {
            let layer = model.arch.layers()[li].as_ref();
            run_layer(
                layer,
                &inputs,
                None,
                |_, pass| {
                    if let Pass::Output(y) = pass {
                        next.push(y);
                    }
                    Ok(())
                },
                &mut times.forward,
            )?;
        }
        inputs = next;
        outcomes.extend(layer_outcomes);
        hook.layer_done(li, model, &inputs, &outcomes)?;
        progress(Progress::LayerDone { layer: li, total });
    }
    Ok(outcomes)
}
