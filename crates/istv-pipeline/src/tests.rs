use super::*;
use chrono::{TimeZone, Utc};
use istv_core::formats::RawRecord;
use istv_core::{Field, Validator};
use std::borrow::Cow;

fn attendance(changes: &[(Field, &str)]) -> Attendance {
    let mut r = RawRecord::new(1);
    for (f, v) in [
        (Field::SiteCode, "RJ122"),
        (Field::RecordId, "A-1"),
        (Field::AssaultDatetime, "2024-06-01T00:30"),
        (Field::AssaultMethod, "sharp_object"),
        (Field::AssaultLocationType, "street"),
        (Field::PatientAge, "19"),
    ]
    .iter()
    .chain(changes)
    {
        r.set(*f, Cow::Owned(v.to_string()));
    }
    let v = Validator::new(Utc.with_ymd_and_hms(2024, 7, 1, 0, 0, 0).unwrap()).validate(&r);
    v.record.unwrap_or_else(|| panic!("{:?}", v.errors))
}

#[test]
fn an_event_keeps_only_derived_fields() {
    let a = attendance(&[
        (Field::AssaultLatitude, "51.5007"),
        (Field::AssaultLongitude, "-0.1246"),
        (Field::AssaultLocationDescription, "by the bridge"),
    ]);
    let keys = DisclosureKeys::new(11);
    let content = ContentKey::new([11; 32]);
    let both = Keys {
        disclosure: &keys,
        content: &content,
    };
    let e = geocode_stage(&Geocoder::new(Default::default()), both, &a);
    // Keyed under the deployment's key; the legacy hash beside it.
    let hashes = content_hash(&a, &content);
    assert_eq!(
        (e.content_hash, e.legacy_hash),
        (hashes.keyed, hashes.legacy)
    );
    assert_ne!(hashes.keyed, hashes.legacy);
    assert_eq!(e.site_code, "RJ122");
    // The record key is the deployment's keyed hash of the identity.
    assert_eq!(e.disclosure_key, keys.key("RJ122", "A-1"));
    assert_eq!(e.record_id, "A-1");
    // 00:30 BST on 1 June stays 1 June, hour 0, in London terms.
    assert_eq!(
        e.assault_date,
        chrono::NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()
    );
    assert_eq!(e.assault_hour, Some(0));
    assert_eq!(e.age_band.as_str(), "18-24");
    assert_eq!(e.sex.as_str(), "not_known");
    assert_eq!(e.geocode_method.as_str(), "latlon");
    // Without imported boundaries there are no areas, but there is a cell.
    assert!(e.cell.is_some());
    assert_eq!((e.borough, e.ward, e.lsoa), (None, None, None));
}

#[test]
fn a_batch_gives_the_one_by_one_events() {
    let records: Vec<Attendance> = [
        vec![
            (Field::AssaultLatitude, "51.5007"),
            (Field::AssaultLongitude, "-0.1246"),
        ],
        vec![(Field::AssaultLocationDescription, "somewhere")],
        vec![
            (Field::AssaultEasting, "530000"),
            (Field::AssaultNorthing, "180000"),
        ],
        vec![
            (Field::AssaultLatitude, "55.9"),
            (Field::AssaultLongitude, "-3.2"),
        ],
    ]
    .iter()
    .map(|c| attendance(c))
    .collect();
    let g = Geocoder::new(Default::default());
    let keys = DisclosureKeys::new(5);
    let content = ContentKey::new([5; 32]);
    let keys = Keys {
        disclosure: &keys,
        content: &content,
    };
    let one: Vec<Event> = records.iter().map(|a| geocode_stage(&g, keys, a)).collect();
    let mut many = Vec::new();
    let mut records = records;
    geocode_stage_many(&g, keys, &mut records, &mut many);
    assert_eq!(many, one);
    assert!(records.is_empty());
    let methods: Vec<&str> = many.iter().map(|e| e.geocode_method.as_str()).collect();
    assert_eq!(methods, ["latlon", "unresolved", "grid", "out_of_area"]);
}

/// The key of the content hash tests.
fn key() -> ContentKey {
    ContentKey::new([3; 32])
}

#[test]
fn content_hash_changes_with_any_field_and_only_then() {
    let hash = |a: &Attendance| content_hash(a, &key());
    let base = hash(&attendance(&[]));
    assert_eq!(base, hash(&attendance(&[])));
    // Same content written differently is the same content.
    assert_eq!(
        base,
        hash(&attendance(&[
            (Field::AssaultMethod, "03"),
            (Field::SiteCode, "rj122")
        ]))
    );
    for change in [
        (Field::AssaultMethod, "blunt_object"),
        (Field::AssaultDatetime, "2024-06-01T00:31"),
        (Field::AssaultDatetime, "2024-06-01"),
        (Field::AssaultLocationDescription, "elsewhere"),
        (Field::PatientAge, "20"),
        (Field::PatientSex, "female"),
        (Field::AssaultPostcode, "SE5"),
    ] {
        let other = hash(&attendance(&[change]));
        assert_ne!(base.keyed, other.keyed, "{change:?}");
        assert_ne!(base.legacy, other.legacy, "{change:?}");
    }
    // Another deployment's key, another keyed hash; the legacy one stays.
    let elsewhere = content_hash(&attendance(&[]), &ContentKey::new([4; 32]));
    assert_ne!(elsewhere.keyed, base.keyed);
    assert_eq!(elsewhere.legacy, base.legacy);
}

/// Stored legacy hashes were made from each field's text in a fixed order;
/// both hashes are of that text, spelled out here by hand.
#[test]
fn content_hash_is_the_hash_of_the_fields_text() {
    let a = attendance(&[
        (Field::ArrivalDatetime, "2024-06-01T01:10"),
        (Field::AssaultMethod, "other"),
        (Field::AssaultMethodOther, "a chair"),
        (Field::AssaultLocationDescription, "by the bridge"),
        (Field::AssaultPostcode, "se5 8af"),
        (Field::AssaultLatitude, "51.5007"),
        (Field::AssaultLongitude, "-0.1246"),
        (Field::AssaultEasting, "530000"),
        (Field::AssaultNorthing, "180000.5"),
        (Field::PatientSex, "F"),
    ]);
    let text = [
        "RJ122",
        "A-1",
        "1717200600000", // 00:10 UTC, 01:10 BST
        "1717198200000", // 23:30 UTC the day before
        "t",
        "other",
        "a chair",
        "street",
        "by the bridge",
        "SE5 8AF",
        "51.5007,-0.1246",
        "530000.0,180000.5",
        "19",
        "female",
    ];
    let hashes = content_hash(&a, &key());
    assert_eq!(hashes.keyed, istv_aggregate::content_hash(&key(), &text));
    assert_eq!(hashes.legacy, istv_aggregate::legacy_content_hash(&text));
    // Absent fields are empty parts.
    let b = attendance(&[]);
    let text = [
        "RJ122",
        "A-1",
        "",
        "1717198200000",
        "t",
        "sharp_object",
        "",
        "street",
        "",
        "",
        "",
        "",
        "19",
        "",
    ];
    let hashes = content_hash(&b, &key());
    assert_eq!(hashes.keyed, istv_aggregate::content_hash(&key(), &text));
    assert_eq!(hashes.legacy, istv_aggregate::legacy_content_hash(&text));
}
