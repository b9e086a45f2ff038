//! `secateurs logits`: dump the logits of a prompt, for comparing with other implementations
//! (scripts/check_export.py compares them with transformers').

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use serde_json::json;

use crate::common;

/// Arguments of `secateurs logits`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs logits pruned --prompt 'The capital of France is' --out logits.f32
  python3 scripts/check_export.py pruned          # runs this and compares with transformers

Prints the prompt's token ids and the shape as JSON; --out receives the (tokens, vocab) logits
as little-endian f32.")]
pub struct Args {
    /// Model directory or .gguf file (default: the fetched default model).
    model: Option<String>,
    /// Text whose logits to compute.
    #[arg(long)]
    prompt: String,
    /// Raw little-endian f32 output file.
    #[arg(long)]
    out: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let path = common::resolve_model(a.model.as_deref())?;
    let (files, model) = common::load_model(&path, true)?;
    let ids = files.tokenizer()?.encode(&a.prompt)?;
    let logits = model.logits(&ids)?; // (tokens, vocab)
    let tmp = a.out.with_extension("f32.tmp");
    {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&tmp)
                .with_context(|| format!("{}: cannot create", tmp.display()))?,
        );
        for v in &logits.data {
            f.write_all(&v.to_le_bytes())?;
        }
        f.flush()?;
    }
    std::fs::rename(&tmp, &a.out).with_context(|| format!("{}: cannot write", a.out.display()))?;
    println!(
        "{}",
        json!({"model": path, "token_ids": ids, "rows": logits.rows, "vocab": logits.cols, "out": a.out})
    );
    Ok(())
}
