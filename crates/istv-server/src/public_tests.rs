//! Handler tests of the public tier: off by default, a release served byte
//! for byte as stored and without a credential, a month never recomputed,
//! and the scheduled release of the month due.

use super::*;
use crate::auth::tests::send;
use crate::test_support::event;
use crate::{router, AppState, ServerConfig};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::TimeZone;
use istv_aggregate::Event;
use istv_geo::{AreaKind, AreaLayer, AreaProperties, Geocoder, GeocoderConfig};
use istv_store::{AuditFilter, Store};
use std::sync::Arc;

const CITY: &str = "E09000001";
const BARKING: &str = "E09000002";
const BARNET: &str = "E09000003";

/// Three small squares with borough codes: the geography's boroughs.
fn geocoder() -> Geocoder {
    let square = |code: &str, lon: f64| {
        format!(
            r#"{{"type":"Feature","properties":{{"code":"{code}","name":"{code}"}},
            "geometry":{{"type":"Polygon","coordinates":[[[{lon},51.4],[{e},51.4],[{e},51.5],[{lon},51.5],[{lon},51.4]]]}}}}"#,
            e = lon + 0.1
        )
    };
    let doc = format!(
        r#"{{"type":"FeatureCollection","features":[{},{},{}]}}"#,
        square(BARNET, -0.3),
        square(CITY, -0.1),
        square(BARKING, 0.1)
    );
    let props = AreaProperties {
        code: "code",
        name: "name",
    };
    let (layer, _) =
        AreaLayer::from_geojson(AreaKind::Borough, doc.as_bytes(), &props, &mut |_| {}).unwrap();
    let mut g = Geocoder::new(GeocoderConfig::default());
    g.set_layer(layer);
    g
}

/// January 2024: City 3 body part, 1 sharp object; Barking 2 blunt
/// object; 1 record without a borough. February: City 1 firearm.
fn events() -> Vec<Event> {
    use AssaultMethod::*;
    vec![
        event("c0", "2024-01-01", Some(CITY), BodyPart),
        event("c1", "2024-01-15", Some(CITY), BodyPart),
        event("c2", "2024-01-31", Some(CITY), BodyPart),
        event("c3", "2024-01-20", Some(CITY), SharpObject),
        event("b0", "2024-01-07", Some(BARKING), BluntObject),
        event("b1", "2024-01-08", Some(BARKING), BluntObject),
        event("u0", "2024-01-09", None, BodyPart),
        event("f0", "2024-02-01", Some(CITY), Firearm),
    ]
}

struct Fixture {
    app: Router,
    state: AppState,
}

async fn fixture(public_tier: Option<PublicTier>) -> Fixture {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.add_site("RJ122", "King's").await.unwrap();
    let upload = store.begin_upload("RJ122", "csv").await.unwrap();
    store.apply_batch(&upload, &events()).await.unwrap();
    let config = ServerConfig {
        public_tier,
        ..ServerConfig::default()
    };
    let state = AppState::new(store, Arc::new(geocoder()), config);
    state.set_ready(true);
    Fixture {
        app: router(state.clone()),
        state,
    }
}

/// A GET without any credential.
fn anonymous(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// Status and body of an anonymous GET.
async fn answer(app: &Router, path: &str) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = send(app, anonymous(path)).await;
    (status, body)
}

/// No noise: the release holds the exact counts.
struct Zero;

impl NoiseSource for Zero {
    fn noisy(&mut self, _: &DiscreteLaplace, c: &[i64]) -> Result<Vec<i64>, ReleaseError> {
        Ok(c.to_vec())
    }
}

/// Adds a constant.
struct Plus(i64);

impl NoiseSource for Plus {
    fn noisy(&mut self, _: &DiscreteLaplace, c: &[i64]) -> Result<Vec<i64>, ReleaseError> {
        Ok(c.iter().map(|c| c + self.0).collect())
    }
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 3, 0, 0).unwrap()
}

fn geography() -> Vec<String> {
    vec![CITY.into(), BARKING.into(), BARNET.into()]
}

