//! CSV: RFC 4180, header row, UTF-8 with or without BOM, comma or semicolon.

use super::{RawRecord, MAX_ROW_BYTES, REQUIRED_COLUMNS};
use crate::error::{ErrorCode, FileError};
use crate::record::Field;
use scan::scan_line;
use std::io::BufRead;

mod scan;

pub(crate) struct CsvFeed<R> {
    rows: RowReader<R>,
    columns: Vec<Option<Field>>,
    row: u64,
}

/// Semicolon when the first line has more semicolons than commas outside
/// quotes (spreadsheets in locales with a decimal comma write those).
fn sniff_delimiter(head: &[u8]) -> u8 {
    let (mut commas, mut semis, mut quoted) = (0, 0, false);
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semis += 1,
            b'\n' if !quoted => break,
            _ => {}
        }
    }
    if semis > commas {
        b';'
    } else {
        b','
    }
}

impl<R: BufRead> CsvFeed<R> {
    pub(crate) fn new(mut input: R) -> Result<Self, FileError> {
        let head = input.fill_buf()?;
        let bom = head.starts_with(b"\xEF\xBB\xBF");
        let delimiter = sniff_delimiter(if bom { &head[3..] } else { head });
        if bom {
            input.consume(3);
        }
        let mut rows = RowReader::new(input, delimiter);
        let columns = match rows.read_quoted() {
            Ok(Some(header)) => map_columns(header.fields())?,
            Ok(None) => return Err(FileError::Empty),
            Err(e) => return Err(FileError::Header(e.to_string())),
        };
        Ok(CsvFeed {
            rows,
            columns,
            row: 0,
        })
    }

    pub(crate) fn next(&mut self) -> Option<Result<RawRecord<'_>, FileError>> {
        // Spreadsheets pad the end of a sheet with empty rows like ",,,,".
        // (A loop cannot yet return a borrowed row and go on, so the row is
        // taken again from the reader once found.)
        let truncated = |row, e: std::io::Error| FileError::Truncated {
            row,
            reason: e.to_string(),
        };
        loop {
            match self.rows.next() {
                Ok(Some(record)) if record.is_blank() => self.row += 1,
                Ok(Some(_)) => break,
                Ok(None) => return None,
                Err(e) => return Some(Err(truncated(self.row, e))),
            }
        }
        self.row += 1;
        let record = match self.rows.current() {
            Ok(record) => record,
            Err(e) => return Some(Err(truncated(self.row, e))),
        };
        let mut raw = RawRecord::new(self.row);
        if record.len() != self.columns.len() {
            raw.problem(
                None,
                ErrorCode::MalformedRow,
                format!(
                    "row has {} fields but the header has {}",
                    record.len(),
                    self.columns.len()
                ),
            );
            return Some(Ok(raw));
        }
        let ascii = record.ascii;
        raw.no_control_chars = record.no_control;
        for (bytes, column) in record.fields().zip(&self.columns) {
            let text = if ascii {
                // SAFETY: ASCII bytes are valid UTF-8.
                Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
            } else {
                std::str::from_utf8(bytes)
            };
            match (column, text) {
                (Some(field), Ok(text)) => raw.set_borrowed(*field, text),
                (Some(field), Err(e)) => raw.problem(
                    Some(*field),
                    ErrorCode::InvalidUtf8,
                    format!(
                        "not valid UTF-8 (bad byte at position {})",
                        e.valid_up_to() + 1
                    ),
                ),
                (None, _) if bytes.iter().all(u8::is_ascii_whitespace) => {}
                (None, _) => raw.problem(
                    None,
                    ErrorCode::MalformedRow,
                    "value in a column without a header",
                ),
            }
        }
        Some(Ok(raw))
    }
}

/// One CSV record's fields.
#[derive(Clone, Copy)]
pub(crate) struct Row<'a> {
    /// The fields' bytes: the line as written, or csv_core's unquoted output.
    bytes: &'a [u8],
    /// Where each field ends in `bytes`.
    ends: &'a [usize],
    /// Bytes between one field's end and the next one's start: 1 (the
    /// delimiter) in a line as written, 0 in csv_core's output.
    gap: usize,
    delimiter: u8,
    /// Every byte is ASCII.
    ascii: bool,
    /// No byte is an ASCII control character.
    no_control: bool,
}

