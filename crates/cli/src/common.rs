//! Helpers shared by the subcommands: model resolution, loading with a progress bar, thread pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use secateurs_data::Cache;
use secateurs_eval::{perplexity, PerplexityOptions, PerplexityReport};
use secateurs_model::model::{CausalLm, ModelFiles};

/// Sizes the global thread pool.
pub fn set_threads(n: usize) -> Result<()> {
    if n == 0 {
        bail!("--threads must be at least 1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("cannot configure the thread pool")
}

/// The cache named by $SECATEURS_CACHE (or the default location).
pub fn cache() -> Result<Cache> {
    Ok(Cache::from_env()?)
}

/// Resolves a MODEL argument: a local path, a Hugging Face repo id, or (None) the default model.
pub fn resolve_model(arg: Option<&str>) -> Result<PathBuf> {
    match arg {
        None => {
            let cache = cache()?;
            let p = cache.model_gguf();
            if !p.is_file() {
                bail!(
                    "no MODEL given and the default model is not in the cache ({}): run `secateurs fetch` first",
                    p.display()
                );
            }
            Ok(p)
        }
        Some(s) => {
            let p = Path::new(s);
            if p.exists() {
                return Ok(p.to_path_buf());
            }
            if looks_like_repo_id(s) {
                return crate::cmd::hub::download(s);
            }
            bail!("{s}: no such file or directory")
        }
    }
}

fn looks_like_repo_id(s: &str) -> bool {
    let mut parts = s.split('/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
        if !a.is_empty() && !b.is_empty() && !a.starts_with('.')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)))
}

/// A spinner or bar on stderr (hidden when stderr is not a terminal or `quiet`).
pub fn bar(len: u64, msg: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:32}] {pos}/{len} {elapsed_precise} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Opens and loads a model with a per-layer progress bar.
pub fn load_model(path: &Path, quiet: bool) -> Result<(ModelFiles, CausalLm)> {
    let files = ModelFiles::open(path)?;
    let pb = bar(files.config.num_layers as u64, "loading", quiet);
    let model = files.load(&mut |i| pb.set_position(i as u64 + 1))?;
    pb.finish_and_clear();
    Ok((files, model))
}

/// Perplexity with a progress bar labelled `label` (hidden when `quiet`).
pub fn perplexity_with_bar(
    model: &CausalLm,
    tokens: &[u32],
    opts: PerplexityOptions,
    label: &str,
    quiet: bool,
) -> Result<PerplexityReport> {
    let pb = bar(0, label, quiet);
    let report = perplexity(model, tokens, opts, &mut |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })?;
    pb.finish_and_clear();
    Ok(report)
}

/// Reads a text file, or the default evaluation text from the cache.
pub fn eval_text(path: Option<&Path>) -> Result<(String, String)> {
    match path {
        Some(p) => {
            let t = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read text", p.display()))?;
            Ok((t, p.display().to_string()))
        }
        None => {
            let t = secateurs_data::eval_text(&cache()?)?;
            Ok((
                t,
                "default: SQuAD v1.1 dev paragraphs (bigbench 1.0.0 squad_shifts)".into(),
            ))
        }
    }
}

/// Reads a calibration text file, or the default calibration text from the cache, and rejects
/// an empty one. Returns the text and the file it came from (`None`: the default text).
pub fn calibration_text(path: Option<&Path>) -> Result<(String, Option<String>)> {
    let (text, source) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read calibration text", p.display()))?,
            Some(p.display().to_string()),
        ),
        None => (secateurs_data::calibration_text(&cache()?)?, None),
    };
    if text.trim().is_empty() {
        bail!("calibration text is empty");
    }
    Ok((text, source))
}

/// How the linear layers are stored in memory once loaded (`--format`, `--dtype`), shared by
/// every command that runs a model.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// Re-store the linear layers: auto (per matrix, the format with the fewest bytes for its
    /// sparsity pattern), dense, csr, bitmask, nm or coo. Default: as loaded.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Value type of the re-stored weights (f32, f16 or bf16; the head follows it too).
    #[arg(long, value_name = "DTYPE")]
    pub dtype: Option<secateurs_sparse::ValueDtype>,
}

impl StorageArgs {
    /// The requested format: `None` = leave as loaded, `Some(None)` = automatic choice.
    ///
    /// # Errors
    /// An unknown format name.
    pub fn format(&self) -> Result<Option<Option<secateurs_sparse::Format>>> {
        match self.format.as_deref() {
            None => Ok(None),
            Some("auto") => Ok(Some(None)),
            Some(s) => Ok(Some(Some(
                s.parse::<secateurs_sparse::Format>()
                    .map_err(anyhow::Error::msg)?,
            ))),
        }
    }

    /// Applies the request to a loaded model; returns a one-line summary, or `None` when nothing
    /// was asked.
    ///
    /// # Errors
    /// An unknown format, or a matrix that does not fit it.
    pub fn apply(&self, model: &mut CausalLm) -> Result<Option<String>> {
        let format = self.format()?;
        if format.is_none() && self.dtype.is_none() {
            return Ok(None);
        }
        let dtype = self.dtype.unwrap_or(secateurs_sparse::ValueDtype::F32);
        let (before, after) = model.repack(format.unwrap_or(None), dtype)?;
        Ok(Some(format!(
            "weights re-stored as {} {dtype}: {:.1} MB -> {:.1} MB read per token",
            self.format.as_deref().unwrap_or("auto"),
            before as f64 / 1e6,
            after as f64 / 1e6
        )))
    }
}

/// `out` with `suffix` appended to its file name.
pub fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!("{name}{suffix}"))
}

/// Moves `tmp` to `out`, replacing an existing `out` only after the new one is complete (the old
/// one is moved aside to `OUT.old` first, so a failure never leaves neither).
///
/// # Errors
/// A rename or removal that fails, naming the path.
pub fn replace_dir(tmp: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        let old = sibling(out, ".old");
        if old.exists() {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("{}: cannot remove", old.display()))?;
        }
        std::fs::rename(out, &old)
            .with_context(|| format!("{}: cannot move aside", out.display()))?;
        std::fs::rename(tmp, out)
            .with_context(|| format!("{}: cannot rename into place", out.display()))?;
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("{}: cannot remove", old.display()))?;
    } else {
        std::fs::rename(tmp, out)
            .with_context(|| format!("{}: cannot rename into place", out.display()))?;
    }
    Ok(())
}
