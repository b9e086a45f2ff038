//! `secateurs compare`: dense down-scaling (seed 000's "independently training smaller models").
//! The same tasks and perplexity on a family of dense models of different sizes; the report
//! plots accuracy against parameter count. Finished models are cached in `OUT/results.jsonl`
//! under their content hash and the evaluation settings, like sweep points.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use secateurs_model::model::ModelFiles;
use secateurs_report::{
    fingerprint_model, now_unix, write_report, PointRecord, ReportKind, ResultsStore,
};
use serde_json::json;

use super::sweep::{model_stats, process_cpu_seconds, Bars, EvalArgs, EvalSetup};
use crate::common;

/// Arguments of `secateurs compare`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs compare small.gguf medium-dir large-dir --out family
  secateurs compare a.gguf b.gguf --tasks facts_countries,openbook_countries,icl_linear --limit 200 --out ab
  secateurs report family          # rebuild the report from family/results.jsonl

Each model is evaluated on perplexity and the tasks of `secateurs eval`, with the same items for
every model. OUT/report.md and OUT/report.html show a table and plots of accuracy per task family
against parameter count (log scale), raw and relative to the largest model, and state whether
fact recall falls off faster than the in-context tasks. Models already in OUT/results.jsonl with
the same evaluation settings are not evaluated again.")]
pub struct Args {
    /// Two or more models: directories, .gguf files or hub repo ids.
    #[arg(required = true, num_args = 1..)]
    models: Vec<String>,
    #[command(flatten)]
    eval: EvalArgs,
    /// Output directory: results.jsonl, results.csv, report.md, report.html, plots/.
    #[arg(long)]
    out: PathBuf,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    let quiet = a.json;
    if a.models.len() < 2 {
        bail!("compare needs at least two models (got {})", a.models.len());
    }
    let setup = EvalSetup::new(&a.eval)?;
    let mut paths = Vec::new();
    for m in &a.models {
        let p = common::resolve_model(Some(m))?;
        let h = fingerprint_model(&p)?;
        paths.push((p, h));
    }
    let mut store = ResultsStore::open(&a.out)?;
    let bars = Bars::new(paths.len() as u64, quiet);
    let mut ran = Vec::new();
    for (i, (path, hash)) in paths.iter().enumerate() {
        let key = setup.key(hash);
        if store.finished(&key).is_some() {
            bars.line(
                quiet,
                &format!("[{}/{}] {}: cached", i + 1, paths.len(), path.display()),
            );
            bars.outer.inc(1);
            continue;
        }
        bars.outer.set_message(path.display().to_string());
        let t = Instant::now();
        let files = ModelFiles::open(path).with_context(|| path.display().to_string())?;
        bars.inner.set_message("loading");
        bars.inner.set_length(files.config.num_layers as u64);
        bars.inner.set_position(0);
        let model = files
            .load(&mut |l| bars.inner.set_position(l as u64 + 1))
            .with_context(|| path.display().to_string())?;
        let tok = files
            .tokenizer()
            .with_context(|| path.display().to_string())?;
        let load_s = t.elapsed().as_secs_f64();
        let (params, linear_params, zeros) = model_stats(&model);
        let ppl_tokens = setup.ppl_tokens(tok)?;
        let te = Instant::now();
        let cpu0 = process_cpu_seconds();
        let (ppl, tasks) = setup
            .run(&model, tok, &ppl_tokens, &bars.inner)
            .with_context(|| path.display().to_string())?;
        let eval_s = te.elapsed().as_secs_f64();
        let eval_cpu = process_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
        let record = PointRecord {
            id: key.id(),
            key,
            model: path.display().to_string(),
            params,
            linear_params,
            achieved_sparsity: zeros as f64 / linear_params.max(1) as f64,
            perplexity: ppl,
            tasks,
            prune_seconds: 0.0,
            eval_seconds: eval_s,
            prune_cpu_seconds: Some(0.0),
            eval_cpu_seconds: eval_cpu,
            finished_unix: now_unix(),
            secateurs: format!("secateurs {}", env!("CARGO_PKG_VERSION")),
        };
        bars.line(
            quiet,
            &format!(
                "[{}/{}] {}: {} parameters, load {load_s:.1} s, eval {eval_s:.1} s, ppl {}; {}",
                i + 1,
                paths.len(),
                path.display(),
                params,
                ppl.map_or("-".into(), |v| format!("{v:.2}")),
                record
                    .tasks
                    .iter()
                    .map(|t| format!("{} {:.1}", t.task, 100.0 * t.accuracy))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        ran.push(json!({"model": path, "params": params, "eval_s": eval_s, "perplexity": ppl}));
        store.insert(record)?;
        bars.outer.inc(1);
    }
    bars.finish();
    // Only the models of this invocation are compared, even if the directory holds others.
    let wanted: Vec<PointRecord> = paths
        .iter()
        .filter_map(|(_, h)| store.finished(&setup.key(h)).cloned())
        .collect();
    let report = write_report(&a.out, &wanted)?;
    debug_assert_eq!(report.kind, ReportKind::Compare);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "out": a.out, "models": a.models, "ran": ran,
                "seconds": t0.elapsed().as_secs_f64(), "report": report,
            }))?
        );
    } else {
        println!("{}", report.finding.replace("**", ""));
        println!(
            "wrote {}, {} and {} plots",
            report.markdown.display(),
            report.html.display(),
            report.plots.len()
        );
    }
    Ok(())
}
