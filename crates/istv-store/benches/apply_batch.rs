//! Store write throughput: records per second through [`Store::apply_batch`]
//! for a year of synthetic events spread over London, in batches, into a
//! fresh SQLite file (and PostgreSQL when `ISTV_TEST_PG_URL` names a server
//! database to create a scratch database in).
//!
//! `cargo bench -p istv-store --bench apply_batch`
//! (`ROWS`, default 1,000,000; `BATCH`, default 10,000)

use chrono::{Duration, NaiveDate};
use istv_aggregate::{Event, GeocodeMethod};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use istv_store::Store;
use std::time::Instant;

/// xorshift64: deterministic events without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn events(rows: u64) -> Vec<Event> {
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    (0..rows)
        .map(|i| {
            // About the extent of Greater London.
            let lat = 51.30 + r.below(38_000) as f64 / 100_000.0;
            let lon = -0.50 + r.below(80_000) as f64 / 100_000.0;
            let cell = h3o::LatLng::new(lat, lon)
                .unwrap()
                .to_cell(h3o::Resolution::Ten);
            let lsoa = r.below(4_835);
            Event {
                site_code: "RJ122".into(),
                record_id: format!("RJ122-{i:08}"),
                content_hash: r.below(u64::MAX),
                legacy_hash: 0,
                assault_date: start + Duration::days(r.below(366) as i64),
                assault_hour: Some(r.below(24) as u8),
                method: AssaultMethod::ALL[r.below(6) as usize],
                location_type: LocationType::ALL[r.below(8) as usize],
                age_band: AgeBand::ALL[r.below(9) as usize],
                sex: Sex::ALL[r.below(4) as usize],
                geocode_method: GeocodeMethod::LatLon,
                precision_m: Some(10),
                cell: Some(cell),
                borough: Some(format!("E090000{:02}", 1 + lsoa % 33).into()),
                ward: Some(format!("E0500{:04}", lsoa % 625).into()),
                lsoa: Some(format!("E0100{lsoa:04}").into()),
                disclosure_key: r.below(4096) as u16,
            }
        })
        .collect()
}

async fn run(name: &str, store: &Store, events: &[Event], batch: usize) {
    let upload = store.begin_upload("RJ122", "csv").await.unwrap();
    // New records first, then the same again (all duplicates).
    for (pass, field) in [("new", 0), ("re-sent", 1)] {
        let t0 = Instant::now();
        let mut counted = 0;
        for chunk in events.chunks(batch) {
            let out = store.apply_batch(&upload, chunk).await.unwrap();
            counted += [out.accepted, out.duplicates][field];
        }
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(counted, events.len() as u64);
        println!(
            "{name}: {} {pass} events in batches of {batch}: {secs:.1} s, {:.0} events/s",
            events.len(),
            events.len() as f64 / secs
        );
    }
    let t0 = Instant::now();
    assert!(store.recount_check().await.unwrap().is_ok());
    println!("{name}: recount check {:.1} s", t0.elapsed().as_secs_f64());
}

fn psql(server: &str, sql: &str) {
    let ok = std::process::Command::new("psql")
        .args([server, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .status()
        .expect("psql runs")
        .success();
    assert!(ok, "psql failed: {sql}");
}

#[tokio::main]
async fn main() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rows = env("ROWS", 1_000_000);
    let batch = env("BATCH", 10_000) as usize;
    let events = events(rows);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("istv.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.add_site("RJ122", "bench").await.unwrap();
    run("sqlite", &store, &events, batch).await;
    store.close().await;
    if let Ok(server) = std::env::var("ISTV_TEST_PG_URL") {
        let name = format!("istv_bench_{}", std::process::id());
        psql(&server, &format!("CREATE DATABASE {name}"));
        let (base, _) = server.rsplit_once('/').unwrap();
        let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
        store.add_site("RJ122", "bench").await.unwrap();
        run("postgres", &store, &events, batch).await;
        store.close().await;
        psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
    }
}
