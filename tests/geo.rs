//! `istv geo import*` and `istv geo locate` on the shared reference data: an
//! ED data manager's check of location completeness before sending.

use istv_e2e::*;

/// The reference row of one postcode: (easting, northing, lat, lon, district code).
fn postcode_row(postcode: &str) -> (String, String, String, String, String) {
    let text =
        std::fs::read_to_string(reference().join("postcodes/london_postcodes_2014.csv")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{postcode},")))
        .expect("postcode in the file");
    let f: Vec<&str> = line.split(',').collect();
    (
        f[3].into(),
        f[4].into(),
        f[5].into(),
        f[6].into(),
        f[11].into(),
    )
}

/// `istv geo ARGS FILE`, whatever its outcome.
fn geo(dir: &std::path::Path, args: &[&str], file: &std::path::Path) -> std::process::Output {
    istv(dir).arg("geo").args(args).arg(file).output().unwrap()
}

/// `istv geo locate` with extra flags: the CSV rows split into fields, and
/// the summary.
fn locate(
    dir: &std::path::Path,
    flags: &[&str],
    feed: &std::path::Path,
) -> (Vec<Vec<String>>, String) {
    let args: Vec<&str> = ["locate"].iter().chain(flags).copied().collect();
    let o = geo(dir, &args, feed);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = stdout(&o)
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (rows, stderr(&o))
}

#[test]
fn locate_reports_method_precision_cell_and_areas() {
    let dir = tempfile::tempdir().unwrap();
    let out = import_boroughs(dir.path());
    assert!(out.contains("imported 33 borough areas"), "{out}");
    import_wards(dir.path());
    let out = geo_import(
        dir.path(),
        &["import-postcodes"],
        "postcodes/london_postcodes_2014.csv",
    );
    assert!(out.contains("imported 181565 unit postcodes"), "{out}");

    let (e, n, lat, lon, district) = postcode_row("BR1 1AB");
    assert_eq!(district, "E09000006", "Bromley");
    let feed = format!(
        "site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_latitude,assault_longitude,assault_easting,assault_northing,assault_postcode,assault_location_description\n\
         RJ122,r1,2024-01-01,body_part,street,{lat},{lon},,,,\n\
         RJ122,r2,2024-01-01,body_part,street,,,{e},{n},,\n\
         RJ122,r3,2024-01-01,body_part,street,,,,,br11ab,\n\
         RJ122,r4,2024-01-01,body_part,street,,,,,BR1 1,\n\
         RJ122,r5,2024-01-01,body_part,street,,,,,BR1,\n\
         RJ122,r6,2024-01-01,body_part,street,,,,,,\"outside the shop, BR1 1AB\"\n\
         RJ122,r7,2024-01-01,body_part,street,,,,,,somewhere\n\
         RJ122,r8,2024-01-01,body_part,street,53.4808,-2.2426,,,,\n\
         RJ122,r9,2024-01-01,knife,street,,,,,,\n"
    );
    let path = file(dir.path(), "feed.csv", feed);
    let (rows, summary) = locate(dir.path(), &[], &path);
    assert_eq!(
        rows[0].join(","),
        "row,record_id,method,precision_m,cell,borough_code,ward_code,lsoa_code"
    );
    let method = |i: usize| rows[i][2].as_str();
    let borough = |i: usize| rows[i][5].as_str();
    let cell = |i: usize| rows[i][4].as_str();
    assert_eq!((method(1), borough(1)), ("latlon", "E09000006"));
    assert_eq!(rows[1][3], "10");
    assert_eq!(cell(1).len(), 15, "an H3 cell in hex");
    assert_eq!((method(2), borough(2)), ("grid", "E09000006"));
    assert_eq!(
        (method(3), borough(3), rows[3][3].as_str()),
        ("postcode_unit", "E09000006", "50")
    );
    assert_eq!(method(4), "postcode_sector");
    assert_eq!(method(5), "postcode_district");
    assert_eq!((method(6), borough(6)), ("text_postcode", "E09000006"));
    assert_eq!((method(7), cell(7), borough(7)), ("unresolved", "", ""));
    assert_eq!((method(8), cell(8), borough(8)), ("out_of_area", "", ""));
    assert_eq!(method(9), "invalid_row");
    // The same point by lat/lon, grid and unit postcode lands in one res-10
    // cell family: the unit postcode's coarser cell is a parent of the others'.
    assert_eq!(
        cell(1),
        cell(2),
        "grid conversion within a few centimetres of the reference"
    );
    // Coarser precision never gives a finer cell.
    let res = |hex: &str| {
        u64::from_str_radix(hex, 16)
            .map(|v| (v >> 52) & 0xf)
            .unwrap()
    };
    assert!(res(cell(4)) < res(cell(3)) && res(cell(3)) <= res(cell(1)));
    assert!(res(cell(5)) < res(cell(4)));
    assert!(summary.contains("9 rows"), "{summary}");
    assert!(summary.contains("unresolved"), "{summary}");

    // A service area around Manchester only, and a finer resolution: the
    // Bromley point is now out of area and Manchester is placed at res 11.
    let (rows, _) = locate(
        dir.path(),
        &[
            "--service-area",
            "53.3,-2.4,53.6,-2.1",
            "--h3-resolution",
            "11",
        ],
        &path,
    );
    assert_eq!(rows[1][2], "out_of_area");
    assert_eq!(rows[8][2], "latlon");
    assert_eq!(res(&rows[8][4]), 11);
    let o = geo(dir.path(), &["locate", "--h3-resolution", "6"], &path);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("outside 7-15"), "{}", stderr(&o));
}

