//! The records against bytes written out by hand, and round trips of
//! attendances the rules accept and of events.

use super::*;
use crate::{encode, Decoder};
use apache_avro::Schema;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use istv_aggregate::{DisclosureKeys, Event, GeocodeMethod};
use istv_core::{
    AgeBand, AssaultMethod, Attendance, ErrorCode, Field, FieldError, LocationType, RawRecord, Sex,
    Validator,
};
use proptest::prelude::*;
use std::borrow::Cow;
use std::sync::Arc;

fn attendance_schema() -> &'static Schema {
    istv_core::schema::attendance_v1()
}

fn geocoded_schema() -> &'static Schema {
    istv_core::schema::geocoded_event_v1()
}

/// The reader's value of a message written with the same schema.
fn read_back(schema: &Schema, bytes: &[u8]) -> Value {
    let mut d = Decoder::new(schema.clone());
    d.add_writer(7, schema.clone());
    d.decode(bytes).expect("a message just written reads").value
}

/// Validates a row given as (field, text) pairs, as a feed would have it,
/// with "now" in 2026.
fn validate(cells: &[(Field, &str)]) -> Result<Attendance, Vec<FieldError>> {
    let mut raw = RawRecord::new(1);
    for (f, text) in cells {
        raw.set(*f, Cow::Owned((*text).to_owned()));
    }
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let v = Validator::new(now).validate(&raw);
    v.record.ok_or(v.errors)
}

/// Writes and reads back an attendance through the wire format.
fn through_the_wire(a: &Attendance) -> Result<Attendance, MappingError> {
    let bytes = encode(7, attendance_schema(), attendance_value(a)).expect("encodes");
    attendance_from_value(&read_back(attendance_schema(), &bytes))
}

// ----- one attendance, byte by byte -----

/// A row as an ED might write it: local time in summer, lower-case
/// postcode, a national code for the method, spaces around values.
fn one_row() -> Attendance {
    validate(&[
        (Field::SiteCode, "rj122"),
        (Field::RecordId, " A1 "),
        (Field::ArrivalDatetime, "02/07/2024 00:40"),
        (Field::AssaultDatetime, "2024-07-01T23:15"),
        (Field::AssaultMethod, "3"),
        (Field::AssaultLocationType, "Street"),
        (Field::AssaultPostcode, "se59rs"),
        (Field::AssaultLatitude, "51.5"),
        (Field::AssaultLongitude, "-0.125"),
        (Field::PatientAge, "19"),
        (Field::PatientSex, "M"),
    ])
    .expect("a valid row")
}

/// [`one_row`] as schema id 7, from the Avro specification: a string is a
/// zig-zag varint length then UTF-8, a union its branch index then the
/// value, a double 8 bytes little-endian, an int a zig-zag varint. Times
/// are in UTC: 23:15 and 00:40 BST are 22:15 and 23:40 UTC on 1 July.
fn one_row_bytes() -> Vec<u8> {
    let mut b = vec![0x00, 0x00, 0x00, 0x00, 0x07];
    b.push(0x0a); // "RJ122": 5 -> 10
    b.extend_from_slice(b"RJ122");
    b.push(0x04); // "A1", trimmed
    b.extend_from_slice(b"A1");
    b.extend_from_slice(&[0x02, 0x28]); // arrival: branch 1, 20 bytes -> 40
    b.extend_from_slice(b"2024-07-01T23:40:00Z");
    b.push(0x28); // assault: 20 bytes
    b.extend_from_slice(b"2024-07-01T22:15:00Z");
    b.push(0x18); // "sharp_object": 12 -> 24
    b.extend_from_slice(b"sharp_object");
    b.push(0x00); // method other: null
    b.push(0x0c); // "street"
    b.extend_from_slice(b"street");
    b.push(0x00); // description: null
    b.extend_from_slice(&[0x02, 0x0e]); // postcode: branch 1, 7 -> 14
    b.extend_from_slice(b"SE5 9RS");
    b.push(0x02); // latitude 51.5 = 0x4049C00000000000
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x49, 0x40]);
    b.push(0x02); // longitude -0.125 = 0xBFC0000000000000
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xbf]);
    b.push(0x00); // easting
    b.push(0x00); // northing
    b.extend_from_slice(&[0x02, 0x26]); // age 19 -> 38
    b.extend_from_slice(&[0x02, 0x08]); // sex "male"
    b.extend_from_slice(b"male");
    b
}

