//! Tests of the report crate on hand-made results: the 5 % threshold, flagged tasks, the
//! verdict, resume keys, JSONL/CSV round trips, grid parsing, and the written report and plots.

use std::collections::BTreeMap;
use std::path::Path;

use secateurs_report::analysis::{
    curves, select_sweep, threshold, verdict, Baseline, DenseStatus, Threshold, Verdict,
};
use secateurs_report::grid::{parse_combos, parse_patterns, parse_sparsities};
use secateurs_report::store::{csv_rows, read_csv, read_jsonl, write_csv};
use secateurs_report::{
    write_report, CalibrationKey, PointKey, PointRecord, ReportKind, ResultsStore, TaskScore,
    RESULTS_CSV, RESULTS_JSONL,
};

const TASKS: [(&str, &str, Option<f64>); 4] = [
    ("facts_countries", "fact_recall", None),
    ("openbook_countries", "open_book", None),
    ("icl_linear", "in_context", Some(0.5)),
    ("icl_linear_shuffled", "in_context", Some(0.5)),
];

fn key(method: &str, scope: &str, sparsity: f64, nsamples: usize, limit: usize) -> PointKey {
    let dense = method == "dense";
    PointKey {
        model_hash: "0123456789abcdef".into(),
        method: method.into(),
        scope: scope.into(),
        pattern: "unstructured".into(),
        sparsity,
        calibration: (!dense && method != "magnitude").then(|| CalibrationKey {
            nsamples,
            seqlen: 512,
            seed: 0,
            source: "default".into(),
            tokens_hash: "feedface".into(),
        }),
        method_options: None,
        tasks: TASKS.iter().map(|t| t.0.to_string()).collect(),
        limits: TASKS
            .iter()
            .map(|t| (t.0.to_string(), limit))
            .collect::<BTreeMap<_, _>>(),
        items_hash: "00112233".into(),
        eval_seed: 0,
        shots: None,
        ppl_windows: 4,
        ppl_seqlen: 512,
    }
}

fn score(task: &str, family: &str, chance: Option<f64>, acc: f64, n: usize) -> TaskScore {
    let hw = 1.96 * (acc * (1.0 - acc) / n as f64).sqrt();
    TaskScore {
        task: task.into(),
        family: family.into(),
        metric: if chance.is_some() {
            "acc"
        } else {
            "exact_match"
        }
        .into(),
        accuracy: acc,
        lo: (acc - hw).max(0.0),
        hi: (acc + hw).min(1.0),
        n,
        successes: (acc * n as f64).round() as usize,
        chance,
        seconds: 1.0,
        cpu_seconds: Some(1.9),
    }
}

/// A record whose task accuracies come from `acc(task, sparsity)`.
fn record(k: PointKey, acc: &dyn Fn(&str, f64) -> f64, t: u64) -> PointRecord {
    let s = k.sparsity;
    let tasks = TASKS
        .iter()
        .map(|(name, fam, ch)| score(name, fam, *ch, acc(name, s), 200))
        .collect();
    PointRecord {
        id: k.id(),
        model: "/cache/models/tiny.gguf".into(),
        params: 134_515_008,
        linear_params: 106_168_320,
        achieved_sparsity: s * 0.98,
        perplexity: Some(20.0 * (1.0 + 8.0 * s * s * s)),
        tasks,
        prune_seconds: if k.is_dense() { 0.0 } else { 30.0 },
        eval_seconds: 90.0,
        prune_cpu_seconds: None,
        eval_cpu_seconds: Some(170.0),
        finished_unix: 1_700_000_000 + t,
        secateurs: "0.1.0".into(),
        key: k,
    }
}

/// Fact recall falls after 20 %, open book after 50 %, ICL after 70 %; the shuffled control sits
/// at chance.
fn seedlike(task: &str, s: f64) -> f64 {
    let knee = |dense: f64, k: f64, floor: f64| {
        if s <= k + 1e-9 {
            dense
        } else {
            (dense - (s - k) * 2.0 * dense).max(floor)
        }
    };
    match task {
        "facts_countries" => knee(0.6, 0.2, 0.0),
        "openbook_countries" => knee(0.8, 0.5, 0.0),
        "icl_linear" => knee(0.9, 0.7, 0.5),
        _ => 0.5,
    }
}

