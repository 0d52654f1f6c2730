//! One test per rule, on hand-made rows.

use super::*;
use chrono::{NaiveDate, NaiveTime, TimeZone};
use std::borrow::Cow;

/// 2024-06-15 12:00 UTC.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap()
}

/// A valid row, with `changes` applied (an empty value blanks the field).
fn row(changes: &[(Field, &str)]) -> RawRecord<'static> {
    let mut r = RawRecord::new(7);
    let base = [
        (Field::SiteCode, "RJ122"),
        (Field::RecordId, "A-1"),
        (Field::ArrivalDatetime, "2024-06-01T01:10"),
        (Field::AssaultDatetime, "2024-06-01T00:30"),
        (Field::AssaultMethod, "sharp_object"),
        (Field::AssaultLocationType, "street"),
    ];
    for (f, v) in base.iter().chain(changes) {
        r.set(*f, Cow::Owned(v.to_string()));
    }
    r
}

fn verdict(changes: &[(Field, &str)]) -> Verdict {
    Validator::new(now()).validate(&row(changes))
}

/// The (field, code) pairs of a row's errors.
fn codes(changes: &[(Field, &str)]) -> Vec<(String, ErrorCode)> {
    verdict(changes)
        .errors
        .into_iter()
        .map(|e| {
            assert_eq!(e.row, 7);
            (e.field.unwrap_or_default(), e.code)
        })
        .collect()
}

fn one(field: Field, code: ErrorCode) -> Vec<(String, ErrorCode)> {
    vec![(field.name().to_string(), code)]
}

#[test]
fn a_complete_row_is_valid_and_normalised() {
    let v = verdict(&[
        (Field::SiteCode, "rj122"),
        (Field::AssaultMethodOther, ""),
        (
            Field::AssaultLocationDescription,
            "outside the Red Lion, Church St",
        ),
        (Field::AssaultPostcode, "se59rs"),
        (Field::AssaultLatitude, "51.4682"),
        (Field::AssaultLongitude, "-0.0937"),
        (Field::AssaultEasting, "532700"),
        (Field::AssaultNorthing, "176300"),
        (Field::PatientAge, "19"),
        (Field::PatientSex, "M"),
    ]);
    assert!(v.errors.is_empty(), "{:?}", v.errors);
    let r = v.record.unwrap();
    assert_eq!(r.site_code, "RJ122");
    assert_eq!(r.assault_postcode.as_ref().unwrap().as_str(), "SE5 9RS");
    assert_eq!(r.assault_latlon, Some((51.4682, -0.0937)));
    assert_eq!(r.assault_grid, Some((532700.0, 176300.0)));
    assert_eq!(r.patient_age, Some(19));
    assert_eq!(r.age_band().as_str(), "18-24");
    assert_eq!(r.patient_sex, Some(Sex::Male));
    // 00:30 BST on 1 June is 23:30 UTC on 31 May; London date and hour stay.
    assert_eq!(
        r.assault.instant,
        Utc.with_ymd_and_hms(2024, 5, 31, 23, 30, 0).unwrap()
    );
    assert_eq!(
        r.assault.local_date,
        NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()
    );
    assert_eq!(r.assault.local_time, NaiveTime::from_hms_opt(0, 30, 0));
    assert_eq!(
        r.arrival,
        Some(Utc.with_ymd_and_hms(2024, 6, 1, 0, 10, 0).unwrap())
    );
}

#[test]
fn required_fields_must_be_present() {
    for f in [
        Field::SiteCode,
        Field::RecordId,
        Field::AssaultDatetime,
        Field::AssaultMethod,
        Field::AssaultLocationType,
    ] {
        assert_eq!(
            codes(&[(f, "  ")]),
            one(f, ErrorCode::MissingRequired),
            "{f}"
        );
    }
    // Arrival is required by ISTV but may be empty.
    assert_eq!(codes(&[(Field::ArrivalDatetime, "")]), vec![]);
}

#[test]
fn every_problem_of_a_row_is_reported() {
    let got = codes(&[
        (Field::SiteCode, ""),
        (Field::AssaultMethod, "knife"),
        (Field::PatientAge, "abc"),
        (Field::PatientSex, "woman"),
    ]);
    assert_eq!(
        got,
        vec![
            ("site_code".into(), ErrorCode::MissingRequired),
            ("assault_method".into(), ErrorCode::InvalidEnum),
            ("patient_age".into(), ErrorCode::InvalidNumber),
            ("patient_sex".into(), ErrorCode::InvalidEnum),
        ]
    );
}