#[test]
fn an_attendance_encodes_to_the_bytes_derived_by_hand() {
    let a = one_row();
    let bytes = encode(7, attendance_schema(), attendance_value(&a)).unwrap();
    assert_eq!(bytes, one_row_bytes());
    assert_eq!(through_the_wire(&a), Ok(a));
}

#[test]
fn a_bare_date_travels_as_a_date_and_keeps_no_hour() {
    let a = validate(&[
        (Field::SiteCode, "RJ122"),
        (Field::RecordId, "B7"),
        (Field::AssaultDatetime, "01/07/2024"),
        (Field::AssaultMethod, "other"),
        (Field::AssaultMethodOther, "a dog"),
        (Field::AssaultLocationType, "home"),
        (Field::AssaultEasting, "530000"),
        (Field::AssaultNorthing, "180000.5"),
    ])
    .unwrap();
    let Value::Record(fields) = attendance_value(&a) else {
        unreachable!()
    };
    assert_eq!(fields[3].1, Value::String("2024-07-01".into()));
    assert_eq!(
        fields[5].1,
        Value::Union(1, Box::new(Value::String("a dog".into())))
    );
    assert_eq!(
        fields[12].1,
        Value::Union(1, Box::new(Value::Double(180000.5)))
    );
    let back = through_the_wire(&a).unwrap();
    assert_eq!(back.assault.hour(), None);
    assert_eq!(back, a);
}

#[test]
fn times_of_the_clock_changes_keep_their_instant_and_london_hour() {
    // The spring gap reads 01:30 as 01:30 GMT (02:30 BST); the autumn
    // overlap's 01:30 as its first occurrence unless the arrival needs the
    // second (00:30 and 01:30 UTC).
    let gap = validate(&[
        (Field::SiteCode, "RJ122"),
        (Field::RecordId, "G1"),
        (Field::AssaultDatetime, "2024-03-31T01:30"),
        (Field::AssaultMethod, "body_part"),
        (Field::AssaultLocationType, "street"),
    ])
    .unwrap();
    assert_eq!(gap.assault.hour(), Some(2));
    assert_eq!(through_the_wire(&gap), Ok(gap));
    let overlap = validate(&[
        (Field::SiteCode, "RJ122"),
        (Field::RecordId, "O1"),
        (Field::AssaultDatetime, "2024-10-27T01:40"),
        (Field::ArrivalDatetime, "2024-10-27T01:10"),
        (Field::AssaultMethod, "body_part"),
        (Field::AssaultLocationType, "street"),
    ])
    .unwrap();
    assert_eq!(
        overlap.arrival,
        Some(Utc.with_ymd_and_hms(2024, 10, 27, 1, 10, 0).unwrap())
    );
    let Value::Record(fields) = attendance_value(&overlap) else {
        unreachable!()
    };
    assert_eq!(
        fields[2].1,
        Value::Union(1, Box::new(Value::String("2024-10-27T01:10:00Z".into())))
    );
    assert_eq!(fields[3].1, Value::String("2024-10-27T00:40:00Z".into()));
    assert_eq!(through_the_wire(&overlap), Ok(overlap));
}

#[test]
fn fractions_of_a_second_are_kept() {
    let a = validate(&[
        (Field::SiteCode, "RJ122"),
        (Field::RecordId, "F1"),
        (
            Field::AssaultDatetime,
            "2024-01-15T22:15:00.123456789+01:00",
        ),
        (Field::AssaultMethod, "firearm"),
        (Field::AssaultLocationType, "06"),
    ])
    .unwrap();
    let Value::Record(fields) = attendance_value(&a) else {
        unreachable!()
    };
    assert_eq!(
        fields[3].1,
        Value::String("2024-01-15T21:15:00.123456789Z".into())
    );
    assert_eq!(through_the_wire(&a), Ok(a));
}

