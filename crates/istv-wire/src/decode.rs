//! Reading messages written with any registered writer schema that
//! resolves to the reader's schema.

use crate::error::schema_name;
use crate::{unframe, WireError};
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::types::Value;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::io::ErrorKind;

/// A message read: its writer schema's id and its value in the reader
/// schema's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The writer schema's id.
    pub schema_id: u32,
    /// The value, resolved to the reader schema.
    pub value: Value,
}

/// A writer schema given to the decoder, and whether it resolves.
#[derive(Debug, Clone)]
enum Writer {
    Resolves(Schema),
    DoesNot(String),
}

/// Reads messages into one reader schema, knowing the writer schemas it has
/// been given by id. On [`WireError::UnknownSchema`] the caller looks the id
/// up (in the registry), gives it with [`Decoder::add_writer`] and reads
/// again; an id the registry does not know either is poison.
#[derive(Debug, Clone)]
pub struct Decoder {
    reader: Schema,
    writers: HashMap<u32, Writer>,
}

impl Decoder {
    /// A decoder into `reader` that knows no writer schema yet.
    pub fn new(reader: Schema) -> Self {
        Decoder {
            reader,
            writers: HashMap::new(),
        }
    }

    /// The reader schema.
    pub fn reader(&self) -> &Schema {
        &self.reader
    }

    /// True once `id` has been given.
    pub fn knows(&self, id: u32) -> bool {
        self.writers.contains_key(&id)
    }

    /// Gives the writer schema registered as `id`. Whether it resolves to
    /// the reader schema is checked once, here; one that does not makes
    /// every message of that id [`WireError::Unresolvable`].
    pub fn add_writer(&mut self, id: u32, writer: Schema) {
        let entry = match SchemaCompatibility::can_read(&writer, &self.reader) {
            Ok(_) => Writer::Resolves(writer),
            Err(e) => Writer::DoesNot(e.to_string()),
        };
        self.writers.insert(id, entry);
    }

    /// [`Decoder::add_writer`] from the schema's JSON text, as a registry
    /// returns it; text that does not parse makes the id unresolvable.
    pub fn add_writer_text(&mut self, id: u32, text: &str) {
        match Schema::parse_str(text) {
            Ok(schema) => self.add_writer(id, schema),
            Err(e) => {
                self.writers.insert(
                    id,
                    Writer::DoesNot(format!("writer schema does not parse: {e}")),
                );
            }
        }
    }

    /// Reads one message.
    pub fn decode(&self, message: &[u8]) -> Result<Decoded, WireError> {
        let (schema_id, mut datum) = unframe(message)?;
        let writer = match self.writers.get(&schema_id) {
            None => return Err(WireError::UnknownSchema(schema_id)),
            Some(Writer::DoesNot(reason)) => {
                return Err(WireError::Unresolvable {
                    schema_id,
                    reader: schema_name(&self.reader),
                    reason: reason.clone(),
                })
            }
            Some(Writer::Resolves(schema)) => schema,
        };
        let mut watched = EofWatch {
            rest: datum,
            hit_end: false,
        };
        let read = GenericDatumReader::builder(writer)
            .reader_schema(&self.reader)
            .build()
            .and_then(|r| r.read_value(&mut watched));
        // apache-avro reads a string or boolean cut off by the end as null
        // instead of failing, so any read past the end is a truncation.
        if watched.hit_end {
            return Err(WireError::TruncatedDatum {
                schema_id,
                reason: "the datum ends inside a value".into(),
            });
        }
        let value = read.map_err(|e| datum_error(schema_id, &e))?;
        datum = watched.rest;
        if !datum.is_empty() {
            return Err(WireError::TrailingBytes {
                schema_id,
                extra: datum.len(),
            });
        }
        Ok(Decoded { schema_id, value })
    }

    /// Reads one message into a serde type (field names as in the reader
    /// schema). A value that does not fit the type is malformed.
    pub fn decode_into<T: DeserializeOwned>(&self, message: &[u8]) -> Result<(u32, T), WireError> {
        let decoded = self.decode(message)?;
        let value =
            apache_avro::from_value(&decoded.value).map_err(|e| WireError::MalformedDatum {
                schema_id: decoded.schema_id,
                reason: format!(
                    "the value does not fit the target type ({})",
                    crate::error::avro_reason(&e)
                ),
            })?;
        Ok((decoded.schema_id, value))
    }
}

/// A datum that ends early (an I/O end of file, or a length beyond what any
/// message holds) is truncated; any other failure malformed.
fn datum_error(schema_id: u32, error: &apache_avro::Error) -> WireError {
    let reason = crate::error::avro_reason(error);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut truncated = matches!(
        error.details(),
        apache_avro::error::Details::MemoryAllocation { .. }
    );
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            truncated |= io.kind() == ErrorKind::UnexpectedEof;
        }
        source = e.source();
    }
    if truncated {
        WireError::TruncatedDatum { schema_id, reason }
    } else {
        WireError::MalformedDatum { schema_id, reason }
    }
}

/// A datum's bytes that remember whether a read asked for more than was
/// left: a complete datum is read with exact reads and never does.
struct EofWatch<'a> {
    rest: &'a [u8],
    hit_end: bool,
}

impl std::io::Read for EofWatch<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() > self.rest.len() {
            self.hit_end = true;
        }
        self.rest.read(buf)
    }
}
