//! Avro object container files, written with any writer schema that can be
//! read as `istv.v1.Attendance` (Avro schema resolution).

use super::RawRecord;
use crate::error::{ErrorCode, FileError};
use crate::record::Field;
use crate::schema;
use apache_avro::schema::Schema;
use apache_avro::types::Value;
use apache_avro::Reader;
use std::borrow::Cow;
use std::io::BufRead;

// apache-avro's own error text can quote the datum being read (a value that
// does not resolve is printed whole), and a value may identify a patient:
// read errors become these fixed messages, which name the place, not the
// value. Schema errors keep their text, which is about the writer schema.

/// Why the container header could not be read.
const HEADER_UNREADABLE: &str =
    "the header is missing or broken, or its writer schema cannot be parsed";

/// Why a record could not be read.
const DATUM_UNREADABLE: &str = "the next Avro record could not be read: a block is corrupt or \
     truncated, or a value does not resolve to istv.v1.Attendance (a union branch or type it has no field type for)";

pub(crate) struct AvroFeed<R: BufRead> {
    reader: Reader<'static, R>,
    row: u64,
}

impl<R: BufRead> AvroFeed<R> {
    pub(crate) fn new(input: R) -> Result<Self, FileError> {
        let reader_schema = schema::attendance_v1();
        let reader = Reader::builder(input)
            .reader_schema(reader_schema)
            .build()
            .map_err(|_| FileError::Avro(HEADER_UNREADABLE.into()))?;
        let writer = reader.writer_schema();
        let Schema::Record(record) = writer else {
            return Err(FileError::AvroSchema(
                "the writer schema is not a record".into(),
            ));
        };
        // Resolution would silently drop unknown writer fields; an unknown
        // field may be an identifier, so refuse the file and name it.
        for field in &record.fields {
            if Field::from_name(&field.name).is_none() {
                return Err(FileError::UnknownColumn {
                    column: field.name.clone(),
                });
            }
        }
        apache_avro::schema_compatibility::SchemaCompatibility::can_read(writer, reader_schema)
            .map_err(|e| FileError::AvroSchema(e.to_string()))?;
        Ok(AvroFeed { reader, row: 0 })
    }

    pub(crate) fn next(&mut self) -> Option<Result<RawRecord<'static>, FileError>> {
        let value = match self.reader.next()? {
            Ok(v) => v,
            Err(_) => {
                return Some(Err(FileError::Truncated {
                    row: self.row,
                    reason: DATUM_UNREADABLE.into(),
                }))
            }
        };
        self.row += 1;
        let mut raw = RawRecord::new(self.row);
        let Value::Record(fields) = value else {
            raw.problem(None, ErrorCode::MalformedRow, "datum is not a record");
            return Some(Ok(raw));
        };
        for (name, value) in fields {
            let Some(field) = Field::from_name(&name) else {
                continue;
            };
            match text_of(value) {
                Ok(Some(text)) => raw.set(field, Cow::Owned(text)),
                Ok(None) => {}
                Err(kind) => raw.problem(
                    Some(field),
                    ErrorCode::WrongType,
                    format!("expected a string or a number, found {kind}"),
                ),
            }
        }
        Some(Ok(raw))
    }
}

/// The text form of a resolved value, as a CSV cell would hold it.
fn text_of(value: Value) -> Result<Option<String>, &'static str> {
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Union(_, inner) => return text_of(*inner),
        Value::String(s) | Value::Enum(_, s) => s,
        Value::Int(i) => i.to_string(),
        Value::Long(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Boolean(_) => return Err("a boolean"),
        Value::Bytes(_) | Value::Fixed(..) => return Err("bytes"),
        _ => return Err("a complex value"),
    }))
}
