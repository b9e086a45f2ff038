//! The LLaMA decoder (Touvron et al. 2023, "LLaMA", §2.2): pre-RMSNorm, rotary embeddings,
//! grouped-query attention (Ainslie et al. 2023) and a SwiGLU MLP, with optional q/k/v/o and MLP
//! biases (Qwen2 puts a bias on q/k/v). Numerics follow transformers' `modeling_llama.py` in f32.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use rayon::prelude::*;

use crate::arch::{
    check_parts, Architecture, DecoderLayer, LayerKvCache, LinearKind, LinearObserver, NamedTensor,
    NoObserver, Role, SeqPart,
};
use crate::attention;
use crate::config::{ArchKind, ModelConfig};
use crate::error::{ModelError, Result};
use crate::linear::Linear;
use crate::ops::{gemm_into, rms_norm, softmax_prefix, swiglu_inplace, Matrix, View};
use crate::rope::Rope;
use crate::weights::WeightSource;

/// Query rows processed together in causal attention: a block only reads keys up to its last
/// row, so prefill skips most of the masked upper triangle.
const QUERY_BLOCK: usize = 128;
/// Attention of at most this many query rows runs one row at a time
/// ([`LlamaLayer::attention_rows`]) instead of through GEMM.
const SINGLE_QUERY_MAX_ROWS: usize = 4;
/// Below this many multiply-adds per pass (rows × keys × heads × head_dim), the one-row-at-a-time
/// attention runs on one thread: the default model's heads over ~1800 keys take ~100 µs, more
/// than a fork/join costs.
const SINGLE_QUERY_PAR_MIN: usize = 1 << 20;

