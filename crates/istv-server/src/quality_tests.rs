//! Handler tests of `GET /api/v1/quality` and `GET /api/v1/uploads`: a
//! small hand-built feed (rejected rows, a re-send with a correction, rows
//! without a location or optional fields) uploaded through the API, on
//! SQLite and PostgreSQL, with every tally counted by hand.

use super::*;
use crate::auth::tests::{bearer, config, fixture, fixture_at, get, send};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;

const HEADER: &str = "site_code,record_id,arrival_datetime,assault_datetime,assault_method,\
    assault_method_other,assault_location_type,assault_location_description,assault_postcode,\
    assault_latitude,assault_longitude,assault_easting,assault_northing,patient_age,patient_sex";

/// Six rows: Q-1 by lat/lon with every field; Q-2 by easting/northing with
/// a date only, no age, no sex; Q-3 without a location, sex `not_known`;
/// Q-4 in Manchester (out of the service area), no age; Q-5 an unknown
/// method; Q-6 no assault date.
const FIRST: &str = "\
RJ122,Q-1,,2024-03-01T23:15,sharp_object,,street,,,51.4682,-0.0937,,,19,male
RJ122,Q-2,,2024-03-01,body_part,,street,,,,,530000,180000,,
RJ122,Q-3,,2024-03-02T01:00,body_part,,home,,,,,,,40,not_known
RJ122,Q-4,,2024-03-03T12:00,blunt_object,,street,,,53.48,-2.24,,,,female
RJ122,Q-5,,2024-03-03T12:00,spoon,,street,,,51.4682,-0.0937,,,19,male
RJ122,Q-6,,,body_part,,street,,,51.4682,-0.0937,,,19,male
";

/// Four rows: Q-1 again unchanged; Q-2 corrected (now by lat/lon, with a
/// time); Q-7 new, without a location or time, sex male; Q-8 a latitude
/// without a longitude.
const SECOND: &str = "\
RJ122,Q-1,,2024-03-01T23:15,sharp_object,,street,,,51.4682,-0.0937,,,19,male
RJ122,Q-2,,2024-03-01T22:00,body_part,,street,,,51.47,-0.09,,,,
RJ122,Q-7,,2024-03-04,other,,street,,,,,,,,male
RJ122,Q-8,,2024-03-04T10:00,body_part,,street,,,51.47,,,,,
";

fn upload(token: &str, rows: &str) -> Request<Body> {
    Request::post("/api/v1/uploads")
        .header(header::AUTHORIZATION, bearer(token))
        .header(header::CONTENT_TYPE, "text/csv")
        .body(Body::from(format!("{HEADER}\n{rows}")))
        .unwrap()
}

