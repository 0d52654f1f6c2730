//! Handler tests over the router: every status the credential, scope,
//! profile, CSRF and throttle rules answer, and the figures a borough
//! analyst gets.

use crate::test_support::event;
use crate::{router, AppState, ServerConfig};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use chrono::{TimeDelta, Utc};
use istv_access::{AreaLevel, Profile, Role, Scope};
use istv_core::AssaultMethod;
use istv_geo::{Geocoder, GeocoderConfig};
use istv_store::{NewUser, Store};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

pub(crate) const CITY: &str = "E09000001";
const BARKING: &str = "E09000002";
pub(crate) const PASSWORD: &str = "a long test password";

pub(crate) struct Fixture {
    pub(crate) app: Router,
    pub(crate) store: Store,
    /// The state behind `app` (to mark it not ready).
    pub(crate) state: AppState,
    /// Tokens by user: analyst (City only, resolution 8, no age band),
    /// admin, uploader (RJ122), the RJ122 site token, an expired and a
    /// revoked analyst token.
    pub(crate) analyst: String,
    pub(crate) admin: String,
    pub(crate) uploader: String,
    pub(crate) site: String,
    pub(crate) expired: String,
    pub(crate) revoked: String,
}

pub(crate) async fn fixture(config: ServerConfig) -> Fixture {
    fixture_at("sqlite::memory:", config).await
}

/// [`fixture`] on the store at `url`.
pub(crate) async fn fixture_at(url: &str, config: ServerConfig) -> Fixture {
    let store = Store::connect(url).await.unwrap();
    store
        .add_org("VRU", "Violence Reduction Unit")
        .await
        .unwrap();
    let site = store.add_site("RJ122", "King's").await.unwrap();
    store.add_site("RYJ01", "St Mary's").await.unwrap();
    let hash = istv_access::password::hash(PASSWORD).unwrap();
    let city = Scope::parse(CITY).unwrap();
    let limited = Profile {
        max_resolution: 8,
        finest_area: AreaLevel::Ward,
        dimensions: Some(Profile::parse_dimensions("month,borough,ward,cell,sex").unwrap()),
    };
    let sites = ["RJ122".to_string()];
    for (name, role, scope, profile, sites) in [
        ("ana", Role::Analyst, &city, &limited, &[][..]),
        ("root", Role::Admin, &Scope::London, &Profile::FULL, &[][..]),
        (
            "up",
            Role::Uploader,
            &Scope::London,
            &Profile::FULL,
            &sites[..],
        ),
    ] {
        store
            .add_user(&NewUser {
                name,
                org: "VRU",
                role,
                password_hash: &hash,
                scope,
                profile,
                sites,
            })
            .await
            .unwrap();
    }
    let token = |user: &'static str, name: &'static str, expires| {
        let store = store.clone();
        async move { store.issue_api_token(user, name, expires).await.unwrap() }
    };
    let analyst = token("ana", "main", None).await;
    let expired = token("ana", "old", Some(Utc::now() - TimeDelta::seconds(1))).await;
    let revoked = token("ana", "lost", None).await;
    store.revoke_api_token("ana", "lost").await.unwrap();
    let admin = token("root", "main", None).await;
    let uploader = token("up", "main", None).await;
    // 6 City records (5 in January, 1 in February), 2 in Barking.
    let upload = store.begin_upload("RJ122", "csv").await.unwrap();
    let mut events = Vec::new();
    let body = AssaultMethod::BodyPart;
    for (i, day) in ["01", "02", "03", "04", "05"].iter().enumerate() {
        events.push(event(
            &format!("c{i}"),
            &format!("2024-01-{day}"),
            Some(CITY),
            body,
        ));
    }
    events.push(event("c5", "2024-02-01", Some(CITY), body));
    events.push(event("b0", "2024-01-07", Some(BARKING), body));
    events.push(event("b1", "2024-01-08", Some(BARKING), body));
    store.apply_batch(&upload, &events).await.unwrap();
    let geocoder = Arc::new(Geocoder::new(GeocoderConfig::default()));
    let state = AppState::new(store.clone(), geocoder, config);
    state.set_ready(true);
    Fixture {
        app: router(state.clone()),
        state,
        store,
        analyst,
        admin,
        uploader,
        site,
        expired,
        revoked,
    }
}

