//! `secateurs compress`: write a pruned checkpoint as a compressed sparse checkpoint (sparse
//! formats for the decoder's linear weights, a lossless zstd/byte-plane codec for every part;
//! layout in docs/compressed.md). Every command that takes a model reads the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use secateurs_model::compressed::{self, CompressOptions, CompressReport, TensorReport};
use secateurs_model::model::{ModelFiles, ModelFormat};
use secateurs_sparse::{Format, ValueDtype};
use serde_json::json;

use crate::common;

/// Arguments of `secateurs compress`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs compress pruned-wanda50 --out wanda50.sec            # auto formats, source dtype, zstd
  secateurs compress pruned-wanda50 --out wanda50-bf16.sec --dtype bf16
  secateurs compress pruned-24 --out p24.sec --format nm --json
  secateurs compress pruned --out dense-bf16 --format dense --dtype bf16 --codec none
  secateurs perplexity wanda50.sec                                # any command reads the result
  secateurs decompress wanda50.sec --out wanda50-again            # the exact dense checkpoint

The decoder's linear weights (model.layers.*.weight, 2-D) are stored in --format (auto: per
matrix, the format with the fewest bytes, as the loader would choose: dense unless a sparse
format saves 10%); every other tensor (embedding, norms, head) is stored dense. --dtype keep
stores values in the source's dtype (f32/f16/bf16; quantized GGUF tensors become f32), so the
result is lossless. The zstd codec splits values into byte planes (exponent plane first) and
compresses each; --codec none stores raw tensors (memory-mappable; with --format dense this is a
plain safetensors checkpoint that Hugging Face libraries read). The output is written to
OUT.tmp and renamed into place; the input is never modified.")]
pub struct Args {
    /// Model directory, .gguf file or hub repo id (default: the fetched default model).
    model: Option<String>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Format of the decoder's linear weights: auto, dense, coo, csr, bitmask or nm.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Value dtype: keep (the source's), f32, f16 or bf16.
    #[arg(long, default_value = "keep")]
    dtype: String,
    /// Codec: zstd (byte planes + zstd, lossless) or none (raw tensors).
    #[arg(long, default_value = "zstd")]
    codec: String,
    /// zstd compression level (1-22).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
    level: i32,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Creates an empty `OUT.tmp`, refusing an output that is (or contains) the input, or that
