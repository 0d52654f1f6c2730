//! Checks against the shared reference data (H3 test vectors, Code-Point
//! postcodes, ONS boundaries). The reference directory must exist: these
//! tests fail rather than skip without it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use istv_geo::cells::{cell_at, normalise_longitude};
use istv_geo::grid::{distance_m, osgb36_to_wgs84};
use istv_geo::{
    import_areas, import_postcodes, AreaKind, AreaProperties, CellIndex, GeocodeMethod, Geocoder,
    GeocoderConfig, LocationInput,
};

fn reference() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference"
    ));
    assert!(
        dir.is_dir(),
        "reference data not found at {}: check out the shared reference directory beside the repository",
        dir.display()
    );
    dir
}

struct PostcodeRow {
    postcode: String,
    easting: f64,
    northing: f64,
    lat: f64,
    lon: f64,
    district: String,
    ward: String,
}

fn postcodes() -> Vec<PostcodeRow> {
    let path = reference().join("postcodes/london_postcodes_2014.csv");
    let mut rdr =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let h = rdr.headers().unwrap().clone();
    let col = |n: &str| {
        h.iter()
            .position(|c| c == n)
            .unwrap_or_else(|| panic!("no column {n}"))
    };
    let (pc, e, n, la, lo, d, w) = (
        col("postcode"),
        col("easting"),
        col("northing"),
        col("latitude"),
        col("longitude"),
        col("admin_district_code"),
        col("admin_ward_code"),
    );
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            PostcodeRow {
                postcode: r[pc].to_string(),
                easting: r[e].parse().unwrap(),
                northing: r[n].parse().unwrap(),
                lat: r[la].parse().unwrap(),
                lon: r[lo].parse().unwrap(),
                district: r[d].to_string(),
                ward: r[w].to_string(),
            }
        })
        .collect()
}

#[test]
fn h3_reference_vectors_all_match() {
    let dir = reference().join("h3");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with("centers.txt") || (n.starts_with("res0") && n.ends_with("ic.txt"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() == 38,
        "expected 38 vector files (35 centers, 3 res0*ic), found {}",
        files.len()
    );
    let (mut checked, mut mismatched) = (0u64, Vec::new());
    for f in &files {
        for (i, line) in std::fs::read_to_string(f).unwrap().lines().enumerate() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.is_empty() {
                continue;
            }
            assert_eq!(parts.len(), 3, "{}:{}: {line:?}", f.display(), i + 1);
            let expected = CellIndex::try_from(u64::from_str_radix(parts[0], 16).unwrap()).unwrap();
            let lat: f64 = parts[1].parse().unwrap();
            let lng = normalise_longitude(parts[2].parse().unwrap());
            let got = cell_at(lat, lng, expected.resolution());
            checked += 1;
            if got != Some(expected) {
                mismatched.push(format!("{}:{}: {line} -> {got:?}", f.display(), i + 1));
            }
        }
    }
    eprintln!(
        "h3 reference vectors: {checked} checked in {} files, {} mismatched",
        files.len(),
        mismatched.len()
    );
    assert!(
        mismatched.is_empty(),
        "{:#?}",
        &mismatched[..mismatched.len().min(20)]
    );
    assert_eq!(checked, 70_868 + 6_846);
}

#[test]
fn grid_conversion_error_against_reference_postcodes() {
    let rows = postcodes();
    assert_eq!(rows.len(), 181_565);
    let mut errs: Vec<f64> = rows
        .iter()
        .map(|r| {
            let (lat, lon) = osgb36_to_wgs84(r.easting, r.northing).unwrap_or_else(|| {
                panic!("{}: {} {} not converted", r.postcode, r.easting, r.northing)
            });
            distance_m(lat, lon, r.lat, r.lon)
        })
        .collect();
    errs.sort_by(f64::total_cmp);
    let median = errs[errs.len() / 2];
    let p99 = errs[errs.len() * 99 / 100];
    let max = *errs.last().unwrap();
    eprintln!(
        "grid -> wgs84 error vs reference ({} postcodes): median {median:.3} m, p99 {p99:.3} m, max {max:.3} m",
        errs.len()
    );
    assert!(median < 2.0, "median {median}");
    assert!(max < 5.0, "max {max}");
}

