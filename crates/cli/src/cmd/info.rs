//! `secateurs info`: architecture, shapes, storage dtypes and parameter counts.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args as ClapArgs;
use secateurs_model::model::ModelFiles;
use serde_json::json;

/// Arguments of `secateurs info`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs info                                  # the default model
  secateurs info ./my-model-dir --json
  secateurs info model.gguf --tensors             # every tensor with shape and storage type")]
pub struct Args {
    /// Model directory, .gguf file or hub repo id (default: the fetched default model).
    model: Option<String>,
    /// List every tensor.
    #[arg(long)]
    tensors: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Module type of a tensor, from its Hugging Face name.
fn module_type(name: &str) -> &'static str {
    const KINDS: &[(&str, &str)] = &[
        ("q_proj", "attention.q"),
        ("k_proj", "attention.k"),
        ("v_proj", "attention.v"),
        ("o_proj", "attention.o"),
        ("gate_proj", "mlp.gate"),
        ("up_proj", "mlp.up"),
        ("down_proj", "mlp.down"),
        ("layernorm", "norm"),
        ("model.norm", "norm"),
        ("embed_tokens", "embedding"),
        ("lm_head", "lm_head"),
    ];
    KINDS
        .iter()
        .find(|(k, _)| name.contains(k))
        .map_or("other", |(_, v)| v)
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let path = crate::common::resolve_model(a.model.as_deref())?;
    let files = ModelFiles::open(&path)?;
    let cfg = &files.config;
    let names = files.weights.names();
    let mut per_type: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dtypes: BTreeMap<String, usize> = BTreeMap::new();
    let mut tensors = Vec::new();
    for n in &names {
        let shape = files.weights.shape(n).unwrap_or_default();
        let numel: usize = shape.iter().product();
        *per_type.entry(module_type(n)).or_default() += numel;
        let dt = files.weights.storage_dtype(n).unwrap_or_else(|| "?".into());
        *dtypes.entry(dt.clone()).or_default() += numel;
        tensors.push((n.clone(), shape, dt));
    }
    let stored: usize = per_type.values().sum();
    // A tied head is counted once (it is the embedding).
    let tokenizer = match files.tokenizer() {
        Ok(t) => json!({"source": t.source(), "vocab_size": t.vocab_size(),
                        "chat_template": t.chat_template.is_some()}),
        Err(e) => json!({"error": e.to_string()}),
    };
    if a.json {
        let mut v = json!({
            "path": path, "format": files.format, "config": cfg,
            "parameters": {"total": stored, "by_module_type": per_type,
                           "prunable_linear": cfg.linear_params_per_layer() * cfg.num_layers},
            "storage_dtypes": dtypes, "tokenizer": tokenizer,
        });
        if a.tensors {
            v["tensors"] = json!(tensors
                .iter()
                .map(|(n, s, d)| json!({"name": n, "shape": s, "dtype": d}))
                .collect::<Vec<_>>());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("model:         {} ({:?})", path.display(), files.format);
    println!("architecture:  {}", cfg.architecture);
    println!(
        "shape:         {} layers, hidden {}, intermediate {}, heads {} (kv {}, head_dim {}), vocab {}",
        cfg.num_layers, cfg.hidden_size, cfg.intermediate_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.vocab_size
    );
    println!(
        "rope:          theta {}{}; rms_norm_eps {}; context {}",
        cfg.rope_theta,
        if cfg.rope_scaling.is_some() {
            " (llama3 scaling)"
        } else {
            ""
        },
        cfg.rms_norm_eps,
        cfg.max_position_embeddings
    );
    println!(
        "lm_head:       {}",
        if cfg.tie_word_embeddings {
            "tied to the embedding"
        } else {
            "separate"
        }
    );
    println!("parameters:    {stored} stored");
    for (k, v) in &per_type {
        println!(
            "  {k:<14} {v:>12}  ({:.1}%)",
            100.0 * *v as f64 / stored.max(1) as f64
        );
    }
    println!(
        "prunable:      {} in attention + MLP linear layers",
        cfg.linear_params_per_layer() * cfg.num_layers
    );
    let dt: Vec<String> = dtypes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("storage:       {}", dt.join(", "));
    match files.tokenizer() {
        Ok(t) => println!(
            "tokenizer:     {} tokens from {}{}",
            t.vocab_size(),
            t.source().display(),
            if t.chat_template.is_some() {
                ", with chat template"
            } else {
                ""
            }
        ),
        Err(e) => println!("tokenizer:     none ({e})"),
    }
    if a.tensors {
        for (n, s, d) in &tensors {
            println!("  {n:<56} {d:<6} {s:?}");
        }
    }
    Ok(())
}
