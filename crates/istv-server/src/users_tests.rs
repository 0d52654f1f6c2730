//! Handler tests of user management over the API: every status each route
//! answers, what an org_admin may grant and change, CSRF with the session
//! cookie, and the audit entries (never a password or a token).

use crate::auth::tests::{bearer, config, fixture, get, send, sign_in, Fixture, PASSWORD};
use crate::test_support::session;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use istv_access::{AreaLevel, Profile, Role, Scope};
use istv_store::{AuditFilter, NewUser};
use serde_json::{json, Value};

const CITY_AND_BARKING: &str = "E09000001,E09000002";

/// The fixture plus `boss` (org_admin of VRU: City and Barking, ana's
/// profile), `wide` (a VRU analyst of all London at full detail) and
/// `other` (an analyst of BOR). Returns boss's token.
async fn with_managers() -> (Fixture, String) {
    let f = fixture(config()).await;
    f.store.add_org("BOR", "A borough").await.unwrap();
    let hash = istv_access::password::hash(PASSWORD).unwrap();
    let limited = Profile {
        max_resolution: 8,
        finest_area: AreaLevel::Ward,
        dimensions: Some(Profile::parse_dimensions("month,borough,ward,cell,sex").unwrap()),
    };
    let two = Scope::parse(CITY_AND_BARKING).unwrap();
    for (name, org, role, scope, profile) in [
        ("boss", "VRU", Role::OrgAdmin, &two, &limited),
        ("wide", "VRU", Role::Analyst, &Scope::London, &Profile::FULL),
        (
            "other",
            "BOR",
            Role::Analyst,
            &Scope::London,
            &Profile::FULL,
        ),
    ] {
        f.store
            .add_user(&NewUser {
                name,
                org,
                role,
                password_hash: &hash,
                scope,
                profile,
                sites: &[],
            })
            .await
            .unwrap();
    }
    let boss = f.store.issue_api_token("boss", "main", None).await.unwrap();
    (f, bearer(&boss))
}

