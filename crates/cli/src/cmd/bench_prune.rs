//! `secateurs bench prune`: pruning wall time of secateurs vs the same algorithm in PyTorch
//! (scripts/torch_prune.py), on the same calibration tokens, in one run; each phase is also
//! compared with its compute floor (its FLOPs at this machine's measured matrix-product speed).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use secateurs_model::ops::{gemm_into, View};
use secateurs_prune::calibrate::{capture_inputs, prune_layers, NoHook, PhaseTimes, PruneSettings};
use secateurs_prune::methods::{Method, SparseGptOptions};
use secateurs_prune::pattern::Pattern;
use secateurs_prune::sampling::sample_windows;
use secateurs_prune::scope::Scope;
use serde_json::json;

use crate::common;

/// Arguments of `secateurs bench prune`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs --threads 2 bench prune --method wanda --nsamples 32
  secateurs bench prune --method sparsegpt --python /opt/refenv/bin/python --json

Prunes the model with secateurs, then runs scripts/torch_prune.py (PyTorch, float32, same
model, same calibration windows, same thread count) and prints both wall times, the phases
(forward, statistics, solve) and each phase's compute floor: its floating-point operations at
the matrix-product speed measured on this machine in the same run.")]
pub struct PruneBenchArgs {
    /// Model .gguf file or directory (default: the fetched default model).
    model: Option<String>,
    /// wanda, sparsegpt or magnitude.
    #[arg(long, default_value = "wanda")]
    method: Method,
    /// Unstructured sparsity.
    #[arg(long, default_value_t = 0.5)]
    sparsity: f64,
    /// Calibration sequences.
    #[arg(long, default_value_t = 32)]
    nsamples: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 512)]
    seqlen: usize,
    /// Python interpreter with torch + transformers + gguf.
    #[arg(long, default_value = "python3", env = "SECATEURS_PYTHON")]
    python: String,
    /// Reference script (default: scripts/torch_prune.py of the source tree).
    #[arg(long)]
    script: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Sustained f32 matrix-product speed of this machine (GFLOP/s, all threads), measured on a
