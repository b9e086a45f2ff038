//! The compressed checkpoint (docs/compressed.md): lossless round trips in every format, codec
//! and dtype (sha256 of the decompressed file equal to the source's), models loading from it with
//! packed linear layers and the same logits, a plain dense bf16 file that the `safetensors` crate
//! reads, and bad input (indices outside the matrix, counts that disagree with the shape,
//! truncated arrays, corrupted codec streams, inconsistent metadata) giving errors that name the
//! file and tensor, never a panic.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secateurs_model::arch::NamedTensor;
use secateurs_model::compressed::{
    self, compress, source_header_of, CompressOptions, CompressedSource, Stored,
};
use secateurs_model::export::{write_safetensors, write_safetensors_f32, RawTensor};
use secateurs_model::model::{ModelFiles, ModelFormat};
use secateurs_model::safetensors::{parse_raw_header, SafetensorsSource};
use secateurs_model::weights::{TensorF32, WeightSource};
use secateurs_model::{ModelError, Result};
use secateurs_sparse::{Format, ValueDtype};
use sha2::{Digest, Sha256};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    format!("{:x}", Sha256::digest(&bytes))
}

/// Copies everything but the weights of a model directory.
fn copy_side_files(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        if !name.ends_with(".safetensors") {
            std::fs::copy(e.path(), dst.join(name)).unwrap();
        }
    }
}

#[derive(Clone, Copy)]
enum Prune {
    /// Half of each row, smallest magnitudes.
    Half,
    /// 70% of each row.
    Seventy,
    /// The 2 smallest of every 4.
    TwoFour,
}

fn prune(w: &mut [f32], cols: usize, how: Prune) {
    match how {
        Prune::Half | Prune::Seventy => {
            let frac = if matches!(how, Prune::Half) { 0.5 } else { 0.7 };
            for row in w.chunks_mut(cols) {
                let mut idx: Vec<usize> = (0..cols).collect();
                idx.sort_by(|&a, &b| row[a].abs().total_cmp(&row[b].abs()));
                for &i in &idx[..(cols as f64 * frac) as usize] {
                    row[i] = 0.0;
                }
            }
        }
        Prune::TwoFour => {
            for g in w.chunks_mut(4) {
                let mut idx = [0usize, 1, 2, 3];
                idx.sort_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()));
                g[idx[0]] = 0.0;
                g[idx[1]] = 0.0;
            }
        }
    }
}

/// The tiny-llama fixture with its decoder linear weights pruned by magnitude, written the way
/// `secateurs prune` writes checkpoints (f32 safetensors).
fn pruned_fixture(how: Prune) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src_dir = fixture("tiny-llama");
    copy_side_files(&src_dir, dir.path());
    let src = SafetensorsSource::open_dir(&src_dir).unwrap();
    let mut tensors = Vec::new();
    for name in src.names() {
        let mut t = src.load(&name).unwrap();
        if compressed::is_sparse_candidate(&name, &t.shape) {
            prune(&mut t.data, t.shape[1], how);
        }
        tensors.push(NamedTensor {
            name,
            shape: t.shape,
            data: Cow::Owned(t.data),
        });
    }
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert(
        "secateurs.method".to_string(),
        "magnitude (test)".to_string(),
    );
    write_safetensors_f32(&dir.path().join("model.safetensors"), &tensors, &meta).unwrap();
    dir
}

/// Compresses the model directory `src` into a new directory (config and tokenizer copied).
fn compress_dir(src: &Path, opts: CompressOptions) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    copy_side_files(src, out.path());
    let files = ModelFiles::open(src).unwrap();
    let header = source_header_of(&src.join("model.safetensors")).unwrap();
    compress(
        files.weights.as_ref(),
        &out.path().join("model.safetensors"),
        &opts,
        header.as_deref(),
        &mut |_, _| {},
    )
    .unwrap();
    out
}

fn opts(format: Option<Format>, dtype: Option<ValueDtype>, compress: bool) -> CompressOptions {
    CompressOptions {
        format,
        dtype,
        compress,
        level: 3,
    }
}

