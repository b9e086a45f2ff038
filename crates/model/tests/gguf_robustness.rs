//! Corrupt and truncated GGUF files must produce a one-line error naming
//! the file (and the field), never a panic, and never a large allocation.
//!
//! Mutations are applied to the gguf-py fixture `small.gguf` and to small
//! hand-written files. A counting global allocator checks that parsing never
//! makes a single allocation much larger than the file.

mod gguf_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use gguf_support::{fixture_bytes, Writer};
use proptest::prelude::*;
use secateurs_model::gguf::{GgufError, GgufFile};

/// Records the largest single allocation made by the current thread.
struct MaxAlloc;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|m| {
        if size > m.get() {
            m.set(size);
        }
    });
}

// SAFETY: forwards to the system allocator; only records sizes.
unsafe impl GlobalAlloc for MaxAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: MaxAlloc = MaxAlloc;

/// Parses `bytes` (named `name`) and returns the result plus the largest
/// allocation made while parsing (excluding the input buffer itself).
fn parse(name: &str, bytes: Vec<u8>) -> (Result<GgufFile, GgufError>, usize) {
    let len = bytes.len();
    LARGEST.with(|m| m.set(0));
    let r = GgufFile::from_bytes(name, bytes);
    let largest = LARGEST.with(|m| m.get());
    // Metadata is kept in typed vectors: a bounded factor of the file size.
    assert!(
        largest <= 4 * len + 4096,
        "{name}: allocation of {largest} bytes for a {len}-byte file"
    );
    (r, largest)
}