/// decoder-layer-shaped product.
fn measure_gflops() -> f64 {
    let (m, k, n) = (512usize, 576usize, 1536usize);
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut best = f64::MAX;
    let t_total = Instant::now();
    while t_total.elapsed().as_secs_f64() < 2.0 {
        let t = Instant::now();
        // One product per thread at once, as the calibration loop runs one sequence per thread.
        rayon::broadcast(|_| {
            let mut out = vec![0.0f32; m * n];
            gemm_into(
                &mut out,
                n,
                View::row_major(&a, m, k),
                View::row_major(&b, n, k).t(),
                false,
                1,
            );
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (m * k * n) as f64 * rayon::current_num_threads() as f64 / best / 1e9
}

/// Runs the benchmark.
pub fn run(a: PruneBenchArgs) -> Result<()> {
    if a.method == Method::Magnitude {
        bail!("magnitude pruning has no calibration phases to compare; use wanda or sparsegpt");
    }
    let path = common::resolve_model(a.model.as_deref())?;
    let (files, mut model) = common::load_model(&path, a.json)?;
    let cfg = model.config().clone();
    let tok = files.tokenizer()?;
    let cal = secateurs_data::calibration_text(&common::cache()?)?;
    let samples = sample_windows(&tok.encode(&cal)?, a.nsamples, a.seqlen, 0)?;
    let windows_file = std::env::temp_dir().join(format!(
        "secateurs-bench-windows-{}.json",
        std::process::id()
    ));
    std::fs::write(&windows_file, serde_json::to_string(&samples)?)
        .with_context(|| format!("{}: cannot write", windows_file.display()))?;
    let gflops = measure_gflops();

    let settings = PruneSettings {
        method: a.method,
        pattern: Pattern::Unstructured { ratio: a.sparsity },
        scope: Scope::default(),
        sparsegpt: SparseGptOptions::default(),
        error_samples: 0,
    };
    let pb = common::bar(cfg.num_layers as u64, "secateurs", a.json);
    let mut phases = PhaseTimes::default();
    let t = Instant::now();
    let inputs = capture_inputs(&model, &samples)?;
    prune_layers(
        &mut model,
        inputs,
        0,
        &settings,
        &mut phases,
        &mut NoHook,
        &mut |p| match p {
            secateurs_prune::calibrate::Progress::LayerDone { layer, .. } => {
                pb.set_position(layer as u64 + 1)
            }
        },
    )?;
    let ours_wall = t.elapsed().as_secs_f64();
    pb.finish_and_clear();

    let args: Vec<String> = vec![
        "--model".into(),
        path.to_string_lossy().into(),
        "--calibration".into(),
        windows_file.to_string_lossy().into(),
        "--method".into(),
        a.method.name().into(),
        "--sparsity".into(),
        a.sparsity.to_string(),
        "--threads".into(),
        rayon::current_num_threads().to_string(),
        "--json".into(),
    ];
    let reference = crate::cmd::bench::run_reference(
        &a.python,
        a.script.as_deref(),
        "torch_prune.py",
        "PyTorch",
        a.json,
        &args,
    );
    let _ = std::fs::remove_file(&windows_file);

    // Compute floors (FLOPs / measured GFLOP/s).
    let tokens = (a.nsamples * a.seqlen) as f64;
    let (h, inter, l) = (
        cfg.hidden_size as f64,
        cfg.intermediate_size as f64,
        cfg.num_layers as f64,
    );
    let linear = cfg.linear_params_per_layer() as f64;
    let attn = 4.0 * (cfg.num_heads * cfg.head_dim) as f64 * (a.seqlen as f64 + 1.0) / 2.0;
    let forward_flops = 2.0 * tokens * l * (2.0 * linear + attn);
    let stats_flops = match a.method {
        // Symmetric rank-k updates of one Gram matrix per input (q/k/v and gate/up share one).
        Method::SparseGpt => tokens * l * (3.0 * h * h + inter * inter),
        _ => tokens * l * 2.0 * (3.0 * h + inter),
    };
    let solve_flops = match a.method {
        // OBS updates (rows × cols² per matrix) plus factorizations (~cols³ per input).
        Method::SparseGpt => {
            let q = (cfg.num_heads * cfg.head_dim) as f64;
            let kv = (cfg.num_kv_heads * cfg.head_dim) as f64;
            l * ((q + 2.0 * kv + h + 2.0 * inter) * h * h
                + h * q * q
                + h * inter * inter
                + 3.0 * h.powi(3)
                + inter.powi(3))
        }
        _ => 0.0,
    };
    let floor = |f: f64| f / (gflops * 1e9);
    let rphase = |k: &str| reference.as_ref().and_then(|r| r["phases"][k].as_f64());
    let ref_wall = reference.as_ref().and_then(|r| r["prune_seconds"].as_f64());
    let rows = [
        (
            "forward",
            phases.forward,
            rphase("forward"),
            floor(forward_flops),
        ),
        (
            "statistics",
            phases.statistics,
            rphase("statistics"),
            floor(stats_flops),
        ),
        ("solve", phases.solve, rphase("solve"), floor(solve_flops)),
    ];
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "model": path, "method": a.method.name(), "sparsity": a.sparsity,
                "nsamples": a.nsamples, "seqlen": a.seqlen, "threads": rayon::current_num_threads(),
                "measured_gflops": gflops,
                "secateurs": {"wall": ours_wall, "phases": phases},
                "reference": reference, "speedup": ref_wall.map(|r| r / ours_wall),
                "floors": {"forward": floor(forward_flops), "statistics": floor(stats_flops), "solve": floor(solve_flops)},
            }))?
        );
        return Ok(());
    }
    println!(
        "prune {} {} on {} x {} tokens, {} threads; matrix products measured at {gflops:.0} GFLOP/s",
        a.method,
        a.sparsity,
        a.nsamples,
        a.seqlen,
        rayon::current_num_threads()
    );
    println!(
        "  {:<12} {:>12} {:>12} {:>12} {:>14}",
        "phase", "secateurs s", "PyTorch s", "floor s", "floor/secateurs"
    );
    for (name, ours, theirs, fl) in rows {
        let theirs = theirs.map_or("-".to_string(), |t| format!("{t:.1}"));
        let frac = if ours > 0.0 && fl > 0.0 {
            format!("{:.0}%", 100.0 * fl / ours)
        } else {
            "-".into()
        };
        println!("  {name:<12} {ours:>12.1} {theirs:>12} {fl:>12.1} {frac:>14}");
    }
    match ref_wall {
        Some(r) => println!(
            "  wall: secateurs {ours_wall:.1} s, PyTorch {r:.1} s, speedup {:.2}x",
            r / ours_wall
        ),
        None => println!("  wall: secateurs {ours_wall:.1} s; PyTorch not run (see above)"),
    }
    Ok(())
}
