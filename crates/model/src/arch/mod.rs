//! The architecture abstraction: a causal LM is embed → decoder layers → final norm → head.
//!
//! Every family (LLaMA/Qwen2 today; OPT and GPT-NeoX later) implements [`Architecture`] and
//! [`DecoderLayer`]. The calibration loop of the pruning crate, perplexity and generation are
//! written once against these traits: they can run layer *i* alone on captured inputs and observe
//! the input of every linear layer inside it through a [`LinearObserver`].

pub mod llama;

use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::error::Result;
use crate::linear::Linear;
use crate::ops::Matrix;

/// Which linear layer of a decoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinearKind {
    /// Attention query projection.
    Q,
    /// Attention key projection.
    K,
    /// Attention value projection.
    V,
    /// Attention output projection.
    O,
    /// MLP gate projection (SwiGLU).
    Gate,
    /// MLP up projection.
    Up,
    /// MLP down projection.
    Down,
}

/// Whether a linear layer belongs to attention or to the MLP (seed 000's scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// q, k, v, o.
    Attention,
    /// gate, up, down.
    Mlp,
}

impl LinearKind {
    /// All kinds, in execution order.
    pub const ALL: [LinearKind; 7] = [
        LinearKind::Q,
        LinearKind::K,
        LinearKind::V,
        LinearKind::O,
        LinearKind::Gate,
        LinearKind::Up,
        LinearKind::Down,
    ];

    /// Attention or MLP.
    pub fn role(self) -> Role {
        match self {
            LinearKind::Q | LinearKind::K | LinearKind::V | LinearKind::O => Role::Attention,
            LinearKind::Gate | LinearKind::Up | LinearKind::Down => Role::Mlp,
        }
    }

    /// Short name (`q`, `k`, ..., `down`).
    pub fn name(self) -> &'static str {
        match self {
            LinearKind::Q => "q",
            LinearKind::K => "k",
            LinearKind::V => "v",
            LinearKind::O => "o",
            LinearKind::Gate => "gate",
            LinearKind::Up => "up",
            LinearKind::Down => "down",
        }
    }
}

/// Sees the input of each linear layer just before it runs (Wanda's column norms and SparseGPT's
/// Hessians are accumulated through this).
pub trait LinearObserver {
    /// `x` is the `(rows, in_features)` input of linear `kind`.
    fn observe(&mut self, kind: LinearKind, x: &Matrix);