/// exists unless `overwrite`.
pub(crate) fn fresh_tmp(input: &Path, out: &Path, overwrite: bool) -> Result<PathBuf> {
    if out.exists() && !overwrite {
        bail!(
            "{}: already exists (use --overwrite to replace it)",
            out.display()
        );
    }
    if let (Ok(a), Ok(b)) = (input.canonicalize(), out.canonicalize()) {
        if a == b || a.starts_with(&b) {
            bail!(
                "{}: --out must not be the input (the input is never modified)",
                out.display()
            );
        }
    }
    let tmp = common::sibling(out, ".tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("{}: cannot remove stale temp dir", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    Ok(tmp)
}

/// Whether a file in a model directory holds weights (not copied beside the compressed ones).
fn is_weight_file(name: &str) -> bool {
    name == "model.safetensors.index.json"
        || [
            ".safetensors",
            ".bin",
            ".pt",
            ".pth",
            ".ckpt",
            ".gguf",
            ".h5",
            ".msgpack",
        ]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Copies the regular non-weight files of `src` (config, tokenizer, generation config, prune
/// report, ...) into `dst`; returns their names.
pub(crate) fn copy_side_files(src: &Path, dst: &Path) -> Result<Vec<String>> {
    let mut copied = Vec::new();
    let rd = std::fs::read_dir(src).with_context(|| format!("{}: cannot list", src.display()))?;
    for entry in rd {
        let entry = entry.with_context(|| format!("{}: cannot list", src.display()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let ft = entry
            .file_type()
            .with_context(|| format!("{}: cannot stat", entry.path().display()))?;
        if !ft.is_file() || is_weight_file(&name) {
            continue;
        }
        std::fs::copy(entry.path(), dst.join(&name)).with_context(|| {
            format!(
                "{}: cannot copy to {}",
                entry.path().display(),
                dst.display()
            )
        })?;
        copied.push(name);
    }
    copied.sort();
    Ok(copied)
}

/// Bytes of the weight files of a model path (the directory's weight files, or the file).
fn input_weight_bytes(path: &Path) -> u64 {
    if path.is_file() {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The module type of a tensor: `q_proj`, `input_layernorm`, `model.embed_tokens`, `lm_head`...
pub(crate) fn module_type(name: &str) -> String {
    let stem = name
        .strip_suffix(".weight")
        .or_else(|| name.strip_suffix(".bias"))
        .unwrap_or(name);
    if name.contains(".layers.") {
        stem.rsplit('.').next().unwrap_or(stem).to_string()
    } else {
        stem.to_string()
    }
}

#[derive(Default)]
struct TypeTotals {
    tensors: usize,
    params: usize,
    stored: usize,
    storages: BTreeMap<String, usize>,
}

fn by_module_type(tensors: &[TensorReport]) -> BTreeMap<String, TypeTotals> {
    let mut m: BTreeMap<String, TypeTotals> = BTreeMap::new();
    for t in tensors {
        let e = m.entry(module_type(&t.name)).or_default();
        e.tensors += 1;
        e.params += t.params;
        e.stored += t.stored_bytes;
        *e.storages.entry(t.storage.clone()).or_default() += 1;
    }
    m
}

fn parse_options(a: &Args) -> Result<CompressOptions> {
    let format = match a.format.to_ascii_lowercase().as_str() {
        "auto" => None,
        s => Some(s.parse::<Format>().map_err(anyhow::Error::msg)?),
    };
    let dtype = match a.dtype.to_ascii_lowercase().as_str() {
        "keep" => None,
        s => Some(s.parse::<ValueDtype>().map_err(anyhow::Error::msg)?),
    };
    let compress = match a.codec.to_ascii_lowercase().as_str() {
        "zstd" => true,
        "none" => false,
        s => bail!("unknown codec '{s}' (expected zstd or none)"),
    };
    Ok(CompressOptions {
        format,
        dtype,
        compress,
        level: a.level,
    })
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let opts = parse_options(&a)?;
    let t0 = Instant::now();
    let path = common::resolve_model(a.model.as_deref())?;
    let files = ModelFiles::open(&path)?;
    let tmp = fresh_tmp(&path, &a.out, a.overwrite)?;
    let result = write(&a, &opts, &path, &files, &tmp);
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    common::replace_dir(&tmp, &a.out)?;
    print_report(&a, &path, &report, t0.elapsed().as_secs_f64())
}

/// Writes config, tokenizer and the compressed weights into `tmp`.
fn write(
    a: &Args,
    opts: &CompressOptions,
    path: &Path,
    files: &ModelFiles,
    tmp: &Path,
) -> Result<CompressReport> {
    let mut source_header = None;
    if path.is_dir() {
        copy_side_files(path, tmp)?;
        let single = path.join(compressed::FILE_NAME);
        if single.is_file() {
            source_header = compressed::source_header_of(&single)?;
        }
    } else {
        // GGUF: the Hugging Face config comes from the loaded architecture, as `prune` writes it.
        let model = files.load(&mut |_| {})?;
        let cfg = serde_json::to_string_pretty(&model.arch.hf_config())?;
        let cfg_path = tmp.join("config.json");
        std::fs::write(&cfg_path, cfg + "\n")
            .with_context(|| format!("{}: cannot write", cfg_path.display()))?;
        if let Ok(tok) = files.tokenizer() {
            tok.save_to_dir(tmp)?;
        }
    }
    let pb = common::bar(files.weights.names().len() as u64, "compress", a.json);
    let report = compressed::compress(
        files.weights.as_ref(),
        &tmp.join(compressed::FILE_NAME),
        opts,
        source_header.as_deref(),
        &mut |done, _| pb.set_position(done as u64),
    )?;
    pb.finish_and_clear();
    if files.format == ModelFormat::Gguf && !a.json {
        eprintln!("note: quantized GGUF tensors are stored as their dequantized values");
    }
    Ok(report)
}

fn print_report(a: &Args, input: &Path, r: &CompressReport, secs: f64) -> Result<()> {
    let params: usize = r.tensors.iter().map(|t| t.params).sum();
    let input_bytes = input_weight_bytes(input);
    let bf16 = 2 * params as u64;
    let f32b = 4 * params as u64;
    let ratio = |x: u64| r.file_bytes as f64 / x.max(1) as f64;
    let types = by_module_type(&r.tensors);
    if a.json {
        let v = json!({
            "input": input,
            "output": a.out,
            "options": {"format": a.format, "dtype": a.dtype, "codec": a.codec, "level": a.level},
            "params": params,
            "file_bytes": r.file_bytes,
            "input_weight_bytes": input_bytes,
            "dense_bf16_bytes": bf16,
            "dense_f32_bytes": f32b,
            "ratio_vs_input": ratio(input_bytes),
            "ratio_vs_dense_bf16": ratio(bf16),
            "ratio_vs_dense_f32": ratio(f32b),
            "seconds": secs,
            "by_module_type": types.iter().map(|(k, t)| (k.clone(), json!({
                "tensors": t.tensors, "params": t.params, "stored_bytes": t.stored,
                "bytes_per_param": t.stored as f64 / t.params.max(1) as f64,
                "ratio_vs_dense_bf16": t.stored as f64 / (2 * t.params).max(1) as f64,
                "storage": t.storages,
            }))).collect::<serde_json::Map<_, _>>(),
            "tensors": r.tensors,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "compressed {} -> {} ({} tensors, {:.1} M params) in {secs:.1} s",
        input.display(),
        a.out.display(),
        r.tensors.len(),
        params as f64 / 1e6
    );
    println!(
        "  {:<20} {:>9} {:>11} {:>10} {:>8}  storage",
        "module", "params", "bytes", "bytes/par", "vs bf16"
    );
    for (k, t) in &types {
        let storage: Vec<String> = t
            .storages
            .iter()
            .map(|(s, n)| {
                if *n > 1 {
                    format!("{s} x{n}")
                } else {
                    s.clone()
                }
            })
            .collect();
        println!(
            "  {k:<20} {:>9} {:>11} {:>10.3} {:>7.3}x  {}",
            t.params,
            t.stored,
            t.stored as f64 / t.params.max(1) as f64,
            t.stored as f64 / (2 * t.params).max(1) as f64,
            storage.join(", ")
        );
    }
    println!(
        "  file {:.2} MB: {:.3}x the input ({:.2} MB), {:.3}x dense bf16 ({:.2} MB), {:.3}x dense f32",
        r.file_bytes as f64 / 1e6,
        ratio(input_bytes),
        input_bytes as f64 / 1e6,
        ratio(bf16),
        bf16 as f64 / 1e6,
        ratio(f32b)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_types() {
        assert_eq!(
            module_type("model.layers.3.self_attn.q_proj.weight"),
            "q_proj"
        );
        assert_eq!(
            module_type("model.layers.3.input_layernorm.weight"),
            "input_layernorm"
        );
        assert_eq!(
            module_type("model.embed_tokens.weight"),
            "model.embed_tokens"
        );
        assert_eq!(module_type("lm_head.weight"), "lm_head");
    }

    #[test]
    fn weight_files_are_not_copied() {
        assert!(is_weight_file("model.safetensors"));
        assert!(is_weight_file("model-00001-of-00002.safetensors"));
        assert!(is_weight_file("model.safetensors.index.json"));
        assert!(!is_weight_file("config.json"));
        assert!(!is_weight_file("tokenizer.json"));
    }
}
