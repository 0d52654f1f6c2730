//! The public tier end to end: off by default; `istv release` releases a
//! month once and refuses it the second time; `istv serve --public-tier`
//! releases the month due at start and serves both without a credential,
//! every borough x method, each value a plausible draw of noise around the
//! exact count.

use istv_e2e::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// The two sites: each upload's record ids are the site's own.
const SITES: [&str; 2] = ["RJ122", "RYJ01"];

/// The exact counts of `month` by (borough, method), from a server that
/// publishes exact counts.
fn exact(server: &Server, month: &str) -> HashMap<(String, String), i64> {
    let (status, body) = get_with(
        &format!(
            "{}/api/v1/aggregates?group_by=borough,assault_method&month={month}",
            server.base
        ),
        Some(&server.token),
    );
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["borough"].as_str().unwrap().to_owned(),
                    r["assault_method"].as_str().unwrap().to_owned(),
                ),
                r["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Uploads 3,000 generated rows of `site` from `from` to `to`.
fn upload(dir: &Path, server: &Server, token: &str, site: &str, from: &str, to: &str) {
    let feed = dir.join(format!("feed-{site}.csv"));
    istv_ok(
        dir,
        None,
        &[
            "generate",
            "--records",
            "3000",
            "--from",
            from,
            "--to",
            to,
            "--site",
            site,
            "-o",
            feed.to_str().unwrap(),
        ],
    );
    let (status, receipt) = post_upload(
        &server.base,
        token,
        "text/csv",
        &std::fs::read(&feed).unwrap(),
    );
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(
        (&receipt["accepted"], &receipt["corrections"]),
        (&Value::from(3000), &Value::from(0)),
        "{receipt}"
    );
}

/// Checks a release's JSON against the exact counts: 33 boroughs x 6
/// methods, each value at most 20 from the exact count (discrete Laplace at
/// epsilon 1 goes further with probability 2e^-21 / (1 + e^-1), about 1e-9,
/// per cell) and not every value exact (each is, clamping aside, with
/// probability under 0.74).
fn check_release(doc: &Value, month: &str, exact: &HashMap<(String, String), i64>) {
    assert_eq!(doc["month"], month);
    assert_eq!(doc["epsilon"], 1.0);
    assert_eq!(doc["mechanism"], "discrete_laplace");
    assert_eq!(doc["parameters"]["scale"], 1.0);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 33 * 6);
    let mut differ = 0;
    let mut total = 0;
    for r in rows {
        let key = (
            r["borough"].as_str().unwrap().to_owned(),
            r["assault_method"].as_str().unwrap().to_owned(),
        );
        let want = exact.get(&key).copied().unwrap_or(0);
        let got = r["count"].as_i64().unwrap();
        assert!(
            got >= 0 && (got - want).abs() <= 20,
            "{key:?}: {got} for {want}"
        );
        differ += usize::from(got != want);
        total += want;
    }
    assert!(differ > 0);
    // Most records have a borough: the release is not of an empty month.
    assert!(total > 1000, "{total}");
}

#[test]
fn months_are_released_once_and_served_without_a_credential() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    import_boroughs(data);
    let tokens = SITES.map(|site| add_site(data, None, site));
    let today = chrono::Utc::now().date_naive();
    let this_month = chrono::NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&today),
        chrono::Datelike::month(&today),
        1,
    )
    .unwrap();
    let last_day = this_month.pred_opt().unwrap();
    let first_day = chrono::NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&last_day),
        chrono::Datelike::month(&last_day),
        1,
    )
    .unwrap();
    let previous = last_day.format("%Y-%m").to_string();
    // Exact counts; the public tier is off.
    let plain = Server::start(
        data,
        None,
        &["--max-perturbation", "0", "--suppress-below", "0"],
    );
    upload(
        data,
        &plain,
        &tokens[0],
        SITES[0],
        "2024-03-01",
        "2024-03-31",
    );
    let (from, to) = (first_day.to_string(), last_day.to_string());
    upload(data, &plain, &tokens[1], SITES[1], &from, &to);
    for path in ["/api/v1/public/releases", "/api/v1/public/releases/2024-03"] {
        assert_eq!(get(&format!("{}{path}", plain.base)).0, 404, "{path}");
    }
    let march = exact(&plain, "2024-03");
    let last = exact(&plain, &previous);
    plain.terminate();

    // The command: once, then refused.
    let release = |month: &str| {
        let mut c = istv_on(data, None);
        c.env("USER", "tester");
        c.args(["release", "--month", month]).output().unwrap()
    };
    let first = release("2024-03");
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(
        stdout(&first),
        "released 2024-03: 33 boroughs x 6 assault methods, discrete Laplace noise at epsilon 1 (scale 1)\n"
    );
    let second = release("2024-03");
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("2024-03 was released already")
            && stderr(&second).contains("never recomputed"),
        "{}",
        stderr(&second)
    );
    let unfinished = release(&today.format("%Y-%m").to_string());
    assert_eq!(unfinished.status.code(), Some(2));
    assert!(
        stderr(&unfinished).contains("is not complete yet"),
        "{}",
        stderr(&unfinished)
    );

    // The service: the previous month is due at once with no lag.
    let public = Server::start(data, None, &["--public-tier", "--public-lag-days", "0"]);
    let list = format!("{}/api/v1/public/releases", public.base);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let months = loop {
        let (status, body) = get(&list);
        assert_eq!(status, 200, "{body}");
        let doc: Value = serde_json::from_str(&body).unwrap();
        let months: Vec<String> = doc["releases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["month"].as_str().unwrap().to_owned())
            .collect();
        if months.len() == 2 || std::time::Instant::now() > deadline {
            break months;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(months, ["2024-03".to_string(), previous.clone()]);
    for (month, exact) in [("2024-03", &march), (previous.as_str(), &last)] {
        let (status, body) = get(&format!("{list}/{month}"));
        assert_eq!(status, 200, "{body}");
        check_release(&serde_json::from_str(&body).unwrap(), month, exact);
        // The same bytes again, and the CSV of the same values.
        assert_eq!(get(&format!("{list}/{month}")), (200, body.clone()));
        let (status, csv) = get(&format!("{list}/{month}?format=csv"));
        assert_eq!(status, 200);
        let doc: Value = serde_json::from_str(&body).unwrap();
        let mut want = String::from("month,borough,assault_method,count\n");
        for r in doc["rows"].as_array().unwrap() {
            want.push_str(&format!(
                "{month},{},{},{}\n",
                r["borough"].as_str().unwrap(),
                r["assault_method"].as_str().unwrap(),
                r["count"]
            ));
        }
        assert_eq!(csv, want);
    }
    public.terminate();
    let audit = istv_ok(data, None, &["audit", "list", "--json"]);
    let entries: Vec<Value> = serde_json::from_str(&audit).unwrap();
    let releases: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e["action"] == "public release")
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["parameters"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        releases,
        [
            (
                "cli:tester".to_string(),
                r#"{"epsilon":1.0,"month":"2024-03"}"#.to_string()
            ),
            (
                "system:serve".to_string(),
                format!(r#"{{"epsilon":1.0,"month":"{previous}"}}"#)
            ),
        ]
    );
}