#[test]
fn broken_boundary_files_are_refused_and_keep_the_old_data() {
    let dir = tempfile::tempdir().unwrap();
    import_boroughs(dir.path());
    let bad = file(
        dir.path(),
        "bad.geojson",
        "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\",",
    );
    let o = geo(
        dir.path(),
        &[
            "import",
            "--level",
            "borough",
            "--code-property",
            "code",
            "--name-property",
            "name",
        ],
        &bad,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: cannot import"),
        "{}",
        stderr(&o)
    );
    // The old boundaries still answer.
    let feed = file(dir.path(), "f.csv", "site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_latitude,assault_longitude\nRJ122,1,2024-01-01,body_part,street,51.5080,-0.1281\n");
    let o = geo(dir.path(), &["locate"], &feed);
    assert!(
        stdout(&o).lines().nth(1).unwrap().contains(",E09000033,"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn imported_places_resolve_descriptions() {
    let dir = tempfile::tempdir().unwrap();
    import_boroughs(dir.path());
    // Trafalgar Square (Westminster) and a Bromley street, as an ED's
    // gazetteer might list them; one name twice, far apart, is ambiguous.
    let places = file(
        dir.path(),
        "places.csv",
        "name,lat,lon,borough\n\
         Trafalgar Square,51.5080,-0.1281,E09000033\n\
         Church Street,51.4050,0.0150,\n\
         Red Lion,51.5000,-0.1000,\n\
         Red Lion,51.4000,0.0500,\n",
    );
    let o = geo(dir.path(), &["import-places"], &places);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("imported 4 places (3 distinct names)"),
        "{}",
        stderr(&o)
    );
    let feed = file(
        dir.path(),
        "feed.csv",
        "site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_location_description\n\
         RJ122,a,2024-01-01,body_part,street,\"fight in TRAFALGAR SQUARE.\"\n\
         RJ122,b,2024-01-01,body_part,street,outside no 4 church st\n\
         RJ122,c,2024-01-01,body_part,street,by the red lion\n",
    );
    let (rows, summary) = locate(dir.path(), &[], &feed);
    assert_eq!(
        rows[0],
        "row,record_id,method,precision_m,cell,borough_code,ward_code,lsoa_code"
            .split(',')
            .collect::<Vec<_>>()
    );
    assert_eq!(rows[1][2], "gazetteer");
    assert_eq!(rows[1][5], "E09000033");
    assert_eq!(rows[2][2], "gazetteer");
    assert_eq!(rows[2][5], "E09000006", "Bromley");
    assert_eq!(rows[3][2], "unresolved", "ambiguous name");
    assert!(summary.contains("3 rows"), "{summary}");

    // A broken gazetteer is refused and the imported one still answers.
    let bad = file(dir.path(), "bad.csv", "name,lat,lon\nNowhere,91.0,0.0\n");
    let o = geo(dir.path(), &["import-places"], &bad);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot import"), "{}", stderr(&o));
    let (rows, _) = locate(dir.path(), &[], &feed);
    assert_eq!(rows[1][2], "gazetteer");
}

/// The London boundaries shipped in the binary place points exactly as the
/// reference files they were made from: every 40th reference postcode is
/// located in a data directory with the default geography and in one with
/// the reference borough and ward files imported, and the answers agree.
#[test]
fn the_default_geography_is_the_reference_boroughs_and_wards() {
    let shipped = tempfile::tempdir().unwrap();
    let o = istv(shipped.path())
        .args(["geo", "import-default"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stderr(&o);
    let reference_dir = tempfile::tempdir().unwrap();
    let boroughs = import_boroughs(reference_dir.path());
    let wards = import_wards(reference_dir.path());
    // The same numbers of areas as the reference files give.
    assert!(boroughs.contains("imported 33 borough areas"), "{boroughs}");
    assert!(
        said.contains("imported 33 borough areas (London, 2013)"),
        "{said}"
    );
    let ward_count = wards.split_whitespace().nth(1).unwrap();
    assert!(
        said.contains(&format!("imported {ward_count} ward areas (London, 2013)")),
        "{said} / {wards}"
    );
    let text =
        std::fs::read_to_string(reference().join("postcodes/london_postcodes_2014.csv")).unwrap();
    let mut feed = String::from(
        "site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_latitude,assault_longitude\n",
    );
    let mut points = 0;
    for (i, line) in text.lines().skip(1).step_by(40).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        feed.push_str(&format!(
            "RJ122,p{i},2024-01-01,body_part,street,{},{}\n",
            f[5], f[6]
        ));
        points += 1;
    }
    assert!(points > 4_000);
    let path = file(shipped.path(), "points.csv", feed);
    let (a, _) = locate(shipped.path(), &[], &path);
    let (b, _) = locate(reference_dir.path(), &[], &path);
    assert_eq!(a.len(), points + 1);
    assert_eq!(a, b);
    // Most points are in a borough and a ward.
    let placed = a[1..]
        .iter()
        .filter(|r| r[5].starts_with("E09") && r[6].starts_with("E05"))
        .count();
    assert!(placed * 10 > points * 9, "{placed} of {points} placed");
}
