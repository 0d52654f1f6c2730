//! A feed of geocoded events for the tests of the Kafka aggregate consumer
//! (on tansu and on librdkafka's mock cluster).

use chrono::NaiveDate;
use h3o::{LatLng, Resolution};
use istv_aggregate::{Event, GeocodeMethod};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};

/// The ED sites of [`stream_feed`].
pub const STREAM_SITES: [&str; 4] = ["RJ122", "RJ224", "RYJ01", "R1H12"];

/// `n` new records over four sites in seven boroughs, then a correction of
/// every fifth (another method and borough), then a re-send of every third
/// as it stands (the correction for every fifth), in that order: a
/// correction replayed before its original, or an original committed after
/// its correction by an instance that lost its partition, would leave other
/// counts.
pub fn stream_feed(n: usize) -> Vec<Event> {
    let base = |i: usize| {
        let site = STREAM_SITES[i % STREAM_SITES.len()];
        Event {
            site_code: site.into(),
            record_id: format!("{site}-{i}"),
            content_hash: 0x5000 + i as u64,
            legacy_hash: 0,
            assault_date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()
                + chrono::Duration::days((i * 7 % 150) as i64),
            assault_hour: Some((i % 24) as u8),
            method: AssaultMethod::ALL[i % 6],
            location_type: LocationType::ALL[i % 8],
            age_band: AgeBand::ALL[i % 9],
            sex: Sex::ALL[i % 4],
            geocode_method: GeocodeMethod::LatLon,
            precision_m: Some(10),
            cell: Some(
                LatLng::new(51.45 + (i % 40) as f64 / 1000.0, -0.12)
                    .unwrap()
                    .to_cell(Resolution::Nine),
            ),
            borough: Some(format!("E090000{:02}", i % 7 + 1).into()),
            ward: None,
            lsoa: None,
            disclosure_key: 0,
        }
    };
    let mut out: Vec<Event> = (0..n).map(base).collect();
    for i in (0..n).step_by(5) {
        let mut e = base(i);
        e.content_hash ^= 0xFF00_0000;
        e.method = AssaultMethod::ALL[(i + 1) % 6];
        e.borough = Some(format!("E090000{:02}", (i + 3) % 7 + 1).into());
        out.push(e);
    }
    for i in (0..n).step_by(3) {
        let e = out[if i % 5 == 0 { n + i / 5 } else { i }].clone();
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::stream_feed;

    /// 10 new, 2 corrections (0 and 5), 4 re-sends (0, 3, 6, 9; the one of
    /// 0 is its correction).
    #[test]
    fn the_feed_is_new_then_corrections_then_resends() {
        let f = stream_feed(10);
        assert_eq!(f.len(), 10 + 2 + 4);
        assert_eq!(f[10].record_id, "RJ122-0");
        assert_ne!(f[10].content_hash, f[0].content_hash);
        assert_eq!(f[11].record_id, "RJ224-5");
        assert_eq!(f[12], f[10]);
        assert_eq!(f[13], f[3]);
        assert_eq!(f[15].record_id, "RJ224-9");
    }
}