#[test]
fn every_format_and_codec_round_trips_bit_for_bit() {
    for (how, formats) in [
        (
            Prune::Half,
            vec![
                None,
                Some(Format::Dense),
                Some(Format::Coo),
                Some(Format::Csr),
                Some(Format::Bitmask),
            ],
        ),
        (
            Prune::TwoFour,
            vec![None, Some(Format::Nm), Some(Format::Bitmask)],
        ),
        (Prune::Seventy, vec![None, Some(Format::Csr)]),
    ] {
        let src = pruned_fixture(how);
        let src_file = src.path().join("model.safetensors");
        let dense = SafetensorsSource::open_dir(src.path()).unwrap();
        for format in formats {
            for codec in [true, false] {
                let what = format!("{format:?} codec {codec}");
                let out = compress_dir(src.path(), opts(format, None, codec));
                let c = CompressedSource::open_dir(out.path()).unwrap();
                assert_eq!(c.names(), dense.names(), "{what}");
                for name in dense.names() {
                    let a = dense.load(&name).unwrap();
                    let b = c.load(&name).unwrap();
                    assert_eq!(a.shape, b.shape, "{what} {name}");
                    let same = a
                        .data
                        .iter()
                        .zip(&b.data)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{what}: {name} differs");
                    if let (Some(f), true) =
                        (format, compressed::is_sparse_candidate(&name, &a.shape))
                    {
                        assert_eq!(
                            c.info(&name).unwrap().format,
                            f.to_string(),
                            "{what} {name}"
                        );
                    }
                }
                let dec = tempfile::tempdir().unwrap();
                let dec_file = dec.path().join("model.safetensors");
                assert!(
                    c.decompress(&dec_file, &mut |_, _| {}).unwrap(),
                    "{what}: verbatim"
                );
                assert_eq!(sha256(&dec_file), sha256(&src_file), "{what}: sha256");
            }
        }
    }
}

#[test]
fn compressed_is_smaller_and_nm_is_detected() {
    let src = pruned_fixture(Prune::TwoFour);
    let out = compress_dir(src.path(), opts(None, Some(ValueDtype::Bf16), true));
    let c = CompressedSource::open_dir(out.path()).unwrap();
    let info = c.info("model.layers.0.mlp.down_proj.weight").unwrap();
    assert!(info.format == "nm" || info.format == "bitmask", "{info:?}");
    let dense_bf16 = compress_dir(
        src.path(),
        opts(Some(Format::Dense), Some(ValueDtype::Bf16), false),
    );
    let a = std::fs::metadata(out.path().join("model.safetensors"))
        .unwrap()
        .len();
    let b = std::fs::metadata(dense_bf16.path().join("model.safetensors"))
        .unwrap()
        .len();
    // The tiny model is dominated by headers and its embedding, so only ask for a saving.
    assert!(a < b, "{a} >= {b}");
    let forced = compress_dir(
        src.path(),
        opts(Some(Format::Nm), Some(ValueDtype::Bf16), true),
    );
    let c = CompressedSource::open_dir(forced.path()).unwrap();
    assert_eq!(
        c.info("model.layers.1.self_attn.q_proj.weight").unwrap().nm,
        Some([2, 4])
    );
}

#[test]
fn model_loads_packed_layers_with_the_same_logits() {
    let src = pruned_fixture(Prune::Half);
    let out = compress_dir(src.path(), opts(None, None, true));
    let dense_files = ModelFiles::open(src.path()).unwrap();
    let files = ModelFiles::open(out.path()).unwrap();
    assert_eq!(files.format, ModelFormat::Compressed);
    assert!(files.tokenizer().is_ok());
    let dense = dense_files.load(&mut |_| {}).unwrap();
    let sparse = files.load(&mut |_| {}).unwrap();
    for layer in sparse.arch.layers() {
        for (kind, lin) in layer.linears() {
            assert!(!lin.is_dense_f32(), "{kind:?} stored {}", lin.storage());
        }
    }
    let tokens = [1u32, 5, 9, 33, 70, 2, 101, 17];
    let a = dense.logits(&tokens).unwrap();
    let b = sparse.logits(&tokens).unwrap();
    let scale = a.data.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = a
        .data
        .iter()
        .zip(&b.data)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= 1e-4 * scale.max(1.0),
        "max diff {diff} (scale {scale})"
    );
    // bf16 storage loads as packed bf16 (dense or sparse), never widened to f32.
    let out = compress_dir(src.path(), opts(None, Some(ValueDtype::Bf16), true));
    let files = ModelFiles::open(out.path()).unwrap();
    let m = files.load(&mut |_| {}).unwrap();
    let lin = &m.arch.layers()[0].linears()[0].1;
    assert!(lin.storage().ends_with("/bf16"), "{}", lin.storage());
}

