//! Feed readers. Each turns a byte stream into [`RawRecord`]s, one at a time,
//! so memory stays flat however large the file is.
//!
//! Column checks happen before the first row: a column that is not in the
//! schema (an NHS number, a name, an address...) fails the whole file with a
//! [`FileError::UnknownColumn`] naming it.

mod avro;
mod csv;
mod jsonl;
pub mod writer;

use crate::error::{ErrorCode, FieldError, FileError};
use crate::record::Field;
use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Longest row accepted (bytes). A longer one is almost always an unbalanced
/// quote swallowing the rest of the file; stopping there keeps memory flat.
pub const MAX_ROW_BYTES: u64 = 16 << 20;

/// A feed format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// RFC 4180 CSV with a header row; comma or semicolon separated.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Avro object container file.
    Avro,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Format::Csv, Format::Jsonl, Format::Avro];

    /// The name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Avro => "avro",
        }
    }

    /// Parses a command-line name (`ndjson` and `json` are read as JSON Lines).
    pub fn parse(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "avro" => Some(Format::Avro),
            _ => None,
        }
    }

    /// The format an HTTP `Content-Type` names, ignoring parameters.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "text/csv" | "application/csv" => Some(Format::Csv),
            "application/x-ndjson"
            | "application/jsonl"
            | "application/jsonlines"
            | "application/x-jsonlines" => Some(Format::Jsonl),
            "avro/binary" | "application/avro" | "application/vnd.apache.avro+binary" => {
                Some(Format::Avro)
            }
            _ => None,
        }
    }

    /// The format a file name suggests (`.gz` is looked through).
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let ext = name.rsplit('.').next()?;
        Format::parse(ext).filter(|_| name.contains('.'))
    }

    /// The usual file extension.
    pub const fn extension(self) -> &'static str {
        self.as_str()
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row as read, before any rule: text values by field, blank as `None`,
/// plus any problem met while decoding it (bad UTF-8, wrong JSON type...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRecord<'a> {
    /// 1-based data row.
    pub row: u64,
    values: [Option<Cow<'a, str>>; Field::COUNT],
    /// Problems found while decoding; the row is invalid if any.
    pub problems: Vec<FieldError>,
    /// Set by a reader that has checked the whole row at once: no value
    /// holds an ASCII control character, so the rules need not look.
    pub(crate) no_control_chars: bool,
}

impl<'a> RawRecord<'a> {
    /// An empty row numbered `row`.
    pub fn new(row: u64) -> Self {
        RawRecord {
            row,
            ..RawRecord::default()
        }
    }

    /// The value of `field`, `None` when blank or absent.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.values[field.index()].as_deref()
    }

    /// Sets a value; blank (only whitespace) counts as absent.
    pub fn set(&mut self, field: Field, value: Cow<'a, str>) {
        self.values[field.index()] = if blank(&value) { None } else { Some(value) };
    }

    /// Sets a value that borrows from the input; blank counts as absent.
    #[inline]
    pub(crate) fn set_borrowed(&mut self, field: Field, value: &'a str) {
        // Written in place rather than through `set`: building the `Cow`
        // first and copying it stalled the CPU on every field.
        let slot = &mut self.values[field.index()];
        if blank(value) {
            *slot = None;
        } else {
            *slot = Some(Cow::Borrowed(value));
        }
    }

    /// Records a decoding problem.
    pub fn problem(&mut self, field: Option<Field>, code: ErrorCode, message: impl Into<String>) {
        self.problems.push(FieldError {
            row: self.row,
            field: field.map(|f| f.name().to_string()),
            code,
            message: message.into(),
        });
    }

    /// A copy that owns its text.
    pub fn into_owned(self) -> RawRecord<'static> {
        RawRecord {
            row: self.row,
            values: self.values.map(|v| v.map(|c| Cow::Owned(c.into_owned()))),
            problems: self.problems,
            no_control_chars: self.no_control_chars,
        }
    }
}

/// Only ASCII whitespace: other Unicode spaces are caught when the rules
/// trim the value.
fn blank(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_whitespace())
}

