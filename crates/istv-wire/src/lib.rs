//! The messages istv's services exchange over Kafka, as bytes: values in the
//! Confluent wire format (byte 0 is 0, bytes 1-4 the schema id big-endian,
//! then the plain Avro binary datum, not a container file), the
//! compatibility levels a schema registry checks, and the rule that sends a
//! message that cannot be read to the dead-letter topic with its reason;
//! and the domain's records as the values of the topics' schemas
//! ([`records`]).
//!
//! Pure: no I/O. Finding a schema by its id is the caller's (a registry
//! client); [`Decoder`] only says [`WireError::UnknownSchema`] when it has
//! not been given the id.
#![warn(missing_docs)]

pub mod compat;
pub mod dead_letter;
mod decode;
mod error;
mod frame;
pub mod records;
pub mod topics;

pub use compat::{Compatibility, Level};
pub use dead_letter::{route, DeadLetter, Origin, Routed};
pub use decode::{Decoded, Decoder};
pub use error::{PoisonKind, WireError};
pub use frame::{encode, encode_ser, frame, unframe, HEADER_LEN, MAGIC};
pub use records::{GeocodedEvent, MappingError, Rejection};

pub use apache_avro::types::Value;
pub use apache_avro::Schema;

#[cfg(test)]
mod tests;
