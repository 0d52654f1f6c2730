//! The domain rules. [`Validator::validate`] gives every row a [`Verdict`]
//! listing every problem it has, so an ED can fix a file in one pass.

use crate::error::{ErrorCode, FieldError};
use crate::formats::RawRecord;
use crate::nhs::contains_nhs_number;
use crate::postcode::Postcode;
use crate::record::{trim, AssaultMethod, Attendance, Field, LocationType, Sex};
use crate::time::{london_date, parse_written, DateTimeError};
use chrono::{DateTime, Duration, Utc};
use seen::Seen;
use std::hash::BuildHasher;

mod seen;

/// How far the assault may be before the arrival.
pub const MAX_ASSAULT_TO_ARRIVAL_DAYS: i64 = 30;

/// Latitude and longitude box holding the UK (Shetland to the Scillies,
/// Northern Ireland to Lowestoft) with a small margin.
pub const UK_LATITUDE: (f64, f64) = (49.8, 60.95);
/// See [`UK_LATITUDE`].
pub const UK_LONGITUDE: (f64, f64) = (-8.75, 1.85);
/// British National Grid extent, metres.
pub const GRID_EASTING: (f64, f64) = (0.0, 700_000.0);
/// See [`GRID_EASTING`].
pub const GRID_NORTHING: (f64, f64) = (0.0, 1_300_000.0);

/// Longest value each field accepts, in bytes.
pub const fn max_len(field: Field) -> usize {
    match field {
        Field::SiteCode => 12,
        Field::RecordId => 64,
        Field::AssaultMethodOther => 200,
        Field::AssaultLocationDescription => 500,
        _ => 64,
    }
}

/// The outcome for one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// 1-based data row.
    pub row: u64,
    /// The validated record, present exactly when `errors` is empty.
    pub record: Option<Attendance>,
    /// Every problem found.
    pub errors: Vec<FieldError>,
    /// For a valid row whose `record_id` appeared earlier in the same file:
    /// the earlier row, which this one replaces.
    pub replaces: Option<u64>,
}

impl Verdict {
    /// True when the row passed every rule.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Applies the rules to rows of one file. It remembers the record ids it has
/// accepted so a later row with the same id can be marked as replacing the
/// earlier one (the later row wins).
pub struct Validator {
    now: DateTime<Utc>,
    site: Option<String>,
    seen: Seen,
    /// Seeded once, so a file's keys hash the same in every run.
    hasher: foldhash::quality::FixedState,
    track_duplicates: bool,
}

struct Check<'r> {
    row: u64,
    errors: Vec<FieldError>,
    raw: &'r RawRecord<'r>,
}

impl<'r> Check<'r> {
    fn fail(&mut self, field: Field, code: ErrorCode, message: impl Into<String>) {
        self.errors.push(FieldError {
            row: self.row,
            field: Some(field.name().to_string()),
            code,
            message: message.into(),
        });
    }

    /// True when decoding already reported a problem with this field.
    fn decode_failed(&self, field: Field) -> bool {
        self.raw
            .problems
            .iter()
            .any(|p| p.field.as_deref() == Some(field.name()))
    }

