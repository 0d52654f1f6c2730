//! Reader tests on hand-made bytes: the layouts EDs export, and the broken
//! files they sometimes send.

use super::writer::{FeedWriter, TextRow};
use super::*;
use crate::error::ErrorCode;
use std::io::Write;

fn open(bytes: &[u8], format: Option<Format>) -> Result<Feed, FileError> {
    Feed::from_reader(std::io::Cursor::new(bytes.to_vec()), format)
}

/// Every row as (row, [(field, value)], problems codes), or the file error.
type Rows = Vec<(u64, Vec<(Field, String)>, Vec<ErrorCode>)>;

fn read_all(bytes: &[u8], format: Option<Format>) -> Result<Rows, FileError> {
    let mut feed = open(bytes, format)?;
    let mut out = Vec::new();
    while let Some(r) = feed.next() {
        let r = r?;
        let values = Field::ALL
            .iter()
            .filter_map(|f| r.get(*f).map(|v| (*f, v.to_string())))
            .collect();
        out.push((r.row, values, r.problems.iter().map(|p| p.code).collect()));
    }
    Ok(out)
}

const HEADER: &str = "site_code,record_id,assault_datetime,assault_method,assault_location_type";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn csv_with_bom_quotes_and_blank_fields() {
    let text = format!(
        "\u{feff}{HEADER},assault_location_description\nRJ122,A1,2024-01-01,body_part,street,\"outside \"\"The Bell\"\", Church St\nnext door\"\nRJ122,A2,2024-01-02,03,02,\n"
    );
    let rows = read_all(text.as_bytes(), None).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, 1);
    assert_eq!(rows[0].1[0], (Field::SiteCode, "RJ122".to_string()));
    assert_eq!(
        rows[0].1[5],
        (
            Field::AssaultLocationDescription,
            "outside \"The Bell\", Church St\nnext door".to_string()
        )
    );
    // A blank cell is absent, not an empty string.
    assert_eq!(rows[1].1.len(), 5);
}

#[test]
fn csv_semicolon_separated_with_mixed_case_header() {
    let text = "Site_Code;RECORD_ID;assault_datetime;assault_method;assault_location_type\nRJ122;A1;01/01/2024 22:00;Body Part;Street\n";
    let rows = read_all(text.as_bytes(), Some(Format::Csv)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].1[3],
        (Field::AssaultMethod, "Body Part".to_string())
    );
}

#[test]
fn csv_gzip_is_detected_by_magic() {
    let text = format!(
        "{HEADER}\nRJ122,A1,2024-01-01,body_part,street\nRJ122,A2,2024-01-01,body_part,street\n"
    );
    let feed = open(&gzip(text.as_bytes()), None).unwrap();
    assert!(feed.compressed());
    assert_eq!(feed.format(), Format::Csv);
    assert_eq!(read_all(&gzip(text.as_bytes()), None).unwrap().len(), 2);
}

