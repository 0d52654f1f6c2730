//! The compact binary format of the data directory files, and atomic replacement.
//!
//! Every file starts with an 8-byte magic, a 4-byte kind tag and a little-endian
//! `u32` format version, so a file of another kind or version is refused rather
//! than misread.

use std::io::Write;
use std::path::Path;

use crate::error::{ImportError, LoadError};

const MAGIC: &[u8; 8] = b"ISTVGEO\0";

/// Current format version of all data files.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Little-endian encoder into a byte vector.
pub(crate) struct Enc {
    buf: Vec<u8>,
}

impl Enc {
    pub(crate) fn new(kind: &[u8; 4]) -> Self {
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(kind);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        Enc { buf }
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("collections are below 4 billion items"));
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Bounds-checked little-endian decoder.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    /// Checks the header and returns a decoder positioned after it.
    pub(crate) fn new(buf: &'a [u8], kind: &[u8; 4]) -> Result<Self, String> {
        if buf.len() < 16 || &buf[..8] != MAGIC {
            return Err("not an istv geo data file (bad magic)".into());
        }
        if &buf[8..12] != kind {
            return Err(format!(
                "wrong file kind {:?}, expected {:?}",
                String::from_utf8_lossy(&buf[8..12]),
                String::from_utf8_lossy(kind)
            ));
        }
        let version = u32::from_le_bytes(buf[12..16].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version} is not supported (expected {FORMAT_VERSION}); re-import the data"
            ));
        }
        Ok(Dec { buf, pos: 16 })
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    pub(crate) fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// Reads a collection length, refusing lengths the remaining bytes cannot hold.
    pub(crate) fn len(&mut self, min_item_bytes: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item_bytes) > self.buf.len() - self.pos {
            return Err(format!(
                "length {n} exceeds the file size at byte {}",
                self.pos
            ));
        }
        Ok(n)
    }
    pub(crate) fn str(&mut self) -> Result<&'a str, String> {
        let n = self.len(1)?;
        std::str::from_utf8(self.take(n)?)
            .map_err(|_| format!("invalid utf-8 before byte {}", self.pos))
    }
    pub(crate) fn finish(self) -> Result<(), String> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.buf.len() - self.pos))
        }
    }
}

/// Replaces `dir/name` with `bytes` atomically: a crash leaves either the old
/// or the new file, never a partial one.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ImportError> {
    let path = dir.join(name);
    let err = |source| ImportError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    // The temporary file is in the same directory so the rename cannot cross filesystems.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(&path).map_err(|e| err(e.error))?;
    // Make the rename itself durable; not every platform can open a directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a data file; `Ok(None)` when it does not exist (that method is unavailable).
pub(crate) fn read_optional(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, LoadError> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LoadError::Io { path, source }),
    }
}

/// Wraps a decoding problem with the file path.
pub(crate) fn corrupt(dir: &Path, name: &str, problem: String) -> LoadError {
    LoadError::Corrupt {
        path: dir.join(name),
        problem,
    }
}
