//! `secateurs decompress`: turn a compressed checkpoint back into the exact dense checkpoint
//! (same tensor names, dtypes, shapes and bits; byte-identical `model.safetensors` when the
//! source was one safetensors file and compression kept its dtypes).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use secateurs_model::compressed::{self, CompressedSource};
use secateurs_model::weights::WeightSource;
use serde_json::json;

use crate::cmd::compress::{copy_side_files, fresh_tmp};
use crate::common;

/// Arguments of `secateurs decompress`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs decompress wanda50.sec --out wanda50-dense
  secateurs decompress wanda50.sec --out wanda50-dense --json

Each tensor is written dense in the dtype of the checkpoint it was compressed from (when the
stored values convert to it exactly; otherwise in the stored dtype). When the compressed
checkpoint recorded its source's safetensors header and every tensor matches it, that header is
reproduced verbatim, so `compress` (with --dtype keep) then `decompress` gives back a
byte-identical model.safetensors. Config and tokenizer files are copied. The output is written
to OUT.tmp and renamed into place.")]
pub struct Args {
    /// Compressed checkpoint directory (written by `secateurs compress`).
    model: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    if !compressed::is_compressed_dir(&a.model) {
        bail!(
            "{}: not a compressed checkpoint (expected a directory whose {} carries '{}' in its metadata; see `secateurs compress`)",
            a.model.display(),
            compressed::FILE_NAME,
            compressed::MARKER_KEY
        );
    }
    let src = CompressedSource::open_dir(&a.model)?;
    let tmp = fresh_tmp(&a.model, &a.out, a.overwrite)?;
    let n = src.names().len();
    let pb = common::bar(n as u64, "decompress", a.json);
    let result = copy_side_files(&a.model, &tmp).and_then(|_| {
        Ok(
            src.decompress(&tmp.join(compressed::FILE_NAME), &mut |done, _| {
                pb.set_position(done as u64)
            })?,
        )
    });
    pb.finish_and_clear();
    let verbatim = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    common::replace_dir(&tmp, &a.out)?;
    let bytes = std::fs::metadata(a.out.join(compressed::FILE_NAME))
        .map(|m| m.len())
        .unwrap_or(0);
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        let v = json!({
            "input": a.model, "output": a.out, "tensors": n, "file_bytes": bytes,
            "source_header_reproduced": verbatim, "seconds": secs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "decompressed {} -> {} ({n} tensors, {:.2} MB) in {secs:.1} s",
            a.model.display(),
            a.out.display(),
            bytes as f64 / 1e6
        );
        println!(
            "  {}",
            if verbatim {
                "source safetensors header reproduced verbatim (byte-identical to the source when compressed with --dtype keep)"
            } else {
                "no matching source header recorded: wrote a fresh safetensors header (tensors in name order)"
            }
        );
    }
    Ok(())
}
