//! Writes the report of a sweep ([`write_sweep_report`]) or of a dense comparison
//! ([`write_compare_report`]) into its directory: `report.md`, `report.html` (self-contained,
//! plots embedded) and `plots/*.png|svg`. [`write_report`] picks the kind from the records.
//!
//! The opening paragraph states the finding with its numbers. It is composed from the data by
//! [`crate::analysis::verdict`] (fact recall's 5 % threshold against those of the in-context
//! families), never written in advance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::analysis::{
    self, curves, family_label, method_label, pct0, scope_label, select_sweep, Baseline, Curve,
    DenseStatus, Order, Selection, Threshold, Verdict, MAX_DROP,
};
use crate::doc::{to_html, to_markdown, Block};
use crate::error::{io_err, write_atomic, ReportError, Result};
use crate::plot::{family_color, palette, render, Chart, Series, Ticks};
use crate::record::{fmt_sparsity, PointRecord};
use crate::store::RESULTS_JSONL;

/// Which report was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A pruning sweep.
    Sweep,
    /// Dense models of different sizes.
    Compare,
}

/// One cell of the 5 % table, for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdCell {
    /// Task name, or `family:<name>`.
    pub row: String,
    /// Method.
    pub method: String,
    /// Scope.
    pub scope: String,
    /// The threshold.
    pub threshold: Threshold,
    /// As printed in the table.
    pub text: String,
}

/// What [`write_report`] produced.
#[derive(Debug, Clone, Serialize)]
pub struct ReportOutput {
    /// Sweep or comparison.
    pub kind: ReportKind,
    /// `DIR/report.md`.
    pub markdown: PathBuf,
    /// `DIR/report.html`.
    pub html: PathBuf,
    /// Every PNG and SVG written.
    pub plots: Vec<PathBuf>,
    /// The opening paragraph.
    pub finding: String,
    /// The 5 % table (sweeps only).
    pub thresholds: Vec<ThresholdCell>,
    /// Records used.
    pub records_used: usize,
    /// Records left out (other settings, superseded).
    pub records_ignored: usize,
}

/// Writes the report that fits the records: a sweep report when any record is a pruned point,
/// else a comparison of dense models.
///
/// # Errors
/// No records, a plot that cannot be drawn, or a file that cannot be written.
pub fn write_report(dir: &Path, records: &[PointRecord]) -> Result<ReportOutput> {
    if records.iter().any(|r| !r.key.is_dense()) {
        write_sweep_report(dir, records)
    } else {
        write_compare_report(dir, records)
    }
}

