//! The Avro schemas in `schemas/`, compiled in. They are the single source of
//! truth for every record that crosses a process boundary.

use apache_avro::Schema;
use std::sync::OnceLock;

macro_rules! schema {
    ($(#[$meta:meta])* $fn:ident, $text:ident, $file:literal) => {
        $(#[$meta])*
        pub const $text: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/", $file));

        $(#[$meta])*
        pub fn $fn() -> &'static Schema {
            static SCHEMA: OnceLock<Schema> = OnceLock::new();
            SCHEMA.get_or_init(|| Schema::parse_str($text).expect(concat!($file, " is a valid Avro schema")))
        }
    };
}

schema!(
    /// `istv.v1.Attendance`: a row as an ED sends it.
    attendance_v1, ATTENDANCE_V1, "attendance.v1.avsc"
);
schema!(
    /// `istv.v1.GeocodedEvent`: an accepted row after geocoding.
    geocoded_event_v1, GEOCODED_EVENT_V1, "geocoded_event.v1.avsc"
);
schema!(
    /// `istv.v1.Rejection`: one problem with one row.
    rejection_v1, REJECTION_V1, "rejection.v1.avsc"
);
schema!(
    /// `istv.v1.Aggregate`: one published count.
    aggregate_v1, AGGREGATE_V1, "aggregate.v1.avsc"
);

/// Every schema with its file name, for tooling and tests.
pub fn all() -> [(&'static str, &'static Schema); 4] {
    [
        ("attendance.v1.avsc", attendance_v1()),
        ("geocoded_event.v1.avsc", geocoded_event_v1()),
        ("rejection.v1.avsc", rejection_v1()),
        ("aggregate.v1.avsc", aggregate_v1()),
    ]
}

/// The field names of a record schema.
pub fn record_fields(schema: &Schema) -> Vec<&str> {
    match schema {
        Schema::Record(r) => r.fields.iter().map(|f| f.name.as_str()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Field;

    #[test]
    fn attendance_schema_has_exactly_the_feed_columns() {
        let names = record_fields(attendance_v1());
        let want: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names, want);
    }

    #[test]
    fn every_schema_parses_and_is_named_with_its_version() {
        for (file, schema) in all() {
            let name = schema.name().expect("record schemas are named");
            assert_eq!(name.namespace(), Some("istv.v1"), "{file}");
        }
    }
}
