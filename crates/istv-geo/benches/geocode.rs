//! Geocoding throughput on one million points spread over London (the
//! reference postcodes, cycled with small offsets).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use istv_geo::{
    import_areas, import_postcodes, AreaKind, AreaProperties, Geocoder, GeocoderConfig,
    LocationInput,
};

const N: usize = 1_000_000;

fn reference() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference"
    ));
    assert!(
        dir.is_dir(),
        "reference data not found at {}",
        dir.display()
    );
    dir
}

struct Input {
    lat: f64,
    lon: f64,
    e: f64,
    n: f64,
    postcode: String,
}

fn setup() -> (tempfile::TempDir, Geocoder, Vec<Input>) {
    let r = reference();
    let dir = tempfile::tempdir().unwrap();
    let geo = r.join("geo");
    for (kind, file, code, name) in [
        (
            AreaKind::Borough,
            "london_boroughs_2013.geojson",
            "code",
            "name",
        ),
        (
            AreaKind::Ward,
            "london_wards_2013.geojson",
            "WD13CD",
            "WD13NM",
        ),
    ] {
        let f = std::fs::File::open(geo.join(file)).unwrap();
        import_areas(
            kind,
            f,
            &AreaProperties { code, name },
            dir.path(),
            &mut |_| {},
        )
        .unwrap();
    }
    let pc_path = r.join("postcodes/london_postcodes_2014.csv");
    import_postcodes(
        std::fs::File::open(&pc_path).unwrap(),
        dir.path(),
        &mut |_| {},
    )
    .unwrap();
    let g = Geocoder::load(dir.path(), GeocoderConfig::default()).unwrap();

    let mut rdr = csv::Reader::from_path(&pc_path).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    // Deterministic offsets of up to ~50 m so the million points are distinct.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let inputs = (0..N)
        .map(|i| {
            let r = &rows[(i * 7919) % rows.len()];
            let (dx, dy) = (next() * 100.0, next() * 100.0);
            Input {
                lat: r[5].parse::<f64>().unwrap() + dy / 111_000.0,
                lon: r[6].parse::<f64>().unwrap() + dx / 69_000.0,
                e: r[3].parse::<f64>().unwrap() + dx.round(),
                n: r[4].parse::<f64>().unwrap() + dy.round(),
                postcode: r[0].to_string(),
            }
        })
        .collect();
    (dir, g, inputs)
}

fn bench(c: &mut Criterion) {
    let (_dir, g, inputs) = setup();
    let mut group = c.benchmark_group("geocode_1m");
    group.throughput(Throughput::Elements(N as u64));
    // Each iteration is a million geocodes, so a few flat samples suffice.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("latlon_cell_borough_ward", |b| {
        b.iter(|| {
            for i in &inputs {
                black_box(g.geocode(&LocationInput {
                    latitude: Some(i.lat),
                    longitude: Some(i.lon),
                    ..Default::default()
                }));
            }
        })
    });
    // The same through the batch call the ingest pipeline uses.
    let latlon: Vec<LocationInput> = inputs
        .iter()
        .map(|i| LocationInput {
            latitude: Some(i.lat),
            longitude: Some(i.lon),
            ..Default::default()
        })
        .collect();
    let mut out = Vec::with_capacity(N);
    group.bench_function("latlon_cell_borough_ward_many", |b| {
        b.iter(|| {
            out.clear();
            g.geocode_many(&latlon, &mut out);
            black_box(&out);
        })
    });
    // Breakdown: the H3 cell alone, and the cell plus the borough alone.
    group.bench_function("h3_cell_only", |b| {
        b.iter(|| {
            for i in &inputs {
                black_box(istv_geo::cells::cell_at(
                    i.lat,
                    i.lon,
                    istv_geo::Resolution::Eleven,
                ));
            }
        })
    });
    let boroughs = g.areas(AreaKind::Borough).unwrap();
    group.bench_function("borough_only", |b| {
        b.iter(|| {
            for i in &inputs {
                black_box(boroughs.locate(i.lat, i.lon));
            }
        })
    });
    group.bench_function("easting_northing", |b| {
        b.iter(|| {
            for i in &inputs {
                black_box(g.geocode(&LocationInput {
                    easting: Some(i.e),
                    northing: Some(i.n),
                    ..Default::default()
                }));
            }
        })
    });
    group.bench_function("postcode", |b| {
        b.iter(|| {
            for i in &inputs {
                black_box(g.geocode(&LocationInput {
                    postcode: Some(&i.postcode),
                    ..Default::default()
                }));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
