//! `istv serve` end to end: the real binary on a random port, hand-made
//! uploads, exact counts from the query API; on SQLite and on PostgreSQL.

use istv_e2e::*;
use serde_json::{json, Value};

const WESTMINSTER: &str = "E09000033";
const LAMBETH: &str = "E09000022";
const SOUTHWARK: &str = "E09000028";
const HACKNEY: &str = "E09000012";

// Well-known points: Trafalgar Square, Brixton station, Peckham Rye
// station, Hackney Central station, and Manchester (outside London).
const TRAFALGAR: (&str, &str) = ("51.5080", "-0.1281");
const BRIXTON: (&str, &str) = ("51.4627", "-0.1145");
const PECKHAM: (&str, &str) = ("51.4700", "-0.0694");
const HACKNEY_CENTRAL: (&str, &str) = ("51.5471", "-0.0561");
const MANCHESTER: (&str, &str) = ("53.4808", "-2.2426");

fn row(
    id: &str,
    when: &str,
    method: &str,
    place: &str,
    at: Option<(&str, &str)>,
    age: &str,
    sex: &str,
) -> String {
    let (lat, lon) = at.unwrap_or(("", ""));
    format!("RJ122,{id},{when},{method},{place},{lat},{lon},{age},{sex}\n")
}

const HEADER: &str = "site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_latitude,assault_longitude,patient_age,patient_sex\n";

fn first_upload() -> String {
    let mut s = HEADER.to_string();
    s += &row(
        "A1",
        "2024-01-05T22:00",
        "sharp_object",
        "street",
        Some(TRAFALGAR),
        "19",
        "male",
    );
    s += &row(
        "A2",
        "2024-01-20T23:30",
        "body_part",
        "licensed_premises",
        Some(TRAFALGAR),
        "30",
        "female",
    );
    s += &row(
        "A3",
        "2024-02-03T01:15",
        "body_part",
        "street",
        Some(BRIXTON),
        "45",
        "male",
    );
    s += &row("A4", "2024-02-14", "blunt_object", "home", None, "", "");
    s += &row(
        "A5",
        "2024-02-20T12:00",
        "sharp_object",
        "street",
        Some(PECKHAM),
        "17",
        "male",
    );
    s += &row(
        "A6",
        "2024-01-07T02:00",
        "sharp_object",
        "street",
        Some(TRAFALGAR),
        "22",
        "male",
    );
    s += &row(
        "A7",
        "2024-01-08T02:00",
        "knife",
        "street",
        Some(TRAFALGAR),
        "22",
        "male",
    );
    s += &row(
        "A8",
        "2024-03-01T20:00",
        "firearm",
        "street",
        Some(MANCHESTER),
        "40",
        "male",
    );
    s
}

/// (A1 unchanged, A2 moved to Hackney as blunt_object, A9 new) as JSON Lines.
fn second_upload() -> String {
    let (lat, lon): (f64, f64) = (
        HACKNEY_CENTRAL.0.parse().unwrap(),
        HACKNEY_CENTRAL.1.parse().unwrap(),
    );
    [
        json!({"site_code":"RJ122","record_id":"A1","assault_datetime":"2024-01-05T22:00","assault_method":"sharp_object","assault_location_type":"street","assault_latitude":51.5080,"assault_longitude":-0.1281,"patient_age":19,"patient_sex":"male"}),
        json!({"site_code":"RJ122","record_id":"A2","assault_datetime":"2024-01-20T23:30","assault_method":"blunt_object","assault_location_type":"licensed_premises","assault_latitude":lat,"assault_longitude":lon,"patient_age":30,"patient_sex":"female"}),
        json!({"site_code":"RJ122","record_id":"A9","assault_datetime":"2024-03-02T21:00","assault_method":"body_part","assault_location_type":"street","assault_latitude":lat,"assault_longitude":lon,"patient_age":28,"patient_sex":"male"}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect()
}

/// `group_by` rows as (labels..., count), sorted.
fn rows(base: &str, query: &str) -> Vec<(Vec<String>, Option<u64>)> {
    let (status, body) = get(&format!("{base}/api/v1/aggregates?{query}"));
    assert_eq!(status, 200, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let dims: Vec<String> = query
        .split('&')
        .find_map(|p| p.strip_prefix("group_by="))
        .map(|g| g.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut out: Vec<(Vec<String>, Option<u64>)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                dims.iter()
                    .map(|d| r[d].as_str().unwrap().to_string())
                    .collect(),
                r["count"].as_u64(),
            )
        })
        .collect();
    out.sort();
    out
}

fn labels(pairs: &[(&[&str], u64)]) -> Vec<(Vec<String>, Option<u64>)> {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(l, c)| (l.iter().map(|s| s.to_string()).collect(), Some(*c)))
        .collect();
    v.sort();
    v
}