fn post(path: &str, auth: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn post_raw(path: &str, auth: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::AUTHORIZATION, auth)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn delete(path: &str, auth: &str) -> Request<Body> {
    Request::delete(path)
        .header(header::AUTHORIZATION, auth)
        .body(Body::empty())
        .unwrap()
}

fn names(body: &Value) -> Vec<&str> {
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn listing_shows_the_callers_organisation_or_every_one_to_an_admin() {
    let (f, boss) = with_managers().await;
    let (status, _, body) = send(&f.app, get("/api/v1/users", Some(&boss))).await;
    assert_eq!(status, StatusCode::OK);
    // VRU: ana, boss, root, up, wide; not BOR's other.
    assert_eq!(names(&body), ["ana", "boss", "root", "up", "wide"]);
    let ana = &body["users"][0];
    assert_eq!(
        ana,
        &json!({
            "user": "ana", "org": "VRU", "role": "analyst", "scope": ["E09000001"],
            "profile": {"max_resolution": 8, "finest_area": "ward",
                        "dimensions": ["month", "cell", "borough", "ward", "sex"]},
            "sites": [], "disabled": false, "created_at": ana["created_at"],
        })
    );
    let (_, _, all) = send(&f.app, get("/api/v1/users", Some(&bearer(&f.admin)))).await;
    assert_eq!(names(&all), ["ana", "boss", "other", "root", "up", "wide"]);
    let (status, _, body) = send(&f.app, get("/api/v1/users", Some(&bearer(&f.analyst)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "the analyst role cannot manage users; an organisation's org_admin or an admin can"
    );
    let (status, _, _) = send(&f.app, get("/api/v1/users", Some(&bearer(&f.site)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(&f.app, get("/api/v1/users", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_org_admin_adds_users_within_its_own_limits() {
    let (f, boss) = with_managers().await;
    let add = |body: Value| send(&f.app, post("/api/v1/users", &boss, body));
    // Defaults: boss's own scope and profile, in boss's organisation.
    let (status, _, body) = add(json!({"name": "new1", "role": "analyst"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["org"], "VRU");
    assert_eq!(body["user"]["scope"], json!(["E09000001", "E09000002"]));
    assert_eq!(body["user"]["profile"]["max_resolution"], 8);
    let password = body["password"].as_str().unwrap().to_owned();
    assert_eq!(password.chars().count(), 20);
    // The new user signs in with it.
    assert_eq!(
        send(&f.app, sign_in("new1", &password)).await.0,
        StatusCode::OK
    );
    let (status, _, body) = add(json!({"name": "new1", "role": "analyst"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "user `new1` already exists");
    // Narrower is fine.
    let (status, _, body) = add(json!({
        "name": "narrow", "role": "org_admin", "boroughs": "E09000002",
        "max_resolution": 7, "finest_area": "borough", "dimensions": ["month"]
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["profile"]["dimensions"], json!(["month"]));
    // Wider is refused, naming the limit.
    for (asked, error) in [
        (
            json!({"name": "x", "role": "admin"}),
            "admin accounts are made and changed with the istv command only",
        ),
        (
            json!({"name": "x", "role": "analyst", "boroughs": "all"}),
            "you cannot grant borough all: it is outside your scope (E09000001,E09000002)",
        ),
        (
            json!({"name": "x", "role": "analyst", "boroughs": "E09000001,E09000003"}),
            "you cannot grant borough E09000003: it is outside your scope (E09000001,E09000002)",
        ),
        (
            json!({"name": "x", "role": "analyst", "max_resolution": 10}),
            "you cannot grant resolution 10: your profile allows 8",
        ),
        (
            json!({"name": "x", "role": "analyst", "finest_area": "lsoa"}),
            "you cannot grant lsoa figures: your profile allows ward",
        ),
        (
            json!({"name": "x", "role": "analyst", "dimensions": ["month", "age_band"]}),
            "you cannot grant dimension age_band: it is not in your profile",
        ),
        (
            json!({"name": "x", "role": "analyst", "org": "BOR"}),
            "you manage the users of organisation VRU only",
        ),
        (
            json!({"name": "x", "role": "uploader", "sites": ["RYJ01"]}),
            "site RYJ01 is not one your organisation's uploaders upload for; an admin adds the first uploader of a site",
        ),
    ] {
        let (status, _, body) = add(asked.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{asked}");
        assert_eq!(body["error"], error, "{asked}");
    }
    // An uploader for a site VRU's uploader already has.
    let (status, _, body) =
        add(json!({"name": "up2", "role": "uploader", "sites": ["rj122"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["sites"], json!(["RJ122"]));
    // Malformed requests.
    for asked in [
        json!({"name": "x", "role": "chief"}),
        json!({"name": "x", "role": "analyst", "boroughs": "E0900000X"}),
        json!({"name": "x", "role": "analyst", "max_resolution": 6}),
        json!({"name": "x", "role": "analyst", "finest_area": "street"}),
        json!({"name": "x", "role": "analyst", "dimensions": ["colour"]}),
        json!({"name": "x y", "role": "analyst"}),
        json!({"name": "x", "role": "analyst", "password": "chosen by me"}),
        json!({"name": "x", "role": "uploader"}),
        json!({"role": "analyst"}),
    ] {
        let (status, _, body) = add(asked.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{asked}: {body}");
    }
    let (status, _, _) = send(&f.app, post_raw("/api/v1/users", &boss, "{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // An admin adds to any organisation that exists, at any detail.
    let root = bearer(&f.admin);
    let (status, _, body) = send(
        &f.app,
        post(
            "/api/v1/users",
            &root,
            json!({"name": "b2", "org": "BOR", "role": "org_admin"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["user"]["scope"], "all");
    let (status, _, body) = send(
        &f.app,
        post(
            "/api/v1/users",
            &root,
            json!({"name": "b3", "org": "NOPE", "role": "analyst"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no organisation `NOPE`");
    let (status, _, _) = send(
        &f.app,
        post(
            "/api/v1/users",
            &bearer(&f.analyst),
            json!({"name": "z", "role": "analyst"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_org_admin_disables_resets_and_issues_tokens_for_its_users() {
    let (f, boss) = with_managers().await;
    let ana_token = bearer(&f.analyst);
    // ana (City, ana's profile) is within boss's limits.
    let (status, _, body) = send(&f.app, post_raw("/api/v1/users/ana/password", &boss, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], "ana");
    let password = body["password"].as_str().unwrap().to_owned();
    assert_eq!(
        send(&f.app, sign_in("ana", PASSWORD)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&f.app, sign_in("ana", &password)).await.0,
        StatusCode::OK
    );
    // A token for ana, shown once.
    let tokens = "/api/v1/users/ana/tokens";
    let (status, _, body) = send(
        &f.app,
        post(tokens, &boss, json!({"name": "laptop", "expires_days": 30})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let laptop = bearer(body["token"].as_str().unwrap());
    assert!(body["expires_at"].is_string());
    let (status, _, me) = send(&f.app, get("/api/v1/me", Some(&laptop))).await;
    assert_eq!((status, me["user"].as_str()), (StatusCode::OK, Some("ana")));
    let (status, _, _) = send(&f.app, post(tokens, &boss, json!({"name": "laptop"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) = send(&f.app, post(tokens, &boss, json!({"expires_days": 3}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        send(&f.app, delete("/api/v1/users/ana/tokens/laptop", &boss))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&f.app, get("/api/v1/me", Some(&laptop))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&f.app, delete("/api/v1/users/ana/tokens/laptop", &boss))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // Users it may not change: another organisation's (not found), an
    // admin, and one who sees more than boss.
    for (path, status, error) in [
        (
            "/api/v1/users/other/disable",
            StatusCode::NOT_FOUND,
            "no user `other` in your organisation",
        ),
        (
            "/api/v1/users/nobody/disable",
            StatusCode::NOT_FOUND,
            "no user `nobody` in your organisation",
        ),
        (
            "/api/v1/users/root/disable",
            StatusCode::FORBIDDEN,
            "admin accounts are made and changed with the istv command only",
        ),
        (
            "/api/v1/users/wide/password",
            StatusCode::FORBIDDEN,
            "you cannot grant borough all: it is outside your scope (E09000001,E09000002)",
        ),
        (
            "/api/v1/users/wide/tokens",
            StatusCode::FORBIDDEN,
            "you cannot grant borough all: it is outside your scope (E09000001,E09000002)",
        ),
    ] {
        let (got, _, body) = send(&f.app, post(path, &boss, json!({"name": "t"}))).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{path}"
        );
    }
    // Disabled: ana's tokens stop working.
    let (status, _, body) = send(&f.app, post_raw("/api/v1/users/ana/disable", &boss, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["disabled"], true);
    assert_eq!(
        send(&f.app, get("/api/v1/me", Some(&ana_token))).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The admin changes other organisations' users too.
    let (status, _, _) = send(
        &f.app,
        post_raw("/api/v1/users/other/disable", &bearer(&f.admin), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Others cannot.
    let (status, _, _) = send(
        &f.app,
        post_raw("/api/v1/users/wide/disable", &bearer(&f.uploader), ""),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cookie_requests_need_the_csrf_token_and_every_action_is_audited() {
    let (f, boss) = with_managers().await;
    let (cookie, csrf) = session(&f.app, "boss").await;
    let with_cookie = |csrf: Option<&str>| {
        let mut b = Request::post("/api/v1/users")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(c) = csrf {
            b = b.header("X-CSRF-Token", c);
        }
        b.body(Body::from(
            json!({"name": "c1", "role": "analyst"}).to_string(),
        ))
        .unwrap()
    };
    assert_eq!(
        send(&f.app, with_cookie(None)).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _, created) = send(&f.app, with_cookie(Some(&csrf))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, reset) = send(&f.app, post_raw("/api/v1/users/c1/password", &boss, "")).await;
    let (_, _, token) = send(
        &f.app,
        post("/api/v1/users/c1/tokens", &boss, json!({"name": "t"})),
    )
    .await;
    send(&f.app, get("/api/v1/users", Some(&boss))).await;
    send(&f.app, post_raw("/api/v1/users/wide/disable", &boss, "")).await;
    let audit = f.store.list_audit(&AuditFilter::default()).await.unwrap();
    let managed: Vec<(&str, &str, &str, Option<u64>, &str)> = audit
        .iter()
        .filter(|r| r.entry.action.starts_with("users "))
        .map(|r| {
            let e = &r.entry;
            (
                e.actor.as_str(),
                e.action.as_str(),
                e.route.as_deref().unwrap(),
                e.figures,
                e.status.as_str(),
            )
        })
        .collect();
    // The refused cookie request never reached the handler (403 CSRF).
    assert_eq!(
        managed,
        [
            ("boss", "users add", "/api/v1/users", None, "201"),
            (
                "boss",
                "users reset-password",
                "/api/v1/users/c1/password",
                None,
                "200"
            ),
            (
                "boss",
                "users token",
                "/api/v1/users/c1/tokens",
                None,
                "201"
            ),
            // VRU: ana, boss, c1, root, up, wide.
            ("boss", "users list", "/api/v1/users", Some(6), "200"),
            (
                "boss",
                "users disable",
                "/api/v1/users/wide/disable",
                None,
                "403"
            ),
        ]
    );
    for r in audit
        .iter()
        .filter(|r| r.entry.action.starts_with("users "))
    {
        assert_eq!(r.entry.organisation.as_deref(), Some("VRU"));
        let p = r.entry.parameters.as_deref().unwrap();
        for secret in [&created["password"], &reset["password"], &token["token"]] {
            assert!(!p.contains(secret.as_str().unwrap()), "{p}");
        }
    }
    let add = audit
        .iter()
        .find(|r| r.entry.action == "users add")
        .unwrap();
    let params: Value = serde_json::from_str(add.entry.parameters.as_deref().unwrap()).unwrap();
    assert_eq!(
        (params["name"].as_str(), params["password"].as_str()),
        (Some("c1"), Some("generated"))
    );
    let disable = audit
        .iter()
        .find(|r| r.entry.action == "users disable")
        .unwrap();
    assert_eq!(
        disable.entry.parameters.as_deref(),
        Some(r#"{"name":"wide"}"#)
    );
}