/// The opposite: fact recall survives longest.
fn reversed(task: &str, s: f64) -> f64 {
    let knee = |dense: f64, k: f64, floor: f64| {
        if s <= k + 1e-9 {
            dense
        } else {
            (dense - (s - k) * 2.0 * dense).max(floor)
        }
    };
    match task {
        "facts_countries" => knee(0.6, 0.7, 0.0),
        "openbook_countries" => knee(0.8, 0.3, 0.0),
        "icl_linear" => knee(0.9, 0.2, 0.5),
        _ => 0.5,
    }
}

fn sweep(acc: &dyn Fn(&str, f64) -> f64, methods: &[(&str, &str)]) -> Vec<PointRecord> {
    let mut out = vec![record(key("dense", "all", 0.0, 32, 200), acc, 0)];
    let mut t = 1;
    for (m, sc) in methods {
        for i in 1..=9 {
            let s = i as f64 / 10.0;
            out.push(record(key(m, sc, s, 32, 200), acc, t));
            t += 1;
        }
    }
    out
}

#[test]
fn threshold_is_the_last_point_before_the_first_drop() {
    // dense 0.60: 5% drop allows down to 0.57.
    let pts = [
        (0.1, 0.60),
        (0.2, 0.58),
        (0.3, 0.57),
        (0.4, 0.50),
        (0.5, 0.59),
    ];
    assert_eq!(threshold(0.60, &pts, 0.05), Threshold::At(0.3));
    // Order of the points does not matter.
    let mut rev = pts;
    rev.reverse();
    assert_eq!(threshold(0.60, &rev, 0.05), Threshold::At(0.3));
}

#[test]
fn threshold_censored_below_flagged_and_empty() {
    assert_eq!(
        threshold(0.5, &[(0.1, 0.5), (0.9, 0.49)], 0.05),
        Threshold::AtLeast(0.9)
    );
    assert_eq!(
        threshold(0.5, &[(0.1, 0.40), (0.2, 0.5)], 0.05),
        Threshold::Below(0.1)
    );
    assert_eq!(threshold(0.0, &[(0.1, 0.0)], 0.05), Threshold::Flagged);
    assert_eq!(threshold(0.5, &[], 0.05), Threshold::NoData);
    // Exactly 5% is allowed.
    assert_eq!(
        threshold(0.8, &[(0.1, 0.76), (0.2, 0.7)], 0.05),
        Threshold::At(0.1)
    );
    assert_eq!(Threshold::Below(0.1).value(), Some(0.0));
    assert_eq!(Threshold::AtLeast(0.9).cell(), "≥ 0.9");
    assert_eq!(Threshold::Below(0.1).cell(), "< 0.1");
}

#[test]
fn tasks_at_chance_or_zero_at_dense_are_flagged() {
    assert_eq!(
        DenseStatus::of(&score("c", "in_context", Some(0.5), 0.52, 100)),
        DenseStatus::AtChance
    );
    assert_eq!(
        DenseStatus::of(&score("c", "in_context", Some(0.5), 0.9, 300)),
        DenseStatus::Ok
    );
    assert_eq!(
        DenseStatus::of(&score("g", "fact_recall", None, 0.02, 200)),
        DenseStatus::Floor
    );
    let recs = sweep(&seedlike, &[("wanda", "all")]);
    let sel = select_sweep(&recs);
    let base = Baseline::new(sel.dense.unwrap());
    let c = &curves(&sel)[0];
    assert_eq!(
        base.task_threshold(c, "icl_linear_shuffled"),
        Threshold::Flagged
    );
    // The control is left out of the in-context family.
    assert_eq!(base.usable("in_context").len(), 1);
}

#[test]
fn family_thresholds_and_verdict_follow_the_data() {
    let recs = sweep(&seedlike, &[("sparsegpt", "all"), ("wanda", "all")]);
    let sel = select_sweep(&recs);
    assert_eq!(sel.points.len(), 18);
    let base = Baseline::new(sel.dense.unwrap());
    let cs = curves(&sel);
    assert_eq!(cs.len(), 2);
    assert_eq!(
        base.family_threshold(&cs[0], "fact_recall"),
        Threshold::At(0.2)
    );
    assert_eq!(
        base.family_threshold(&cs[0], "open_book"),
        Threshold::At(0.5)
    );
    assert_eq!(
        base.family_threshold(&cs[0], "in_context"),
        Threshold::At(0.7)
    );
    assert_eq!(verdict(&base, &cs[0]).verdict, Verdict::Holds);

    let recs = sweep(&reversed, &[("sparsegpt", "all")]);
    let sel = select_sweep(&recs);
    let base = Baseline::new(sel.dense.unwrap());
    let cs = curves(&sel);
    let v = verdict(&base, &cs[0]);
    assert_eq!(v.fact, Threshold::At(0.7));
    assert_eq!(v.verdict, Verdict::DoesNotHold);
}

