//! The stages between a validated attendance and the store, as pure
//! functions, so every transport (the single-process server, a Kafka
//! consumer) runs the same code:
//!
//! 1. validate: [`istv_core::Validator`] turns a raw row into an
//!    [`Attendance`];
//! 2. geocode: [`geocode_stage`] (or [`geocode_stage_many`] for a batch)
//!    places it and drops what identifies a place exactly (the free text
//!    and the point);
//! 3. aggregate: the resulting [`Event`] is what the store counts.
//!
//! [`driver`] runs the stages over a whole upload and writes its batches to
//! a [`Sink`], which a store implements, or forwards its validated rows to
//! a [`ForwardSink`] (a broker) for later stages to place.
#![warn(missing_docs)]

pub mod driver;

pub use driver::{
    forward, DriverError, ForwardSink, Ingest, Receipt, RowCounts, Sink, Writer, RECEIPT_ERROR_CAP,
};
pub use istv_aggregate::ContentKey;

use istv_aggregate::{ContentHasher, ContentHashes, DisclosureKeys, Event};
use istv_core::Attendance;
use istv_geo::{Geocode, Geocoder, LocationInput};

/// The location fields of an attendance, as the geocoder takes them.
pub fn location_input(a: &Attendance) -> LocationInput<'_> {
    LocationInput {
        latitude: a.assault_latlon.map(|p| p.0),
        longitude: a.assault_latlon.map(|p| p.1),
        easting: a.assault_grid.map(|p| p.0),
        northing: a.assault_grid.map(|p| p.1),
        postcode: a.assault_postcode.as_ref().map(|p| p.as_str()),
        description: a.assault_location_description.as_deref(),
    }
}

/// The hashes, keyed under `key` and legacy, of everything the ED sent for
/// this attendance, after normalisation: re-sending the same row gives the
/// same hashes (a duplicate); any change, even to a field that is not
/// published, gives others (a correction).
pub fn content_hash(a: &Attendance, key: &ContentKey) -> ContentHashes {
    use std::fmt::Write;
    // Each part written straight into the hasher, in the same bytes as the
    // text the legacy hashes were made from (writing to it cannot fail).
    let mut h = ContentHasher::new(key);
    h.part(&a.site_code);
    h.part(&a.record_id);
    if let Some(t) = a.arrival {
        let _ = write!(h, "{}", t.timestamp_millis());
    }
    h.end_part();
    let _ = write!(h, "{}", a.assault.instant.timestamp_millis());
    h.end_part();
    h.part(if a.assault.local_time.is_some() {
        "t"
    } else {
        "d"
    });
    h.part(a.assault_method.as_str());
    h.part(a.assault_method_other.as_deref().unwrap_or_default());
    h.part(a.assault_location_type.as_str());
    h.part(
        a.assault_location_description
            .as_deref()
            .unwrap_or_default(),
    );
    if let Some(p) = &a.assault_postcode {
        let _ = write!(h, "{p}");
    }
    h.end_part();
    for pair in [a.assault_latlon, a.assault_grid] {
        if let Some((x, y)) = pair {
            let _ = write!(h, "{x:?},{y:?}");
        }
        h.end_part();
    }
    if let Some(age) = a.patient_age {
        let _ = write!(h, "{age}");
    }
    h.end_part();
    h.part(a.patient_sex.map_or("", |s| s.as_str()));
    h.finish()
}

/// The keys an event is made with: the record keys of disclosure control
/// and the deployment's content key.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    /// Gives each event its record key.
    pub disclosure: &'a DisclosureKeys,
    /// Keys each event's content hash.
    pub content: &'a ContentKey,
}

/// The storable event of a geocoded attendance: coded values, the London
/// date and hour, the geocoder's cell and areas, its content hashes and its
/// record key from `keys`; nothing else.
pub fn to_event(a: &Attendance, g: &Geocode, keys: Keys<'_>) -> Event {
    event(
        a,
        content_hash(a, keys.content),
        a.site_code.clone(),
        a.record_id.clone(),
        g,
        keys,
    )
}

/// [`to_event`] for an attendance no longer needed, whose identity strings
/// move into the event instead of being copied.
pub fn into_event(mut a: Attendance, g: &Geocode, keys: Keys<'_>) -> Event {
    let hash = content_hash(&a, keys.content);
    let site_code = std::mem::take(&mut a.site_code);
    let record_id = std::mem::take(&mut a.record_id);
    event(&a, hash, site_code, record_id, g, keys)
}

/// The event of `a` with its identity given apart, so it can be moved.
fn event(
    a: &Attendance,
    hashes: ContentHashes,
    site_code: String,
    record_id: String,
    g: &Geocode,
    keys: Keys<'_>,
) -> Event {
    Event {
        disclosure_key: keys.disclosure.key(&site_code, &record_id),
        site_code,
        record_id,
        content_hash: hashes.keyed,
        legacy_hash: hashes.legacy,
        assault_date: a.assault.local_date,
        assault_hour: a.assault.hour().map(|h| h as u8),
        method: a.assault_method,
        location_type: a.assault_location_type,
        age_band: a.age_band(),
        sex: a.sex(),
        geocode_method: g.method,
        precision_m: g.precision_m,
        cell: g.cell,
        borough: g.borough.clone(),
        ward: g.ward.clone(),
        lsoa: g.lsoa.clone(),
    }
}

/// Geocodes an attendance into its event.
pub fn geocode_stage(geocoder: &Geocoder, keys: Keys<'_>, a: &Attendance) -> Event {
    to_event(a, &geocoder.geocode(&location_input(a)), keys)
}

/// Geocodes many attendances into their events, appended to `out` in order,
/// leaving `records` empty: the same events as [`geocode_stage`] one by one,
/// in less time (see [`Geocoder::geocode_many`]).
pub fn geocode_stage_many(
    geocoder: &Geocoder,
    keys: Keys<'_>,
    records: &mut Vec<Attendance>,
    out: &mut Vec<Event>,
) {
    let mut geocodes = Vec::with_capacity(records.len());
    {
        let inputs: Vec<LocationInput<'_>> = records.iter().map(location_input).collect();
        geocoder.geocode_many(&inputs, &mut geocodes);
    }
    out.extend(
        records
            .drain(..)
            .zip(&geocodes)
            .map(|(a, g)| into_event(a, g, keys)),
    );
}

#[cfg(test)]
mod tests;