#[test]
fn identifier_columns_fail_the_whole_file() {
    for column in [
        "nhs_number",
        "patient_name",
        "date_of_birth",
        "home_address",
    ] {
        let text = format!("{HEADER},{column}\nRJ122,A1,2024-01-01,body_part,street,x\n");
        match open(text.as_bytes(), None) {
            Err(FileError::UnknownColumn { column: c }) => assert_eq!(c, column),
            other => panic!("{column}: {:?}", other.err()),
        }
    }
    let jsonl = b"{\"site_code\":\"RJ122\",\"NHS_Number\":\"9434765919\"}\n";
    match read_all(jsonl, None) {
        Err(FileError::UnknownColumn { column }) => assert_eq!(column, "NHS_Number"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn header_problems_are_file_errors() {
    assert!(matches!(
        open(
            b"site_code,record_id,assault_datetime,assault_method\n",
            Some(Format::Csv)
        ),
        Err(FileError::MissingColumn {
            column: "assault_location_type"
        })
    ));
    assert!(matches!(
        open(format!("{HEADER},record_id\n").as_bytes(), None),
        Err(FileError::DuplicateColumn { .. })
    ));
    assert!(matches!(open(b"", None), Err(FileError::Empty)));
    assert!(matches!(open(&gzip(b""), None), Err(FileError::Empty)));
}

#[test]
fn row_shape_problems_are_row_errors() {
    // Wrong field count, an unnamed column with a value, bad UTF-8 in a field,
    // and a trailing blank spreadsheet row that is skipped.
    let mut bytes = format!("{HEADER},\nRJ122,A1,2024-01-01\nRJ122,A2,2024-01-01,body_part,street,oops\nRJ122,A3,2024-01-01,body_part,").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe,\n,,,,,\nRJ122,A4,2024-01-01,body_part,street,\n");
    let rows = read_all(&bytes, None).unwrap();
    let summary: Vec<(u64, Vec<ErrorCode>)> = rows.iter().map(|r| (r.0, r.2.clone())).collect();
    assert_eq!(
        summary,
        vec![
            (1, vec![ErrorCode::MalformedRow]),
            (2, vec![ErrorCode::MalformedRow]),
            (3, vec![ErrorCode::InvalidUtf8]),
            (5, vec![]),
        ]
    );
}

#[test]
fn jsonl_rows_types_and_broken_lines() {
    let text = concat!(
        "{\"site_code\":\"RJ122\",\"record_id\":\"A1\",\"patient_age\":19,\"assault_latitude\":51.5,\"assault_postcode\":null}\n",
        "\n",
        "[1,2]\n",
        "{\"site_code\":\"RJ122\",\"record_id\":\n",
        "{\"site_code\":true}\n",
    );
    let rows = read_all(text.as_bytes(), None).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[0].1,
        vec![
            (Field::SiteCode, "RJ122".to_string()),
            (Field::RecordId, "A1".to_string()),
            (Field::AssaultLatitude, "51.5".to_string()),
            (Field::PatientAge, "19".to_string()),
        ]
    );
    // The blank line still counts as a line, so row numbers are line numbers.
    assert_eq!(
        (rows[1].0, rows[1].2.clone()),
        (3, vec![ErrorCode::MalformedRow])
    );
    assert_eq!(
        (rows[2].0, rows[2].2.clone()),
        (4, vec![ErrorCode::MalformedRow])
    );
    assert_eq!(
        (rows[3].0, rows[3].2.clone()),
        (5, vec![ErrorCode::WrongType])
    );
}

fn text_row(pairs: &[(Field, &str)]) -> TextRow {
    let mut row: TextRow = Default::default();
    for (f, v) in pairs {
        row[f.index()] = Some(v.to_string());
    }
    row
}

#[test]
fn avro_round_trip_through_our_writer() {
    let rows = [
        text_row(&[
            (Field::SiteCode, "RJ122"),
            (Field::RecordId, "A1"),
            (Field::AssaultDatetime, "2024-01-01T22:00"),
            (Field::AssaultMethod, "firearm"),
            (Field::AssaultLocationType, "home"),
            (Field::AssaultLatitude, "51.25"),
            (Field::AssaultLongitude, "-0.125"),
            (Field::PatientAge, "40"),
        ]),
        text_row(&[(Field::SiteCode, "RJ122"), (Field::RecordId, "A2")]),
    ];
    let mut w = FeedWriter::new(Format::Avro, Vec::new()).unwrap();
    for r in &rows {
        w.write(r).unwrap();
    }
    let bytes = w.finish().unwrap();
    let got = read_all(&bytes, None).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1.len(), 8);
    assert!(got[0]
        .1
        .contains(&(Field::AssaultLongitude, "-0.125".to_string())));
    assert!(got[0].1.contains(&(Field::PatientAge, "40".to_string())));
    // Required strings written empty read as blank.
    assert_eq!(got[1].1.len(), 2);
    // And gzip around Avro.
    assert_eq!(read_all(&gzip(&bytes), None).unwrap().len(), 2);
}

#[test]
fn avro_writer_schema_with_an_identifier_field_is_refused() {
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"Attendance","namespace":"istv.v1","fields":[
            {"name":"site_code","type":"string"},{"name":"record_id","type":"string"},
            {"name":"assault_datetime","type":"string"},{"name":"assault_method","type":"string"},
            {"name":"assault_location_type","type":"string"},{"name":"nhs_number","type":"string"}]}"#,
    )
    .unwrap();
    let mut w = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    let mut r = apache_avro::types::Record::new(&schema).unwrap();
    for f in [
        "site_code",
        "record_id",
        "assault_datetime",
        "assault_method",
        "assault_location_type",
        "nhs_number",
    ] {
        r.put(f, "x");
    }
    w.append_value(r).unwrap();
    let bytes = w.into_inner().unwrap();
    match open(&bytes, None) {
        Err(FileError::UnknownColumn { column }) => assert_eq!(column, "nhs_number"),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn avro_writer_schema_of_incompatible_types_is_refused() {
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"Attendance","fields":[
            {"name":"site_code","type":"string"},{"name":"record_id","type":"long"},
            {"name":"assault_datetime","type":"string"},{"name":"assault_method","type":"string"},
            {"name":"assault_location_type","type":"string"}]}"#,
    )
    .unwrap();
    let w = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    let bytes = w.into_inner().unwrap();
    assert!(matches!(
        open(&bytes, Some(Format::Avro)),
        Err(FileError::AvroSchema(_))
    ));
}