#[test]
fn a_finished_point_is_skipped_and_a_changed_setting_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ResultsStore::open(dir.path()).unwrap();
    let k = key("wanda", "all", 0.5, 32, 200);
    assert!(store.finished(&k).is_none());
    store.insert(record(k.clone(), &seedlike, 1)).unwrap();
    // Reopened from disk, the same point is finished.
    let store = ResultsStore::open(dir.path()).unwrap();
    assert!(store.finished(&k).is_some());
    // Any changed setting is a different point.
    let mut changed = vec![
        key("wanda", "all", 0.5, 16, 200),
        key("wanda", "all", 0.5, 32, 100),
        key("wanda", "mlp", 0.5, 32, 200),
        key("sparsegpt", "all", 0.5, 32, 200),
        key("wanda", "all", 0.6, 32, 200),
    ];
    let mut k2 = k.clone();
    k2.model_hash = "ffffffffffffffff".into();
    changed.push(k2);
    let mut k3 = k.clone();
    k3.tasks.pop();
    changed.push(k3);
    let mut k4 = k.clone();
    k4.eval_seed = 1;
    changed.push(k4);
    let mut k5 = k.clone();
    k5.calibration.as_mut().unwrap().seed = 7;
    changed.push(k5);
    let mut k6 = k.clone();
    k6.items_hash = "44556677".into();
    changed.push(k6);
    for c in &changed {
        assert_ne!(c.id(), k.id(), "{c:?}");
        assert!(store.finished(c).is_none(), "{c:?}");
    }
}

#[test]
fn inserting_the_same_key_replaces_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ResultsStore::open(dir.path()).unwrap();
    let k = key("wanda", "all", 0.5, 32, 200);
    store.insert(record(k.clone(), &seedlike, 1)).unwrap();
    store.insert(record(k.clone(), &seedlike, 2)).unwrap();
    assert_eq!(store.records().len(), 1);
    assert_eq!(
        read_jsonl(&dir.path().join(RESULTS_JSONL)).unwrap().len(),
        1
    );
}

#[test]
fn jsonl_and_csv_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let recs = sweep(&seedlike, &[("wanda", "all")]);
    let mut store = ResultsStore::open(dir.path()).unwrap();
    for r in &recs {
        store.insert(r.clone()).unwrap();
    }
    let back = read_jsonl(&dir.path().join(RESULTS_JSONL)).unwrap();
    assert_eq!(back, recs);
    let csv_path = dir.path().join(RESULTS_CSV);
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let rows = read_csv(&csv_path, &text).unwrap();
    assert_eq!(rows, csv_rows(&recs));
    assert_eq!(rows.len(), recs.len() * TASKS.len());
    // Quoting: commas, quotes and newlines survive.
    let mut odd = rows[0].clone();
    odd.model = "a, \"quoted\"\nname".into();
    let t = write_csv(std::slice::from_ref(&odd));
    assert_eq!(read_csv(Path::new("x.csv"), &t).unwrap(), vec![odd]);
}

#[test]
fn malformed_files_name_file_and_line_and_old_records_load() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(RESULTS_JSONL);
    let good =
        serde_json::to_string(&record(key("dense", "all", 0.0, 32, 200), &seedlike, 0)).unwrap();
    std::fs::write(&p, format!("{good}\n{{not json\n")).unwrap();
    let e = read_jsonl(&p).unwrap_err().to_string();
    assert!(e.contains("results.jsonl:2"), "{e}");
    // A record written before `items_hash` existed still loads, with its id recomputed, and
    // matches no current point.
    let current = key("dense", "all", 0.0, 32, 200);
    let mut old = serde_json::to_value(record(current.clone(), &seedlike, 0)).unwrap();
    old["key"].as_object_mut().unwrap().remove("items_hash");
    old["id"] = "0000000000000000".into();
    std::fs::write(&p, format!("{old}\n")).unwrap();
    let recs = read_jsonl(&p).unwrap();
    assert_eq!(recs[0].id, recs[0].key.id());
    assert_eq!(recs[0].key.items_hash, "");
    let store = ResultsStore::open(dir.path()).unwrap();
    assert!(store.finished(&current).is_none());
    let e = read_csv(Path::new("r.csv"), "a,b\n1,2\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("r.csv:1:"), "{e}");
}