#[test]
fn a_value_breaking_the_rules_is_refused_naming_field_and_code_only() {
    let mut value = attendance_value(&one_row());
    let Value::Record(fields) = &mut value else {
        unreachable!()
    };
    fields[0].1 = Value::String("R!".into());
    fields[13].1 = Value::Union(1, Box::new(Value::Int(130)));
    fields[8].1 = Value::Union(1, Box::new(Value::String("NOT A POSTCODE".into())));
    assert_eq!(
        attendance_from_value(&value),
        Err(MappingError::Rules(
            "site_code invalid_site_code, assault_postcode invalid_postcode, patient_age out_of_range"
                .into()
        ))
    );
    // The future is not judged again: the producer judged it on upload.
    let Value::Record(fields) = &mut value else {
        unreachable!()
    };
    fields[0].1 = Value::String("RJ122".into());
    fields[13].1 = Value::Union(0, Box::new(Value::Null));
    fields[8].1 = Value::Union(0, Box::new(Value::Null));
    fields[2].1 = Value::Union(0, Box::new(Value::Null));
    fields[3].1 = Value::String("2999-01-01T00:00:00Z".into());
    assert!(attendance_from_value(&value).is_ok());
    assert_eq!(
        attendance_from_value(&Value::Null),
        Err(MappingError::NotARecord)
    );
    let err = MappingError::Missing("site_code").into_wire(9);
    assert_eq!(err.kind(), Some(crate::PoisonKind::MalformedDatum));
    assert_eq!(
        err.to_string(),
        "avro datum of schema id 9 is malformed: field site_code is missing"
    );
}

// ----- attendances the rules accept, written in every way a feed may -----

/// A date-time's text in one of the layouts the rules read.
fn written(
    (y, mo, d): (i32, u32, u32),
    (h, mi, s, frac): (u32, u32, u32, u32),
    layout: u8,
    offset: i32,
) -> String {
    let off = match offset {
        0 => String::new(),
        1 => "Z".into(),
        m => format!(
            "{}{:02}:{:02}",
            if m < 0 { '-' } else { '+' },
            m.abs() / 60,
            m.abs() % 60
        ),
    };
    match layout {
        0 => format!("{y:04}-{mo:02}-{d:02}"),
        1 => format!("{d}/{mo}/{y:04}"),
        2 => format!("{d:02}/{mo:02}/{y:04} {h}:{mi:02}:{s:02}"),
        3 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}{off}"),
        4 => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{frac:09}{off}"),
        _ => format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}{off}",
            frac / 1_000_000
        ),
    }
}

fn datetime_text() -> impl Strategy<Value = String> {
    let date = prop_oneof![
        (1996..=2025i32, 1..=12u32, 1..=28u32),
        // The clock changes of 2024.
        Just((2024, 3, 31)),
        Just((2024, 10, 27)),
    ];
    let time = (0..24u32, 0..60u32, 0..60u32, 0..1_000_000_000u32);
    let offset = prop_oneof![Just(0), Just(1), -720..=840i32];
    (date, time, 0..6u8, offset).prop_map(|(d, t, l, o)| written(d, t, l, o))
}

fn one_of(items: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    proptest::sample::select(items).prop_map(|s| (!s.is_empty()).then(|| s.to_owned()))
}

fn number(range: std::ops::Range<f64>) -> impl Strategy<Value = String> {
    prop_oneof![
        range.clone().prop_map(|v| v.to_string()),
        range.prop_map(|v| format!("{v:.4}")),
    ]
}

/// A row's cells: mostly values the rules accept, in many spellings.
fn row() -> impl Strategy<Value = Vec<(Field, Option<String>)>> {
    let texts = (
        one_of(&["RJ122", "rj122", " RAL01 ", "RVR05"]),
        "[A-Za-z0-9/ _-]{1,12}",
        proptest::option::of(datetime_text()),
        datetime_text(),
        one_of(&[
            "sharp_object",
            "Sharp Object",
            "03",
            "3",
            "other",
            "BODY-PART",
            "99",
        ]),
        proptest::option::of(".{1,30}"),
        one_of(&["street", "Licensed Premises", "06", "work", "not_known"]),
        proptest::option::of(".{1,60}"),
        one_of(&["", "SW1A 1AA", "sw1a1aa", "SE5 9", "N1", "N11", " e8 3rr "]),
    );
    let more = (
        proptest::option::of((number(49.8..60.95), number(-8.75..1.85))),
        proptest::option::of((number(0.0..700_000.0), number(0.0..1_300_000.0))),
        proptest::option::of((0..=120u8).prop_map(|a| a.to_string())),
        one_of(&["", "female", "M", "9", "Not Known", "u"]),
    );
    (texts, more).prop_map(
        |(
            (site, id, arrival, assault, method, other, place, desc, postcode),
            (ll, grid, age, sex),
        )| {
            let (lat, lon) = ll.unzip();
            let (east, north) = grid.unzip();
            let values = [
                site,
                Some(id),
                arrival,
                Some(assault),
                method,
                other,
                place,
                desc,
                postcode,
                lat,
                lon,
                east,
                north,
                age,
                sex,
            ];
            Field::ALL.into_iter().zip(values).collect()
        },
    )
}

