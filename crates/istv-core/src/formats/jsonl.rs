//! JSON Lines: one object per line, keys are the column names.

use super::RawRecord;
use crate::error::{ErrorCode, FileError};
use crate::record::Field;
use serde_json::Value;
use std::borrow::Cow;
use std::io::BufRead;

/// Longest line accepted; longer ones are skipped with a row error so a
/// missing newline cannot make memory grow with the file.
const MAX_LINE: usize = super::MAX_ROW_BYTES as usize;

pub(crate) struct JsonlFeed<R> {
    input: R,
    line: Vec<u8>,
    row: u64,
}

impl<R: BufRead> JsonlFeed<R> {
    pub(crate) fn new(input: R) -> Self {
        JsonlFeed {
            input,
            line: Vec::new(),
            row: 0,
        }
    }

    /// Reads one line into `self.line`, at most [`MAX_LINE`] bytes of it.
    /// Returns (bytes seen, whether it was cut).
    fn read_line(&mut self) -> std::io::Result<(usize, bool)> {
        self.line.clear();
        let (mut seen, mut cut) = (0, false);
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok((seen, cut));
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i + 1], true),
                None => (buf, false),
            };
            let room = MAX_LINE.saturating_sub(self.line.len());
            if chunk.len() > room {
                cut = true;
            }
            self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            seen += chunk.len();
            let n = chunk.len();
            self.input.consume(n);
            if done {
                return Ok((seen, cut));
            }
        }
    }

    pub(crate) fn next(&mut self) -> Option<Result<RawRecord<'_>, FileError>> {
        loop {
            let (seen, cut) = match self.read_line() {
                Ok(r) => r,
                Err(e) => {
                    return Some(Err(FileError::Truncated {
                        row: self.row,
                        reason: e.to_string(),
                    }))
                }
            };
            if seen == 0 {
                return None;
            }
            self.row += 1;
            let mut raw = RawRecord::new(self.row);
            if cut {
                raw.problem(
                    None,
                    ErrorCode::MalformedRow,
                    format!("line is longer than {} MiB", MAX_LINE >> 20),
                );
                return Some(Ok(raw));
            }
            let mut text = &self.line[..];
            if self.row == 1 {
                text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let object = match serde_json::from_slice::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    raw.problem(None, ErrorCode::MalformedRow, "line is not a JSON object");
                    return Some(Ok(raw));
                }
                Err(e) => {
                    raw.problem(
                        None,
                        ErrorCode::MalformedRow,
                        format!("not valid JSON: {e}"),
                    );
                    return Some(Ok(raw));
                }
            };
            for (key, value) in object {
                let Some(field) = Field::from_name(&key) else {
                    // Same rule as a CSV header: an unknown key may be an
                    // identifier, so the whole file fails, naming the key.
                    return Some(Err(FileError::UnknownColumn { column: key }));
                };
                match value {
                    Value::Null => {}
                    Value::String(s) => raw.set(field, Cow::Owned(s)),
                    Value::Number(n) => raw.set(field, Cow::Owned(n.to_string())),
                    Value::Bool(_) | Value::Array(_) | Value::Object(_) => raw.problem(
                        Some(field),
                        ErrorCode::WrongType,
                        "expected a string or a number",
                    ),
                }
            }
            return Some(Ok(raw));
        }
    }
}
