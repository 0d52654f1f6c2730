//! Row-level problems (a row is rejected, the file goes on) and file-level
//! problems (the file cannot be read at all).

use serde::{Deserialize, Serialize};

/// A stable, machine-readable reason. The text form (`as_str`) is part of the
/// public interface: receipts, metrics labels and the Avro rejection record
/// carry it, so a variant is never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A required field is blank or absent.
    MissingRequired,
    /// A date-time in none of the accepted layouts.
    InvalidDatetime,
    /// A value that is not one of the field's coded values.
    InvalidEnum,
    /// A number that does not parse.
    InvalidNumber,
    /// A number outside the field's range.
    OutOfRange,
    /// The assault is after the arrival at the ED.
    AssaultAfterArrival,
    /// The assault is more than 30 days before the arrival.
    AssaultTooEarly,
    /// The date-time is in the future.
    InFuture,
    /// Only one of a coordinate pair is given.
    IncompleteCoordinates,
    /// Latitude and longitude outside the United Kingdom.
    OutsideUk,
    /// Easting and northing outside the British National Grid.
    OutsideNationalGrid,
    /// A postcode that is not a full or partial UK postcode.
    InvalidPostcode,
    /// `assault_method_other` given with a method other than `other`.
    MethodOtherNotAllowed,
    /// A value that looks like an NHS number in a text field.
    NhsNumber,
    /// A site code that is not an ODS site code, or not the uploader's site.
    InvalidSiteCode,
    /// A value longer than the field allows.
    TooLong,
    /// Control characters (line breaks, tabs...) in a coded or reference
    /// field; usually an unbalanced quote merged two rows.
    ControlCharacters,
    /// A field whose bytes are not UTF-8.
    InvalidUtf8,
    /// A JSON or Avro value of the wrong type.
    WrongType,
    /// A row that cannot be split into fields (wrong field count, not an
    /// object, broken quoting).
    MalformedRow,
    /// A later row with the same `record_id` replaces this one.
    DuplicateRecordId,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::MissingRequired,
        ErrorCode::InvalidDatetime,
        ErrorCode::InvalidEnum,
        ErrorCode::InvalidNumber,
        ErrorCode::OutOfRange,
        ErrorCode::AssaultAfterArrival,
        ErrorCode::AssaultTooEarly,
        ErrorCode::InFuture,
        ErrorCode::IncompleteCoordinates,
        ErrorCode::OutsideUk,
        ErrorCode::OutsideNationalGrid,
        ErrorCode::InvalidPostcode,
        ErrorCode::MethodOtherNotAllowed,
        ErrorCode::NhsNumber,
        ErrorCode::InvalidSiteCode,
        ErrorCode::TooLong,
        ErrorCode::ControlCharacters,
        ErrorCode::InvalidUtf8,
        ErrorCode::WrongType,
        ErrorCode::MalformedRow,
        ErrorCode::DuplicateRecordId,
    ];

    /// The stable code text.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingRequired => "missing_required",
            ErrorCode::InvalidDatetime => "invalid_datetime",
            ErrorCode::InvalidEnum => "invalid_enum",
            ErrorCode::InvalidNumber => "invalid_number",
            ErrorCode::OutOfRange => "out_of_range",
            ErrorCode::AssaultAfterArrival => "assault_after_arrival",
            ErrorCode::AssaultTooEarly => "assault_too_early",
            ErrorCode::InFuture => "in_future",
            ErrorCode::IncompleteCoordinates => "incomplete_coordinates",
            ErrorCode::OutsideUk => "outside_uk",
            ErrorCode::OutsideNationalGrid => "outside_national_grid",
            ErrorCode::InvalidPostcode => "invalid_postcode",
            ErrorCode::MethodOtherNotAllowed => "method_other_not_allowed",
            ErrorCode::NhsNumber => "nhs_number",
            ErrorCode::InvalidSiteCode => "invalid_site_code",
            ErrorCode::TooLong => "too_long",
            ErrorCode::ControlCharacters => "control_characters",
            ErrorCode::InvalidUtf8 => "invalid_utf8",
            ErrorCode::WrongType => "wrong_type",
            ErrorCode::MalformedRow => "malformed_row",
            ErrorCode::DuplicateRecordId => "duplicate_record_id",
        }
    }

    /// The code with this text.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one row: the receipt line an ED data manager reads.
///
/// The message never quotes a free-text value, so a receipt or log line
/// cannot leak what a patient said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// 1-based data row (the header row of a CSV is not counted).
    pub row: u64,
    /// The field (column name); `None` for a problem with the row as a whole.
    pub field: Option<String>,
    /// Stable reason code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "row {}: {}: {} ({})",
                self.row, field, self.message, self.code
            ),
            None => write!(f, "row {}: {} ({})", self.row, self.message, self.code),
        }
    }
}

/// A problem that stops the whole file being read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or read.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// The format could not be told from the name or the content.
    #[error("cannot tell the format; name it with --format csv|jsonl|avro")]
    UnknownFormat,
    /// A column that is not in the schema: possibly a patient identifier.
    #[error("column {column:?} is not in the ISTV schema; remove it before sending (patient identifiers such as NHS number, name, date of birth or address must never be sent)")]
    UnknownColumn {
        /// The column as written.
        column: String,
    },
    /// A column given twice.
    #[error("column {column:?} appears more than once")]
    DuplicateColumn {
        /// The column as written.
        column: String,
    },
    /// A required column is missing from the header.
    #[error("required column {column:?} is missing from the header")]
    MissingColumn {
        /// The column name.
        column: &'static str,
    },
    /// The CSV header row cannot be read.
    #[error("the header row cannot be read: {0}")]
    Header(String),
    /// The gzip stream is broken.
    #[error("the gzip data is broken: {0}")]
    Gzip(String),
    /// Not an Avro object container file, or its header or a block is broken.
    #[error("not a readable Avro container file: {0}")]
    Avro(String),
    /// The Avro writer schema cannot be read as an ISTV attendance.
    #[error("the Avro writer schema is not compatible with istv.v1.Attendance: {0}")]
    AvroSchema(String),
    /// Reading stopped part way, e.g. a truncated compressed stream.
    #[error("reading stopped after row {row}: {reason}")]
    Truncated {
        /// Rows read before the failure.
        row: u64,
        /// What went wrong.
        reason: String,
    },
}
