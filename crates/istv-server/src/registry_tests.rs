//! The registry's endpoints over a real store: ids and versions, the same
//! schema again, 409 for an incompatible schema, 422 for an invalid one,
//! the levels and the error codes.

use super::*;
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

/// `istv.test.Thing {a: string}`.
const V1: &str = r#"{"type":"record","name":"Thing","namespace":"istv.test","fields":[{"name":"a","type":"string"}]}"#;
/// V1 plus an optional `b`: readable both ways (FULL).
const V2: &str = r#"{"type":"record","name":"Thing","namespace":"istv.test","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","string"],"default":null}]}"#;
/// V2 plus a required `c`: cannot read V2's data (not BACKWARD), but V2
/// reads its data (FORWARD).
const V3: &str = r#"{"type":"record","name":"Thing","namespace":"istv.test","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","string"],"default":null},{"name":"c","type":"int"}]}"#;
/// V3 without `a`: reads V3's data (BACKWARD), V3 cannot read its data
/// (not FORWARD).
const V4: &str = r#"{"type":"record","name":"Thing","namespace":"istv.test","fields":[{"name":"b","type":["null","string"],"default":null},{"name":"c","type":"int"}]}"#;

/// V1 as stored: apache-avro's JSON with keys in order.
const V1_STORED: &str = r#"{"fields":[{"name":"a","type":"string"}],"name":"Thing","namespace":"istv.test","type":"record"}"#;

struct Fixture {
    app: Router,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let store = Store::connect(&url).await.unwrap();
    Fixture {
        app: registry_router(store),
        _dir: dir,
    }
}

impl Fixture {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("content-type", REGISTRY_CONTENT_TYPE);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let r = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            REGISTRY_CONTENT_TYPE,
            "{method} {path}"
        );
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    async fn register(&self, subject: &str, schema: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(json!({"schema": schema})),
        )
        .await
    }

    async fn set_level(&self, path: &str, level: &str) -> (u16, Value) {
        self.call("PUT", path, Some(json!({"compatibility": level})))
            .await
    }
}

