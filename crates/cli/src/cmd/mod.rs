//! One module per subcommand.

pub mod bench;
pub mod bench_prune;
pub mod demo;
pub mod fetch;
pub mod generate;
pub mod hub;
pub mod info;
pub mod logits;
pub mod perplexity;
pub mod prune;
pub mod sparsity;