/// A fresh PostgreSQL database on the test server (`ISTV_TEST_PG_URL`,
/// default the local server), and its URL.
pub(crate) async fn fresh_pg() -> String {
    use sqlx::Connection;
    let server = std::env::var("ISTV_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .expect("PostgreSQL is required for these tests (ISTV_TEST_PG_URL)");
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).unwrap();
    let name = format!("istv_server_test_{:016x}", u64::from_le_bytes(suffix));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

async fn quality_of_a_hand_built_feed(url: &str) {
    let f = fixture_at(url, config()).await;
    let (status, _, first) = send(&f.app, upload(&f.site, FIRST)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!((&first["rows"], &first["rejected"]), (&json!(6), &json!(2)));
    let (status, _, second) = send(&f.app, upload(&f.uploader, SECOND)).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(
        (
            &second["duplicates"],
            &second["corrections"],
            &second["rejected"]
        ),
        (&json!(1), &json!(1), &json!(1))
    );

    let (status, _, body) = send(&f.app, get("/api/v1/quality", Some(&bearer(&f.admin)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sites = body["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 2);
    let rj = &sites[0];
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    // The fixture's 8 records (by postcode, with every field) came in an
    // upload that never finished: stored, never received. Stored: those 8,
    // Q-1, Q-2 (corrected), Q-3, Q-4, Q-7.
    assert_eq!(rj["site"], "RJ122");
    assert_eq!(rj["name"], "King's");
    assert_eq!(rj["expected_interval_days"], 35);
    assert_eq!(rj["late"], false);
    assert_eq!(
        rj["months"],
        json!([{"month": month, "rows_received": 10, "rows_accepted": 13, "rows_rejected": 3}])
    );
    let n = 13.0;
    assert_eq!(
        rj["geocoding"],
        json!([
            {"method": "latlon", "records": 2, "share": 2.0 / n},
            {"method": "bng", "records": 0, "share": 0.0},
            {"method": "postcode", "records": 8, "share": 8.0 / n},
            {"method": "gazetteer", "records": 0, "share": 0.0},
            {"method": "unknown", "records": 3, "share": 3.0 / n},
        ])
    );
    // Time: the 8, Q-1, Q-2, Q-3, Q-4. Age: the 8, Q-1, Q-3. Sex: the 8,
    //
    assert_eq!(
        rj["completeness"],
        json!([
            {"field": "assault_time", "records_with_value": 12, "share": 12.0 / n},
            {"field": "age_band", "records_with_value": 10, "share": 10.0 / n},
            {"field": "sex", "records_with_value": 11, "share": 11.0 / n},
        ])
    );
    assert_eq!(
        rj["rejections"],
        json!([
            {"reason": "incomplete_coordinates", "count": 1},
            {"reason": "invalid_enum", "count": 1},
            {"reason": "missing_required", "count": 1},
        ])
    );
    let last = rj["last_upload_at"].as_str().unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(last).unwrap();
    assert!(chrono::Utc::now() - last.with_timezone(&chrono::Utc) < chrono::TimeDelta::hours(1));
    // A site without uploads.
    assert_eq!(
        sites[1],
        json!({
            "site": "RYJ01", "name": "St Mary's", "expected_interval_days": 35,
            "last_upload_at": null, "late": false, "months": [],
            "geocoding": [
                {"method": "latlon", "records": 0, "share": 0.0},
                {"method": "bng", "records": 0, "share": 0.0},
                {"method": "postcode", "records": 0, "share": 0.0},
                {"method": "gazetteer", "records": 0, "share": 0.0},
                {"method": "unknown", "records": 0, "share": 0.0},
            ],
            "completeness": [
                {"field": "assault_time", "records_with_value": 0, "share": 0.0},
                {"field": "age_band", "records_with_value": 0, "share": 0.0},
                {"field": "sex", "records_with_value": 0, "share": 0.0},
            ],
            "rejections": [],
        })
    );

    // Uploaders and site tokens see their own sites only; analysts all.
    for token in [&f.uploader, &f.site] {
        let (status, _, mine) = send(&f.app, get("/api/v1/quality", Some(&bearer(token)))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(mine["sites"], json!([rj]));
    }
    let (_, _, all) = send(&f.app, get("/api/v1/quality", Some(&bearer(&f.analyst)))).await;
    assert_eq!(all, body);

    // Receipts, newest first.
    let ids = |v: &Value| -> Vec<String> {
        v["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["upload_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (one, two) = (
        first["upload_id"].as_str().unwrap().to_owned(),
        second["upload_id"].as_str().unwrap().to_owned(),
    );
    for (token, path) in [
        (&f.uploader, "/api/v1/uploads"),
        (&f.site, "/api/v1/uploads?site=RJ122"),
        (&f.admin, "/api/v1/uploads"),
        (&f.admin, "/api/v1/uploads?site=RJ122&limit=50"),
    ] {
        let (status, _, list) = send(&f.app, get(path, Some(&bearer(token)))).await;
        assert_eq!(status, StatusCode::OK, "{path} {list}");
        assert_eq!(ids(&list), [two.clone(), one.clone()], "{path}");
        assert_eq!(list["uploads"][0], second);
    }
    let (_, _, latest) = send(
        &f.app,
        get("/api/v1/uploads?limit=1", Some(&bearer(&f.uploader))),
    )
    .await;
    assert_eq!(ids(&latest), std::slice::from_ref(&two));
    let (_, _, none) = send(
        &f.app,
        get("/api/v1/uploads?site=RYJ01", Some(&bearer(&f.admin))),
    )
    .await;
    assert_eq!(none, json!({"uploads": []}));
    f.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_counts_a_hand_built_feed_on_sqlite() {
    quality_of_a_hand_built_feed("sqlite::memory:").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_counts_a_hand_built_feed_on_postgres() {
    quality_of_a_hand_built_feed(&fresh_pg().await).await;
}

#[tokio::test]
async fn the_uploads_list_refuses_what_the_caller_may_not_see() {
    let f = fixture(config()).await;
    for (token, path, status, error) in [
        (
            &f.uploader,
            "/api/v1/uploads?site=RYJ01",
            StatusCode::FORBIDDEN,
            "site RYJ01 is not one of yours (RJ122)",
        ),
        (
            &f.site,
            "/api/v1/uploads?site=RYJ01",
            StatusCode::FORBIDDEN,
            "site RYJ01 is not one of yours (RJ122)",
        ),
        (
            &f.analyst,
            "/api/v1/uploads",
            StatusCode::FORBIDDEN,
            "the analyst role cannot read upload receipts",
        ),
        (
            &f.admin,
            "/api/v1/uploads?site=XX1",
            StatusCode::NOT_FOUND,
            "no site \"XX1\"",
        ),
        (
            &f.admin,
            "/api/v1/uploads?limit=0",
            StatusCode::BAD_REQUEST,
            "limit must be 1-1000, not 0",
        ),
        (
            &f.admin,
            "/api/v1/uploads?limit=1001",
            StatusCode::BAD_REQUEST,
            "limit must be 1-1000, not 1001",
        ),
    ] {
        let (got, _, body) = send(&f.app, get(path, Some(&bearer(token)))).await;
        assert_eq!(
            (got, body["error"].as_str().unwrap()),
            (status, error),
            "{path}"
        );
    }
    let (got, _, body) = send(
        &f.app,
        get("/api/v1/uploads?colour=red", Some(&bearer(&f.admin))),
    )
    .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("colour"), "{body}");
    let (got, _, _) = send(
        &f.app,
        get("/api/v1/quality?site=RJ122", Some(&bearer(&f.admin))),
    )
    .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
}

fn site(days: u32, revoked: bool, created_days_ago: i64) -> Site {
    Site {
        code: "RJ1".into(),
        name: "x".into(),
        created_at: Utc::now() - TimeDelta::days(created_days_ago),
        revoked,
        expected_interval_days: days,
    }
}

#[test]
fn a_site_is_late_past_its_interval() {
    let now = Utc::now();
    let ago = |days: i64, secs: i64| Some(now - TimeDelta::days(days) - TimeDelta::seconds(secs));
    assert!(!is_late(&site(35, false, 400), ago(35, 0), now));
    assert!(is_late(&site(35, false, 400), ago(35, 1), now));
    assert!(!is_late(&site(7, false, 400), ago(6, 0), now));
    assert!(is_late(&site(7, false, 400), ago(8, 0), now));
    // Before any upload, from when the site was registered.
    assert!(!is_late(&site(35, false, 10), None, now));
    assert!(is_late(&site(35, false, 36), None, now));
    // A revoked site is not expected to upload.
    assert!(!is_late(&site(35, true, 400), ago(100, 0), now));
}
