//! The Confluent wire format's 5-byte header, and writing a value in it.

use crate::error::{avro_reason, schema_name};
use crate::WireError;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use serde::Serialize;

/// The first byte of every message.
pub const MAGIC: u8 = 0;

/// The header's length: the magic byte and the 4-byte schema id.
pub const HEADER_LEN: usize = 5;

/// The message of an already encoded Avro datum.
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + datum.len());
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// The schema id and the datum of a message.
pub fn unframe(message: &[u8]) -> Result<(u32, &[u8]), WireError> {
    if message.len() < HEADER_LEN {
        return Err(WireError::TooShort { len: message.len() });
    }
    if message[0] != MAGIC {
        return Err(WireError::BadMagic { found: message[0] });
    }
    let id = u32::from_be_bytes([message[1], message[2], message[3], message[4]]);
    Ok((id, &message[HEADER_LEN..]))
}

/// The message of `value`, written with `schema` registered as `schema_id`.
/// The value is resolved against the schema first, so a union branch may be
/// given as its plain value.
pub fn encode(schema_id: u32, schema: &Schema, value: Value) -> Result<Vec<u8>, WireError> {
    let failed = |reason: String| WireError::Encode {
        schema: schema_name(schema),
        reason,
    };
    let value = value.resolve(schema).map_err(|e| failed(avro_reason(&e)))?;
    let datum = GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(|e| failed(avro_reason(&e)))?;
    Ok(frame(schema_id, &datum))
}

/// The message of a serde value (field names as in the schema).
pub fn encode_ser<T: Serialize>(
    schema_id: u32,
    schema: &Schema,
    value: &T,
) -> Result<Vec<u8>, WireError> {
    let value = apache_avro::to_value(value).map_err(|e| WireError::Encode {
        schema: schema_name(schema),
        reason: avro_reason(&e),
    })?;
    encode(schema_id, schema, value)
}
