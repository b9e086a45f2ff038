//! Bad input gives a one-line error naming the file and the field, a non-zero exit code, and no
//! panic: truncated safetensors, header offsets beyond the file, a GGUF tensor of unknown type,
//! an unsupported architecture, a missing tokenizer.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../model/tests/fixtures")
        .join(name)
}

/// Copies a fixture model directory into a fresh temp dir.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// Runs `secateurs ARGS`, expects failure, returns stderr.
fn fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_secateurs"))
        .args(args)
        .env(
            "SECATEURS_CACHE",
            std::env::temp_dir().join("secateurs-test-empty-cache"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit code 1, got {:?}; stderr: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected a one-line error, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    stderr
}

fn text_file(dir: &Path) -> PathBuf {
    let p = dir.join("text.txt");
    std::fs::write(
        &p,
        "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17",
    )
    .unwrap();
    p
}

#[test]
fn truncated_safetensors_names_file_and_field() {
    let dir = copy_fixture("tiny-llama");
    let st = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    for cut in [4, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&st, &bytes[..cut]).unwrap();
        let err = fails(&["info", dir.path().to_str().unwrap()]);
        assert!(err.contains("model.safetensors"), "{err}");
        assert!(err.contains("field '"), "{err}");
    }
}

#[test]
fn safetensors_offsets_beyond_the_file_name_the_tensor() {
    let dir = copy_fixture("tiny-llama");
    let header = r#"{"model.embed_tokens.weight":{"dtype":"F32","shape":[250000000000],"data_offsets":[0,1000000000000]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 64]);
    std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    let err = fails(&["info", dir.path().to_str().unwrap()]);
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(
        err.contains("model.embed_tokens.weight.data_offsets"),
        "{err}"
    );
}

/// A minimal GGUF v3 file: `general.architecture = llama` and one 4x4 tensor of type `ty`.
fn gguf_with_tensor_type(ty: u32) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes()); // tensors
    b.extend_from_slice(&1u64.to_le_bytes()); // kv pairs
    let s = |b: &mut Vec<u8>, s: &str| {
        b.extend_from_slice(&(s.len() as u64).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
    };
    s(&mut b, "general.architecture");
    b.extend_from_slice(&8u32.to_le_bytes()); // string
    s(&mut b, "llama");
    s(&mut b, "token_embd.weight");
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&4u64.to_le_bytes());
    b.extend_from_slice(&4u64.to_le_bytes());
    b.extend_from_slice(&ty.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    while !b.len().is_multiple_of(32) {
        b.push(0);
    }
    b.extend_from_slice(&[0u8; 64]);
    b
}

#[test]
fn gguf_unknown_tensor_type_names_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.gguf");
    std::fs::write(&p, gguf_with_tensor_type(200)).unwrap();
    let err = fails(&["info", p.to_str().unwrap()]);
    assert!(err.contains("bad.gguf"), "{err}");
    assert!(err.contains("token_embd.weight"), "{err}");
    assert!(err.contains("200"), "{err}");
}

#[test]
fn unsupported_architecture_names_the_field() {
    let dir = copy_fixture("tiny-llama");
    let cfg = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("LlamaForCausalLM", "GPTNeoXForCausalLM");
    std::fs::write(&cfg, text).unwrap();
    let err = fails(&["info", dir.path().to_str().unwrap()]);
    assert!(err.contains("config.json"), "{err}");
    assert!(err.contains("'architectures'"), "{err}");
    assert!(err.contains("GPTNeoXForCausalLM"), "{err}");
}

#[test]
fn missing_tokenizer_names_the_file() {
    let dir = copy_fixture("tiny-llama");
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let text = text_file(dir.path());
    let err = fails(&[
        "perplexity",
        dir.path().to_str().unwrap(),
        "--text",
        text.to_str().unwrap(),
        "--seqlen",
        "8",
    ]);
    assert!(err.contains("tokenizer.json"), "{err}");
    let err = fails(&[
        "generate",
        dir.path().to_str().unwrap(),
        "--prompt",
        "w1 w2",
    ]);
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn nan_weight_is_rejected_naming_the_tensor() {
    let dir = copy_fixture("tiny-llama");
    let st = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&st).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let begin = header["model.norm.weight"]["data_offsets"][0]
        .as_u64()
        .unwrap() as usize;
    bytes[8 + n + begin..8 + n + begin + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&st, bytes).unwrap();
    let text = text_file(dir.path());
    let err = fails(&[
        "perplexity",
        dir.path().to_str().unwrap(),
        "--text",
        text.to_str().unwrap(),
        "--seqlen",
        "8",
    ]);
    assert!(err.contains("model.norm.weight"), "{err}");
}