pub(crate) fn config() -> ServerConfig {
    ServerConfig {
        // Exact counts: these tests are about who sees what.
        suppress_below: 0,
        max_perturbation: 0,
        metrics_token: Some("scrape-secret".into()),
        ..ServerConfig::default()
    }
}

pub(crate) async fn send(
    app: &Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let r = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

pub(crate) fn get(path: &str, auth: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::empty()).unwrap()
}

pub(crate) fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[tokio::test]
async fn every_endpoint_but_health_needs_a_credential() {
    let f = fixture(config()).await;
    for path in [
        "/api/v1/aggregates",
        "/api/v1/cells?resolution=8",
        "/api/v1/areas?level=borough",
        "/api/v1/me",
        "/api/v1/uploads/01M83Q20VW5QVFGJSSZJF5XTMN",
        "/api/v1/uploads/01M83Q20VW5QVFGJSSZJF5XTMN/errors",
        "/metrics",
    ] {
        let forged = "0".repeat(64);
        for auth in [
            None,
            Some(bearer(&f.expired)),
            Some(bearer(&f.revoked)),
            Some(bearer(&forged)),
            Some("Basic YW5hOnB3".to_string()),
        ] {
            let (status, headers, body) = send(&f.app, get(path, auth.as_deref())).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {auth:?}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            assert!(body["error"].is_string());
        }
    }
    let (status, _, body) =
        send(&f.app, get("/api/v1/aggregates", Some(&bearer(&f.expired)))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "the token is unknown, expired or revoked");
    let upload = Request::post("/api/v1/uploads")
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(send(&f.app, upload).await.0, StatusCode::UNAUTHORIZED);
    for path in ["/healthz", "/readyz"] {
        assert_eq!(send(&f.app, get(path, None)).await.0, StatusCode::OK);
    }
    // The scheme in any case.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let auth = format!("{scheme} {}", f.analyst);
        assert_eq!(
            send(&f.app, get("/api/v1/me", Some(&auth))).await.0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_borough_analyst_sees_only_its_borough_within_its_profile() {
    let f = fixture(config()).await;
    let ana = bearer(&f.analyst);
    let q = |path: &str| send(&f.app, get(path, Some(&ana)));
    let (status, _, body) = q("/api/v1/aggregates?group_by=borough").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"rows": [{"borough": CITY, "count": 6}]}));
    let (_, _, body) = q("/api/v1/aggregates?group_by=month").await;
    assert_eq!(
        body,
        json!({"rows": [{"month": "2024-01", "count": 5}, {"month": "2024-02", "count": 1}]})
    );
    let (_, _, body) = q("/api/v1/aggregates").await;
    assert_eq!(body, json!({"rows": [{"count": 6}]}));
    // The admin sees everything.
    let (_, _, body) = send(
        &f.app,
        get(
            "/api/v1/aggregates?group_by=borough",
            Some(&bearer(&f.admin)),
        ),
    )
    .await;
    assert_eq!(
        body,
        json!({"rows": [{"borough": CITY, "count": 6}, {"borough": BARKING, "count": 2}]})
    );
    for (path, error) in [
        (
            "/api/v1/aggregates?borough=E09000002",
            "borough E09000002 is outside your scope (E09000001)",
        ),
        (
            "/api/v1/aggregates?group_by=age_band",
            "dimension age_band is not in your profile",
        ),
        (
            "/api/v1/cells?resolution=10",
            "resolution 10 is finer than your profile allows (8)",
        ),
        (
            "/api/v1/areas?level=lsoa",
            "dimension lsoa is not in your profile",
        ),
    ] {
        let (status, _, body) = q(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(body["error"], error, "{path}");
    }
    let (status, _, body) = q("/api/v1/cells?resolution=8").await;
    assert_eq!(status, StatusCode::OK);
    // The City's records have no cell: all counted as location unknown.
    assert_eq!(body["location_unknown"]["count"], 6);
    let (status, _, body) = q("/api/v1/areas?level=borough").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["location_unknown"]["count"], 0);
    // Uploaders and site tokens do not query.
    for (token, error) in [
        (&f.uploader, "the uploader role cannot query figures"),
        (
            &f.site,
            "a site upload token can only upload and read its own site's receipts; use a user's token to query",
        ),
    ] {
        let (status, _, body) =
            send(&f.app, get("/api/v1/aggregates", Some(&bearer(token)))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"], error);
    }
}

