//! One module per subcommand.

pub mod bench;
pub mod bench_decode;
pub mod bench_kernels;
pub mod bench_prune;
pub mod compare;
pub mod compress;
pub mod decompress;
pub mod demo;
pub mod eval;
pub mod fetch;
pub mod generate;
pub mod hub;
pub mod info;
pub mod logits;
pub mod perplexity;
pub mod prune;
pub mod sparsity;
pub mod sweep;
