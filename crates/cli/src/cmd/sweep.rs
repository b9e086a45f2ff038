//! `secateurs sweep`: prune a model at every point of a grid (methods × scopes × sparsities, plus
//! N:M patterns), evaluate each point and the dense model on perplexity and the capability
//! tasks, and write `results.jsonl`, `results.csv` and the report. Also `secateurs report DIR`,
//! which regenerates the report from `results.jsonl`.
//!
//! Work shared across points: the model is loaded once and its dense weights are kept (shared,
//! not copied) so each point starts from them again; the calibration text is tokenized, sampled
//! and embedded (the inputs of decoder layer 0) once; the task items and the perplexity tokens
//! are built once. Each point then runs the pruning library's calibration loop exactly as
//! `secateurs prune` does, and the evaluation. Finished points are cached in `results.jsonl`
//! under their full settings, so an interrupted sweep resumes where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use secateurs_eval::tasks::{self, TaskData, TaskInfo};
use secateurs_eval::{build_tasks, perplexity, score_tasks, EvalOptions, PerplexityOptions};
use secateurs_model::arch::LinearKind;
use secateurs_model::linear::Linear;
use secateurs_model::model::CausalLm;
use secateurs_model::tokenizer::Tokenizer;
use secateurs_prune::calibrate::{
    capture_inputs, prune_layers, NoHook, PhaseTimes, Progress, PruneSettings,
};
use secateurs_prune::methods::{Method, SparseGptOptions};
use secateurs_prune::pattern::Pattern;
use secateurs_prune::sampling::{fnv1a64, sample_windows, tokens_hash};
use secateurs_prune::scope::{RoleFilter, Scope};
use secateurs_report::grid::{parse_combos, parse_patterns, parse_sparsities};
use secateurs_report::{
    fingerprint_model, now_unix, write_report, CalibrationKey, PointKey, PointRecord, ReportOutput,
    ResultsStore, TaskScore, DENSE,
};
use serde_json::json;

use crate::common;

/// Arguments of `secateurs sweep`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  # the sweep of docs/results/sweep (78 min on 2 cores): Wanda and SparseGPT on all layers,
  # Wanda on attention / MLP, five tasks
  secateurs sweep --combos wanda:all,sparsegpt:all,wanda:attention,wanda:mlp \\
      --sparsity 0.1:0.9:0.1 --nsamples 8 --ppl-windows 4 --out sweep \\
      --tasks facts_countries,facts_wikidata,openbook_countries,counterfactual,icl_linear
  # every method with every scope, plus 2:4 and 4:8
  secateurs sweep --methods wanda,sparsegpt --scopes all,attention,mlp --patterns 2:4,4:8 --out s2
  # a quick look: one point, few items
  secateurs sweep --methods wanda --sparsity 0.5 --nsamples 4 --limit 10 --out smoke
  secateurs sweep --limit facts_countries=300,icl_linear=300,100 --out s3   # per-task limits
  secateurs sweep ... --out sweep --dry-run     # the plan: which points are cached, which run
  secateurs report sweep                        # rebuild report.md/html and plots from results.jsonl

