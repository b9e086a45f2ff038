//! Sweep results for secateurs (issue 3, items 3 and 4): what `secateurs sweep`,
//! `secateurs compare` and `secateurs report` read and write.
//!
//! * [`record`]: the settings that identify a point ([`PointKey`]) and what was measured at it
//!   ([`PointRecord`]);
//! * [`store`]: the resume cache `results.jsonl` and its flat companion `results.csv`;
//! * [`grid`]: sparsity grids (`0:0.9:0.1`, `0.5,0.7`), N:M lists and method/scope
//!   combinations;
//! * [`analysis`]: accuracy relative to dense, the "largest sparsity whose relative drop is
//!   ≤ 5 %" per task and family, tasks flagged at chance, and the verdict on the seed's finding;
//! * [`plot`]: PNG and SVG line charts (plotters, with an embedded font);
//! * [`doc`] and [`report`]: `report.md` and a self-contained `report.html`.
//!
//! This crate knows nothing of models: the CLI runs the points and hands it records.

pub mod analysis;
pub mod doc;
pub mod error;
pub mod grid;
pub mod plot;
pub mod record;
pub mod report;
pub mod store;

pub use error::{write_atomic, ReportError, Result};
pub use record::{
    fingerprint_model, fmt_sparsity, now_unix, CalibrationKey, PointKey, PointRecord, TaskScore,
    DENSE,
};
pub use report::{
    write_compare_report, write_report, write_sweep_report, ReportKind, ReportOutput,
};
pub use store::{ResultsStore, RESULTS_CSV, RESULTS_JSONL};
