//! Every example file in `schemas/examples/` is valid against its schema:
//! records (`*.json`) against the Avro schema their name starts with, feeds
//! (`feed.*`) row by row against the rules and the Attendance schema.

use apache_avro::types::Value;
use chrono::Utc;
use istv_core::{schema, Feed, FeedWriter, Field, Format, Validator};
use std::path::PathBuf;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn example_records_validate_against_their_schemas() {
    let mut checked = 0;
    for path in examples()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let name = path.file_name().unwrap().to_str().unwrap();
        let schema = match name.split('.').next().unwrap() {
            "attendance" => schema::attendance_v1(),
            "geocoded_event" => schema::geocoded_event_v1(),
            "rejection" => schema::rejection_v1(),
            "aggregate" => schema::aggregate_v1(),
            other => panic!("{name}: no schema named {other}"),
        };
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let value = avro_of(json);
        let resolved = value
            .resolve(schema)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(resolved.validate(schema), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn example_feeds_are_valid_rows_of_the_attendance_schema() {
    let mut rows = 0;
    for path in examples()
        .into_iter()
        .filter(|p| p.file_stem().is_some_and(|s| s == "feed"))
    {
        let mut feed = Feed::open_path(&path, None).unwrap();
        let mut validator = Validator::new(Utc::now());
        let mut writer = FeedWriter::new(Format::Avro, Vec::new()).unwrap();
        while let Some(raw) = feed.next() {
            let raw = raw.unwrap();
            let verdict = validator.validate(&raw);
            assert!(
                verdict.is_valid(),
                "{}: {:?}",
                path.display(),
                verdict.errors
            );
            let text: [Option<String>; Field::COUNT] =
                Field::ALL.map(|f| raw.get(f).map(str::to_string));
            // Appending checks the datum against the schema.
            writer.write(&text).unwrap();
            rows += 1;
        }
        writer.finish().unwrap();
    }
    assert_eq!(rows, 5);
}

/// A JSON document as an Avro value before resolution (numbers as long or
/// double, objects as maps); `resolve` then fits it to the schema.
fn avro_of(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        // Int where it fits: Avro promotes int to long, never the reverse.
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => i32::try_from(i).map(Value::Int).unwrap_or(Value::Long(i)),
            None => Value::Double(n.as_f64().unwrap()),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(avro_of).collect()),
        serde_json::Value::Object(o) => {
            Value::Map(o.into_iter().map(|(k, v)| (k, avro_of(v))).collect())
        }
    }
}
