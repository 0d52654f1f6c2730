//! The Kafka topics of the scaled-out services, their keys and the schema
//! of their values.

/// Validated attendances, from `istv ingest` (`istv.v1.Attendance`).
pub const ATTENDANCES: &str = "istv.attendances.v1";
/// Row rejections, from `istv ingest` (`istv.v1.Rejection`).
pub const REJECTIONS: &str = "istv.rejections.v1";
/// Geocoded events, from `istv geocode` (`istv.v1.GeocodedEvent`).
pub const GEOCODED: &str = "istv.geocoded.v1";
/// Published aggregates, compacted: the latest count of each group, from
/// `istv aggregate` (`istv.v1.Aggregate`).
pub const AGGREGATES: &str = "istv.aggregates.v1";
/// Messages no consumer could read, unchanged, with their reason in
/// headers (`istv_wire::dead_letter`).
pub const DEAD_LETTERS: &str = "istv.dead-letters.v1";

/// What a topic holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Messages are deleted after the retention time.
    Delete,
    /// Only the latest message of each key is kept.
    Compact,
}

/// One topic: its name (with the prefix), how it is cleaned and the Avro
/// schema of its values (none for the dead letters, which hold anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The name, prefix included.
    pub name: String,
    /// Delete after retention, or compact.
    pub cleanup: Cleanup,
    /// The schema text of its values (`schemas/`).
    pub schema: Option<&'static str>,
}

/// Every topic, with `prefix` before each name.
pub fn all(prefix: &str) -> Vec<Topic> {
    use istv_core::schema as s;
    let topic = |name: &str, cleanup, schema| Topic {
        name: format!("{prefix}{name}"),
        cleanup,
        schema,
    };
    vec![
        topic(ATTENDANCES, Cleanup::Delete, Some(s::ATTENDANCE_V1)),
        topic(REJECTIONS, Cleanup::Delete, Some(s::REJECTION_V1)),
        topic(GEOCODED, Cleanup::Delete, Some(s::GEOCODED_EVENT_V1)),
        topic(AGGREGATES, Cleanup::Compact, Some(s::AGGREGATE_V1)),
        topic(DEAD_LETTERS, Cleanup::Delete, None),
    ]
}

/// The key of a record's messages, `site_code/record_id`: every version of
/// a record goes to one partition, in order. A site code never holds `/`
/// (ODS codes are letters and digits).
pub fn record_key(site_code: &str, record_id: &str) -> String {
    format!("{site_code}/{record_id}")
}

/// The schema registry subject of a topic's values (Confluent's
/// TopicNameStrategy).
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}
