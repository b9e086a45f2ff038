//! GGUF reader and dequantization tests against fixtures written by gguf-py
//! (`scripts/make_gguf_fixtures.py`): metadata of every value type, and
//! F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q4_K/Q6_K tensors compared with
//! `gguf.quants.dequantize` output.

mod gguf_support;

use std::path::Path;

use gguf_support::{fixture, fixture_bytes, Writer};
use secateurs_model::gguf::{GgmlType, GgufArray, GgufError, GgufFile, GgufValue};

struct Expected {
    name: String,
    ty: String,
    dims: Vec<u64>,
    shape: Vec<usize>,
    values: Option<Vec<f32>>,
}

fn expected() -> Vec<Expected> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&fixture_bytes("small_expected.json")).expect("manifest json");
    let raw = fixture_bytes("small_expected.f32");
    let all: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    manifest["tensors"]
        .as_array()
        .expect("tensors array")
        .iter()
        .map(|t| {
            let nums = |k: &str| -> Vec<u64> {
                t[k].as_array()
                    .expect(k)
                    .iter()
                    .map(|v| v.as_u64().expect("int"))
                    .collect()
            };
            let values = t.get("values_offset").map(|off| {
                let off = off.as_u64().expect("offset") as usize;
                let len = t["values_len"].as_u64().expect("len") as usize;
                all[off..off + len].to_vec()
            });
            Expected {
                name: t["name"].as_str().expect("name").to_string(),
                ty: t["type"].as_str().expect("type").to_string(),
                dims: nums("dims"),
                shape: nums("shape").into_iter().map(|d| d as usize).collect(),
                values,
            }
        })
        .collect()
}

fn assert_close(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-6 * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{name}[{i}]: got {g}, want {w}");
    }
}

fn check_tensors(file: &GgufFile) {
    let exp = expected();
    assert_eq!(file.tensors().len(), exp.len());
    for (info, e) in file.tensors().iter().zip(&exp) {
        assert_eq!(info.name, e.name);
        assert_eq!(info.ggml_type.name(), e.ty, "{}", e.name);
        assert_eq!(info.dims, e.dims, "{}", e.name);
        assert_eq!(info.shape(), e.shape, "{}", e.name);
        assert_eq!(info.offset % file.alignment(), 0);
        match &e.values {
            Some(want) => {
                let got = file.tensor_f32(&e.name).expect("dequantize");
                assert_close(&e.name, &got, want);
            }
            None => {
                let err = file.tensor_f32(&e.name).expect_err("unsupported type");
                assert!(
                    matches!(err, GgufError::UnsupportedTensorType { .. }),
                    "{err}"
                );
                let msg = err.to_string();
                let fname = file.path().display().to_string();
                assert!(
                    msg.contains(&fname) && msg.contains(&e.name) && msg.contains("Q5_0"),
                    "{msg}"
                );
            }
        }
    }
    // Every dequantizable type is covered by the fixture.
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        assert!(
            file.tensors().iter().any(|t| t.ggml_type == ty),
            "{ty} missing from fixture"
        );
    }
}

#[test]
fn reads_fixture_tensors_default_alignment() {
    let file = GgufFile::open(&fixture("small.gguf")).expect("open");
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.data_offset() % 32, 0);
    check_tensors(&file);
}

#[test]
fn reads_fixture_tensors_alignment_64() {
    let file = GgufFile::open(&fixture("small_align64.gguf")).expect("open");
    assert_eq!(file.alignment(), 64);
    assert_eq!(file.get_u32("general.alignment").expect("alignment"), 64);
    assert_eq!(file.data_offset() % 64, 0);
    check_tensors(&file);
}

