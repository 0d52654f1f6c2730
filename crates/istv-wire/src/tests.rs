//! The wire format against bytes written out by hand, the decoder's errors
//! for each kind of poison, and properties over every schema of `schemas/`.

use super::*;
use apache_avro::schema::UnionSchema;
use proptest::prelude::*;
use std::collections::HashMap;

fn attendance() -> Schema {
    istv_core::schema::attendance_v1().clone()
}

fn null() -> Value {
    Value::Union(0, Box::new(Value::Null))
}

fn some(v: Value) -> Value {
    Value::Union(1, Box::new(v))
}

fn s(text: &str) -> Value {
    Value::String(text.into())
}

/// An attendance: RJ122 / A1, 2024-03-01, sharp_object, street, at 51.5,
/// -0.125, aged 19, male; every other field null.
fn one_attendance() -> Value {
    Value::Record(vec![
        ("site_code".into(), s("RJ122")),
        ("record_id".into(), s("A1")),
        ("arrival_datetime".into(), null()),
        ("assault_datetime".into(), s("2024-03-01")),
        ("assault_method".into(), s("sharp_object")),
        ("assault_method_other".into(), null()),
        ("assault_location_type".into(), s("street")),
        ("assault_location_description".into(), null()),
        ("assault_postcode".into(), null()),
        ("assault_latitude".into(), some(Value::Double(51.5))),
        ("assault_longitude".into(), some(Value::Double(-0.125))),
        ("assault_easting".into(), null()),
        ("assault_northing".into(), null()),
        ("patient_age".into(), some(Value::Int(19))),
        ("patient_sex".into(), some(s("male"))),
    ])
}

/// [`one_attendance`] as schema id 7, byte by byte from the Avro
/// specification: strings are a zig-zag varint length then UTF-8, a union
/// its branch index (zig-zag) then the value, a double 8 bytes little-endian.
fn one_attendance_bytes() -> Vec<u8> {
    let mut b = vec![0x00, 0x00, 0x00, 0x00, 0x07]; // magic, id 7
    b.push(0x0a); // "RJ122": length 5 -> zig-zag 10
    b.extend_from_slice(b"RJ122");
    b.push(0x04); // "A1"
    b.extend_from_slice(b"A1");
    b.push(0x00); // arrival_datetime: branch 0, null
    b.push(0x14); // "2024-03-01": length 10 -> 20
    b.extend_from_slice(b"2024-03-01");
    b.push(0x18); // "sharp_object": 12 -> 24
    b.extend_from_slice(b"sharp_object");
    b.push(0x00); // assault_method_other
    b.push(0x0c); // "street": 6 -> 12
    b.extend_from_slice(b"street");
    b.push(0x00); // description
    b.push(0x00); // postcode
    b.push(0x02); // latitude: branch 1, 51.5 = 0x4049C00000000000
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x49, 0x40]);
    b.push(0x02); // longitude: branch 1, -0.125 = 0xBFC0000000000000
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xbf]);
    b.push(0x00); // easting
    b.push(0x00); // northing
    b.extend_from_slice(&[0x02, 0x26]); // age: branch 1, 19 -> 38
    b.extend_from_slice(&[0x02, 0x08]); // sex: branch 1, "male": 4 -> 8
    b.extend_from_slice(b"male");
    b
}

fn decoder_with(id: u32, writer: &Schema) -> Decoder {
    let mut d = Decoder::new(attendance());
    d.add_writer(id, writer.clone());
    d
}

