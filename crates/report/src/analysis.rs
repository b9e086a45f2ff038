//! What the report computes from the records: which records form the sweep
//! ([`select_sweep`]), the dense baseline, accuracy relative to dense, the "largest sparsity
//! whose relative drop is ≤ 5 %" ([`threshold`]) per task and per family, and the verdict on the
//! seed's finding ([`verdict`]).
//!
//! **Relative drop** at sparsity `s` is `1 − acc(s) / acc(dense)`.
//!
//! **Threshold.** Points of one method and scope are taken in order of sparsity; the threshold
//! is the largest sparsity up to which *every* evaluated point keeps the drop ≤ 5 % (so a noisy
//! recovery after a failure does not count). It is [`Threshold::AtLeast`] when no evaluated
//! point failed, and [`Threshold::Below`] when already the lowest one did.
//!
//! **Flagged tasks.** A task whose dense accuracy is not above chance (the lower end of its 95 %
//! interval is at or below the chance level, e.g. the shuffled-label control), or that has no
//! chance level and scores below 5 % (or fewer than 5 items) at dense, has no meaningful ratio:
//! it is flagged and left out of its family's curve.
//!
//! **Families.** A family's accuracy relative to dense at a sparsity is the mean, over its
//! unflagged tasks, of each task's `acc / acc_dense`; its threshold is computed on that mean.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::{fmt_sparsity, PointRecord, TaskScore};

/// The largest relative drop accepted: 5 %.
pub const MAX_DROP: f64 = 0.05;

/// The task families, in display order: `(name, label)`.
pub const FAMILIES: [(&str, &str); 5] = [
    ("fact_recall", "fact recall (closed-book)"),
    ("open_book", "open-book QA"),
    ("counterfactual", "counterfactual (answer from context)"),
    ("in_context", "in-context linear classifier"),
    ("multiple_choice", "multiple choice"),
];

/// The families that need information presented in context (the seed's "in-context
/// abilities"): open-book QA, overriding memory from context, learning a function from
/// examples.
pub const CONTEXT_FAMILIES: [&str; 3] = ["open_book", "counterfactual", "in_context"];

/// The display label of a family (its name when unknown).
pub fn family_label(name: &str) -> &str {
    FAMILIES.iter().find(|f| f.0 == name).map_or(name, |f| f.1)
}

/// The records that make up one sweep.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    /// The dense reference, if recorded.
    pub dense: Option<&'a PointRecord>,
    /// The pruned points (one per method, scope and pattern/sparsity).
    pub points: Vec<&'a PointRecord>,
    /// Records left out: other evaluation or calibration settings, or superseded duplicates.
    pub ignored: usize,
}

/// Picks the records of the most recent sweep: those sharing the evaluation settings
/// ([`crate::PointKey::eval_signature`]) of the most recently finished record, and, among pruned
/// points that use calibration, the calibration of the most recent such point. Where several
/// records remain for one method, scope and pattern, the most recent wins.
pub fn select_sweep(records: &[PointRecord]) -> Selection<'_> {
    let latest = |it: &mut dyn Iterator<Item = &'_ PointRecord>| -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for r in it {
            let pos = records.iter().position(|x| std::ptr::eq(x, r)).unwrap_or(0);
            if best.is_none_or(|(t, p)| (r.finished_unix, pos) >= (t, p)) {
                best = Some((r.finished_unix, pos));
            }
        }
        best.map(|b| b.1)
    };
    let Some(last) = latest(&mut records.iter()) else {
        return Selection {
            dense: None,
            points: Vec::new(),
            ignored: 0,
        };
    };
    let sig = records[last].key.eval_signature();
    let same: Vec<&PointRecord> = records
        .iter()
        .filter(|r| r.key.eval_signature() == sig)
        .collect();
    let dense = latest(&mut same.iter().copied().filter(|r| r.key.is_dense())).map(|i| &records[i]);
    let calib = latest(
        &mut same
            .iter()
            .copied()
            .filter(|r| !r.key.is_dense() && r.key.calibration.is_some()),
    )
    .and_then(|i| records[i].key.calibration.clone());
    let mut chosen: BTreeMap<(String, String, String, u64), &PointRecord> = BTreeMap::new();
    let mut order: Vec<(String, String, String, u64)> = Vec::new();
    for r in same.iter().copied().filter(|r| !r.key.is_dense()) {
        if r.key.calibration.is_some() && r.key.calibration != calib {
            continue;
        }
        let k = (
            r.key.method.clone(),
            r.key.scope.clone(),
            r.key.pattern.clone(),
            r.key.sparsity.to_bits(),
        );
        match chosen.get(&k) {
            Some(old) if old.finished_unix > r.finished_unix => {}
            Some(_) => {
                chosen.insert(k, r);
            }
            None => {
                order.push(k.clone());
                chosen.insert(k, r);
            }
        }
    }
    let points: Vec<&PointRecord> = order
        .iter()
        .filter_map(|k| chosen.get(k).copied())
        .collect();
    let kept = points.len() + usize::from(dense.is_some());
    Selection {
        dense,
        points,
        ignored: records.len() - kept,
    }
}

