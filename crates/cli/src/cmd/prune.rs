//! `secateurs prune`: one-shot pruning with magnitude, Wanda or SparseGPT, written out as a
//! Hugging Face directory plus `prune_report.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use secateurs_eval::PerplexityOptions;
use secateurs_model::export::save_hf_dir;
use secateurs_model::model::CausalLm;
use secateurs_prune::calibrate::{
    capture_inputs, prune_layers, PhaseTimes, Progress, PruneSettings,
};
use secateurs_prune::checkpoint::Checkpoint;
use secateurs_prune::methods::{Method, SparseGptOptions};
use secateurs_prune::pattern::Pattern;
use secateurs_prune::report::{peak_rss_bytes, CalibrationInfo, PruneReport, Totals};
use secateurs_prune::sampling::{fnv1a64, sample_windows, tokens_hash};
use secateurs_prune::scope::{RoleFilter, Scope};
use serde_json::json;

use crate::common;

/// Arguments of `secateurs prune`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs prune --method wanda --sparsity 0.5 --out pruned-wanda50
  secateurs prune --method sparsegpt --pattern 2:4 --out pruned-sgpt24 --eval
  secateurs prune --method wanda --sparsity 0.5 --scope mlp --layers 0..12 --out mlp-only
  secateurs prune ./model-dir --method magnitude --pattern 4:8 --modules gate,up,down --out m48
  secateurs prune --method wanda --ratios owl.json --out nonuniform      # per-layer ratios