impl<'a> Row<'a> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn fields(self) -> impl Iterator<Item = &'a [u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let field = &self.bytes[start..end];
            start = end + self.gap;
            field
        })
    }

    /// Only whitespace in every field.
    fn is_blank(&self) -> bool {
        let delimiter = if self.gap == 1 { self.delimiter } else { b' ' };
        self.bytes
            .iter()
            .all(|&b| b.is_ascii_whitespace() || b == delimiter)
    }
}

/// Splits a CSV stream into records.
///
/// A record on one line with no quote or carriage return inside it, as
/// nearly every row an ED exports is, is split where it lies in the input
/// buffer. Any other record (quoted fields, old Mac line ends, a line
/// crossing the end of the buffer) goes through csv_core, which reads RFC
/// 4180 in full; both skip empty lines, so they agree on every input (a
/// property test compares them with the csv crate).
pub(crate) struct RowReader<R> {
    input: R,
    core: csv_core::Reader,
    delimiter: u8,
    /// Input bytes of the line last split, consumed on the next call.
    pending: usize,
    /// The length of the last row when it was split in place (it is the
    /// start of the input buffer), else `None` and the row is in `decoded`.
    split: Option<usize>,
    /// csv_core's output: the fields of the last record it read.
    decoded: Vec<u8>,
    decoded_len: usize,
    ends: Vec<usize>,
    /// The last row's whole-row checks, which let the usual row skip
    /// checks per field.
    ascii: bool,
    no_control: bool,
}

impl<R: BufRead> RowReader<R> {
    pub(crate) fn new(input: R, delimiter: u8) -> Self {
        RowReader {
            input,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            delimiter,
            pending: 0,
            split: None,
            decoded: vec![0; 4096],
            decoded_len: 0,
            ends: Vec::with_capacity(32),
            ascii: true,
            no_control: true,
        }
    }

    /// The next record, `None` at the end of the input.
    pub(crate) fn next(&mut self) -> std::io::Result<Option<Row<'_>>> {
        self.input.consume(std::mem::take(&mut self.pending));
        // Line ends at the start of a record are empty lines, which csv_core
        // skips too.
        let line = loop {
            let buf = self.input.fill_buf()?;
            match buf.iter().position(|&b| b != b'\n' && b != b'\r') {
                Some(start) => {
                    let line = scan_line(&buf[start..], self.delimiter, &mut self.ends);
                    self.input.consume(start);
                    break line;
                }
                None if buf.is_empty() => return Ok(None),
                None => {
                    let n = buf.len();
                    self.input.consume(n);
                }
            }
        };
        match line {
            Some(line) if !line.needs_parser => {
                self.pending = line.consumed;
                self.split = Some(line.len);
                self.ascii = line.ascii;
                self.no_control = line.no_control;
                self.current().map(Some)
            }
            _ => self.read_quoted(),
        }
    }

    /// The record the last call to [`RowReader::next`] returned.
    pub(crate) fn current(&mut self) -> std::io::Result<Row<'_>> {
        let bytes = match self.split {
            // Still buffered (nothing was consumed since), so this is no
            // read: `fill_buf` only reads when the buffer is empty.
            Some(len) => &self.input.fill_buf()?[..len],
            None => &self.decoded[..self.decoded_len],
        };
        Ok(Row {
            bytes,
            ends: &self.ends,
            gap: usize::from(self.split.is_some()),
            delimiter: self.delimiter,
            ascii: self.ascii,
            no_control: self.no_control,
        })
    }

    /// Reads one record with csv_core.
    fn read_quoted(&mut self) -> std::io::Result<Option<Row<'_>>> {
        use csv_core::ReadRecordResult as R;
        self.split = None;
        self.ends.clear();
        self.ends.resize(self.ends.capacity().max(32), 0);
        let (mut nout, mut nend, mut taken) = (0, 0, 0u64);
        loop {
            let input = self.input.fill_buf()?;
            let (res, nin, out, ends) =
                self.core
                    .read_record(input, &mut self.decoded[nout..], &mut self.ends[nend..]);
            self.input.consume(nin);
            nout += out;
            nend += ends;
            taken += nin as u64;
            if taken > MAX_ROW_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "a row is longer than {} MiB; check for an unbalanced quote",
                        MAX_ROW_BYTES >> 20
                    ),
                ));
            }
            match res {
                R::InputEmpty => {}
                R::OutputFull => self.decoded.resize(self.decoded.len() * 2, 0),
                R::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                R::Record => {
                    self.ends.truncate(nend);
                    self.decoded_len = nout;
                    // Vectorised (no early exit), as most rows pass.
                    let bytes = &self.decoded[..nout];
                    self.ascii = bytes.is_ascii();
                    self.no_control = !bytes
                        .iter()
                        .fold(false, |seen, &b| seen | (b < 0x20) | (b == 0x7f));
                    return self.current().map(Some);
                }
                R::End => return Ok(None),
            }
        }
    }
}

