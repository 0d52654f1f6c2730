//! The ISTV attendance record (NHS ISB 1594 minimum data set) as istv accepts it:
//! the field list, the domain rules that decide whether a row is valid, and the
//! readers for the feed formats EDs send (CSV, JSON Lines, Avro; each optionally
//! gzip-compressed).
//!
//! Everything here is pure: no async runtime, no network, no database. Readers
//! take any [`std::io::Read`], so the same code serves the command line, the
//! HTTP upload and a Kafka consumer.
#![warn(missing_docs)]

pub mod error;
pub mod formats;
pub mod generate;
pub mod nhs;
pub mod postcode;
pub mod record;
pub mod rules;
pub mod schema;
pub mod time;

pub use error::{ErrorCode, FieldError, FileError};
pub use formats::{writer::FeedWriter, Feed, Format, RawRecord};
pub use record::{AgeBand, AssaultMethod, Attendance, Field, LocationType, Sex};
pub use rules::{Tally, Validator, Verdict};