#[test]
fn datetimes_must_parse() {
    assert_eq!(
        codes(&[(Field::AssaultDatetime, "last friday")]),
        one(Field::AssaultDatetime, ErrorCode::InvalidDatetime)
    );
    assert_eq!(
        codes(&[(Field::ArrivalDatetime, "2024-02-30T10:00")]),
        one(Field::ArrivalDatetime, ErrorCode::InvalidDatetime)
    );
    assert_eq!(
        codes(&[
            (Field::AssaultDatetime, "01/06/2024 00:30"),
            (Field::ArrivalDatetime, "01/06/2024 1:10")
        ]),
        vec![]
    );
}

#[test]
fn assault_must_not_be_after_arrival() {
    assert_eq!(
        codes(&[(Field::AssaultDatetime, "2024-06-01T01:11")]),
        one(Field::AssaultDatetime, ErrorCode::AssaultAfterArrival)
    );
    // Equal is fine.
    assert_eq!(
        codes(&[(Field::AssaultDatetime, "2024-06-01T01:10")]),
        vec![]
    );
    // A bare date compares by London calendar day: same day is fine, the
    // next day is not.
    assert_eq!(codes(&[(Field::AssaultDatetime, "2024-06-01")]), vec![]);
    assert_eq!(
        codes(&[(Field::AssaultDatetime, "2024-06-02")]),
        one(Field::AssaultDatetime, ErrorCode::AssaultAfterArrival)
    );
    // Offsets are honoured: 01:30+02:00 is 00:30 BST, before arrival at 01:10 BST.
    assert_eq!(
        codes(&[(Field::AssaultDatetime, "2024-06-01T01:30+02:00")]),
        vec![]
    );
}

#[test]
fn assault_must_be_at_most_30_days_before_arrival() {
    // Arrival 2024-06-01T01:10 BST. Exactly 30 days before is accepted.
    assert_eq!(
        codes(&[(Field::AssaultDatetime, "2024-05-02T01:10")]),
        vec![]
    );
    assert_eq!(
        codes(&[(Field::AssaultDatetime, "2024-05-02T01:09")]),
        one(Field::AssaultDatetime, ErrorCode::AssaultTooEarly)
    );
    assert_eq!(codes(&[(Field::AssaultDatetime, "2024-05-02")]), vec![]);
    assert_eq!(
        codes(&[(Field::AssaultDatetime, "2024-05-01")]),
        one(Field::AssaultDatetime, ErrorCode::AssaultTooEarly)
    );
    // Without an arrival there is nothing to compare with.
    assert_eq!(
        codes(&[
            (Field::AssaultDatetime, "2023-01-01"),
            (Field::ArrivalDatetime, "")
        ]),
        vec![]
    );
}

#[test]
fn nothing_may_be_in_the_future() {
    // now is 2024-06-15 12:00 UTC = 13:00 BST.
    assert_eq!(
        codes(&[
            (Field::ArrivalDatetime, "2024-06-15T13:01"),
            (Field::AssaultDatetime, "2024-06-15T12:00")
        ]),
        one(Field::ArrivalDatetime, ErrorCode::InFuture)
    );
    assert_eq!(
        codes(&[
            (Field::ArrivalDatetime, ""),
            (Field::AssaultDatetime, "2024-06-15T13:01")
        ]),
        one(Field::AssaultDatetime, ErrorCode::InFuture)
    );
    assert_eq!(
        codes(&[
            (Field::ArrivalDatetime, "2024-06-15T13:00"),
            (Field::AssaultDatetime, "2024-06-15T12:59")
        ]),
        vec![]
    );
}

#[test]
fn coded_values_accept_national_codes_and_reject_others() {
    assert_eq!(
        codes(&[
            (Field::AssaultMethod, "03"),
            (Field::AssaultLocationType, "Public Transport")
        ]),
        vec![]
    );
    assert_eq!(
        codes(&[(Field::AssaultLocationType, "pub")]),
        one(Field::AssaultLocationType, ErrorCode::InvalidEnum)
    );
    let v = verdict(&[(Field::AssaultMethod, "KNIFE")]);
    // The message names the accepted values, never the value sent.
    assert!(v.errors[0].message.contains("sharp_object"));
    assert!(!v.errors[0].message.to_lowercase().contains("knife"));
}

