//! Security headers on every answer. The API answers JSON, CSV, GeoJSON
//! and plain text only, so its content security policy allows nothing at
//! all; the portal's own files (`crate::portal`) get a policy that allows
//! their scripts, styles, images and API calls from this origin only. No
//! CORS header is ever sent, so browsers refuse cross-origin reads.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The content security policy: no scripts, styles, frames or forms.
pub(crate) const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// HSTS for a year, sent only when the service itself serves TLS.
pub(crate) const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Whether the answers go out over TLS (then HSTS is sent).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transport {
    pub tls: bool,
}

/// The middleware.
pub(crate) async fn secure(
    State(transport): State<Transport>,
    req: Request,
    next: Next,
) -> Response {
    let mut answer = next.run(req).await;
    let portal = answer
        .extensions()
        .get::<crate::portal::PortalFile>()
        .is_some();
    let h = answer.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    if portal {
        // The page and its assets: no figures in them, so cached as the
        // portal module says.
        set(
            h,
            header::CONTENT_SECURITY_POLICY,
            crate::portal::PORTAL_CSP,
        );
    } else {
        set(h, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
        // Figures about victims must not sit in a browser's or proxy's cache.
        set(h, header::CACHE_CONTROL, "no-store");
    }
    if transport.tls {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            STRICT_TRANSPORT_SECURITY,
        );
    }
    answer
}

#[cfg(test)]
mod tests {
    use crate::{router, AppState, ServerConfig};
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use istv_geo::{Geocoder, GeocoderConfig};
    use std::sync::Arc;
    use tower::ServiceExt;

    async fn app(tls: bool) -> axum::Router {
        let store = istv_store::Store::connect("sqlite::memory:").await.unwrap();
        let geocoder = Arc::new(Geocoder::new(GeocoderConfig::default()));
        let config = ServerConfig {
            tls,
            ..ServerConfig::default()
        };
        let state = AppState::new(store, geocoder, config);
        state.set_ready(true);
        router(state)
    }

    fn request(method: Method, uri: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("Origin", "https://elsewhere.example")
            .header("Access-Control-Request-Method", "GET")
            .body(Body::empty())
            .unwrap()
    }

    /// The headers every answer carries, as (name, value).
    const EVERY_ANSWER: [(&str, &str); 5] = [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        ("cache-control", "no-store"),
    ];

    #[tokio::test]
    async fn every_answer_carries_the_security_headers_and_no_cors() {
        let app = app(false).await;
        for (method, uri, status) in [
            (Method::GET, "/healthz", StatusCode::OK),
            (Method::GET, "/api/v1/me", StatusCode::UNAUTHORIZED),
            (Method::GET, "/api/v1/aggregates", StatusCode::UNAUTHORIZED),
            (Method::GET, "/no/such/route", StatusCode::NOT_FOUND),
            (
                Method::OPTIONS,
                "/api/v1/aggregates",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            (Method::POST, "/healthz", StatusCode::METHOD_NOT_ALLOWED),
        ] {
            let answer = app
                .clone()
                .oneshot(request(method.clone(), uri))
                .await
                .unwrap();
            assert_eq!(answer.status(), status, "{method} {uri}");
            let h = answer.headers();
            for (name, value) in EVERY_ANSWER {
                assert_eq!(
                    h.get(name).map(|v| v.to_str().unwrap()),
                    Some(value),
                    "{method} {uri} {name}"
                );
            }
            // Plain HTTP: no HSTS.
            assert!(
                h.get("strict-transport-security").is_none(),
                "{method} {uri}"
            );
            let cors: Vec<_> = h
                .keys()
                .filter(|k| k.as_str().starts_with("access-control-"))
                .collect();
            assert!(cors.is_empty(), "{method} {uri}: {cors:?}");
        }
    }

    #[tokio::test]
    async fn the_portal_files_get_their_own_policy_and_caching() {
        let app = app(false).await;
        let page = app
            .clone()
            .oneshot(request(Method::GET, "/"))
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let h = page.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["cache-control"], "no-cache");
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let body = axum::body::to_bytes(page.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        let script = body
            .split('"')
            .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
            .expect("the page names its script")
            .to_string();
        let js = app
            .clone()
            .oneshot(request(Method::GET, &script))
            .await
            .unwrap();
        assert_eq!(js.status(), StatusCode::OK);
        assert_eq!(
            js.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            js.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        // The ETag revalidates.
        let etag = js.headers()["etag"].to_str().unwrap().to_string();
        let again = app
            .clone()
            .oneshot(
                Request::builder()
                    .uri(&script)
                    .header("If-None-Match", &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        // An unknown asset is a 404 under the API's policy.
        let missing = app
            .clone()
            .oneshot(request(Method::GET, "/assets/no-such-file.js"))
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            missing.headers()["content-security-policy"],
            EVERY_ANSWER[3].1
        );
        assert_eq!(missing.headers()["cache-control"], "no-store");
    }

    #[tokio::test]
    async fn under_tls_answers_carry_hsts() {
        let app = app(true).await;
        for (uri, status) in [
            ("/healthz", StatusCode::OK),
            ("/api/v1/me", StatusCode::UNAUTHORIZED),
        ] {
            let answer = app
                .clone()
                .oneshot(request(Method::GET, uri))
                .await
                .unwrap();
            assert_eq!(answer.status(), status);
            assert_eq!(
                answer.headers().get("strict-transport-security").unwrap(),
                "max-age=31536000"
            );
            assert_eq!(answer.headers().get("x-frame-options").unwrap(), "DENY");
        }
    }
}
