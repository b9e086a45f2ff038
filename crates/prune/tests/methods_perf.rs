//! Timing of SparseGPT (Frantar & Alistarh 2023, Algorithm 1) at the default model's largest
//! shape: the down projection's inputs (65,536 tokens × 1536) observed in 512-token batches, and
//! one 576 × 1536 prune. Prints the numbers; asserts nothing about speed. Run with
//! `cargo test --release -p secateurs-prune --test methods_perf -- --ignored --nocapture`.

use std::time::Instant;

use secateurs_model::ops::Matrix;
use secateurs_prune::methods::{new_pruner, Method, SparseGptOptions};
use secateurs_prune::pattern::Pattern;

fn fill(data: &mut [f32], seed: &mut u64) {
    for v in data {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *v = ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
    }
}

#[test]
#[ignore = "timing; run explicitly"]
fn sparsegpt_down_proj_timing() {
    let (tokens, batch, cols, rows) = (65_536usize, 512usize, 1536usize, 576usize);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut x = Matrix {
        rows: batch,
        cols,
        data: vec![0.0; batch * cols],
    };
    for method in [Method::Wanda, Method::SparseGpt] {
        let mut p = new_pruner(method, cols, &SparseGptOptions::default());
        let mut fill_s = 0.0;
        let t0 = Instant::now();
        for _ in 0..tokens / batch {
            let tf = Instant::now();
            fill(&mut x.data, &mut seed);
            fill_s += tf.elapsed().as_secs_f64();
            p.observe(&x);
        }
        let observe_s = t0.elapsed().as_secs_f64() - fill_s;
        let mut w = vec![0.0f32; rows * cols];
        fill(&mut w, &mut seed);
        for pattern in [
            Pattern::Unstructured { ratio: 0.5 },
            Pattern::NOfM { n: 2, m: 4 },
        ] {
            let mut wc = w.clone();
            let t1 = Instant::now();
            let rep = p.prune("down_proj", &mut wc, rows, cols, &pattern).unwrap();
            println!(
                "{method}: observe {tokens}x{cols} in {batch}-token batches {observe_s:.2} s; prune {rows}x{cols} {pattern} {:.3} s (zeros {}/{}) [{} rayon threads]",
                t1.elapsed().as_secs_f64(),
                rep.zeros,
                rep.numel,
                rayon::current_num_threads()
            );
        }
    }
}