fn import_layer(
    kind: AreaKind,
    file: &str,
    code: &str,
    name: &str,
    dir: &Path,
) -> istv_geo::AreaImportSummary {
    let path = reference().join("geo").join(file);
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = Instant::now();
    let s = import_areas(kind, f, &AreaProperties { code, name }, dir, &mut |_| {}).unwrap();
    eprintln!("imported {file}: {s:?} in {:.2?}", t.elapsed());
    s
}

#[test]
fn borough_and_ward_agreement_on_reference_postcodes() {
    let dir = tempfile::tempdir().unwrap();
    let b = import_layer(
        AreaKind::Borough,
        "london_boroughs_2013.geojson",
        "code",
        "name",
        dir.path(),
    );
    assert_eq!((b.features, b.areas), (33, 33));
    let w = import_layer(
        AreaKind::Ward,
        "london_wards_2013.geojson",
        "WD13CD",
        "WD13NM",
        dir.path(),
    );
    assert_eq!((w.features, w.areas), (649, 649));
    let t = Instant::now();
    let g = Geocoder::load(dir.path(), GeocoderConfig::default()).unwrap();
    eprintln!("loaded boroughs and wards in {:.2?}", t.elapsed());

    let rows = postcodes();
    let boroughs = g.areas(AreaKind::Borough).unwrap();
    let wards = g.areas(AreaKind::Ward).unwrap();
    let (mut same, mut none, mut wrong, mut ward_same, mut ward_none) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut examples = Vec::new();
    let t = Instant::now();
    for r in &rows {
        let out = g.geocode(&LocationInput {
            latitude: Some(r.lat),
            longitude: Some(r.lon),
            ..Default::default()
        });
        assert_eq!(out.method, GeocodeMethod::LatLon, "{}", r.postcode);
        // The cell cache must never change an answer.
        let exact = boroughs
            .locate_exact(r.lat, r.lon)
            .map(|i| boroughs.area(i).code.clone());
        assert_eq!(
            out.borough, exact,
            "{} cache disagrees with polygons",
            r.postcode
        );
        let exact_w = wards
            .locate_exact(r.lat, r.lon)
            .map(|i| wards.area(i).code.clone());
        assert_eq!(
            out.ward, exact_w,
            "{} ward cache disagrees with polygons",
            r.postcode
        );
        match out.borough.as_deref() {
            Some(c) if c == r.district => same += 1,
            None => none += 1,
            Some(c) => {
                wrong += 1;
                if examples.len() < 10 {
                    examples.push(format!("{} -> {c}, expected {}", r.postcode, r.district));
                }
            }
        }
        match out.ward.as_deref() {
            Some(c) if c == r.ward => ward_same += 1,
            None => ward_none += 1,
            Some(_) => {}
        }
    }
    // The batch call gives exactly the one-by-one answers.
    let inputs: Vec<LocationInput> = rows
        .iter()
        .map(|r| LocationInput {
            latitude: Some(r.lat),
            longitude: Some(r.lon),
            ..Default::default()
        })
        .collect();
    let mut many = Vec::new();
    g.geocode_many(&inputs, &mut many);
    assert_eq!(many.len(), inputs.len());
    for (i, got) in inputs.iter().zip(&many) {
        assert_eq!(got, &g.geocode(i), "{i:?}");
    }
    let n = rows.len() as f64;
    let pct = |x: u64| 100.0 * x as f64 / n;
    eprintln!(
        "borough agreement: {same}/{} = {:.3}% (no borough: {none}, wrong borough: {wrong}) in {:.2?}",
        rows.len(),
        pct(same),
        t.elapsed()
    );
    eprintln!("wrong-borough examples: {examples:?}");
    eprintln!(
        "ward agreement (information only, 2013 wards vs 2014 postcode wards): {ward_same}/{} = {:.2}% (no ward: {ward_none})",
        rows.len(),
        pct(ward_same)
    );
    assert!(pct(same) >= 99.9, "borough agreement {:.3}%", pct(same));
}

