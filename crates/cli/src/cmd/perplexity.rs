//! `secateurs perplexity`: perplexity over non-overlapping windows of a text.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args as ClapArgs;
use secateurs_eval::PerplexityOptions;
use serde_json::json;

use crate::common;

/// Arguments of `secateurs perplexity`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs perplexity                                   # default model, default text, seqlen 512
  secateurs perplexity ./pruned --text notes.txt --seqlen 1024 --json
  secateurs perplexity --max-windows 16 --threads 2

The default text is the SQuAD v1.1 dev paragraphs (Wikipedia; ~2,067 paragraphs), our stand-in
for WikiText-2, which cannot be fetched here. The text is tokenized whole, cut into
floor(tokens / seqlen) windows, and each window is scored independently (as the SparseGPT and
Wanda evaluation code does).")]
pub struct Args {
    /// Model directory, .gguf file or hub repo id (default: the fetched default model).
    model: Option<String>,
    /// Text file to evaluate (default: the SQuAD v1.1 dev paragraphs).
    #[arg(long)]
    text: Option<PathBuf>,
    /// Tokens per window.
    #[arg(long, default_value_t = 512)]
    seqlen: usize,
    /// Evaluate only the first N windows.
    #[arg(long, value_name = "N")]
    max_windows: Option<usize>,
    #[command(flatten)]
    storage: common::StorageArgs,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let path = common::resolve_model(a.model.as_deref())?;
    let (text, text_label) = common::eval_text(a.text.as_deref())?;
    let (files, mut model) = common::load_model(&path, a.json)?;
    if let Some(msg) = a.storage.apply(&mut model)? {
        if !a.json {
            eprintln!("{msg}");
        }
    }
    let tokens = files.tokenizer()?.encode(&text)?;
    let report = common::perplexity_with_bar(
        &model,
        &tokens,
        PerplexityOptions {
            seqlen: a.seqlen,
            max_windows: a.max_windows,
        },
        "perplexity",
        a.json,
    )?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "model": path, "text": text_label, "threads": rayon::current_num_threads(),
                "report": report,
            }))?
        );
    } else {
        println!("model:       {}", path.display());
        println!("text:        {text_label} ({} tokens)", report.text_tokens);
        println!("windows:     {} x {} tokens", report.windows, report.seqlen);
        println!("perplexity:  {:.4}", report.perplexity);
        println!(
            "throughput:  {:.1} tokens/s ({:.1} s, {} threads)",
            report.tokens_per_second,
            report.seconds,
            rayon::current_num_threads()
        );
    }
    Ok(())
}
