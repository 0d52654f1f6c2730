//! `openapi.json` against the router: the same paths and methods, examples
//! valid under their schemas, and for every documented (path, method,
//! status) a request that gets exactly that status, with a body valid
//! under the status's schema.

use super::OPENAPI;
use crate::auth::tests::{bearer, fixture, get, send, sign_in, Fixture, PASSWORD};
use crate::test_support::session;
use crate::{PublicTier, ServerConfig};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn doc() -> Value {
    serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
}

/// The handler tests' configuration with the public tier on: the document
/// describes every route (`routes(true, true, true)`).
fn config() -> ServerConfig {
    ServerConfig {
        public_tier: Some(PublicTier::default()),
        ..crate::auth::tests::config()
    }
}

/// `path` with each parameter given a value of the right form (an unknown
/// upload id, a user, a token name, a month).
fn concrete(path: &str) -> String {
    path.replace("{id}", "01M83Q20VW5QVFGJSSZJF5XTMN")
        .replace("{name}", "ana")
        .replace("{token}", "main")
        .replace("{month}", "2024-01")
        .replace("{path}", "no-such-file.js")
}

/// The methods an OpenAPI path item may document that the router is probed
/// with.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A validator of `schema`, whose `$ref`s point into the document's
/// components.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let wrapped = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&wrapped)
        .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
}

/// `$ref`s to `#/components/...` followed, once.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("dangling reference {r}"))
        }
        None => v,
    }
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_path_is_routed() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let routed: BTreeSet<&str> = crate::routes(true, true, true)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(documented, routed);
    // Each path answers exactly the methods documented (405 for others).
    let f = fixture(config()).await;
    for path in &documented {
        let concrete = concrete(path);
        for method in METHODS {
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let status = send(&f.app, req).await.0;
            let is_documented = doc["paths"][path].get(method).is_some();
            assert_eq!(
                status != StatusCode::METHOD_NOT_ALLOWED,
                is_documented,
                "{method} {path} answered {status}"
            );
        }
    }
    // The document is served, to a caller with a credential.
    let (status, headers, served) = send(
        &f.app,
        get("/api/v1/openapi.json", Some(&bearer(&f.analyst))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(served, doc);
}

/// Every (path, method, status) the document names, with the response.
fn documented_statuses(doc: &Value) -> Vec<(String, String, u16, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let code = status
                    .parse()
                    .unwrap_or_else(|_| panic!("{method} {path}: status {status} is not a code"));
                out.push((path.clone(), method.clone(), code, resolve(doc, response)));
            }
        }
    }
    out
}

/// Every `example` under a media type, parameter or schema, with its
/// schema.
fn examples<'a>(v: &'a Value, out: &mut Vec<(&'a Value, &'a Value)>) {
    match v {
        Value::Object(map) => {
            if let (Some(schema), Some(example)) = (map.get("schema"), map.get("example")) {
                out.push((schema, example));
            }
            for child in map.values() {
                examples(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| examples(i, out)),
        _ => {}
    }
}

#[test]
fn documented_examples_validate_against_their_schemas() {
    let doc = doc();
    let mut found = Vec::new();
    examples(&doc, &mut found);
    // Every JSON body documented for a 2xx answer has an example.
    let mut missing = Vec::new();
    for (path, method, status, response) in documented_statuses(&doc) {
        for (media, content) in response["content"].as_object().into_iter().flatten() {
            if media.contains("json")
                && content.get("example").is_none()
                && path != "/api/v1/openapi.json"
            {
                missing.push(format!("{method} {path} {status} {media}"));
            }
        }
    }
    assert!(missing.is_empty(), "no example: {missing:?}");
    assert!(found.len() >= 30, "{} examples", found.len());
    for (schema, example) in &found {
        let v = validator(&doc, schema);
        let errors: Vec<String> = v.iter_errors(example).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "example {example} against {schema}: {errors:?}"
        );
    }
    // The check can fail: a receipt without its counts is refused.
    let receipt = validator(&doc, &json!({"$ref": "#/components/schemas/Receipt"}));
    assert!(!receipt.is_valid(&json!({"upload_id": "x", "site_code": "RJ122"})));
    let quality = validator(&doc, &json!({"$ref": "#/components/schemas/SiteQuality"}));
    let mut site = doc["paths"]["/api/v1/quality"]["get"]["responses"]["200"]["content"]
        ["application/json"]["example"]["sites"][0]
        .clone();
    assert!(quality.is_valid(&site));
    site["geocoding"][0]["method"] = json!("grid");
    assert!(!quality.is_valid(&site));
}

/// What a case needs beyond the shared fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Setup {
    /// The shared fixture.
    Shared,
    /// Its store closed: every store call fails.
    Closed,
    /// Not ready (shutting down).
    NotReady,
    /// One query a minute per user.
    RateOne,
    /// No query may wait for a turn.
    QueueZero,
    /// Bodies of at most 10 bytes.
    TinyBody,
    /// No upload slot per site.
    NoSlots,
}

