//! The domain's records as the Avro values of the topics' schemas, and
//! back: [`Attendance`](istv_core::Attendance) as `istv.v1.Attendance`,
//! [`Event`](istv_aggregate::Event) as `istv.v1.GeocodedEvent` and a row
//! error as `istv.v1.Rejection`.
//!
//! Values read back are those the decoder gives, resolved to the reader
//! schema (`schemas/`). A value that is a value of the schema but not of the
//! domain (a rule it breaks, a symbol it does not know) is a
//! [`MappingError`], which a consumer dead-letters as a malformed datum.

mod attendance;
mod geocoded;
mod rejection;

pub use attendance::{attendance_from_value, attendance_value, instant_text};
pub use geocoded::GeocodedEvent;
pub use rejection::{rejection_from_value, rejection_value, Rejection};

use crate::WireError;
use apache_avro::types::Value;

/// Why a value of the schema is not a record of the domain. The text names
/// fields and rule codes, never a value: a value may be a record's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The value is not a record.
    #[error("the value is not a record")]
    NotARecord,
    /// A field of the reader schema is missing from the value.
    #[error("field {0} is missing")]
    Missing(&'static str),
    /// A field holds another type than its schema's.
    #[error("field {0} has the wrong type")]
    WrongType(&'static str),
    /// A field's text or symbol is not one the domain knows.
    #[error("field {0} holds no value the domain knows")]
    Unknown(&'static str),
    /// A number beyond what the domain or the schema holds.
    #[error("field {0} is out of range")]
    OutOfRange(&'static str),
    /// The attendance breaks the domain rules: each field and rule code.
    #[error("the attendance breaks the rules: {0}")]
    Rules(String),
}

impl MappingError {
    /// The read error of a message of `schema_id` whose value does not map:
    /// a malformed datum.
    pub fn into_wire(self, schema_id: u32) -> WireError {
        WireError::MalformedDatum {
            schema_id,
            reason: self.to_string(),
        }
    }
}

/// The value of a record's field, by name.
pub(crate) fn field<'v>(value: &'v Value, name: &'static str) -> Result<&'v Value, MappingError> {
    let Value::Record(fields) = value else {
        return Err(MappingError::NotARecord);
    };
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .ok_or(MappingError::Missing(name))
}

/// The value inside an optional (union) field, `None` for null.
pub(crate) fn opt(value: &Value) -> Option<&Value> {
    match value {
        Value::Union(_, inner) => opt(inner),
        Value::Null => None,
        v => Some(v),
    }
}

#[cfg(test)]
mod tests;