Every point (and the dense model) is evaluated on perplexity (--ppl-windows windows of the
evaluation text) and on the tasks of `secateurs eval` (--tasks, --limit). A finished point is
stored in OUT/results.jsonl under all its settings (model content hash, method, scope, sparsity
or pattern, calibration windows/length/seed/text, SparseGPT options, tasks, limits, seeds); a
rerun with the same settings skips it, and any changed setting makes it a new point. The report
(OUT/report.md, OUT/report.html, OUT/plots/) is rewritten after every point. Pruned models are
kept only with --keep-models (OUT/models/<point>/, Hugging Face layout).")]
pub struct Args {
    /// Model directory, .gguf file or hub repo id (default: the fetched default model).
    model: Option<String>,
    /// Pruning methods: magnitude, wanda, sparsegpt (crossed with --scopes).
    #[arg(long, default_value = "wanda,sparsegpt")]
    methods: String,
    /// Scopes: all, attention, mlp (crossed with --methods).
    #[arg(long, default_value = "all")]
    scopes: String,
    /// Explicit METHOD:SCOPE combinations instead of --methods × --scopes.
    #[arg(long, value_name = "METHOD:SCOPE,...")]
    combos: Option<String>,
    /// Unstructured sparsities: start:stop:step and/or values, e.g. 0.1:0.9:0.1 or 0.5,0.7
    /// (0 is the dense model, always evaluated once).
    #[arg(long, default_value = "0.1:0.9:0.1")]
    sparsity: String,
    /// N:M patterns to add for every combination, e.g. 2:4,4:8.
    #[arg(long, value_name = "N:M,...")]
    patterns: Option<String>,
    /// Calibration sequences (shared by every point).
    #[arg(long, default_value_t = 32)]
    nsamples: usize,
    /// Tokens per calibration sequence.
    #[arg(long, default_value_t = 512)]
    seqlen: usize,
    /// Seed for drawing calibration windows.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Calibration text file (default: the SQuADShifts calibration text).
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,
    /// SparseGPT damping, as a fraction of the mean Hessian diagonal.
    #[arg(long, default_value_t = 0.01)]
    damp: f64,
    /// SparseGPT block size (columns).
    #[arg(long, default_value_t = 128)]
    blocksize: usize,
    #[command(flatten)]
    eval: EvalArgs,
    /// Output directory: results.jsonl, results.csv, report.md, report.html, plots/.
    #[arg(long)]
    out: PathBuf,
    /// Also write each pruned model to OUT/models/<point>/.
    #[arg(long)]
    keep_models: bool,
    /// Print the plan (cached and pending points) and stop.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

/// Evaluation options shared by `sweep` and `compare`.
#[derive(ClapArgs, Clone)]
pub struct EvalArgs {
    /// Comma-separated task names, or `all` (see `secateurs eval --help`).
    #[arg(long, default_value = "all")]
    tasks: String,
    /// Items per task: N for every task, or TASK=N,... with an optional plain N for the rest
    /// (default: each task's own default).
    #[arg(long, value_name = "N | TASK=N,...")]
    limit: Option<String>,
    /// Seed of the item sampling.
    #[arg(long, default_value_t = 0)]
    eval_seed: u64,
    /// Few-shot demonstrations for the tasks that use them (default: each task's own).
    #[arg(long, value_name = "K")]
    shots: Option<usize>,
    /// Perplexity windows of the evaluation text per point (0: no perplexity).
    #[arg(long, default_value_t = 8)]
    ppl_windows: usize,
    /// Tokens per perplexity window.
    #[arg(long, default_value_t = 512)]
    ppl_seqlen: usize,
}

/// Arguments of `secateurs report`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs report sweep            # rewrite sweep/report.md, report.html and plots/
  secateurs report compare --json   # the finding and the 5% table as JSON

Reads DIR/results.jsonl (written by `secateurs sweep` or `secateurs compare`) and regenerates
the report without running anything. When the file holds runs with different evaluation or
calibration settings, the report uses those of the most recent record.")]
pub struct ReportArgs {
    /// Directory holding results.jsonl.
    dir: PathBuf,
    /// Print the report summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The task items, limits and perplexity settings of a run, built once.
pub(crate) struct EvalSetup {
    infos: Vec<&'static TaskInfo>,
    limits: BTreeMap<String, usize>,
    built: Vec<TaskData>,
    /// FNV-1a of the built items' prompts and references.
    items_hash: String,
    opts: EvalOptions,
    ppl_windows: usize,
    ppl_seqlen: usize,
    eval_text: Option<String>,
}

/// Parses `--limit`: `N`, or `TASK=N,...` with an optional plain `N` for the other tasks.
fn parse_limits(spec: Option<&str>, infos: &[&TaskInfo]) -> Result<BTreeMap<String, usize>> {
    let mut default: Option<usize> = None;
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    if let Some(spec) = spec {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let parse = |s: &str| -> Result<usize> {
                let n: usize = s
                    .trim()
                    .parse()
                    .with_context(|| format!("--limit: '{s}' is not a positive integer"))?;
                if n == 0 {
                    bail!("--limit: must be at least 1");
                }
                Ok(n)
            };
            match item.split_once('=') {
                Some((task, n)) => {
                    let task = task.trim();
                    if !infos.iter().any(|i| i.name == task) {
                        bail!(
                            "--limit: '{task}' is not one of the selected tasks ({})",
                            infos.iter().map(|i| i.name).collect::<Vec<_>>().join(", ")
                        );
                    }
                    per.insert(task.to_string(), parse(n)?);
                }
                None => default = Some(parse(item)?),
            }
        }
    }
    Ok(infos
        .iter()
        .map(|i| {
            let n = per
                .get(i.name)
                .copied()
                .or(default)
                .unwrap_or(i.default_limit);
            (i.name.to_string(), n)
        })
        .collect())
}

impl EvalSetup {
    /// Resolves the tasks, builds their items and reads the perplexity text.
    pub(crate) fn new(a: &EvalArgs) -> Result<Self> {
        let infos = tasks::resolve(&a.tasks)?;
        let limits = parse_limits(a.limit.as_deref(), &infos)?;
        if a.ppl_windows > 0 && a.ppl_seqlen < 2 {
            bail!("--ppl-seqlen must be at least 2");
        }
        let cache = common::cache()?;
        let opts = EvalOptions {
            seed: a.eval_seed,
            limit: None,
            shots: a.shots,
            show: 0,
        };
        let mut built = Vec::new();
        for info in &infos {
            let o = EvalOptions {
                limit: limits.get(info.name).copied(),
                ..opts
            };
            built.extend(build_tasks(&cache, &[*info], &o)?);
        }
        let mut text = String::new();
        for t in &built {
            text.push_str(&format!(
                "{}|{:?}|{:?}|{}\n",
                t.info.name, t.prefixes, t.items, t.shots
            ));
        }
        let items_hash = format!("{:016x}", fnv1a64(text.into_bytes()));
        let eval_text = if a.ppl_windows > 0 {
            Some(common::eval_text(None)?.0)
        } else {
            None
        };
        Ok(EvalSetup {
            infos,
            limits,
            built,
            items_hash,
            opts,
            ppl_windows: a.ppl_windows,
            ppl_seqlen: a.ppl_seqlen,
            eval_text,
        })
    }

