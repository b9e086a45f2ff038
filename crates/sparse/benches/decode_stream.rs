//! The weight stream of one decode step of the default model, dense against sparse, without the
//! model (not criterion: one table).
//!
//! `cargo bench -p secateurs-sparse --bench decode_stream` builds random matrices of the default
//! model's decode shapes (30 layers × q, k, v, o 576/192 × 576, gate/up 1536 × 576, down
//! 576 × 1536, and the dense 49152 × 576 head), once dense f32 and once per sparse variant
//! (each matrix in the format that reads the fewest bytes, f32 values), and runs 40 steps of
//! them per timed run, the products posted as the model posts them (q/k/v and gate/up through
//! `gemv_many`, inside one `team::run`). The variants alternate within each round, after a
//! read-bandwidth probe, so they see the same machine. It prints each variant's best and median
//! step time, its GB/s, its speedup over dense beside the byte-ratio limit (the fraction of the
//! limit `bench decode` reports, for the weight stream alone: no attention, norms or sampling),
//! and every variant's GB/s in each round beside that round's probe.
//!
//! The `secateurs` binary keeps its weights on 2 MiB pages (crates/cli/src/hugepages.rs); run
//! this with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` to stream the way it does.
//!
//! `DECODE_STREAM=70,50,24` picks the other variants (70% and 50% unstructured, each weight
//! zero with that probability; 2:4; `bf16`: dense with bf16 values, everything else being f32),
//! `ROUNDS=10` the rounds.

mod common;

use common::{nm24, random};
use std::time::Instant;

use secateurs_sparse::bandwidth::measure_read_bandwidth_with;
use secateurs_sparse::kernels::{gemv_many, team, GemvWeight};
use secateurs_sparse::{Format, PackedMatrix, ValueDtype};

/// `(rows, cols)` of a layer's q, k, v, o, gate, up and down projections.
const SHAPES: [(usize, usize); 7] = [
    (576, 576),
    (192, 576),
    (192, 576),
    (576, 576),
    (1536, 576),
    (1536, 576),
    (576, 1536),
];
const LAYERS: usize = 30;
const STEPS: usize = 40;

/// One variant: every layer's seven matrices and the head.
struct Stream {
    name: String,
    layers: Vec<[PackedMatrix; 7]>,
    head: PackedMatrix,
}

impl Stream {
    fn build(name: &str) -> Stream {
        let (sparsity, format, dtype) = match name {
            "dense" => (Some(0.0), Some(Format::Dense), ValueDtype::F32),
            "bf16" => (Some(0.0), Some(Format::Dense), ValueDtype::Bf16),
            "24" => (None, None, ValueDtype::F32),
            s => {
                let pct: f64 = s.parse().unwrap_or_else(|_| {
                    panic!("DECODE_STREAM: {s:?} is not bf16, 24 or a percentage")
                });
                (Some(pct / 100.0), None, ValueDtype::F32)
            }
        };
        let layers = (0..LAYERS)
            .map(|l| {
                std::array::from_fn(|i| {
                    let (rows, cols) = SHAPES[i];
                    let seed = (l * 7 + i) as u64 + 1;
                    let w = match sparsity {
                        Some(s) => random(rows, cols, s, seed),
                        None => nm24(rows, cols, seed),
                    };
                    PackedMatrix::encode(&w, rows, cols, format, dtype).expect("encode")
                })
            })
            .collect();
        let head = PackedMatrix::encode(
            &random(49152, 576, 0.0, 99),
            49152,
            576,
            Some(Format::Dense),
            dtype,
        )
        .expect("encode head");
        Stream {
            name: name.to_string(),
            layers,
            head,
        }
    }