/// Whether a task's dense accuracy allows a meaningful ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum DenseStatus {
    /// Above chance: ratios are meaningful.
    Ok,
    /// The lower end of the 95 % interval is at or below chance.
    AtChance,
    /// No chance level, and below 5 % (or fewer than 5 correct items).
    Floor,
}

impl DenseStatus {
    /// Of a task's dense result.
    pub fn of(t: &TaskScore) -> DenseStatus {
        match t.chance {
            Some(c) if t.lo <= c => DenseStatus::AtChance,
            Some(_) => DenseStatus::Ok,
            None if t.successes < 5 || t.accuracy < 0.05 => DenseStatus::Floor,
            None => DenseStatus::Ok,
        }
    }

    /// Short text for tables.
    pub fn describe(self) -> &'static str {
        match self {
            DenseStatus::Ok => "ok",
            DenseStatus::AtChance => "at chance at dense",
            DenseStatus::Floor => "near zero at dense",
        }
    }
}

/// The largest sparsity within the accepted drop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Threshold {
    /// Every point up to and including this sparsity is within the drop; the next one is not.
    At(f64),
    /// No evaluated point exceeded the drop; this is the largest sparsity evaluated.
    AtLeast(f64),
    /// Already the lowest evaluated sparsity (this one) exceeded the drop.
    Below(f64),
    /// The task (or every task of the family) is flagged at dense.
    Flagged,
    /// Nothing to compute from.
    NoData,
}

impl Threshold {
    /// A number to compare thresholds by: the sparsity, or 0 for [`Threshold::Below`];
    /// `None` when flagged or without data.
    pub fn value(self) -> Option<f64> {
        match self {
            Threshold::At(s) | Threshold::AtLeast(s) => Some(s),
            Threshold::Below(_) => Some(0.0),
            Threshold::Flagged | Threshold::NoData => None,
        }
    }

    /// Table text: `0.3`, `≥ 0.9`, `< 0.1`, `flagged`, `-`.
    pub fn cell(self) -> String {
        match self {
            Threshold::At(s) => fmt_sparsity(s),
            Threshold::AtLeast(s) => format!("≥ {}", fmt_sparsity(s)),
            Threshold::Below(s) => format!("< {}", fmt_sparsity(s)),
            Threshold::Flagged => "flagged".into(),
            Threshold::NoData => "-".into(),
        }
    }

    /// Prose with its verb: `stays within 5% of dense up to 30% sparsity`, `stays within 5% at
    /// every sparsity evaluated (up to 90%)`, `already drops more than 5% at 10%, the lowest
    /// sparsity evaluated`.
    pub fn prose(self) -> String {
        match self {
            Threshold::At(s) => format!("stays within 5% of dense up to {} sparsity", pct0(s)),
            Threshold::AtLeast(s) => format!(
                "stays within 5% of dense at every sparsity evaluated (up to {})",
                pct0(s)
            ),
            Threshold::Below(s) => format!(
                "already drops more than 5% at {}, the lowest sparsity evaluated",
                pct0(s)
            ),
            Threshold::Flagged => "is flagged (not above chance at dense)".into(),
            Threshold::NoData => "has no data".into(),
        }
    }
}

/// `0.3` → `30%`.
pub fn pct0(x: f64) -> String {
    let v = 100.0 * x;
    if (v - v.round()).abs() < 1e-6 {
        format!("{v:.0}%")
    } else {
        format!("{v:.1}%")
    }
}

/// The largest sparsity up to which every point keeps `1 − acc/dense ≤ max_drop`. `points` are
/// `(sparsity, accuracy)` in any order. A dense accuracy that is not positive gives
/// [`Threshold::Flagged`]; no points give [`Threshold::NoData`].
pub fn threshold(dense: f64, points: &[(f64, f64)], max_drop: f64) -> Threshold {
    if points.is_empty() {
        return Threshold::NoData;
    }
    if dense.is_nan() || dense <= 0.0 {
        return Threshold::Flagged;
    }
    let mut p = points.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last_ok: Option<f64> = None;
    for &(s, acc) in &p {
        let drop = 1.0 - acc / dense;
        if drop > max_drop + 1e-12 {
            return match last_ok {
                Some(ok) => Threshold::At(ok),
                None => Threshold::Below(s),
            };
        }
        last_ok = Some(s);
    }
    Threshold::AtLeast(p[p.len() - 1].0)
}

