//! The cache directory (outside the repository) that holds the fetched model
//! and data sets, and the paths of every file inside it.
//!
//! Location, first match wins: `$SECATEURS_CACHE`, `$XDG_CACHE_HOME/secateurs`,
//! `$HOME/.cache/secateurs`. Empty variables count as unset.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::pins;

/// Environment variable that overrides the cache location.
pub const CACHE_ENV: &str = "SECATEURS_CACHE";

/// A cache root and the layout below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache rooted at `root` (created lazily by the fetch functions).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache named by the environment (see the module docs).
    ///
    /// # Errors
    /// [`DataError::NoCacheDir`] if none of `SECATEURS_CACHE`,
    /// `XDG_CACHE_HOME`, `HOME` is set.
    pub fn from_env() -> Result<Self, DataError> {
        Self::resolve(
            std::env::var_os(CACHE_ENV),
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
        )
        .map(Self::new)
        .ok_or(DataError::NoCacheDir)
    }

    /// Pure resolution rule behind [`Cache::from_env`], given the values of
    /// `SECATEURS_CACHE`, `XDG_CACHE_HOME` and `HOME`.
    pub fn resolve(
        secateurs_cache: Option<OsString>,
        xdg_cache_home: Option<OsString>,
        home: Option<OsString>,
    ) -> Option<PathBuf> {
        let set = |v: Option<OsString>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
        set(secateurs_cache)
            .or_else(|| set(xdg_cache_home).map(|p| p.join("secateurs")))
            .or_else(|| set(home).map(|p| p.join(".cache").join("secateurs")))
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/text`: the built text sets as plain files (see [`crate::squad::write_text_sets`]).
    pub fn text_dir(&self) -> PathBuf {
        self.root.join("text")
    }

    /// `<root>/text/eval.txt`: the default perplexity text.
    pub fn eval_text_file(&self) -> PathBuf {
        self.text_dir().join("eval.txt")
    }

    /// `<root>/text/calibration.txt`: the default calibration text.
    pub fn calibration_text_file(&self) -> PathBuf {
        self.text_dir().join("calibration.txt")
    }

    /// `<root>/models`.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// The default model: `<root>/models/SmolLM2-135M-Instruct.Q4_1.gguf`.
    pub fn model_gguf(&self) -> PathBuf {
        self.models_dir().join(pins::MODEL_GGUF_NAME)
    }

    /// `<root>/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `<root>/data/bigbench`: the extracted BIG-bench task files, laid out as
    /// below `bigbench/benchmark_tasks/` in the sdist.
    pub fn bigbench_dir(&self) -> PathBuf {
        self.data_dir().join("bigbench")
    }

    /// `<root>/data/bigbench/<task>/task.json`; `task` may contain `/` for
    /// subtasks (e.g. `cause_and_effect/one_sentence`).
    pub fn bigbench_task(&self, task: &str) -> PathBuf {
        let mut p = self.bigbench_dir();
        p.extend(task.split('/'));
        p.join("task.json")
    }

    /// `<root>/data/bigbench/squad_shifts`.
    pub fn squad_shifts_dir(&self) -> PathBuf {
        self.bigbench_dir().join("squad_shifts")
    }

    /// SQuAD v1.1 dev set (BIG-bench copy): `.../squad_shifts/squaddev_v1.1.json`.
    pub fn squad_dev(&self) -> PathBuf {
        self.squad_shifts_dir().join("squaddev_v1.1.json")
    }

    /// SQuADShifts Reddit set.
    pub fn squad_reddit(&self) -> PathBuf {
        self.squad_shifts_dir().join("reddit_v1.0.json")
    }

    /// SQuADShifts New York Times set.
    pub fn squad_nyt(&self) -> PathBuf {
        self.squad_shifts_dir().join("nyt_v1.0.json")
    }

    /// SQuADShifts Amazon reviews set.
    pub fn squad_amazon(&self) -> PathBuf {
        self.squad_shifts_dir().join("amazon_reviews_v1.0.json")
    }

    /// SQuADShifts new Wikipedia set.
    pub fn squad_new_wiki(&self) -> PathBuf {
        self.squad_shifts_dir().join("new_wiki_v1.0.json")
    }

    /// `<root>/data/world-countries/countries.json`.
    pub fn countries_json(&self) -> PathBuf {
        self.data_dir()
            .join("world-countries")
            .join("countries.json")
    }

    /// `<root>/manifest.json`: what was extracted, with sha256 of each file.
    pub fn manifest_path(&self) -> PathBuf {
        self.root.join("manifest.json")
    }

    /// `<root>/downloads`: downloaded archives kept on request.
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// `<root>/tmp`: scratch space for downloads in progress.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

/// Read a file produced by `secateurs fetch` as UTF-8 text.
///
/// # Errors
/// [`DataError::NotFetched`] if the file does not exist, [`DataError::Io`] on
/// any other read failure.
pub fn read_fetched(what: &str, path: &Path) -> Result<String, DataError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::NotFetched {
            what: what.to_owned(),
            path: path.to_owned(),
        }),
        Err(e) => Err(DataError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn explicit_env_wins() {
        let p = Cache::resolve(os("/c"), os("/x"), os("/h"));
        assert_eq!(p, Some(PathBuf::from("/c")));
    }

    #[test]
    fn xdg_then_home() {
        assert_eq!(
            Cache::resolve(None, os("/x"), os("/h")),
            Some(PathBuf::from("/x/secateurs"))
        );
        assert_eq!(
            Cache::resolve(os(""), os(""), os("/h")),
            Some(PathBuf::from("/h/.cache/secateurs"))
        );
        assert_eq!(Cache::resolve(None, None, None), None);
        assert_eq!(Cache::resolve(os(""), None, os("")), None);
    }

    #[test]
    fn layout() {
        let c = Cache::new("/r");
        assert_eq!(
            c.model_gguf(),
            PathBuf::from("/r/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        assert_eq!(
            c.squad_dev(),
            PathBuf::from("/r/data/bigbench/squad_shifts/squaddev_v1.1.json")
        );
        assert_eq!(
            c.countries_json(),
            PathBuf::from("/r/data/world-countries/countries.json")
        );
        assert_eq!(
            c.bigbench_task("cause_and_effect/one_sentence"),
            PathBuf::from("/r/data/bigbench/cause_and_effect/one_sentence/task.json")
        );
    }

    #[test]
    fn missing_file_is_not_fetched() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_fetched("SQuAD", &dir.path().join("nope.json")).unwrap_err();
        assert!(matches!(err, DataError::NotFetched { .. }));
        assert!(err.to_string().contains("secateurs fetch"));
    }
}