#[test]
fn coordinates_come_in_pairs_inside_the_uk() {
    assert_eq!(
        codes(&[(Field::AssaultLatitude, "51.5")]),
        one(Field::AssaultLongitude, ErrorCode::IncompleteCoordinates)
    );
    assert_eq!(
        codes(&[(Field::AssaultNorthing, "180000")]),
        one(Field::AssaultEasting, ErrorCode::IncompleteCoordinates)
    );
    // Swapped latitude and longitude fall outside the UK.
    assert_eq!(
        codes(&[
            (Field::AssaultLatitude, "-0.1"),
            (Field::AssaultLongitude, "51.5")
        ]),
        one(Field::AssaultLatitude, ErrorCode::OutsideUk)
    );
    // Paris.
    assert_eq!(
        codes(&[
            (Field::AssaultLatitude, "48.8566"),
            (Field::AssaultLongitude, "2.3522")
        ]),
        one(Field::AssaultLatitude, ErrorCode::OutsideUk)
    );
    assert_eq!(
        codes(&[
            (Field::AssaultLatitude, "NaN"),
            (Field::AssaultLongitude, "0")
        ]),
        one(Field::AssaultLatitude, ErrorCode::InvalidNumber)
    );
    assert_eq!(
        codes(&[
            (Field::AssaultEasting, "700000"),
            (Field::AssaultNorthing, "180000")
        ]),
        one(Field::AssaultEasting, ErrorCode::OutsideNationalGrid)
    );
    assert_eq!(
        codes(&[
            (Field::AssaultEasting, "-1"),
            (Field::AssaultNorthing, "180000")
        ]),
        one(Field::AssaultEasting, ErrorCode::OutsideNationalGrid)
    );
    assert_eq!(
        codes(&[
            (Field::AssaultEasting, "530000.5"),
            (Field::AssaultNorthing, "1299999")
        ]),
        vec![]
    );
}

#[test]
fn postcodes_must_be_full_or_partial_uk_postcodes() {
    for ok in ["SW1A 1AA", "sw1a1aa", "SW1A 1", "SW1A", "E1"] {
        assert_eq!(codes(&[(Field::AssaultPostcode, ok)]), vec![], "{ok}");
    }
    for bad in ["LONDON", "12345", "SW1A 1AAA"] {
        assert_eq!(
            codes(&[(Field::AssaultPostcode, bad)]),
            one(Field::AssaultPostcode, ErrorCode::InvalidPostcode),
            "{bad}"
        );
    }
}

#[test]
fn method_other_text_only_with_other() {
    assert_eq!(
        codes(&[
            (Field::AssaultMethod, "other"),
            (Field::AssaultMethodOther, "dog")
        ]),
        vec![]
    );
    assert_eq!(
        codes(&[(Field::AssaultMethodOther, "dog")]),
        one(Field::AssaultMethodOther, ErrorCode::MethodOtherNotAllowed)
    );
}

#[test]
fn age_is_whole_years_0_to_120() {
    assert_eq!(codes(&[(Field::PatientAge, "0")]), vec![]);
    assert_eq!(codes(&[(Field::PatientAge, "120")]), vec![]);
    assert_eq!(
        codes(&[(Field::PatientAge, "121")]),
        one(Field::PatientAge, ErrorCode::OutOfRange)
    );
    assert_eq!(
        codes(&[(Field::PatientAge, "-1")]),
        one(Field::PatientAge, ErrorCode::OutOfRange)
    );
    assert_eq!(
        codes(&[(Field::PatientAge, "19.5")]),
        one(Field::PatientAge, ErrorCode::InvalidNumber)
    );
}

#[test]
fn nhs_numbers_in_text_fields_are_rejected() {
    for f in [Field::RecordId, Field::AssaultLocationDescription] {
        assert_eq!(
            codes(&[(f, "pt 943 476 5919")]),
            one(f, ErrorCode::NhsNumber),
            "{f}"
        );
    }
    assert_eq!(
        codes(&[
            (Field::AssaultMethod, "other"),
            (Field::AssaultMethodOther, "9434765919")
        ]),
        one(Field::AssaultMethodOther, ErrorCode::NhsNumber)
    );
    // Ten digits failing the check are not an NHS number.
    assert_eq!(codes(&[(Field::RecordId, "9434765918")]), vec![]);
    // Nor are valid ones inside a longer token, as in a hashed reference.
    assert_eq!(codes(&[(Field::RecordId, "a9434765919f03")]), vec![]);
    assert_eq!(
        codes(&[(Field::RecordId, "ref-9434765919")]),
        one(Field::RecordId, ErrorCode::NhsNumber)
    );
}

#[test]
fn values_have_length_limits() {
    let long = "x".repeat(501);
    assert_eq!(
        codes(&[(Field::AssaultLocationDescription, &long)]),
        one(Field::AssaultLocationDescription, ErrorCode::TooLong)
    );
    assert_eq!(
        codes(&[(Field::AssaultLocationDescription, &long[..500])]),
        vec![]
    );
    assert_eq!(
        codes(&[(Field::RecordId, &"7".repeat(65))]),
        one(Field::RecordId, ErrorCode::TooLong)
    );
}