/// Maps header names to fields. Unnamed columns are tolerated (spreadsheets
/// add them) but must stay blank.
pub(crate) fn map_columns<'h>(
    names: impl Iterator<Item = &'h [u8]>,
) -> Result<Vec<Option<Field>>, FileError> {
    let mut columns = Vec::new();
    for name in names {
        let text = std::str::from_utf8(name)
            .map_err(|_| FileError::Header("a column name is not valid UTF-8".into()))?;
        if text.trim().is_empty() {
            columns.push(None);
            continue;
        }
        let field = Field::from_name(text).ok_or_else(|| FileError::UnknownColumn {
            column: text.trim().to_string(),
        })?;
        if columns.contains(&Some(field)) {
            return Err(FileError::DuplicateColumn {
                column: text.trim().to_string(),
            });
        }
        columns.push(Some(field));
    }
    if let Some(missing) = REQUIRED_COLUMNS
        .iter()
        .find(|f| !columns.contains(&Some(**f)))
    {
        return Err(FileError::MissingColumn {
            column: missing.name(),
        });
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::{sniff_delimiter, RowReader};
    use proptest::prelude::*;
    use std::io::BufReader;

    #[test]
    fn delimiter_follows_the_header() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1;2"), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\n1,2,3,4,5"), b';');
        assert_eq!(sniff_delimiter(b"\"a;b\",c\n"), b',');
    }

    /// Every record as a list of fields, through our reader with a buffer
    /// of `capacity` bytes.
    fn ours(bytes: &[u8], delimiter: u8, capacity: usize) -> Vec<Vec<Vec<u8>>> {
        let mut r = RowReader::new(BufReader::with_capacity(capacity, bytes), delimiter);
        let mut out = Vec::new();
        while let Some(row) = r.next().unwrap() {
            out.push(row.fields().map(<[u8]>::to_vec).collect());
        }
        out
    }

    fn theirs(bytes: &[u8], delimiter: u8) -> Vec<Vec<Vec<u8>>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(bytes);
        r.byte_records()
            .map(|rec| rec.unwrap().iter().map(<[u8]>::to_vec).collect())
            .collect()
    }

    #[test]
    fn lines_split_in_place_and_quoted_records_agree() {
        let text = b"a,b,c\r\n\n\n\"x,\"\"y\"\"\",,\"two\nlines\"\rold,mac\r\nlast,no,newline";
        let want: Vec<Vec<&[u8]>> = vec![
            vec![b"a", b"b", b"c"],
            vec![b"x,\"y\"", b"", b"two\nlines"],
            vec![b"old", b"mac"],
            vec![b"last", b"no", b"newline"],
        ];
        for capacity in [1, 2, 7, 64, 8192] {
            let got = ours(text, b',', capacity);
            assert_eq!(got, want, "capacity {capacity}");
        }
    }

    proptest! {
        /// The same records as the csv crate for any bytes made of the
        /// characters that matter, whatever the buffer size.
        #[test]
        fn agrees_with_the_csv_crate(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"ab ,;\"\r\n".to_vec()),
                0..300,
            ),
            semicolon in any::<bool>(),
            capacity in 1usize..100,
        ) {
            let delimiter = if semicolon { b';' } else { b',' };
            prop_assert_eq!(ours(&bytes, delimiter, capacity), theirs(&bytes, delimiter));
        }
    }
}
