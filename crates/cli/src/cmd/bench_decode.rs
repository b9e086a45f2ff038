//! `secateurs bench decode`: greedy decoding speed (batch 1, KV cache) of the same model stored
//! dense and sparse, against the machine's measured memory bandwidth and, for the first model,
//! transformers + PyTorch `generate` (scripts/torch_decode.py), all in one run.
//!
//! Decode is memory-bound: every new token reads every weight once. So each variant is reported
//! with the bytes it reads per token, the bandwidth that implies, and the ceiling
//! `bandwidth / bytes`; a sparse variant's speedup over dense is set beside its byte-ratio limit
//! `bytes(dense) / bytes(sparse)` (the unpruned head counts on both sides).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use secateurs_model::model::{argmax, CausalLm};
use secateurs_sparse::{bandwidth, Format, ValueDtype};
use serde::Serialize;
use serde_json::{json, Value};

use crate::cmd::bench::run_reference;
use crate::common;

/// Arguments of `secateurs bench decode`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs bench decode                                  # default model: ours vs PyTorch
  secateurs bench decode --dtype f32,bf16 --python /opt/refenv/bin/python
  secateurs bench decode wanda50 wanda70 wanda24 --no-reference --json

Each MODEL is loaded twice per value type: with every linear layer stored dense, and with each
stored in the format that reads the fewest bytes for its sparsity pattern (--sparse-format). The
timed runs of the two alternate (dense, sparse, dense, ...; --repeat each, the fastest kept), so
both see the same memory bandwidth as it drifts. Both decode the same prompt greedily for
--new-tokens tokens; the report gives tokens/s (first new token to last, prefill excluded), bytes
read per token, the fraction of the read bandwidth that is (probed just before each timed run,
against the probe of the fastest), the sparse/dense speedup beside its byte-ratio limit, whether
the greedy tokens are identical and the largest logit difference over all steps. A line gives
the range of all the run's probes: on a shared machine they can move by 2x within a minute,
and a row's \"of bw\" is only as steady as its probe. Two columns set each run against its own
moment instead of the fastest: \"med\", the median of every run's GB/s over the probe just before
it, and \"paired\", the median over the rounds of the sparse run's tokens/s over the dense run
just before it, as a fraction of the limit.
The first model is also run with transformers + PyTorch (f32, same thread count) when the Python
interpreter has torch, transformers and gguf. Its tokens/s times the dense f32 row's bytes per
token is the bandwidth its decode implies; the report sets that beside a probe taken just before
it, with the fraction of the probe that twice its speed would need (over 100%: out of reach of
any decoder that reads those bytes).
On Linux with glibc, secateurs re-executes itself once with glibc.malloc.hugetlb=1 so that the
weights (and the probes' buffers) sit on 2 MiB transparent huge pages; the report says whether
they do. SECATEURS_HUGE_PAGES=0 turns that off.")]
pub struct DecodeBenchArgs {
    /// Models (directories, .gguf files or compressed checkpoints; default: the default model).
    models: Vec<String>,
    /// New tokens to decode per run.
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    /// Prompt to start from.
    #[arg(long, default_value = "The capital of France is")]
    prompt: String,
    /// Value types of the stored weights, comma-separated (f32, f16, bf16).
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    dtype: Vec<ValueDtype>,
    /// Format of the sparse variant: auto (per matrix), csr, bitmask, nm or coo.
    #[arg(long, default_value = "auto")]
    sparse_format: String,
    /// Timed runs per variant, alternating between the variants (the fastest of each is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Skip the transformers + PyTorch reference.
    #[arg(long)]
    no_reference: bool,
    /// Python interpreter with torch + transformers + gguf for the reference run.
    #[arg(long, default_value = "python3", env = "SECATEURS_PYTHON")]
    python: String,
    /// Reference script (default: scripts/torch_decode.py of the source tree).
    #[arg(long)]
    script: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// One timed decode.
struct Decode {
    tokens: Vec<u32>,
    logits: Vec<Vec<f32>>,
    tokens_per_second: f64,
}

/// Greedy decode of `n` tokens after `prompt`; speed counts the `n - 1` steps after the first
/// new token (prefill excluded), as scripts/torch_decode.py does.
fn decode(model: &CausalLm, prompt: &[u32], n: usize, keep_logits: bool) -> Result<Decode> {
    let head = model.arch.head();
    let mut cache = model.new_cache();
    let mut tokens = Vec::with_capacity(n);
    let mut logits = Vec::new();
    let h = model.forward_hidden(prompt, 0, Some(&mut cache))?;
    let l = head.forward(&h.slice_rows(h.rows - 1, h.rows)); // (1, vocab)
    let mut next = argmax(&l.data);
    tokens.push(next);
    if keep_logits {
        logits.push(l.data);
    }
    let t0 = Instant::now();
    let mut pos = prompt.len();
    // The steps run on a pool worker leading a spinning team, as `CausalLm::generate_greedy`
    // does.
    secateurs_sparse::kernels::team::run(|| -> Result<()> {
        for _ in 1..n {
            let h = model.forward_hidden(&[next], pos, Some(&mut cache))?; // (1, hidden)
            pos += 1;
            let l = head.forward(&h); // (1, vocab)
            next = argmax(&l.data);
            tokens.push(next);
            if keep_logits {
                logits.push(l.data);
            }
        }
        Ok(())
    })?;
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    Ok(Decode {
        tokens,
        logits,
        tokens_per_second: (n - 1) as f64 / secs,
    })
}

#[derive(Serialize)]
struct Variant {
    model: String,
    variant: String,
    dtype: ValueDtype,
    storage: String,
    bytes_per_token: usize,
    tokens_per_second: f64,
    gb_per_second: f64,
    /// Read bandwidth probed just before the fastest run (GB/s); the fraction and the ceiling
    /// use it.
    read_bandwidth_gb_s: f64,
    fraction_of_bandwidth: f64,
    /// Median over the timed runs of each run's GB/s over the probe just before it.
    fraction_of_bandwidth_median: f64,
    ceiling_tokens_per_second: f64,
    /// Sparse variants: speedup over the dense variant of the same model and dtype.
    speedup: Option<f64>,
    /// Sparse variants: bytes(dense) / bytes(sparse).
    byte_ratio_limit: Option<f64>,
    /// Sparse variants: speedup / limit.
    fraction_of_limit: Option<f64>,
    /// Sparse variants: median over the rounds of (this run's tokens/s ÷ the dense run just
    /// before it), each pair timed back to back.
    paired_speedup_median: Option<f64>,
    /// Sparse variants: `paired_speedup_median / byte_ratio_limit`.
    paired_fraction_of_limit: Option<f64>,
    /// Sparse variants: greedy tokens identical to the dense run.
    same_tokens: Option<bool>,
    /// Sparse variants: largest |logit difference| to the dense run over all steps.
    max_logit_diff: Option<f32>,
}

/// Counts of each storage across the linear layers (`bitmask/f32 x150, nm 2:4/f32 x60`).
fn storage_summary(model: &CausalLm) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for layer in model.arch.layers() {
        for (_, lin) in layer.linears() {
            *counts.entry(lin.storage()).or_default() += 1;
        }
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} x{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the benchmark.
///
/// # Errors
/// Unknown models or formats, a model without tokenizer, or a decode error.
pub fn run(a: DecodeBenchArgs) -> Result<()> {
    if a.new_tokens < 2 {
        bail!("--new-tokens must be at least 2");
    }
    if a.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let sparse_format: Option<Format> = match a.sparse_format.as_str() {
        "auto" => None,
        s => Some(s.parse::<Format>().map_err(anyhow::Error::msg)?),
    };
    let threads = rayon::current_num_threads();
    let names: Vec<Option<String>> = if a.models.is_empty() {
        vec![None]
    } else {
        a.models.iter().cloned().map(Some).collect()
    };
    if !a.json {
        eprintln!("measuring memory bandwidth ...");
    }
    let read_bw = bandwidth::measure_read_bandwidth();
    let copy_bw = bandwidth::measure_copy_bandwidth();
    // Every read-bandwidth probe of the invocation, so the report can show how far the
    // machine's bandwidth moved while it ran.
    let mut probes: Vec<f64> = vec![read_bw];
    let mut rows: Vec<Variant> = Vec::new();
    let mut reference: Option<Value> = None;
    // The first model's dense f32 row: best tokens/s, its greedy tokens, bytes per token.
    let mut ours_first_dense: Option<(f64, Vec<u32>, usize)> = None;
    // The read bandwidth probed just before the reference ran.
    let mut reference_probe: Option<f64> = None;
    for (mi, name) in names.iter().enumerate() {
        let path = common::resolve_model(name.as_deref())?;
        let label = name.clone().unwrap_or_else(|| "default".into());
        for &dtype in &a.dtype {
            // Both storages of the model are built first, so that their timed runs can
            // alternate: this machine's memory bandwidth drifts by ±10% over a minute, and
            // runs of one variant after the other would compare different bandwidths.
            let (files, mut dense) = common::load_model(&path, a.json)?;
            let prompt = files.tokenizer()?.encode(&a.prompt)?;
            let kv_bytes = {
                let c = dense.config();
                c.num_layers
                    * 2
                    * c.num_kv_heads
                    * c.head_dim
                    * 4
                    * (prompt.len() + a.new_tokens / 2)
            };
            dense
                .repack(Some(Format::Dense), dtype)
                .with_context(|| format!("{label}: cannot store as dense"))?;
            let (_, mut sparse) = common::load_model(&path, true)?;
            sparse
                .repack(sparse_format, dtype)
                .with_context(|| format!("{label}: cannot store as {}", a.sparse_format))?;
            let mut variants = vec![("dense".to_string(), dense)];
            if sparse.weight_bytes() == variants[0].1.weight_bytes() {
                if !a.json {
                    eprintln!(
                        "{label} {dtype}: no matrix is sparse enough to store sparse; dense only"
                    );
                }
            } else {
                variants.push((format!("sparse {}", a.sparse_format), sparse));
            }
            // Per variant: the first timed run (tokens and logits kept), and every run's
            // tokens/s with the read bandwidth probed just before it, round by round (the
            // machine's bandwidth drifts, so each run is set against a probe of the same moment).
            let mut firsts: Vec<Decode> = Vec::new();
            let mut each: Vec<Vec<(f64, f64)>> = vec![Vec::new(); variants.len()];
            for (variant, model) in &variants {
                if !a.json {
                    eprintln!("{label} {variant} {dtype}: {}", storage_summary(model));
                }
                decode(model, &prompt, 8.min(a.new_tokens), false)?; // warm-up
                let bw = bandwidth::measure_read_bandwidth();
                probes.push(bw);
                let first = decode(model, &prompt, a.new_tokens, true)?;
                each[firsts.len()].push((first.tokens_per_second, bw));
                firsts.push(first);
            }
            for _ in 1..a.repeat {
                for ((_, model), each) in variants.iter().zip(each.iter_mut()) {
                    let bw = bandwidth::measure_read_bandwidth();
                    probes.push(bw);
                    let tps = decode(model, &prompt, a.new_tokens, false)?.tokens_per_second;
                    each.push((tps, bw));
                }
            }
            let dense_bytes = variants[0].1.weight_bytes() + kv_bytes;
            // The fastest run of each variant (the earliest of equals) and its probe.
            let bests: Vec<(f64, f64)> = each
                .iter()
                .map(|runs| {
                    runs.iter()
                        .copied()
                        .fold(
                            (f64::NEG_INFINITY, f64::NAN),
                            |b, r| if r.0 > b.0 { r } else { b },
                        )
                })
                .collect();
            for (vi, ((variant, model), (first, (best, bw)))) in
                variants.iter().zip(firsts.iter().zip(&bests)).enumerate()
            {
                let bytes = model.weight_bytes() + kv_bytes;
                let gbs = best * bytes as f64 / 1e9;
                let of_bw: Vec<f64> = each[vi]
                    .iter()
                    .map(|(tps, bw)| tps * bytes as f64 / 1e9 / bw)
                    .collect();
                let mut row = Variant {
                    model: label.clone(),
                    variant: variant.clone(),
                    dtype,
                    storage: storage_summary(model),
                    bytes_per_token: bytes,
                    tokens_per_second: *best,
                    gb_per_second: gbs,
                    read_bandwidth_gb_s: *bw,
                    fraction_of_bandwidth: gbs / bw,
                    fraction_of_bandwidth_median: median(&of_bw).unwrap_or(f64::NAN),
                    ceiling_tokens_per_second: bw * 1e9 / bytes as f64,
                    speedup: None,
                    byte_ratio_limit: None,
                    fraction_of_limit: None,
                    paired_speedup_median: None,
                    paired_fraction_of_limit: None,
                    same_tokens: None,
                    max_logit_diff: None,
                };
                if vi == 0 {
                    if mi == 0 && dtype == ValueDtype::F32 {
                        ours_first_dense = Some((*best, first.tokens.clone(), bytes));
                    }
                } else {
                    let (d, dtps) = (&firsts[0], bests[0].0);
                    let speedup = best / dtps;
                    let limit = dense_bytes as f64 / bytes as f64;
                    row.speedup = Some(speedup);
                    row.byte_ratio_limit = Some(limit);
                    row.fraction_of_limit = Some(speedup / limit);
                    let paired = paired_speedups(&each[0], &each[vi]);
                    row.paired_speedup_median = median(&paired);
                    row.paired_fraction_of_limit = row.paired_speedup_median.map(|s| s / limit);
                    row.same_tokens = Some(d.tokens == first.tokens);
                    let diff = d
                        .logits
                        .iter()
                        .zip(&first.logits)
                        .flat_map(|(x, y)| x.iter().zip(y).map(|(a, b)| (a - b).abs()))
                        .fold(0f32, f32::max);
                    row.max_logit_diff = Some(diff);
                }
                rows.push(row);
            }
            drop(variants);
            if mi == 0 && dtype == a.dtype[0] && !a.no_reference && reference.is_none() {
                let args: Vec<String> = vec![
                    "--model".into(),
                    path.to_string_lossy().into(),
                    "--prompt".into(),
                    a.prompt.clone(),
                    "--new-tokens".into(),
                    a.new_tokens.to_string(),
                    "--threads".into(),
                    threads.to_string(),
                    "--repeat".into(),
                    a.repeat.to_string(),
                    "--json".into(),
                ];
                let bw = bandwidth::measure_read_bandwidth();
                probes.push(bw);
                reference_probe = Some(bw);
                reference = run_reference(
                    &a.python,
                    a.script.as_deref(),
                    "torch_decode.py",
                    "transformers + PyTorch",
                    a.json,
                    &args,
                );
            }
        }
    }
    let ref_tps = reference
        .as_ref()
        .and_then(|r| r["tokens_per_second"].as_f64());
    let ref_tokens: Option<Vec<u32>> = reference.as_ref().and_then(|r| {
        r["tokens"].as_array().map(|t| {
            t.iter()
                .filter_map(|v| v.as_u64().map(|x| x as u32))
                .collect()
        })
    });
    let vs_reference = match (&ours_first_dense, ref_tps) {
        (Some((ours, _, _)), Some(r)) => Some(ours / r),
        _ => None,
    };
    let same_as_reference = match (&ours_first_dense, &ref_tokens) {
        (Some((_, ours, _)), Some(r)) => Some(ours == r),
        _ => None,
    };
    let reference_bw = match (&ours_first_dense, ref_tps, reference_probe) {
        (Some((_, _, bytes)), Some(t), Some(bw)) => Some(ReferenceBandwidth::of(t, *bytes, bw)),
        _ => None,
    };
    let spread = ProbeSpread::of(&probes);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "threads": threads, "new_tokens": a.new_tokens, "prompt": a.prompt,
                "read_bandwidth_gb_s": read_bw, "copy_bandwidth_gb_s": copy_bw,
                "read_bandwidth_probes": spread,
                "variants": rows, "reference": reference,
                "speedup_vs_reference": vs_reference,
                "same_tokens_as_reference": same_as_reference,
                "reference_bandwidth": reference_bw,
                "huge_pages": crate::hugepages::state().describe(),
            }))?
        );
        return Ok(());
    }
    println!(
        "greedy decode, batch 1, {} new tokens, {threads} threads; huge pages for the weights (and the probes' \
         buffers): {}",
        a.new_tokens,
        crate::hugepages::state().describe()
    );
    println!(
        "memory bandwidth at the start: read {read_bw:.1} GB/s, copy {copy_bw:.1} GB/s; each row's \"bw\" is the read \
         bandwidth probed just before its fastest run, which \"of bw\" and \"ceiling\" use"
    );
    println!(
        "\"med\": the median over the {} runs of each run's GB/s over its own probe; \"paired\": the median \
         over the rounds of sparse tokens/s over the dense run just before it, as a fraction of the limit",
        a.repeat
    );
    if let Some(sp) = &spread {
        println!(
            "read-bandwidth probes of this run: {} from {:.1} to {:.1} GB/s, median {:.1}",
            sp.count, sp.min_gb_s, sp.max_gb_s, sp.median_gb_s
        );
    }
    println!(
        "  {:<14} {:<22} {:>9} {:>9} {:>7} {:>6} {:>6} {:>5} {:>8} {:>8} {:>7} {:>7} {:>7} {:>5} {:>9}",
        "model",
        "variant",
        "MB/token",
        "tokens/s",
        "GB/s",
        "bw",
        "of bw",
        "med",
        "ceiling",
        "speedup",
        "limit",
        "of lim",
        "paired",
        "same",
        "max|dl|"
    );
    for r in &rows {
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("".to_string(), f);
        println!(
            "  {:<14} {:<22} {:>9.1} {:>9.1} {:>7.1} {:>6.1} {:>5.0}% {:>4.0}% {:>8.1} {:>8} {:>7} {:>7} {:>7} {:>5} {:>9}",
            r.model,
            format!("{} {}", r.variant, r.dtype),
            r.bytes_per_token as f64 / 1e6,
            r.tokens_per_second,
            r.gb_per_second,
            r.read_bandwidth_gb_s,
            100.0 * r.fraction_of_bandwidth,
            100.0 * r.fraction_of_bandwidth_median,
            r.ceiling_tokens_per_second,
            opt(r.speedup, &|s| format!("{s:.2}x")),
            opt(r.byte_ratio_limit, &|s| format!("{s:.2}x")),
            opt(r.fraction_of_limit, &|s| format!("{:.0}%", 100.0 * s)),
            opt(r.paired_fraction_of_limit, &|s| format!("{:.0}%", 100.0 * s)),
            r.same_tokens.map_or("", |s| if s { "yes" } else { "NO" }),
            r.max_logit_diff.map_or("".into(), |d| format!("{d:.1e}")),
        );
    }
    match (ref_tps, vs_reference) {
        (Some(t), Some(s)) => println!(
            "  transformers + PyTorch generate (f32): {t:.1} tokens/s; secateurs dense f32 is {s:.2}x faster{}",
            match same_as_reference {
                Some(true) => ", same greedy tokens",
                Some(false) => ", greedy tokens differ (float rounding)",
                None => "",
            }
        ),
        _ if a.no_reference => {}
        _ => println!("  transformers + PyTorch: not run (see above)"),
    }
    if let Some(r) = &reference_bw {
        println!(
            "  PyTorch read {:.1} GB/s ({:.0}% of a {:.1} GB/s probe taken just before it, at the dense f32 \
             row's {:.1} MB/token); twice its speed needs {:.0}% of that probe",
            r.gb_s,
            100.0 * r.fraction_of_probe,
            r.probe_gb_s,
            r.bytes_per_token as f64 / 1e6,
            100.0 * r.twice_fraction_of_probe
        );
    }
    Ok(())
}

