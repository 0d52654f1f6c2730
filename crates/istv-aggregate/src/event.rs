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
    /// Hash of the validated content (see [`content_hash`]): a re-sent row
    /// with the same hash is a duplicate, with another hash a correction.
    pub content_hash: u64,
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

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A stable 64-bit hash of a record's content, given as its fields in a fixed
/// order.
///
/// The algorithm is FNV-1a 64 over each part's UTF-8 bytes, each part followed
/// by a 0xFF byte (which never occurs in UTF-8, so `["ab", "c"]` and
/// `["a", "bc"]` differ). It is fixed forever: hashes are stored, and a
/// change would turn every re-sent row into a correction. It is not
/// cryptographic; it only has to tell a re-sent row from a changed one.
pub fn content_hash(parts: &[&str]) -> u64 {
    let mut h = ContentHasher::new();
    for part in parts {
        h.part(part);
    }
    h.finish()
}

/// [`content_hash`] a part at a time: a part may be written in pieces with
/// `write!`, so nothing needs to be formatted into a string first.
#[derive(Debug, Clone)]
pub struct ContentHasher(u64);

impl ContentHasher {
    /// A hash of no parts yet.
    pub fn new() -> Self {
        ContentHasher(FNV_OFFSET)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// Ends the part written so far (with `write!`, or nothing: an empty
    /// part).
    pub fn end_part(&mut self) {
        self.bytes(&[0xFF]);
    }

    /// Adds a whole part.
    pub fn part(&mut self, part: &str) {
        self.bytes(part.as_bytes());
        self.end_part();
    }

    /// The hash of the parts added.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for ContentHasher {
    fn default() -> Self {
        ContentHasher::new()
    }
}

impl std::fmt::Write for ContentHasher {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_is_stable_and_separates_parts() {
        // Fixed values: a change here breaks every stored hash.
        assert_eq!(content_hash(&[]), FNV_OFFSET);
        assert_eq!(content_hash(&["a"]), 0x089b_c907_b544_c769);
        assert_eq!(content_hash(&["RJ1", "A-1"]), 0x80a2_385f_e226_8f47);
        let ab_c = content_hash(&["ab", "c"]);
        let a_bc = content_hash(&["a", "bc"]);
        assert_ne!(ab_c, a_bc);
        assert_ne!(content_hash(&["", "x"]), content_hash(&["x", ""]));
        // Written in pieces, the same hash.
        let mut h = ContentHasher::new();
        std::fmt::Write::write_fmt(&mut h, format_args!("R{}1", 'J')).unwrap();
        h.end_part();
        h.part("A-1");
        assert_eq!(h.finish(), 0x80a2_385f_e226_8f47);
    }

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