#[test]
fn frame_header_by_hand() {
    assert_eq!(frame(258, &[0xaa]), [0, 0, 0, 1, 2, 0xaa]);
    assert_eq!(frame(u32::MAX, &[]), [0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(unframe(&[0, 0, 1, 0, 0, 9, 8]), Ok((65_536, &[9u8, 8][..])));
    assert_eq!(unframe(&[0, 0, 0, 0, 3]), Ok((3, &[][..])));
}

#[test]
fn short_frames_and_wrong_magic_bytes_are_bad_frames() {
    for len in 0..5 {
        let err = unframe(&[0u8; 5][..len]).unwrap_err();
        assert_eq!(err, WireError::TooShort { len });
        assert_eq!(err.kind(), Some(PoisonKind::BadFrame));
    }
    let err = unframe(&[1, 0, 0, 0, 7, 0x0a]).unwrap_err();
    assert_eq!(err, WireError::BadMagic { found: 1 });
    assert_eq!(err.kind(), Some(PoisonKind::BadFrame));
    // A container file is not the wire format: it starts with "Obj".
    assert_eq!(
        unframe(b"Obj\x01....").unwrap_err(),
        WireError::BadMagic { found: b'O' }
    );
}

#[test]
fn an_attendance_encodes_to_the_bytes_derived_by_hand() {
    let bytes = encode(7, &attendance(), one_attendance()).unwrap();
    assert_eq!(bytes, one_attendance_bytes());
    let decoded = decoder_with(7, &attendance()).decode(&bytes).unwrap();
    assert_eq!(decoded.schema_id, 7);
    assert_eq!(decoded.value, one_attendance());
}

#[test]
fn plain_values_for_union_fields_are_resolved_when_encoding() {
    let Value::Record(mut fields) = one_attendance() else {
        unreachable!()
    };
    fields[13].1 = Value::Int(19);
    fields[14].1 = s("male");
    fields[2].1 = Value::Null;
    let bytes = encode(7, &attendance(), Value::Record(fields)).unwrap();
    assert_eq!(bytes, one_attendance_bytes());
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Minimal {
    site_code: String,
    record_id: String,
    arrival_datetime: Option<String>,
    assault_datetime: String,
    assault_method: String,
    assault_method_other: Option<String>,
    assault_location_type: String,
    assault_location_description: Option<String>,
    assault_postcode: Option<String>,
    assault_latitude: Option<f64>,
    assault_longitude: Option<f64>,
    assault_easting: Option<f64>,
    assault_northing: Option<f64>,
    patient_age: Option<i32>,
    patient_sex: Option<String>,
}

#[test]
fn a_serde_struct_encodes_and_decodes_to_the_same_bytes() {
    let record = Minimal {
        site_code: "RJ122".into(),
        record_id: "A1".into(),
        arrival_datetime: None,
        assault_datetime: "2024-03-01".into(),
        assault_method: "sharp_object".into(),
        assault_method_other: None,
        assault_location_type: "street".into(),
        assault_location_description: None,
        assault_postcode: None,
        assault_latitude: Some(51.5),
        assault_longitude: Some(-0.125),
        assault_easting: None,
        assault_northing: None,
        patient_age: Some(19),
        patient_sex: Some("male".into()),
    };
    let bytes = encode_ser(7, &attendance(), &record).unwrap();
    assert_eq!(bytes, one_attendance_bytes());
    let (id, back): (u32, Minimal) = decoder_with(7, &attendance()).decode_into(&bytes).unwrap();
    assert_eq!((id, back), (7, record));
}

#[test]
fn a_value_outside_the_schema_is_refused_when_encoding() {
    let Value::Record(mut fields) = one_attendance() else {
        unreachable!()
    };
    fields.remove(0);
    let err = encode(7, &attendance(), Value::Record(fields)).unwrap_err();
    assert!(
        matches!(&err, WireError::Encode { schema, .. } if schema == "istv.v1.Attendance"),
        "{err}"
    );
    assert_eq!(err.kind(), None);
}

#[test]
fn an_id_not_given_is_unknown() {
    let d = decoder_with(8, &attendance());
    let err = d.decode(&one_attendance_bytes()).unwrap_err();
    assert_eq!(err, WireError::UnknownSchema(7));
    assert_eq!(err.kind(), Some(PoisonKind::UnknownSchema));
    assert_eq!(err.schema_id(), Some(7));
}

#[test]
fn a_datum_cut_short_is_truncated() {
    let d = decoder_with(7, &attendance());
    let full = one_attendance_bytes();
    // Cut inside "male", inside "sharp_object", after the header only.
    for cut in [full.len() - 1, 37, 5] {
        let err = d.decode(&full[..cut]).unwrap_err();
        assert!(
            matches!(err, WireError::TruncatedDatum { schema_id: 7, .. }),
            "cut at {cut}: {err}"
        );
        assert_eq!(err.kind(), Some(PoisonKind::TruncatedDatum));
    }
    // A length prefix far beyond the message.
    let mut huge = vec![0, 0, 0, 0, 7];
    huge.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]); // length 2^31 - 1
    let err = d.decode(&huge).unwrap_err();
    assert_eq!(err.kind(), Some(PoisonKind::TruncatedDatum), "{err}");
}

#[test]
fn bytes_that_are_no_value_of_the_schema_are_malformed() {
    let d = decoder_with(7, &attendance());
    let full = one_attendance_bytes();

    // arrival_datetime's branch index 3 (byte 0x06): the union has two.
    let mut bad_branch = full.clone();
    assert_eq!(bad_branch[14], 0x00);
    bad_branch[14] = 0x06;
    let err = d.decode(&bad_branch).unwrap_err();
    assert!(
        matches!(err, WireError::MalformedDatum { schema_id: 7, .. }),
        "{err}"
    );

    // site_code holding the byte 0xff, not UTF-8.
    let mut not_utf8 = full.clone();
    not_utf8[6] = b'\xff';
    let err = d.decode(&not_utf8).unwrap_err();
    assert!(
        matches!(err, WireError::MalformedDatum { schema_id: 7, .. }),
        "{err}"
    );

    let mut trailing = full;
    trailing.extend_from_slice(&[1, 2]);
    let err = d.decode(&trailing).unwrap_err();
    assert_eq!(
        err,
        WireError::TrailingBytes {
            schema_id: 7,
            extra: 2
        }
    );
    assert_eq!(err.kind(), Some(PoisonKind::MalformedDatum));
}

#[test]
fn error_texts_never_quote_the_datum() {
    let d = decoder_with(7, &attendance());
    let mut not_utf8 = one_attendance_bytes();
    not_utf8[7] = b'\xff'; // "R\xffJ122"... the rest still readable text
    let err = d.decode(&not_utf8).unwrap_err().to_string();
    assert!(!err.contains("122"), "{err}");
    let Value::Record(mut fields) = one_attendance() else {
        unreachable!()
    };
    fields[1].1 = Value::Long(9_434_765_919);
    let err = encode(7, &attendance(), Value::Record(fields))
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("9434765919") && !err.contains("RJ122"),
        "{err}"
    );
}