/// January by hand from [`events`]: every borough x method.
const JANUARY_CSV: &str = "month,borough,assault_method,count\n\
    2024-01,E09000001,body_part,3\n2024-01,E09000001,blunt_object,0\n\
    2024-01,E09000001,sharp_object,1\n2024-01,E09000001,firearm,0\n\
    2024-01,E09000001,other,0\n2024-01,E09000001,not_known,0\n\
    2024-01,E09000002,body_part,0\n2024-01,E09000002,blunt_object,2\n\
    2024-01,E09000002,sharp_object,0\n2024-01,E09000002,firearm,0\n\
    2024-01,E09000002,other,0\n2024-01,E09000002,not_known,0\n\
    2024-01,E09000003,body_part,0\n2024-01,E09000003,blunt_object,0\n\
    2024-01,E09000003,sharp_object,0\n2024-01,E09000003,firearm,0\n\
    2024-01,E09000003,other,0\n2024-01,E09000003,not_known,0\n";

#[tokio::test]
async fn the_public_routes_are_absent_by_default() {
    let f = fixture(None).await;
    assert_eq!(ServerConfig::default().public_tier, None);
    // Even with a release stored, nothing is served while the tier is off.
    let m = DiscreteLaplace::new(1.0).unwrap();
    let month = Month::parse("2024-01").unwrap();
    release_month(
        f.state.store(),
        &geography(),
        month,
        &m,
        &mut Zero,
        at(2024, 2, 8),
    )
    .await
    .unwrap();
    for path in [
        "/api/v1/public/releases",
        "/api/v1/public/releases/2024-01",
        "/api/v1/public/releases/2024-01?format=csv",
    ] {
        assert_eq!(
            send(&f.app, anonymous(path)).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_release_is_served_as_stored_without_a_credential() {
    let f = fixture(Some(PublicTier::default())).await;
    let store = f.state.store();
    // Nothing released yet.
    assert_eq!(
        answer(&f.app, "/api/v1/public/releases").await,
        (StatusCode::OK, json!({"releases": []}))
    );
    assert_eq!(
        send(&f.app, anonymous("/api/v1/public/releases/2024-01"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let m = DiscreteLaplace::new(0.5).unwrap();
    let month = Month::parse("2024-01").unwrap();
    let released = release_month(store, &geography(), month, &m, &mut Zero, at(2024, 2, 8))
        .await
        .unwrap();
    let Released::New(stored) = released else {
        panic!("not new: {released:?}")
    };
    assert_eq!(stored.csv, JANUARY_CSV);
    assert_eq!(stored.epsilon, 0.5);
    assert_eq!(stored.mechanism, "discrete_laplace");
    let doc: serde_json::Value = serde_json::from_str(&stored.json).unwrap();
    assert_eq!(doc["parameters"]["scale"], 2.0);
    assert_eq!(doc["created_at"], "2024-02-08T03:00:00Z");
    assert_eq!(doc["rows"].as_array().unwrap().len(), 18);
    assert_eq!(
        doc["rows"][7],
        json!({"borough": BARKING, "assault_method": "blunt_object", "count": 2})
    );
    // Served byte for byte, with no credential.
    let raw = |path: &'static str| {
        let app = f.app.clone();
        async move {
            let answer = tower::ServiceExt::oneshot(app, anonymous(path))
                .await
                .unwrap();
            let status = answer.status();
            let kind = answer.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_owned();
            let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, kind, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    assert_eq!(
        raw("/api/v1/public/releases/2024-01").await,
        (
            StatusCode::OK,
            "application/json".into(),
            stored.json.clone()
        )
    );
    assert_eq!(
        raw("/api/v1/public/releases/2024-01?format=csv").await,
        (
            StatusCode::OK,
            "text/csv; charset=utf-8".into(),
            JANUARY_CSV.into()
        )
    );
    assert_eq!(
        answer(&f.app, "/api/v1/public/releases").await,
        (
            StatusCode::OK,
            json!({"releases": [{"month": "2024-01", "epsilon": 0.5,
                "mechanism": "discrete_laplace", "created_at": "2024-02-08T03:00:00Z"}]})
        )
    );
    for (path, status) in [
        ("/api/v1/public/releases/2024-02", StatusCode::NOT_FOUND),
        ("/api/v1/public/releases/2024-1", StatusCode::BAD_REQUEST),
        (
            "/api/v1/public/releases/2024-01?format=xml",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/public/releases/2024-01?borough=E09000001",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(send(&f.app, anonymous(path)).await.0, status, "{path}");
    }
}

#[tokio::test]
async fn a_released_month_is_never_recomputed() {
    let f = fixture(Some(PublicTier::default())).await;
    let store = f.state.store();
    let month = Month::parse("2024-01").unwrap();
    let m = DiscreteLaplace::new(1.0).unwrap();
    let first = release_month(store, &geography(), month, &m, &mut Zero, at(2024, 2, 8))
        .await
        .unwrap();
    assert!(matches!(first, Released::New(_)));
    // A late record of January and a second request with other noise and
    // another epsilon: the stored release comes back unchanged.
    let late = store.begin_upload("RJ122", "csv").await.unwrap();
    let record = event("c9", "2024-01-30", Some(CITY), AssaultMethod::BodyPart);
    store.apply_batch(&late, &[record]).await.unwrap();
    let other = DiscreteLaplace::new(2.0).unwrap();
    let second = release_month(
        store,
        &geography(),
        month,
        &other,
        &mut Plus(100),
        at(2024, 3, 1),
    )
    .await
    .unwrap();
    assert_eq!(second, Released::Existing(first.release().clone()));
    assert_eq!(second.release().csv, JANUARY_CSV);
    assert_eq!(store.public_releases().await.unwrap().len(), 1);
    let get = || answer(&f.app, "/api/v1/public/releases/2024-01?format=csv");
    let (a, b) = (get().await, get().await);
    assert_eq!(a, b);
}

#[tokio::test]
async fn a_month_not_yet_ended_is_not_released() {
    let f = fixture(Some(PublicTier::default())).await;
    let m = DiscreteLaplace::new(1.0).unwrap();
    let month = Month::parse("2024-02").unwrap();
    let err = release_month(
        f.state.store(),
        &geography(),
        month,
        &m,
        &mut Zero,
        at(2024, 2, 29),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "month 2024-02 is not complete yet: it ends on 2024-02-29"
    );
    assert_eq!(f.state.store().public_releases().await.unwrap(), []);
}

#[tokio::test]
async fn the_month_due_is_released_once_with_the_geography_s_boroughs() {
    let tier = PublicTier {
        epsilon: 2.0,
        lag_days: 7,
        ..PublicTier::default()
    };
    let f = fixture(Some(tier)).await;
    let store = f.state.store();
    let mut codes = boroughs(&f.state);
    codes.sort();
    assert_eq!(codes, [CITY, BARKING, BARNET]);
    // Within the lag: nothing is due.
    assert_eq!(
        release_due(&f.state, &tier, at(2024, 2, 7)).await.unwrap(),
        None
    );
    assert_eq!(store.public_releases().await.unwrap(), []);
    let january = Month::parse("2024-01").unwrap();
    assert_eq!(
        release_due(&f.state, &tier, at(2024, 2, 8)).await.unwrap(),
        Some(january)
    );
    // Already released: nothing more, hourly or not.
    assert_eq!(
        release_due(&f.state, &tier, at(2024, 2, 9)).await.unwrap(),
        None
    );
    let stored = store.public_release("2024-01").await.unwrap().unwrap();
    assert_eq!(stored.epsilon, 2.0);
    // Real noise: the shape is every borough x method whatever the values.
    let lines: Vec<&str> = stored.csv.lines().collect();
    let expected: Vec<&str> = JANUARY_CSV.lines().collect();
    assert_eq!(lines.len(), expected.len());
    assert_eq!(lines[0], expected[0]);
    for (got, want) in lines.iter().zip(&expected).skip(1) {
        let (cell, count) = got.rsplit_once(',').unwrap();
        assert_eq!(cell, want.rsplit_once(',').unwrap().0);
        assert!(count.parse::<u64>().is_ok(), "{got}");
    }
    // One audit entry for the release made.
    let audit = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(audit.len(), 1);
    let e = &audit[0].entry;
    assert_eq!(
        (
            e.actor.as_str(),
            e.action.as_str(),
            e.parameters.as_deref(),
            e.figures
        ),
        (
            "system:serve",
            "public release",
            Some(r#"{"epsilon":2.0,"month":"2024-01"}"#),
            Some(18)
        )
    );
}
