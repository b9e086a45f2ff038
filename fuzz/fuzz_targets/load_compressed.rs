//! Arbitrary bytes as a compressed checkpoint (docs/compressed.md): parse the safetensors header
//! and the per-tensor metadata, then decode every tensor as stored (building every packed matrix
//! through the sparse crate's validating constructors), as a packed layer, and densified. Any
//! outcome but an error or success (a panic, an out-of-bounds read, an abort) is a bug.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use secateurs_model::compressed::{CompressedSource, Stored};
use secateurs_model::weights::WeightSource;

/// Densify only tensors up to this many elements: a valid sparse matrix may describe a huge,
/// almost empty shape, whose dense buffer would only measure the allocator.
const MAX_DENSE: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = CompressedSource::from_bytes(Path::new("fuzz.safetensors"), data.to_vec()) else {
        return;
    };
    for name in src.names() {
        let shape = src.shape(&name).unwrap_or_default();
        let numel: usize = shape.iter().product();
        if let Ok(stored) = src.load_stored(&name) {
            match stored {
                Stored::Dense { values, .. } => assert_eq!(values.len(), numel),
                Stored::Packed { matrix, .. } => {
                    assert_eq!(matrix.shape(), (shape[0], shape[1]));
                }
            }
        }
        if let Ok(Some(m)) = src.load_packed(&name) {
            assert_eq!(m.shape(), (shape[0], shape[1]));
        }
        if numel <= MAX_DENSE {
            if let Ok(t) = src.load(&name) {
                assert_eq!(t.data.len(), numel);
                assert_eq!(t.shape, shape);
            }
        }
    }
});
