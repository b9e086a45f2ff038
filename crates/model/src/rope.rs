//! Rotary position embeddings (Su et al. 2021, "RoFormer", eq. 34) in the Hugging Face layout
//! ("rotate half": dimension i pairs with i + d/2), with optional LLaMA 3 frequency scaling
//! (Meta's Llama 3.1 `apply_scaling`, as in transformers' `_compute_llama3_parameters`).

use crate::config::{Llama3RopeScaling, ModelConfig};

/// Inverse frequencies `θ^(-2i/d)` for i in 0..d/2, in f32 as PyTorch computes them.
pub fn inv_freq(head_dim: usize, theta: f32, scaling: Option<&Llama3RopeScaling>) -> Vec<f32> {
    let base: Vec<f32> = (0..head_dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f32 / head_dim as f32))
        .collect();
    let Some(s) = scaling else {
        return base;
    };
    let old = s.original_max_position_embeddings as f32;
    let low_wavelen = old / s.low_freq_factor;
    let high_wavelen = old / s.high_freq_factor;
    base.into_iter()
        .map(|f| {
            let wavelen = 2.0 * std::f32::consts::PI / f;
            if wavelen < high_wavelen {
                f
            } else if wavelen > low_wavelen {
                f / s.factor
            } else {
                let smooth =
                    (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                (1.0 - smooth) * f / s.factor + smooth * f
            }
        })
        .collect()
}

/// Longest context we tabulate (LLaMA 3.1 declares 131072; 32768 keeps the tables at 8 MB).
pub const MAX_TABULATED: usize = 32768;

/// Precomputed cos/sin tables.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
    half: usize,
    /// `(positions, half)` cos values.
    cos: Vec<f32>,
    /// `(positions, half)` sin values.
    sin: Vec<f32>,
}

impl Rope {
    /// Tables for a model's head width and frequencies, covering [`Rope::max_positions`].
    pub fn new(config: &ModelConfig) -> Self {
        let inv_freq = inv_freq(
            config.head_dim,
            config.rope_theta,
            config.rope_scaling.as_ref(),
        );
        let mut rope = Rope {
            half: config.head_dim / 2,
            inv_freq,
            cos: Vec::new(),
            sin: Vec::new(),
        };
        rope.ensure(config.max_position_embeddings.min(MAX_TABULATED));
        rope
    }

    /// Number of positions the tables cover.
    pub fn max_positions(&self) -> usize {
        self.cos.len() / self.half.max(1)
    }

    fn ensure(&mut self, n: usize) {
        let have = self.cos.len() / self.half.max(1);
        for p in have..n {
            for &f in &self.inv_freq {
                let angle = p as f32 * f;
                self.cos.push(angle.cos());
                self.sin.push(angle.sin());
            }
        }
    }

    /// Rotates every head of every row of `x (rows, heads * head_dim)` in place; row r sits at
    /// position `start + r`, and `start + rows` must not exceed [`Rope::max_positions`].
    pub fn apply(&self, x: &mut [f32], rows: usize, heads: usize, start: usize) {
        let hd = 2 * self.half;
        let width = heads * hd;
        for r in 0..rows {
            let p = start + r;
            let cos = &self.cos[p * self.half..(p + 1) * self.half];
            let sin = &self.sin[p * self.half..(p + 1) * self.half];
            for h in 0..heads {
                let v = &mut x[r * width + h * hd..r * width + (h + 1) * hd];
                let (a, b) = v.split_at_mut(self.half);
                for i in 0..self.half {
                    let (x1, x2) = (a[i], b[i]);
                    a[i] = x1 * cos[i] - x2 * sin[i];
                    b[i] = x2 * cos[i] + x1 * sin[i];
                }
            }
        }
    }
}