impl Setup {
    async fn fixture(self) -> Fixture {
        let base = config();
        let config = match self {
            Setup::RateOne => ServerConfig {
                query_rate_per_minute: 1,
                ..base
            },
            Setup::QueueZero => ServerConfig {
                query_queue: 0,
                ..base
            },
            Setup::TinyBody => ServerConfig {
                max_body_bytes: 10,
                ..base
            },
            Setup::NoSlots => ServerConfig {
                per_token_concurrency: 0,
                ..base
            },
            _ => base,
        };
        let f = fixture(config).await;
        match self {
            Setup::Closed => f.store.close().await,
            Setup::NotReady => f.state.set_ready(false),
            _ => {}
        }
        f
    }
}

/// The setup of a documented (method, path, status).
fn setup(method: &str, path: &str, status: u16) -> Setup {
    let query = matches!(
        path,
        "/api/v1/aggregates" | "/api/v1/cells" | "/api/v1/areas"
    );
    match (method, path, status) {
        (_, _, 500) => Setup::Closed,
        ("post", "/api/v1/uploads", 503) | ("get", "/readyz", 503) => Setup::NotReady,
        ("post", "/api/v1/uploads", 413) => Setup::TinyBody,
        ("post", "/api/v1/uploads", 429) => Setup::NoSlots,
        (_, _, 429) if query => Setup::RateOne,
        (_, _, 503) if query => Setup::QueueZero,
        _ => Setup::Shared,
    }
}

fn with_auth(method: Method, uri: &str, token: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, bearer(token))
}

fn csv(token: &str, query: &str, content_type: &str, body: &str) -> Request<Body> {
    with_auth(Method::POST, &format!("/api/v1/uploads{query}"), token)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body.to_owned()))
        .unwrap()
}

const FEED: &str = "site_code,record_id,arrival_datetime,assault_datetime,assault_method,\
    assault_method_other,assault_location_type,assault_location_description,assault_postcode,\
    assault_latitude,assault_longitude,assault_easting,assault_northing,patient_age,patient_sex\n\
    RJ122,Z-1,,2024-03-01T23:15,sharp_object,,street,,,51.4682,-0.0937,,,19,male\n";

/// A finished upload of RJ122 with a receipt, made in the store.
async fn finished_upload(f: &Fixture) -> String {
    let id = f.store.begin_upload("RJ122", "csv").await.unwrap();
    let receipt = json!({"upload_id": id.to_string(), "site_code": "RJ122", "rows": 0, "accepted": 0,
        "rejected": 0, "duplicates": 0, "corrections": 0, "errors": [], "errors_not_shown": 0,
        "replaced_in_file": 0});
    f.store
        .finish_upload(
            &id,
            istv_store::Completion {
                rows: 0,
                rejected: 0,
                receipt: &receipt,
                errors: &[],
            },
        )
        .await
        .unwrap();
    id.to_string()
}