#[test]
fn malformed_bytes_give_errors_not_panics() {
    let good = format!(
        "{HEADER}\n{}",
        "RJ122,A1,2024-01-01,body_part,street\n".repeat(5000)
    );
    // Truncated gzip: rows may come out, then a file error.
    let gz = gzip(good.as_bytes());
    let cut = &gz[..gz.len() / 2];
    let r = read_all(cut, None);
    assert!(matches!(r, Err(FileError::Truncated { .. })), "{r:?}");

    // Wrong Avro magic with --format avro.
    assert!(matches!(
        open(b"Obj\x02garbage", Some(Format::Avro)),
        Err(FileError::Avro(_))
    ));
    // An Avro file cut inside a block.
    let mut w = FeedWriter::new(Format::Avro, Vec::new()).unwrap();
    for i in 0..200 {
        w.write(&text_row(&[
            (Field::SiteCode, "RJ122"),
            (Field::RecordId, &i.to_string()),
        ]))
        .unwrap();
    }
    let avro = w.finish().unwrap();
    let r = read_all(&avro[..avro.len() - 20], None);
    assert!(r.is_err(), "{r:?}");

    // A 1 MB field is read, then rejected by the rules as too long.
    let big = format!(
        "{HEADER},assault_location_description\nRJ122,A1,2024-01-01,body_part,street,{}\n",
        "y".repeat(1 << 20)
    );
    let rows = read_all(big.as_bytes(), None).unwrap();
    assert_eq!(rows[0].1[5].1.len(), 1 << 20);

    // An unbalanced quote swallowing more than the row limit stops reading.
    let mut runaway = format!("{HEADER}\nRJ122,\"A1").into_bytes();
    runaway.resize(runaway.len() + MAX_ROW_BYTES as usize + (1 << 20), b'z');
    let r = read_all(&runaway, None);
    assert!(
        matches!(&r, Err(FileError::Truncated { reason, .. }) if reason.contains("unbalanced quote")),
        "{:?}",
        r.err()
    );
}

#[test]
fn format_names_and_content_types() {
    assert_eq!(
        Format::from_path(std::path::Path::new("feed.CSV.gz")),
        Some(Format::Csv)
    );
    assert_eq!(
        Format::from_path(std::path::Path::new("a.ndjson")),
        Some(Format::Jsonl)
    );
    assert_eq!(Format::from_path(std::path::Path::new("avro")), None);
    assert_eq!(
        Format::from_content_type("text/csv; charset=utf-8"),
        Some(Format::Csv)
    );
    assert_eq!(
        Format::from_content_type("application/x-ndjson"),
        Some(Format::Jsonl)
    );
    assert_eq!(Format::from_content_type("avro/binary"), Some(Format::Avro));
    assert_eq!(Format::from_content_type("text/plain"), None);
}