#[test]
fn dense_bf16_without_codec_is_a_standard_safetensors_file() {
    let src = pruned_fixture(Prune::Half);
    let out = compress_dir(
        src.path(),
        opts(Some(Format::Dense), Some(ValueDtype::Bf16), false),
    );
    let file = out.path().join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let dense = SafetensorsSource::open_dir(src.path()).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    assert_eq!(names, dense.names());
    for name in dense.names() {
        let v = st.tensor(&name).unwrap();
        assert_eq!(v.dtype(), safetensors::Dtype::BF16, "{name}");
        let want = dense.load(&name).unwrap();
        assert_eq!(v.shape(), want.shape.as_slice());
        for (c, x) in v.data().chunks_exact(2).zip(&want.data) {
            let got = half::bf16::from_le_bytes([c[0], c[1]]);
            assert_eq!(got, half::bf16::from_f32(*x), "{name}");
        }
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta.get("format").map(String::as_str), Some("pt"));
    // Our plain loader reads it too, and so does the compressed one.
    let plain = SafetensorsSource::open_dir(out.path()).unwrap();
    assert_eq!(plain.names(), dense.names());
    // Compressing that file and decompressing gives it back byte for byte.
    let again = compress_dir(out.path(), opts(None, None, true));
    let dec = tempfile::tempdir().unwrap();
    let c = CompressedSource::open_dir(again.path()).unwrap();
    assert!(c
        .decompress(&dec.path().join("m.safetensors"), &mut |_, _| {})
        .unwrap());
    assert_eq!(sha256(&dec.path().join("m.safetensors")), sha256(&file));
}

// ---------------------------------------------------------------------------------------------
// In-memory sources for small synthetic checkpoints.

struct MemSource {
    label: PathBuf,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>, String)>,
}

impl MemSource {
    fn new(tensors: Vec<(&str, Vec<usize>, Vec<f32>, &str)>) -> Self {
        MemSource {
            label: PathBuf::from("memory"),
            tensors: tensors
                .into_iter()
                .map(|(n, s, d, t)| (n.to_string(), (s, d, t.to_string())))
                .collect(),
        }
    }
}

impl WeightSource for MemSource {
    fn label(&self) -> &Path {
        &self.label
    }
    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
    fn storage_dtype(&self, name: &str) -> Option<String> {
        self.tensors.get(name).map(|t| t.2.clone())
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|t| t.0.clone())
    }
    fn load(&self, name: &str) -> Result<TensorF32> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.label.clone(),
                tensor: name.into(),
            })?;
        Ok(TensorF32 {
            shape: t.0.clone(),
            data: t.1.clone(),
        })
    }
}

/// An 8x16 matrix with a 2:4 pattern (and so 50% zeros), values of varied magnitude.
fn matrix_24() -> Vec<f32> {
    (0..128)
        .map(|i| {
            if i % 4 == 1 || i % 4 == 2 {
                0.0
            } else {
                ((i * 37 % 23) as f32 - 11.0) * 0.013 + 0.001
            }
        })
        .collect()
}

const W: &str = "model.layers.0.mlp.up_proj.weight";
const NORM: &str = "model.norm.weight";

fn small_source() -> MemSource {
    MemSource::new(vec![
        (W, vec![8, 16], matrix_24(), "F32"),
        (
            NORM,
            vec![16],
            (0..16).map(|i| 1.0 + i as f32 / 64.0).collect(),
            "F32",
        ),
    ])
}

/// Writes a small compressed file in `format` (None = auto) and returns (dir, file).
fn small_file(format: Option<Format>, codec: bool) -> (tempfile::TempDir, PathBuf) {
    small_file_from(&small_source(), format, codec)
}

fn small_file_from(
    src: &MemSource,
    format: Option<Format>,
    codec: bool,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.safetensors");
    compress(src, &file, &opts(format, None, codec), None, &mut |_, _| {}).unwrap();
    (dir, file)
}

type Tensors = Vec<(String, String, Vec<usize>, Vec<u8>)>;

/// Rewrites a safetensors file after `f` edits its metadata and tensors.
fn rewrite(file: &Path, f: impl FnOnce(&mut BTreeMap<String, String>, &mut Tensors)) {
    let bytes = std::fs::read(file).unwrap();
    let h = parse_raw_header(file, &bytes).unwrap();
    let mut meta = h.metadata.clone();
    let mut tensors: Tensors = h
        .tensors
        .iter()
        .map(|(n, e)| {
            (
                n.clone(),
                e.dtype.clone(),
                e.shape.clone(),
                bytes[e.begin..e.end].to_vec(),
            )
        })
        .collect();
    f(&mut meta, &mut tensors);
    let raw: Vec<RawTensor<'_>> = tensors
        .iter()
        .map(|(n, d, s, b)| RawTensor {
            name: n.clone(),
            dtype: d.clone(),
            shape: s.clone(),
            data: Cow::Borrowed(b.as_slice()),
        })
        .collect();
    write_safetensors(file, &raw, &meta).unwrap();
}

