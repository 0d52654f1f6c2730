//! Handler tests of saved queries: who sees which, the limits on name and
//! query, who may delete, CSRF with the cookie, and the audit entries.

use crate::auth::tests::{bearer, config, fixture, get, send};
use crate::test_support::session;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use istv_store::AuditFilter;
use serde_json::{json, Value};

fn with(method: Method, path: &str, token: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, bearer(token));
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

fn save(token: &str, body: Value) -> Request<Body> {
    with(Method::POST, "/api/v1/saved-queries", token, Some(body))
}

fn names(list: &Value) -> Vec<&str> {
    list["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn saved_queries_are_listed_saved_and_deleted_by_their_owner() {
    let f = fixture(config()).await;
    let (status, _, mine) = send(
        &f.app,
        save(
            &f.analyst,
            json!({"name": " Mine ", "query": "group_by=month"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(mine["name"], "Mine");
    assert_eq!(mine["query"], "group_by=month");
    assert_eq!(mine["shared"], false);
    assert_eq!(mine["owner"], "ana");
    let created = mine["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let (status, _, team) = send(
        &f.app,
        save(
            &f.analyst,
            json!({"name": "Team", "query": "borough=E09000001&assault_method=sharp_object", "shared": true}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // The owner sees both, newest first; the organisation's other users
    // the shared one only.
    let (status, _, list) = send(
        &f.app,
        get("/api/v1/saved-queries", Some(&bearer(&f.analyst))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&list), ["Team", "Mine"]);
    assert_eq!(list["queries"][0], team);
    let (_, _, admins) = send(
        &f.app,
        get("/api/v1/saved-queries", Some(&bearer(&f.admin))),
    )
    .await;
    assert_eq!(admins, json!({"queries": [team]}));

    // Limits, each naming the field; the longest allowed pass.
    let long = |n: usize| "x".repeat(n);
    for (body, error) in [
        (json!({"name": "", "query": "a=1"}), "name is empty"),
        (json!({"name": "  ", "query": "a=1"}), "name is empty"),
        (
            json!({"name": long(101), "query": "a=1"}),
            "name is 101 characters long; the limit is 100",
        ),
        (json!({"name": "n", "query": ""}), "query is empty"),
        (
            json!({"name": "n", "query": long(2001)}),
            "query is 2001 characters long; the limit is 2000",
        ),
    ] {
        let (status, _, answer) = send(&f.app, save(&f.analyst, body)).await;
        assert_eq!(
            (status, answer["error"].as_str().unwrap()),
            (StatusCode::BAD_REQUEST, error)
        );
    }
    // Characters, not bytes: 100 two-byte letters are allowed.
    for body in [
        json!({"name": "é".repeat(100), "query": long(2000)}),
        json!({"name": long(100), "query": "a=1", "shared": false}),
    ] {
        assert_eq!(
            send(&f.app, save(&f.analyst, body)).await.0,
            StatusCode::CREATED
        );
    }
    for body in [
        json!({"name": "n"}),
        json!({"name": "n", "query": "q", "colour": 1}),
    ] {
        let (status, _, answer) = send(&f.app, save(&f.analyst, body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    }
    let not_json = Request::post("/api/v1/saved-queries")
        .header(header::AUTHORIZATION, bearer(&f.analyst))
        .body(Body::from("name=n"))
        .unwrap();
    assert_eq!(send(&f.app, not_json).await.0, StatusCode::BAD_REQUEST);

    // A site token has none.
    let site = [
        get("/api/v1/saved-queries", Some(&bearer(&f.site))),
        save(&f.site, json!({"name": "n", "query": "q"})),
        with(
            Method::DELETE,
            &format!("/api/v1/saved-queries/{}", team["id"].as_str().unwrap()),
            &f.site,
            None,
        ),
    ];
    for req in site {
        let (status, _, answer) = send(&f.app, req).await;
        assert_eq!(
            (status, answer["error"].as_str().unwrap()),
            (
                StatusCode::FORBIDDEN,
                "saved queries belong to users; a site upload token has none"
            )
        );
    }

    // Only the owner deletes; another's and an unknown id are 404.
    let team_path = format!("/api/v1/saved-queries/{}", team["id"].as_str().unwrap());
    let (status, _, answer) = send(&f.app, with(Method::DELETE, &team_path, &f.admin, None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer["error"],
        format!("no saved query {:?} of yours", team["id"].as_str().unwrap())
    );
    let (status, _, _) = send(&f.app, with(Method::DELETE, &team_path, &f.analyst, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(&f.app, with(Method::DELETE, &team_path, &f.analyst, None))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, _, admins) = send(
        &f.app,
        get("/api/v1/saved-queries", Some(&bearer(&f.admin))),
    )
    .await;
    assert_eq!(admins, json!({"queries": []}));

    // With the session cookie, a delete needs the CSRF token.
    let (cookie, csrf) = session(&f.app, "ana").await;
    let mine_path = format!("/api/v1/saved-queries/{}", mine["id"].as_str().unwrap());
    let by_cookie = |csrf: Option<&str>| {
        let mut b = Request::delete(&mine_path).header(header::COOKIE, &cookie);
        if let Some(c) = csrf {
            b = b.header(crate::CSRF_HEADER, c);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(send(&f.app, by_cookie(None)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&f.app, by_cookie(Some(&csrf))).await.0,
        StatusCode::NO_CONTENT
    );

    // Audit: every save and delete that reached the handler, with its id
    // and name, never the query string.
    let entries = f.store.list_audit(&AuditFilter::default()).await.unwrap();
    let saved: Vec<(String, String, String, Value)> = entries
        .iter()
        .filter(|e| e.entry.action.starts_with("saved_query"))
        .map(|e| {
            (
                e.entry.actor.clone(),
                e.entry.action.clone(),
                e.entry.status.clone(),
                serde_json::from_str(e.entry.parameters.as_deref().unwrap()).unwrap(),
            )
        })
        .collect();
    let (mine_id, team_id) = (mine["id"].clone(), team["id"].clone());
    let row = |actor: &str, action: &str, status: &str, p: Value| {
        (actor.to_owned(), action.to_owned(), status.to_owned(), p)
    };
    let add = "saved_query_add";
    let del = "saved_query_delete";
    assert_eq!(saved.len(), 18, "{saved:#?}");
    assert_eq!(
        saved[0],
        row(
            "ana",
            add,
            "201",
            json!({"id": mine_id, "name": "Mine", "shared": false})
        )
    );
    assert_eq!(
        saved[1],
        row(
            "ana",
            add,
            "201",
            json!({"id": team_id, "name": "Team", "shared": true})
        )
    );
    assert_eq!(
        saved[2],
        row("ana", add, "400", json!({"name": "", "shared": false}))
    );
    assert_eq!(saved[11], row("ana", add, "400", json!({})));
    assert_eq!(saved[12], row("site:RJ122", add, "403", json!({})));
    assert_eq!(
        saved[13],
        row("site:RJ122", del, "403", json!({"id": team_id}))
    );
    assert_eq!(saved[14], row("root", del, "404", json!({"id": team_id})));
    assert_eq!(
        saved[15],
        row("ana", del, "204", json!({"id": team_id, "name": "Team"}))
    );
    assert_eq!(saved[16], row("ana", del, "404", json!({"id": team_id})));
    // The delete without its CSRF token never reached the handler.
    assert_eq!(
        saved[17],
        row("ana", del, "204", json!({"id": mine_id, "name": "Mine"}))
    );
    let all = format!("{entries:?}");
    assert!(!all.contains("assault_method=sharp_object"), "{all}");
}