/// The CSV reader screens a whole row for control characters at once; the
/// rules must still name each field that holds one, whichever it is, and
/// allow line breaks in the free-text description.
#[test]
fn csv_rows_with_control_characters_are_judged_per_field() {
    let text = format!(
        "{HEADER},assault_location_description\n\
         RJ122,\"A\n1\",2024-01-01,body_part,street,\"by the\nstation\"\n\
         RJ122,A2,2024-01-02,\"body\tpart\",street,\n\
         RJ122,A3,2024-01-03,body_part,street,\"two\nlines\"\n\
         RJ122,A4,2024-01-04,body_part,\"street\x7f\",\n"
    );
    let mut feed = open(text.as_bytes(), None).unwrap();
    let mut v = crate::Validator::new(chrono::Utc::now());
    let mut verdicts = Vec::new();
    while let Some(r) = feed.next() {
        let verdict = v.validate(&r.unwrap());
        let errors: Vec<(String, ErrorCode)> = verdict
            .errors
            .iter()
            .map(|e| (e.field.clone().unwrap_or_default(), e.code))
            .collect();
        verdicts.push(errors);
    }
    assert_eq!(
        verdicts,
        vec![
            vec![("record_id".to_string(), ErrorCode::ControlCharacters)],
            vec![("assault_method".to_string(), ErrorCode::ControlCharacters)],
            vec![],
            vec![(
                "assault_location_type".to_string(),
                ErrorCode::ControlCharacters
            )],
        ]
    );
}

/// Whatever goes wrong inside an Avro file, the error text quotes none of
/// its values: each byte of the file is corrupted in turn (three ways) and
/// every message read is checked for the records' text.
#[test]
fn avro_errors_never_quote_a_value() {
    let secret = "ZQXJ-secret-reference";
    let mut w = FeedWriter::new(Format::Avro, Vec::new()).unwrap();
    for i in 0..20 {
        w.write(&text_row(&[
            (Field::SiteCode, "RJ122"),
            (Field::RecordId, &format!("{secret}-{i}")),
            (Field::AssaultLocationDescription, secret),
        ]))
        .unwrap();
    }
    let good = w.finish().unwrap();
    let mut messages = 0;
    for at in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            let texts: Vec<String> = match open(&bad, Some(Format::Avro)) {
                Err(e) => vec![e.to_string()],
                Ok(mut feed) => {
                    let mut texts = Vec::new();
                    for _ in 0..100 {
                        match feed.next() {
                            None => break,
                            Some(Err(e)) => {
                                texts.push(e.to_string());
                                break;
                            }
                            Some(Ok(raw)) => {
                                texts.extend(raw.problems.iter().map(|p| p.message.clone()))
                            }
                        }
                    }
                    texts
                }
            };
            for t in texts {
                messages += 1;
                assert!(
                    !t.contains("ZQXJ") && !t.contains("secret"),
                    "byte {at} ^ {flip:#x}: {t}"
                );
            }
        }
    }
    assert!(messages > 50, "{messages} messages");
}

/// A writer schema that resolves at the header but not for one datum (a
/// union branch the reader has no type for): the row's error names the
/// row, never the value.
#[test]
fn avro_values_that_do_not_resolve_are_not_quoted() {
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"Attendance","namespace":"istv.v1","fields":[
            {"name":"site_code","type":"string"},{"name":"record_id","type":["string","long"]},
            {"name":"assault_datetime","type":"string"},{"name":"assault_method","type":"string"},
            {"name":"assault_location_type","type":"string"}]}"#,
    )
    .unwrap();
    let mut w = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    for id in [
        apache_avro::types::Value::Union(0, Box::new("A1".into())),
        apache_avro::types::Value::Union(
            1,
            Box::new(apache_avro::types::Value::Long(9_434_765_919)),
        ),
    ] {
        let mut r = apache_avro::types::Record::new(&schema).unwrap();
        r.put("site_code", "RJ122");
        r.put("record_id", id);
        r.put("assault_datetime", "2024-01-01");
        r.put("assault_method", "body_part");
        r.put("assault_location_type", "home");
        w.append_value(r).unwrap();
    }
    let bytes = w.into_inner().unwrap();
    let mut texts = Vec::new();
    match open(&bytes, None) {
        Err(e) => texts.push(e.to_string()),
        Ok(mut feed) => {
            while let Some(item) = feed.next() {
                match item {
                    Err(e) => {
                        texts.push(e.to_string());
                        break;
                    }
                    Ok(raw) => texts.extend(raw.problems.iter().map(|p| p.message.clone())),
                }
            }
        }
    }
    assert_eq!(
        texts,
        vec![
            "reading stopped after row 1: the next Avro record could not be read: a block is \
             corrupt or truncated, or a value does not resolve to istv.v1.Attendance (a union \
             branch or type it has no field type for)"
                .to_string()
        ]
    );
}
