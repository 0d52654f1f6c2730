//! CSV: RFC 4180, header row, UTF-8 with or without BOM, comma or semicolon.

use super::{RawRecord, RowGuard, RowMark, REQUIRED_COLUMNS};
use crate::error::{ErrorCode, FileError};
use crate::record::Field;
use std::borrow::Cow;
use std::io::BufRead;

pub(crate) struct CsvFeed<R> {
    reader: csv::Reader<RowGuard<R>>,
    columns: Vec<Option<Field>>,
    record: csv::ByteRecord,
    mark: RowMark,
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
        let mark = RowMark::default();
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(RowGuard::new(input, mark.clone()));
        let mut header = csv::ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(FileError::Empty),
            Err(e) => return Err(FileError::Header(e.to_string())),
        }
        mark.set(reader.position().byte());
        let columns = map_columns(header.iter())?;
        Ok(CsvFeed {
            reader,
            columns,
            record: csv::ByteRecord::new(),
            mark,
            row: 0,
        })
    }

    pub(crate) fn next(&mut self) -> Option<Result<RawRecord<'_>, FileError>> {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    let reason = match e.into_kind() {
                        csv::ErrorKind::Io(io) => io.to_string(),
                        other => format!("{other:?}"),
                    };
                    return Some(Err(FileError::Truncated {
                        row: self.row,
                        reason,
                    }));
                }
            }
            self.mark.set(self.reader.position().byte());
            self.row += 1;
            // Spreadsheets pad the end of a sheet with empty rows like ",,,,".
            if self
                .record
                .iter()
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
            {
                continue;
            }
            break;
        }
        let mut raw = RawRecord::new(self.row);
        if self.record.len() != self.columns.len() {
            raw.problem(
                None,
                ErrorCode::MalformedRow,
                format!(
                    "row has {} fields but the header has {}",
                    self.record.len(),
                    self.columns.len()
                ),
            );
            return Some(Ok(raw));
        }
        // Vectorised checks over the whole row cover the usual row: all
        // ASCII, no control characters (no early exit, so it vectorises).
        let bytes = self.record.as_slice();
        let ascii = bytes.is_ascii();
        raw.no_control_chars = !bytes
            .iter()
            .fold(false, |seen, &b| seen | (b < 0x20) | (b == 0x7f));
        for (bytes, column) in self.record.iter().zip(&self.columns) {
            let text = if ascii {
                // SAFETY: ASCII bytes are valid UTF-8.
                Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
            } else {
                std::str::from_utf8(bytes)
            };
            match (column, text) {
                (Some(field), Ok(text)) => raw.set(*field, Cow::Borrowed(text)),
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
    use super::sniff_delimiter;

    #[test]
    fn delimiter_follows_the_header() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1;2"), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\n1,2,3,4,5"), b';');
        assert_eq!(sniff_delimiter(b"\"a;b\",c\n"), b',');
    }
}