fn whole_journey(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    import_boroughs(dir.path());
    let token = add_site(dir.path(), database_url, "RJ122");
    let other = add_site(dir.path(), database_url, "R1H12");
    let server = Server::start(
        dir.path(),
        database_url,
        &["--suppress-below", "1", "--max-perturbation", "0"],
    );
    let base = server.base.clone();
    assert_eq!(get(&format!("{base}/healthz")).0, 200);
    assert_eq!(get(&format!("{base}/readyz")).0, 200);
    // The line is logged before the server reports ready; the test reads
    // the log on a thread of its own, so it may lag a little.
    let logged = (0..500).any(|_| {
        let seen = server.log().contains("geocoding tables built");
        if !seen {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        seen
    });
    assert!(logged, "ready before the geocoder's tables were built");

    // Upload 1: 8 rows, A7 invalid.
    let (status, r1) = post_upload(&base, &token, "text/csv", first_upload().as_bytes());
    assert_eq!(status, 200, "{r1}");
    assert_eq!(
        (
            r1["rows"].clone(),
            r1["accepted"].clone(),
            r1["rejected"].clone(),
            r1["duplicates"].clone(),
            r1["corrections"].clone()
        ),
        (json!(8), json!(7), json!(1), json!(0), json!(0))
    );
    assert_eq!(r1["site_code"], "RJ122");
    assert_eq!(r1["errors"][0]["row"], 7);
    assert_eq!(r1["errors"][0]["field"], "assault_method");
    assert_eq!(r1["errors"][0]["code"], "invalid_enum");

    assert_eq!(
        rows(&base, "group_by=month"),
        labels(&[(&["2024-01"], 3), (&["2024-02"], 3), (&["2024-03"], 1)])
    );
    assert_eq!(
        rows(&base, "group_by=borough"),
        labels(&[
            (&[WESTMINSTER], 3),
            (&[LAMBETH], 1),
            (&[SOUTHWARK], 1),
            (&["unknown"], 2)
        ])
    );
    assert_eq!(
        rows(&base, "group_by=location_status"),
        labels(&[
            (&["resolved"], 5),
            (&["unresolved"], 1),
            (&["out_of_area"], 1)
        ])
    );
    assert_eq!(
        rows(
            &base,
            &format!("group_by=month,assault_method&borough={WESTMINSTER}")
        ),
        labels(&[
            (&["2024-01", "sharp_object"], 2),
            (&["2024-01", "body_part"], 1)
        ])
    );
    assert_eq!(
        rows(&base, "group_by=age_band"),
        labels(&[
            (&["10-17"], 1),
            (&["18-24"], 2),
            (&["25-34"], 1),
            (&["35-44"], 1),
            (&["45-54"], 1),
            (&["unknown"], 1)
        ])
    );
    // 5 Jan 2024 was a Friday, 7 Jan a Sunday, 20 Feb a Tuesday.
    assert_eq!(
        rows(&base, "group_by=weekday,hour&assault_method=sharp_object"),
        labels(&[(&["fri", "22"], 1), (&["sun", "2"], 1), (&["tue", "12"], 1)])
    );
    assert_eq!(
        rows(&base, "group_by=sex&from=2024-02-01&to=2024-02-29"),
        labels(&[(&["male"], 2), (&["not_known"], 1)])
    );
    assert_eq!(
        rows(&base, "group_by=week&month=2024-01"),
        labels(&[(&["2024-W01"], 2), (&["2024-W03"], 1)])
    );

    // Upload 2: a duplicate, a correction and a new row.
    let (status, r2) = post_upload(
        &base,
        &token,
        "application/x-ndjson",
        second_upload().as_bytes(),
    );
    assert_eq!(status, 200, "{r2}");
    assert_eq!(
        (
            r2["rows"].clone(),
            r2["accepted"].clone(),
            r2["duplicates"].clone(),
            r2["corrections"].clone()
        ),
        (json!(3), json!(3), json!(1), json!(1))
    );
    assert_eq!(
        rows(&base, "group_by=borough"),
        labels(&[
            (&[WESTMINSTER], 2),
            (&[HACKNEY], 2),
            (&[LAMBETH], 1),
            (&[SOUTHWARK], 1),
            (&["unknown"], 2)
        ])
    );
    assert_eq!(
        rows(&base, "group_by=month"),
        labels(&[(&["2024-01"], 3), (&["2024-02"], 3), (&["2024-03"], 2)])
    );
    assert_eq!(
        rows(
            &base,
            &format!("group_by=assault_method&borough={WESTMINSTER},{HACKNEY}")
        ),
        labels(&[
            (&["sharp_object"], 2),
            (&["blunt_object"], 1),
            (&["body_part"], 1)
        ])
    );
    // Sending it again, gzip-compressed, changes nothing.
    let (status, r3) = post_upload(
        &base,
        &token,
        "application/x-ndjson",
        &gzip(second_upload().as_bytes()),
    );
    assert_eq!(status, 200, "{r3}");
    assert_eq!(
        (r3["duplicates"].clone(), r3["corrections"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(
        rows(&base, "group_by=month"),
        labels(&[(&["2024-01"], 3), (&["2024-02"], 3), (&["2024-03"], 2)])
    );

    // A token is scoped to its site.
    let (status, r4) = post_upload(&base, &other, "text/csv", first_upload().as_bytes());
    assert_eq!(status, 200);
    assert_eq!(
        (r4["accepted"].clone(), r4["rejected"].clone()),
        (json!(0), json!(8))
    );
    assert_eq!(r4["errors"][0]["code"], "invalid_site_code");
    // Unknown tokens and identifier columns are refused.
    assert_eq!(
        post_upload(&base, "nope", "text/csv", first_upload().as_bytes()).0,
        401
    );
    let (status, body) = post_upload(
        &base,
        &token,
        "text/csv",
        b"site_code,record_id,nhs_number\n",
    );
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nhs_number"));

    // Receipts and errors are kept.
    let id = r1["upload_id"].as_str().unwrap();
    let again: Value =
        serde_json::from_str(&authed_get(&base, &token, &format!("/api/v1/uploads/{id}"))).unwrap();
    assert_eq!(again, r1);
    let errors: Value = serde_json::from_str(&authed_get(
        &base,
        &token,
        &format!("/api/v1/uploads/{id}/errors"),
    ))
    .unwrap();
    assert_eq!(errors["errors"].as_array().unwrap().len(), 1);

    // Bad queries name what is wrong.
    let (status, body) = get(&format!(
        "{base}/api/v1/aggregates?group_by=month&colour=red"
    ));
    assert_eq!(status, 400);
    assert!(body.contains("colour"), "{body}");
    let (status, body) = get(&format!("{base}/api/v1/aggregates?group_by=fortnight"));
    assert_eq!(status, 400);
    assert!(body.contains("fortnight"), "{body}");
    let (status, body) = get(&format!("{base}/api/v1/aggregates?assault_method=knife"));
    assert_eq!(status, 400);
    assert!(body.contains("knife"), "{body}");

    // CSV output.
    let (status, csv) = get(&format!(
        "{base}/api/v1/aggregates?group_by=month&format=csv"
    ));
    assert_eq!(status, 200);
    assert_eq!(
        csv,
        "month,count,suppressed\n2024-01,3,false\n2024-02,3,false\n2024-03,2,false\n"
    );

    // GeoJSON: cells and boroughs.
    let (status, cells) = get(&format!("{base}/api/v1/cells?resolution=8"));
    assert_eq!(status, 200);
    let cells: Value = serde_json::from_str(&cells).unwrap();
    let located: u64 = cells["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(located, 6);
    assert_eq!(cells["location_unknown"]["count"], 2);
    let ring = &cells["features"][0]["geometry"]["coordinates"][0];
    assert_eq!(ring.as_array().unwrap().len(), 7, "a closed hexagon");
    let (status, areas) = get(&format!("{base}/api/v1/areas?level=borough"));
    assert_eq!(status, 200);
    let areas: Value = serde_json::from_str(&areas).unwrap();
    assert_eq!(areas["features"].as_array().unwrap().len(), 33);
    let westminster = areas["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["code"] == WESTMINSTER)
        .unwrap();
    assert_eq!(westminster["properties"]["count"], 2);
    assert_eq!(westminster["properties"]["name"], "Westminster");

    // Metrics.
    let (status, metrics) = get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("istv_records_received_total 22"),
        "{metrics}"
    );
    assert!(metrics.contains("istv_records_rejected_total{code=\"invalid_enum\"} 2"));
    assert!(metrics.contains("istv_records_rejected_total{code=\"invalid_site_code\"} 8"));
    assert!(metrics.contains("istv_records_duplicate_total 4"));
    assert!(metrics.contains("istv_records_corrected_total 1"));
    assert!(metrics
        .contains("istv_records_geocoded_total{method=\"out_of_area\",outcome=\"out_of_area\"} 1"));
    assert!(metrics.contains("istv_site_last_upload_timestamp_seconds{site=\"RJ122\"}"));
    assert!(metrics.contains("istv_http_requests_total{route=\"/api/v1/uploads\",status=\"200\"}"));
    promtool_check(&metrics);

    // Graceful stop, then the stored aggregates equal a recount.
    assert!(server.terminate().success());
    let mut check = istv(dir.path());
    if let Some(url) = database_url {
        check.args(["--database-url", url]);
    }
    let o = check.arg("check").output().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("records: 8;"), "{}", stdout(&o));

    // With the default disclosure control (cell key method, D = 3, k = 5)
    // no count from 1 to 4 is published: a true 3 becomes 0 (absent), 5 or
    // 6 (3 + 3 at most, 0 is 3 away, 1-4 never), a true 2 becomes 0 or 5.
    let server = Server::start(dir.path(), database_url, &[]);
    let url = format!("{}/api/v1/aggregates?group_by=month", server.base);
    let (_, body) = get(&url);
    let v: Value = serde_json::from_str(&body).unwrap();
    let allowed: [(&str, &[u64]); 3] = [
        ("2024-01", &[5, 6]),
        ("2024-02", &[5, 6]),
        ("2024-03", &[5]),
    ];
    for row in v["rows"].as_array().unwrap() {
        let month = row["month"].as_str().unwrap();
        let (_, ok) = allowed.iter().find(|(m, _)| *m == month).unwrap();
        assert!(ok.contains(&row["count"].as_u64().unwrap()), "{row}");
        assert!(row.get("suppressed").is_none(), "{row}");
    }
    // The same query gives the same figures.
    assert_eq!(get(&url).1, body);
    // Ward figures only for whole weeks or months.
    let (status, body) = get(&format!(
        "{}/api/v1/aggregates?group_by=ward&from=2024-01-01&to=2024-01-30",
        server.base
    ));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("whole ISO weeks or whole months"), "{body}");
    let (status, _) = get(&format!(
        "{}/api/v1/aggregates?group_by=ward&from=2024-01-01&to=2024-01-31",
        server.base
    ));
    assert_eq!(status, 200);
    // Six located records in cells of 1-4 at resolution 8: each shown cell
    // is merged up until it is not below 5 (or reaches resolution 7), and
    // says which cell and resolution it is.
    let (status, body) = get(&format!("{}/api/v1/cells?resolution=8", server.base));
    assert_eq!(status, 200);
    let cells: Value = serde_json::from_str(&body).unwrap();
    for f in cells["features"].as_array().unwrap() {
        let count = f["properties"]["count"].as_u64().unwrap();
        assert!(count >= 5, "{f}");
        // An H3 index holds its resolution in bits 52-55.
        let cell = u64::from_str_radix(f["properties"]["cell"].as_str().unwrap(), 16).unwrap();
        let resolution = f["properties"]["resolution"].as_u64().unwrap();
        assert_eq!(resolution, (cell >> 52) & 0xf);
        assert!((7..=8).contains(&resolution), "{f}");
    }
}

fn authed_get(base: &str, token: &str, path: &str) -> String {
    let mut r = http()
        .get(&format!("{base}{path}"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.body_mut().read_to_string().unwrap()
}

/// `promtool check metrics` when promtool is installed (scripts/test
/// installs it); its absence fails the test.
fn promtool_check(metrics: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (bash scripts/test installs the prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "promtool: {}{}", stdout(&o), stderr(&o));
}

#[test]
fn serve_sqlite() {
    whole_journey(None);
}

#[test]
fn serve_postgres() {
    let url = fresh_pg_database("istv_e2e");
    whole_journey(Some(&url));
}

/// A `record_id` repeated within one file: the later row wins, and the
/// receipt counts it however the rows are split into store batches.
fn repeats_within_one_file(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    import_boroughs(dir.path());
    let token = add_site(dir.path(), database_url, "RJ122");
    // Batches of two rows, so repeats fall both within and across batches.
    let server = Server::start(
        dir.path(),
        database_url,
        &[
            "--suppress-below",
            "1",
            "--max-perturbation",
            "0",
            "--batch-rows",
            "2",
        ],
    );
    let base = server.base.clone();
    let mut file = HEADER.to_string();
    // B1 three times (changed, then unchanged), B2 once, B3 twice unchanged.
    file += &row(
        "B1",
        "2024-05-01T21:00",
        "body_part",
        "street",
        Some(BRIXTON),
        "20",
        "male",
    );
    file += &row(
        "B2",
        "2024-05-02T21:00",
        "body_part",
        "street",
        Some(PECKHAM),
        "20",
        "male",
    );
    file += &row(
        "B1",
        "2024-05-01T21:00",
        "sharp_object",
        "street",
        Some(BRIXTON),
        "20",
        "male",
    );
    file += &row("B3", "2024-06-01T21:00", "firearm", "home", None, "", "");
    file += &row(
        "B1",
        "2024-05-01T21:00",
        "sharp_object",
        "street",
        Some(BRIXTON),
        "20",
        "male",
    );
    file += &row("B3", "2024-06-01T21:00", "firearm", "home", None, "", "");
    let valid = file.clone();
    // Three bad rows: their errors reach the store in two parts.
    for id in ["X1", "X2", "X3"] {
        file += &row(id, "2024-05-01T21:00", "knife", "street", None, "", "");
    }
    let (status, r) = post_upload(&base, &token, "text/csv", file.as_bytes());
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["rejected"], 3);
    let id = r["upload_id"].as_str().unwrap();
    let errors: Value = serde_json::from_str(&authed_get(
        &base,
        &token,
        &format!("/api/v1/uploads/{id}/errors"),
    ))
    .unwrap();
    let error_rows: Vec<u64> = errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"].as_u64().unwrap())
        .collect();
    assert_eq!(error_rows, [7, 8, 9]);
    assert_eq!(
        (
            r["rows"].clone(),
            r["accepted"].clone(),
            r["duplicates"].clone(),
            r["corrections"].clone(),
            r["replaced_in_file"].clone()
        ),
        (json!(9), json!(6), json!(2), json!(1), json!(3))
    );
    assert_eq!(
        rows(&base, "group_by=month,assault_method"),
        labels(&[
            (&["2024-05", "sharp_object"], 1),
            (&["2024-05", "body_part"], 1),
            (&["2024-06", "firearm"], 1)
        ])
    );
    // Sent again as a new upload: B1's first row differs from the stored
    // (last) version, so it corrects it and the third row corrects it back;
    // the same three rows as before repeat earlier rows of this upload.
    let (_, again) = post_upload(&base, &token, "text/csv", valid.as_bytes());
    assert_eq!(
        (
            again["duplicates"].clone(),
            again["corrections"].clone(),
            again["replaced_in_file"].clone()
        ),
        (json!(4), json!(2), json!(3))
    );
    assert_eq!(
        rows(&base, "group_by=assault_method"),
        labels(&[
            (&["sharp_object"], 1),
            (&["body_part"], 1),
            (&["firearm"], 1)
        ])
    );
}

#[test]
fn repeats_within_one_file_sqlite() {
    repeats_within_one_file(None);
}

#[test]
fn repeats_within_one_file_postgres() {
    let url = fresh_pg_database("istv_e2e_repeat");
    repeats_within_one_file(Some(&url));
}

/// The README's run command: `serve --demo` registers the demo site and
/// loads a generated feed through the upload API; its rows are then in the
/// aggregates.
#[test]
fn demo_loads_a_generated_feed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        None,
        &[
            "--demo",
            "--demo-records",
            "2000",
            "--suppress-below",
            "1",
            "--max-perturbation",
            "0",
        ],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let line = loop {
        let log = server.log();
        if let Some(l) = log
            .lines()
            .find(|l| l.starts_with("demo: site RJ122 loaded"))
        {
            break l.to_string();
        }
        assert!(
            !log.contains("demo load failed"),
            "the demo load failed: {log}"
        );
        assert!(std::time::Instant::now() < deadline, "no demo load: {log}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // "demo: site RJ122 loaded 2000 rows (A accepted, R rejected)"
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect();
    let (read, accepted, rejected) = (numbers[1], numbers[2], numbers[3]);
    assert_eq!(read, 2000, "{line}");
    assert_eq!(accepted + rejected, 2000, "{line}");
    // The generator's 1% of bad rows are rejected; the rest are stored.
    assert!(rejected > 0 && rejected < 100, "{line}");
    let total: u64 = rows(&server.base, "group_by=month")
        .into_iter()
        .map(|(_, c)| c.expect("nothing suppressed"))
        .sum();
    assert_eq!(total, accepted);
    assert!(server.log().contains("demo: upload token for RJ122"));
    // A fresh data directory gets London's boroughs and wards: the records
    // are placed in them, and every borough is on the map.
    let by_borough = rows(&server.base, "group_by=borough");
    let placed: u64 = by_borough
        .iter()
        .filter(|(b, _)| b[0].starts_with("E09"))
        .map(|(_, c)| c.expect("nothing suppressed"))
        .sum();
    assert!(placed * 2 > accepted, "{placed} of {accepted} in a borough");
    assert!(rows(&server.base, "group_by=ward")
        .iter()
        .any(|(w, _)| w[0].starts_with("E05")));
    let (status, body) = get(&format!("{}/api/v1/areas?level=borough", server.base));
    assert_eq!(status, 200);
    let areas: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(areas["features"].as_array().unwrap().len(), 33);
    // "demo: portal http://HOST:PORT/ user demo-analyst password PW": the
    // page is there and the printed name and password sign in.
    let log = server.log();
    let portal = log
        .lines()
        .find_map(|l| l.strip_prefix("demo: portal "))
        .filter(|l| l.contains(" password "))
        .unwrap_or_else(|| panic!("no portal line: {log}"))
        .to_string();
    let words: Vec<&str> = portal.split_whitespace().collect();
    assert_eq!(words.len(), 5, "{portal}");
    assert_eq!(words[0], format!("{}/", server.base));
    assert_eq!(
        (words[1], words[2], words[3]),
        ("user", "demo-analyst", "password")
    );
    let (status, page) = get_with(words[0], None);
    assert_eq!(status, 200);
    assert!(page.contains("<title>istv"), "{page}");
    let mut answer = http()
        .post(&format!("{}/api/v1/session", server.base))
        .header("Content-Type", "application/json")
        .send(json!({"user": words[2], "password": words[4]}).to_string())
        .unwrap();
    assert_eq!(answer.status(), 200);
    let me: Value = serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(me["user"], "demo-analyst");
    assert_eq!(me["role"], "analyst");
}

/// With `no_warm_geocoder = true` in the config file the server is ready at
/// once, builds no tables at start, and places points as a warmed one does.
#[test]
fn tables_left_to_the_first_points() {
    let dir = tempfile::tempdir().unwrap();
    import_boroughs(dir.path());
    let token = add_site(dir.path(), None, "RJ122");
    let config = file(dir.path(), "istv.toml", "no_warm_geocoder = true\n");
    let server = Server::start(
        dir.path(),
        None,
        &[
            "--config",
            config.to_str().unwrap(),
            "--suppress-below",
            "1",
            "--max-perturbation",
            "0",
        ],
    );
    let mut feed = HEADER.to_string();
    feed += &row(
        "W1",
        "2024-05-01T21:00",
        "body_part",
        "street",
        Some(TRAFALGAR),
        "20",
        "male",
    );
    feed += &row(
        "W2",
        "2024-05-02T21:00",
        "body_part",
        "street",
        Some(BRIXTON),
        "30",
        "female",
    );
    feed += &row(
        "W3",
        "2024-05-03T21:00",
        "body_part",
        "street",
        Some(BRIXTON),
        "40",
        "female",
    );
    let (status, receipt) = post_upload(&server.base, &token, "text/csv", feed.as_bytes());
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(
        rows(&server.base, "group_by=borough"),
        labels(&[(&[LAMBETH], 2), (&[WESTMINSTER], 1)])
    );
    let log = server.log();
    assert!(!log.contains("geocoding tables built"), "{log}");
}

/// `istv upload` of a file over the service's body limit reports the
/// service's 413 and its reason: the file's length goes first, so the
/// refusal arrives before the body (a file far larger than the socket's
/// buffers, which a refusal in the middle of the body would cut off with a
/// broken pipe). A file under the limit goes through the same way.
#[test]
fn istv_upload_over_the_body_limit_reports_the_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_site(dir.path(), None, "RJ122");
    let server = Server::start(dir.path(), None, &["--max-body-bytes", "4096"]);
    let row = |i: usize| {
        format!("RJ122,B{i},2024-03-01T22:00,body_part,street,51.5080,-0.1281,30,male\n")
    };
    let small = file(
        dir.path(),
        "small.csv",
        format!("{HEADER}{}{}", row(1), row(2)),
    );
    let big_rows: String = (0..100_000).map(row).collect();
    let big = file(dir.path(), "big.csv", format!("{HEADER}{big_rows}"));
    assert!(std::fs::metadata(&big).unwrap().len() > 6 << 20);
    let upload = |path: &std::path::Path| {
        istv(dir.path())
            .arg("upload")
            .arg(path)
            .args(["--url", &server.base, "--token", &token])
            .output()
            .unwrap()
    };

    let o = upload(&big);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the service refused the upload (413") && err.contains("the limit is 4096"),
        "{err}"
    );

    let o = upload(&small);
    assert!(o.status.success(), "{}", stderr(&o));
    let receipt: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (receipt["rows"].as_u64(), receipt["accepted"].as_u64()),
        (Some(2), Some(2))
    );
    // The refusal came from the headers: only the second upload started.
    let started = || server.log().matches("upload started").count();
    for _ in 0..500 {
        if started() > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(started(), 1, "{}", server.log());
}