    /// The value, after the length and NHS-number screens.
    fn text(&mut self, field: Field) -> Option<&'r str> {
        let raw = self.raw;
        let value = trim(raw.get(field)?);
        if value.is_empty() {
            return None;
        }
        if value.len() > max_len(field) {
            self.fail(
                field,
                ErrorCode::TooLong,
                format!(
                    "longer than {} bytes ({} given)",
                    max_len(field),
                    value.len()
                ),
            );
            return None;
        }
        if field != Field::AssaultLocationDescription
            && field != Field::AssaultMethodOther
            && !raw.no_control_chars
            && value.bytes().any(|b| b.is_ascii_control())
        {
            self.fail(
                field,
                ErrorCode::ControlCharacters,
                "contains a line break or other control character; check for an unbalanced quote",
            );
            return None;
        }
        if field.is_free_text() && contains_nhs_number(value) {
            self.fail(
                field,
                ErrorCode::NhsNumber,
                "contains what looks like an NHS number; patient identifiers must never be sent",
            );
            return None;
        }
        Some(value)
    }

    fn required(&mut self, field: Field) -> Option<&'r str> {
        if self.raw.get(field).is_none_or(|v| trim(v).is_empty()) {
            if !self.decode_failed(field) {
                self.fail(field, ErrorCode::MissingRequired, "required but blank");
            }
            return None;
        }
        self.text(field)
    }

    fn datetime(&mut self, field: Field, value: &str) -> Option<crate::time::WrittenDateTime> {
        match parse_written(value) {
            Ok(w) => Some(w),
            Err(e @ DateTimeError::Layout) => {
                self.fail(field, ErrorCode::InvalidDatetime, e.to_string());
                None
            }
            Err(e @ DateTimeError::OutOfRange) => {
                self.fail(field, ErrorCode::InvalidDatetime, e.to_string());
                None
            }
        }
    }

    fn number(&mut self, field: Field) -> Option<f64> {
        let text = self.text(field)?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => {
                self.fail(
                    field,
                    ErrorCode::InvalidNumber,
                    "not a finite decimal number",
                );
                None
            }
        }
    }

    /// A coordinate pair: both or neither.
    fn pair(&mut self, a: Field, b: Field) -> Option<(f64, f64)> {
        let (has_a, has_b) = (self.raw.get(a).is_some(), self.raw.get(b).is_some());
        match (has_a, has_b) {
            (false, false) => None,
            (true, false) => {
                self.fail(
                    b,
                    ErrorCode::IncompleteCoordinates,
                    format!("blank but {a} is given"),
                );
                self.number(a);
                None
            }
            (false, true) => {
                self.fail(
                    a,
                    ErrorCode::IncompleteCoordinates,
                    format!("blank but {b} is given"),
                );
                self.number(b);
                None
            }
            (true, true) => {
                let x = self.number(a);
                let y = self.number(b);
                Some((x?, y?))
            }
        }
    }
}