/// Keys or values for attention: `Rows` `(positions, kv_heads*hd)` as the projection gives them,
/// or `PerHead` as a [`LayerKvCache`] keeps them (`[kv head] (positions, hd)`).
#[derive(Clone, Copy)]
enum Kv<'a> {
    Rows(&'a [f32]),
    PerHead(&'a [Vec<f32>]),
}

impl<'a> Kv<'a> {
    /// Kv head `h` of `nkv` heads of width `hd`: its first element and the stride between
    /// positions.
    fn head(self, h: usize, nkv: usize, hd: usize) -> (&'a [f32], usize) {
        match self {
            Kv::Rows(d) => (&d[h * hd..], nkv * hd),
            Kv::PerHead(heads) => (&heads[h], hd),
        }
    }
}

/// One LLaMA decoder layer.
pub struct LlamaLayer {
    cfg: Arc<ModelConfig>,
    rope: Arc<Rope>,
    input_norm: Vec<f32>,
    post_norm: Vec<f32>,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    gate: Linear,
    up: Linear,
    down: Linear,
}

fn load_linear(src: &dyn WeightSource, name: &str, out: usize, inp: usize) -> Result<Linear> {
    let weight_name = format!("{name}.weight");
    let bias_name = format!("{name}.bias");
    let bias = if src.contains(&bias_name) {
        Some(src.load_checked(&bias_name, &[out])?.data)
    } else {
        None
    };
    if let Some(p) = src.load_packed(&weight_name)? {
        if p.shape() != (out, inp) {
            return Err(ModelError::Tensor {
                path: src.label().to_path_buf(),
                tensor: weight_name,
                reason: format!(
                    "shape {:?} does not match the config's [{out}, {inp}]",
                    p.shape()
                ),
            });
        }
        return Ok(Linear::packed(Arc::new(p), bias));
    }
    let w = src.load_checked(&weight_name, &[out, inp])?;
    Ok(Linear::dense(Arc::new(w.data), out, inp, bias))
}

impl LlamaLayer {
    /// Loads decoder layer `i` (`model.layers.{i}.*`) from a weight source.
    ///
    /// # Errors
    /// Missing tensors, wrong shapes or non-finite values (naming the tensor).
    pub fn load(
        cfg: Arc<ModelConfig>,
        rope: Arc<Rope>,
        src: &dyn WeightSource,
        i: usize,
    ) -> Result<Self> {
        let p = format!("model.layers.{i}");
        let (h, q_out, kv_out, inter) = (
            cfg.hidden_size,
            cfg.num_heads * cfg.head_dim,
            cfg.num_kv_heads * cfg.head_dim,
            cfg.intermediate_size,
        );
        Ok(LlamaLayer {
            input_norm: src
                .load_checked(&format!("{p}.input_layernorm.weight"), &[h])?
                .data,
            post_norm: src
                .load_checked(&format!("{p}.post_attention_layernorm.weight"), &[h])?
                .data,
            q: load_linear(src, &format!("{p}.self_attn.q_proj"), q_out, h)?,
            k: load_linear(src, &format!("{p}.self_attn.k_proj"), kv_out, h)?,
            v: load_linear(src, &format!("{p}.self_attn.v_proj"), kv_out, h)?,
            o: load_linear(src, &format!("{p}.self_attn.o_proj"), h, q_out)?,
            gate: load_linear(src, &format!("{p}.mlp.gate_proj"), inter, h)?,
            up: load_linear(src, &format!("{p}.mlp.up_proj"), inter, h)?,
            down: load_linear(src, &format!("{p}.mlp.down_proj"), h, inter)?,
            cfg,
            rope,
        })
    }

    /// The layer's forward pass over the stacked rows of one or more sequences (`parts`, see
    /// [`DecoderLayer::forward_batch`]): norms, projections and the MLP run once on all rows,
    /// rotary embeddings and attention per sequence. With `inputs_only`, stops once every linear
    /// input was observed (the returned matrix is then not the layer's output).
    fn run(
        &self,
        x: &Matrix,
        parts: &mut [SeqPart<'_>],
        obs: &mut dyn LinearObserver,
        inputs_only: bool,
    ) -> Result<Matrix> {
        check_parts(x, parts)?;
        for p in parts.iter() {
            if p.start + p.rows > self.rope.max_positions() {
                return Err(ModelError::Input(format!(
                    "positions up to {} exceed the {} this model supports",
                    p.start + p.rows,
                    self.rope.max_positions()
                )));
            }
            match &p.cache {
                Some(c) if c.len != p.start => {
                    return Err(ModelError::Input(format!(
                        "KV cache holds {} positions but the input starts at {}",
                        c.len, p.start
                    )))
                }
                None if p.start != 0 => {
                    return Err(ModelError::Input(
                        "an input that does not start at position 0 needs a KV cache".into(),
                    ))
                }
                _ => {}
            }
        }
        let (nh, nkv, hd) = (self.cfg.num_heads, self.cfg.num_kv_heads, self.cfg.head_dim);
        let (q_w, kv_w) = (nh * hd, nkv * hd);
        // Attention block.
        let h = rms_norm(x, &self.input_norm, self.cfg.rms_norm_eps); // (rows, hidden)

        // q, k and v read the same input.
        obs.observe(LinearKind::Q, &h);
        obs.observe(LinearKind::K, &h);
        obs.observe(LinearKind::V, &h);
        if inputs_only && obs.satisfied() {
            return Ok(h);
        }
        // q (rows, heads*hd), k and v (rows, kv_heads*hd).
        let [mut q, mut k, v] = Linear::forward_shared([&self.q, &self.k, &self.v], &h);

        // Row offset of each part in the stacked matrices.
        let offsets: Vec<usize> = parts
            .iter()
            .scan(0, |r, p| {
                let o = *r;
                *r += p.rows;
                Some(o)
            })
            .collect();
        for (p, &r0) in parts.iter().zip(&offsets) {
            let r1 = r0 + p.rows;
            self.rope
                .apply(&mut q.data[r0 * q_w..r1 * q_w], p.rows, nh, p.start);
            self.rope
                .apply(&mut k.data[r0 * kv_w..r1 * kv_w], p.rows, nkv, p.start);
        }
        // Attention of one part: (rows, heads*hd).
        let attend = |p: &mut SeqPart<'_>, r0: usize| -> Matrix {
            let r1 = r0 + p.rows;
            let (qp, kp, vp) = (
                &q.data[r0 * q_w..r1 * q_w],
                &k.data[r0 * kv_w..r1 * kv_w],
                &v.data[r0 * kv_w..r1 * kv_w],
            );
            match p.cache.as_deref_mut() {
                Some(c) => {
                    c.append(kp, vp, nkv, hd);
                    let (k, v) = (Kv::PerHead(&c.k), Kv::PerHead(&c.v));
                    self.attention(qp, p.rows, k, v, p.start)
                }
                None => self.attention(qp, p.rows, Kv::Rows(kp), Kv::Rows(vp), 0),
            }
        };
        let attn = if parts.len() == 1 {
            attend(&mut parts[0], 0)
        } else {
            let outs: Vec<Matrix> = parts
                .par_iter_mut()
                .zip(offsets.par_iter())
                .map(|(p, &r0)| attend(p, r0))
                .collect();
            let mut data = Vec::with_capacity(x.rows * q_w);
            for o in &outs {
                data.extend_from_slice(&o.data);
            }
            Matrix::from_vec(x.rows, q_w, data)
        }; // (rows, heads*hd)
        obs.observe(LinearKind::O, &attn);
        if inputs_only && obs.satisfied() {
            return Ok(attn);
        }
        let o = self.o.forward(&attn); // (seq, hidden)
        let mut x1 = x.clone();
        for (a, b) in x1.data.iter_mut().zip(&o.data) {
            *a += b;
        }
        // MLP block.
        let h2 = rms_norm(&x1, &self.post_norm, self.cfg.rms_norm_eps); // (seq, hidden)
        obs.observe(LinearKind::Gate, &h2);
        obs.observe(LinearKind::Up, &h2);
        // (seq, inter) each.
        let [mut g, u] = Linear::forward_shared([&self.gate, &self.up], &h2);
        swiglu_inplace(&mut g.data, &u.data);
        obs.observe(LinearKind::Down, &g);
        if inputs_only {
            // A statistics pass needs no output: skip the last projection.
            return Ok(x1);
        }
        let d = self.down.forward(&g); // (seq, hidden)
        for (a, b) in x1.data.iter_mut().zip(&d.data) {
            *a += b;
        }
        Ok(x1)
    }

    /// Causal grouped-query attention of `q (seq, heads*hd)` over the keys and values `k, v` of
    /// `total = start + seq` positions (either layout, see [`Kv`]), where query row r sits at
    /// position `start + r`.
    fn attention(&self, q: &[f32], seq: usize, k: Kv<'_>, v: Kv<'_>, start: usize) -> Matrix {
        let (nh, nkv, hd) = (self.cfg.num_heads, self.cfg.num_kv_heads, self.cfg.head_dim);
        let group = nh / nkv;
        let total = start + seq;
        let scale = 1.0 / (hd as f32).sqrt();
        let q_w = nh * hd;
        if seq <= SINGLE_QUERY_MAX_ROWS {
            return self.attention_rows(q, seq, k, v, start);
        }
        // One (seq, hd) output per head, computed in parallel, then interleaved.
        let per_head: Vec<Vec<f32>> = (0..nh)
            .into_par_iter()
            .map(|h| {
                let kvh = h / group;
                let ((kh, k_stride), (vh, v_stride)) = (k.head(kvh, nkv, hd), v.head(kvh, nkv, hd));
                let mut out = vec![0.0f32; seq * hd]; // (seq, hd)
                let mut scores = vec![0.0f32; QUERY_BLOCK.min(seq) * total]; // (block, keys)
                let mut r0 = 0;
                while r0 < seq {
                    let r1 = (r0 + QUERY_BLOCK).min(seq);
                    let rows = r1 - r0;
                    let keys = start + r1; // keys visible to the block's last row
                    let qv = View {
                        data: &q[r0 * q_w + h * hd..],
                        rows,
                        cols: hd,
                        row_stride: q_w,
                        col_stride: 1,
                    };
                    // (hd, keys): column j is key j of this kv head.
                    let kt = View {
                        data: kh,
                        rows: hd,
                        cols: keys,
                        row_stride: 1,
                        col_stride: k_stride,
                    };
                    gemm_into(&mut scores, keys, qv, kt, false, 1);
                    for r in 0..rows {
                        let row = &mut scores[r * keys..(r + 1) * keys];
                        for s in row.iter_mut() {
                            *s *= scale;
                        }
                        softmax_prefix(row, start + r0 + r + 1);
                    }
                    let vv = View {
                        data: vh,
                        rows: keys,
                        cols: hd,
                        row_stride: v_stride,
                        col_stride: 1,
                    };
                    gemm_into(
                        &mut out[r0 * hd..],
                        hd,
                        View::row_major(&scores, rows, keys),
                        vv,
                        false,
                        1,
                    );
                    r0 = r1;
                }
                out
            })
            .collect();
        let mut merged = Matrix::zeros(seq, q_w); // (seq, heads*hd)
        for (h, o) in per_head.iter().enumerate() {
            for r in 0..seq {
                merged.data[r * q_w + h * hd..r * q_w + (h + 1) * hd]
                    .copy_from_slice(&o[r * hd..(r + 1) * hd]);
            }
        }
        merged
    }

    /// [`LlamaLayer::attention`] one query row at a time ([`attention::group_query`] for the
    /// query heads of each kv head): the decode step's shape, a few rows over a cache of keys.
    /// The kv heads run on this thread unless the keys are many.
    fn attention_rows(&self, q: &[f32], seq: usize, k: Kv<'_>, v: Kv<'_>, start: usize) -> Matrix {
        let (nh, nkv, hd) = (self.cfg.num_heads, self.cfg.num_kv_heads, self.cfg.head_dim);
        let group_w = nh / nkv * hd; // the query heads of one kv head, side by side
        let scale = 1.0 / (hd as f32).sqrt();
        // (seq, heads*hd)
        let mut merged = Matrix::zeros(seq, nh * hd);
        // Row r's query heads of kv head g, block i = r * nkv + g: (group, hd) into the same
        // columns of merged.
        let group = |i: usize, scores: &mut Vec<f32>, out: &mut [f32]| {
            let (r, g) = (i / nkv, i % nkv);
            let ((kh, ks), (vh, vs)) = (k.head(g, nkv, hd), v.head(g, nkv, hd));
            let rows = |data, stride| attention::KvRows { data, stride };
            let qg = &q[i * group_w..(i + 1) * group_w];
            let keys = start + r + 1;
            attention::group_query(qg, hd, rows(kh, ks), rows(vh, vs), keys, scale, scores, out);
        };
        if seq * (start + seq) * nh * hd < SINGLE_QUERY_PAR_MIN {
            let parts: Vec<&mut [f32]> = merged.data.chunks_exact_mut(group_w).collect();
            thread_local! {
                /// Scores scratch of the team's threads, kept from one decode step to the next.
                static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
            }
            // `group` never runs a part inside another, so the borrow is never held twice.
            secateurs_sparse::kernels::team::for_each_part(parts, |i, out| {
                SCORES.with_borrow_mut(|s| group(i, s, out))
            });
        } else {
            merged
                .data
                .par_chunks_exact_mut(group_w)
                .enumerate()
                .for_each_init(Vec::new, |scores, (i, out)| group(i, scores, out));
        }
        merged
    }
}

impl DecoderLayer for LlamaLayer {
    fn forward(
        &self,
        x: &Matrix,
        start: usize,
        cache: Option<&mut LayerKvCache>,
        obs: &mut dyn LinearObserver,
    ) -> Result<Matrix> {
        let mut parts = [SeqPart {
            start,
            rows: x.rows,
            cache,
        }];
        self.run(x, &mut parts, obs, false)
    }

    fn forward_batch(&self, x: &Matrix, parts: &mut [SeqPart<'_>]) -> Result<Matrix> {
        self.run(x, parts, &mut NoObserver, false)
    }

    fn observe_inputs(&self, x: &Matrix, obs: &mut dyn LinearObserver) -> Result<()> {
        let mut parts = [SeqPart {
            start: 0,
            rows: x.rows,
            cache: None,
        }];
        self.run(x, &mut parts, obs, true).map(|_| ())
    }

    fn linears(&self) -> Vec<(LinearKind, &Linear)> {
        vec![
            (LinearKind::Q, &self.q),
            (LinearKind::K, &self.k),
            (LinearKind::V, &self.v),
            (LinearKind::O, &self.o),
            (LinearKind::Gate, &self.gate),
            (LinearKind::Up, &self.up),
            (LinearKind::Down, &self.down),
        ]
    }

    fn linear_name(&self, kind: LinearKind) -> String {
        let prefix = match kind.role() {
            Role::Attention => "self_attn",
            Role::Mlp => "mlp",
        };
        format!("{prefix}.{}_proj", kind.name())
    }

    fn tensors(&self) -> Vec<NamedTensor<'_>> {
        let h = self.cfg.hidden_size;
        let mut out = vec![
            NamedTensor {
                name: "input_layernorm.weight".into(),
                shape: vec![h],
                data: Cow::Borrowed(&self.input_norm),
            },
            NamedTensor {
                name: "post_attention_layernorm.weight".into(),
                shape: vec![h],
                data: Cow::Borrowed(&self.post_norm),
            },
        ];
        for (kind, lin) in self.linears() {
            let name = self.linear_name(kind);
            out.push(NamedTensor {
                name: format!("{name}.weight"),
                shape: vec![lin.out_features(), lin.in_features()],
                data: lin.dense_weight(),
            });
            if let Some(b) = lin.bias() {
                out.push(NamedTensor {
                    name: format!("{name}.bias"),
                    shape: vec![b.len()],
                    data: Cow::Borrowed(b),
                });
            }
        }
        out
    }

    fn linear_mut(&mut self, kind: LinearKind) -> Option<&mut Linear> {
        Some(match kind {
            LinearKind::Q => &mut self.q,
            LinearKind::K => &mut self.k,
            LinearKind::V => &mut self.v,
            LinearKind::O => &mut self.o,
            LinearKind::Gate => &mut self.gate,
            LinearKind::Up => &mut self.up,
            LinearKind::Down => &mut self.down,
        })
    }
}

/// A LLaMA-family causal LM.
pub struct LlamaModel {
    cfg: Arc<ModelConfig>,
    embed: Arc<Vec<f32>>, // (vocab, hidden)
    layers: Vec<Box<dyn DecoderLayer>>,
    norm: Vec<f32>,
    head: Linear,
    tied: bool,
}

impl LlamaModel {
    /// Loads every tensor from `src`; `progress(i)` is called after decoder layer i is loaded.
    ///
    /// # Errors
    /// Missing tensors, wrong shapes or non-finite values (naming the tensor).
    pub fn load(
        cfg: ModelConfig,
        src: &dyn WeightSource,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Self> {
        let cfg = Arc::new(cfg);
        let rope = Arc::new(Rope::new(&cfg));
        let (v, h) = (cfg.vocab_size, cfg.hidden_size);
        let embed = Arc::new(src.load_checked("model.embed_tokens.weight", &[v, h])?.data);
        let mut layers: Vec<Box<dyn DecoderLayer>> = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            layers.push(Box::new(LlamaLayer::load(
                cfg.clone(),
                rope.clone(),
                src,
                i,
            )?));
            progress(i);
        }
        let norm = src.load_checked("model.norm.weight", &[h])?.data;
        let (head, tied) = if src.contains("lm_head.weight") {
            (load_linear(src, "lm_head", v, h)?, false)
        } else if cfg.tie_word_embeddings {
            (Linear::dense(embed.clone(), v, h, None), true)
        } else {
            return Err(ModelError::MissingTensor {
                path: src.label().to_path_buf(),
                tensor: "lm_head.weight".into(),
            });
        };
        Ok(LlamaModel {
            cfg,
            embed,
            layers,
            norm,
            head,
            tied,
        })
    }

    /// The embedding matrix `(vocab, hidden)`.
    pub fn embedding(&self) -> &[f32] {
        &self.embed
    }
}

impl Architecture for LlamaModel {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn embed(&self, tokens: &[u32], _start: usize) -> Result<Matrix> {
        let h = self.cfg.hidden_size;
        let mut out = Matrix::zeros(tokens.len(), h); // (seq, hidden)
        for (r, &t) in tokens.iter().enumerate() {
            let t = t as usize;
            if t >= self.cfg.vocab_size {
                return Err(ModelError::Input(format!(
                    "token id {t} is outside the vocabulary of {}",
                    self.cfg.vocab_size
                )));
            }
            out.data[r * h..(r + 1) * h].copy_from_slice(&self.embed[t * h..(t + 1) * h]);
        }
        Ok(out)
    }

    fn layers(&self) -> &[Box<dyn DecoderLayer>] {
        &self.layers
    }

    fn layers_mut(&mut self) -> &mut [Box<dyn DecoderLayer>] {
        &mut self.layers
    }

    fn final_norm(&self, x: &Matrix) -> Matrix {
        rms_norm(x, &self.norm, self.cfg.rms_norm_eps)
    }

    fn head(&self) -> &Linear {
        &self.head
    }

    fn head_mut(&mut self) -> &mut Linear {
        &mut self.head
    }

    fn tied_head(&self) -> bool {
        self.tied
    }

    fn tensors(&self) -> Vec<NamedTensor<'_>> {
        let (v, h) = (self.cfg.vocab_size, self.cfg.hidden_size);
        let mut out = vec![NamedTensor {
            name: "model.embed_tokens.weight".into(),
            shape: vec![v, h],
            data: Cow::Borrowed(&self.embed),
        }];
        for (i, layer) in self.layers.iter().enumerate() {
            out.extend(layer.tensors().into_iter().map(|t| NamedTensor {
                name: format!("model.layers.{i}.{}", t.name),
                ..t
            }));
        }
        out.push(NamedTensor {
            name: "model.norm.weight".into(),
            shape: vec![h],
            data: Cow::Borrowed(&self.norm),
        });
        if !self.tied {
            out.push(NamedTensor {
                name: "lm_head.weight".into(),
                shape: vec![v, h],
                data: self.head.dense_weight(),
            });
        }
        out
    }

    fn hf_config(&self) -> serde_json::Value {
        let c = &self.cfg;
        let first = self.layers.first().map(|l| l.linears());
        let has_bias = |k: LinearKind| {
            first
                .as_ref()
                .and_then(|ls| ls.iter().find(|(kind, _)| *kind == k))
                .is_some_and(|(_, l)| l.bias().is_some())
        };
        let mut v = serde_json::json!({
            "architectures": [c.architecture],
            "model_type": match c.arch { ArchKind::Llama => "llama", ArchKind::Qwen2 => "qwen2" },
            "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_layers,
            "num_attention_heads": c.num_heads,
            "num_key_value_heads": c.num_kv_heads,
            "head_dim": c.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": c.rms_norm_eps,
            "rope_theta": c.rope_theta,
            "max_position_embeddings": c.max_position_embeddings,
            "tie_word_embeddings": self.tied,
            "bos_token_id": c.bos_token_id,
            "eos_token_id": c.eos_token_id,
            "torch_dtype": "float32",
        });
        if c.arch == ArchKind::Llama {
            v["attention_bias"] = has_bias(LinearKind::Q).into();
            v["mlp_bias"] = has_bias(LinearKind::Gate).into();
        } else {
            v["use_sliding_window"] = false.into();
        }
        if let Some(s) = &c.rope_scaling {
            v["rope_scaling"] = serde_json::json!({
                "rope_type": "llama3",
                "factor": s.factor,
                "low_freq_factor": s.low_freq_factor,
                "high_freq_factor": s.high_freq_factor,
                "original_max_position_embeddings": s.original_max_position_embeddings,
            });
        }
        v
    }
}