/// Counts bytes passing through; shared so a progress bar can read it while
/// the feed is being consumed.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Input = Box<dyn BufRead + Send>;

enum Inner {
    Csv(csv::CsvFeed<Input>),
    Jsonl(jsonl::JsonlFeed<Input>),
    Avro(avro::AvroFeed<Input>),
}

/// A feed being read: yields rows until the end or a file-level error.
pub struct Feed {
    inner: Inner,
    format: Format,
    compressed: bool,
    bytes_read: Arc<AtomicU64>,
    failed: bool,
}

impl Feed {
    /// Opens a file, telling the format from `format`, else the file name,
    /// else the content.
    pub fn open_path(path: &Path, format: Option<Format>) -> Result<Feed, FileError> {
        let file = std::fs::File::open(path)?;
        Feed::from_reader(file, format.or_else(|| Format::from_path(path)))
    }

    /// Reads a feed from any byte stream; gzip is detected by its magic bytes.
    pub fn from_reader<R: Read + Send + 'static>(
        reader: R,
        format: Option<Format>,
    ) -> Result<Feed, FileError> {
        let bytes_read = Arc::new(AtomicU64::new(0));
        let counted = Counting {
            inner: reader,
            count: bytes_read.clone(),
        };
        let mut raw = BufReader::with_capacity(64 << 10, counted);
        let head = peek(&mut raw)?;
        if head.is_empty() {
            return Err(FileError::Empty);
        }
        let compressed = head.starts_with(&[0x1f, 0x8b]);
        let decoded: Box<dyn Read + Send> = if compressed {
            Box::new(flate2::bufread::MultiGzDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        let mut input: Input = Box::new(BufReader::with_capacity(64 << 10, decoded));
        let head = peek(&mut input).map_err(|e| match e {
            FileError::Io(io) if compressed => FileError::Gzip(io.to_string()),
            other => other,
        })?;
        if head.is_empty() {
            return Err(FileError::Empty);
        }
        let format = match format {
            Some(f) => f,
            None => sniff(head).ok_or(FileError::UnknownFormat)?,
        };
        let inner = match format {
            Format::Csv => Inner::Csv(csv::CsvFeed::new(input)?),
            Format::Jsonl => Inner::Jsonl(jsonl::JsonlFeed::new(input)),
            Format::Avro => Inner::Avro(avro::AvroFeed::new(input)?),
        };
        Ok(Feed {
            inner,
            format,
            compressed,
            bytes_read,
            failed: false,
        })
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// True when the input was gzip-compressed.
    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// Bytes of the (possibly compressed) input read so far; a shared counter
    /// that a progress display may poll from another thread.
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.bytes_read.clone()
    }

    /// The next row, `None` at the end. After an `Err`, the feed is finished.
    #[allow(clippy::should_implement_trait)] // rows borrow from the feed, so no Iterator
    pub fn next(&mut self) -> Option<Result<RawRecord<'_>, FileError>> {
        if self.failed {
            return None;
        }
        let out = match &mut self.inner {
            Inner::Csv(f) => f.next(),
            Inner::Jsonl(f) => f.next(),
            Inner::Avro(f) => f.next(),
        };
        if matches!(out, Some(Err(_))) {
            self.failed = true;
        }
        out
    }
}

/// The buffered start of the input, without consuming it.
fn peek<R: BufRead + ?Sized>(r: &mut R) -> Result<&[u8], FileError> {
    loop {
        match r.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FileError::Io(e)),
        }
    }
    Ok(r.fill_buf()?)
}

/// Tells the format from the first bytes.
fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"Obj\x01") {
        return Some(Format::Avro);
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Some(Format::Jsonl),
        Some(_) => Some(Format::Csv),
        None => None,
    }
}

/// Rows of a column that must be present in every file.
pub const REQUIRED_COLUMNS: [Field; 5] = [
    Field::SiteCode,
    Field::RecordId,
    Field::AssaultDatetime,
    Field::AssaultMethod,
    Field::AssaultLocationType,
];

#[cfg(test)]
mod tests;
