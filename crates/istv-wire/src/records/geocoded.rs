//! `istv.v1.GeocodedEvent` values of events, and back.
//!
//! What travels is what the schema holds: derived fields only. Two fields of
//! an [`Event`] do not travel and are set by the consumer:
//! - `disclosure_key` is recomputed from the record's identity with the
//!   deployment's [`DisclosureKeys`], as `istv serve` assigns it;
//! - `legacy_hash` is an unkeyed hash of the content, exact point and free
//!   text included: on a topic anyone may read, it would let a reader test
//!   guesses of the point. It reads back as 0, as the store reads a stored
//!   record; a re-send of a record stored before keyed hashes then counts
//!   as a correction of itself (the same counts) instead of a duplicate.

use super::{field, opt, MappingError};
use apache_avro::types::Value;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use h3o::CellIndex;
use istv_aggregate::{DisclosureKeys, Event, GeocodeMethod};
use istv_core::{AgeBand, AssaultMethod, Attendance, LocationType, Sex};
use std::sync::Arc;

/// The Avro symbols of the age bands, in [`AgeBand::ALL`]'s order (the
/// published labels, `18-24`, are not Avro names).
const AGE_SYMBOLS: [&str; 9] = [
    "age_0_9",
    "age_10_17",
    "age_18_24",
    "age_25_34",
    "age_35_44",
    "age_45_54",
    "age_55_64",
    "age_65_plus",
    "unknown",
];

/// The first day of the Unix epoch, which Avro dates count from.
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

/// A geocoded event as `istv.geocoded.v1` carries it: the event and the
/// instants of the attendance, to the millisecond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeocodedEvent {
    /// The event.
    pub event: Event,
    /// The instant of the assault (London midnight for a bare date),
    /// truncated to the millisecond.
    pub assault_at: DateTime<Utc>,
    /// The arrival, truncated to the millisecond.
    pub arrival_at: Option<DateTime<Utc>>,
}

/// An instant truncated to the millisecond, as `timestamp-millis` holds it.
fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t.timestamp_millis())
        .single()
        .expect("a millisecond of an instant is an instant")
}

fn null() -> Value {
    Value::Union(0, Box::new(Value::Null))
}

fn some(v: Value) -> Value {
    Value::Union(1, Box::new(v))
}

fn opt_string(s: Option<&str>) -> Value {
    s.map_or_else(null, |s| some(Value::String(s.to_owned())))
}

/// The position of a coded value in its list, which is its Avro enum's.
fn index<T: PartialEq>(all: &[T], v: T) -> usize {
    all.iter()
        .position(|x| *x == v)
        .expect("every value is listed")
}

fn symbol(index: usize, name: &str) -> Value {
    Value::Enum(index as u32, name.to_owned())
}

impl GeocodedEvent {
    /// The geocoded event of an attendance and the event the pipeline made
    /// of it.
    pub fn new(attendance: &Attendance, event: Event) -> GeocodedEvent {
        GeocodedEvent {
            event,
            assault_at: millis(attendance.assault.instant),
            arrival_at: attendance.arrival.map(millis),
        }
    }

    /// The `istv.v1.GeocodedEvent` value, every union field given with its
    /// branch. Fails only for a precision beyond an Avro int.
    pub fn to_value(&self) -> Result<Value, MappingError> {
        let e = &self.event;
        let precision = match e.precision_m {
            None => null(),
            Some(p) => some(Value::Int(
                i32::try_from(p).map_err(|_| MappingError::OutOfRange("precision_m"))?,
            )),
        };
        let days = (e.assault_date - epoch()).num_days();
        let days = i32::try_from(days).map_err(|_| MappingError::OutOfRange("assault_date"))?;
        Ok(Value::Record(vec![
            ("site_code".into(), Value::String(e.site_code.clone())),
            ("record_id".into(), Value::String(e.record_id.clone())),
            (
                "content_hash".into(),
                Value::String(format!("{:016x}", e.content_hash)),
            ),
            (
                "assault_at".into(),
                Value::TimestampMillis(self.assault_at.timestamp_millis()),
            ),
            ("assault_date".into(), Value::Date(days)),
            (
                "assault_hour".into(),
                e.assault_hour
                    .map_or_else(null, |h| some(Value::Int(i32::from(h)))),
            ),
            (
                "arrival_at".into(),
                self.arrival_at
                    .map_or_else(null, |t| some(Value::TimestampMillis(t.timestamp_millis()))),
            ),
            (
                "assault_method".into(),
                symbol(index(AssaultMethod::ALL, e.method), e.method.as_str()),
            ),
            (
                "location_type".into(),
                symbol(
                    index(LocationType::ALL, e.location_type),
                    e.location_type.as_str(),
                ),
            ),
            (
                "age_band".into(),
                symbol(
                    index(&AgeBand::ALL, e.age_band),
                    AGE_SYMBOLS[index(&AgeBand::ALL, e.age_band)],
                ),
            ),
            ("sex".into(), symbol(index(Sex::ALL, e.sex), e.sex.as_str())),
            (
                "geocode_method".into(),
                symbol(
                    index(&GeocodeMethod::ALL, e.geocode_method),
                    e.geocode_method.as_str(),
                ),
            ),
            ("precision_m".into(), precision),
            (
                "cell".into(),
                opt_string(e.cell.map(|c| c.to_string()).as_deref()),
            ),
            ("borough_code".into(), opt_string(e.borough.as_deref())),
            ("ward_code".into(), opt_string(e.ward.as_deref())),
            ("lsoa_code".into(), opt_string(e.lsoa.as_deref())),
        ]))
    }

