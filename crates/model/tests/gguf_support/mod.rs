//! Helpers shared by the GGUF integration tests: fixture paths and a tiny
//! GGUF writer (layout per ggml's `docs/gguf.md`) for hand-made files.

#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a file in `tests/fixtures/gguf/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join("gguf")
        .join(name)
}

/// Reads a fixture file.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture exists (run scripts/make_gguf_fixtures.py)")
}

/// The real default model: `SECATEURS_MODEL_GGUF` if set, else where `secateurs fetch` puts it
/// (`$SECATEURS_CACHE`, `$XDG_CACHE_HOME/secateurs` or `~/.cache/secateurs`, then
/// `models/SmolLM2-135M-Instruct.Q4_1.gguf`); `None` after printing a "skipped" line.
pub fn real_model(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SECATEURS_MODEL_GGUF") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
        println!(
            "skipped: {test}: SECATEURS_MODEL_GGUF={} is not a file",
            p.display()
        );
        return None;
    }
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let cache = var("SECATEURS_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|x| x.join("secateurs")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/secateurs")));
    match cache.map(|c| c.join("models/SmolLM2-135M-Instruct.Q4_1.gguf")) {
        Some(p) if p.is_file() => Some(p),
        _ => {
            println!("skipped: {test}: default model not fetched (run `secateurs fetch`) and SECATEURS_MODEL_GGUF unset");
            None
        }
    }
}

/// Appends a GGUF string (u64 length + bytes).
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Minimal GGUF writer for tests.
pub struct Writer {
    pub version: u32,
    pub alignment: u64,
    kv: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    data: Vec<u8>,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            version: 3,
            alignment: 32,
            kv: Vec::new(),
            n_kv: 0,
            infos: Vec::new(),
            n_tensors: 0,
            data: Vec::new(),
        }
    }
}

impl Writer {
    /// Adds a key with a raw type id and pre-encoded value bytes.
    pub fn kv_raw(&mut self, key: &str, type_id: u32, value: &[u8]) -> &mut Self {
        put_str(&mut self.kv, key);
        self.kv.extend_from_slice(&type_id.to_le_bytes());
        self.kv.extend_from_slice(value);
        self.n_kv += 1;
        self
    }

    pub fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.kv_raw(key, 4, &v.to_le_bytes())
    }

    pub fn kv_bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.kv_raw(key, 7, &[u8::from(v)])
    }

    pub fn kv_str(&mut self, key: &str, v: &str) -> &mut Self {
        let mut b = Vec::new();
        put_str(&mut b, v);
        self.kv_raw(key, 8, &b)
    }

    pub fn kv_str_array(&mut self, key: &str, v: &[&str]) -> &mut Self {
        let mut b = 8u32.to_le_bytes().to_vec();
        b.extend_from_slice(&(v.len() as u64).to_le_bytes());
        for s in v {
            put_str(&mut b, s);
        }
        self.kv_raw(key, 9, &b)
    }

    pub fn kv_i32_array(&mut self, key: &str, v: &[i32]) -> &mut Self {
        let mut b = 5u32.to_le_bytes().to_vec();
        b.extend_from_slice(&(v.len() as u64).to_le_bytes());
        for x in v {
            b.extend_from_slice(&x.to_le_bytes());
        }
        self.kv_raw(key, 9, &b)
    }

    /// Adds a tensor with raw data placed at the next aligned offset.
    pub fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, data: &[u8]) -> &mut Self {
        let offset = self.data.len() as u64;
        self.tensor_at(name, dims, type_id, offset);
        self.data.extend_from_slice(data);
        while !(self.data.len() as u64).is_multiple_of(self.alignment) {
            self.data.push(0);
        }
        self
    }

    /// Adds a tensor info with an explicit offset and no data.
    pub fn tensor_at(&mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> &mut Self {
        put_str(&mut self.infos, name);
        self.infos
            .extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend_from_slice(&d.to_le_bytes());
        }
        self.infos.extend_from_slice(&type_id.to_le_bytes());
        self.infos.extend_from_slice(&offset.to_le_bytes());
        self.n_tensors += 1;
        self
    }

    /// The encoded file.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.n_tensors.to_le_bytes());
        out.extend_from_slice(&self.n_kv.to_le_bytes());
        out.extend_from_slice(&self.kv);
        out.extend_from_slice(&self.infos);
        while !(out.len() as u64).is_multiple_of(self.alignment) {
            out.push(0);
        }
        out.extend_from_slice(&self.data);
        out
    }
}