/// The median of the values that are not NaN (the mean of the middle two for an even count), or
/// `None` without any.
fn median(v: &[f64]) -> Option<f64> {
    let mut p: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if p.is_empty() {
        return None;
    }
    p.sort_by(f64::total_cmp);
    let n = p.len();
    Some(if n % 2 == 1 {
        p[n / 2]
    } else {
        (p[n / 2 - 1] + p[n / 2]) / 2.0
    })
}

/// Round by round, a sparse run's tokens/s over the dense run timed just before it (the runs
/// alternate dense, sparse, dense, ...): `(tokens/s, probe)` per run of each.
fn paired_speedups(dense: &[(f64, f64)], sparse: &[(f64, f64)]) -> Vec<f64> {
    dense
        .iter()
        .zip(sparse)
        .map(|((d, _), (s, _))| s / d)
        .collect()
}

/// The memory bandwidth the reference's decode implies: it reads at least the weights (and KV
/// cache) our dense f32 row reads, so its tokens/s times those bytes is a lower bound on what it
/// streamed. Set beside a probe taken just before it, this says how fast a memory-bound decoder
/// can be relative to it on this machine: 2x the reference needs `twice_fraction_of_probe` of
/// the probe.
#[derive(Serialize, Debug, PartialEq)]
struct ReferenceBandwidth {
    tokens_per_second: f64,
    bytes_per_token: usize,
    gb_s: f64,
    probe_gb_s: f64,
    fraction_of_probe: f64,
    twice_fraction_of_probe: f64,
}