/// The request of a documented (method, path, status), sent after any
/// requests it needs first; `None` when there is no case for it.
async fn request(f: &Fixture, method: &str, path: &str, status: u16) -> Option<Request<Body>> {
    let (ana, root, up, site) = (&f.analyst, &f.admin, &f.uploader, &f.site);
    let unknown_id = "01M83Q20VW5QVFGJSSZJF5XTMN";
    let query_route = matches!(
        path,
        "/api/v1/aggregates" | "/api/v1/cells" | "/api/v1/areas"
    );
    let request = match (method, path, status) {
        // Every route that needs a credential: none given.
        (m, p, 401) if !(m == "post" && p == "/api/v1/session") => Request::builder()
            .method(m.to_uppercase().as_str())
            .uri(concrete(p))
            .body(Body::empty())
            .unwrap(),
        // A closed store: the credential cannot be checked.
        ("post", "/api/v1/session", 500) => sign_in("ana", PASSWORD),
        ("post", "/api/v1/uploads", 500) => csv(site, "", "text/csv", FEED),
        (m, p, 500) => with_auth(m.to_uppercase().parse().unwrap(), &concrete(p), root)
            .body(Body::empty())
            .unwrap(),

        ("post", "/api/v1/session", 200) => sign_in("ana", PASSWORD),
        ("post", "/api/v1/session", 400) => Request::post("/api/v1/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"user":"ana"}"#))
            .unwrap(),
        ("post", "/api/v1/session", 401) => sign_in("ana", "not the password"),
        ("post", "/api/v1/session", 429) => {
            for _ in 0..5 {
                send(&f.app, sign_in("nobody-at-all", "wrong password")).await;
            }
            sign_in("nobody-at-all", "wrong password")
        }
        ("delete", "/api/v1/session", 204) => {
            let (cookie, csrf) = session(&f.app, "ana").await;
            Request::delete("/api/v1/session")
                .header(header::COOKIE, cookie)
                .header(crate::CSRF_HEADER, csrf)
                .body(Body::empty())
                .unwrap()
        }
        ("delete", "/api/v1/session", 400) => with_auth(Method::DELETE, "/api/v1/session", ana)
            .body(Body::empty())
            .unwrap(),
        ("delete", "/api/v1/session", 403) => {
            let (cookie, _) = session(&f.app, "ana").await;
            Request::delete("/api/v1/session")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap()
        }
        ("get", "/api/v1/me", 200) => get("/api/v1/me", Some(&bearer(ana))),

        ("post", "/api/v1/uploads", 200) => csv(site, "", "text/csv", FEED),
        ("post", "/api/v1/uploads", 400) => csv(site, "?colour=red", "text/csv", FEED),
        ("post", "/api/v1/uploads", 403) => csv(ana, "", "text/csv", FEED),
        ("post", "/api/v1/uploads", 413) => csv(site, "", "text/csv", FEED),
        ("post", "/api/v1/uploads", 415) => csv(site, "", "image/png", FEED),
        ("post", "/api/v1/uploads", 422) => csv(site, "", "text/csv", "site_code,record_id\n"),
        ("post", "/api/v1/uploads", 429) => csv(site, "", "text/csv", FEED),
        ("post", "/api/v1/uploads", 503) => csv(site, "", "text/csv", FEED),
        ("get", "/api/v1/uploads", 200) => get("/api/v1/uploads?limit=5", Some(&bearer(up))),
        ("get", "/api/v1/uploads", 400) => get("/api/v1/uploads?limit=0", Some(&bearer(up))),
        ("get", "/api/v1/uploads", 403) => get("/api/v1/uploads?site=RYJ01", Some(&bearer(up))),
        ("get", "/api/v1/uploads", 404) => get("/api/v1/uploads?site=XX1", Some(&bearer(root))),
        ("get", "/api/v1/uploads/{id}", 200) => {
            let id = finished_upload(f).await;
            get(&format!("/api/v1/uploads/{id}"), Some(&bearer(site)))
        }
        ("get", "/api/v1/uploads/{id}", 403) => {
            get(&format!("/api/v1/uploads/{unknown_id}"), Some(&bearer(ana)))
        }
        ("get", "/api/v1/uploads/{id}", 404) => {
            get(&format!("/api/v1/uploads/{unknown_id}"), Some(&bearer(up)))
        }
        ("get", "/api/v1/uploads/{id}/errors", 200) => {
            let id = finished_upload(f).await;
            get(&format!("/api/v1/uploads/{id}/errors"), Some(&bearer(up)))
        }
        ("get", "/api/v1/uploads/{id}/errors", 400) => get(
            &format!("/api/v1/uploads/{unknown_id}/errors?offset=x"),
            Some(&bearer(up)),
        ),
        ("get", "/api/v1/uploads/{id}/errors", 403) => get(
            &format!("/api/v1/uploads/{unknown_id}/errors"),
            Some(&bearer(ana)),
        ),
        ("get", "/api/v1/uploads/{id}/errors", 404) => get(
            &format!("/api/v1/uploads/{unknown_id}/errors"),
            Some(&bearer(up)),
        ),

        ("get", p, 200) if query_route => get(&format!("{p}?{}", ok_query(p)), Some(&bearer(ana))),
        ("get", p, 400) if query_route => get(
            &format!("{p}?{}&colour=red", ok_query(p)),
            Some(&bearer(ana)),
        ),
        ("get", p, 403) if query_route => get(
            &format!("{p}?{}&borough=E09000002", ok_query(p)),
            Some(&bearer(ana)),
        ),
        ("get", p, 429) if query_route => {
            let first = get(&format!("{p}?{}", ok_query(p)), Some(&bearer(ana)));
            send(&f.app, first).await;
            get(&format!("{p}?{}", ok_query(p)), Some(&bearer(ana)))
        }
        ("get", p, 503) if query_route => get(&format!("{p}?{}", ok_query(p)), Some(&bearer(ana))),

        ("get", "/api/v1/saved-queries", 200) => get("/api/v1/saved-queries", Some(&bearer(ana))),
        ("get", "/api/v1/saved-queries", 403) => get("/api/v1/saved-queries", Some(&bearer(site))),
        ("post", "/api/v1/saved-queries", s @ (201 | 400 | 403)) => {
            let (token, body) = match s {
                201 => (
                    ana,
                    json!({"name": "Mine", "query": "group_by=month", "shared": true}),
                ),
                400 => (ana, json!({"name": "", "query": "group_by=month"})),
                _ => (site, json!({"name": "Mine", "query": "group_by=month"})),
            };
            with_auth(Method::POST, "/api/v1/saved-queries", token)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        }
        ("delete", "/api/v1/saved-queries/{id}", 204) => {
            let q = f
                .store
                .add_saved_query("ana", "gone", "month=2024-01", false)
                .await
                .unwrap();
            with_auth(
                Method::DELETE,
                &format!("/api/v1/saved-queries/{}", q.id),
                ana,
            )
            .body(Body::empty())
            .unwrap()
        }
        ("delete", "/api/v1/saved-queries/{id}", 403) => {
            with_auth(Method::DELETE, "/api/v1/saved-queries/01X", site)
                .body(Body::empty())
                .unwrap()
        }
        ("delete", "/api/v1/saved-queries/{id}", 404) => {
            with_auth(Method::DELETE, "/api/v1/saved-queries/01X", ana)
                .body(Body::empty())
                .unwrap()
        }
        ("get", "/api/v1/quality", 200) => get("/api/v1/quality", Some(&bearer(up))),
        ("get", "/api/v1/quality", 400) => get("/api/v1/quality?site=RJ122", Some(&bearer(up))),

        ("get", "/api/v1/users", 200) => get("/api/v1/users", Some(&bearer(root))),
        ("get", "/api/v1/users", 403) => get("/api/v1/users", Some(&bearer(ana))),
        ("post", "/api/v1/users", s) => {
            let (token, body) = match s {
                201 => (
                    root,
                    json!({"name": "bea", "role": "analyst", "boroughs": "E09000001"}),
                ),
                400 => (root, json!({"name": "x", "role": "chief"})),
                403 => (ana, json!({"name": "x", "role": "analyst"})),
                404 => (root, json!({"name": "x", "org": "NOPE", "role": "analyst"})),
                409 => (root, json!({"name": "ana", "role": "analyst"})),
                _ => return None,
            };
            json_body(Method::POST, "/api/v1/users", token, &body)
        }
        ("post", "/api/v1/users/{name}/disable" | "/api/v1/users/{name}/password", s) => {
            let (token, user) = match s {
                // A user made for the case: the fixture's own stay usable.
                200 => (root, spare_user(f, path).await),
                403 => (ana, "up".to_owned()),
                404 => (root, "nobody".to_owned()),
                _ => return None,
            };
            with_auth(Method::POST, &path.replace("{name}", &user), token)
                .body(Body::empty())
                .unwrap()
        }
        ("post", "/api/v1/users/{name}/tokens", s) => {
            let (token, user, body) = match s {
                201 => (root, "up", json!({"name": "laptop", "expires_days": 30})),
                400 => (root, "up", json!({"name": "my laptop"})),
                403 => (ana, "up", json!({"name": "laptop"})),
                404 => (root, "nobody", json!({"name": "laptop"})),
                409 => (root, "ana", json!({"name": "main"})),
                _ => return None,
            };
            json_body(
                Method::POST,
                &format!("/api/v1/users/{user}/tokens"),
                token,
                &body,
            )
        }
        ("delete", "/api/v1/users/{name}/tokens/{token}", s) => {
            let (token, user, name) = match s {
                204 => {
                    f.store.issue_api_token("up", "spare", None).await.unwrap();
                    (root, "up", "spare")
                }
                403 => (ana, "up", "main"),
                404 => (root, "ana", "nope"),
                _ => return None,
            };
            with_auth(
                Method::DELETE,
                &format!("/api/v1/users/{user}/tokens/{name}"),
                token,
            )
            .body(Body::empty())
            .unwrap()
        }

        ("get", "/api/v1/public/releases", 200) => {
            release_january(f).await;
            get("/api/v1/public/releases", None)
        }
        ("get", "/api/v1/public/releases/{month}", s) => {
            release_january(f).await;
            let month = match s {
                200 => "2024-01",
                400 => "2024-1",
                404 => "2023-12",
                _ => return None,
            };
            get(&format!("/api/v1/public/releases/{month}"), None)
        }
        ("get", "/api/v1/openapi.json", 200) => get("/api/v1/openapi.json", Some(&bearer(site))),
        ("get", "/", 200) => get("/", None),
        ("get", "/", 304) => Request::get("/")
            .header(header::IF_NONE_MATCH, crate::portal::etag_of("index.html"))
            .body(Body::empty())
            .unwrap(),
        ("get", "/assets/{path}", 200) => get(&crate::portal::script_path(), None),
        ("get", "/assets/{path}", 304) => {
            let script = crate::portal::script_path();
            Request::get(&script)
                .header(header::IF_NONE_MATCH, crate::portal::etag_of(&script[1..]))
                .body(Body::empty())
                .unwrap()
        }
        ("get", "/assets/{path}", 404) => get("/assets/no-such-file.js", None),
        ("get", "/healthz", 200) => get("/healthz", None),
        ("get", "/readyz", 200 | 503) => get("/readyz", None),
        ("get", "/metrics", 200) => get("/metrics", Some("Bearer scrape-secret")),
        ("get", "/metrics", 403) => get("/metrics", Some(&bearer(ana))),
        _ => return None,
    };
    Some(request)
}

/// A JSON request with a bearer token.
fn json_body(method: Method, uri: &str, token: &str, body: &Value) -> Request<Body> {
    with_auth(method, uri, token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// An analyst of the fixture's organisation added for one case (named
/// after the route's last segment), so that disabling it or resetting its
/// password leaves the fixture's users as they were.
async fn spare_user(f: &Fixture, path: &str) -> String {
    let name = format!("spare-{}", path.rsplit('/').next().unwrap());
    let hash = istv_access::password::hash(PASSWORD).unwrap();
    f.store
        .add_user(&istv_store::NewUser {
            name: &name,
            org: "VRU",
            role: istv_access::Role::Analyst,
            password_hash: &hash,
            scope: &istv_access::Scope::London,
            profile: &istv_access::Profile::FULL,
            sites: &[],
        })
        .await
        .unwrap();
    name
}

/// January 2024's public release (of the fixture's records, with real
/// noise), made once.
async fn release_january(f: &Fixture) {
    let month = istv_public::Month::parse("2024-01").unwrap();
    let mechanism = istv_public::DiscreteLaplace::new(1.0).unwrap();
    crate::public::release_month(
        &f.store,
        &[crate::auth::tests::CITY.to_owned()],
        month,
        &mechanism,
        &mut istv_public::OpenDp,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
}

/// A query the fixture's analyst may make on each query route.
fn ok_query(path: &str) -> &'static str {
    match path {
        "/api/v1/cells" => "resolution=8",
        "/api/v1/areas" => "level=borough",
        _ => "group_by=month",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_status_has_a_case_that_answers_it() {
    let doc = doc();
    let statuses = documented_statuses(&doc);
    let mut by_setup: BTreeMap<Setup, Vec<(String, String, u16, &Value)>> = BTreeMap::new();
    for (path, method, status, response) in statuses {
        by_setup
            .entry(setup(&method, &path, status))
            .or_default()
            .push((path, method, status, response));
    }
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    let mut answered = 0;
    for (setup, cases) in by_setup {
        let f = setup.fixture().await;
        for (path, method, status, response) in cases {
            let Some(req) = request(&f, &method, &path, status).await else {
                missing.push(format!("{method} {path} {status}"));
                continue;
            };
            let r = tower::ServiceExt::oneshot(f.app.clone(), req)
                .await
                .unwrap();
            let got = r.status().as_u16();
            let media = r
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap().trim().to_owned());
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 26).await.unwrap();
            if got != status {
                wrong.push(format!(
                    "{method} {path}: documented {status}, answered {got}: {}",
                    String::from_utf8_lossy(&bytes)
                ));
                continue;
            }
            answered += 1;
            // A JSON body matches the schema documented for it.
            let content = &response["content"];
            match media.as_deref() {
                Some(m) if m.contains("json") => {
                    let schema = content[m].get("schema").unwrap_or_else(|| {
                        panic!("{method} {path} {status}: {m} is not documented")
                    });
                    let body: Value = serde_json::from_slice(&bytes).unwrap();
                    let errors: Vec<String> = validator(&doc, schema)
                        .iter_errors(&body)
                        .map(|e| e.to_string())
                        .collect();
                    assert!(
                        errors.is_empty(),
                        "{method} {path} {status}: {body} {errors:?}"
                    );
                }
                Some(m) if content.is_object() => assert!(
                    content.get(m).is_some(),
                    "{method} {path} {status}: {m} is not documented"
                ),
                _ => {}
            }
        }
        f.store.close().await;
    }
    assert!(missing.is_empty(), "no case for: {missing:#?}");
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(answered >= 120, "{answered} cases");
}