    fn nbytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|m| m.nbytes())
            .sum::<usize>()
            + self.head.nbytes()
    }

    /// One decode step's products: `x` (576) and `x2` (1536) stand in for the activations.
    fn step(&self, x: &[f32], x2: &[f32], y: &mut [f32]) {
        for [q, k, v, o, gate, up, down] in &self.layers {
            let (yq, rest) = y.split_at_mut(576);
            let (yk, rest) = rest.split_at_mut(192);
            let (yv, rest) = rest.split_at_mut(192);
            gemv_many(
                x,
                vec![
                    (GemvWeight::Packed(q), yq),
                    (GemvWeight::Packed(k), yk),
                    (GemvWeight::Packed(v), yv),
                ],
            );
            o.gemv(x, &mut rest[..576]);
            let (yg, rest) = rest.split_at_mut(1536);
            let (yu, rest) = rest.split_at_mut(1536);
            gemv_many(
                x,
                vec![(GemvWeight::Packed(gate), yg), (GemvWeight::Packed(up), yu)],
            );
            down.gemv(x2, &mut rest[..576]);
        }
        self.head.gemv(x, &mut y[..49152]); // (vocab,)
    }
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn main() {
    let list = std::env::var("DECODE_STREAM").unwrap_or_else(|_| "70,50,24".into());
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .max(1);
    let mut streams = vec![Stream::build("dense")];
    for name in list.split(',').filter(|s| !s.is_empty()) {
        streams.push(Stream::build(name));
    }
    let bytes: Vec<usize> = streams.iter().map(Stream::nbytes).collect();
    let x = random(1, 576, 0.0, 7); // (hidden,)
    let x2 = random(1, 1536, 0.0, 8); // (intermediate,)
    let mut y = vec![0f32; 49152];
    let mut probes = Vec::with_capacity(rounds);
    let mut times = vec![Vec::with_capacity(rounds); streams.len()];
    for _ in 0..rounds {
        probes.push(measure_read_bandwidth_with(512 << 20, 3));
        for (s, t) in streams.iter().zip(times.iter_mut()) {
            let start = Instant::now();
            team::run(|| {
                for _ in 0..STEPS {
                    s.step(&x, &x2, &mut y);
                }
            });
            t.push(start.elapsed().as_secs_f64() / STEPS as f64);
        }
    }
    println!(
        "threads {}, {rounds} rounds of {STEPS} steps per variant",
        rayon::current_num_threads()
    );
    for (i, s) in streams.iter().enumerate() {
        let per_round: Vec<String> = probes
            .iter()
            .zip(&times[i])
            .map(|(p, t)| {
                format!(
                    "{:.1} ({:.0}%)",
                    bytes[i] as f64 / t / 1e9,
                    100.0 * bytes[i] as f64 / t / 1e9 / p
                )
            })
            .collect();
        println!(
            "{} GB/s per round (of the round's probe): {}",
            s.name,
            per_round.join(", ")
        );
    }
    let probe_list: Vec<String> = probes.iter().map(|p| format!("{p:.1}")).collect();
    println!("probes, GB/s: {}", probe_list.join(", "));
    let dense = sorted(&times[0]);
    let (dense_best, dense_median) = (dense[0], dense[dense.len() / 2]);
    println!(
        "{:<8} {:>8} {:>9} {:>6} {:>9} {:>8} {:>6} {:>11}",
        "variant", "MB", "best ms", "GB/s", "median ms", "speedup", "limit", "of limit"
    );
    for (i, s) in streams.iter().enumerate() {
        let t = sorted(&times[i]);
        let (best, median) = (t[0], t[t.len() / 2]);
        let limit = bytes[0] as f64 / bytes[i] as f64;
        println!(
            "{:<8} {:>8.1} {:>9.3} {:>6.1} {:>9.3} {:>8.2} {:>6.2} {:>4.0}%/{:>4.0}%",
            s.name,
            bytes[i] as f64 / 1e6,
            best * 1e3,
            bytes[i] as f64 / best / 1e9,
            median * 1e3,
            dense_best / best,
            limit,
            100.0 * dense_best / best / limit,
            100.0 * dense_median / median / limit,
        );
    }
    println!("of limit: best/best, median/median");
}