#[tokio::test]
async fn me_names_the_caller_and_its_limits() {
    let f = fixture(config()).await;
    let (status, _, body) = send(&f.app, get("/api/v1/me", Some(&bearer(&f.analyst)))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "kind": "user", "user": "ana", "org": "VRU", "role": "analyst",
            "scope": [CITY],
            "profile": {"max_resolution": 8, "finest_area": "ward",
                        "dimensions": ["month", "cell", "borough", "ward", "sex"]},
            "sites": [], "credential": "token",
        })
    );
    let (_, _, body) = send(&f.app, get("/api/v1/me", Some(&bearer(&f.site)))).await;
    assert_eq!(
        body,
        json!({"kind": "site", "site": "RJ122", "credential": "token"})
    );
    let (_, _, body) = send(&f.app, get("/api/v1/me", Some(&bearer(&f.admin)))).await;
    assert_eq!(body["scope"], "all");
    assert_eq!(body["profile"]["dimensions"], Value::Null);
}

#[tokio::test]
async fn uploads_and_receipts_follow_the_role_and_site() {
    let f = fixture(config()).await;
    let post = |token: &str, query: &str| {
        Request::post(format!("/api/v1/uploads{query}"))
            .header(header::AUTHORIZATION, bearer(token))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from("site_code,record_id\n"))
            .unwrap()
    };
    let (status, _, body) = send(&f.app, post(&f.analyst, "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "the analyst role cannot upload; uploads need an uploader account or a site token"
    );
    let (status, _, body) = send(&f.app, post(&f.uploader, "?site=RYJ01")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "site RYJ01 is not one of yours (RJ122)");
    let (status, _, body) = send(&f.app, post(&f.site, "?site=RYJ01")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "site RYJ01 is not one of yours (RJ122)");
    // The uploader's own site: the upload runs (and is refused as a feed).
    let (status, _, _) = send(&f.app, post(&f.uploader, "")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Receipts: the site's uploader, its site token and the admin only.
    let other = f.store.begin_upload("RYJ01", "csv").await.unwrap();
    let mine = f.store.begin_upload("RJ122", "csv").await.unwrap();
    for id in [&mine, &other] {
        let path = format!("/api/v1/uploads/{id}/errors");
        let (status, _, body) = send(&f.app, get(&path, Some(&bearer(&f.analyst)))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body["error"],
            "the analyst role cannot read upload receipts"
        );
    }
    for token in [&f.uploader, &f.site, &f.admin] {
        let path = format!("/api/v1/uploads/{mine}/errors");
        assert_eq!(
            send(&f.app, get(&path, Some(&bearer(token)))).await.0,
            StatusCode::OK
        );
    }
    for token in [&f.uploader, &f.site] {
        let path = format!("/api/v1/uploads/{other}/errors");
        assert_eq!(
            send(&f.app, get(&path, Some(&bearer(token)))).await.0,
            StatusCode::NOT_FOUND
        );
    }
    let path = format!("/api/v1/uploads/{other}/errors");
    assert_eq!(
        send(&f.app, get(&path, Some(&bearer(&f.admin)))).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_take_the_scrape_token_or_an_admin() {
    let f = fixture(config()).await;
    assert_eq!(
        send(&f.app, get("/metrics", Some("Bearer scrape-secret")))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(&f.app, get("/metrics", Some(&bearer(&f.admin))))
            .await
            .0,
        StatusCode::OK
    );
    let (status, _, body) = send(&f.app, get("/metrics", Some(&bearer(&f.analyst)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "metrics need the scrape token or an admin's credential"
    );
    assert_eq!(
        send(&f.app, get("/metrics", Some("Bearer scrape-secreT")))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // On a listener of its own, the main router has no /metrics.
    let g = fixture(ServerConfig {
        metrics_separate: true,
        ..config()
    })
    .await;
    assert_eq!(
        send(&g.app, get("/metrics", Some(&bearer(&g.admin))))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

/// A sign-in from an address of its own, so that only the user's
/// throttle counts (see the per-address test).
pub(crate) fn sign_in(user: &str, password: &str) -> Request<Body> {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let ip = [192, 0, 2, NEXT.fetch_add(1, Ordering::Relaxed)];
    let mut r = Request::post("/api/v1/session")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"user": user, "password": password}).to_string(),
        ))
        .unwrap();
    r.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            ip, 40000,
        ))));
    r
}