/// The unstructured points of one method and scope, by increasing sparsity.
#[derive(Debug, Clone)]
pub struct Curve<'a> {
    /// Method.
    pub method: String,
    /// Scope.
    pub scope: String,
    /// Points, sorted by target sparsity.
    pub points: Vec<&'a PointRecord>,
}

impl Curve<'_> {
    /// `SparseGPT, all linear layers`.
    pub fn title(&self) -> String {
        format!(
            "{}, {}",
            method_label(&self.method),
            scope_label(&self.scope)
        )
    }

    /// `sparsegpt_all`.
    pub fn slug(&self) -> String {
        format!("{}_{}", self.method, self.scope)
    }
}

/// `sparsegpt` → `SparseGPT`.
pub fn method_label(m: &str) -> String {
    match m {
        "sparsegpt" => "SparseGPT".into(),
        "wanda" => "Wanda".into(),
        "magnitude" => "Magnitude".into(),
        "dense" => "Dense".into(),
        other => other.to_string(),
    }
}

/// `mlp` → `MLP only`.
pub fn scope_label(s: &str) -> String {
    match s {
        "all" => "all linear layers".into(),
        "attention" => "attention only".into(),
        "mlp" => "MLP only".into(),
        other => other.to_string(),
    }
}

/// The unstructured curves of a selection, in order of first appearance.
pub fn curves<'a>(sel: &Selection<'a>) -> Vec<Curve<'a>> {
    let mut out: Vec<Curve<'a>> = Vec::new();
    for r in sel
        .points
        .iter()
        .copied()
        .filter(|r| r.key.pattern == "unstructured")
    {
        match out
            .iter_mut()
            .find(|c| c.method == r.key.method && c.scope == r.key.scope)
        {
            Some(c) => c.points.push(r),
            None => out.push(Curve {
                method: r.key.method.clone(),
                scope: r.key.scope.clone(),
                points: vec![r],
            }),
        }
    }
    for c in &mut out {
        c.points
            .sort_by(|a, b| a.key.sparsity.total_cmp(&b.key.sparsity));
    }
    out
}

/// The dense baseline: per task, its result and status.
#[derive(Debug, Clone)]
pub struct Baseline<'a> {
    /// Per task name.
    pub tasks: Vec<(&'a TaskScore, DenseStatus)>,
}

impl<'a> Baseline<'a> {
    /// Of a dense record.
    pub fn new(dense: &'a PointRecord) -> Self {
        Baseline {
            tasks: dense
                .tasks
                .iter()
                .map(|t| (t, DenseStatus::of(t)))
                .collect(),
        }
    }

    /// A task's dense result and status.
    pub fn get(&self, task: &str) -> Option<(&'a TaskScore, DenseStatus)> {
        self.tasks.iter().find(|t| t.0.task == task).copied()
    }

    /// The unflagged tasks of a family.
    pub fn usable(&self, family: &str) -> Vec<&'a TaskScore> {
        self.tasks
            .iter()
            .filter(|(t, s)| t.family == family && *s == DenseStatus::Ok)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Whether any task of the family was evaluated.
    pub fn has_family(&self, family: &str) -> bool {
        self.tasks.iter().any(|(t, _)| t.family == family)
    }

    /// Families present, in display order (unknown families last).
    pub fn families(&self) -> Vec<String> {
        let mut out: Vec<String> = FAMILIES
            .iter()
            .filter(|f| self.has_family(f.0))
            .map(|f| f.0.to_string())
            .collect();
        for (t, _) in &self.tasks {
            if !out.contains(&t.family) {
                out.push(t.family.clone());
            }
        }
        out
    }

    /// `acc / acc_dense` of one task at a point (`None` when flagged or missing).
    pub fn relative(&self, point: &PointRecord, task: &str) -> Option<f64> {
        let (d, s) = self.get(task)?;
        if s != DenseStatus::Ok || d.accuracy <= 0.0 {
            return None;
        }
        Some(point.task(task)?.accuracy / d.accuracy)
    }