Calibration: --nsamples sequences of --seqlen tokens drawn (with --seed) from the default
calibration text (SQuADShifts reddit+nyt+amazon; our stand-in for C4) or --calibration FILE.
Each decoder layer is observed, pruned, then re-run with its pruned weights to feed the next
layer (the sequential scheme of SparseGPT and Wanda). N:M means N zeros in every M consecutive
weights of a row (2:4 = 50%). The output directory is written under a temporary name and renamed
when complete; the input model is never modified. A killed run continues with --resume.")]
pub struct Args {
    /// Model directory, .gguf file or hub repo id (default: the fetched default model).
    model: Option<String>,
    /// magnitude, wanda or sparsegpt.
    #[arg(long, default_value = "wanda")]
    method: Method,
    /// Unstructured sparsity ratio in [0, 1) (ignored with --pattern N:M).
    #[arg(long, default_value_t = 0.5)]
    sparsity: f64,
    /// Semi-structured pattern N:M (N zeros in every M weights), e.g. 2:4 or 4:8.
    #[arg(long, value_name = "N:M")]
    pattern: Option<String>,
    /// Which linear layers: all, attention or mlp.
    #[arg(long, default_value = "all")]
    scope: RoleFilter,
    /// Decoder layers to prune, A..B (end exclusive), A.., ..B or A.
    #[arg(long)]
    layers: Option<String>,
    /// Module types to prune, from q,k,v,o,gate,up,down.
    #[arg(long)]
    modules: Option<String>,
    /// JSON file of per-layer unstructured ratios (a list, or {"layer": ratio}).
    #[arg(long, value_name = "FILE")]
    ratios: Option<PathBuf>,
    /// Calibration sequences.
    #[arg(long, default_value_t = 128)]
    nsamples: usize,
    /// Tokens per calibration sequence.
    #[arg(long, default_value_t = 512)]
    seqlen: usize,
    /// Seed for drawing calibration windows.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Calibration text file (default: the SQuADShifts calibration text).
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,
    /// Also write the calibration token windows (a JSON list of lists) to FILE, e.g. for
    /// scripts/torch_prune.py.
    #[arg(long, value_name = "FILE")]
    save_calibration: Option<PathBuf>,
    /// SparseGPT damping, as a fraction of the mean Hessian diagonal.
    #[arg(long, default_value_t = 0.01)]
    damp: f64,
    /// SparseGPT block size (columns).
    #[arg(long, default_value_t = 128)]
    blocksize: usize,
    /// Calibration sequences used to measure each matrix's reconstruction error.
    #[arg(long, default_value_t = 4)]
    error_samples: usize,
    /// Output directory (Hugging Face layout).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Continue a killed run from its checkpoint (<out>.partial).
    #[arg(long)]
    resume: bool,
    /// Measure perplexity before and after (default evaluation text, 16 windows of 512).
    #[arg(long)]
    eval: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn eval_ppl(model: &CausalLm, tokens: &[u32], quiet: bool, label: &str) -> Result<f64> {
    let r = common::perplexity_with_bar(
        model,
        tokens,
        PerplexityOptions {
            seqlen: 512,
            max_windows: Some(16),
        },
        label,
        quiet,
    )?;
    Ok(r.perplexity)
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let t_start = Instant::now();
    let pattern = match &a.pattern {
        Some(p) => Pattern::parse(p)?,
        None => Pattern::Unstructured { ratio: a.sparsity },
    };
    pattern.validate()?;
    let scope = Scope {
        role: a.scope,
        layers: a.layers.as_deref().map(Scope::parse_layers).transpose()?,
        kinds: a.modules.as_deref().map(Scope::parse_kinds).transpose()?,
        layer_ratios: a
            .ratios
            .as_deref()
            .map(Scope::read_layer_ratios)
            .transpose()?,
    };
    if a.damp.is_nan() || a.damp < 0.0 {
        bail!("--damp must be a non-negative number");
    }
    if a.blocksize == 0 {
        bail!("--blocksize must be at least 1");
    }
    let out = a.out.clone();
    if out.exists() && !a.overwrite {
        bail!(
            "{}: already exists (use --overwrite to replace it)",
            out.display()
        );
    }
    let path = common::resolve_model(a.model.as_deref())?;
    if out.canonicalize().ok().is_some_and(|o| {
        path.canonicalize()
            .ok()
            .is_some_and(|p| p.starts_with(&o) || o == p)
    }) {
        bail!("{}: --out would overwrite the input model", out.display());
    }
    let t = Instant::now();
    let (files, mut model) = common::load_model(&path, a.json)?;
    let load_secs = t.elapsed().as_secs_f64();
    let tok = files.tokenizer()?;
    let (cal_text, cal_source) = common::calibration_text(a.calibration.as_deref())?;
    let cal_source = cal_source.unwrap_or_else(|| {
        "default: SQuADShifts reddit+nyt+amazon paragraphs (bigbench 1.0.0)".to_string()
    });
    let cal_tokens = tok.encode(&cal_text)?;
    let samples = sample_windows(&cal_tokens, a.nsamples, a.seqlen, a.seed)?;
    if let Some(p) = &a.save_calibration {
        std::fs::write(p, serde_json::to_string(&samples)?)
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    let calibration = CalibrationInfo {
        source: cal_source,
        nsamples: a.nsamples,
        seqlen: a.seqlen,
        seed: a.seed,
        tokens_hash: tokens_hash(&samples),
    };
    let settings = PruneSettings {
        method: a.method,
        pattern,
        scope,
        sparsegpt: SparseGptOptions {
            damp: a.damp,
            blocksize: a.blocksize,
            ..SparseGptOptions::default()
        },
        error_samples: a.error_samples,
    };
    let eval_tokens = if a.eval {
        Some(tok.encode(&common::eval_text(None)?.0)?)
    } else {
        None
    };
    let ppl_before = match &eval_tokens {
        Some(t) => Some(eval_ppl(&model, t, a.json, "ppl before")?),
        None => None,
    };

    // Checkpointed calibration loop.
    let fingerprint = format!(
        "{:016x}",
        fnv1a64(
            format!(
                "{}|{}|{}",
                path.display(),
                serde_json::to_string(&settings)?,
                serde_json::to_string(&calibration)?
            )
            .into_bytes()
        )
    );
    let partial = partial_dir(&out);
    let mut checkpoint = Checkpoint::new(partial, fingerprint);
    let t = Instant::now();
    let (start, inputs, mut outcomes) = match a
        .resume
        .then(|| checkpoint.restore(&mut model))
        .transpose()?
        .flatten()
    {
        Some(r) => {
            if !a.json {
                eprintln!(
                    "resuming at layer {} from {}",
                    r.next_layer,
                    checkpoint.dir().display()
                );
            }
            (r.next_layer, r.inputs, r.outcomes)
        }
        None => {
            checkpoint.remove()?;
            (0, capture_inputs(&model, &samples)?, Vec::new())
        }
    };
    let capture_secs = t.elapsed().as_secs_f64();
    let layers = model.config().num_layers;
    let pb = common::bar(layers as u64, "pruning", a.json);
    pb.set_position(start as u64);
    let mut phases = PhaseTimes::default();
    let t = Instant::now();
    let new = prune_layers(
        &mut model,
        inputs,
        start,
        &settings,
        &mut phases,
        &mut checkpoint,
        &mut |p| match p {
            Progress::LayerDone { layer, .. } => pb.set_position(layer as u64 + 1),
        },
    )?;
    pb.finish_and_clear();
    let prune_secs = t.elapsed().as_secs_f64();
    for w in new.iter().flat_map(|o| &o.warnings) {
        eprintln!("warning: {w}");
    }
    let resumed_from = (start > 0).then_some(start);
    outcomes.retain(|o| o.layer < start);
    outcomes.extend(new);

    let ppl_after = match &eval_tokens {
        Some(t) => Some(eval_ppl(&model, t, a.json, "ppl after")?),
        None => None,
    };
    let (mut linear_params, mut linear_zeros) = (0usize, 0usize);
    for layer in model.arch.layers() {
        for (_, lin) in layer.linears() {
            linear_params += lin.out_features() * lin.in_features();
            linear_zeros += lin.dense_weight().iter().filter(|v| **v == 0.0).count();
        }
    }
    let pruned: usize = outcomes.iter().map(|o| o.shape[0] * o.shape[1]).sum();
    let zeros: usize = outcomes.iter().map(|o| o.zeros).sum();
    let totals = Totals {
        matrices: outcomes.len(),
        pruned_matrix_params: pruned,
        zeros,
        sparsity_of_pruned: zeros as f64 / pruned.max(1) as f64,
        linear_params,
        linear_zeros,
        sparsity_of_linear: linear_zeros as f64 / linear_params.max(1) as f64,
    };

    // Export to a temporary directory beside --out, then rename into place.
    let t = Instant::now();
    let tmp = common::sibling(&out, ".tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("{}: cannot remove stale temp dir", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert(
        "secateurs".to_string(),
        format!("prune {} {}", settings.method, settings.pattern),
    );
    save_hf_dir(&model, Some(tok), &tmp, &meta)?;
    let export_secs = t.elapsed().as_secs_f64();
    let report = PruneReport {
        secateurs: env!("CARGO_PKG_VERSION").to_string(),
        model: path.display().to_string(),
        settings,
        calibration,
        totals,
        matrices: outcomes,
        phases,
        wall: json!({"load": load_secs, "capture": capture_secs, "prune": prune_secs,
                     "export": export_secs, "total": t_start.elapsed().as_secs_f64()}),
        peak_memory_bytes: peak_rss_bytes(),
        eval: ppl_before.map(|b| json!({"text": "SQuAD v1.1 dev, 16 x 512 tokens", "perplexity_before": b, "perplexity_after": ppl_after})),
        resumed_from_layer: resumed_from,
    };
    let report_text = serde_json::to_string_pretty(&report)?;
    std::fs::write(tmp.join("prune_report.json"), &report_text)
        .with_context(|| format!("{}: cannot write prune_report.json", tmp.display()))?;
    common::replace_dir(&tmp, &out)?;
    checkpoint.remove()?;

    if a.json {
        println!("{report_text}");
    } else {
        let r = &report;
        println!(
            "pruned {} with {} ({}), {}",
            path.display(),
            r.settings.method,
            r.settings.pattern,
            r.settings.scope.describe()
        );
        println!(
            "  {} matrices, sparsity {:.2}% of pruned weights, {:.2}% of all decoder linear weights",
            r.totals.matrices,
            100.0 * r.totals.sparsity_of_pruned,
            100.0 * r.totals.sparsity_of_linear
        );
        let mean_err = r.matrices.iter().map(|m| m.relative_error).sum::<f64>()
            / r.matrices.len().max(1) as f64;
        println!("  mean relative reconstruction error {mean_err:.4}");
        if let (Some(b), Some(af)) = (ppl_before, ppl_after) {
            println!("  perplexity {b:.3} -> {af:.3} (SQuAD v1.1 dev, 16 x 512 tokens)");
        }
        println!(
            "  time {:.1} s (forward {:.1}, statistics {:.1}, solve {:.1}); peak memory {:.0} MiB",
            t_start.elapsed().as_secs_f64(),
            r.phases.forward,
            r.phases.statistics,
            r.phases.solve,
            r.peak_memory_bytes.unwrap_or(0) as f64 / 1048576.0
        );
        println!("  wrote {}", out.display());
    }
    Ok(())
}

fn partial_dir(out: &Path) -> PathBuf {
    common::sibling(out, ".partial")
}