/// Edits the JSON metadata of tensor `name`.
fn edit_meta(
    meta: &mut BTreeMap<String, String>,
    name: &str,
    f: impl FnOnce(&mut serde_json::Value),
) {
    let key = format!("{}{name}", compressed::TENSOR_KEY_PREFIX);
    let mut v: serde_json::Value = serde_json::from_str(&meta[&key]).unwrap();
    f(&mut v);
    meta.insert(key, v.to_string());
}

fn part<'a>(tensors: &'a mut Tensors, name: &str) -> &'a mut (String, String, Vec<usize>, Vec<u8>) {
    tensors.iter_mut().find(|t| t.0 == name).unwrap()
}

/// Opens the file and loads every tensor every way; returns the first error's message.
fn load_error(file: &Path) -> String {
    let run = || -> Result<()> {
        let c = CompressedSource::open_file(file)?;
        for name in c.names() {
            c.load_stored(&name)?;
            c.load(&name)?;
            c.load_packed(&name)?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => panic!("{}: loaded without error", file.display()),
        Err(e) => e.to_string(),
    }
}

/// The error names the file and (when given) the tensor.
fn assert_names(msg: &str, file: &Path, tensor: Option<&str>, also: &str) {
    println!("{msg}");
    assert!(
        msg.contains(&file.display().to_string()),
        "file not named: {msg}"
    );
    if let Some(t) = tensor {
        assert!(msg.contains(t), "tensor not named: {msg}");
    }
    assert!(msg.contains(also), "expected '{also}' in: {msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn small_files_load_in_every_format() {
    let src = small_source();
    for format in [
        None,
        Some(Format::Dense),
        Some(Format::Coo),
        Some(Format::Csr),
        Some(Format::Bitmask),
        Some(Format::Nm),
    ] {
        for codec in [true, false] {
            let (_d, file) = small_file(format, codec);
            let c = CompressedSource::open_file(&file).unwrap();
            for name in src.names() {
                let a = src.load(&name).unwrap();
                assert_eq!(c.load(&name).unwrap(), a, "{format:?} {codec} {name}");
            }
            let p = c.load_packed(W).unwrap();
            match format {
                Some(Format::Dense) => assert!(p.is_none()),
                _ => assert_eq!(p.unwrap().to_dense(), src.load(W).unwrap().data),
            }
            assert!(c.load_packed(NORM).unwrap().is_none());
        }
    }
}

#[test]
fn negative_zeros_and_16_bit_sources_round_trip() {
    let mut w = matrix_24();
    w[1] = -0.0;
    w[6] = -0.0;
    let bf = |x: f32| half::bf16::from_f32(x).to_f32();
    let h = |x: f32| half::f16::from_f32(x).to_f32();
    let src = MemSource::new(vec![
        (W, vec![8, 16], w.clone(), "F32"),
        (
            "model.layers.0.mlp.down_proj.weight",
            vec![8, 16],
            matrix_24().into_iter().map(bf).collect(),
            "BF16",
        ),
        (
            "model.layers.0.mlp.gate_proj.weight",
            vec![8, 16],
            matrix_24().into_iter().map(h).collect(),
            "F16",
        ),
        (NORM, vec![16], vec![-0.0; 16], "BF16"),
    ]);
    for format in [
        None,
        Some(Format::Csr),
        Some(Format::Coo),
        Some(Format::Nm),
        Some(Format::Bitmask),
    ] {
        let (_d, file) = small_file_from(&src, format, true);
        let c = CompressedSource::open_file(&file).unwrap();
        for name in src.names() {
            let a = src.load(&name).unwrap();
            let b = c.load(&name).unwrap();
            assert!(
                a.data
                    .iter()
                    .zip(&b.data)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{format:?} {name}"
            );
        }
        assert_eq!(
            c.info("model.layers.0.mlp.down_proj.weight").unwrap().dtype,
            "BF16"
        );
        assert_eq!(
            c.info("model.layers.0.mlp.gate_proj.weight").unwrap().dtype,
            "F16"
        );
        // Decompressing writes each tensor back in its source dtype.
        let out = file.with_file_name("dec.safetensors");
        assert!(
            !c.decompress(&out, &mut |_, _| {}).unwrap(),
            "no source header recorded"
        );
        let d = std::fs::read(&out).unwrap();
        let h = parse_raw_header(&out, &d).unwrap();
        assert_eq!(
            h.tensors["model.layers.0.mlp.gate_proj.weight"].dtype,
            "F16"
        );
        assert_eq!(h.tensors[NORM].dtype, "BF16");
        assert_eq!(
            &d[h.tensors[NORM].begin..h.tensors[NORM].begin + 2],
            &[0x00, 0x80]
        );
    }
}

#[test]
fn overflowing_dtype_and_impossible_format_are_errors() {
    let src = MemSource::new(vec![(
        W,
        vec![2, 4],
        vec![1e6, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "F32",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.safetensors");
    let e = compress(
        &src,
        &file,
        &opts(None, Some(ValueDtype::F16), true),
        None,
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(W) && e.contains("overflows f16"), "{e}");
    let e = compress(
        &src,
        &file,
        &opts(Some(Format::Nm), None, true),
        None,
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(W) && e.contains("N:M"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn csr_column_outside_the_matrix() {
    let (_d, file) = small_file(Some(Format::Csr), false);
    rewrite(&file, |_, t| {
        let p = part(t, &format!("{W}.col_idx"));
        assert_eq!(p.1, "U16");
        p.3[0..2].copy_from_slice(&16u16.to_le_bytes());
    });
    assert_names(&load_error(&file), &file, Some(W), "outside the 16 columns");
}

#[test]
fn coo_row_outside_the_matrix() {
    let (_d, file) = small_file(Some(Format::Coo), false);
    rewrite(&file, |_, t| {
        let p = part(t, &format!("{W}.row_idx"));
        let n = p.3.len();
        p.3[n - 2..].copy_from_slice(&200u16.to_le_bytes());
    });
    assert_names(
        &load_error(&file),
        &file,
        Some(W),
        "outside the 8x16 matrix",
    );
}

#[test]
fn csr_offsets_beyond_the_entries() {
    let (_d, file) = small_file(Some(Format::Csr), false);
    rewrite(&file, |_, t| {
        let p = part(t, &format!("{W}.row_ptr"));
        p.3[4..8].copy_from_slice(&1000u32.to_le_bytes());
    });
    assert_names(&load_error(&file), &file, Some(W), "row 0");
}

#[test]
fn nm_positions_not_increasing() {
    let (_d, file) = small_file(Some(Format::Nm), false);
    rewrite(&file, |_, t| {
        let p = part(t, &format!("{W}.indices"));
        p.3[0] = 0; // positions 0, 0 in group 0
    });
    assert_names(&load_error(&file), &file, Some(W), "not increasing");
}

#[test]
fn bitmask_population_disagrees_with_values() {
    let (_d, file) = small_file(Some(Format::Bitmask), false);
    rewrite(&file, |_, t| {
        let p = part(t, &format!("{W}.mask"));
        p.3[0] |= 0b10; // column 1 is pruned; mark it stored
    });
    assert_names(&load_error(&file), &file, Some(W), "mask population");
    let (_d, file) = small_file(Some(Format::Bitmask), false);
    rewrite(&file, |_, t| {
        let p = part(t, &format!("{W}.mask"));
        p.3[7] |= 0x80; // bit 63: beyond the 16 columns
    });
    assert_names(&load_error(&file), &file, Some(W), "beyond column 16");
}

#[test]
fn counts_that_disagree_with_the_shape() {
    for (format, what) in [
        (Format::Csr, "row_ptr"),
        (Format::Bitmask, "mask"),
        (Format::Nm, "values"),
        (Format::Dense, "values"),
    ] {
        let (_d, file) = small_file(Some(format), true);
        rewrite(&file, |m, _| {
            edit_meta(m, W, |v| v["shape"] = serde_json::json!([9, 16]))
        });
        assert_names(
            &load_error(&file),
            &file,
            Some(W),
            &format!("part '{what}' has"),
        );
    }
    // A COO/CSR value count above the matrix size.
    let (_d, file) = small_file(Some(Format::Coo), false);
    rewrite(&file, |m, _| {
        edit_meta(m, W, |v| v["shape"] = serde_json::json!([2, 2]))
    });
    assert_names(&load_error(&file), &file, Some(W), "more than the 4");
}

#[test]
fn truncated_values_array() {
    // Raw: the stored tensor is shorter than the metadata says.
    let (_d, file) = small_file(Some(Format::Bitmask), false);
    rewrite(&file, |_, t| {
        let p = part(t, &format!("{W}.values"));
        p.3.truncate(p.3.len() - 8);
        p.2 = vec![p.3.len() / 4];
    });
    assert_names(
        &load_error(&file),
        &file,
        Some(W),
        "metadata says 64 elements",
    );
    // Raw, metadata agreeing with the truncated array: the mask population catches it.
    let (_d, file) = small_file(Some(Format::Bitmask), false);
    rewrite(&file, |m, t| {
        let p = part(t, &format!("{W}.values"));
        p.3.truncate(p.3.len() - 8);
        p.2 = vec![p.3.len() / 4];
        edit_meta(m, W, |v| v["parts"]["values"]["len"] = 62.into());
    });
    assert_names(&load_error(&file), &file, Some(W), "mask population");
    // Compressed: a stream cut short.
    let (_d, file) = small_file(Some(Format::Dense), true);
    rewrite(&file, |m, t| {
        let key = format!("{}{NORM}", compressed::TENSOR_KEY_PREFIX);
        assert!(m[&key].contains("zstd"), "{}", m[&key]);
        let p = part(t, &format!("{NORM}.values"));
        p.3.truncate(p.3.len() - 5);
        p.2 = vec![p.3.len()];
    });
    assert_names(&load_error(&file), &file, Some(NORM), "corrupt zstd stream");
    // The file itself cut short: the header names the file and field.
    let (_d, file) = small_file(None, true);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 10]).unwrap();
    assert_names(&load_error(&file), &file, None, "data_offsets");
}

#[test]
fn corrupted_codec_streams() {
    let (_d, file) = small_file(Some(Format::Dense), true);
    let stored = format!("{NORM}.values");
    // Flipped bytes inside the stream: the checksum (or the decoder) rejects it.
    for at in [6usize, 10, 14] {
        let f2 = file.with_file_name(format!("flip{at}.safetensors"));
        std::fs::copy(&file, &f2).unwrap();
        rewrite(&f2, |_, t| {
            let p = part(t, &stored);
            let i = at.min(p.3.len() - 1);
            p.3[i] ^= 0x5A;
        });
        let msg = load_error(&f2);
        assert_names(&msg, &f2, Some(NORM), "part 'values'");
    }
    // Not a zstd frame at all, and a frame without a checksum.
    let (_d, file) = small_file(Some(Format::Dense), true);
    rewrite(&file, |_, t| part(t, &stored).3[0] = 0);
    assert_names(&load_error(&file), &file, Some(NORM), "bad magic number");
    let (_d, file) = small_file(Some(Format::Dense), true);
    rewrite(&file, |_, t| {
        let raw: Vec<u8> = (0..16)
            .flat_map(|i| (1.0 + i as f32 / 64.0).to_le_bytes())
            .collect();
        let z = zstd::bulk::compress(&raw, 3).unwrap();
        let p = part(t, &stored);
        p.2 = vec![z.len()];
        p.3 = z;
    });
    assert_names(
        &load_error(&file),
        &file,
        Some(NORM),
        "without a content checksum",
    );
    // A valid stream that decodes to the wrong size.
    let (_d, file) = small_file(Some(Format::Dense), true);
    rewrite(&file, |m, _| {
        edit_meta(m, NORM, |v| {
            v["shape"] = serde_json::json!([15]);
            v["parts"]["values"]["len"] = 15.into();
        })
    });
    assert_names(&load_error(&file), &file, Some(NORM), "expected 60");
}

#[test]
fn inconsistent_metadata() {
    type Edit = Box<dyn Fn(&mut BTreeMap<String, String>, &mut Tensors)>;
    let cases: Vec<(Option<Format>, &str, Edit, &str)> = vec![
        (
            None,
            "unknown format",
            Box::new(|m, _| edit_meta(m, W, |v| v["format"] = "blocked".into())),
            "unknown format",
        ),
        (
            Some(Format::Bitmask),
            "missing part",
            Box::new(|m, _| {
                edit_meta(m, W, |v| {
                    v["parts"].as_object_mut().unwrap().remove("mask");
                })
            }),
            "needs a part 'mask'",
        ),
        (
            Some(Format::Bitmask),
            "unknown part",
            Box::new(|m, _| {
                edit_meta(m, W, |v| {
                    let mask = v["parts"]["mask"].clone();
                    v["parts"]["extra"] = mask;
                })
            }),
            "unknown part 'extra'",
        ),
        (
            Some(Format::Bitmask),
            "part of another format",
            Box::new(|m, _| {
                edit_meta(m, W, |v| {
                    let mask = v["parts"]["mask"].clone();
                    v["parts"]["row_ptr"] = mask;
                })
            }),
            "has no part 'row_ptr'",
        ),
        (
            Some(Format::Csr),
            "missing stored tensor",
            Box::new(|m, _| {
                edit_meta(m, W, |v| {
                    v["parts"]["row_ptr"]["tensor"] = "nowhere".into();
                })
            }),
            "'nowhere' is not in the file",
        ),
        (
            None,
            "orphan tensor",
            Box::new(|_, t| {
                t.push(("stray".into(), "U8".into(), vec![3], vec![1, 2, 3]));
            }),
            "no compressed-checkpoint metadata",
        ),
        (
            None,
            "invalid JSON",
            Box::new(|m, _| {
                m.insert(
                    format!("{}{W}", compressed::TENSOR_KEY_PREFIX),
                    "{not json".into(),
                );
            }),
            "invalid metadata",
        ),
        (
            None,
            "unknown field",
            Box::new(|m, _| edit_meta(m, W, |v| v["surprise"] = 1.into())),
            "unknown field",
        ),
        (
            None,
            "layout version",
            Box::new(|m, _| {
                m.insert(compressed::MARKER_KEY.into(), "2".into());
            }),
            "layout version '2'",
        ),
        (
            None,
            "no marker",
            Box::new(|m, _| {
                m.remove(compressed::MARKER_KEY);
            }),
            "not a secateurs compressed checkpoint",
        ),
        (
            Some(Format::Nm),
            "invalid pattern",
            Box::new(|m, _| edit_meta(m, W, |v| v["nm"] = serde_json::json!([4, 4]))),
            "N:M pattern 4:4",
        ),
        (
            Some(Format::Nm),
            "pattern mismatch",
            Box::new(|m, _| edit_meta(m, W, |v| v["nm"] = serde_json::json!([1, 4]))),
            "part 'values' has",
        ),
        (
            Some(Format::Csr),
            "nm on csr",
            Box::new(|m, _| edit_meta(m, W, |v| v["nm"] = serde_json::json!([2, 4]))),
            "has an 'nm' pattern",
        ),
        (
            None,
            "values dtype",
            Box::new(|m, _| edit_meta(m, W, |v| v["parts"]["values"]["dtype"] = "F16".into())),
            "element dtype 'F16'",
        ),
        (
            None,
            "value dtype",
            Box::new(|m, _| edit_meta(m, W, |v| v["dtype"] = "F64".into())),
            "'F64' is not F32",
        ),
        (
            None,
            "unknown codec",
            Box::new(|m, _| edit_meta(m, W, |v| v["parts"]["values"]["codec"] = "lz4".into())),
            "unknown codec 'lz4'",
        ),
        (
            Some(Format::Bitmask),
            "codec none with a U8 blob",
            Box::new(|m, _| edit_meta(m, W, |v| v["parts"]["values"]["codec"] = "zstd".into())),
            "must be a 1-D U8 tensor",
        ),
        (
            None,
            "huge shape",
            Box::new(|m, _| {
                edit_meta(m, W, |v| {
                    v["shape"] = serde_json::json!([1u64 << 40, 1u64 << 40])
                })
            }),
            "too large",
        ),
        (
            Some(Format::Csr),
            "1-D sparse",
            Box::new(|m, _| edit_meta(m, W, |v| v["shape"] = serde_json::json!([128]))),
            "needs a 2-D shape",
        ),
        (
            None,
            "shared part",
            Box::new(|m, _| {
                let key = format!("{}{W}", compressed::TENSOR_KEY_PREFIX);
                let w = m[&key].clone();
                m.insert(
                    format!(
                        "{}model.layers.0.mlp.copy.weight",
                        compressed::TENSOR_KEY_PREFIX
                    ),
                    w,
                );
            }),
            "is also a part of",
        ),
    ];
    for (format, what, edit, expect) in cases {
        let (_d, file) = small_file(format, false);
        rewrite(&file, |m, t| edit(m, t));
        let msg = load_error(&file);
        let tensor = match what {
            "orphan tensor" => Some("stray"),
            "layout version" | "no marker" => None,
            _ => Some(W),
        };
        assert_names(&msg, &file, tensor, expect);
    }
}

#[test]
fn negzero_and_non_finite_errors() {
    let mut w = matrix_24();
    w[1] = -0.0;
    let src = MemSource::new(vec![(W, vec![8, 16], w, "F32")]);
    let (_d, file) = small_file_from(&src, Some(Format::Csr), false);
    // Point the -0.0 marker at a stored weight.
    let f2 = file.with_file_name("nz.safetensors");
    std::fs::copy(&file, &f2).unwrap();
    rewrite(&f2, |_, t| {
        part(t, &format!("{W}.negzero")).3 = 0u64.to_le_bytes().to_vec()
    });
    assert_names(&load_error(&f2), &f2, Some(W), "holds a stored value");
    rewrite(&file, |_, t| {
        part(t, &format!("{W}.negzero")).3 = 500u64.to_le_bytes().to_vec()
    });
    assert_names(
        &load_error(&file),
        &file,
        Some(W),
        "outside the 128 weights",
    );
    // A NaN weight loads densely (the model's own checks catch it) but never as a packed layer.
    let (_d, file) = small_file(Some(Format::Csr), false);
    rewrite(&file, |_, t| {
        let p = part(t, &format!("{W}.values"));
        p.3[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let c = CompressedSource::open_file(&file).unwrap();
    let e = c.load_packed(W).unwrap_err().to_string();
    assert_names(&e, &file, Some(W), "non-finite");
    assert!(matches!(c.load_stored(W).unwrap(), Stored::Packed { .. }));
}

#[test]
fn model_files_reports_corrupt_compressed_checkpoints() {
    let src = pruned_fixture(Prune::Half);
    let out = compress_dir(src.path(), opts(Some(Format::Csr), None, false));
    let file = out.path().join("model.safetensors");
    let name = "model.layers.1.mlp.gate_proj.weight";
    rewrite(&file, |_, t| {
        let p = part(t, &format!("{name}.col_idx"));
        p.3[0..2].copy_from_slice(&999u16.to_le_bytes());
    });
    let files = ModelFiles::open(out.path()).unwrap();
    let e = files.load(&mut |_| {}).err().unwrap().to_string();
    assert_names(&e, &file, Some(name), "outside the 64 columns");
}

/// Writes the fuzz seed corpus: small compressed files in every format and codec.
/// `SEED_DIR=fuzz/corpus/load_compressed cargo test -p secateurs-model --test compressed -- --ignored write_fuzz_seeds`
#[test]
#[ignore = "writes the fuzz seed corpus into $SEED_DIR"]
fn write_fuzz_seeds() {
    let dir = PathBuf::from(std::env::var("SEED_DIR").expect("SEED_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut w = matrix_24();
    w[1] = -0.0;
    let src = MemSource::new(vec![
        (W, vec![8, 16], w, "F32"),
        (
            "model.layers.0.mlp.down_proj.weight",
            vec![4, 8],
            (0..32)
                .map(|i| {
                    if i % 2 == 0 {
                        0.0
                    } else {
                        i as f32 * 0.25 - 3.0
                    }
                })
                .collect(),
            "BF16",
        ),
        (
            NORM,
            vec![16],
            (0..16).map(|i| 1.0 + i as f32 / 64.0).collect(),
            "F32",
        ),
    ]);
    for (fname, format) in [
        ("auto", None),
        ("dense", Some(Format::Dense)),
        ("coo", Some(Format::Coo)),
        ("csr", Some(Format::Csr)),
        ("bitmask", Some(Format::Bitmask)),
        ("nm", Some(Format::Nm)),
    ] {
        for (cname, codec) in [("zstd", true), ("none", false)] {
            let file = dir.join(format!("{fname}-{cname}.safetensors"));
            compress(
                &src,
                &file,
                &opts(format, None, codec),
                None,
                &mut |_, _| {},
            )
            .unwrap();
            let c = CompressedSource::open_file(&file).unwrap();
            for name in src.names() {
                let a = src.load(&name).unwrap();
                let b = c.load(&name).unwrap();
                assert!(a
                    .data
                    .iter()
                    .zip(&b.data)
                    .all(|(x, y)| x.to_bits() == y.to_bits()));
            }
        }
    }
}

/// Prints how long opening and loading each model directory of `$LOAD_TIME_DIRS`
/// (colon-separated) takes, best of three (the numbers in docs/compressed.md).
#[test]
#[ignore = "timing; needs $LOAD_TIME_DIRS"]
fn load_times() {
    let dirs = std::env::var("LOAD_TIME_DIRS").expect("LOAD_TIME_DIRS");
    for dir in dirs.split(':') {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let files = ModelFiles::open(Path::new(dir)).unwrap();
            let model = files.load(&mut |_| {}).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            drop(model);
        }
        println!("{dir}: open + load {best:.2} s");
    }
}
