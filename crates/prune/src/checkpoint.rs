//! Resumable pruning: after each decoder layer the loop's state is saved in a checkpoint
//! directory — the pruned layer's tensors (`layer-N.safetensors`), the next layer's inputs
//! (`activations.f32`, little-endian) and `state.json` (settings fingerprint, next layer,
//! outcomes so far). Each file is written to a temporary name and renamed, so a run killed at any
//! moment leaves a consistent checkpoint. Because every step is deterministic, a resumed run
//! gives the same result as an uninterrupted one.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use secateurs_model::arch::LinearKind;
use secateurs_model::export::write_safetensors_f32;
use secateurs_model::model::CausalLm;
use secateurs_model::ops::Matrix;
use secateurs_model::safetensors::SafetensorsSource;
use secateurs_model::weights::WeightSource;
use serde_json::json;

use crate::calibrate::{LayerHook, MatrixOutcome};
use crate::error::{PruneError, Result};

/// A checkpoint directory tied to one set of settings (its fingerprint).
pub struct Checkpoint {
    dir: PathBuf,
    fingerprint: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PruneError + '_ {
    move |source| PruneError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a checkpoint restores.
pub struct Restored {
    /// First layer still to prune.
    pub next_layer: usize,
    /// Its inputs.
    pub inputs: Vec<Matrix>,
    /// Outcomes of the layers already pruned.
    pub outcomes: Vec<MatrixOutcome>,
}

impl Checkpoint {
    /// A checkpoint in `dir` (created on first save) for runs with this `fingerprint`.
    pub fn new(dir: PathBuf, fingerprint: String) -> Self {
        Checkpoint { dir, fingerprint }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_atomic(
        &self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let dest = self.dir.join(name);
        {
            let f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            write(&mut w).map_err(io(&tmp))?;
            w.into_inner()
                .map_err(|e| PruneError::Io {
                    path: tmp.clone(),
                    source: e.into_error(),
                })?
                .sync_all()
                .map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &dest).map_err(io(&dest))
    }

    /// Restores a previous run's progress into `model`, or `None` if there is no checkpoint.
    ///
    /// # Errors
    /// A checkpoint made with other settings (different fingerprint), or unreadable/corrupt
    /// checkpoint files (naming the file).
    pub fn restore(&self, model: &mut CausalLm) -> Result<Option<Restored>> {
        let state_path = self.dir.join("state.json");
        if !state_path.is_file() {
            return Ok(None);
        }
        let bad = |path: &Path, reason: String| PruneError::BadOption {
            option: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
        let state: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(&state_path, format!("invalid JSON: {e}")))?;
        if state["fingerprint"].as_str() != Some(self.fingerprint.as_str()) {
            return Err(bad(
                &state_path,
                "checkpoint was made with different settings or calibration data; remove it or run without --resume".into(),
            ));
        }
        let next_layer = state["next_layer"]
            .as_u64()
            .ok_or_else(|| bad(&state_path, "missing next_layer".into()))?
            as usize;
        let (n, rows, cols) = (
            state["inputs"]["n"].as_u64().unwrap_or(0) as usize,
            state["inputs"]["rows"].as_u64().unwrap_or(0) as usize,
            state["inputs"]["cols"].as_u64().unwrap_or(0) as usize,
        );
        let outcomes: Vec<MatrixOutcome> = serde_json::from_value(state["outcomes"].clone())
            .map_err(|e| bad(&state_path, format!("outcomes: {e}")))?;
        let layers = model.arch.layers().len();
        if next_layer > layers || cols != model.config().hidden_size {
            return Err(bad(&state_path, "does not match this model".into()));
        }
        for li in 0..next_layer {
            let path = self.dir.join(format!("layer-{li}.safetensors"));
            let src = SafetensorsSource::open_file(&path)?;
            let layer = &mut model.arch.layers_mut()[li];
            for kind in LinearKind::ALL {
                let name = format!("{}.weight", layer.linear_name(kind));
                let Some(lin) = layer.linear_mut(kind) else {
                    continue;
                };
                if src.contains(&name) {
                    let t = src.load_checked(&name, &[lin.out_features(), lin.in_features()])?;
                    lin.set_dense_weight(t.data);
                }
            }
        }
        let act_path = self.dir.join("activations.f32");
        let mut bytes = Vec::new();
        std::fs::File::open(&act_path)
            .map_err(io(&act_path))?
            .read_to_end(&mut bytes)
            .map_err(io(&act_path))?;
        if bytes.len() != n * rows * cols * 4 || n == 0 {
            return Err(bad(
                &act_path,
                format!(
                    "holds {} bytes, expected {}",
                    bytes.len(),
                    n * rows * cols * 4
                ),
            ));
        }
        let inputs = bytes
            .chunks_exact(rows * cols * 4)
            .map(|c| {
                Matrix::from_vec(
                    rows,
                    cols,
                    c.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                )
            })
            .collect();
        Ok(Some(Restored {
            next_layer,
            inputs,
            outcomes,
        }))
    }

    /// Removes the checkpoint directory (after a successful export).
    ///
    /// # Errors
    /// I/O errors.
    pub fn remove(&self) -> Result<()> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(io(&self.dir))?;
        }
        Ok(())
    }
}

impl LayerHook for Checkpoint {
    fn layer_done(
        &mut self,
        layer: usize,
        model: &CausalLm,
        inputs: &[Matrix],
        outcomes: &[MatrixOutcome],
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let tensors: Vec<_> = model.arch.layers()[layer]
            .tensors()
            .into_iter()
            .filter(|t| t.name.ends_with("_proj.weight"))
            .collect();
        let name = format!("layer-{layer}.safetensors");
        let tmp = self.dir.join(format!(".{name}.tmp"));
        write_safetensors_f32(&tmp, &tensors, &BTreeMap::new())?;
        std::fs::rename(&tmp, self.dir.join(&name)).map_err(io(&tmp))?;
        self.write_atomic("activations.f32", |w| {
            for m in inputs {
                let mut buf = Vec::with_capacity(m.data.len() * 4);
                for v in &m.data {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                w.write_all(&buf)?;
            }
            Ok(())
        })?;
        let (rows, cols) = inputs.first().map_or((0, 0), |m| (m.rows, m.cols));
        let state = json!({
            "fingerprint": self.fingerprint,
            "next_layer": layer + 1,
            "inputs": {"n": inputs.len(), "rows": rows, "cols": cols},
            "outcomes": outcomes,
        });
        self.write_atomic("state.json", |w| w.write_all(state.to_string().as_bytes()))
    }
}
