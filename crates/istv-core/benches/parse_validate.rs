//! Parse + validate throughput, rows per second on one core, for each feed
//! format on 1M generated rows (set ISTV_BENCH_ROWS to change the count).
//!
//! `cargo bench -p istv-core --bench parse_validate`

use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use istv_core::generate::{Generator, Options};
use istv_core::{Feed, FeedWriter, Format, Validator};
use std::hint::black_box;
use std::time::Duration;

fn feed(format: Format, rows: u64) -> Vec<u8> {
    let mut g = Generator::new(Options {
        seed: 42,
        from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        invalid_rate: 0.01,
        site: None,
    });
    let mut w = FeedWriter::new(format, Vec::new()).unwrap();
    for _ in 0..rows {
        w.write(&g.row()).unwrap();
    }
    w.finish().unwrap()
}

fn parse_validate(c: &mut Criterion) {
    let rows: u64 = std::env::var("ISTV_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let mut group = c.benchmark_group("parse_validate");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for format in Format::ALL {
        // Shared, so each iteration reads the same bytes without copying them.
        let bytes: std::sync::Arc<[u8]> = feed(format, rows).into();
        group.bench_function(format.as_str(), |b| {
            b.iter(|| {
                let mut feed =
                    Feed::from_reader(std::io::Cursor::new(bytes.clone()), Some(format)).unwrap();
                let mut v = Validator::new(now);
                let mut valid = 0u64;
                while let Some(r) = feed.next() {
                    valid += u64::from(v.validate(&r.unwrap()).is_valid());
                }
                assert!(valid > rows * 9 / 10);
                black_box(valid)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_validate);
criterion_main!(benches);
