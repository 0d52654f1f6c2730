//! Where a consumed message goes: on to the stage as a record, or to the
//! dead-letter topic with its reason in headers. A poison message never
//! stops a consumer.

use crate::{unframe, Decoded, Decoder, PoisonKind, WireError};

/// Header naming the poison kind's code (`bad_frame`...).
pub const REASON_HEADER: &str = "istv.dead_letter.reason";
/// Header with the error's text.
pub const ERROR_HEADER: &str = "istv.dead_letter.error";
/// Header with the topic the message was read from.
pub const TOPIC_HEADER: &str = "istv.dead_letter.topic";
/// Header with its partition.
pub const PARTITION_HEADER: &str = "istv.dead_letter.partition";
/// Header with its offset.
pub const OFFSET_HEADER: &str = "istv.dead_letter.offset";
/// Header with the schema id of its header, when it had one.
pub const SCHEMA_ID_HEADER: &str = "istv.dead_letter.schema_id";

/// Where a message was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// A message bound for the dead-letter topic: the original key and value
/// are sent unchanged, with these headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why.
    pub kind: PoisonKind,
    /// The headers to send, in order.
    pub headers: Vec<(&'static str, String)>,
}

/// What to do with a consumed message.
#[derive(Debug, Clone, PartialEq)]
pub enum Routed {
    /// Hand it to the stage.
    Record(Decoded),
    /// Send it to the dead-letter topic.
    DeadLetter(DeadLetter),
}

/// The schema id a message needs looked up before [`route`]: one that
/// the decoder does not know yet. The caller asks the registry and gives
/// the schema to the decoder; an id the registry does not know stays
/// unknown, and the message is then dead-lettered as `unknown_schema_id`.
pub fn needs_lookup(decoder: &Decoder, value: Option<&[u8]>) -> Option<u32> {
    let (id, _) = unframe(value?).ok()?;
    (!decoder.knows(id)).then_some(id)
}

/// Routes a consumed message (`None` for a record with no value, which is
/// a bad frame: a record topic has no tombstones).
pub fn route(decoder: &Decoder, value: Option<&[u8]>, origin: &Origin<'_>) -> Routed {
    match decoder.decode(value.unwrap_or_default()) {
        Ok(decoded) => Routed::Record(decoded),
        Err(error) => Routed::DeadLetter(dead_letter(&error, origin)),
    }
}

/// The dead letter of a read error.
pub fn dead_letter(error: &WireError, origin: &Origin<'_>) -> DeadLetter {
    // Encode errors are not read errors; a consumer never sees one.
    let kind = error.kind().unwrap_or(PoisonKind::MalformedDatum);
    let mut headers = vec![
        (REASON_HEADER, kind.code().to_owned()),
        (ERROR_HEADER, error.to_string()),
        (TOPIC_HEADER, origin.topic.to_owned()),
        (PARTITION_HEADER, origin.partition.to_string()),
        (OFFSET_HEADER, origin.offset.to_string()),
    ];
    if let Some(id) = error.schema_id() {
        headers.push((SCHEMA_ID_HEADER, id.to_string()));
    }
    DeadLetter { kind, headers }
}