    /// Whether every input this observer wants has been seen, so that
    /// [`DecoderLayer::observe_inputs`] may stop early (e.g. skip the MLP when only attention is
    /// being pruned).
    fn satisfied(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct NoObserver;

impl LinearObserver for NoObserver {
    fn observe(&mut self, _kind: LinearKind, _x: &Matrix) {}
}

/// Keys and values of one decoder layer for the positions seen so far, one contiguous
/// `(len, head_dim)` block per kv head: a decode step's attention then streams each head's keys
/// and values in order.
#[derive(Debug, Clone, Default)]
pub struct LayerKvCache {
    /// Keys per kv head, RoPE applied: `k[h]` is `(len, head_dim)`.
    pub k: Vec<Vec<f32>>,
    /// Values per kv head: `v[h]` is `(len, head_dim)`.
    pub v: Vec<Vec<f32>>,
    /// Number of cached positions.
    pub len: usize,
}

impl LayerKvCache {
    /// Appends the keys and values `k, v (rows, kv_heads*head_dim)` of the next positions.
    ///
    /// # Panics
    /// If `k` and `v` differ in length or are not whole rows, or the cache holds another
    /// number of heads.
    pub fn append(&mut self, k: &[f32], v: &[f32], kv_heads: usize, head_dim: usize) {
        let w = kv_heads * head_dim;
        assert!(
            k.len() == v.len() && w > 0 && k.len().is_multiple_of(w),
            "KV rows"
        );
        if self.k.is_empty() {
            self.k = vec![Vec::new(); kv_heads];
            self.v = vec![Vec::new(); kv_heads];
        }
        assert_eq!(self.k.len(), kv_heads, "KV cache head count");
        for (kr, vr) in k.chunks_exact(w).zip(v.chunks_exact(w)) {
            for h in 0..kv_heads {
                let cols = h * head_dim..(h + 1) * head_dim;
                self.k[h].extend_from_slice(&kr[cols.clone()]);
                self.v[h].extend_from_slice(&vr[cols]);
            }
        }
        self.len += k.len() / w;
    }

    /// Keeps the first `len` positions (a no-op when the cache holds no more).
    pub fn truncate(&mut self, len: usize) {
        if self.len > len {
            for h in self.k.iter_mut().chain(self.v.iter_mut()) {
                let width = h.len() / self.len;
                h.truncate(len * width);
            }
            self.len = len;
        }
    }
}

/// One sequence of a [`DecoderLayer::forward_batch`] call.
#[derive(Debug)]
pub struct SeqPart<'a> {
    /// Position of the sequence's first row.
    pub start: usize,
    /// Rows of the stacked input that belong to this sequence.
    pub rows: usize,
    /// The sequence's cache (`cache.len == start`); without one, `start` must be 0.
    pub cache: Option<&'a mut LayerKvCache>,
}

/// Checks that `parts` tile the rows of `x`, each with at least one row.
///
/// # Errors
/// [`ModelError::Input`](crate::error::ModelError::Input) naming the mismatch.
pub fn check_parts(x: &Matrix, parts: &[SeqPart<'_>]) -> Result<()> {
    let total: usize = parts.iter().map(|p| p.rows).sum();
    if total != x.rows || parts.iter().any(|p| p.rows == 0) {
        return Err(crate::ModelError::Input(format!(
            "a batch of {} sequences covers {total} rows (each needs at least one) but the input has {}",
            parts.len(),
            x.rows
        )));
    }
    Ok(())
}

/// One decoder layer.
pub trait DecoderLayer: Send + Sync {
    /// Runs the layer on `x (seq, hidden)` whose first row sits at position `start`. With a cache,
    /// attention also sees the cached positions `0..start` and the new keys/values are appended
    /// (`cache.len` must equal `start`); without one, `start` must be 0.
    ///
    /// # Errors
    /// Positions beyond what the model supports, or a cache whose length is not `start`.
    fn forward(
        &self,
        x: &Matrix,
        start: usize,
        cache: Option<&mut LayerKvCache>,
        observer: &mut dyn LinearObserver,
    ) -> Result<Matrix>;

    /// Runs the layer on several independent sequences at once. `x (Σ rows, hidden)` stacks
    /// their rows in the order of `parts`; part *i* owns the next `parts[i].rows` rows, sits at
    /// position `parts[i].start` and attends to its own cache only. The result stacks the
    /// outputs the same way and equals calling [`DecoderLayer::forward`] on each part.
    ///
    /// Families override this to run the linear layers once on all rows (one matrix product
    /// instead of one per sequence); this default runs the parts one by one.
    ///
    /// # Errors
    /// As [`DecoderLayer::forward`], or part sizes that do not add up to `x.rows`.
    fn forward_batch(&self, x: &Matrix, parts: &mut [SeqPart<'_>]) -> Result<Matrix> {
        check_parts(x, parts)?;
        let mut out = Vec::with_capacity(x.data.len());
        let mut r0 = 0;
        for p in parts.iter_mut() {
            let xi = Matrix::from_vec(
                p.rows,
                x.cols,
                x.data[r0 * x.cols..(r0 + p.rows) * x.cols].to_vec(),
            ); // (rows, hidden)
            let y = self.forward(&xi, p.start, p.cache.as_deref_mut(), &mut NoObserver)?;
            out.extend_from_slice(&y.data);
            r0 += p.rows;
        }
        Ok(Matrix::from_vec(x.rows, x.cols, out))
    }

    /// Shows the input of every linear layer to `observer`, computing only what those inputs
    /// need (the layer's output is not needed by a statistics pass, so e.g. the last projection
    /// can be skipped). Observations equal those of [`DecoderLayer::forward`] from position 0.
    ///
    /// # Errors
    /// As [`DecoderLayer::forward`].
    fn observe_inputs(&self, x: &Matrix, observer: &mut dyn LinearObserver) -> Result<()> {
        self.forward(x, 0, None, observer).map(|_| ())
    }

    /// The linear layers with their kinds, in execution order.
    fn linears(&self) -> Vec<(LinearKind, &Linear)>;

    /// Mutable access to one linear layer.
    fn linear_mut(&mut self, kind: LinearKind) -> Option<&mut Linear>;

    /// Hugging Face name of a linear module relative to the layer (`self_attn.q_proj`).
    fn linear_name(&self, kind: LinearKind) -> String;

    /// Every tensor of the layer under its Hugging Face name relative to the layer
    /// (`self_attn.q_proj.weight`, `input_layernorm.weight`, ...), with its shape.
    fn tensors(&self) -> Vec<NamedTensor<'_>>;
}

/// A borrowed tensor with its Hugging Face name and row-major shape.
pub struct NamedTensor<'a> {
    /// Hugging Face name.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Values (borrowed when stored dense f32, decoded from sparse storage otherwise).
    pub data: std::borrow::Cow<'a, [f32]>,
}

/// A causal language model: embed → layers → final norm → head.
pub trait Architecture: Send + Sync {
    /// Hyper-parameters.
    fn config(&self) -> &ModelConfig;

    /// Token embeddings `(tokens.len(), hidden)`; `start` is the position of the first token.
    ///
    /// # Errors
    /// A token id outside the vocabulary.
    fn embed(&self, tokens: &[u32], start: usize) -> Result<Matrix>;

    /// Decoder layers.
    fn layers(&self) -> &[Box<dyn DecoderLayer>];

    /// Mutable decoder layers (pruning rewrites their weights).
    fn layers_mut(&mut self) -> &mut [Box<dyn DecoderLayer>];

    /// Final normalization, `(rows, hidden) → (rows, hidden)`.
    fn final_norm(&self, x: &Matrix) -> Matrix;

    /// The language-model head, `(rows, hidden) → (rows, vocab)`.
    fn head(&self) -> &Linear;

    /// Mutable head (re-storing it in another value type).
    fn head_mut(&mut self) -> &mut Linear;

    /// Whether the head shares the embedding matrix.
    fn tied_head(&self) -> bool;

    /// Every tensor of the model under its Hugging Face name (a tied head is listed once, as the
    /// embedding), in a stable order: what an exported checkpoint contains.
    fn tensors(&self) -> Vec<NamedTensor<'_>>;

    /// The Hugging Face `config.json` describing this model.
    fn hf_config(&self) -> serde_json::Value;
}
