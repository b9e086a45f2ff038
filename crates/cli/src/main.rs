//! `secateurs`: prune large language models and measure what is lost.
//!
//! A thin command-line layer over the library crates: argument parsing (clap), progress bars
//! (indicatif) and error reporting (anyhow) live here and nowhere else.

mod cmd;
mod common;
mod hugepages;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Prune large language models and measure what is lost.
#[derive(Parser)]
#[command(name = "secateurs", version, about, long_about = None, after_help = "\
Examples:
  secateurs demo                               # the main job on the default model and data
  secateurs fetch                              # default model + data into the cache
  secateurs info                               # shapes and parameter counts of the default model
  secateurs perplexity --seqlen 512            # perplexity on the default evaluation text
  secateurs eval --tasks all                   # capability suite with 95% intervals
  secateurs generate --prompt 'The capital of France is'
  secateurs generate --chat --prompt 'What is pruning?'
  secateurs prune --method wanda --sparsity 0.5 --out pruned --eval
  secateurs sweep --methods wanda,sparsegpt --sparsity 0.1:0.9:0.1 --out sweep   # + report
  secateurs report sweep                       # rebuild sweep/report.md from results.jsonl
  secateurs compare small.gguf large.gguf --out family   # dense down-scaling
  secateurs sparsity pruned
  secateurs compress pruned --out pruned.sec   # sparse formats + lossless codec
  secateurs bench perplexity --windows 4       # tokens/s vs transformers+PyTorch

MODEL arguments accept a Hugging Face directory (config.json + *.safetensors + tokenizer.json),
a .gguf file, or a Hugging Face repo id (owner/name, needs a hub connection). Without one, the
default model fetched by `secateurs fetch` is used. The cache lives in $SECATEURS_CACHE
(default ~/.cache/secateurs).")]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job on the default model and data: fetch, perplexity, generation.
    Demo(cmd::demo::Args),
    /// Download and verify the default model and data sets into the cache.
    Fetch(cmd::fetch::Args),
    /// Show a model's architecture, shapes, storage dtypes and parameter counts.
    Info(cmd::info::Args),
    /// Perplexity over non-overlapping windows of a text.
    Perplexity(cmd::perplexity::Args),
    /// The capability suite: fact recall, open-book QA, counterfactual context, in-context
    /// learning and multiple choice, with 95% intervals.
    Eval(cmd::eval::Args),
    /// Prune a model with magnitude, Wanda or SparseGPT and write a Hugging Face directory.
    Prune(Box<cmd::prune::Args>),
    /// Prune and evaluate every point of a grid (methods x scopes x sparsities); write
    /// results.jsonl/csv, plots and a report. Resumes an interrupted sweep.
    Sweep(Box<cmd::sweep::Args>),
    /// Evaluate a family of dense models of different sizes; accuracy vs parameter count.
    Compare(cmd::compare::Args),
    /// Regenerate report.md, report.html and the plots of a sweep or comparison directory.
    Report(cmd::sweep::ReportArgs),
    /// Measured sparsity of a checkpoint, per matrix and module type.
    Sparsity(cmd::sparsity::Args),
    /// Write a compressed sparse checkpoint (sparse formats + lossless codec) that every command reads.
    Compress(cmd::compress::Args),
    /// Turn a compressed checkpoint back into the exact dense checkpoint.
    Decompress(cmd::decompress::Args),
    /// Greedy text generation (a sanity check).
    Generate(cmd::generate::Args),
    /// Dump a prompt's logits (for comparison with other implementations).
    Logits(cmd::logits::Args),
    /// Benchmarks printed side by side with their reference.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> ExitCode {
    // Before any thread exists: both may replace the process or change its environment.
    hugepages::reexec_if_needed();
    hugepages::restore_env();
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if let Err(e) = common::set_threads(n) {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    }
    let result = match cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Fetch(a) => cmd::fetch::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Perplexity(a) => cmd::perplexity::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Prune(a) => cmd::prune::run(*a),
        Command::Sweep(a) => cmd::sweep::run(*a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Report(a) => cmd::sweep::run_report(a),
        Command::Sparsity(a) => cmd::sparsity::run(a),
        Command::Compress(a) => cmd::compress::run(a),
        Command::Decompress(a) => cmd::decompress::run(a),
        Command::Logits(a) => cmd::logits::run(a),
        Command::Bench(b) => cmd::bench::run(b),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
