//! `secateurs eval` reports bad requests in one line, with exit code 1 and no panic: an unknown
//! task (listing the valid ones), task data that is not fetched (saying to run `secateurs
//! fetch`), and a label format the tokenizer cannot render. The tiny fixture model stands in for
//! a real one; the synthetic task needs no data.

use std::path::PathBuf;
use std::process::{Command, Output};

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/tiny-llama")
}

fn run(args: &[&str], cache: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_secateurs"))
        .args(args)
        .env("SECATEURS_CACHE", cache)
        .output()
        .unwrap()
}

fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

#[test]
fn unknown_task_lists_the_valid_names() {
    let cache = tempfile::tempdir().unwrap();
    let tiny = tiny();
    let out = run(
        &[
            "eval",
            tiny.to_str().unwrap(),
            "--tasks",
            "facts_countries,bogus",
        ],
        cache.path(),
    );
    let e = one_line_error(&out);
    assert!(e.contains("unknown task 'bogus'"), "{e}");
    assert!(
        e.contains("icl_linear_shuffled") && e.contains("all"),
        "{e}"
    );
}

#[test]
fn missing_task_data_says_to_fetch() {
    let cache = tempfile::tempdir().unwrap();
    let tiny = tiny();
    let out = run(
        &["eval", tiny.to_str().unwrap(), "--tasks", "mc_social_iqa"],
        cache.path(),
    );
    let e = one_line_error(&out);
    assert!(e.contains("secateurs fetch"), "{e}");
    assert!(e.contains("social_iqa"), "{e}");
}

#[test]
fn labels_the_tokenizer_cannot_render_are_a_clear_error() {
    // The fixture's word-level tokenizer maps " A" and " B" to the same unknown token.
    let cache = tempfile::tempdir().unwrap();
    let tiny = tiny();
    let out = run(
        &[
            "eval",
            tiny.to_str().unwrap(),
            "--tasks",
            "icl_linear",
            "--limit",
            "5",
        ],
        cache.path(),
    );
    let e = one_line_error(&out);
    assert!(e.contains("icl_linear"), "{e}");
}
