//! Avro container files written by another implementation (Python's
//! fastavro) with a different but compatible writer schema: other namespace,
//! other field order, a subset of the fields, int and float where the reader
//! has unions of int and double, and the snappy and deflate codecs.

use chrono::{TimeZone, Utc};
use istv_core::{AssaultMethod, Feed, FileError, Format, LocationType, Sex, Validator};
use std::process::Command;

const WRITER: &str = r#"
import sys, fastavro
schema = fastavro.parse_schema({
    "type": "record", "name": "Attendance", "namespace": "nhs.trust.export",
    "fields": [
        {"name": "record_id", "type": "string"},
        {"name": "site_code", "type": "string"},
        {"name": "assault_datetime", "type": "string"},
        {"name": "assault_method", "type": "string"},
        {"name": "assault_location_type", "type": "string"},
        {"name": "assault_latitude", "type": ["null", "float"]},
        {"name": "assault_longitude", "type": ["null", "float"]},
        {"name": "patient_age", "type": "int"},
        {"name": "patient_sex", "type": ["null", "string"], "default": None},
    ],
})
rows = [
    {"record_id": "F1", "site_code": "RJ122", "assault_datetime": "2024-03-01T23:15",
     "assault_method": "Sharp Object", "assault_location_type": "01",
     "assault_latitude": 51.5, "assault_longitude": -0.125, "patient_age": 19, "patient_sex": "F"},
    {"record_id": "F2", "site_code": "RJ122", "assault_datetime": "02/03/2024 01:50",
     "assault_method": "body_part", "assault_location_type": "home",
     "assault_latitude": None, "assault_longitude": None, "patient_age": 131, "patient_sex": None},
]
with open(sys.argv[1], "wb") as out:
    fastavro.writer(out, schema, rows, codec=sys.argv[2])
"#;

fn write_with_fastavro(codec: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".avro").tempfile().unwrap();
    let out = Command::new("python3")
        .args(["-c", WRITER, file.path().to_str().unwrap(), codec])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "fastavro could not write the file (install it with `bash scripts/test`, which runs pip): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

#[test]
fn files_written_by_fastavro_are_read_by_schema_resolution() {
    for codec in ["snappy", "deflate", "null"] {
        let file = write_with_fastavro(codec);
        let mut feed = Feed::open_path(file.path(), None).unwrap();
        assert_eq!(feed.format(), Format::Avro);
        let mut v = Validator::new(Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap());
        let first = v.validate(&feed.next().unwrap().unwrap());
        let r = first.record.expect("row 1 is valid");
        assert_eq!(
            (r.site_code.as_str(), r.record_id.as_str()),
            ("RJ122", "F1")
        );
        assert_eq!(r.assault_method, AssaultMethod::SharpObject);
        assert_eq!(r.assault_location_type, LocationType::Street);
        // 51.5 and -0.125 are exact in single precision, so promotion to
        // double keeps them exactly.
        assert_eq!(r.assault_latlon, Some((51.5, -0.125)));
        assert_eq!(r.patient_age, Some(19));
        assert_eq!(r.patient_sex, Some(Sex::Female));
        assert_eq!(
            r.assault.instant,
            Utc.with_ymd_and_hms(2024, 3, 1, 23, 15, 0).unwrap()
        );

        let second = v.validate(&feed.next().unwrap().unwrap());
        assert_eq!(second.row, 2);
        let errors: Vec<(Option<&str>, &str)> = second
            .errors
            .iter()
            .map(|e| (e.field.as_deref(), e.code.as_str()))
            .collect();
        assert_eq!(
            errors,
            vec![(Some("patient_age"), "out_of_range")],
            "{codec}"
        );
        assert!(feed.next().is_none());
    }
}

#[test]
fn wrong_magic_is_a_file_error() {
    let file = write_with_fastavro("null");
    let mut bytes = std::fs::read(file.path()).unwrap();
    bytes[3] = 9;
    let err = Feed::from_reader(std::io::Cursor::new(bytes), Some(Format::Avro))
        .err()
        .unwrap();
    assert!(matches!(err, FileError::Avro(_)), "{err}");
}