impl ReferenceBandwidth {
    fn of(tokens_per_second: f64, bytes_per_token: usize, probe_gb_s: f64) -> ReferenceBandwidth {
        let gb_s = tokens_per_second * bytes_per_token as f64 / 1e9;
        ReferenceBandwidth {
            tokens_per_second,
            bytes_per_token,
            gb_s,
            probe_gb_s,
            fraction_of_probe: gb_s / probe_gb_s,
            twice_fraction_of_probe: 2.0 * gb_s / probe_gb_s,
        }
    }
}

/// The range of the read-bandwidth probes taken during one `bench decode`.
#[derive(Serialize, Debug, PartialEq)]
struct ProbeSpread {
    count: usize,
    min_gb_s: f64,
    median_gb_s: f64,
    max_gb_s: f64,
}

impl ProbeSpread {
    /// `None` without probes; NaN probes (none expected) are left out.
    fn of(probes: &[f64]) -> Option<ProbeSpread> {
        let p: Vec<f64> = probes.iter().copied().filter(|v| !v.is_nan()).collect();
        Some(ProbeSpread {
            count: p.len(),
            min_gb_s: p.iter().copied().fold(f64::INFINITY, f64::min),
            median_gb_s: median(&p)?,
            max_gb_s: p.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_spread_gives_range_and_median() {
        assert_eq!(ProbeSpread::of(&[]), None);
        assert_eq!(ProbeSpread::of(&[f64::NAN]), None);
        let s = ProbeSpread::of(&[40.0, 25.0, f64::NAN, 31.0]).expect("spread");
        assert_eq!(
            s,
            ProbeSpread {
                count: 3,
                min_gb_s: 25.0,
                median_gb_s: 31.0,
                max_gb_s: 40.0
            }
        );
        let s = ProbeSpread::of(&[30.0, 50.0, 20.0, 40.0]).expect("spread");
        assert_eq!((s.count, s.median_gb_s), (4, 35.0));
    }

    #[test]
    fn reference_bandwidth_is_its_tokens_times_our_bytes_over_the_probe() {
        // 25 tokens/s of 540 MB is 13.5 GB/s: 45% of a 30 GB/s probe, and 2x needs 90%.
        let r = ReferenceBandwidth::of(25.0, 540_000_000, 30.0);
        assert!((r.gb_s - 13.5).abs() < 1e-12);
        assert!((r.fraction_of_probe - 0.45).abs() < 1e-12);
        assert!((r.twice_fraction_of_probe - 0.9).abs() < 1e-12);
        assert_eq!(
            (r.tokens_per_second, r.bytes_per_token),
            (25.0, 540_000_000)
        );
    }

    #[test]
    fn paired_speedups_divide_each_sparse_run_by_the_dense_run_of_its_round() {
        // Round 2 ran at a higher bandwidth for both; the best-of runs (80 and 140) would pair
        // different rounds.
        let dense = [(50.0, 30.0), (80.0, 50.0), (55.0, 31.0)];
        let sparse = [(100.0, 30.0), (140.0, 50.0), (99.0, 31.0)];
        let p = paired_speedups(&dense, &sparse);
        assert_eq!(p, vec![2.0, 1.75, 1.8]);
        assert_eq!(median(&p), Some(1.8));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 3.0, 1.0]), Some(2.0));
    }
}
