//! Why a message could not be written or read.

/// The kinds of message a consumer cannot read, each with a stable code
/// (the `istv.dead_letter.reason` header, a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PoisonKind {
    /// Shorter than the 5-byte header, or a first byte other than 0.
    BadFrame,
    /// A schema id the registry does not know.
    UnknownSchema,
    /// The datum ends before the writer schema says it does.
    TruncatedDatum,
    /// The datum's bytes are not a value of the writer schema (a bad union
    /// index or enum index, text that is not UTF-8, bytes left over).
    MalformedDatum,
    /// The writer schema does not resolve to the reader schema.
    Unresolvable,
}

impl PoisonKind {
    /// Every kind, in order.
    pub const ALL: [PoisonKind; 5] = [
        PoisonKind::BadFrame,
        PoisonKind::UnknownSchema,
        PoisonKind::TruncatedDatum,
        PoisonKind::MalformedDatum,
        PoisonKind::Unresolvable,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            PoisonKind::BadFrame => "bad_frame",
            PoisonKind::UnknownSchema => "unknown_schema_id",
            PoisonKind::TruncatedDatum => "truncated_datum",
            PoisonKind::MalformedDatum => "malformed_datum",
            PoisonKind::Unresolvable => "unresolvable_schema",
        }
    }
}

/// Why a message could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the header.
    #[error("message of {len} bytes is shorter than the 5-byte wire format header")]
    TooShort {
        /// The message's length.
        len: usize,
    },
    /// The first byte is not the wire format's 0.
    #[error("magic byte is {found}, expected 0")]
    BadMagic {
        /// The byte found.
        found: u8,
    },
    /// The schema id is not one the decoder was given.
    #[error("schema id {0} is not known")]
    UnknownSchema(u32),
    /// The datum ends early.
    #[error("avro datum of schema id {schema_id} is truncated: {reason}")]
    TruncatedDatum {
        /// The writer schema's id.
        schema_id: u32,
        /// What the Avro reader found.
        reason: String,
    },
    /// The datum is not a value of its writer schema.
    #[error("avro datum of schema id {schema_id} is malformed: {reason}")]
    MalformedDatum {
        /// The writer schema's id.
        schema_id: u32,
        /// What the Avro reader found.
        reason: String,
    },
    /// A valid datum followed by more bytes.
    #[error("avro datum of schema id {schema_id} is followed by {extra} more bytes")]
    TrailingBytes {
        /// The writer schema's id.
        schema_id: u32,
        /// How many bytes are left over.
        extra: usize,
    },
    /// The writer schema cannot be read as the reader schema.
    #[error("writer schema id {schema_id} does not resolve to {reader}: {reason}")]
    Unresolvable {
        /// The writer schema's id.
        schema_id: u32,
        /// The reader schema's full name.
        reader: String,
        /// Why, as the schema compatibility check says.
        reason: String,
    },
    /// A value to write that is not a value of the schema.
    #[error("value does not match schema {schema}: {reason}")]
    Encode {
        /// The schema's full name.
        schema: String,
        /// Why.
        reason: String,
    },
}

impl WireError {
    /// The poison kind of a read error; `None` for [`WireError::Encode`].
    pub fn kind(&self) -> Option<PoisonKind> {
        Some(match self {
            WireError::TooShort { .. } | WireError::BadMagic { .. } => PoisonKind::BadFrame,
            WireError::UnknownSchema(_) => PoisonKind::UnknownSchema,
            WireError::TruncatedDatum { .. } => PoisonKind::TruncatedDatum,
            WireError::MalformedDatum { .. } | WireError::TrailingBytes { .. } => {
                PoisonKind::MalformedDatum
            }
            WireError::Unresolvable { .. } => PoisonKind::Unresolvable,
            WireError::Encode { .. } => return None,
        })
    }

    /// The schema id from the header, when the header was read.
    pub fn schema_id(&self) -> Option<u32> {
        match self {
            WireError::UnknownSchema(id)
            | WireError::TruncatedDatum { schema_id: id, .. }
            | WireError::MalformedDatum { schema_id: id, .. }
            | WireError::TrailingBytes { schema_id: id, .. }
            | WireError::Unresolvable { schema_id: id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// The full name of a schema, or its kind for an unnamed one.
pub(crate) fn schema_name(schema: &apache_avro::Schema) -> String {
    match schema.name() {
        Some(name) => name.fullname(None),
        None => format!("{:?}", apache_avro::schema::SchemaKind::from(schema)).to_lowercase(),
    }
}

/// What an Avro error is, as the name of its kind only (`ReadString`,
/// `GetUnionVariant`...): its text may quote the value, which may be a
/// record's content, and errors are logged and sent in headers.
pub(crate) fn avro_reason(error: &apache_avro::Error) -> String {
    let debug = format!("{:?}", error.details());
    let end = debug
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(debug.len());
    debug[..end].to_owned()
}