#[test]
fn grids_parse() {
    let g = parse_sparsities("0:0.9:0.1").unwrap();
    assert_eq!(g.len(), 10);
    assert_eq!(g[3], 0.3);
    assert_eq!(g[9], 0.9);
    assert_eq!(parse_sparsities("0.7, 0.5,0.5").unwrap(), vec![0.5, 0.7]);
    assert_eq!(
        parse_sparsities("0.1:0.3:0.1,0.8").unwrap(),
        vec![0.1, 0.2, 0.3, 0.8]
    );
    for bad in [
        "",
        "x",
        "0.1:0.5",
        "0.5:0.1:0.1",
        "0:0.9:0",
        "1.0",
        "-0.1",
        "0:1:0.5",
    ] {
        let e = parse_sparsities(bad).unwrap_err().to_string();
        assert!(e.starts_with("--sparsity:"), "{bad}: {e}");
    }
    assert_eq!(
        parse_patterns("2:4, 4:8,2:4").unwrap(),
        vec![(2, 4), (4, 8)]
    );
    assert!(parse_patterns("4:4").is_err());
    assert!(parse_patterns("2-4").is_err());
    let c = parse_combos("wanda,sparsegpt", "all,mlp", None).unwrap();
    assert_eq!(c.len(), 4);
    let c = parse_combos("x", "y", Some("wanda:all,sparsegpt:all,wanda:attn")).unwrap();
    assert_eq!(c[2], ("wanda".to_string(), "attention".to_string()));
    assert!(parse_combos("wanda", "all", Some("wanda")).is_err());
    assert!(parse_combos("obs", "all", None).is_err());
}

fn assert_nonempty(p: &Path) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(m.len() > 100, "{} is only {} bytes", p.display(), m.len());
}

#[test]
fn sweep_report_writes_plots_markdown_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let recs = sweep(
        &seedlike,
        &[
            ("sparsegpt", "all"),
            ("wanda", "all"),
            ("wanda", "attention"),
            ("wanda", "mlp"),
        ],
    );
    let mut store = ResultsStore::open(dir.path()).unwrap();
    for r in &recs {
        store.insert(r.clone()).unwrap();
    }
    let out = write_report(dir.path(), store.records()).unwrap();
    assert_eq!(out.kind, ReportKind::Sweep);
    for stem in [
        "families_sparsegpt_all",
        "families_wanda_all",
        "families_wanda_attention",
        "families_wanda_mlp",
        "tasks_wanda_all",
        "perplexity",
    ] {
        for ext in ["png", "svg"] {
            let p = dir.path().join("plots").join(format!("{stem}.{ext}"));
            assert_nonempty(&p);
        }
        let png = std::fs::read(dir.path().join("plots").join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg =
            std::fs::read_to_string(dir.path().join("plots").join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("<text"),
            "{stem}.svg has no text"
        );
    }
    let md = std::fs::read_to_string(&out.markdown).unwrap();
    assert!(md.starts_with("# Pruning sweep: tiny.gguf"));
    assert!(md.contains("**Finding.**"));
    assert!(md.contains("**holds**"), "{}", out.finding);
    assert!(
        out.finding.contains("up to 20% sparsity"),
        "{}",
        out.finding
    );
    assert!(md.contains("Largest sparsity whose relative drop is ≤ 5%"));
    assert!(md.contains("flagged"));
    assert!(md.contains("![SparseGPT, all linear layers"));
    let html = std::fs::read_to_string(&out.html).unwrap();
    assert!(html.contains("data:image/png;base64,iVBORw0KGgo"));
    assert!(!html.contains("src=\"plots/"));
    assert!(out
        .thresholds
        .iter()
        .any(|c| c.row == "family:fact_recall" && c.text == "0.2"));
    keep_for_inspection(dir.path());
}

/// With `SECATEURS_REPORT_KEEP=DIR`, copies the written report there (to look at the plots).
fn keep_for_inspection(dir: &Path) {
    let Ok(keep) = std::env::var("SECATEURS_REPORT_KEEP") else {
        return;
    };
    let keep = Path::new(&keep);
    std::fs::create_dir_all(keep.join("plots")).unwrap();
    for sub in ["", "plots"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, keep.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
}

#[test]
fn the_finding_is_computed_not_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let recs = sweep(&reversed, &[("sparsegpt", "all")]);
    let out = write_report(dir.path(), &recs).unwrap();
    assert!(out.finding.contains("**does not hold**"), "{}", out.finding);
    assert!(
        out.finding.contains("up to 70% sparsity"),
        "{}",
        out.finding
    );
}