#[test]
fn site_codes_are_checked_and_scoped_to_the_uploader() {
    assert_eq!(
        codes(&[(Field::SiteCode, "RJ-122")]),
        one(Field::SiteCode, ErrorCode::InvalidSiteCode)
    );
    let mut scoped = Validator::new(now()).for_site("rj122");
    assert!(scoped.validate(&row(&[])).is_valid());
    let v = scoped.validate(&row(&[(Field::SiteCode, "R1H12")]));
    assert_eq!(v.errors.len(), 1);
    assert_eq!(v.errors[0].code, ErrorCode::InvalidSiteCode);
    assert_eq!(
        v.errors[0].message,
        "row is for site R1H12 but this upload is for site RJ122"
    );
}

#[test]
fn a_later_row_with_the_same_record_id_replaces_the_earlier() {
    let mut v = Validator::new(now());
    let mut first = row(&[]);
    first.row = 3;
    let mut other = row(&[(Field::RecordId, "A-2")]);
    other.row = 4;
    let mut again = row(&[(Field::AssaultMethod, "body_part")]);
    again.row = 9;
    assert_eq!(v.validate(&first).replaces, None);
    assert_eq!(v.validate(&other).replaces, None);
    assert_eq!(v.validate(&again).replaces, Some(3));
    let mut untracked = Validator::new(now()).without_duplicate_tracking();
    assert_eq!(untracked.validate(&first).replaces, None);
    assert_eq!(untracked.validate(&again).replaces, None);
    // The same record_id at another site is another record.
    let mut elsewhere = row(&[(Field::SiteCode, "R1H12")]);
    elsewhere.row = 10;
    assert_eq!(v.validate(&elsewhere).replaces, None);
}

#[test]
fn decoding_problems_are_kept_and_row_level_ones_stop_the_checks() {
    let mut r = row(&[]);
    r.problem(
        None,
        ErrorCode::MalformedRow,
        "row has 3 fields but the header has 6",
    );
    let v = Validator::new(now()).validate(&r);
    assert_eq!(v.errors.len(), 1);
    assert_eq!(v.errors[0].code, ErrorCode::MalformedRow);

    let mut r = row(&[]);
    r.set(Field::PatientAge, Cow::Borrowed(""));
    r.problem(
        Some(Field::PatientSex),
        ErrorCode::InvalidUtf8,
        "not valid UTF-8",
    );
    let v = Validator::new(now()).validate(&r);
    assert_eq!(v.errors.len(), 1);
    assert_eq!(v.errors[0].field.as_deref(), Some("patient_sex"));
}

#[test]
fn tally_counts_rows_codes_and_replacements() {
    let mut v = Validator::new(now());
    let mut t = Tally::default();
    for r in [
        row(&[]),
        row(&[(Field::AssaultMethod, "x"), (Field::PatientAge, "200")]),
        row(&[(Field::RecordId, "A-2")]),
        row(&[]),
    ] {
        t.add(&v.validate(&r));
    }
    assert_eq!((t.rows, t.valid, t.invalid, t.duplicates), (4, 3, 1, 1));
    assert_eq!(t.by_code.get(&ErrorCode::InvalidEnum), Some(&1));
    assert_eq!(t.by_code.get(&ErrorCode::OutOfRange), Some(&1));
}

#[test]
fn reference_and_coded_fields_refuse_control_characters() {
    assert_eq!(
        codes(&[(Field::RecordId, "1,,2024\nRJ122,2")]),
        one(Field::RecordId, ErrorCode::ControlCharacters)
    );
    assert_eq!(codes(&[(Field::AssaultMethod, "body_part\t")]), vec![]);
    assert_eq!(
        codes(&[(Field::AssaultMethod, "body\u{7}part")]),
        one(Field::AssaultMethod, ErrorCode::ControlCharacters)
    );
    // Free text may have line breaks.
    assert_eq!(
        codes(&[(
            Field::AssaultLocationDescription,
            "by the bus stop\nnear the pub"
        )]),
        vec![]
    );
}

#[test]
fn an_overlap_arrival_takes_the_occurrence_that_fits() {
    // 29 Oct 2023: 01:00-01:59 happens twice. Assault at 01:40 (first, BST),
    // arrival at 01:10 can only be the second occurrence (GMT).
    let v = verdict(&[
        (Field::AssaultDatetime, "29/10/2023 01:40"),
        (Field::ArrivalDatetime, "29/10/2023 01:10"),
    ]);
    assert!(v.is_valid(), "{:?}", v.errors);
    assert_eq!(
        v.record.unwrap().arrival,
        Some(Utc.with_ymd_and_hms(2023, 10, 29, 1, 10, 0).unwrap())
    );
    // Both readings of 00:50 arrival are before a 01:40 assault.
    assert_eq!(
        codes(&[
            (Field::AssaultDatetime, "29/10/2023 01:40"),
            (Field::ArrivalDatetime, "29/10/2023 00:50"),
        ]),
        one(Field::AssaultDatetime, ErrorCode::AssaultAfterArrival)
    );
}