#[test]
fn missing_default_model_says_to_fetch() {
    let err = fails(&["info"]);
    assert!(err.contains("secateurs fetch"), "{err}");
}

#[test]
fn tiny_model_runs_end_to_end() {
    let dir = fixture("tiny-llama");
    let tmp = tempfile::tempdir().unwrap();
    let text = text_file(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_secateurs"))
        .args([
            "perplexity",
            dir.to_str().unwrap(),
            "--text",
            text.to_str().unwrap(),
            "--seqlen",
            "8",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ppl = v["report"]["perplexity"].as_f64().unwrap();
    // A random 128-word model: perplexity is finite and in the vocabulary's ballpark.
    assert!(ppl.is_finite() && ppl > 1.0 && ppl < 10_000.0, "{ppl}");
    assert_eq!(v["report"]["windows"], 2);
}

/// A calibration text of `words` tiny-vocabulary words.
fn calibration(dir: &Path, words: usize) -> PathBuf {
    let p = dir.join("cal.txt");
    let text: Vec<String> = (0..words).map(|i| format!("w{}", (i * 7) % 120)).collect();
    std::fs::write(&p, text.join(" ")).unwrap();
    p
}

#[test]
fn prune_rejects_impossible_settings_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("tiny-llama");
    let model = model.to_str().unwrap();
    let cal = calibration(tmp.path(), 400);
    let cal = cal.to_str().unwrap();
    let out = tmp.path().join("out");
    let out = out.to_str().unwrap();
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "prune",
            model,
            "--calibration",
            cal,
            "--nsamples",
            "2",
            "--seqlen",
            "16",
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    for (extra, needle) in [
        (&["--sparsity", "1.0"][..], "outside [0, 1)"),
        (&["--sparsity=-0.1"][..], "outside [0, 1)"),
        (&["--pattern", "4:4"][..], "4:4"),
        (
            &["--pattern", "3:5"][..],
            "does not divide the input dimension 64",
        ),
        (&["--method", "wanda", "--layers", "5..2"][..], "--layers"),
        (&["--modules", "q,mlp"][..], "--modules"),
    ] {
        let args = base(extra);
        let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    assert!(
        !Path::new(out).exists(),
        "no output may be left behind by a failed run"
    );
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    let err = fails(&[
        "prune",
        model,
        "--calibration",
        empty.to_str().unwrap(),
        "--out",
        out,
    ]);
    assert!(err.contains("calibration text"), "{err}");
    let short = calibration(&tmp.path().join(""), 10);
    let err = fails(&[
        "prune",
        model,
        "--calibration",
        short.to_str().unwrap(),
        "--seqlen",
        "64",
        "--out",
        out,
    ]);
    assert!(err.contains("shorter than one window"), "{err}");
}

#[test]
fn prune_never_modifies_its_input_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("tiny-llama");
    let before = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let cal = calibration(tmp.path(), 400);
    let out = tmp.path().join("out");
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "prune",
            dir.path().to_str().unwrap(),
            "--calibration",
            cal.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(
            [
                "--nsamples",
                "2",
                "--seqlen",
                "16",
                "--out",
                out.to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_secateurs"))
            .args(a)
            .output()
            .unwrap()
    };
    let o = run(args(&["--method", "sparsegpt", "--pattern", "2:4"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(dir.path().join("model.safetensors")).unwrap(),
        before
    );
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "prune_report.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(!tmp.path().join("out.partial").exists() && !tmp.path().join("out.tmp").exists());
    let again = run(args(&[]));
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let s = Command::new(env!("CARGO_BIN_EXE_secateurs"))
        .args(["sparsity", out.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(v["decoder_linear"]["sparsity"], 0.5);
}