    /// The geocoded event of an `istv.v1.GeocodedEvent` value (as the
    /// decoder resolves it to the reader schema), its record key from
    /// `keys`, its legacy hash 0 (see the module docs).
    pub fn from_value(value: &Value, keys: &DisclosureKeys) -> Result<GeocodedEvent, MappingError> {
        let string = |name: &'static str| match field(value, name)? {
            Value::String(s) => Ok(s.clone()),
            _ => Err(MappingError::WrongType(name)),
        };
        let opt_string = |name: &'static str| match opt(field(value, name)?) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(MappingError::WrongType(name)),
        };
        let opt_int = |name: &'static str| match opt(field(value, name)?) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i)),
            Some(_) => Err(MappingError::WrongType(name)),
        };
        let instant = |name: &'static str, v: &Value| match v {
            Value::TimestampMillis(ms) | Value::Long(ms) => Utc
                .timestamp_millis_opt(*ms)
                .single()
                .ok_or(MappingError::OutOfRange(name)),
            _ => Err(MappingError::WrongType(name)),
        };
        let symbol = |name: &'static str| match field(value, name)? {
            Value::Enum(_, s) => Ok(s.clone()),
            _ => Err(MappingError::WrongType(name)),
        };
        fn coded<T>(
            name: &'static str,
            s: &str,
            parse: impl Fn(&str) -> Option<T>,
        ) -> Result<T, MappingError> {
            parse(s).ok_or(MappingError::Unknown(name))
        }

        let site_code = string("site_code")?;
        let record_id = string("record_id")?;
        let hash_text = string("content_hash")?;
        let content_hash = (hash_text.len() == 16
            && hash_text
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| u64::from_str_radix(&hash_text, 16).ok())
        .flatten()
        .ok_or(MappingError::Unknown("content_hash"))?;
        let assault_at = instant("assault_at", field(value, "assault_at")?)?;
        let arrival_at = match opt(field(value, "arrival_at")?) {
            None => None,
            Some(v) => Some(instant("arrival_at", v)?),
        };
        let assault_date = match field(value, "assault_date")? {
            Value::Date(days) | Value::Int(days) => epoch()
                .checked_add_signed(chrono::Duration::days(i64::from(*days)))
                .ok_or(MappingError::OutOfRange("assault_date"))?,
            _ => return Err(MappingError::WrongType("assault_date")),
        };
        let assault_hour = match opt_int("assault_hour")? {
            None => None,
            Some(h @ 0..=23) => Some(h as u8),
            Some(_) => return Err(MappingError::OutOfRange("assault_hour")),
        };
        let precision_m = match opt_int("precision_m")? {
            None => None,
            Some(p) => Some(u32::try_from(p).map_err(|_| MappingError::OutOfRange("precision_m"))?),
        };
        let cell = match opt_string("cell")? {
            None => None,
            Some(hex) => Some(
                hex.parse::<CellIndex>()
                    .map_err(|_| MappingError::Unknown("cell"))?,
            ),
        };
        let area = |name| opt_string(name).map(|s| s.map(Arc::<str>::from));
        let age = symbol("age_band")?;
        let age_band = AGE_SYMBOLS
            .iter()
            .position(|s| *s == age)
            .map(|i| AgeBand::ALL[i])
            .ok_or(MappingError::Unknown("age_band"))?;
        let event = Event {
            disclosure_key: keys.key(&site_code, &record_id),
            site_code,
            record_id,
            content_hash,
            legacy_hash: 0,
            assault_date,
            assault_hour,
            method: coded(
                "assault_method",
                &symbol("assault_method")?,
                AssaultMethod::parse,
            )?,
            location_type: coded(
                "location_type",
                &symbol("location_type")?,
                LocationType::parse,
            )?,
            age_band,
            sex: coded("sex", &symbol("sex")?, Sex::parse)?,
            geocode_method: coded(
                "geocode_method",
                &symbol("geocode_method")?,
                GeocodeMethod::from_name,
            )?,
            precision_m,
            cell,
            borough: area("borough_code")?,
            ward: area("ward_code")?,
            lsoa: area("lsoa_code")?,
        };
        Ok(GeocodedEvent {
            event,
            assault_at,
            arrival_at,
        })
    }
}
