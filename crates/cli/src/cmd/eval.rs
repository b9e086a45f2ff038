//! `secateurs eval`: the capability task suite (fact recall, open-book QA, counterfactual
//! context, in-context learning, multiple choice) with 95 % intervals and throughput.

use std::time::Instant;

use anyhow::Result;
use clap::Args as ClapArgs;
use secateurs_eval::tasks;
use secateurs_eval::{build_tasks, score_tasks, EvalOptions, EvalReport, TaskResult};

use crate::common;

/// Arguments of `secateurs eval`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs eval                                   # every task on the default model
  secateurs eval ./pruned --tasks facts_countries,openbook_squad --limit 100
  secateurs eval --tasks icl_linear,icl_linear_shuffled --show 2
  secateurs eval --json > dense.json

Tasks (docs/tasks.md describes each: source, licence, prompt format, scoring):
  fact recall:      facts_countries, facts_wikidata, facts_nq
  open book:        openbook_squad, openbook_countries
  counterfactual:   counterfactual
  in-context:       icl_linear, icl_linear_shuffled
  multiple choice:  mc_science, mc_social_iqa, mc_wikihow, mc_cause_effect, mc_capitals

Items are drawn from the pinned data in the cache (run `secateurs fetch` first) and are
identical for the same --seed. Accuracy comes with a 95% Wilson interval (widened by the design
effect where several items share one prompt). Generation answers are normalized SQuAD-style
(lowercase, no punctuation or articles, collapsed whitespace, diacritics folded).")]
pub struct Args {
    /// Model directory, .gguf file or hub repo id (default: the fetched default model).
    model: Option<String>,
    /// Comma-separated task names, or `all`.
    #[arg(long, default_value = "all")]
    tasks: String,
    /// Items per task (default: each task's own default, chosen for about ±5 points at dense
    /// accuracy on the default model).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Seed of the item sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Few-shot demonstrations for the tasks that use them (default: each task's own).
    #[arg(long, value_name = "K")]
    shots: Option<usize>,
    /// Print the exact prompts and outputs of the first K items of each task.
    #[arg(long, value_name = "K", default_value_t = 0)]
    show: usize,
    #[command(flatten)]
    storage: common::StorageArgs,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    let infos = tasks::resolve(&a.tasks)?;
    let opts = EvalOptions {
        seed: a.seed,
        limit: a.limit,
        shots: a.shots,
        show: a.show,
    };
    let path = common::resolve_model(a.model.as_deref())?;
    let cache = common::cache()?;
    // Build the items first: missing data is reported before the model is loaded.
    let built = build_tasks(&cache, &infos, &opts)?;
    let (files, mut model) = common::load_model(&path, a.json)?;
    if let Some(msg) = a.storage.apply(&mut model)? {
        if !a.json {
            eprintln!("{msg}");
        }
    }
    let tok = files.tokenizer()?;
    let pb = common::bar(0, "", a.json);
    let results = score_tasks(&model, tok, &built, &opts, &mut |task, done, total| {
        pb.set_message(task.to_string());
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })?;
    pb.finish_and_clear();
    let report = EvalReport {
        tasks: results,
        seed: a.seed,
        seconds: t0.elapsed().as_secs_f64(),
        threads: rayon::current_num_threads(),
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": path,
                "report": report,
            }))?
        );
        return Ok(());
    }
    println!("model:   {}", path.display());
    println!(
        "seed:    {}   threads: {}   tasks: {}",
        a.seed,
        report.threads,
        report.tasks.len()
    );
    println!();
    print_table(&report.tasks);
    let scored: f64 = report.tasks.iter().map(|t| t.seconds).sum();
    println!();
    println!(
        "total:   {:.1} s ({:.1} s scoring, {:.1} s loading and building items)",
        report.seconds,
        scored,
        report.seconds - scored
    );
    if a.show > 0 {
        for t in &report.tasks {
            print_samples(t);
        }
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn print_table(results: &[TaskResult]) {
    println!(
        "{:<20} {:<15} {:<11} {:>6} {:>15} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8}",
        "task",
        "family",
        "metric",
        "acc%",
        "95% CI",
        "n",
        "chance%",
        "s",
        "cpu s",
        "items/s",
        "tok/s"
    );
    for t in results {
        let a = &t.accuracy;
        println!(
            "{:<20} {:<15} {:<11} {:>6} {:>15} {:>6} {:>7} {:>7.1} {:>7} {:>8.1} {:>8.0}",
            t.task,
            t.family.name(),
            t.metric,
            pct(a.value),
            format!("[{}, {}]", pct(a.lo), pct(a.hi)),
            t.items,
            t.chance.map_or("-".to_string(), pct),
            t.seconds,
            t.cpu_seconds.map_or("-".to_string(), |c| format!("{c:.1}")),
            t.items_per_second,
            t.tokens_per_second
        );
    }
    println!();
    println!("other metrics and breakdowns (primary metric by group):");
    for t in results {
        let others: Vec<String> = t
            .metrics
            .iter()
            .filter(|(k, _)| **k != t.metric)
            .map(|(k, v)| format!("{k} {}", pct(v.value)))
            .collect();
        let groups: Vec<String> = t
            .breakdown
            .iter()
            .map(|(k, v)| format!("{k} {} (n={})", pct(v.value), v.n))
            .collect();
        let mut line = format!("  {:<20}", t.task);
        if !others.is_empty() {
            line.push_str(&format!(" {}", others.join(", ")));
        }
        if t.breakdown.len() > 1 {
            line.push_str(&format!("  | {}", groups.join(", ")));
        }
        println!("{line}");
    }
}

fn print_samples(t: &TaskResult) {
    for (i, s) in t.samples.iter().enumerate() {
        println!();
        println!(
            "=== {} sample {} ({}, {}) ===",
            t.task,
            i + 1,
            s.id,
            if s.correct { "correct" } else { "wrong" }
        );
        println!("{}", s.prompt);
        println!("--- output:   {:?}", s.output);
        println!("--- expected: {:?}", s.expected);
        for (c, l) in &s.scores {
            println!("    {l:>10.3}  {c}");
        }
    }
}