/// The attendance schema with `patient_sex` left out: an older writer.
fn without_sex() -> Schema {
    let text = istv_core::schema::ATTENDANCE_V1.replace(
        r#",
    {"name": "patient_sex", "type": ["null", "string"], "default": null, "doc": "female, male, other, not_known"}"#,
        "",
    );
    let schema = Schema::parse_str(&text).unwrap();
    let Schema::Record(r) = &schema else {
        unreachable!()
    };
    assert_eq!(r.fields.len(), 14);
    schema
}

#[test]
fn an_older_writer_resolves_and_gets_the_default() {
    let writer = without_sex();
    let Value::Record(mut fields) = one_attendance() else {
        unreachable!()
    };
    fields.pop();
    let bytes = encode(3, &writer, Value::Record(fields)).unwrap();
    // The hand-derived bytes without the sex field's 6 bytes, and id 3.
    let mut want = one_attendance_bytes();
    want.truncate(want.len() - 6);
    want[4] = 3;
    assert_eq!(bytes, want);
    let decoded = decoder_with(3, &writer).decode(&bytes).unwrap();
    let Value::Record(got) = decoded.value else {
        unreachable!()
    };
    assert_eq!(got.len(), 15);
    assert_eq!(got[14], ("patient_sex".into(), null()));
    assert_eq!(got[13], ("patient_age".into(), some(Value::Int(19))));
}

#[test]
fn a_writer_that_does_not_resolve_is_refused_for_every_message() {
    // record_id as a long: no promotion reads a long as a string.
    let text = istv_core::schema::ATTENDANCE_V1.replace(
        r#"{"name": "record_id", "type": "string""#,
        r#"{"name": "record_id", "type": "long""#,
    );
    let writer = Schema::parse_str(&text).unwrap();
    assert_ne!(writer, attendance());
    let d = decoder_with(9, &writer);
    let mut bytes = one_attendance_bytes();
    bytes[4] = 9;
    let err = d.decode(&bytes).unwrap_err();
    assert!(
        matches!(&err, WireError::Unresolvable { schema_id: 9, reader, .. } if reader == "istv.v1.Attendance"),
        "{err}"
    );
    assert_eq!(err.kind(), Some(PoisonKind::Unresolvable));

    // Another record altogether, and text that is no schema.
    let mut d = Decoder::new(attendance());
    d.add_writer(4, istv_core::schema::rejection_v1().clone());
    d.add_writer_text(5, "{not json");
    for id in [4u8, 5] {
        bytes[4] = id;
        let err = d.decode(&bytes).unwrap_err();
        assert_eq!(err.kind(), Some(PoisonKind::Unresolvable), "{err}");
    }
}