    /// Mean `acc / acc_dense` over the family's unflagged tasks at a point.
    pub fn family_relative(&self, point: &PointRecord, family: &str) -> Option<f64> {
        let v: Vec<f64> = self
            .usable(family)
            .iter()
            .filter_map(|t| self.relative(point, &t.task))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// The threshold of one task along a curve.
    pub fn task_threshold(&self, curve: &Curve<'_>, task: &str) -> Threshold {
        let Some((d, s)) = self.get(task) else {
            return Threshold::NoData;
        };
        if s != DenseStatus::Ok {
            return Threshold::Flagged;
        }
        let pts: Vec<(f64, f64)> = curve
            .points
            .iter()
            .filter_map(|p| p.task(task).map(|t| (p.key.sparsity, t.accuracy)))
            .collect();
        threshold(d.accuracy, &pts, MAX_DROP)
    }

    /// The threshold of a family's mean relative accuracy along a curve.
    pub fn family_threshold(&self, curve: &Curve<'_>, family: &str) -> Threshold {
        if !self.has_family(family) {
            return Threshold::NoData;
        }
        if self.usable(family).is_empty() {
            return Threshold::Flagged;
        }
        let pts: Vec<(f64, f64)> = curve
            .points
            .iter()
            .filter_map(|p| self.family_relative(p, family).map(|v| (p.key.sparsity, v)))
            .collect();
        threshold(1.0, &pts, MAX_DROP)
    }

    /// Mean dense accuracy of a family's unflagged tasks, and the mean half-width of their
    /// intervals.
    pub fn family_dense(&self, family: &str) -> Option<(f64, f64)> {
        let u = self.usable(family);
        if u.is_empty() {
            return None;
        }
        let n = u.len() as f64;
        Some((
            u.iter().map(|t| t.accuracy).sum::<f64>() / n,
            u.iter().map(|t| (t.hi - t.lo) / 2.0).sum::<f64>() / n,
        ))
    }
}

/// Whether the seed's finding holds along one curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Fact recall's threshold is below every in-context family's.
    Holds,
    /// Below some in-context families' thresholds but not all.
    Partly,
    /// At or above every in-context family's threshold.
    DoesNotHold,
    /// Fact recall or every in-context family is flagged or missing, or the grid cannot
    /// separate them (all dropped already at the lowest sparsity, or none dropped at all).
    Undecided,
}

/// Which family reaches the 5% drop first, fact recall or an in-context family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Order {
    /// Fact recall's threshold is lower.
    FactFirst,
    /// Fact recall's threshold is the same or higher.
    NotFirst,
    /// The grid cannot tell: both already dropped at the lowest sparsity, or neither dropped.
    Tie,
}

/// The comparison along one curve.
#[derive(Debug, Clone)]
pub struct CurveVerdict {
    /// `sparsegpt`, ...
    pub method: String,
    /// `all`, ...
    pub scope: String,
    /// Fact recall's threshold.
    pub fact: Threshold,
    /// Each in-context family present and unflagged, with its threshold and how fact recall
    /// compares with it.
    pub context: Vec<(String, Threshold, Order)>,
    /// The verdict.
    pub verdict: Verdict,
}

/// How fact recall's threshold `fact` compares with an in-context family's `c`.
pub fn order(fact: Threshold, c: Threshold) -> Order {
    match (fact, c) {
        (Threshold::Below(_), Threshold::Below(_))
        | (Threshold::AtLeast(_), Threshold::AtLeast(_)) => Order::Tie,
        (Threshold::AtLeast(_), _) => Order::NotFirst,
        (Threshold::At(f), Threshold::AtLeast(v)) if f >= v - 1e-9 => Order::Tie,
        _ => {
            let (f, v) = (fact.value().unwrap_or(0.0), c.value().unwrap_or(0.0));
            if f < v - 1e-9 {
                Order::FactFirst
            } else {
                Order::NotFirst
            }
        }
    }
}

/// Compares fact recall's 5 % threshold with those of the in-context families along a curve:
/// [`Verdict::Holds`] when fact recall drops first against every usable in-context family,
/// [`Verdict::DoesNotHold`] when against none (and the grid separates at least one),
/// [`Verdict::Partly`] in between, [`Verdict::Undecided`] when nothing can be compared.
pub fn verdict(base: &Baseline<'_>, curve: &Curve<'_>) -> CurveVerdict {
    let fact = base.family_threshold(curve, "fact_recall");
    let context: Vec<(String, Threshold, Order)> = CONTEXT_FAMILIES
        .iter()
        .map(|f| {
            let t = base.family_threshold(curve, f);
            (f.to_string(), t, order(fact, t))
        })
        .filter(|(_, t, _)| t.value().is_some())
        .collect();
    let verdict = if fact.value().is_none() || context.is_empty() {
        Verdict::Undecided
    } else {
        let first = context.iter().filter(|c| c.2 == Order::FactFirst).count();
        let not_first = context.iter().filter(|c| c.2 == Order::NotFirst).count();
        if first == context.len() {
            Verdict::Holds
        } else if first == 0 && not_first == 0 {
            Verdict::Undecided
        } else if first == 0 {
            Verdict::DoesNotHold
        } else {
            Verdict::Partly
        }
    };
    CurveVerdict {
        method: curve.method.clone(),
        scope: curve.scope.clone(),
        fact,
        context,
        verdict,
    }
}
