//! `secateurs generate`: greedy decoding, for sanity checks.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use clap::Args as ClapArgs;
use serde_json::json;

use crate::common;

/// Arguments of `secateurs generate`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs generate --prompt 'The capital of France is'
  secateurs generate --chat --prompt 'Name three fruits.' --max-new-tokens 48
  secateurs generate ./pruned --prompt 'Once upon a time' --json")]
pub struct Args {
    /// Model directory, .gguf file or hub repo id (default: the fetched default model).
    model: Option<String>,
    /// Text to continue.
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    chat: bool,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    #[command(flatten)]
    storage: common::StorageArgs,
    /// Print JSON on stdout instead of streaming text.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let path = common::resolve_model(a.model.as_deref())?;
    let (files, mut model) = common::load_model(&path, a.json)?;
    if let Some(msg) = a.storage.apply(&mut model)? {
        if !a.json {
            eprintln!("{msg}");
        }
    }
    let tok = files.tokenizer()?;
    let text = if a.chat {
        tok.apply_chat_template(&a.prompt)?
    } else {
        a.prompt.clone()
    };
    let prompt = tok.encode(&text)?;
    let stop: Vec<u32> = tok
        .eos_id
        .into_iter()
        .chain(model.config().eos_token_id)
        .collect();
    let start = Instant::now();
    let mut streamed = String::new();
    let mut produced: Vec<u32> = Vec::new();
    let out = model.generate_greedy(&prompt, a.max_new_tokens, &stop, &mut |t| {
        if a.json || stop.contains(&t) {
            return;
        }
        produced.push(t);
        // Decode the whole continuation and print what is new, so multi-token characters print whole.
        if let Ok(s) = tok.decode(&produced) {
            if s.len() > streamed.len() && s.is_char_boundary(streamed.len()) {
                print!("{}", &s[streamed.len()..]);
                let _ = std::io::stdout().flush();
                streamed = s;
            }
        }
    })?;
    let secs = start.elapsed().as_secs_f64();
    let content: Vec<u32> = out.iter().copied().filter(|t| !stop.contains(t)).collect();
    let completion = tok.decode(&content)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "model": path, "prompt": text, "prompt_tokens": prompt.len(),
                "completion": completion, "completion_ids": out,
                "seconds": secs, "tokens_per_second": out.len() as f64 / secs.max(1e-9),
            }))?
        );
    } else {
        println!();
        eprintln!(
            "[{} prompt tokens, {} new tokens in {:.2} s: {:.1} tokens/s]",
            prompt.len(),
            out.len(),
            secs,
            out.len() as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}