#[test]
fn poison_codes_are_stable() {
    let codes: Vec<&str> = PoisonKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(
        codes,
        [
            "bad_frame",
            "unknown_schema_id",
            "truncated_datum",
            "malformed_datum",
            "unresolvable_schema"
        ]
    );
}

// ----- properties over every schema of schemas/ -----

/// Any value of `schema` (finite floating point numbers: NaN is not equal
/// to itself).
fn value_of(schema: &Schema) -> BoxedStrategy<Value> {
    match schema {
        Schema::Null => Just(Value::Null).boxed(),
        Schema::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        Schema::Int => any::<i32>().prop_map(Value::Int).boxed(),
        Schema::Long => any::<i64>().prop_map(Value::Long).boxed(),
        Schema::Double => (-1e300f64..1e300).prop_map(Value::Double).boxed(),
        Schema::Float => (-1e30f32..1e30).prop_map(Value::Float).boxed(),
        Schema::String => ".{0,12}".prop_map(Value::String).boxed(),
        Schema::Bytes => proptest::collection::vec(any::<u8>(), 0..12)
            .prop_map(Value::Bytes)
            .boxed(),
        Schema::Date => any::<i32>().prop_map(Value::Date).boxed(),
        Schema::TimestampMillis => any::<i64>().prop_map(Value::TimestampMillis).boxed(),
        Schema::Enum(e) => {
            let symbols = e.symbols.clone();
            (0..symbols.len())
                .prop_map(move |i| Value::Enum(i as u32, symbols[i].clone()))
                .boxed()
        }
        Schema::Union(u) => union_of(u),
        Schema::Map(m) => proptest::collection::hash_map("[a-z]{1,6}", value_of(&m.types), 0..4)
            .prop_map(|m: HashMap<String, Value>| Value::Map(m))
            .boxed(),
        Schema::Array(a) => proptest::collection::vec(value_of(&a.items), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        Schema::Record(r) => {
            let names: Vec<String> = r.fields.iter().map(|f| f.name.clone()).collect();
            let values: Vec<BoxedStrategy<Value>> =
                r.fields.iter().map(|f| value_of(&f.schema)).collect();
            values
                .prop_map(move |vs| Value::Record(names.iter().cloned().zip(vs).collect()))
                .boxed()
        }
        other => panic!("no generator for {other:?}: add one when a schema uses it"),
    }
}

fn union_of(u: &UnionSchema) -> BoxedStrategy<Value> {
    let branches: Vec<BoxedStrategy<Value>> = u
        .variants()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            value_of(s)
                .prop_map(move |v| Value::Union(i as u32, Box::new(v)))
                .boxed()
        })
        .collect();
    proptest::strategy::Union::new(branches).boxed()
}

/// One of the four schemas and a value of it.
fn schema_and_value() -> impl Strategy<Value = (usize, Value)> {
    (0..4usize).prop_flat_map(|i| (Just(i), value_of(istv_core::schema::all()[i].1)))
}

fn decoder_for(i: usize, id: u32) -> Decoder {
    let schema = istv_core::schema::all()[i].1.clone();
    let mut d = Decoder::new(schema.clone());
    d.add_writer(id, schema);
    d
}

