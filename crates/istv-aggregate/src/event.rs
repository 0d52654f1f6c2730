//! The event: the derived, storable form of one accepted record.

use chrono::NaiveDate;
use h3o::CellIndex;
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use std::sync::Arc;

/// How the geocoder placed the incident: the geocoding stage's own type, so
/// an event carries it unconverted. Its names are stored and published.
pub use istv_geo::GeocodeMethod;

/// Whether the incident was placed in the area served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LocationStatus {
    /// Placed in the area: it has a cell or an area code.
    Resolved,
    /// Placed outside the area.
    OutOfArea,
    /// Not placed.
    Unresolved,
}

impl LocationStatus {
    /// Every status.
    pub const ALL: [LocationStatus; 3] = [
        LocationStatus::Resolved,
        LocationStatus::OutOfArea,
        LocationStatus::Unresolved,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LocationStatus::Resolved => "resolved",
            LocationStatus::OutOfArea => "out_of_area",
            LocationStatus::Unresolved => "unresolved",
        }
    }

    /// The status with this exact name.
    pub fn parse(name: &str) -> Option<LocationStatus> {
        LocationStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for LocationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The derived, storable form of one accepted record. It holds no patient
/// identifier and no free text: only coded values, the London date and hour,
/// and the geocoder's output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// ODS code of the site of treatment.
    pub site_code: String,
    /// The ED's reference for the attendance; with `site_code`, the identity
    /// of the record.
    pub record_id: String,
    /// Keyed hash of the validated content (see [`crate::content`]): a
    /// re-sent row with the same hash is a duplicate, with another hash a
    /// correction.
    pub content_hash: u64,
    /// The content's hash under the scheme before keyed hashes (see
    /// [`crate::content::legacy_content_hash`]): compared only with a
    /// record stored under that scheme, so that its re-send is still
    /// recognised. Never stored.
    pub legacy_hash: u64,
    /// London calendar date of the assault.
    pub assault_date: NaiveDate,
    /// London clock hour of the assault (0-23); `None` when only a date was
    /// given.
    pub assault_hour: Option<u8>,
    /// Primary means of assault.
    pub method: AssaultMethod,
    /// Kind of place.
    pub location_type: LocationType,
    /// Age band of the patient.
    pub age_band: AgeBand,
    /// Sex of the patient.
    pub sex: Sex,
    /// How the geocoder placed the incident.
    pub geocode_method: GeocodeMethod,
    /// Precision of the placement in metres, when placed.
    pub precision_m: Option<u32>,
    /// H3 cell at the finest resolution the precision allows (at most 10).
    pub cell: Option<CellIndex>,
    /// ONS code of the borough (local authority district).
    pub borough: Option<Arc<str>>,
    /// ONS code of the electoral ward.
    pub ward: Option<Arc<str>>,
    /// ONS code of the lower-layer super output area.
    pub lsoa: Option<Arc<str>>,
    /// The record key of the cell key method (0 to [`RECORD_KEYS`] - 1),
    /// assigned at ingest by [`DisclosureKeys`]: every aggregate carries the
    /// sum of its records' keys. Not part of the content hash.
    pub disclosure_key: u16,
}

/// Record keys range over `0..RECORD_KEYS`; a cell's key is the sum of its
/// records' keys modulo this.
pub const RECORD_KEYS: u16 = 4096;

/// Assigns record keys: a keyed hash of the record's identity, so that every
/// version of a record gets the same key and nobody without the seed can
/// tell a record's key. The seed is the deployment's secret.
#[derive(Clone)]
pub struct DisclosureKeys {
    state: foldhash::quality::FixedState,
}

impl DisclosureKeys {
    /// Keys under a secret seed.
    pub fn new(seed: u64) -> DisclosureKeys {
        DisclosureKeys {
            state: foldhash::quality::FixedState::with_seed(seed),
        }
    }

    /// The record key of (site, record id), in `0..RECORD_KEYS`.
    pub fn key(&self, site_code: &str, record_id: &str) -> u16 {
        use std::hash::BuildHasher;
        // The top 12 bits: the best mixed of a multiplicative hash.
        (self.state.hash_one((site_code, record_id)) >> 52) as u16
    }
}

impl std::fmt::Debug for DisclosureKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed is a secret.
        f.write_str("DisclosureKeys(..)")
    }
}

impl Event {
    /// `out_of_area` when the geocoder said so, `resolved` when there is a
    /// cell or an area code, `unresolved` otherwise.
    pub fn location_status(&self) -> LocationStatus {
        if self.geocode_method == GeocodeMethod::OutOfArea {
            LocationStatus::OutOfArea
        } else if self.cell.is_some()
            || self.borough.is_some()
            || self.ward.is_some()
            || self.lsoa.is_some()
        {
            LocationStatus::Resolved
        } else {
            LocationStatus::Unresolved
        }
    }

    /// The identity of the record.
    pub fn record_key(&self) -> RecordKey {
        RecordKey {
            site_code: self.site_code.clone(),
            record_id: self.record_id.clone(),
        }
    }
}

/// The identity of a record: the site and the ED's reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    /// ODS code of the site.
    pub site_code: String,
    /// The ED's reference.
    pub record_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_are_in_range_stable_and_depend_on_the_seed() {
        let a = DisclosureKeys::new(1);
        let b = DisclosureKeys::new(2);
        let mut differ = 0;
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            let id = format!("r{i}");
            let k = a.key("RJ1", &id);
            assert!(k < RECORD_KEYS);
            assert_eq!(k, a.key("RJ1", &id));
            differ += usize::from(k != b.key("RJ1", &id));
            seen.insert(k);
        }
        // 10,000 draws from 4,096 values: about 3,725 distinct expected.
        assert!(seen.len() > 3_500, "{} distinct keys", seen.len());
        assert!(
            differ > 9_900,
            "{differ} of 10,000 keys differ between seeds"
        );
    }

    #[test]
    fn names_round_trip() {
        for m in GeocodeMethod::ALL {
            assert_eq!(GeocodeMethod::from_name(m.as_str()), Some(m));
        }
        for s in LocationStatus::ALL {
            assert_eq!(LocationStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(GeocodeMethod::from_name("LATLON"), None);
    }
}