fn error(status: u16, code: u32) -> impl Fn((u16, Value)) {
    move |(s, body)| {
        assert_eq!(s, status, "{body}");
        assert_eq!(body["error_code"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn register_fetch_and_version_endpoints() {
    let f = fixture().await;
    assert_eq!(f.get("/subjects").await, (200, json!([])));
    assert_eq!(f.register("t-value", V1).await, (200, json!({"id": 1})));
    // The same schema, spaced and ordered otherwise: the same id, no new version.
    let respaced = r#"{ "namespace": "istv.test", "name": "Thing", "type": "record",
        "fields": [ {"type": "string", "name": "a"} ] }"#;
    assert_eq!(
        f.register("t-value", respaced).await,
        (200, json!({"id": 1}))
    );
    assert_eq!(
        f.get("/subjects/t-value/versions/latest").await,
        (
            200,
            json!({"subject": "t-value", "version": 1, "id": 1, "schema": V1_STORED})
        )
    );
    assert_eq!(
        f.get("/schemas/ids/1").await,
        (200, json!({"schema": V1_STORED}))
    );
    assert_eq!(
        Schema::parse_str(V1_STORED).unwrap(),
        Schema::parse_str(V1).unwrap()
    );

    assert_eq!(f.register("t-value", V2).await, (200, json!({"id": 2})));
    assert_eq!(
        f.get("/subjects/t-value/versions").await,
        (200, json!([1, 2]))
    );
    let (status, v1) = f.get("/subjects/t-value/versions/1").await;
    assert_eq!(
        (status, &v1["version"], &v1["id"]),
        (200, &json!(1), &json!(1))
    );
    let (_, latest) = f.get("/subjects/t-value/versions/-1").await;
    assert_eq!((&latest["version"], &latest["id"]), (&json!(2), &json!(2)));

    // V1 under another subject: its id stays 1, the subject's version is 1.
    assert_eq!(f.register("u-value", V1).await, (200, json!({"id": 1})));
    let (_, u) = f.get("/subjects/u-value/versions/latest").await;
    assert_eq!((&u["version"], &u["id"]), (&json!(1), &json!(1)));
    assert_eq!(
        f.get("/subjects").await,
        (200, json!(["t-value", "u-value"]))
    );

    // Is this schema registered under the subject?
    let (status, found) = f
        .call("POST", "/subjects/t-value", Some(json!({"schema": V2})))
        .await;
    assert_eq!(
        (status, &found["version"], &found["id"]),
        (200, &json!(2), &json!(2))
    );
    error(404, 40403)(
        f.call("POST", "/subjects/u-value", Some(json!({"schema": V2})))
            .await,
    );

    error(404, 40403)(f.get("/schemas/ids/3").await);
    error(404, 40403)(f.get("/schemas/ids/x").await);
    error(404, 40401)(f.get("/subjects/nope-value/versions/latest").await);
    error(404, 40401)(f.get("/subjects/nope-value/versions").await);
    error(404, 40401)(f.get("/subjects/nope-value/versions/1").await);
    error(404, 40402)(f.get("/subjects/t-value/versions/3").await);
    error(422, 42202)(f.get("/subjects/t-value/versions/0").await);
    error(422, 42202)(f.get("/subjects/t-value/versions/first").await);
    error(404, 404)(f.get("/no/such/route").await);
}

#[tokio::test]
async fn an_incompatible_schema_is_refused_with_409_and_not_stored() {
    let f = fixture().await;
    f.register("t-value", V1).await;
    f.register("t-value", V2).await;
    // V3 adds a required field: it cannot read V2's records (BACKWARD).
    let (status, body) = f.register("t-value", V3).await;
    assert_eq!((status, &body["error_code"]), (409, &json!(409)), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("incompatible") && message.contains("BACKWARD"),
        "{message}"
    );
    assert_eq!(
        f.get("/subjects/t-value/versions").await,
        (200, json!([1, 2]))
    );
    error(404, 40403)(f.get("/schemas/ids/3").await);

    let check = |version: &'static str, schema: &'static str| {
        let f = &f;
        async move {
            f.call(
                "POST",
                &format!("/compatibility/subjects/t-value/versions/{version}"),
                Some(json!({"schema": schema})),
            )
            .await
        }
    };
    assert_eq!(
        check("latest", V3).await,
        (200, json!({"is_compatible": false}))
    );
    assert_eq!(
        check("latest", V2).await,
        (200, json!({"is_compatible": true}))
    );
    assert_eq!(check("1", V2).await, (200, json!({"is_compatible": true})));
    let (_, verbose) = f
        .call(
            "POST",
            "/compatibility/subjects/t-value/versions/2?verbose=true",
            Some(json!({"schema": V3})),
        )
        .await;
    assert_eq!(verbose["is_compatible"], false);
    assert_eq!(
        verbose["messages"].as_array().unwrap().len(),
        1,
        "{verbose}"
    );
    error(404, 40401)(
        f.call(
            "POST",
            "/compatibility/subjects/nope/versions/latest",
            Some(json!({"schema": V1})),
        )
        .await,
    );
    error(404, 40402)(check("7", V2).await);
}

#[tokio::test]
async fn an_invalid_schema_is_refused_with_422() {
    let f = fixture().await;
    for bad in [
        "not json",
        r#"{"type":"record","name":"NoFields"}"#,
        r#"{"type":"strin"}"#,
    ] {
        error(422, 42201)(f.register("t-value", bad).await);
    }
    error(422, 42201)(
        f.call(
            "POST",
            "/subjects/t-value/versions",
            Some(json!({"schema": "{}", "schemaType": "PROTOBUF"})),
        )
        .await,
    );
    error(422, 42201)(
        f.call(
            "POST",
            "/subjects/t-value/versions",
            Some(
                json!({"schema": V1, "references": [{"name": "x", "subject": "y", "version": 1}]}),
            ),
        )
        .await,
    );
    error(400, 400)(
        f.call(
            "POST",
            "/subjects/t-value/versions",
            Some(json!({"schemata": V1})),
        )
        .await,
    );
    assert_eq!(f.get("/subjects").await, (200, json!([])));
}

#[tokio::test]
async fn levels_decide_what_is_compatible() {
    let f = fixture().await;
    assert_eq!(
        f.get("/config").await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    assert_eq!(
        f.set_level("/config", "forward").await,
        (200, json!({"compatibility": "FORWARD"}))
    );
    assert_eq!(
        f.get("/config").await,
        (200, json!({"compatibilityLevel": "FORWARD"}))
    );
    f.register("t-value", V2).await;
    // FORWARD: V2 reads V3's records, so V3 is accepted; V3 cannot read V4's.
    assert_eq!(f.register("t-value", V3).await, (200, json!({"id": 2})));
    error(409, 409)(f.register("t-value", V4).await);

    // A subject's own level beats the global one.
    error(404, 40408)(f.get("/config/t-value").await);
    assert_eq!(
        f.get("/config/t-value?defaultToGlobal=true").await,
        (200, json!({"compatibilityLevel": "FORWARD"}))
    );
    assert_eq!(
        f.set_level("/config/t-value", "BACKWARD").await,
        (200, json!({"compatibility": "BACKWARD"}))
    );
    assert_eq!(
        f.get("/config/t-value").await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    // BACKWARD: V4 reads V3's records.
    assert_eq!(f.register("t-value", V4).await, (200, json!({"id": 3})));

    // FULL on another subject: V2 follows V1 (both read each other's
    // records), V3 does not (it cannot read V2's).
    f.set_level("/config/w-value", "FULL").await;
    f.register("w-value", V1).await;
    assert_eq!(f.register("w-value", V2).await, (200, json!({"id": 1})));
    error(409, 409)(f.register("w-value", V3).await);
    f.set_level("/config/w-value", "NONE").await;
    assert_eq!(f.register("w-value", V3).await, (200, json!({"id": 2})));

    error(422, 42203)(f.set_level("/config", "SIDEWAYS").await);
    error(400, 400)(
        f.call("PUT", "/config", Some(json!({"level": "FULL"})))
            .await,
    );
    assert_eq!(
        f.get("/config").await,
        (200, json!({"compatibilityLevel": "FORWARD"}))
    );
}

#[tokio::test]
async fn backward_transitive_checks_every_version() {
    let f = fixture().await;
    f.set_level("/config", "NONE").await;
    f.register("t-value", V1).await;
    // NONE lets V4 (no field a) follow V1.
    f.register("t-value", V4).await;
    f.set_level("/config", "BACKWARD_TRANSITIVE").await;
    // V4 plus an optional a: reads V4's records, but not V1's (no c).
    let v5 = r#"{"type":"record","name":"Thing","namespace":"istv.test","fields":[{"name":"b","type":["null","string"],"default":null},{"name":"c","type":"int"},{"name":"a","type":["null","string"],"default":null}]}"#;
    let (status, body) = f.register("t-value", v5).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("version 1"),
        "{body}"
    );
    f.set_level("/config", "BACKWARD").await;
    let (status, _) = f.register("t-value", v5).await;
    assert_eq!(status, 200);
}