proptest! {
    #[test]
    fn every_value_of_every_schema_round_trips((i, value) in schema_and_value(), id in any::<u32>()) {
        let schema = istv_core::schema::all()[i].1;
        let bytes = encode(id, schema, value.clone()).unwrap();
        prop_assert_eq!(&bytes[..5], &frame(id, &[])[..]);
        let decoded = decoder_for(i, id).decode(&bytes).unwrap();
        prop_assert_eq!(decoded, Decoded { schema_id: id, value });
    }

    #[test]
    fn every_cut_of_a_message_is_a_bad_frame_or_truncated((i, value) in schema_and_value(), cut in any::<prop::sample::Index>()) {
        let schema = istv_core::schema::all()[i].1;
        let bytes = encode(1, schema, value).unwrap();
        let cut = cut.index(bytes.len());
        let kind = decoder_for(i, 1).decode(&bytes[..cut]).unwrap_err().kind().unwrap();
        let want = if cut < HEADER_LEN { PoisonKind::BadFrame } else { PoisonKind::TruncatedDatum };
        prop_assert_eq!(kind, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(i in 0..4usize, body in proptest::collection::vec(any::<u8>(), 0..64), framed in any::<bool>()) {
        let mut message = if framed { frame(1, &[]) } else { Vec::new() };
        message.extend_from_slice(&body);
        let d = decoder_for(i, 1);
        if let Err(err) = d.decode(&message) {
            prop_assert!(err.kind().is_some());
        }
        let origin = Origin { topic: "t", partition: 0, offset: 0 };
        let _ = route(&d, Some(&message), &origin);
    }

    #[test]
    fn a_flipped_byte_never_panics((i, value) in schema_and_value(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let schema = istv_core::schema::all()[i].1;
        let mut bytes = encode(1, schema, value).unwrap();
        let at = at.index(bytes.len());
        bytes[at] = byte;
        if let Err(err) = decoder_for(i, 1).decode(&bytes) {
            prop_assert!(err.kind().is_some());
        }
    }
}

// ----- the dead-letter rule -----

const ORIGIN: Origin<'static> = Origin {
    topic: "istv.attendances.v1",
    partition: 3,
    offset: 41,
};

/// The headers a dead letter of `reason` from [`ORIGIN`] carries.
fn headers(reason: &str, error: &str, schema_id: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("istv.dead_letter.reason", reason.to_owned()),
        ("istv.dead_letter.error", error.to_owned()),
        ("istv.dead_letter.topic", "istv.attendances.v1".to_owned()),
        ("istv.dead_letter.partition", "3".to_owned()),
        ("istv.dead_letter.offset", "41".to_owned()),
    ];
    if let Some(id) = schema_id {
        h.push(("istv.dead_letter.schema_id", id.to_owned()));
    }
    h
}

fn dead(routed: Routed) -> DeadLetter {
    match routed {
        Routed::DeadLetter(d) => d,
        Routed::Record(r) => panic!("routed as a record: {r:?}"),
    }
}

#[test]
fn a_readable_message_goes_to_the_stage() {
    let d = decoder_with(7, &attendance());
    assert_eq!(
        route(&d, Some(&one_attendance_bytes()), &ORIGIN),
        Routed::Record(Decoded {
            schema_id: 7,
            value: one_attendance()
        })
    );
}

#[test]
fn each_poison_kind_is_dead_lettered_with_its_reason() {
    let mut d = decoder_with(7, &attendance());
    d.add_writer(9, istv_core::schema::rejection_v1().clone());
    let full = one_attendance_bytes();

    let got = dead(route(&d, None, &ORIGIN));
    assert_eq!(got.kind, PoisonKind::BadFrame);
    assert_eq!(
        got.headers,
        headers(
            "bad_frame",
            "message of 0 bytes is shorter than the 5-byte wire format header",
            None
        )
    );

    let got = dead(route(&d, Some(b"{\"site_code\":1}"), &ORIGIN));
    assert_eq!(
        got.headers,
        headers("bad_frame", "magic byte is 123, expected 0", None)
    );

    let mut unknown = full.clone();
    unknown[4] = 8;
    let got = dead(route(&d, Some(&unknown), &ORIGIN));
    assert_eq!(
        got.headers,
        headers("unknown_schema_id", "schema id 8 is not known", Some("8"))
    );

    let got = dead(route(&d, Some(&full[..full.len() - 1]), &ORIGIN));
    assert_eq!(
        got.headers,
        headers(
            "truncated_datum",
            "avro datum of schema id 7 is truncated: the datum ends inside a value",
            Some("7")
        )
    );

    let mut trailing = full.clone();
    trailing.push(0);
    let got = dead(route(&d, Some(&trailing), &ORIGIN));
    assert_eq!(
        got.headers,
        headers(
            "malformed_datum",
            "avro datum of schema id 7 is followed by 1 more bytes",
            Some("7")
        )
    );

    let mut other = full;
    other[4] = 9;
    let got = dead(route(&d, Some(&other), &ORIGIN));
    assert_eq!(got.kind, PoisonKind::Unresolvable);
    assert_eq!(got.headers[0].1, "unresolvable_schema");
    assert!(
        got.headers[1]
            .1
            .starts_with("writer schema id 9 does not resolve to istv.v1.Attendance: "),
        "{:?}",
        got.headers[1]
    );
    assert_eq!(got.headers[5], ("istv.dead_letter.schema_id", "9".into()));
}

#[test]
fn only_an_unknown_id_of_a_good_frame_needs_a_lookup() {
    let d = decoder_with(7, &attendance());
    let mut bytes = one_attendance_bytes();
    assert_eq!(dead_letter::needs_lookup(&d, Some(&bytes)), None);
    bytes[1] = 1; // id 16777223
    assert_eq!(
        dead_letter::needs_lookup(&d, Some(&bytes)),
        Some(16_777_223)
    );
    assert_eq!(dead_letter::needs_lookup(&d, Some(&[0, 0])), None);
    assert_eq!(dead_letter::needs_lookup(&d, None), None);
}

#[test]
fn topics_keys_and_subjects() {
    let names: Vec<(String, topics::Cleanup, bool)> = topics::all("test.")
        .into_iter()
        .map(|t| (t.name, t.cleanup, t.schema.is_some()))
        .collect();
    use topics::Cleanup::{Compact, Delete};
    assert_eq!(
        names,
        [
            ("test.istv.attendances.v1".into(), Delete, true),
            ("test.istv.rejections.v1".into(), Delete, true),
            ("test.istv.geocoded.v1".into(), Delete, true),
            ("test.istv.aggregates.v1".into(), Compact, true),
            ("test.istv.dead-letters.v1".into(), Delete, false),
        ]
    );
    assert_eq!(topics::record_key("RJ122", "A/1"), "RJ122/A/1");
    assert_eq!(
        topics::value_subject("istv.attendances.v1"),
        "istv.attendances.v1-value"
    );
    for t in topics::all("") {
        if let Some(text) = t.schema {
            assert!(Schema::parse_str(text).is_ok(), "{}", t.name);
        }
    }
}

#[test]
fn levels_by_name_and_what_each_allows() {
    for level in Level::ALL {
        assert_eq!(Level::parse(level.as_str()), Some(level));
        assert_eq!(Level::parse(&level.as_str().to_lowercase()), Some(level));
    }
    assert_eq!(Level::parse("SIDEWAYS"), None);
    assert_eq!(Level::default(), Level::Backward);
    let parse = |t: &str| Schema::parse_str(t).unwrap();
    let v1 = parse(r#"{"type":"record","name":"T","fields":[{"name":"a","type":"string"}]}"#);
    // A required field added: reads nothing older; older readers ignore it.
    let added = parse(
        r#"{"type":"record","name":"T","fields":[{"name":"a","type":"string"},{"name":"c","type":"int"}]}"#,
    );
    let compatible =
        |level, new: &Schema, old: &[Schema]| compat::check(level, new, old).is_compatible();
    assert!(compatible(Level::Backward, &added, &[]));
    assert!(!compatible(
        Level::Backward,
        &added,
        std::slice::from_ref(&v1)
    ));
    assert!(compatible(
        Level::Forward,
        &added,
        std::slice::from_ref(&v1)
    ));
    assert!(!compatible(Level::Full, &added, std::slice::from_ref(&v1)));
    assert!(compatible(Level::None, &added, std::slice::from_ref(&v1)));
    // Removing it again: BACKWARD yes, FORWARD no.
    assert!(compatible(
        Level::Backward,
        &v1,
        std::slice::from_ref(&added)
    ));
    assert!(!compatible(
        Level::Forward,
        &v1,
        std::slice::from_ref(&added)
    ));
    // Transitive levels look past the latest version.
    let history = [v1.clone(), added.clone()];
    assert!(compatible(Level::Forward, &v1, &history[..1]));
    assert!(!compatible(Level::ForwardTransitive, &v1, &history));
    assert!(compatible(
        Level::Backward,
        &added,
        std::slice::from_ref(&added)
    ));
    assert!(!compatible(Level::BackwardTransitive, &added, &history));
    match compat::check(Level::Full, &added, std::slice::from_ref(&v1)) {
        Compatibility::Incompatible(reasons) => assert_eq!(reasons.len(), 1, "{reasons:?}"),
        Compatibility::Compatible => unreachable!(),
    }
}