fn validate_row(cells: &[(Field, Option<String>)]) -> Option<Attendance> {
    let given: Vec<(Field, &str)> = cells
        .iter()
        .filter_map(|(f, v)| v.as_deref().map(|v| (*f, v)))
        .collect();
    validate(&given).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_accepted_attendance_round_trips(cells in row()) {
        if let Some(a) = validate_row(&cells) {
            prop_assert_eq!(through_the_wire(&a), Ok(a));
        }
    }
}

#[test]
fn the_rows_generator_writes_round_trip_and_most_are_accepted() {
    // The test data generator's feed: the round trip above is not left to
    // rows the rules happen to accept.
    let mut g = istv_core::generate::Generator::new(istv_core::generate::Options {
        seed: 16,
        from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        invalid_rate: 0.0,
        site: None,
    });
    let mut accepted = 0;
    for _ in 0..2_000 {
        let row = g.row();
        let cells: Vec<(Field, Option<String>)> = Field::ALL.into_iter().zip(row).collect();
        let a = validate_row(&cells).expect("the generator writes valid rows at rate 0");
        assert_eq!(through_the_wire(&a), Ok(a));
        accepted += 1;
    }
    assert_eq!(accepted, 2_000);
}

#[test]
fn the_property_rows_are_mostly_accepted() {
    // A property that held only for rejected rows would prove nothing.
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = row();
    let mut accepted = 0;
    for _ in 0..1_000 {
        let cells = strategy.new_tree(&mut runner).unwrap().current();
        accepted += usize::from(validate_row(&cells).is_some());
    }
    assert!(accepted > 200, "{accepted} of 1,000 rows accepted");
}

// ----- one geocoded event, byte by byte -----

fn keys() -> DisclosureKeys {
    DisclosureKeys::new(0x5eed)
}

/// The event of `schemas/examples/geocoded_event.json`.
fn one_event() -> GeocodedEvent {
    GeocodedEvent {
        event: Event {
            site_code: "RJ122".into(),
            record_id: "A1".into(),
            content_hash: 0x3f1c_6a0d_9b2e_4f11,
            legacy_hash: 0,
            assault_date: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            assault_hour: Some(23),
            method: AssaultMethod::SharpObject,
            location_type: LocationType::Street,
            age_band: AgeBand::Age18To24,
            sex: Sex::Male,
            geocode_method: GeocodeMethod::LatLon,
            precision_m: Some(10),
            cell: Some("8a195da4c48ffff".parse().unwrap()),
            borough: Some(Arc::from("E09000028")),
            ward: Some(Arc::from("E05000536")),
            lsoa: Some(Arc::from("E01003968")),
            disclosure_key: keys().key("RJ122", "A1"),
        },
        // 2024-03-01T23:15Z and 2024-03-02T00:40Z.
        assault_at: Utc.timestamp_millis_opt(1_709_334_900_000).unwrap(),
        arrival_at: Some(Utc.timestamp_millis_opt(1_709_340_000_000).unwrap()),
    }
}

/// [`one_event`] as schema id 7. A long or int is a zig-zag varint:
/// 1,709,334,900,000 ms -> 3,418,669,800,000, in 7-bit groups from the
/// lowest c0 b4 e5 c4 bf 63; the date, 19,783 days from 1970-01-01, ->
/// 39,566 = 0x9a8e -> 8e b5 02. An enum is its symbol's index.
fn one_event_bytes() -> Vec<u8> {
    let mut b = vec![0x00, 0x00, 0x00, 0x00, 0x07];
    b.push(0x0a);
    b.extend_from_slice(b"RJ122");
    b.push(0x04);
    b.extend_from_slice(b"A1");
    b.push(0x20); // 16 hex digits
    b.extend_from_slice(b"3f1c6a0d9b2e4f11");
    b.extend_from_slice(&[0xc0, 0xb4, 0xe5, 0xc4, 0xbf, 0x63]); // assault_at
    b.extend_from_slice(&[0x8e, 0xb5, 0x02]); // assault_date
    b.extend_from_slice(&[0x02, 0x2e]); // hour: branch 1, 23 -> 46
    b.push(0x02); // arrival_at: branch 1, 1,709,340,000,000 ms
    b.extend_from_slice(&[0x80, 0xfc, 0xd3, 0xc9, 0xbf, 0x63]);
    b.push(0x04); // sharp_object: index 2 -> 4
    b.push(0x00); // street: 0
    b.push(0x04); // age_18_24: 2
    b.push(0x02); // male: 1
    b.push(0x00); // latlon: 0
    b.extend_from_slice(&[0x02, 0x14]); // precision 10 -> 20
    b.extend_from_slice(&[0x02, 0x1e]); // cell: 15 characters
    b.extend_from_slice(b"8a195da4c48ffff");
    for area in ["E09000028", "E05000536", "E01003968"] {
        b.extend_from_slice(&[0x02, 0x12]);
        b.extend_from_slice(area.as_bytes());
    }
    b
}

