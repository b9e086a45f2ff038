//! Development helper: fetch everything into the cache named by the
//! environment and print progress events and the report.
//!
//! `SECATEURS_CACHE=/tmp/secateurs-cache cargo run -p secateurs-data --example fetch [--keep]`

use secateurs_data::{fetch_all_with, Cache, DataError, FetchOptions};

fn main() -> Result<(), DataError> {
    let cache = Cache::from_env()?;
    let opts = FetchOptions {
        keep_downloads: std::env::args().any(|a| a == "--keep"),
        ..FetchOptions::default()
    };
    println!("cache: {}", cache.root().display());
    let report = fetch_all_with(&cache, &opts, &mut |ev| println!("{ev:?}"));
    for a in &report.artifacts {
        println!(
            "{}: skipped={} files={} bytes={} in {:.1?}",
            a.what,
            a.skipped,
            a.files.len(),
            a.bytes,
            a.elapsed
        );
    }
    for f in &report.failures {
        println!("{}: FAILED: {}", f.what, f.error);
    }
    println!("total {:.1?}", report.elapsed);
    Ok(())
}
