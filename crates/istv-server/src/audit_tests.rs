//! Handler tests of the audit entries: every query, download, sign-in,
//! sign-out and upload leaves one with the right fields, and an answer
//! whose entry cannot be stored is withheld.

use crate::auth::tests::{bearer, config, fixture, fixture_at, get, send, sign_in, PASSWORD};
use crate::test_support::session;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use istv_store::{AuditEntry, AuditFilter, Store};
use serde_json::{json, Value};

async fn entries(store: &Store) -> Vec<AuditEntry> {
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=all.len() as u64).collect::<Vec<_>>()
    );
    assert!(store.verify_audit().await.unwrap().is_ok());
    all.into_iter().map(|r| r.entry).collect()
}

fn entry(
    actor: &str,
    action: &str,
    route: &str,
    parameters: Option<&str>,
    figures: Option<u64>,
    status: &str,
) -> AuditEntry {
    AuditEntry {
        actor: actor.into(),
        organisation: Some("VRU".into()),
        action: action.into(),
        route: Some(route.into()),
        parameters: parameters.map(str::to_owned),
        figures,
        status: status.into(),
    }
}

#[tokio::test]
async fn queries_and_downloads_are_recorded_with_their_figures() {
    let f = fixture(config()).await;
    let ana = bearer(&f.analyst);
    let root = bearer(&f.admin);
    for (path, auth, status) in [
        // City only: January and February.
        ("/api/v1/aggregates?group_by=month", &ana, StatusCode::OK),
        (
            "/api/v1/aggregates?group_by=month&format=csv",
            &ana,
            StatusCode::OK,
        ),
        // No record has a cell: no feature, only location_unknown.
        ("/api/v1/cells?resolution=8", &ana, StatusCode::OK),
        (
            "/api/v1/aggregates?group_by=age_band",
            &ana,
            StatusCode::FORBIDDEN,
        ),
        // City and Barking.
        ("/api/v1/aggregates?group_by=borough", &root, StatusCode::OK),
        // Percent-encoded, still CSV: a download.
        ("/api/v1/aggregates?format=%63sv", &root, StatusCode::OK),
        (
            "/api/v1/aggregates?group_by=nothing",
            &root,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            send(&f.app, get(path, Some(auth))).await.0,
            status,
            "{path}"
        );
    }
    // A credential that does not authenticate reaches no handler: no entry.
    let forged = bearer(&"0".repeat(64));
    assert_eq!(
        send(&f.app, get("/api/v1/aggregates", Some(&forged)))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let route = "/api/v1/aggregates";
    assert_eq!(
        entries(&f.store).await,
        [
            entry(
                "ana",
                "query",
                route,
                Some("group_by=month"),
                Some(2),
                "200"
            ),
            entry(
                "ana",
                "download",
                route,
                Some("group_by=month&format=csv"),
                Some(2),
                "200"
            ),
            entry(
                "ana",
                "query",
                "/api/v1/cells",
                Some("resolution=8"),
                Some(1),
                "200"
            ),
            entry(
                "ana",
                "query",
                route,
                Some("group_by=age_band"),
                None,
                "403"
            ),
            entry(
                "root",
                "query",
                route,
                Some("group_by=borough"),
                Some(2),
                "200"
            ),
            entry(
                "root",
                "download",
                route,
                Some("format=%63sv"),
                Some(1),
                "200"
            ),
            entry(
                "root",
                "query",
                route,
                Some("group_by=nothing"),
                None,
                "400"
            ),
        ]
    );
}

#[tokio::test]
async fn sign_ins_failed_sign_ins_and_sign_outs_are_recorded_without_passwords() {
    let f = fixture(config()).await;
    let (pair, csrf) = session(&f.app, "ana").await;
    let wrong = "not the password at all";
    assert_eq!(
        send(&f.app, sign_in("ana", wrong)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&f.app, sign_in("nobody", PASSWORD)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let out = Request::delete("/api/v1/session")
        .header(header::COOKIE, &pair)
        .header("X-CSRF-Token", &csrf)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&f.app, out).await.0, StatusCode::NO_CONTENT);
    // Signing out with a token has no session to end: recorded as refused.
    let token_out = Request::delete("/api/v1/session")
        .header(header::AUTHORIZATION, bearer(&f.analyst))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&f.app, token_out).await.0, StatusCode::BAD_REQUEST);

    let got = entries(&f.store).await;
    assert_eq!(got.len(), 5);
    let route = "/api/v1/session";
    let strip = |e: &AuditEntry| AuditEntry {
        parameters: None,
        ..e.clone()
    };
    let anonymous = |status: &str| AuditEntry {
        organisation: None,
        ..entry("anonymous", "sign_in_failed", route, None, None, status)
    };
    assert_eq!(
        got.iter().map(strip).collect::<Vec<_>>(),
        [
            entry("ana", "sign_in", route, None, None, "200"),
            anonymous("401"),
            anonymous("401"),
            entry("ana", "sign_out", route, None, None, "204"),
            entry("ana", "sign_out", route, None, None, "400"),
        ]
    );
    // The sign-ins name the user tried and the client, never the password.
    for (e, user) in got[..3].iter().zip(["ana", "ana", "nobody"]) {
        let p: Value = serde_json::from_str(e.parameters.as_deref().unwrap()).unwrap();
        assert_eq!(p["user"], user);
        assert!(p["client"].as_str().unwrap().starts_with("192.0.2."), "{p}");
        assert_eq!(p.as_object().unwrap().len(), 2);
    }
    for e in &got {
        let text = format!("{e:?}");
        assert!(!text.contains(PASSWORD) && !text.contains(wrong) && !text.contains(&csrf));
        assert!(!text.contains(&pair["istv_session=".len()..]));
    }
}

