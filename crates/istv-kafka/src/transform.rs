//! What the geocode stage makes of one consumed attendance: a geocoded
//! event to send, or a dead letter. No I/O: the service loop sends the
//! result.

use istv_aggregate::DisclosureKeys;
use istv_geo::Geocoder;
use istv_pipeline::{geocode_stage, ContentKey, Keys};
use istv_wire::dead_letter::{dead_letter, route, Origin, Routed};
use istv_wire::records::attendance_from_value;
use istv_wire::{encode, topics, Decoder, GeocodedEvent, PoisonKind};

/// The geocoding stage: the geocoder and the deployment's content key
/// (content hashes are made here, where the content still is).
pub struct Stage {
    /// Places each attendance.
    pub geocoder: std::sync::Arc<Geocoder>,
    /// Keys the content hashes: the same key as `istv serve`'s, or every
    /// re-sent record would count as a correction.
    pub content_key: ContentKey,
    /// The registry id of `istv.v1.GeocodedEvent` the events are framed
    /// with.
    pub geocoded_schema_id: u32,
}

/// What to send for one consumed message.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A geocoded event for `istv.geocoded.v1`.
    Geocoded {
        /// `site_code/record_id`.
        key: Vec<u8>,
        /// The framed `istv.v1.GeocodedEvent`.
        payload: Vec<u8>,
    },
    /// The message, unchanged, for the dead-letter topic with these headers.
    Dead {
        /// Why.
        kind: PoisonKind,
        /// The reason headers (`istv_wire::dead_letter`).
        headers: Vec<(&'static str, String)>,
    },
}

impl Stage {
    /// The output of one message read from `origin` (its writer schema
    /// already given to `decoder` when the registry knows it).
    pub fn transform(
        &self,
        decoder: &Decoder,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        origin: &Origin<'_>,
    ) -> Output {
        let decoded = match route(decoder, payload, origin) {
            Routed::Record(d) => d,
            Routed::DeadLetter(d) => {
                return Output::Dead {
                    kind: d.kind,
                    headers: d.headers,
                }
            }
        };
        let attendance = match attendance_from_value(&decoded.value) {
            Ok(a) => a,
            Err(e) => {
                let d = dead_letter(&e.into_wire(decoded.schema_id), origin);
                return Output::Dead {
                    kind: d.kind,
                    headers: d.headers,
                };
            }
        };
        // Record keys of disclosure control are assigned where events are
        // counted, from the store's seed: this one does not travel.
        let unused = DisclosureKeys::new(0);
        let keys = Keys {
            disclosure: &unused,
            content: &self.content_key,
        };
        let event = geocode_stage(&self.geocoder, keys, &attendance);
        let geocoded = GeocodedEvent::new(&attendance, event);
        let payload = geocoded
            .to_value()
            .map_err(|e| e.to_string())
            .and_then(|v| {
                encode(
                    self.geocoded_schema_id,
                    istv_core::schema::geocoded_event_v1(),
                    v,
                )
                .map_err(|e| e.to_string())
            })
            .expect("every event of an accepted attendance is a value of its schema");
        let key = key.map(<[u8]>::to_vec).unwrap_or_else(|| {
            topics::record_key(&attendance.site_code, &attendance.record_id).into_bytes()
        });
        Output::Geocoded { key, payload }
    }
}