#[tokio::test]
async fn sessions_sign_in_carry_csrf_and_sign_out() {
    let f = fixture(config()).await;
    let (status, headers, body) = send(&f.app, sign_in("ana", PASSWORD)).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    assert!(pair.starts_with("istv_session=") && pair.len() == 13 + 64);
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(body["user"], "ana");
    assert_eq!(body["credential"], "session");
    // The cookie reads.
    let with_cookie = |method: &str, path: &str, csrf: Option<&str>| {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, format!("theme=dark; {pair}"));
        if let Some(c) = csrf {
            b = b.header("X-CSRF-Token", c);
        }
        b.body(Body::empty()).unwrap()
    };
    let (status, _, body) = send(&f.app, with_cookie("GET", "/api/v1/aggregates", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"rows": [{"count": 6}]}));
    let (_, _, me) = send(&f.app, with_cookie("GET", "/api/v1/me", None)).await;
    assert_eq!(me["credential"], "session");
    // Changing something with the cookie needs the CSRF token.
    for wrong in [None, Some("0000"), Some(pair.as_str())] {
        let (status, _, body) = send(&f.app, with_cookie("DELETE", "/api/v1/session", wrong)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{wrong:?}");
        assert!(body["error"]
            .as_str()
            .unwrap()
            .starts_with("missing or wrong X-CSRF-Token"));
    }
    let (status, _, _) = send(&f.app, with_cookie("POST", "/api/v1/uploads", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = send(
        &f.app,
        with_cookie("DELETE", "/api/v1/session", Some(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // Signed out: the cookie no longer works.
    let (status, _, body) = send(&f.app, with_cookie("GET", "/api/v1/me", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "the session has ended; sign in again");
    // Signing out with a token is not a session.
    let r = Request::delete("/api/v1/session")
        .header(header::AUTHORIZATION, bearer(&f.analyst))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&f.app, r).await.0, StatusCode::BAD_REQUEST);
    // Secure under TLS.
    let g = fixture(ServerConfig {
        secure_cookies: true,
        ..config()
    })
    .await;
    let (_, headers, _) = send(&g.app, sign_in("ana", PASSWORD)).await;
    assert!(headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .ends_with("; Secure"));
    // Served over TLS by istv itself: Secure without the flag.
    let t = fixture(ServerConfig {
        tls: true,
        ..config()
    })
    .await;
    let (_, headers, _) = send(&t.app, sign_in("ana", PASSWORD)).await;
    assert!(headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .ends_with("; Secure"));
}

#[tokio::test]
async fn failed_sign_ins_look_alike_and_are_throttled() {
    let f = fixture(config()).await;
    let (s1, _, wrong) = send(&f.app, sign_in("ana", "not the password")).await;
    let (s2, _, unknown) = send(&f.app, sign_in("nobody", "not the password")).await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(wrong, json!({"error": "wrong user name or password"}));
    assert_eq!(unknown, wrong);
    f.store.disable_user("up").await.unwrap();
    let (s3, _, disabled) = send(&f.app, sign_in("up", PASSWORD)).await;
    assert_eq!((s3, disabled), (StatusCode::UNAUTHORIZED, wrong.clone()));
    // Per user: 5 failures lock the name, even with the right password.
    for _ in 0..4 {
        send(&f.app, sign_in("root", "wrong password!")).await;
    }
    assert_eq!(
        send(&f.app, sign_in("root", PASSWORD)).await.0,
        StatusCode::OK
    );
    for _ in 0..5 {
        send(&f.app, sign_in("root", "wrong password!")).await;
    }
    let (status, headers, body) = send(&f.app, sign_in("root", PASSWORD)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry), "{retry}");
    assert_eq!(
        body["error"],
        "too many failed sign-ins; wait before trying again"
    );
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_client_address() {
    let f = fixture(config()).await;
    let from = |user: &str, password: &str, ip: [u8; 4]| {
        let mut r = sign_in(user, password);
        r.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                ip, 40000,
            ))));
        r
    };
    // Five names tried from one address lock the address, not the names.
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        assert_eq!(
            send(&f.app, from(name, "guess guess guess", [10, 0, 0, 1]))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, headers, _) = send(&f.app, from("ana", PASSWORD, [10, 0, 0, 1])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(
        send(&f.app, from("ana", PASSWORD, [10, 0, 0, 2])).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn queries_past_the_users_rate_get_429() {
    let f = fixture(ServerConfig {
        query_rate_per_minute: 3,
        ..config()
    })
    .await;
    for _ in 0..3 {
        let r = get("/api/v1/aggregates", Some(&bearer(&f.analyst)));
        assert_eq!(send(&f.app, r).await.0, StatusCode::OK);
    }
    let (status, headers, body) = send(
        &f.app,
        get("/api/v1/cells?resolution=8", Some(&bearer(&f.analyst))),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "20");
    assert_eq!(
        body["error"],
        "more than 3 queries a minute; wait before the next"
    );
    // Another user has a rate of their own.
    let r = get("/api/v1/aggregates", Some(&bearer(&f.admin)));
    assert_eq!(send(&f.app, r).await.0, StatusCode::OK);
}

#[tokio::test]
async fn queries_past_the_organisations_rate_get_429() {
    // 3 a user, 4 an organisation: ana (VRU) 3, then bob (VRU) 1 reach
    // VRU's 4 while each is within their own 3.
    let f = fixture(ServerConfig {
        query_rate_per_minute: 3,
        query_rate_per_org_per_minute: 4,
        ..config()
    })
    .await;
    f.store.add_org("BOR", "A borough").await.unwrap();
    let hash = istv_access::password::hash(PASSWORD).unwrap();
    for (name, org) in [("bob", "VRU"), ("cara", "BOR")] {
        f.store
            .add_user(&NewUser {
                name,
                org,
                role: Role::Analyst,
                password_hash: &hash,
                scope: &Scope::London,
                profile: &Profile::FULL,
                sites: &[],
            })
            .await
            .unwrap();
    }
    let bob = bearer(&f.store.issue_api_token("bob", "main", None).await.unwrap());
    let cara = bearer(&f.store.issue_api_token("cara", "main", None).await.unwrap());
    let ana = bearer(&f.analyst);
    let status = |auth: &str| {
        let app = f.app.clone();
        let r = get("/api/v1/aggregates", Some(auth));
        async move { send(&app, r).await }
    };
    for _ in 0..3 {
        assert_eq!(status(&ana).await.0, StatusCode::OK);
    }
    assert_eq!(status(&bob).await.0, StatusCode::OK);
    // VRU's 4 are taken: bob, within his own 3, is refused for VRU.
    let (code, headers, body) = status(&bob).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    // 4 a minute: the next turn in 15 s.
    assert_eq!(headers[header::RETRY_AFTER], "15");
    assert_eq!(
        body["error"],
        "more than 4 queries a minute by organisation VRU together; wait before the next"
    );
    // The admin of VRU too; ana meets her own limit first.
    let (code, _, body) = status(&bearer(&f.admin)).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert!(body["error"].as_str().unwrap().contains("organisation VRU"));
    let (code, headers, body) = status(&ana).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "20");
    assert_eq!(
        body["error"],
        "more than 3 queries a minute; wait before the next"
    );
    // Another organisation is unaffected: cara has her own 3.
    for _ in 0..3 {
        assert_eq!(status(&cara).await.0, StatusCode::OK);
    }
    assert_eq!(status(&cara).await.0, StatusCode::TOO_MANY_REQUESTS);
    // Every refusal is audited as a query answered 429: bob 1, root 1,
    // ana 1, cara 1.
    let audit = f
        .store
        .list_audit(&istv_store::AuditFilter::default())
        .await
        .unwrap();
    let refused: Vec<(&str, Option<&str>)> = audit
        .iter()
        .filter(|r| r.entry.status == "429")
        .map(|r| (r.entry.actor.as_str(), r.entry.organisation.as_deref()))
        .collect();
    assert_eq!(
        refused,
        vec![
            ("bob", Some("VRU")),
            ("root", Some("VRU")),
            ("ana", Some("VRU")),
            ("cara", Some("BOR")),
        ]
    );
    assert!(audit
        .iter()
        .filter(|r| r.entry.status == "429")
        .all(|r| r.entry.action == "query"));
}