/// Geocodes points where a fast path could go wrong: every vertex of every
/// boundary (where areas meet and the lowest code must win), points a hair
/// either side of each vertex, and edge midpoints. The cell must be h3o's and
/// every area the one the full polygon test gives. Returns the number of
/// points checked.
fn check_boundary_points(g: &Geocoder, kinds: &[AreaKind]) -> usize {
    let mut n = 0;
    for &kind in kinds {
        let layer = g.areas(kind).unwrap();
        for area in layer.areas() {
            for poly in &area.geometry.0 {
                for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                    for line in ring.lines() {
                        let (a, b) = (line.start, line.end);
                        let mid = (a.x + 0.5 * (b.x - a.x), a.y + 0.5 * (b.y - a.y));
                        for (lon, lat) in [
                            (a.x, a.y),
                            (a.x + 1e-9, a.y + 1e-9),
                            (a.x - 1e-9, a.y - 1e-9),
                            mid,
                        ] {
                            let out = g.geocode(&LocationInput {
                                latitude: Some(lat),
                                longitude: Some(lon),
                                ..Default::default()
                            });
                            assert_eq!(
                                out.cell,
                                cell_at(lat, lon, istv_geo::Resolution::Ten),
                                "cell at {lat}, {lon}"
                            );
                            for k in kinds {
                                let l = g.areas(*k).unwrap();
                                let exact =
                                    l.locate_exact(lat, lon).map(|i| l.area(i).code.clone());
                                let got = match k {
                                    AreaKind::Borough => &out.borough,
                                    AreaKind::Ward => &out.ward,
                                    AreaKind::Lsoa => &out.lsoa,
                                };
                                assert_eq!(got, &exact, "{} at {lat}, {lon}", k.as_str());
                            }
                            n += 1;
                        }
                    }
                }
            }
        }
    }
    n
}

#[test]
fn boundary_vertices_and_edges_match_the_polygons() {
    let dir = tempfile::tempdir().unwrap();
    import_layer(
        AreaKind::Borough,
        "london_boroughs_2013.geojson",
        "code",
        "name",
        dir.path(),
    );
    import_layer(
        AreaKind::Ward,
        "london_wards_2013.geojson",
        "WD13CD",
        "WD13NM",
        dir.path(),
    );
    let g = Geocoder::load(dir.path(), GeocoderConfig::default()).unwrap();
    let t = Instant::now();
    let n = check_boundary_points(&g, &[AreaKind::Borough, AreaKind::Ward]);
    eprintln!(
        "{n} boundary points agree with the polygons in {:.2?}",
        t.elapsed()
    );
    // Four points per edge: 6,195 borough and 24,186 ward positions, less
    // one closing position per ring.
    assert!(n > 110_000, "{n}");
}

#[test]
fn lsoa_import_and_postcode_directory_load() {
    let dir = tempfile::tempdir().unwrap();
    let s = import_layer(
        AreaKind::Lsoa,
        "london_lsoa_2011.geojson",
        "LSOA11CD",
        "LSOA11NM",
        dir.path(),
    );
    assert_eq!((s.features, s.areas), (4835, 4835));
    let path = reference().join("postcodes/london_postcodes_2014.csv");
    let t = Instant::now();
    let p = import_postcodes(std::fs::File::open(&path).unwrap(), dir.path(), &mut |_| {}).unwrap();
    eprintln!("imported postcodes: {p:?} in {:.2?}", t.elapsed());
    assert_eq!(
        (p.rows, p.units, p.without_location, p.duplicates),
        (181_565, 181_565, 0, 0)
    );
    let t = Instant::now();
    let g = Geocoder::load(dir.path(), GeocoderConfig::default()).unwrap();
    eprintln!("loaded postcodes and lsoas in {:.2?}", t.elapsed());
    let lsoa = g.areas(AreaKind::Lsoa).unwrap();
    assert_eq!(lsoa.areas().len(), 4835);
    let out = g.geocode(&LocationInput {
        postcode: Some("br11ab"),
        ..Default::default()
    });
    assert_eq!(out.method, GeocodeMethod::PostcodeUnit);
    assert_eq!(
        out.cell,
        cell_at(51.406271, 0.015177, istv_geo::Resolution::Ten)
    );
    // BR1 1AB lies in Bromley (E09000006); its LSOA code must be a Bromley one.
    let code = out.lsoa.expect("an lsoa");
    let area = lsoa.get(&code).unwrap();
    assert!(area.name.starts_with("Bromley"), "{code} {}", area.name);
    let t = Instant::now();
    let n = check_boundary_points(&g, &[AreaKind::Lsoa]);
    eprintln!(
        "{n} lsoa boundary points agree with the polygons in {:.2?}",
        t.elapsed()
    );
    assert!(n > 600_000, "{n}");
}
