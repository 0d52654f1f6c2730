//! The same records give the same verdicts whether they arrive as CSV, JSON
//! Lines or Avro, plain or gzip-compressed.

use chrono::{TimeZone, Utc};
use istv_core::formats::writer::TextRow;
use istv_core::{Feed, FeedWriter, Field, Format, Validator, Verdict};
use proptest::prelude::*;
use std::io::Write;

fn verdicts(bytes: Vec<u8>) -> Vec<Verdict> {
    let mut feed = Feed::from_reader(std::io::Cursor::new(bytes), None).expect("readable");
    let mut v = Validator::new(Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap());
    let mut out = Vec::new();
    while let Some(r) = feed.next() {
        out.push(v.validate(&r.expect("no file error")));
    }
    out
}

fn write(format: Format, rows: &[TextRow]) -> Vec<u8> {
    let mut w = FeedWriter::new(format, Vec::new()).unwrap();
    for r in rows {
        w.write(r).unwrap();
    }
    w.finish().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn text(options: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        6 => proptest::sample::select(options).prop_map(|s| Some(s.to_string())),
        1 => "[ -~]{0,12}".prop_map(Some),
    ]
}

fn number(range: std::ops::Range<f64>) -> impl Strategy<Value = Option<String>> {
    prop_oneof![1 => Just(None), 4 => range.prop_map(|x| Some(format!("{x}")))]
}

prop_compose! {
    fn row()(
        site in text(&["RJ122", "rj122", "R1H12", "RJ-1", ""]),
        id in text(&["A1", "A2", "A3", "9434765919", "x y"]),
        arrival in text(&["2024-06-01T01:10", "01/06/2024 01:10", "2024-06-20T10:00", "2024-13-01", "2030-01-01"]),
        assault in text(&["2024-06-01T00:30", "2024-06-01", "31/05/2024 23:59", "2024-03-31T01:30", "2024-02-30", "2024-04-01"]),
        method in text(&["body_part", "SHARP OBJECT", "03", "other", "knife", "99"]),
        other in text(&["dog", "", "943 476 5919"]),
        location in text(&["street", "02", "Licensed Premises", "pub"]),
        description in text(&["outside the Red Lion, Church St", "SE5 9RS", "ref 9434765919"]),
        postcode in text(&["SE5 9RS", "se59rs", "SE5 9", "SE5", "LONDON"]),
        lat in number(49.0..62.0),
        lon in number(-9.0..3.0),
        easting in number(-1000.0..701000.0),
        northing in number(-1000.0..1301000.0),
        age in prop_oneof![1 => Just(None), 4 => (-3i32..130).prop_map(|a| Some(a.to_string()))],
        sex in text(&["female", "M", "not_known", "woman"]),
    ) -> TextRow {
        [site, id, arrival, assault, method, other, location, description, postcode, lat, lon, easting, northing, age, sex]
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn csv_jsonl_and_avro_agree(rows in proptest::collection::vec(row(), 1..20)) {
        assert_eq!(Field::ALL.len(), rows[0].len());
        let csv = verdicts(write(Format::Csv, &rows));
        prop_assert_eq!(csv.len(), rows.len());
        let jsonl = verdicts(write(Format::Jsonl, &rows));
        prop_assert_eq!(&csv, &jsonl);
        let avro_bytes = write(Format::Avro, &rows);
        let avro = verdicts(avro_bytes.clone());
        prop_assert_eq!(&csv, &avro);
        prop_assert_eq!(&csv, &verdicts(gzip(&avro_bytes)));
        prop_assert_eq!(&csv, &verdicts(gzip(&write(Format::Csv, &rows))));
    }
}

#[test]
fn a_generated_feed_gives_the_same_verdicts_in_every_format() {
    use istv_core::generate::{Generator, Options};
    let mut g = Generator::new(Options {
        seed: 11,
        from: chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2024, 6, 10).unwrap(),
        invalid_rate: 0.2,
        site: None,
    });
    let rows: Vec<TextRow> = (0..2000).map(|_| g.row()).collect();
    let csv = verdicts(write(Format::Csv, &rows));
    assert_eq!(csv.len(), 2000);
    assert!(csv.iter().any(|v| !v.is_valid()));
    assert!(csv.iter().filter(|v| v.is_valid()).count() > 1000);
    assert_eq!(csv, verdicts(write(Format::Jsonl, &rows)));
    assert_eq!(csv, verdicts(write(Format::Avro, &rows)));
}
