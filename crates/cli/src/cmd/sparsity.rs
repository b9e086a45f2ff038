//! `secateurs sparsity`: the measured sparsity of any checkpoint, per matrix, per module type and
//! overall, and which N:M patterns each matrix satisfies.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args as ClapArgs;
use secateurs_model::model::ModelFiles;
use serde_json::json;

/// Arguments of `secateurs sparsity`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs sparsity pruned-wanda50
  secateurs sparsity pruned-sgpt24 --per-matrix --json")]
pub struct Args {
    /// Model directory or .gguf file.
    model: String,
    /// List every matrix.
    #[arg(long)]
    per_matrix: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Whether every group of `m` consecutive weights of each row holds at least `n` zeros.
fn satisfies(w: &[f32], cols: usize, n: usize, m: usize) -> bool {
    cols.is_multiple_of(m)
        && w.chunks(m)
            .all(|g| g.iter().filter(|v| **v == 0.0).count() >= n)
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let path = crate::common::resolve_model(Some(&a.model))?;
    let files = ModelFiles::open(&path)?;
    let mut per_type: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut rows = Vec::new();
    let (mut total, mut zeros) = (0usize, 0usize);
    for name in files.weights.names() {
        let shape = files.weights.shape(&name).unwrap_or_default();
        if shape.len() != 2 || !name.contains(".layers.") {
            continue;
        }
        let t = files.weights.load(&name)?;
        let z = t.data.iter().filter(|v| **v == 0.0).count();
        let kind = name
            .rsplit('.')
            .nth(1)
            .unwrap_or("?")
            .trim_end_matches("_proj")
            .to_string();
        let e = per_type.entry(kind).or_default();
        e.0 += z;
        e.1 += t.numel();
        zeros += z;
        total += t.numel();
        let patterns: Vec<String> = [(2, 4), (4, 8)]
            .iter()
            .filter(|(n, m)| satisfies(&t.data, shape[1], *n, *m))
            .map(|(n, m)| format!("{n}:{m}"))
            .collect();
        rows.push((name, shape, z, t.numel(), patterns));
    }
    let frac = |z: usize, n: usize| z as f64 / n.max(1) as f64;
    if a.json {
        let v = json!({
            "model": path,
            "decoder_linear": {"params": total, "zeros": zeros, "sparsity": frac(zeros, total)},
            "by_module_type": per_type.iter().map(|(k, (z, n))| (k.clone(), json!({"params": n, "zeros": z, "sparsity": frac(*z, *n)}))).collect::<serde_json::Map<_, _>>(),
            "matrices": if a.per_matrix {
                json!(rows.iter().map(|(name, s, z, n, p)| json!({"name": name, "shape": s, "zeros": z, "sparsity": frac(*z, *n), "patterns": p})).collect::<Vec<_>>())
            } else { serde_json::Value::Null },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{}: decoder linear weights {:.2}% zeros ({zeros} of {total})",
        path.display(),
        100.0 * frac(zeros, total)
    );
    for (k, (z, n)) in &per_type {
        println!("  {k:<6} {:>7.2}%  ({z} of {n})", 100.0 * frac(*z, *n));
    }
    let all_24 = rows.iter().all(|r| r.4.iter().any(|p| p == "2:4"));
    let all_48 = rows.iter().all(|r| r.4.iter().any(|p| p == "4:8"));
    if all_24 || all_48 {
        println!(
            "  every matrix satisfies {}",
            if all_24 { "2:4 (and 4:8)" } else { "4:8" }
        );
    }
    if a.per_matrix {
        for (name, s, z, n, p) in &rows {
            println!(
                "  {name:<48} {s:?} {:>7.2}% {}",
                100.0 * frac(*z, *n),
                p.join(" ")
            );
        }
    }
    Ok(())
}