    /// The evaluation part of a key (dense: no calibration).
    pub(crate) fn key(&self, model_hash: &str) -> PointKey {
        PointKey {
            model_hash: model_hash.to_string(),
            method: DENSE.into(),
            scope: "all".into(),
            pattern: "unstructured".into(),
            sparsity: 0.0,
            calibration: None,
            method_options: None,
            tasks: self.infos.iter().map(|i| i.name.to_string()).collect(),
            limits: self.limits.clone(),
            items_hash: self.items_hash.clone(),
            eval_seed: self.opts.seed,
            shots: self.opts.shots,
            ppl_windows: self.ppl_windows,
            ppl_seqlen: self.ppl_seqlen,
        }
    }

    /// `(task, items scored, items available)` of each built task.
    pub(crate) fn items(&self) -> Vec<(&'static str, usize, usize)> {
        self.built
            .iter()
            .map(|t| (t.info.name, t.scored_units(), t.available))
            .collect()
    }

    /// Tokenizes the perplexity text with a model's tokenizer.
    pub(crate) fn ppl_tokens(&self, tok: &Tokenizer) -> Result<Vec<u32>> {
        match &self.eval_text {
            Some(t) => Ok(tok.encode(t)?),
            None => Ok(Vec::new()),
        }
    }

    /// Perplexity and every task on `model`, with progress on `bar`.
    pub(crate) fn run(
        &self,
        model: &CausalLm,
        tok: &Tokenizer,
        ppl_tokens: &[u32],
        bar: &ProgressBar,
    ) -> Result<(Option<f64>, Vec<TaskScore>)> {
        let ppl = if self.ppl_windows > 0 {
            bar.set_message("perplexity");
            bar.set_position(0);
            let r = perplexity(
                model,
                ppl_tokens,
                PerplexityOptions {
                    seqlen: self.ppl_seqlen,
                    max_windows: Some(self.ppl_windows),
                },
                &mut |done, total| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                },
            )?;
            Some(r.perplexity)
        } else {
            None
        };
        let results = score_tasks(
            model,
            tok,
            &self.built,
            &self.opts,
            &mut |task, done, total| {
                bar.set_message(task.to_string());
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )?;
        let scores = results
            .into_iter()
            .map(|t| TaskScore {
                task: t.task,
                family: t.family.name().to_string(),
                metric: t.metric,
                accuracy: t.accuracy.value,
                lo: t.accuracy.lo,
                hi: t.accuracy.hi,
                n: t.accuracy.n,
                successes: t.accuracy.successes,
                chance: t.chance,
                seconds: t.seconds,
                cpu_seconds: t.cpu_seconds,
            })
            .collect();
        Ok((ppl, scores))
    }
}

/// `(all parameters, decoder linear parameters, zeros among them)`.
pub(crate) fn model_stats(model: &CausalLm) -> (u64, u64, u64) {
    let params: usize = model
        .arch
        .tensors()
        .iter()
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    let (mut linear, mut zeros) = (0usize, 0usize);
    for layer in model.arch.layers() {
        for (_, lin) in layer.linears() {
            linear += lin.out_features() * lin.in_features();
            zeros += lin.dense_weight().iter().filter(|v| **v == 0.0).count();
        }
    }
    (params as u64, linear as u64, zeros as u64)
}

/// The progress display: an outer bar over points and an inner bar for the phase.
pub(crate) struct Bars {
    mp: MultiProgress,
    pub(crate) outer: ProgressBar,
    pub(crate) inner: ProgressBar,
}

impl Bars {
    pub(crate) fn new(total: u64, quiet: bool) -> Self {
        let mp = if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        let outer = mp.add(ProgressBar::new(total));
        outer.set_style(
            ProgressStyle::with_template("point {pos}/{len} [{bar:30}] {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let inner = mp.add(ProgressBar::new(0));
        inner.set_style(
            ProgressStyle::with_template("{msg:>20} [{bar:30}] {pos}/{len} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        outer.enable_steady_tick(Duration::from_millis(500));
        Bars { mp, outer, inner }
    }

    /// Prints a line above the bars (always, also when they are hidden), unless `quiet`.
    pub(crate) fn line(&self, quiet: bool, s: &str) {
        if !quiet {
            self.mp.suspend(|| eprintln!("{s}"));
        }
    }

    pub(crate) fn finish(&self) {
        self.inner.finish_and_clear();
        self.outer.finish_and_clear();
    }
}

/// What one point measured.
struct Measured {
    prune_s: f64,
    eval_s: f64,
    prune_cpu: Option<f64>,
    eval_cpu: Option<f64>,
    ppl: Option<f64>,
    scores: Vec<TaskScore>,
    /// Zeros among the decoder linear weights.
    zeros: u64,
}

/// One point of the plan.
struct Point {
    key: PointKey,
    /// `None` for dense.
    prune: Option<(Method, RoleFilter, Pattern)>,
}

fn scope_filter(s: &str) -> Result<RoleFilter> {
    Ok(s.parse::<RoleFilter>()?)
}

fn slug(key: &PointKey) -> String {
    key.label().replace([' ', ':'], "_")
}

/// Rough relative pruning cost of a method (used only before it has been timed).
fn method_weight(m: &str) -> f64 {
    match m {
        "sparsegpt" => 1.45,
        "magnitude" => 0.1,
        _ => 1.0,
    }
}

/// Seconds left: per pending point, its method's measured mean prune time (or a scaled guess)
/// plus the mean evaluation time.
fn estimate(
    pending: &[&PointKey],
    prune: &BTreeMap<String, Vec<f64>>,
    eval: &[f64],
) -> Option<f64> {
    if eval.is_empty() {
        return None;
    }
    let e = eval.iter().sum::<f64>() / eval.len() as f64;
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    // A per-unit-weight prune time from whatever was measured.
    let unit = {
        let v: Vec<f64> = prune
            .iter()
            .map(|(m, t)| mean(t) / method_weight(m))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let mut total = 0.0;
    for k in pending {
        total += e;
        if k.is_dense() {
            continue;
        }
        let p = match prune.get(&k.method) {
            Some(t) => mean(t),
            None => unit? * method_weight(&k.method),
        };
        total += p;
    }
    Some(total)
}

fn fmt_minutes(s: f64) -> String {
    if s >= 90.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

/// Runs `secateurs sweep`.
pub fn run(a: Args) -> Result<()> {
    let t_start = Instant::now();
    let quiet = a.json;
    // Validate everything that needs no model first.
    let combos = parse_combos(&a.methods, &a.scopes, a.combos.as_deref())?;
    let sparsities: Vec<f64> = parse_sparsities(&a.sparsity)?
        .into_iter()
        .filter(|s| *s > 0.0)
        .collect();
    let patterns = a
        .patterns
        .as_deref()
        .map(parse_patterns)
        .transpose()?
        .unwrap_or_default();
    if sparsities.is_empty() && patterns.is_empty() {
        bail!("--sparsity: nothing to prune (only 0 given and no --patterns); the dense model is always evaluated");
    }
    if a.nsamples == 0 {
        bail!("--nsamples must be at least 1");
    }
    if a.damp.is_nan() || a.damp < 0.0 {
        bail!("--damp must be a non-negative number");
    }
    if a.blocksize == 0 {
        bail!("--blocksize must be at least 1");
    }
    let setup = EvalSetup::new(&a.eval)?;
    let path = common::resolve_model(a.model.as_deref())?;
    let model_hash = fingerprint_model(&path)?;
    let files = secateurs_model::model::ModelFiles::open(&path)?;
    let tok = files.tokenizer()?;

    // Calibration windows: their hash is part of the keys of calibrated points, and every
    // pruning run (magnitude included) starts from their embeddings.
    let (text, source) = common::calibration_text(a.calibration.as_deref())?;
    let source = source.unwrap_or_else(|| "default".to_string());
    let samples = sample_windows(&tok.encode(&text)?, a.nsamples, a.seqlen, a.seed)?;
    drop(text);
    let calib_key = CalibrationKey {
        nsamples: a.nsamples,
        seqlen: a.seqlen,
        seed: a.seed,
        source,
        tokens_hash: tokens_hash(&samples),
    };

    // The plan: dense first, then each combination's sparsities and patterns.
    let base_key = setup.key(&model_hash);
    let mut plan = vec![Point {
        key: base_key.clone(),
        prune: None,
    }];
    for (m, s) in &combos {
        let method: Method = m.parse()?;
        let role = scope_filter(s)?;
        let mut pats: Vec<Pattern> = sparsities
            .iter()
            .map(|&r| Pattern::Unstructured { ratio: r })
            .collect();
        pats.extend(patterns.iter().map(|&(n, m)| Pattern::NOfM { n, m }));
        for p in pats {
            p.validate()?;
            let (pattern, sparsity) = match p {
                Pattern::Unstructured { ratio } => ("unstructured".to_string(), ratio),
                Pattern::NOfM { n, m } => (format!("{n}:{m}"), n as f64 / m as f64),
            };
            let key = PointKey {
                method: m.clone(),
                scope: s.clone(),
                pattern,
                sparsity,
                calibration: method.needs_calibration().then(|| calib_key.clone()),
                method_options: (method == Method::SparseGpt)
                    .then(|| format!("damp={},blocksize={}", a.damp, a.blocksize)),
                ..base_key.clone()
            };
            plan.push(Point {
                key,
                prune: Some((method, role, p)),
            });
        }
    }
    let mut store = if a.dry_run {
        ResultsStore::peek(&a.out)?
    } else {
        ResultsStore::open(&a.out)?
    };
    let pending: Vec<usize> = (0..plan.len())
        .filter(|&i| store.finished(&plan[i].key).is_none())
        .collect();
    let cached = plan.len() - pending.len();

    if a.dry_run {
        let rows: Vec<serde_json::Value> = plan
            .iter()
            .map(|p| {
                json!({"point": p.key.label(), "id": p.key.id(),
                       "cached": store.finished(&p.key).is_some()})
            })
            .collect();
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"out": a.out, "model": path,
                    "model_hash": model_hash, "points": rows,
                    "tasks": setup.items().iter().map(|(t, n, av)|
                        json!({"task": t, "items": n, "available": av})).collect::<Vec<_>>()}))?
            );
        } else {
            println!(
                "{} points ({} cached, {} to run) for {} (hash {model_hash}) into {}",
                plan.len(),
                cached,
                pending.len(),
                path.display(),
                a.out.display()
            );
            println!(
                "tasks (items scored / available): {}",
                setup
                    .items()
                    .iter()
                    .map(|(t, n, av)| format!("{t} {n}/{av}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for p in &plan {
                let state = if store.finished(&p.key).is_some() {
                    "cached"
                } else {
                    "to run"
                };
                println!("  {:<28} {:<7} {}", p.key.label(), state, p.key.id());
            }
        }
        return Ok(());
    }

    let bars = Bars::new(plan.len() as u64, quiet);
    bars.outer.set_position(cached as u64);
    bars.line(
        quiet,
        &format!(
            "sweep: {} points ({} cached, {} to run), model {} (hash {model_hash}), out {}",
            plan.len(),
            cached,
            pending.len(),
            path.display(),
            a.out.display()
        ),
    );
    let mut report: Option<ReportOutput> = None;
    let mut ran = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    if !pending.is_empty() {
        // Shared work: load once, keep the dense weights, embed the calibration windows once,
        // tokenize the perplexity text once.
        bars.inner.set_message("loading");
        bars.inner.set_length(files.config.num_layers as u64);
        let t = Instant::now();
        let mut model = files.load(&mut |i| bars.inner.set_position(i as u64 + 1))?;
        let pristine: Vec<Vec<(LinearKind, Linear)>> = model
            .arch
            .layers()
            .iter()
            .map(|l| {
                l.linears()
                    .into_iter()
                    .map(|(k, lin)| (k, lin.clone()))
                    .collect()
            })
            .collect();
        let inputs = if plan.iter().any(|p| p.prune.is_some()) {
            capture_inputs(&model, &samples)?
        } else {
            Vec::new()
        };
        let ppl_tokens = setup.ppl_tokens(tok)?;
        bars.line(
            quiet,
            &format!(
                "shared setup: {:.1} s (load, {} calibration windows of {} tokens embedded once, {} task(s) built)",
                t.elapsed().as_secs_f64(),
                samples.len(),
                a.seqlen,
                setup.built.len()
            ),
        );
        let mut prune_times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut eval_times: Vec<f64> = Vec::new();
        let (params, linear_params, _) = model_stats(&model);
        for (done, &i) in pending.iter().enumerate() {
            let p = &plan[i];
            let label = p.key.label();
            bars.outer.set_message(label.clone());
            // Start from the dense weights.
            for (li, layer) in pristine.iter().enumerate() {
                for (kind, lin) in layer {
                    if let Some(l) = model.arch.layers_mut()[li].linear_mut(*kind) {
                        *l = lin.clone();
                    }
                }
            }
            let t = Instant::now();
            let cpu0 = process_cpu_seconds();
            let result: Result<Measured> = (|| {
                if let Some((method, role, pattern)) = &p.prune {
                    let settings = PruneSettings {
                        method: *method,
                        pattern: *pattern,
                        scope: Scope {
                            role: *role,
                            ..Scope::default()
                        },
                        sparsegpt: SparseGptOptions {
                            damp: a.damp,
                            blocksize: a.blocksize,
                            ..SparseGptOptions::default()
                        },
                        // Reconstruction errors are not part of a sweep's results.
                        error_samples: 0,
                    };
                    let layers = model.config().num_layers;
                    bars.inner.set_message(format!("prune {}", method.name()));
                    bars.inner.set_length(layers as u64);
                    bars.inner.set_position(0);
                    let mut phases = PhaseTimes::default();
                    let outcomes = prune_layers(
                        &mut model,
                        inputs.clone(),
                        0,
                        &settings,
                        &mut phases,
                        &mut NoHook,
                        &mut |pr| match pr {
                            Progress::LayerDone { layer, .. } => {
                                bars.inner.set_position(layer as u64 + 1)
                            }
                        },
                    )?;
                    for w in outcomes.iter().flat_map(|o| &o.warnings) {
                        bars.line(quiet, &format!("warning: {label}: {w}"));
                    }
                }
                let prune_s = t.elapsed().as_secs_f64();
                let cpu1 = process_cpu_seconds();
                let (_, _, zeros) = model_stats(&model);
                if a.keep_models && p.prune.is_some() {
                    keep_model(&model, tok, &a.out, &p.key)?;
                }
                let te = Instant::now();
                let cpu2 = process_cpu_seconds();
                let (ppl, scores) = setup.run(&model, tok, &ppl_tokens, &bars.inner)?;
                Ok(Measured {
                    prune_s,
                    eval_s: te.elapsed().as_secs_f64(),
                    prune_cpu: cpu1.zip(cpu0).map(|(b, a)| b - a),
                    eval_cpu: process_cpu_seconds().zip(cpu2).map(|(b, a)| b - a),
                    ppl,
                    scores,
                    zeros,
                })
            })();
            let Measured {
                prune_s,
                eval_s,
                prune_cpu,
                eval_cpu,
                ppl,
                scores,
                zeros,
            } = match result {
                Ok(r) => r,
                Err(e) => {
                    bars.line(quiet, &format!("error: {label}: {e:#}"));
                    failures.push(format!("{label}: {e:#}"));
                    bars.outer.inc(1);
                    continue;
                }
            };
            let record = PointRecord {
                id: p.key.id(),
                key: p.key.clone(),
                model: path.display().to_string(),
                params,
                linear_params,
                achieved_sparsity: zeros as f64 / linear_params.max(1) as f64,
                perplexity: ppl,
                tasks: scores,
                prune_seconds: prune_s,
                eval_seconds: eval_s,
                prune_cpu_seconds: prune_cpu,
                eval_cpu_seconds: eval_cpu,
                finished_unix: now_unix(),
                secateurs: format!("secateurs {}", env!("CARGO_PKG_VERSION")),
            };
            store.insert(record.clone())?;
            if p.prune.is_some() {
                prune_times
                    .entry(p.key.method.clone())
                    .or_default()
                    .push(prune_s);
            }
            eval_times.push(eval_s);
            bars.outer.inc(1);
            let accs: Vec<String> = record
                .tasks
                .iter()
                .map(|t| format!("{} {:.1}", t.task, 100.0 * t.accuracy))
                .collect();
            bars.line(
                quiet,
                &format!(
                    "[{}/{}] {label}: prune {prune_s:.1} s, eval {eval_s:.1} s (cpu {}); sparsity {:.1}%, ppl {}; {}",
                    cached + done + 1,
                    plan.len(),
                    prune_cpu
                        .zip(eval_cpu)
                        .map_or("-".into(), |(a, b)| format!("{a:.0} + {b:.0} s")),
                    100.0 * record.achieved_sparsity,
                    ppl.map_or("-".into(), |v| format!("{v:.2}")),
                    accs.join(", ")
                ),
            );
            let rest: Vec<&PointKey> = pending[done + 1..].iter().map(|&j| &plan[j].key).collect();
            if let Some(left) = estimate(&rest, &prune_times, &eval_times) {
                bars.outer
                    .set_message(format!("~{} left", fmt_minutes(left)));
                if !rest.is_empty() && (done < 2 || done % 5 == 4) {
                    let elapsed = t_start.elapsed().as_secs_f64();
                    bars.line(
                        quiet,
                        &format!(
                            "estimate: {} left for {} point(s), total ~{} (eval ~{:.0} s/point{})",
                            fmt_minutes(left),
                            rest.len(),
                            fmt_minutes(elapsed + left),
                            eval_times.iter().sum::<f64>() / eval_times.len() as f64,
                            prune_times
                                .iter()
                                .map(|(m, v)| format!(
                                    ", {m} prune ~{:.0} s",
                                    v.iter().sum::<f64>() / v.len() as f64
                                ))
                                .collect::<String>()
                        ),
                    );
                }
            }
            ran.push(json!({"point": label, "prune_s": prune_s, "eval_s": eval_s,
                            "perplexity": ppl, "achieved_sparsity": record.achieved_sparsity}));
            if store.records().iter().any(|r| r.key.is_dense()) {
                match write_report(&a.out, store.records()) {
                    Ok(r) => report = Some(r),
                    Err(e) => bars.line(quiet, &format!("warning: report not written: {e}")),
                }
            }
        }
    }
    bars.finish();
    if report.is_none() {
        report = Some(write_report(&a.out, store.records())?);
    }
    let report = report.context("no report written")?;
    let seconds = t_start.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "out": a.out, "model": path, "model_hash": model_hash,
                "points": plan.len(), "cached": cached, "ran": ran, "failed": failures,
                "seconds": seconds, "report": report,
            }))?
        );
    } else {
        println!(
            "sweep done in {}: {} points ({} cached, {} run, {} failed)",
            fmt_minutes(seconds),
            plan.len(),
            cached,
            ran.len(),
            failures.len()
        );
        println!("  {}", report.finding.replace("**", ""));
        println!(
            "  wrote {}, {}, {} plots, {}",
            report.markdown.display(),
            report.html.display(),
            report.plots.len(),
            a.out.join(secateurs_report::RESULTS_JSONL).display()
        );
    }
    if !failures.is_empty() {
        bail!(
            "{} point(s) failed (the others are recorded; rerun to retry): {}",
            failures.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

/// User plus system CPU time of this process, from `/proc/self/stat` (Linux; `None`
/// elsewhere). Compared with wall time it shows how much of the machine a point had.
pub(crate) fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name; in clock
    // ticks of 1/100 s on every Linux platform Rust supports.
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Writes a pruned model to `OUT/models/<point>/` (temporary directory, then rename).
fn keep_model(model: &CausalLm, tok: &Tokenizer, out: &Path, key: &PointKey) -> Result<()> {
    let dir = out.join("models").join(slug(key));
    let tmp = out.join("models").join(format!(".{}.tmp", slug(key)));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("{}: cannot remove stale temp dir", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert("secateurs".to_string(), format!("sweep {}", key.label()));
    secateurs_model::export::save_hf_dir(model, Some(tok), &tmp, &meta)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("{}: cannot replace", dir.display()))?;
    }
    std::fs::rename(&tmp, &dir)
        .with_context(|| format!("{}: cannot rename into place", dir.display()))?;
    Ok(())
}

/// Runs `secateurs report`.
pub fn run_report(a: ReportArgs) -> Result<()> {
    let store = ResultsStore::load_existing(&a.dir)?;
    let r = write_report(&a.dir, store.records())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{}", r.finding.replace("**", ""));
        println!(
            "wrote {}, {} and {} plots ({} records used, {} ignored)",
            r.markdown.display(),
            r.html.display(),
            r.plots.len(),
            r.records_used,
            r.records_ignored
        );
    }
    Ok(())
}
