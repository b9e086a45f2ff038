//! `secateurs demo`: the main job on the default model and data, end to end.
//! Today: fetch → model summary → perplexity → a generated sentence. When the data cannot be
//! fetched (docs/data.md: PyPI no longer serves bigbench 1.0.0) but the model is in the cache,
//! the demo says so, skips the perplexity step and still generates.

use anyhow::Result;
use clap::Args as ClapArgs;
use secateurs_eval::PerplexityOptions;

use crate::common;

/// Arguments of `secateurs demo`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs demo                      # fetch if needed, then perplexity (16 windows) and generation
  secateurs demo --windows 0          # all windows of the evaluation text (slower)")]
pub struct Args {
    /// Perplexity windows of 512 tokens (0 = the whole evaluation text).
    #[arg(long, default_value_t = 16)]
    windows: usize,
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    println!("== 1. fetch the default model and data (pinned, sha256-verified)");
    if let Err(e) = crate::cmd::fetch::run_default() {
        if !common::cache()?.model_gguf().is_file() {
            return Err(e);
        }
        println!("   fetch incomplete ({e:#}); going on with what is in the cache");
    }
    let path = common::resolve_model(None)?;
    let (files, model) = common::load_model(&path, false)?;
    let cfg = model.config();
    println!(
        "== 2. model: {} ({}, {} layers, hidden {}, {} heads / {} kv heads)",
        path.display(),
        cfg.architecture,
        cfg.num_layers,
        cfg.hidden_size,
        cfg.num_heads,
        cfg.num_kv_heads
    );
    let tok = files.tokenizer()?;
    match common::eval_text(None) {
        Ok((text, label)) => {
            let tokens = tok.encode(&text)?;
            let max_windows = (a.windows > 0).then_some(a.windows);
            let r = common::perplexity_with_bar(
                &model,
                &tokens,
                PerplexityOptions {
                    seqlen: 512,
                    max_windows,
                },
                "perplexity",
                false,
            )?;
            println!(
                "== 3. perplexity {:.3} on {} x 512 tokens of {label} ({:.0} tokens/s)",
                r.perplexity, r.windows, r.tokens_per_second
            );
        }
        Err(e) => println!(
            "== 3. perplexity skipped: no default evaluation text ({e:#}); \
             `secateurs perplexity --text FILE` measures it on any text"
        ),
    }
    let prompt = "The capital of France is";
    let ids = tok.encode(prompt)?;
    let stop: Vec<u32> = tok.eos_id.into_iter().collect();
    let out = model.generate_greedy(&ids, 12, &stop, &mut |_| {})?;
    println!("== 4. greedy generation: {prompt}{}", tok.decode(&out)?);
    Ok(())
}