#[test]
fn reads_fixture_metadata_of_every_type() {
    let file = GgufFile::open(&fixture("small.gguf")).expect("open");
    let m = file.metadata();
    assert_eq!(m.get("test.u8"), Some(&GgufValue::U8(200)));
    assert_eq!(m.get("test.i8"), Some(&GgufValue::I8(-100)));
    assert_eq!(m.get("test.u16"), Some(&GgufValue::U16(60000)));
    assert_eq!(m.get("test.i16"), Some(&GgufValue::I16(-30000)));
    assert_eq!(m.get("test.u32"), Some(&GgufValue::U32(4_000_000_000)));
    assert_eq!(m.get("test.i32"), Some(&GgufValue::I32(-2_000_000_000)));
    assert_eq!(m.get("test.f32"), Some(&GgufValue::F32(1.5)));
    assert_eq!(m.get("test.bool"), Some(&GgufValue::Bool(true)));
    assert_eq!(m.get("test.u64"), Some(&GgufValue::U64((1 << 63) + 5)));
    assert_eq!(m.get("test.i64"), Some(&GgufValue::I64(-(1 << 62))));
    assert_eq!(m.get("test.f64"), Some(&GgufValue::F64(-1234.5678)));
    assert_eq!(file.get_str("test.string").expect("str"), "héllo wörld ✓");
    assert_eq!(file.architecture().expect("arch"), "fixture");
    assert_eq!(file.get_u32("fixture.block_count").expect("block_count"), 2);
    assert_eq!(
        file.get_f32("fixture.rope.freq_base").expect("rope"),
        10000.0
    );
    assert_eq!(
        file.get_str_array("test.array_str").expect("strs"),
        ["a", "bc", "东京"]
    );
    assert_eq!(
        file.get_i32_array("test.array_i32").expect("i32s"),
        [1, -2, 3]
    );
    assert_eq!(
        file.get("test.array_f32"),
        Some(&GgufValue::Array(GgufArray::F32(vec![0.5, -0.25])))
    );
    assert_eq!(
        file.get("test.array_nested"),
        Some(&GgufValue::Array(GgufArray::Array(vec![
            GgufArray::I32(vec![1, 2]),
            GgufArray::I32(vec![3])
        ])))
    );
    // Integer helpers accept any integer type that fits.
    assert_eq!(file.get_u32("test.u8").expect("u8 as u32"), 200);
    assert_eq!(file.get_u64("test.u64").expect("u64"), (1 << 63) + 5);
    assert_eq!(file.get_i64("test.i8").expect("i8 as i64"), -100);
    assert!(file.get_bool("test.bool").expect("bool"));
}

#[test]
fn typed_getters_name_key_and_file() {
    let file = GgufFile::open(&fixture("small.gguf")).expect("open");
    let err = file.get_u32("no.such.key").expect_err("missing");
    assert!(matches!(err, GgufError::MissingKey { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("small.gguf") && msg.contains("no.such.key"),
        "{msg}"
    );

    let err = file.get_u32("test.string").expect_err("wrong type");
    let msg = err.to_string();
    assert!(matches!(err, GgufError::WrongType { .. }));
    assert!(
        msg.contains("small.gguf") && msg.contains("test.string") && msg.contains("string"),
        "{msg}"
    );
    // Negative or too large integers do not convert silently.
    assert!(file.get_u32("test.i8").is_err());
    assert!(file.get_u32("test.u64").is_err());
    assert!(file.get_str_array("test.array_i32").is_err());
    assert_eq!(file.get_u32_opt("no.such.key").expect("opt"), None);
    assert!(file.get_u32_opt("test.string").is_err());

    let err = file.tensor_f32("no.such.tensor").expect_err("no tensor");
    assert!(err.to_string().contains("no.such.tensor"));
    assert!(file.tensor_info("t.q4_k").is_some());
    assert!(file.tensor_info("nope").is_none());
}

#[test]
fn version_2_is_accepted_and_from_bytes_matches_open() {
    let mut bytes = fixture_bytes("small.gguf");
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let file = GgufFile::from_bytes("v2.gguf", bytes).expect("v2 parses");
    assert_eq!(file.version(), 2);
    assert_eq!(file.path(), Path::new("v2.gguf"));
    check_tensors(&file);
}

#[test]
fn hand_written_file_and_empty_array() {
    // A 2x32 Q8_0 tensor with d = 0.5 and q = i - 16, plus an empty array.
    let mut block = Vec::new();
    block.extend_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
    block.extend((0..32).map(|i| (i as i8 - 16) as u8));
    let mut data = block.clone();
    data.extend_from_slice(&block);
    let mut empty = 4u32.to_le_bytes().to_vec();
    empty.extend_from_slice(&0u64.to_le_bytes());
    let bytes = Writer::default()
        .kv_raw("empty", 9, &empty)
        .tensor("w", &[32, 2], 8, &data)
        .tensor("s", &[], 0, &1.25f32.to_le_bytes())
        .finish();
    let file = GgufFile::from_bytes("hand.gguf", bytes).expect("parses");
    assert_eq!(
        file.get("empty"),
        Some(&GgufValue::Array(GgufArray::U32(vec![])))
    );
    let w = file.tensor_f32("w").expect("q8_0");
    assert_eq!(file.tensor_info("w").map(|t| t.shape()), Some(vec![2, 32]));
    let want: Vec<f32> = (0..64).map(|i| ((i % 32) as f32 - 16.0) * 0.5).collect();
    assert_eq!(w, want);
    assert_eq!(file.tensor_f32("s").expect("scalar"), vec![1.25]);
}

#[test]
fn open_missing_file_names_it() {
    let err = GgufFile::open(Path::new("/nonexistent/dir/model.gguf")).expect_err("missing");
    assert!(matches!(err, GgufError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/dir/model.gguf"));
}