/// Parses and expects an error whose message names the file and contains
/// every string in `needles`.
fn expect_err(name: &str, bytes: Vec<u8>, needles: &[&str]) -> GgufError {
    let (r, _) = parse(name, bytes);
    let err = match r {
        Ok(_) => panic!("{name}: expected an error"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(
        msg.starts_with(name),
        "message does not start with the file name: {msg}"
    );
    assert!(!msg.contains('\n'), "message is not one line: {msg}");
    for n in needles {
        assert!(msg.contains(n), "message lacks {n:?}: {msg}");
    }
    err
}

fn small() -> Vec<u8> {
    fixture_bytes("small.gguf")
}

/// Byte offset of the tensor info of `name` (at its u64 name length).
fn tensor_info_pos(bytes: &[u8], name: &str) -> usize {
    let mut pat = (name.len() as u64).to_le_bytes().to_vec();
    pat.extend_from_slice(name.as_bytes());
    bytes
        .windows(pat.len())
        .position(|w| w == pat.as_slice())
        .expect("tensor info present")
}

/// Offsets of (n_dims, type, offset) fields of tensor `name` in `bytes`.
fn tensor_fields(bytes: &[u8], name: &str) -> (usize, usize, usize) {
    let p = tensor_info_pos(bytes, name) + 8 + name.len();
    let n_dims = u32::from_le_bytes(bytes[p..p + 4].try_into().expect("4 bytes")) as usize;
    let ty = p + 4 + 8 * n_dims;
    (p, ty, ty + 4)
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn set_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// End of the last tensor's data in the fixture: shorter files must fail.
fn required_len(bytes: &[u8]) -> usize {
    let f = GgufFile::from_bytes("full.gguf", bytes.to_vec()).expect("fixture parses");
    f.tensors()
        .iter()
        .map(|t| (f.data_offset() + t.offset + t.n_bytes()) as usize)
        .max()
        .unwrap_or(0)
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let bytes = small();
    let required = required_len(&bytes);
    let lens = (0..bytes.len().min(800)).chain((800..bytes.len()).step_by(7));
    for len in lens {
        let (r, _) = parse("trunc.gguf", bytes[..len].to_vec());
        if len < required {
            let err = r
                .err()
                .unwrap_or_else(|| panic!("truncation at {len} parsed"));
            let msg = err.to_string();
            assert!(msg.starts_with("trunc.gguf: "), "{msg}");
            assert!(!msg.contains('\n'));
        } else {
            assert!(r.is_ok(), "len {len} >= required {required} should parse");
        }
    }
}

#[test]
fn truncated_files_on_disk_are_errors() {
    let bytes = small();
    let required = required_len(&bytes);
    let dir = tempfile::tempdir().expect("tempdir");
    for len in [0, 3, 4, 7, 12, 23, 24, 25, 100, 1000, required - 1] {
        let path = dir.path().join(format!("cut{len}.gguf"));
        std::fs::write(&path, &bytes[..len]).expect("write");
        let err = GgufFile::open(&path).expect_err("truncated");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn truncated_data_message_names_tensor_and_range() {
    let bytes = small();
    let cut = bytes.len() - 40;
    let err = expect_err(
        "model.gguf",
        bytes[..cut].to_vec(),
        &["tensor 't.q5_0_unsupported'", "exceeds file size"],
    );
    assert!(matches!(err, GgufError::TensorDataOutOfBounds { .. }));
}

#[test]
fn bad_magic_and_versions() {
    let mut b = small();
    b[..4].copy_from_slice(b"GGML");
    let err = expect_err("magic.gguf", b, &["not a GGUF file"]);
    assert!(matches!(err, GgufError::BadMagic { .. }));
    for v in [0u32, 1, 4, u32::MAX] {
        let mut b = small();
        set_u32(&mut b, 4, v);
        let err = expect_err("ver.gguf", b, &["version", &v.to_string()]);
        assert!(matches!(err, GgufError::UnsupportedVersion { .. }));
    }
}

#[test]
fn huge_counts_and_lengths() {
    for v in [u64::MAX, 1 << 40, 1 << 20] {
        let mut b = small();
        set_u64(&mut b, 8, v);
        expect_err("ntensors.gguf", b, &["tensor count", &v.to_string()]);
        let mut b = small();
        set_u64(&mut b, 16, v);
        expect_err("nkv.gguf", b, &["metadata key/value count"]);
        // The first metadata key's string length.
        let mut b = small();
        set_u64(&mut b, 24, v);
        expect_err("strlen.gguf", b, &["metadata key #0", "truncated"]);
    }
    // A string length one past the end of the file.
    let mut b = small();
    let len = b.len() as u64;
    set_u64(&mut b, 24, len - 24);
    expect_err("strlen.gguf", b, &["string of"]);
    // An array claiming 2^40 u8 elements.
    let mut arr = 0u32.to_le_bytes().to_vec();
    arr.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let b = Writer::default().kv_raw("big", 9, &arr).finish();
    expect_err(
        "array.gguf",
        b,
        &["metadata 'big'", "array length", "1099511627776"],
    );
    // An array of 2^40 strings with each element's length missing.
    let mut arr = 8u32.to_le_bytes().to_vec();
    arr.extend_from_slice(&(1u64 << 40).to_le_bytes());
    arr.extend_from_slice(&[0; 64]);
    let b = Writer::default().kv_raw("strs", 9, &arr).finish();
    expect_err("array.gguf", b, &["metadata 'strs'"]);
}

#[test]
fn bad_tensor_infos() {
    let base = small();

    let (n_dims_at, type_at, offset_at) = tensor_fields(&base, "t.f32");
    let mut b = base.clone();
    set_u32(&mut b, type_at, 200);
    let err = expect_err(
        "model.gguf",
        b,
        &["tensor 't.f32'", "unknown ggml tensor type id 200"],
    );
    assert!(matches!(
        err,
        GgufError::UnknownTensorType { type_id: 200, .. }
    ));

    let mut b = base.clone();
    set_u32(&mut b, n_dims_at, 9);
    expect_err("model.gguf", b, &["tensor 't.f32' n_dims", "9"]);

    let mut b = base.clone();
    set_u64(&mut b, offset_at, 1 << 20);
    expect_err(
        "model.gguf",
        b,
        &["tensor 't.f32'", "data range", "exceeds file size"],
    );

    let mut b = base.clone();
    set_u64(&mut b, offset_at, u64::MAX - 31);
    expect_err("model.gguf", b, &["tensor 't.f32'", "exceeds file size"]);

    let mut b = base.clone();
    set_u64(&mut b, offset_at, 8);
    expect_err(
        "model.gguf",
        b,
        &["tensor 't.f32' data offset", "alignment 32"],
    );

    // First dim of a Q4_0 tensor that is not a multiple of 32.
    let (n_dims_at, _, _) = tensor_fields(&base, "t.q4_0");
    let mut b = base.clone();
    set_u64(&mut b, n_dims_at + 4, 33);
    expect_err("model.gguf", b, &["tensor 't.q4_0' dims", "block size 32"]);

    // A dim above i64::MAX, and dims whose product overflows.
    let b = Writer::default().tensor_at("x", &[u64::MAX], 0, 0).finish();
    expect_err("dims.gguf", b, &["tensor 'x' dim 0"]);
    let b = Writer::default()
        .tensor_at("x", &[1 << 32, 1 << 32, 1 << 32], 0, 0)
        .finish();
    expect_err("dims.gguf", b, &["tensor 'x' dims", "overflows"]);
    let b = Writer::default()
        .tensor_at("x", &[1 << 40, 1 << 20], 0, 0)
        .finish();
    expect_err("dims.gguf", b, &["tensor 'x'", "exceeds file size"]);

    // Duplicate tensor names.
    let b = Writer::default()
        .tensor("x", &[1], 0, &[0; 4])
        .tensor("x", &[1], 0, &[0; 4])
        .finish();
    expect_err("dup.gguf", b, &["duplicate tensor name 'x'"]);
}

#[test]
fn bad_metadata_values() {
    let b = Writer::default().kv_raw("k", 99, &[0; 8]).finish();
    expect_err(
        "vt.gguf",
        b,
        &["metadata 'k'", "unknown metadata value type id 99"],
    );

    let b = Writer::default().kv_raw("flag", 7, &[7]).finish();
    expect_err("bool.gguf", b, &["metadata 'flag'", "bool"]);

    let mut key = Vec::new();
    key.extend_from_slice(&2u64.to_le_bytes());
    key.extend_from_slice(&[0xFF, 0xFE]);
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&key);
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    expect_err("utf8.gguf", b, &["metadata key #0", "UTF-8"]);

    let b = Writer::default().kv_u32("a", 1).kv_u32("a", 2).finish();
    expect_err("dup.gguf", b, &["duplicate metadata key 'a'"]);

    for bad in [0u32, 3, 48] {
        let b = Writer::default().kv_u32("general.alignment", bad).finish();
        expect_err("align.gguf", b, &["general.alignment", "power of two"]);
    }
    let b = Writer::default().kv_str("general.alignment", "32").finish();
    expect_err("align.gguf", b, &["general.alignment"]);

    // Arrays nested 1000 deep: rejected without deep recursion.
    let mut v = Vec::new();
    for _ in 0..1000 {
        v.extend_from_slice(&9u32.to_le_bytes());
        v.extend_from_slice(&1u64.to_le_bytes());
    }
    v.extend_from_slice(&4u32.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    let b = Writer::default().kv_raw("deep", 9, &v).finish();
    expect_err("deep.gguf", b, &["metadata 'deep'", "nested"]);

    // A string value that is cut off: header 24 + key 9 + type 4 + len 8 + 3 bytes.
    let mut b = Writer::default().kv_str("s", "abcdef").finish();
    b.truncate(24 + 9 + 4 + 8 + 3);
    expect_err(
        "str.gguf",
        b,
        &["metadata 's'", "string of 6 bytes", "truncated"],
    );
}

#[test]
fn mutated_tensor_data_never_panics() {
    // Flip bytes inside the data section: parsing succeeds and every
    // supported tensor still dequantizes (NaN/inf are allowed values).
    let mut b = small();
    let n = b.len();
    for i in (n - 2000..n).step_by(3) {
        b[i] = 0xFF;
    }
    let f = GgufFile::from_bytes("data.gguf", b).expect("parses");
    for t in f.tensors() {
        let r = f.tensor_f32(&t.name);
        assert_eq!(r.is_ok(), t.ggml_type.is_dequantizable(), "{}", t.name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 768,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_mutations_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut b = small();
        for (idx, v) in &edits {
            let i = idx.index(b.len());
            b[i] = *v;
        }
        if let Some(c) = cut {
            let l = c.index(b.len());
            b.truncate(l);
        }
        let (r, _) = parse("fuzz.gguf", b);
        match r {
            Ok(f) => {
                for t in f.tensors() {
                    let _ = f.tensor_f32(&t.name);
                }
                let _ = secateurs_model::gguf::tokenizer_from_gguf(&f);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("fuzz.gguf: "), "{}", msg);
                prop_assert!(!msg.contains('\n'));
            }
        }
    }
}