#[test]
fn the_latest_settings_win_and_older_records_are_counted_as_ignored() {
    let mut recs = sweep(&seedlike, &[("wanda", "all")]);
    // An older run with another limit: a different evaluation signature.
    let old = record(key("wanda", "all", 0.5, 32, 50), &reversed, 0);
    recs.insert(0, old);
    let sel = select_sweep(&recs);
    assert_eq!(sel.points.len(), 9);
    assert_eq!(sel.ignored, 1);
}

#[test]
fn compare_report_plots_accuracy_against_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let mut recs = Vec::new();
    for (i, (params, scale_fact, scale_ctx)) in [
        (1_000_000_000u64, 1.0, 1.0),
        (300_000_000, 0.5, 0.95),
        (100_000_000, 0.2, 0.9),
    ]
    .iter()
    .enumerate()
    {
        let mut k = key("dense", "all", 0.0, 0, 100);
        k.model_hash = format!("{i:016x}");
        let acc = move |t: &str, _s: f64| match t {
            "facts_countries" => 0.6 * scale_fact,
            "openbook_countries" => 0.8 * scale_ctx,
            "icl_linear" => 0.9 * scale_ctx,
            _ => 0.5,
        };
        let mut r = record(k, &acc, i as u64);
        r.params = *params;
        r.model = format!("/models/m{i}");
        recs.push(r);
    }
    let out = write_report(dir.path(), &recs).unwrap();
    assert_eq!(out.kind, ReportKind::Compare);
    assert_eq!(out.records_used, 3);
    for stem in ["compare_accuracy", "compare_relative"] {
        for ext in ["png", "svg"] {
            assert_nonempty(&dir.path().join("plots").join(format!("{stem}.{ext}")));
        }
    }
    assert!(out.finding.contains("**holds**"), "{}", out.finding);
    assert!(out.finding.contains("keeps 20%"), "{}", out.finding);
}

#[test]
fn a_grid_that_cannot_separate_the_families_is_undecided() {
    // Everything already drops at the lowest sparsity evaluated.
    let collapse = |t: &str, s: f64| {
        if s == 0.0 {
            seedlike(t, 0.0)
        } else if t == "icl_linear_shuffled" {
            0.5
        } else {
            0.1 * seedlike(t, 0.0)
        }
    };
    let recs = sweep(&collapse, &[("wanda", "all")]);
    let sel = select_sweep(&recs);
    let base = Baseline::new(sel.dense.unwrap());
    let v = verdict(&base, &curves(&sel)[0]);
    assert_eq!(v.fact, Threshold::Below(0.1));
    assert_eq!(v.verdict, Verdict::Undecided);
    let dir = tempfile::tempdir().unwrap();
    let out = write_report(dir.path(), &recs).unwrap();
    assert!(
        out.finding.contains("**cannot be decided**"),
        "{}",
        out.finding
    );
    assert!(
        out.finding.contains("already drops more than 5% at 10%"),
        "{}",
        out.finding
    );
}

#[test]
fn html_helpers_escape_and_encode() {
    use secateurs_report::doc::{base64, inline_html};
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    assert_eq!(base64(b"M"), "TQ==");
    assert_eq!(base64(b""), "");
    assert_eq!(
        inline_html("**a<b** and `x&y` <i>"),
        "<strong>a&lt;b</strong> and <code>x&amp;y</code> &lt;i&gt;"
    );
    assert_eq!(inline_html("a ** b"), "a ** b");
}

#[test]
fn a_partial_verdict_names_the_families() {
    // Fact recall and open-book QA both drop at the lowest sparsity; ICL survives to 70%.
    let acc = |t: &str, s: f64| {
        if s == 0.0 || t == "icl_linear" || t == "icl_linear_shuffled" {
            seedlike(t, s)
        } else {
            0.5 * seedlike(t, 0.0)
        }
    };
    let recs = sweep(&acc, &[("wanda", "all")]);
    let sel = select_sweep(&recs);
    let base = Baseline::new(sel.dense.unwrap());
    let v = verdict(&base, &curves(&sel)[0]);
    assert_eq!(v.verdict, Verdict::Partly);
    let dir = tempfile::tempdir().unwrap();
    let out = write_report(dir.path(), &recs).unwrap();
    assert!(
        out.finding
            .contains("**holds only partly** (holds partly for 1 of 1"),
        "{}",
        out.finding
    );
    assert!(
        out.finding.contains(
            "degrades before in-context linear classifier, and the grid cannot separate it from open-book QA"
        ),
        "{}",
        out.finding
    );
}
