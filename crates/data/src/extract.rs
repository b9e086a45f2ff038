//! sha256 verification and selective extraction from zip and tar.gz archives.
//!
//! Extraction streams each selected member into a temporary file next to its
//! destination and renames it into place, so a file under its final name is
//! always complete. Archives are never unpacked as a whole.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::DataError;

/// One file written by an extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Final path of the file.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// sha256 of the content (lowercase hex).
    pub sha256: String,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// sha256 of a file's content, lowercase hex.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String, DataError> {
    let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Check that `path` has sha256 `expected`; returns the hash.
///
/// # Errors
/// [`DataError::HashMismatch`] naming `what`, the expected and the actual
/// hash; [`DataError::Io`] if the file cannot be read.
pub fn verify_sha256(what: &str, path: &Path, expected: &str) -> Result<String, DataError> {
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(actual)
    } else {
        Err(DataError::HashMismatch {
            what: what.to_owned(),
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Stream `reader` (data from the archive `source`) into `dest` through a
/// temporary file in the same directory, then rename it into place.
///
/// # Errors
/// [`DataError::Archive`] naming `source` if reading fails,
/// [`DataError::Io`] naming `dest` if writing fails.
pub fn write_atomically(
    source: &Path,
    dest: &Path,
    reader: &mut dyn Read,
) -> Result<Extracted, DataError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| DataError::io(&parent, e))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".partial-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let tmp = builder
        .tempfile_in(&parent)
        .map_err(|e| DataError::io(&parent, e))?;
    let mut w = HashingWriter {
        inner: io::BufWriter::with_capacity(1 << 20, tmp),
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(DataError::Archive {
                    archive: source.to_owned(),
                    message: format!("while extracting {}: {e}", dest.display()),
                })
            }
        };
        w.write_all(&buf[..n]).map_err(|e| DataError::io(dest, e))?;
    }
    let tmp = w
        .inner
        .into_inner()
        .map_err(|e| DataError::io(dest, e.into_error()))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| DataError::io(dest, e))?;
    tmp.persist(dest)
        .map_err(|e| DataError::io(dest, e.error))?;
    Ok(Extracted {
        path: dest.to_owned(),
        bytes: w.bytes,
        sha256: hex(&w.hasher.finalize()),
    })
}

/// Extract one member of a zip archive to `dest`.
///
/// # Errors
/// [`DataError::Archive`] if the zip is unreadable, [`DataError::MissingMember`]
/// if `member` is absent, [`DataError::Io`] on write failure.
pub fn extract_zip_member(
    archive: &Path,
    member: &str,
    dest: &Path,
) -> Result<Extracted, DataError> {
    let f = File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(f)).map_err(|e| DataError::Archive {
        archive: archive.to_owned(),
        message: e.to_string(),
    })?;
    let mut entry = match zip.by_name(member) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(DataError::MissingMember {
                archive: archive.to_owned(),
                member: member.to_owned(),
            })
        }
        Err(e) => {
            return Err(DataError::Archive {
                archive: archive.to_owned(),
                message: e.to_string(),
            })
        }
    };
    write_atomically(archive, dest, &mut entry)
}

/// True if `rel` is a plain relative path (no root, no `..`, no `.`).
fn is_safe_relative(rel: &Path) -> bool {
    rel.components().next().is_some() && rel.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Stream through a `.tar.gz` archive and extract the regular-file members
/// for which `select` returns a relative output path, below `dest_root`.
/// Members are visited in archive order; unselected ones are skipped without
/// being written.
///
/// # Errors
/// [`DataError::Archive`] if the archive is corrupt or `select` returns an
/// unsafe path (absolute or with `..`), [`DataError::Io`] on write failure.
pub fn extract_tar_gz(
    archive: &Path,
    select: &mut dyn FnMut(&str) -> Option<PathBuf>,
    dest_root: &Path,
) -> Result<Vec<Extracted>, DataError> {
    let arch_err = |e: io::Error| DataError::Archive {
        archive: archive.to_owned(),
        message: e.to_string(),
    };
    let f = File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 20, f));
    let mut tar = tar::Archive::new(gz);
    let mut out = Vec::new();
    for entry in tar.entries().map_err(arch_err)? {
        let mut entry = entry.map_err(arch_err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = {
            let p = entry.path().map_err(arch_err)?;
            match p.to_str() {
                Some(s) => s.to_owned(),
                None => continue,
            }
        };
        let Some(rel) = select(&name) else { continue };
        if !is_safe_relative(&rel) {
            return Err(DataError::Archive {
                archive: archive.to_owned(),
                message: format!(
                    "refusing to extract {name} to unsafe path {}",
                    rel.display()
                ),
            });
        }
        let dest = dest_root.join(rel);
        let written = write_atomically(archive, &dest, &mut entry)?;
        out.push(written);
    }
    Ok(out)
}

