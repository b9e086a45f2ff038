//! `secateurs bench ...`: benchmarks printed side by side with their reference, in one run.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand};
use secateurs_eval::{perplexity, PerplexityOptions};
use serde_json::{json, Value};

use crate::common;

// Declared here (not in cmd/mod.rs) so this benchmark touches only the bench files.

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Perplexity-evaluation throughput (tokens/s) of secateurs vs transformers + PyTorch.
    Perplexity(PerplexityArgs),
    /// Pruning wall time of secateurs vs the PyTorch reference (scripts/torch_prune.py).
    Prune(PruneBenchArgs),
    /// Greedy decode tokens/s, dense vs sparse storage, against memory bandwidth and PyTorch.
    Decode(crate::cmd::bench_decode::DecodeBenchArgs),
    /// Sparse vs dense kernels (seed 003's experiment) side by side with scipy.sparse / numpy.
    Kernels(crate::cmd::bench_kernels::KernelsBenchArgs),
}

/// Arguments of `secateurs bench perplexity`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs bench perplexity --threads 2 --windows 8
  secateurs bench perplexity --python /opt/refenv/bin/python --json

Runs secateurs on the first N windows of the evaluation text, then the committed reference
script scripts/torch_perplexity.py (transformers + PyTorch, float32, same GGUF, same text, same
thread count) in the same invocation, and prints both throughputs and their ratio. The reference
is skipped with a notice when the Python interpreter lacks torch/transformers/gguf.")]
pub struct PerplexityArgs {
    /// Model .gguf file or directory (default: the fetched default model).
    model: Option<String>,
    /// Text file (default: the SQuAD v1.1 dev paragraphs).
    #[arg(long)]
    text: Option<PathBuf>,
    /// Tokens per window.
    #[arg(long, default_value_t = 512)]
    seqlen: usize,
    /// Windows to time.
    #[arg(long, default_value_t = 8)]
    windows: usize,
    /// Python interpreter with torch + transformers + gguf for the reference run.
    #[arg(long, default_value = "python3", env = "SECATEURS_PYTHON")]
    python: String,
    /// Reference script (default: scripts/torch_perplexity.py of the source tree).
    #[arg(long)]
    script: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs a benchmark.
pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Perplexity(a) => bench_perplexity(a),
        BenchCommand::Prune(a) => crate::cmd::bench_prune::run(a),
        BenchCommand::Decode(a) => crate::cmd::bench_decode::run(a),
        BenchCommand::Kernels(a) => crate::cmd::bench_kernels::run(a),
    }
}

pub use crate::cmd::bench_prune::PruneBenchArgs;

/// Runs the reference script `script` (default: `scripts/<default_name>` of the source tree),
/// which prints one JSON object on its last stdout line; says on stderr that the `what`
/// reference runs unless `quiet`. A missing interpreter or a failing script is reported on
/// stderr and gives `None`: the benchmark then shows secateurs' side alone.
pub fn run_reference(
    python: &str,
    script: Option<&std::path::Path>,
    default_name: &str,
    what: &str,
    quiet: bool,
    args: &[String],
) -> Option<Value> {
    let script = script.map(std::path::Path::to_path_buf).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts")
            .join(default_name)
    });
    if !quiet {
        eprintln!("running the {what} reference ({python}) ...");
    }
    match Command::new(python).arg(&script).args(args).output() {
        Ok(o) if o.status.success() => {
            let stdout = String::from_utf8_lossy(&o.stdout);
            let line = stdout.lines().last().unwrap_or("");
            let parsed = serde_json::from_str(line);
            if parsed.is_err() {
                eprintln!(
                    "reference skipped: {} printed no JSON: {line}",
                    script.display()
                );
            }
            parsed.ok()
        }
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            eprintln!(
                "reference skipped: {} failed: {}",
                script.display(),
                tail.join(" | ")
            );
            None
        }
        Err(e) => {
            eprintln!("reference skipped: cannot run {python}: {e}");
            None
        }
    }
}

fn bench_perplexity(a: PerplexityArgs) -> Result<()> {
    if a.windows == 0 {
        bail!("--windows must be at least 1");
    }
    let path = common::resolve_model(a.model.as_deref())?;
    let (text, label) = common::eval_text(a.text.as_deref())?;
    let threads = rayon::current_num_threads();
    let (files, model) = common::load_model(&path, a.json)?;
    let tokens = files.tokenizer()?.encode(&text)?;
    // Warm-up window (untimed), as the reference script does.
    let warm = PerplexityOptions {
        seqlen: a.seqlen,
        max_windows: Some(1),
    };
    perplexity(&model, &tokens, warm, &mut |_, _| {})?;
    let ours = common::perplexity_with_bar(
        &model,
        &tokens,
        PerplexityOptions {
            seqlen: a.seqlen,
            max_windows: Some(a.windows),
        },
        "secateurs",
        a.json,
    )?;

    // The reference reads the very same text from a file.
    let text_file = match &a.text {
        Some(p) => p.clone(),
        None => {
            let p =
                std::env::temp_dir().join(format!("secateurs-bench-{}.txt", std::process::id()));
            std::fs::write(&p, &text).with_context(|| format!("{}: cannot write", p.display()))?;
            p
        }
    };
    let args: Vec<String> = vec![
        "--model".into(),
        path.to_string_lossy().into(),
        "--text".into(),
        text_file.to_string_lossy().into(),
        "--seqlen".into(),
        a.seqlen.to_string(),
        "--windows".into(),
        ours.windows.to_string(),
        "--threads".into(),
        threads.to_string(),
        "--json".into(),
    ];
    let reference = run_reference(
        &a.python,
        a.script.as_deref(),
        "torch_perplexity.py",
        "transformers + PyTorch",
        a.json,
        &args,
    );
    if a.text.is_none() {
        let _ = std::fs::remove_file(&text_file);
    }
    let ref_tps = reference
        .as_ref()
        .and_then(|r| r["tokens_per_second"].as_f64());
    let ref_ppl = reference.as_ref().and_then(|r| r["perplexity"].as_f64());
    let ratio = ref_tps.map(|r| ours.tokens_per_second / r);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "model": path, "text": label, "threads": threads, "seqlen": a.seqlen,
                "windows": ours.windows, "secateurs": ours, "reference": reference,
                "speedup": ratio,
            }))?
        );
        return Ok(());
    }
    println!(
        "perplexity-eval throughput, {} windows x {} tokens, {threads} threads",
        ours.windows, a.seqlen
    );
    println!("  {:<28} {:>12} {:>12}", "", "tokens/s", "perplexity");
    println!(
        "  {:<28} {:>12.1} {:>12.4}",
        "secateurs", ours.tokens_per_second, ours.perplexity
    );
    match (ref_tps, ref_ppl) {
        (Some(t), Some(p)) => {
            println!("  {:<28} {:>12.1} {:>12.4}", "transformers + PyTorch", t, p);
            println!(
                "  speedup: {:.2}x   perplexity difference: {:+.3}%",
                ours.tokens_per_second / t,
                100.0 * (ours.perplexity / p - 1.0)
            );
        }
        _ => println!("  transformers + PyTorch: not run (see above)"),
    }
    Ok(())
}