impl Validator {
    /// A validator judging "the future" against `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Validator {
            now,
            site: None,
            seen: Seen::new(),
            hasher: foldhash::quality::FixedState::with_seed(0x15_7e),
            track_duplicates: true,
        }
    }

    /// Does not remember record ids, so [`Verdict::replaces`] stays `None`
    /// and memory stays flat however many rows a file has. For callers whose
    /// store already knows which records an upload wrote.
    pub fn without_duplicate_tracking(mut self) -> Self {
        self.track_duplicates = false;
        self
    }

    /// Only rows for this site are accepted (an upload token is scoped to
    /// one site).
    pub fn for_site(mut self, site_code: &str) -> Self {
        self.site = Some(site_code.to_ascii_uppercase());
        self
    }

    /// Judges one row.
    pub fn validate(&mut self, raw: &RawRecord<'_>) -> Verdict {
        let row = raw.row;
        if raw.problems.iter().any(|p| p.field.is_none()) {
            return Verdict {
                row,
                record: None,
                errors: raw.problems.clone(),
                replaces: None,
            };
        }
        let mut c = Check {
            row,
            errors: raw.problems.clone(),
            raw,
        };

        let site_code = c.required(Field::SiteCode).and_then(|s| {
            let ok = (3..=12).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok {
                c.fail(
                    Field::SiteCode,
                    ErrorCode::InvalidSiteCode,
                    "not an ODS site code (3-12 letters and digits)",
                );
                return None;
            }
            let code = s.to_ascii_uppercase();
            if let Some(expected) = &self.site {
                if &code != expected {
                    c.fail(
                        Field::SiteCode,
                        ErrorCode::InvalidSiteCode,
                        format!("row is for site {code} but this upload is for site {expected}"),
                    );
                    return None;
                }
            }
            Some(code)
        });
        let record_id = c.required(Field::RecordId).map(str::to_string);
        let key = match (&site_code, &record_id) {
            (Some(site), Some(id)) if self.track_duplicates => {
                let key = self.hasher.hash_one((site, id));
                self.seen.prefetch(key);
                Some(key)
            }
            _ => None,
        };

        let arrival_written = c
            .text(Field::ArrivalDatetime)
            .and_then(|v| c.datetime(Field::ArrivalDatetime, v));
        let mut arrival = arrival_written.map(|w| w.instant());
        if let Some(a) = arrival {
            if a > self.now {
                c.fail(
                    Field::ArrivalDatetime,
                    ErrorCode::InFuture,
                    "is in the future",
                );
            }
        }
        let assault_written = c
            .required(Field::AssaultDatetime)
            .and_then(|v| c.datetime(Field::AssaultDatetime, v));
        let assault = assault_written.map(|w| w.to_assault_time());
        // An arrival clock time in the autumn overlap is read as its second
        // occurrence when the first would put it before the assault.
        if let (Some(a), Some(t), Some(later)) = (
            arrival,
            &assault,
            arrival_written.and_then(|w| w.later_instant()),
        ) {
            if t.local_time.is_some() && t.instant > a && t.instant <= later {
                arrival = Some(later);
            }
        }
        if let Some(t) = &assault {
            if t.instant > self.now {
                c.fail(
                    Field::AssaultDatetime,
                    ErrorCode::InFuture,
                    "is in the future",
                );
            } else if let Some(a) = arrival {
                // A bare date is compared by calendar day: "the assault was on
                // the 3rd" is consistent with any arrival on the 3rd.
                let after = match t.local_time {
                    Some(_) => t.instant > a,
                    None => t.local_date > london_date(a),
                };
                let days = match t.local_time {
                    Some(_) => a.signed_duration_since(t.instant),
                    None => london_date(a).signed_duration_since(t.local_date),
                };
                if after {
                    c.fail(
                        Field::AssaultDatetime,
                        ErrorCode::AssaultAfterArrival,
                        "is after arrival_datetime",
                    );
                } else if days > Duration::days(MAX_ASSAULT_TO_ARRIVAL_DAYS) {
                    c.fail(
                        Field::AssaultDatetime,
                        ErrorCode::AssaultTooEarly,
                        format!("is more than {MAX_ASSAULT_TO_ARRIVAL_DAYS} days before arrival_datetime"),
                    );
                }
            }
        }

        let method = c.required(Field::AssaultMethod).and_then(|v| {
            let m = AssaultMethod::parse(v);
            if m.is_none() {
                c.fail(
                    Field::AssaultMethod,
                    ErrorCode::InvalidEnum,
                    format!(
                        "not one of {} (or their national codes)",
                        AssaultMethod::expected()
                    ),
                );
            }
            m
        });
        let method_other = c.text(Field::AssaultMethodOther).map(str::to_string);
        if method_other.is_some() && method.is_some_and(|m| m != AssaultMethod::Other) {
            c.fail(
                Field::AssaultMethodOther,
                ErrorCode::MethodOtherNotAllowed,
                "only allowed when assault_method is other",
            );
        }
        let location_type = c.required(Field::AssaultLocationType).and_then(|v| {
            let l = LocationType::parse(v);
            if l.is_none() {
                c.fail(
                    Field::AssaultLocationType,
                    ErrorCode::InvalidEnum,
                    format!(
                        "not one of {} (or their national codes)",
                        LocationType::expected()
                    ),
                );
            }
            l
        });
        let description = c
            .text(Field::AssaultLocationDescription)
            .map(str::to_string);
        let postcode = c.text(Field::AssaultPostcode).and_then(|v| {
            let p = Postcode::parse(v);
            if p.is_none() {
                c.fail(
                    Field::AssaultPostcode,
                    ErrorCode::InvalidPostcode,
                    "not a full or partial UK postcode (e.g. SW1A 1AA, SW1A 1 or SW1A)",
                );
            }
            p
        });
        let latlon = c
            .pair(Field::AssaultLatitude, Field::AssaultLongitude)
            .and_then(|(lat, lon)| {
                let inside = (UK_LATITUDE.0..=UK_LATITUDE.1).contains(&lat)
                    && (UK_LONGITUDE.0..=UK_LONGITUDE.1).contains(&lon);
                if !inside {
                    c.fail(
                        Field::AssaultLatitude,
                        ErrorCode::OutsideUk,
                        "latitude and longitude are outside the UK (are they swapped?)",
                    );
                    return None;
                }
                Some((lat, lon))
            });
        let grid = c.pair(Field::AssaultEasting, Field::AssaultNorthing).and_then(|(e, n)| {
            let inside = (GRID_EASTING.0..GRID_EASTING.1).contains(&e) && (GRID_NORTHING.0..GRID_NORTHING.1).contains(&n);
            if !inside {
                c.fail(
                    Field::AssaultEasting,
                    ErrorCode::OutsideNationalGrid,
                    "easting and northing are outside the British National Grid (0-700000, 0-1300000 m)",
                );
                return None;
            }
            Some((e, n))
        });
        let age = c
            .text(Field::PatientAge)
            .and_then(|v| match v.parse::<i64>() {
                Ok(a) if (0..=120).contains(&a) => Some(a as u8),
                Ok(_) => {
                    c.fail(
                        Field::PatientAge,
                        ErrorCode::OutOfRange,
                        "must be between 0 and 120",
                    );
                    None
                }
                Err(_) => {
                    c.fail(
                        Field::PatientAge,
                        ErrorCode::InvalidNumber,
                        "not a whole number of years",
                    );
                    None
                }
            });
        let sex = c.text(Field::PatientSex).and_then(|v| {
            let s = Sex::parse(v);
            if s.is_none() {
                c.fail(
                    Field::PatientSex,
                    ErrorCode::InvalidEnum,
                    format!("not one of {}", Sex::expected()),
                );
            }
            s
        });

        if !c.errors.is_empty() {
            return Verdict {
                row,
                record: None,
                errors: c.errors,
                replaces: None,
            };
        }
        let (Some(site_code), Some(record_id), Some(assault), Some(method), Some(location_type)) =
            (site_code, record_id, assault, method, location_type)
        else {
            unreachable!("a missing required value always records an error")
        };
        let replaces = key.and_then(|key| self.seen.insert(key, row));
        Verdict {
            row,
            record: Some(Attendance {
                site_code,
                record_id,
                arrival,
                assault,
                assault_method: method,
                assault_method_other: method_other,
                assault_location_type: location_type,
                assault_location_description: description,
                assault_postcode: postcode,
                assault_latlon: latlon,
                assault_grid: grid,
                patient_age: age,
                patient_sex: sex,
            }),
            errors: Vec::new(),
            replaces,
        }
    }
}

#[cfg(test)]
mod tests;

/// Running counts over a file's verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    /// Rows read.
    pub rows: u64,
    /// Rows that passed every rule.
    pub valid: u64,
    /// Rows with at least one problem.
    pub invalid: u64,
    /// Valid rows that replace an earlier row of the same file with the same
    /// `record_id`.
    pub duplicates: u64,
    /// Problems by reason code.
    pub by_code: std::collections::BTreeMap<ErrorCode, u64>,
}

impl Tally {
    /// Counts one verdict.
    pub fn add(&mut self, verdict: &Verdict) {
        self.rows += 1;
        if verdict.is_valid() {
            self.valid += 1;
        } else {
            self.invalid += 1;
        }
        if verdict.replaces.is_some() {
            self.duplicates += 1;
        }
        for e in &verdict.errors {
            *self.by_code.entry(e.code).or_default() += 1;
        }
    }
}