#[tokio::test]
async fn uploads_are_recorded_with_their_receipt_and_counts() {
    let f = fixture(config()).await;
    let header_row = "site_code,record_id,arrival_datetime,assault_datetime,assault_method,\
        assault_method_other,assault_location_type,assault_location_description,assault_postcode,\
        assault_latitude,assault_longitude,assault_easting,assault_northing,patient_age,patient_sex";
    // One valid row, one with an unknown method.
    let feed = format!(
        "{header_row}\n\
         RJ122,A-1,2024-03-02T00:40,2024-03-01T23:15,sharp_object,,street,,,51.4682,-0.0937,,,19,male\n\
         RJ122,A-2,2024-03-02T00:40,2024-03-01T23:15,spoon,,street,,,51.4682,-0.0937,,,19,male\n"
    );
    let post = |token: &str, query: &str, body: String| {
        Request::post(format!("/api/v1/uploads{query}"))
            .header(header::AUTHORIZATION, bearer(token))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(body))
            .unwrap()
    };
    let (status, _, receipt) = send(&f.app, post(&f.site, "", feed.clone())).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        (&receipt["rows"], &receipt["accepted"], &receipt["rejected"]),
        (&json!(2), &json!(1), &json!(1))
    );
    let id = receipt["upload_id"].as_str().unwrap().to_owned();
    let (status, _, _) = send(&f.app, post(&f.uploader, "?site=RYJ01", feed)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let got = entries(&f.store).await;
    let route = "/api/v1/uploads";
    let site_entry = AuditEntry {
        organisation: None,
        ..entry("site:RJ122", "upload", route, None, None, "200")
    };
    assert_eq!(
        got.iter()
            .map(|e| AuditEntry {
                parameters: None,
                ..e.clone()
            })
            .collect::<Vec<_>>(),
        [site_entry, entry("up", "upload", route, None, None, "403")]
    );
    let params: Vec<Value> = got
        .iter()
        .map(|e| serde_json::from_str(e.parameters.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(
        params,
        [
            json!({"query": null, "receipt": id, "site": "RJ122", "rows": 2, "accepted": 1, "rejected": 1}),
            json!({"query": "site=RYJ01"}),
        ]
    );
    // No record content in the log.
    for e in &got {
        assert!(!format!("{e:?}").contains("A-1"));
    }
}

#[tokio::test]
async fn an_answer_whose_entry_cannot_be_stored_is_withheld() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("istv.db").display());
    let f = fixture_at(&url, config()).await;
    let ana = bearer(&f.analyst);
    assert_eq!(
        send(&f.app, get("/api/v1/aggregates", Some(&ana))).await.0,
        StatusCode::OK
    );
    // Every later append fails, as with a full disk.
    {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER audit_log_full BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        )
        .execute(&mut db)
        .await
        .unwrap();
    }
    let (status, _, body) = send(&f.app, get("/api/v1/aggregates", Some(&ana))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.get("rows").is_none(), "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("internal error; the service log has the detail"));
    let (status, headers, _) = send(&f.app, sign_in("ana", PASSWORD)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(headers.get(header::SET_COOKIE).is_none());
    // Only the first query was recorded.
    assert_eq!(entries(&f.store).await.len(), 1);
}