/// Extract exactly one named member of a `.tar.gz` archive to `dest`.
///
/// # Errors
/// As [`extract_tar_gz`], plus [`DataError::MissingMember`] if absent.
pub fn extract_tar_gz_member(
    archive: &Path,
    member: &str,
    dest: &Path,
) -> Result<Extracted, DataError> {
    let (root, file) = match (dest.parent(), dest.file_name()) {
        (Some(p), Some(f)) => (p.to_owned(), PathBuf::from(f)),
        _ => {
            return Err(DataError::Archive {
                archive: archive.to_owned(),
                message: format!("bad destination {}", dest.display()),
            })
        }
    };
    let mut found = false;
    let mut select = |name: &str| {
        (name == member && !found).then(|| {
            found = true;
            file.clone()
        })
    };
    let mut got = extract_tar_gz(archive, &mut select, &root)?;
    got.pop().ok_or_else(|| DataError::MissingMember {
        archive: archive.to_owned(),
        member: member.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_tar_gz(path: &Path, files: &[(&str, &[u8])]) {
        let f = File::create(path).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }

    fn make_zip(path: &Path, files: &[(&str, &[u8])]) {
        let f = File::create(path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in files {
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }

    #[test]
    fn sha256_known_value_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(verify_sha256("x", &p, abc).unwrap(), abc);
        std::fs::write(&p, b"abd").unwrap();
        let err = verify_sha256("thing", &p, abc).unwrap_err();
        match &err {
            DataError::HashMismatch {
                what,
                expected,
                actual,
                ..
            } => {
                assert_eq!(what, "thing");
                assert_eq!(expected, abc);
                assert_ne!(actual, abc);
            }
            other => panic!("unexpected {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("thing") && msg.contains(abc) && !msg.contains('\n'));
    }

    #[test]
    fn tar_selects_only_listed_members() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.tar.gz");
        make_tar_gz(
            &a,
            &[
                ("top/keep/one.json", b"1"),
                ("top/drop/two.json", b"22"),
                ("top/keep/sub/three.json", b"333"),
            ],
        );
        let out = dir.path().join("out");
        let mut select = |n: &str| n.strip_prefix("top/keep/").map(PathBuf::from);
        let got = extract_tar_gz(&a, &mut select, &out).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(std::fs::read(out.join("one.json")).unwrap(), b"1");
        assert_eq!(std::fs::read(out.join("sub/three.json")).unwrap(), b"333");
        assert_eq!(got[1].bytes, 3);
        assert!(!out.join("two.json").exists());
        assert!(!dir.path().join("out/drop").exists());
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(".partial-")),
            "{names:?}"
        );
    }

    #[test]
    fn tar_refuses_unsafe_destination() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.tar.gz");
        make_tar_gz(&a, &[("x", b"1")]);
        let mut select = |_: &str| Some(PathBuf::from("../escape"));
        let err = extract_tar_gz(&a, &mut select, &dir.path().join("o")).unwrap_err();
        assert!(matches!(err, DataError::Archive { .. }));
    }

    #[test]
    fn tar_single_member_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("p.tgz");
        make_tar_gz(&a, &[("package/LICENSE", b"L"), ("package/c.json", b"[]")]);
        let dest = dir.path().join("o/c.json");
        let got = extract_tar_gz_member(&a, "package/c.json", &dest).unwrap();
        assert_eq!(got.bytes, 2);
        assert_eq!(std::fs::read(&dest).unwrap(), b"[]");
        let err = extract_tar_gz_member(&a, "package/none", &dir.path().join("o/n")).unwrap_err();
        assert!(matches!(err, DataError::MissingMember { .. }));
    }

    #[test]
    fn zip_member_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("w.whl");
        let big = vec![7u8; 100_000];
        make_zip(&a, &[("pkg/__init__.py", b"x"), ("pkg/model.gguf", &big)]);
        let dest = dir.path().join("models/m.gguf");
        // An old file under the final name is replaced whole.
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(&dest, b"stale").unwrap();
        let got = extract_zip_member(&a, "pkg/model.gguf", &dest).unwrap();
        assert_eq!(got.bytes, 100_000);
        assert_eq!(std::fs::read(&dest).unwrap(), big);
        assert_eq!(got.sha256, sha256_file(&dest).unwrap());
        let entries = std::fs::read_dir(dest.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1);
        let err = extract_zip_member(&a, "pkg/none", &dest).unwrap_err();
        assert!(matches!(err, DataError::MissingMember { .. }));
    }

    #[test]
    fn corrupt_archive_is_an_archive_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("bad.tar.gz");
        std::fs::write(&a, b"not gzip at all").unwrap();
        let mut select = |n: &str| Some(PathBuf::from(n));
        assert!(matches!(
            extract_tar_gz(&a, &mut select, dir.path()),
            Err(DataError::Archive { .. })
        ));
        let z = dir.path().join("bad.zip");
        std::fs::write(&z, b"not zip").unwrap();
        assert!(matches!(
            extract_zip_member(&z, "x", &dir.path().join("x")),
            Err(DataError::Archive { .. })
        ));
    }
}
