//! `istv.v1.Attendance` values of validated attendances, and back.
//!
//! An attendance travels as the canonical text of its validated values:
//! upper-case site code, canonical names of coded values, the normalised
//! postcode, coordinates as doubles, an instant as RFC 3339 UTC (`Z`, the
//! fraction of a second only when there is one) and a bare assault date as
//! `YYYY-MM-DD`. Reading one back runs the domain rules over it again, so
//! a consumer trusts no producer: what it gets is exactly an attendance the
//! rules accept, equal to the one written.

use super::{field, opt, MappingError};
use apache_avro::types::Value;
use chrono::{DateTime, SecondsFormat, Utc};
use istv_core::{Attendance, Field, RawRecord, Validator};
use std::borrow::Cow;

fn null() -> Value {
    Value::Union(0, Box::new(Value::Null))
}

fn some(v: Value) -> Value {
    Value::Union(1, Box::new(v))
}

fn opt_string(s: Option<&str>) -> Value {
    s.map_or_else(null, |s| some(Value::String(s.to_owned())))
}

/// An instant as the rules read it back exactly: RFC 3339 in UTC, with as
/// many fraction digits as it needs (none, 3, 6 or 9).
pub fn instant_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The `istv.v1.Attendance` value of a validated attendance, every union
/// field given with its branch.
pub fn attendance_value(a: &Attendance) -> Value {
    let assault = match a.assault.local_time {
        // A bare date stays a date: London midnight would read back with a
        // clock time, and so with an hour the feed never gave.
        None => a.assault.local_date.format("%Y-%m-%d").to_string(),
        Some(_) => instant_text(a.assault.instant),
    };
    let pair = |p: Option<(f64, f64)>, first: bool| match p {
        Some((x, y)) => some(Value::Double(if first { x } else { y })),
        None => null(),
    };
    Value::Record(vec![
        ("site_code".into(), Value::String(a.site_code.clone())),
        ("record_id".into(), Value::String(a.record_id.clone())),
        (
            "arrival_datetime".into(),
            opt_string(a.arrival.map(instant_text).as_deref()),
        ),
        ("assault_datetime".into(), Value::String(assault)),
        (
            "assault_method".into(),
            Value::String(a.assault_method.as_str().into()),
        ),
        (
            "assault_method_other".into(),
            opt_string(a.assault_method_other.as_deref()),
        ),
        (
            "assault_location_type".into(),
            Value::String(a.assault_location_type.as_str().into()),
        ),
        (
            "assault_location_description".into(),
            opt_string(a.assault_location_description.as_deref()),
        ),
        (
            "assault_postcode".into(),
            opt_string(a.assault_postcode.as_ref().map(|p| p.as_str())),
        ),
        ("assault_latitude".into(), pair(a.assault_latlon, true)),
        ("assault_longitude".into(), pair(a.assault_latlon, false)),
        ("assault_easting".into(), pair(a.assault_grid, true)),
        ("assault_northing".into(), pair(a.assault_grid, false)),
        (
            "patient_age".into(),
            a.patient_age
                .map_or_else(null, |age| some(Value::Int(i32::from(age)))),
        ),
        (
            "patient_sex".into(),
            opt_string(a.patient_sex.map(|s| s.as_str())),
        ),
    ])
}

/// The text a value of the reader schema stands for, as a feed cell holds
/// it; `None` for null.
fn text_of(name: &'static str, v: &Value) -> Result<Option<String>, MappingError> {
    Ok(Some(match opt(v) {
        None => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Int(i)) => i.to_string(),
        // Rust's shortest text of a double parses back to the same double.
        Some(Value::Double(d)) => d.to_string(),
        Some(_) => return Err(MappingError::WrongType(name)),
    }))
}

/// The validated attendance of an `istv.v1.Attendance` value (as the
/// decoder resolves it to the reader schema). The rules are applied again,
/// except the one a consumer cannot judge: whether a time was in the future
/// when it was uploaded (the producer judged that; a consumer's clock may
/// lag the producer's).
pub fn attendance_from_value(value: &Value) -> Result<Attendance, MappingError> {
    let mut raw = RawRecord::new(1);
    for f in Field::ALL {
        if let Some(text) = text_of(f.name(), field(value, f.name())?)? {
            raw.set(f, Cow::Owned(text));
        }
    }
    let verdict = Validator::new(DateTime::<Utc>::MAX_UTC)
        .without_duplicate_tracking()
        .validate(&raw);
    match verdict.record {
        Some(a) => Ok(a),
        None => Err(MappingError::Rules(
            verdict
                .errors
                .iter()
                .map(|e| match &e.field {
                    Some(f) => format!("{f} {}", e.code.as_str()),
                    None => e.code.as_str().to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}