fn pct1(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn file_name(model: &str) -> String {
    Path::new(model)
        .file_name()
        .map_or_else(|| model.to_string(), |n| n.to_string_lossy().to_string())
}

fn human_count(n: u64) -> String {
    let x = n as f64;
    if x >= 1e9 {
        format!("{:.2} B", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        n.to_string()
    }
}

fn minutes(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

fn join_and(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        2 => format!("{} and {}", items[0], items[1]),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

fn write_docs(dir: &Path, title: &str, blocks: &[Block]) -> Result<(PathBuf, PathBuf)> {
    let md = dir.join("report.md");
    let html = dir.join("report.html");
    write_atomic(&md, to_markdown(blocks).as_bytes())?;
    write_atomic(&html, to_html(title, blocks, dir)?.as_bytes())?;
    Ok((md, html))
}

fn plots_dir(dir: &Path) -> Result<PathBuf> {
    let p = dir.join("plots");
    std::fs::create_dir_all(&p).map_err(io_err(&p, "cannot create directory"))?;
    Ok(p)
}

/// Renders `chart` as `plots/<stem>.png` and `.svg`, adds both files to `written` and returns
/// the block that shows them.
fn plot(
    chart: &Chart,
    plots: &Path,
    stem: &str,
    alt: String,
    written: &mut Vec<PathBuf>,
) -> Result<Block> {
    let (png, svg) = render(chart, &plots.join(stem))?;
    written.extend([png, svg]);
    Ok(Block::Image {
        alt,
        png: format!("plots/{stem}.png"),
        svg: format!("plots/{stem}.svg"),
    })
}

/// The sentence on one curve's verdict, e.g. "With SparseGPT (all linear layers), closed-book
/// fact recall stays within 5% of dense up to 20% sparsity, while open-book QA stays ...".
fn curve_sentence(v: &analysis::CurveVerdict) -> String {
    let ctx: Vec<String> = v
        .context
        .iter()
        .map(|(f, t, _)| format!("{} {}", family_label(f), t.prose()))
        .collect();
    let head = format!(
        "With {} ({}), closed-book fact recall {}",
        method_label(&v.method),
        scope_label(&v.scope),
        v.fact.prose()
    );
    let names = |o: Order| -> Vec<String> {
        v.context
            .iter()
            .filter(|c| c.2 == o)
            .map(|c| family_label(&c.0).to_string())
            .collect()
    };
    let verdict = match v.verdict {
        Verdict::Holds => "so fact recall degrades first".to_string(),
        Verdict::DoesNotHold => "so fact recall does not degrade first".to_string(),
        Verdict::Undecided => "so this grid cannot tell which degrades first".to_string(),
        Verdict::Partly => {
            let mut parts = vec![format!(
                "so fact recall degrades before {}",
                join_and(&names(Order::FactFirst))
            )];
            let not = names(Order::NotFirst);
            if !not.is_empty() {
                parts.push(format!("not before {}", join_and(&not)));
            }
            let tie = names(Order::Tie);
            if !tie.is_empty() {
                parts.push(format!(
                    "and the grid cannot separate it from {}",
                    join_and(&tie)
                ));
            }
            parts.join(", ")
        }
    };
    if ctx.is_empty() {
        format!("{head}, but no in-context family is usable ({verdict}).")
    } else {
        format!("{head}, while {} — {verdict}.", join_and(&ctx))
    }
}

/// The opening paragraph of a sweep report, composed from the verdicts.
fn finding_paragraph(
    model: &str,
    base: &Baseline<'_>,
    verdicts: &[analysis::CurveVerdict],
) -> String {
    let primary: Vec<&analysis::CurveVerdict> = {
        let all: Vec<_> = verdicts.iter().filter(|v| v.scope == "all").collect();
        if all.is_empty() {
            verdicts.iter().collect()
        } else {
            all
        }
    };
    let decided: Vec<_> = primary
        .iter()
        .filter(|v| v.verdict != Verdict::Undecided)
        .collect();
    let count = |w: Verdict| decided.iter().filter(|v| v.verdict == w).count();
    let (holds, partly, not) = (
        count(Verdict::Holds),
        count(Verdict::Partly),
        count(Verdict::DoesNotHold),
    );
    let overall = if decided.is_empty() {
        "**cannot be decided**".to_string()
    } else if holds == decided.len() {
        "**holds**".to_string()
    } else if not == decided.len() {
        "**does not hold**".to_string()
    } else {
        let mut parts = Vec::new();
        for (n, what) in [
            (holds, "holds"),
            (partly, "holds partly"),
            (not, "does not hold"),
        ] {
            if n > 0 {
                parts.push(format!("{what} for {n}"));
            }
        }
        format!(
            "**holds only partly** ({} of {} decidable method/scope combinations)",
            join_and(&parts),
            decided.len()
        )
    };
    let scope_note = if primary.iter().all(|v| v.scope == "all") {
        "when all linear layers are pruned"
    } else {
        "on the pruning runs available"
    };
    let mut s = format!(
        "**Finding.** On `{}`, the seed's finding — fact recall degrades at lower sparsity than \
         in-context tasks — {overall} {scope_note}.",
        file_name(model)
    );
    for v in &primary {
        s.push(' ');
        s.push_str(&curve_sentence(v));
    }
    // Dense levels and noise.
    let mut dense_parts = Vec::new();
    let mut rel_hw = Vec::new();
    for f in base.families() {
        if let Some((acc, hw)) = base.family_dense(&f) {
            dense_parts.push(format!(
                "{} {}% (±{:.1})",
                family_label(&f),
                pct1(acc),
                100.0 * hw
            ));
            if acc > 0.0 {
                rel_hw.push(hw / acc);
            }
        }
    }
    if !dense_parts.is_empty() {
        s.push_str(&format!(
            " Dense accuracies (mean over each family's usable tasks, ± mean 95% CI half-width in points): {}.",
            dense_parts.join(", ")
        ));
    }
    if let (Some(lo), Some(hi)) = (
        rel_hw.iter().copied().reduce(f64::min),
        rel_hw.iter().copied().reduce(f64::max),
    ) {
        let noise = if lo > MAX_DROP {
            "larger than the 5% drop being detected, so thresholds one grid step apart are within noise"
        } else if hi > MAX_DROP {
            "comparable to the 5% drop for some families, so thresholds one grid step apart may be within noise"
        } else {
            "smaller than the 5% drop being detected"
        };
        s.push_str(&format!(
            " Relative to dense accuracy the per-task CI half-widths are {}–{}, {noise}.",
            pct0(lo),
            pct0(hi)
        ));
    }
    s
}

/// The paragraph comparing attention-only and MLP-only pruning, when both were run.
fn scope_paragraph(verdicts: &[analysis::CurveVerdict]) -> Option<String> {
    let mut parts = Vec::new();
    for att in verdicts.iter().filter(|v| v.scope == "attention") {
        let Some(mlp) = verdicts
            .iter()
            .find(|v| v.scope == "mlp" && v.method == att.method)
        else {
            continue;
        };
        let (Some(a), Some(m)) = (att.fact.value(), mlp.fact.value()) else {
            continue;
        };
        let cmp = if m < a {
            "pruning the MLP hurts fact recall at lower sparsity than pruning attention, as in the seed"
        } else if m > a {
            "pruning attention hurts fact recall at lower sparsity than pruning the MLP, unlike the seed"
        } else {
            "both scopes reach the 5% drop on fact recall at the same grid point"
        };
        let ctx = |v: &analysis::CurveVerdict| {
            v.context
                .iter()
                .map(|(f, t, _)| format!("{} {}", family_label(f), t.cell()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        parts.push(format!(
            "With {}, when only attention is pruned fact recall {}; when only the MLP is pruned \
             it {}: {cmp} (thresholds are sparsities of the pruned matrices; the MLP matrices \
             hold most of the weights). 5% thresholds of the in-context families: attention \
             only {}; MLP only {}.",
            method_label(&att.method),
            att.fact.prose(),
            mlp.fact.prose(),
            ctx(att),
            ctx(mlp)
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn relative_chart(title: String, series: Vec<Series>, x_max: f64) -> Chart {
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.1f64, f64::max)
        .min(2.0);
    Chart {
        title,
        x_label: "sparsity of the pruned matrices".into(),
        y_label: "accuracy / dense accuracy".into(),
        x_range: (0.0, x_max.max(0.1)),
        y_range: (0.0, (y_max * 10.0).ceil() / 10.0 + 0.05),
        x_ticks: Ticks::Percent,
        y_ticks: Ticks::Decimals(1),
        series,
        hlines: vec![(1.0, "dense".into()), (1.0 - MAX_DROP, "-5%".into())],
        legend_lower_left: true,
    }
}

/// Writes the report of a pruning sweep.
///
/// # Errors
/// No pruned point or no dense point among the records, a plot that cannot be drawn, or a file
/// that cannot be written.
pub fn write_sweep_report(dir: &Path, records: &[PointRecord]) -> Result<ReportOutput> {
    let sel: Selection<'_> = select_sweep(records);
    let Some(dense) = sel.dense else {
        return Err(ReportError::Empty {
            path: dir.join(RESULTS_JSONL),
            reason: "no dense point with the settings of the latest run: the report normalizes \
                     to dense accuracy"
                .into(),
        });
    };
    let base = Baseline::new(dense);
    let curves = curves(&sel);
    let plots = plots_dir(dir)?;
    let mut written = Vec::new();
    let mut blocks = Vec::new();
    let model = dense.model.clone();
    let title = format!("Pruning sweep: {}", file_name(&model));
    blocks.push(Block::Heading(1, title.clone()));

    let verdicts: Vec<analysis::CurveVerdict> =
        curves.iter().map(|c| analysis::verdict(&base, c)).collect();
    let finding = if curves.is_empty() {
        format!(
            "**Finding.** No unstructured sparsity points of `{}` are recorded yet, so the seed's \
             finding cannot be tested.",
            file_name(&model)
        )
    } else {
        finding_paragraph(&model, &base, &verdicts)
    };
    blocks.push(Block::Paragraph(finding.clone()));
    if let Some(p) = scope_paragraph(&verdicts) {
        blocks.push(Block::Paragraph(p));
    }

    // Setup.
    blocks.push(Block::Heading(2, "Setup".into()));
    let mut setup = vec![
        format!(
            "Model: `{}` (content hash `{}`), {} parameters, {} in prunable decoder linear layers.",
            model,
            dense.key.model_hash,
            human_count(dense.params),
            human_count(dense.linear_params)
        ),
        format!(
            "Points: dense plus {} pruned ({}).",
            sel.points.len(),
            curves
                .iter()
                .map(|c| format!(
                    "{} at {}",
                    c.title(),
                    c.points
                        .iter()
                        .map(|p| fmt_sparsity(p.key.sparsity))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .chain(
                    sel.points
                        .iter()
                        .filter(|p| p.key.pattern != "unstructured")
                        .map(|p| p.key.label())
                )
                .collect::<Vec<_>>()
                .join("; ")
        ),
    ];
    if let Some(c) = sel.points.iter().find_map(|p| p.key.calibration.as_ref()) {
        setup.push(format!(
            "Calibration: {} windows of {} tokens, seed {}, text: {} (token hash `{}`).",
            c.nsamples, c.seqlen, c.seed, c.source, c.tokens_hash
        ));
    }
    if let Some(o) = sel.points.iter().find_map(|p| p.key.method_options.clone()) {
        setup.push(format!("SparseGPT options: {o}."));
    }
    setup.push(format!(
        "Tasks: {} (items per task at dense: {}); item seed {}{}.",
        dense.key.tasks.join(", "),
        dense
            .tasks
            .iter()
            .map(|t| format!("{} {}", t.task, t.n))
            .collect::<Vec<_>>()
            .join(", "),
        dense.key.eval_seed,
        dense
            .key
            .shots
            .map_or(String::new(), |s| format!(", {s} shots"))
    ));
    if dense.key.ppl_windows > 0 {
        setup.push(format!(
            "Perplexity: {} windows of {} tokens of the evaluation text.",
            dense.key.ppl_windows, dense.key.ppl_seqlen
        ));
    }
    let prune_s: f64 = sel.points.iter().map(|p| p.prune_seconds).sum();
    let eval_s: f64 = sel.points.iter().map(|p| p.eval_seconds).sum::<f64>() + dense.eval_seconds;
    let all_points = || sel.points.iter().copied().chain(std::iter::once(dense));
    let cpu = all_points()
        .map(|p| {
            p.prune_cpu_seconds
                .zip(p.eval_cpu_seconds)
                .map(|(a, b)| a + b)
        })
        .sum::<Option<f64>>();
    setup.push(format!(
        "Compute: {} pruning + {} evaluation = {} wall time (sum over points{}; {}).",
        minutes(prune_s),
        minutes(eval_s),
        minutes(prune_s + eval_s),
        cpu.map_or(String::new(), |c| format!("; {} CPU time", minutes(c))),
        dense.secateurs
    ));
    if sel.ignored > 0 {
        setup.push(format!(
            "{} older record(s) in `{RESULTS_JSONL}` with other settings are not part of this report.",
            sel.ignored
        ));
    }
    blocks.push(Block::List(setup));

    // Dense table.
    blocks.push(Block::Heading(2, "Dense accuracy".into()));
    let mut rows = Vec::new();
    for (t, st) in &base.tasks {
        rows.push(vec![
            t.task.clone(),
            family_label(&t.family).to_string(),
            t.metric.clone(),
            pct1(t.accuracy),
            format!("[{}, {}]", pct1(t.lo), pct1(t.hi)),
            t.n.to_string(),
            t.chance.map_or("-".into(), pct1),
            st.describe().to_string(),
        ]);
    }
    blocks.push(Block::Table {
        header: [
            "task", "family", "metric", "acc %", "95% CI", "n", "chance %", "status",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        numeric: vec![false, false, false, true, true, true, true, false],
    });
    if let Some(p) = dense.perplexity {
        blocks.push(Block::Paragraph(format!("Dense perplexity: {p:.3}.")));
    }

    // 5% table.
    let mut cells = Vec::new();
    if !curves.is_empty() {
        blocks.push(Block::Heading(
            2,
            "Largest sparsity whose relative drop is ≤ 5%".into(),
        ));
        blocks.push(Block::Paragraph(
            "Relative drop = 1 − acc / acc_dense. Each cell is the largest sparsity (of the pruned \
             matrices) up to which every evaluated point keeps the drop ≤ 5%; `≥ s` means no \
             evaluated point dropped more (s is the largest evaluated), `< s` means already the \
             lowest evaluated point `s` did. Family rows use the mean of acc / acc_dense over the \
             family's usable tasks. `flagged`: not above chance (95% CI lower end ≤ chance) or \
             near zero at dense, where a ratio means nothing."
                .into(),
        ));
        let mut header = vec!["family / task".to_string()];
        header.extend(curves.iter().map(Curve::title));
        let numeric: Vec<bool> = (0..header.len()).map(|i| i > 0).collect();
        let mut rows = Vec::new();
        for f in base.families() {
            let mut row = vec![format!("**{}**", family_label(&f))];
            for c in &curves {
                let t = base.family_threshold(c, &f);
                row.push(format!("**{}**", t.cell()));
                cells.push(ThresholdCell {
                    row: format!("family:{f}"),
                    method: c.method.clone(),
                    scope: c.scope.clone(),
                    threshold: t,
                    text: t.cell(),
                });
            }
            rows.push(row);
            for (t, _) in base.tasks.iter().filter(|(t, _)| t.family == f) {
                let mut row = vec![format!("  {}", t.task)];
                for c in &curves {
                    let th = base.task_threshold(c, &t.task);
                    row.push(th.cell());
                    cells.push(ThresholdCell {
                        row: t.task.clone(),
                        method: c.method.clone(),
                        scope: c.scope.clone(),
                        threshold: th,
                        text: th.cell(),
                    });
                }
                rows.push(row);
            }
        }
        blocks.push(Block::Table {
            header,
            rows,
            numeric,
        });
    }

    // Plots per curve.
    if !curves.is_empty() {
        blocks.push(Block::Heading(2, "Accuracy relative to dense".into()));
        blocks.push(Block::Paragraph(
            "One curve per task family (mean of acc / acc_dense over the family's usable tasks), \
             as in the seed's figures; the dashed lines mark dense (1.0) and a 5% drop (0.95). \
             The per-task plots below each family plot show every usable task."
                .into(),
        ));
    }
    let x_max = sel
        .points
        .iter()
        .map(|p| p.key.sparsity)
        .fold(0.0f64, f64::max);
    for c in &curves {
        let series: Vec<Series> = base
            .families()
            .iter()
            .filter(|f| !base.usable(f).is_empty())
            .map(|f| {
                let mut pts = vec![(0.0, 1.0)];
                pts.extend(
                    c.points
                        .iter()
                        .filter_map(|p| base.family_relative(p, f).map(|v| (p.key.sparsity, v))),
                );
                Series {
                    label: family_label(f).to_string(),
                    color: family_color(f),
                    points: pts,
                    dashed: false,
                }
            })
            .collect();
        let stem = format!("families_{}", c.slug());
        blocks.push(plot(
            &relative_chart(
                format!("{}: accuracy relative to dense, by task family", c.title()),
                series,
                x_max,
            ),
            &plots,
            &stem,
            format!("{}: accuracy relative to dense by task family", c.title()),
            &mut written,
        )?);
        let usable: Vec<&str> = base
            .tasks
            .iter()
            .filter(|(_, s)| *s == DenseStatus::Ok)
            .map(|(t, _)| t.task.as_str())
            .collect();
        let series: Vec<Series> = usable
            .iter()
            .enumerate()
            .map(|(i, task)| {
                let mut pts = vec![(0.0, 1.0)];
                pts.extend(
                    c.points
                        .iter()
                        .filter_map(|p| base.relative(p, task).map(|v| (p.key.sparsity, v))),
                );
                Series {
                    label: task.to_string(),
                    color: palette(i),
                    points: pts,
                    dashed: base
                        .get(task)
                        .is_some_and(|(t, _)| t.family != "fact_recall"),
                }
            })
            .collect();
        let stem = format!("tasks_{}", c.slug());
        blocks.push(plot(
            &relative_chart(
                format!(
                    "{}: accuracy relative to dense, by task (solid: fact recall)",
                    c.title()
                ),
                series,
                x_max,
            ),
            &plots,
            &stem,
            format!("{}: accuracy relative to dense by task", c.title()),
            &mut written,
        )?);
    }

    // Perplexity.
    let with_ppl: Vec<&Curve<'_>> = curves
        .iter()
        .filter(|c| c.points.iter().any(|p| p.perplexity.is_some()))
        .collect();
    if let (Some(dp), false) = (dense.perplexity, with_ppl.is_empty()) {
        blocks.push(Block::Heading(2, "Perplexity".into()));
        let series: Vec<Series> = with_ppl
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut pts = vec![(0.0, dp.log10())];
                pts.extend(c.points.iter().filter_map(|p| {
                    p.perplexity
                        .filter(|v| v.is_finite() && *v > 0.0)
                        .map(|v| (p.key.sparsity, v.log10()))
                }));
                Series {
                    label: c.title(),
                    color: palette(i),
                    points: pts,
                    dashed: false,
                }
            })
            .collect();
        let ys: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .collect();
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let chart = Chart {
            title: "Perplexity vs sparsity (log scale)".into(),
            x_label: "sparsity of the pruned matrices".into(),
            y_label: "perplexity".into(),
            x_range: (0.0, x_max.max(0.1)),
            y_range: ((lo - 0.05).floor().max(0.0), (hi + 0.05).max(lo + 0.5)),
            x_ticks: Ticks::Percent,
            y_ticks: Ticks::Log10,
            series,
            hlines: Vec::new(),
            legend_lower_left: false,
        };
        blocks.push(plot(
            &chart,
            &plots,
            "perplexity",
            "Perplexity vs sparsity".into(),
            &mut written,
        )?);
        let mut sparsities: Vec<f64> = with_ppl
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.key.sparsity))
            .collect();
        sparsities.sort_by(f64::total_cmp);
        sparsities.dedup();
        let mut header = vec!["sparsity".to_string()];
        header.extend(with_ppl.iter().map(|c| c.title()));
        let mut rows = vec![{
            let mut r = vec!["0 (dense)".to_string()];
            r.extend(with_ppl.iter().map(|_| format!("{dp:.2}")));
            r
        }];
        for s in sparsities {
            let mut r = vec![fmt_sparsity(s)];
            for c in &with_ppl {
                r.push(
                    c.points
                        .iter()
                        .find(|p| p.key.sparsity == s)
                        .and_then(|p| p.perplexity)
                        .map_or("-".into(), |v| format!("{v:.2}")),
                );
            }
            rows.push(r);
        }
        let numeric = (0..header.len()).map(|_| true).collect();
        blocks.push(Block::Table {
            header,
            rows,
            numeric,
        });
    }

    // N:M points.
    let nm: Vec<&&PointRecord> = sel
        .points
        .iter()
        .filter(|p| p.key.pattern != "unstructured")
        .collect();
    if !nm.is_empty() {
        blocks.push(Block::Heading(2, "N:M patterns".into()));
        let fams = base.families();
        let mut header: Vec<String> = ["method", "scope", "pattern", "perplexity"]
            .map(String::from)
            .to_vec();
        header.extend(fams.iter().map(|f| format!("{} (rel.)", family_label(f))));
        let mut rows = Vec::new();
        for p in &nm {
            let mut r = vec![
                method_label(&p.key.method),
                p.key.scope.clone(),
                p.key.pattern.clone(),
                p.perplexity.map_or("-".into(), |v| format!("{v:.2}")),
            ];
            r.extend(fams.iter().map(|f| {
                base.family_relative(p, f)
                    .map_or("-".into(), |v| format!("{v:.3}"))
            }));
            rows.push(r);
        }
        let numeric = (0..header.len()).map(|i| i >= 3).collect();
        blocks.push(Block::Table {
            header,
            rows,
            numeric,
        });
    }

    // All points.
    blocks.push(Block::Heading(2, "All points".into()));
    blocks.push(Block::Paragraph(
        "Accuracy in % (primary metric) per task; `achieved` is the measured fraction of zeros \
         over all decoder linear weights; times in seconds."
            .into(),
    ));
    let tasks: Vec<String> = dense.tasks.iter().map(|t| t.task.clone()).collect();
    let mut header: Vec<String> = ["point", "achieved", "ppl"].map(String::from).to_vec();
    header.extend(tasks.iter().cloned());
    header.extend(["prune s", "eval s"].map(String::from));
    let mut rows = Vec::new();
    let mut all: Vec<&PointRecord> = vec![dense];
    for c in &curves {
        all.extend(c.points.iter().copied());
    }
    all.extend(nm.iter().map(|p| **p));
    for p in all {
        let mut r = vec![
            p.key.label(),
            pct1(p.achieved_sparsity),
            p.perplexity.map_or("-".into(), |v| format!("{v:.2}")),
        ];
        r.extend(
            tasks
                .iter()
                .map(|t| p.task(t).map_or("-".into(), |s| pct1(s.accuracy))),
        );
        r.push(format!("{:.0}", p.prune_seconds));
        r.push(format!("{:.0}", p.eval_seconds));
        rows.push(r);
    }
    let numeric = (0..header.len()).map(|i| i > 0).collect();
    blocks.push(Block::Table {
        header,
        rows,
        numeric,
    });
    blocks.push(Block::Paragraph(format!(
        "Raw data: `{RESULTS_JSONL}` (one record per point) and `results.csv` (one row per point \
         and task). Regenerate this page with `secateurs report {}`.",
        dir.display()
    )));

    let (markdown, html) = write_docs(dir, &title, &blocks)?;
    Ok(ReportOutput {
        kind: ReportKind::Sweep,
        markdown,
        html,
        plots: written,
        finding,
        thresholds: cells,
        records_used: sel.points.len() + 1,
        records_ignored: sel.ignored,
    })
}

/// The records of the latest comparison: those sharing the evaluation settings (tasks, limits,
/// seeds) of the most recent record, one per model (the most recent), sorted by parameters.
pub fn select_compare(records: &[PointRecord]) -> (Vec<&PointRecord>, usize) {
    let Some(last) = records
        .iter()
        .enumerate()
        .max_by_key(|(i, r)| (r.finished_unix, *i))
        .map(|(_, r)| r)
    else {
        return (Vec::new(), 0);
    };
    let sig = last.key.eval_settings();
    let mut by_model: BTreeMap<String, &PointRecord> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.key.is_dense() && r.key.eval_settings() == sig)
    {
        match by_model.get(&r.key.model_hash) {
            Some(o) if o.finished_unix > r.finished_unix => {}
            _ => {
                by_model.insert(r.key.model_hash.clone(), r);
            }
        }
    }
    let mut v: Vec<&PointRecord> = by_model.into_values().collect();
    v.sort_by_key(|r| r.params);
    let ignored = records.len() - v.len();
    (v, ignored)
}

/// Writes the report of a dense down-scaling comparison: accuracy against parameter count.
///
/// # Errors
/// No records, a plot that cannot be drawn, or a file that cannot be written.
pub fn write_compare_report(dir: &Path, records: &[PointRecord]) -> Result<ReportOutput> {
    let (models, ignored) = select_compare(records);
    let Some(largest) = models.last().copied() else {
        return Err(ReportError::Empty {
            path: dir.join(RESULTS_JSONL),
            reason: "no dense model records".into(),
        });
    };
    let plots = plots_dir(dir)?;
    let mut written = Vec::new();
    let title = "Dense down-scaling: accuracy vs parameter count".to_string();
    let mut blocks = vec![Block::Heading(1, title.clone())];
    // Families are judged usable on the largest model.
    let base = Baseline::new(largest);
    let fams: Vec<String> = base
        .families()
        .into_iter()
        .filter(|f| !base.usable(f).is_empty())
        .collect();
    let smallest = models[0];
    let finding = if models.len() < 2 {
        format!(
            "**Finding.** Only one model (`{}`) is recorded; a comparison needs at least two.",
            file_name(&largest.model)
        )
    } else {
        let keep = |f: &str| base.family_relative(smallest, f);
        let fact = keep("fact_recall");
        let ctx: Vec<(String, f64)> = analysis::CONTEXT_FAMILIES
            .iter()
            .filter_map(|f| keep(f).map(|v| (f.to_string(), v)))
            .collect();
        let parts: Vec<String> = ctx
            .iter()
            .map(|(f, v)| format!("{} keeps {}", family_label(f), pct0(*v)))
            .collect();
        let verdict = match fact {
            None => "cannot be decided (fact recall is not usable on the largest model)".into(),
            Some(_) if ctx.is_empty() => {
                "cannot be decided (no in-context family is usable on the largest model)".into()
            }
            Some(fv) => {
                let below = ctx.iter().filter(|(_, v)| fv < *v).count();
                if below == ctx.len() {
                    "**holds**: fact recall loses more of its accuracy than every in-context family"
                        .to_string()
                } else if below == 0 {
                    "**does not hold**: fact recall loses no more than the in-context families"
                        .to_string()
                } else {
                    format!("**holds only partly** (fact recall loses more than {below} of {} in-context families)", ctx.len())
                }
            }
        };
        format!(
            "**Finding.** From `{}` ({} parameters) down to `{}` ({}), closed-book fact recall \
             keeps {} of its accuracy while {}; the seed's finding for dense down-scaling {verdict}. \
             Relative accuracy is each family's mean of acc / acc_largest over tasks above chance on \
             the largest model.",
            file_name(&largest.model),
            human_count(largest.params),
            file_name(&smallest.model),
            human_count(smallest.params),
            fact.map_or("(n/a)".into(), pct0),
            if parts.is_empty() {
                "no in-context family is usable".into()
            } else {
                join_and(&parts)
            }
        )
    };
    blocks.push(Block::Paragraph(finding.clone()));
    blocks.push(Block::Heading(2, "Models".into()));
    let tasks: Vec<String> = largest.tasks.iter().map(|t| t.task.clone()).collect();
    let mut header: Vec<String> = ["model", "parameters", "perplexity"]
        .map(String::from)
        .to_vec();
    header.extend(tasks.iter().cloned());
    let mut rows = Vec::new();
    for m in &models {
        let mut r = vec![
            format!("`{}`", file_name(&m.model)),
            human_count(m.params),
            m.perplexity.map_or("-".into(), |v| format!("{v:.2}")),
        ];
        r.extend(tasks.iter().map(|t| {
            m.task(t).map_or("-".into(), |s| {
                format!("{} ±{:.1}", pct1(s.accuracy), 100.0 * (s.hi - s.lo) / 2.0)
            })
        }));
        rows.push(r);
    }
    let numeric = (0..header.len()).map(|i| i > 0).collect();
    blocks.push(Block::Table {
        header,
        rows,
        numeric,
    });
    if models.len() >= 2 {
        let x: Vec<f64> = models
            .iter()
            .map(|m| (m.params.max(1) as f64).log10())
            .collect();
        let (x0, x1) = (
            x.iter().copied().fold(f64::INFINITY, f64::min),
            x.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        let pad = ((x1 - x0) * 0.08).max(0.05);
        let raw: Vec<Series> = fams
            .iter()
            .map(|f| Series {
                label: family_label(f).to_string(),
                color: family_color(f),
                points: models
                    .iter()
                    .zip(&x)
                    .filter_map(|(m, &lx)| {
                        let v: Vec<f64> = base
                            .usable(f)
                            .iter()
                            .filter_map(|t| m.task(&t.task).map(|s| s.accuracy))
                            .collect();
                        (!v.is_empty()).then(|| (lx, v.iter().sum::<f64>() / v.len() as f64))
                    })
                    .collect(),
                dashed: false,
            })
            .collect();
        let chart = Chart {
            title: "Accuracy vs parameter count (mean over each family's tasks)".into(),
            x_label: "parameters (log scale)".into(),
            y_label: "accuracy".into(),
            x_range: (x0 - pad, x1 + pad),
            y_range: (0.0, 1.0),
            x_ticks: Ticks::Log10,
            y_ticks: Ticks::Percent,
            series: raw,
            hlines: Vec::new(),
            legend_lower_left: false,
        };
        let accuracy = plot(
            &chart,
            &plots,
            "compare_accuracy",
            "Accuracy vs parameter count by task family".into(),
            &mut written,
        )?;
        blocks.push(Block::Heading(2, "Accuracy vs parameters".into()));
        blocks.push(accuracy);
        let rel: Vec<Series> = fams
            .iter()
            .map(|f| Series {
                label: family_label(f).to_string(),
                color: family_color(f),
                points: models
                    .iter()
                    .zip(&x)
                    .filter_map(|(m, &lx)| base.family_relative(m, f).map(|v| (lx, v)))
                    .collect(),
                dashed: false,
            })
            .collect();
        let y_max = rel
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(1.1f64, f64::max)
            .min(2.0);
        let chart = Chart {
            title: "Accuracy relative to the largest model".into(),
            x_label: "parameters (log scale)".into(),
            y_label: "accuracy / accuracy of the largest".into(),
            x_range: (x0 - pad, x1 + pad),
            y_range: (0.0, y_max + 0.05),
            x_ticks: Ticks::Log10,
            y_ticks: Ticks::Decimals(1),
            series: rel,
            hlines: vec![(1.0, "largest".into()), (1.0 - MAX_DROP, "-5%".into())],
            legend_lower_left: true,
        };
        blocks.push(plot(
            &chart,
            &plots,
            "compare_relative",
            "Accuracy relative to the largest model by task family".into(),
            &mut written,
        )?);
    }
    blocks.push(Block::Paragraph(format!(
        "Raw data: `{RESULTS_JSONL}` and `results.csv`. Regenerate this page with \
         `secateurs report {}`.",
        dir.display()
    )));
    let (markdown, html) = write_docs(dir, &title, &blocks)?;
    Ok(ReportOutput {
        kind: ReportKind::Compare,
        markdown,
        html,
        plots: written,
        finding,
        thresholds: Vec::new(),
        records_used: models.len(),
        records_ignored: ignored,
    })
}