#[test]
fn an_event_encodes_to_the_bytes_derived_by_hand() {
    let g = one_event();
    let bytes = encode(7, geocoded_schema(), g.to_value().unwrap()).unwrap();
    assert_eq!(bytes, one_event_bytes());
    let back = GeocodedEvent::from_value(&read_back(geocoded_schema(), &bytes), &keys());
    assert_eq!(back, Ok(g));
}

#[test]
fn the_event_of_an_attendance_carries_its_instants_to_the_millisecond() {
    let a = validate(&[
        (Field::SiteCode, "RJ122"),
        (Field::RecordId, "M1"),
        (Field::AssaultDatetime, "2024-01-15T22:15:00.123456789Z"),
        (Field::ArrivalDatetime, "2024-01-15T23:00:00.9999Z"),
        (Field::AssaultMethod, "firearm"),
        (Field::AssaultLocationType, "street"),
    ])
    .unwrap();
    let g = GeocodedEvent::new(&a, one_event().event);
    assert_eq!(
        g.assault_at,
        Utc.with_ymd_and_hms(2024, 1, 15, 22, 15, 0).unwrap() + Duration::milliseconds(123)
    );
    assert_eq!(
        g.arrival_at,
        Some(Utc.with_ymd_and_hms(2024, 1, 15, 23, 0, 0).unwrap() + Duration::milliseconds(999))
    );
}

#[test]
fn an_event_value_the_domain_does_not_know_is_refused() {
    let good = one_event().to_value().unwrap();
    let with = |i: usize, v: Value| {
        let mut value = good.clone();
        let Value::Record(fields) = &mut value else {
            unreachable!()
        };
        fields[i].1 = v;
        GeocodedEvent::from_value(&value, &keys())
    };
    let text = |s: &str| Value::String(s.into());
    assert_eq!(
        with(2, text("3F1C6A0D9B2E4F11")),
        Err(MappingError::Unknown("content_hash"))
    );
    assert_eq!(
        with(2, text("3f1c")),
        Err(MappingError::Unknown("content_hash"))
    );
    assert_eq!(
        with(2, text("+f1c6a0d9b2e4f11")),
        Err(MappingError::Unknown("content_hash"))
    );
    assert_eq!(
        with(5, Value::Union(1, Box::new(Value::Int(24)))),
        Err(MappingError::OutOfRange("assault_hour"))
    );
    assert_eq!(
        with(12, Value::Union(1, Box::new(Value::Int(-1)))),
        Err(MappingError::OutOfRange("precision_m"))
    );
    assert_eq!(
        with(13, Value::Union(1, Box::new(text("not a cell")))),
        Err(MappingError::Unknown("cell"))
    );
    assert_eq!(
        with(0, Value::Int(1)),
        Err(MappingError::WrongType("site_code"))
    );
    let Value::Record(mut fields) = good else {
        unreachable!()
    };
    fields.remove(9);
    assert_eq!(
        GeocodedEvent::from_value(&Value::Record(fields), &keys()),
        Err(MappingError::Missing("age_band"))
    );
}

// ----- every event round trips -----

fn area() -> impl Strategy<Value = Option<Arc<str>>> {
    proptest::option::of("E0[0-9]{7}".prop_map(|s| Arc::<str>::from(s.as_str())))
}

