//! Hugging Face hub downloads for users with a hub connection (`owner/name` MODEL arguments).
//! Files land in the hub's own cache (`$HF_HOME`); we return the snapshot directory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use hf_hub::api::sync::ApiBuilder;

/// Downloads config, tokenizer and safetensors weights of `repo_id` and returns their directory.
pub fn download(repo_id: &str) -> Result<PathBuf> {
    let api = ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .context("cannot set up the Hugging Face hub client")?;
    let repo = api.model(repo_id.to_string());
    let get = |f: &str| {
        repo.get(f).with_context(|| {
            format!("{repo_id}: cannot download {f} from the Hugging Face hub (is it reachable?)")
        })
    };
    let config = get("config.json")?;
    get("tokenizer.json")?;
    // Optional: chat template and special tokens.
    let _ = repo.get("tokenizer_config.json");
    match repo.get("model.safetensors") {
        Ok(_) => {}
        Err(_) => {
            let index = get("model.safetensors.index.json")?;
            let text = std::fs::read_to_string(&index)?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid JSON", index.display()))?;
            let mut shards: Vec<String> = v["weight_map"]
                .as_object()
                .map(|m| {
                    m.values()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            shards.sort();
            shards.dedup();
            for s in shards {
                get(&s)?;
            }
        }
    }
    config
        .parent()
        .map(|p| p.to_path_buf())
        .context("hub cache path has no parent directory")
}