fn event() -> impl Strategy<Value = GeocodedEvent> {
    let identity = ("[A-Z0-9]{3,12}", ".{1,64}", any::<u64>());
    let time = (
        -2_000_000_000_000i64..5_000_000_000_000,
        proptest::option::of(-2_000_000_000_000i64..5_000_000_000_000),
        -100_000i64..100_000,
        proptest::option::of(0..24u8),
    );
    let coded = (
        proptest::sample::select(AssaultMethod::ALL),
        proptest::sample::select(LocationType::ALL),
        proptest::sample::select(AgeBand::ALL.to_vec()),
        proptest::sample::select(Sex::ALL),
        proptest::sample::select(GeocodeMethod::ALL.to_vec()),
    );
    let place = (
        proptest::option::of(0..=i32::MAX as u32),
        proptest::option::of((0..122u64, 0..=15u8, any::<u64>())),
        area(),
        area(),
        area(),
    );
    (identity, time, coded, place).prop_map(
        |((site, id, hash), (at, arrival, days, hour), (m, l, a, s, g), (p, cell, b, w, ls))| {
            // A cell of any base cell and resolution, its unused digits 7.
            let cell = cell.map(|(base, res, digits)| {
                let mut bits = (1u64 << 59) | (u64::from(res) << 52) | (base << 45);
                for r in 1..=15u64 {
                    // No digit 1: a pentagon's first non-zero digit may not be 1.
                    let digit = if r <= u64::from(res) {
                        [0, 2, 3, 4, 5, 6][((digits >> (3 * r)) % 6) as usize]
                    } else {
                        7
                    };
                    bits |= digit << (3 * (15 - r));
                }
                h3o::CellIndex::try_from(bits).expect("a valid cell index")
            });
            let ms = |t: i64| Utc.timestamp_millis_opt(t).unwrap();
            GeocodedEvent {
                event: Event {
                    disclosure_key: keys().key(&site, &id),
                    site_code: site,
                    record_id: id,
                    content_hash: hash,
                    legacy_hash: 0,
                    assault_date: NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                        + Duration::days(days),
                    assault_hour: hour,
                    method: m,
                    location_type: l,
                    age_band: a,
                    sex: s,
                    geocode_method: g,
                    precision_m: p,
                    cell,
                    borough: b,
                    ward: w,
                    lsoa: ls,
                },
                assault_at: ms(at),
                arrival_at: arrival.map(ms),
            }
        },
    )
}

proptest! {
    #[test]
    fn every_event_round_trips(g in event()) {
        let bytes = encode(7, geocoded_schema(), g.to_value().unwrap()).unwrap();
        let back = GeocodedEvent::from_value(&read_back(geocoded_schema(), &bytes), &keys());
        prop_assert_eq!(back, Ok(g));
    }
}

#[test]
fn the_pipeline_event_of_an_attendance_round_trips_but_for_its_legacy_hash() {
    let a = one_row();
    let content = istv_pipeline::ContentKey::new([7; 32]);
    let keys = keys();
    let geocode = istv_geo::Geocode::unresolved();
    let event = istv_pipeline::to_event(
        &a,
        &geocode,
        istv_pipeline::Keys {
            disclosure: &keys,
            content: &content,
        },
    );
    assert_ne!(event.legacy_hash, 0);
    let g = GeocodedEvent::new(&a, event.clone());
    let bytes = encode(7, geocoded_schema(), g.to_value().unwrap()).unwrap();
    let back = GeocodedEvent::from_value(&read_back(geocoded_schema(), &bytes), &keys).unwrap();
    assert_eq!(
        back.event,
        Event {
            legacy_hash: 0,
            ..event
        }
    );
}

// ----- rejections -----

#[test]
fn a_rejection_round_trips() {
    for field in [None, Some("assault_datetime".to_owned())] {
        let error = FieldError {
            row: 41,
            field,
            code: ErrorCode::InvalidDatetime,
            message: "no such date or time".into(),
        };
        let bytes = encode(
            7,
            istv_core::schema::rejection_v1(),
            rejection_value("u-1", &error),
        )
        .unwrap();
        let value = read_back(istv_core::schema::rejection_v1(), &bytes);
        assert_eq!(
            rejection_from_value(&value),
            Ok(Rejection {
                upload_id: "u-1".into(),
                error
            })
        );
    }
    // upload "u", row 2 (-> 4), null field, "missing_required", "m".
    let mut want = vec![0x00, 0x00, 0x00, 0x00, 0x07, 0x02, b'u', 0x04, 0x00, 0x20];
    want.extend_from_slice(b"missing_required");
    want.extend_from_slice(&[0x02, b'm']);
    let error = FieldError {
        row: 2,
        field: None,
        code: ErrorCode::MissingRequired,
        message: "m".into(),
    };
    assert_eq!(
        encode(
            7,
            istv_core::schema::rejection_v1(),
            rejection_value("u", &error)
        )
        .unwrap(),
        want
    );
}
