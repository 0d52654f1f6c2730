//! The aggregate service's own listener: `/metrics`, `/healthz` and
//! `/readyz` (ready once the consumer has subscribed and found its
//! schemas).

use super::AggregateMetrics;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone)]
struct Health {
    metrics: AggregateMetrics,
    ready: Arc<AtomicBool>,
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.metrics.export(),
    )
}

async fn ready(State(h): State<Health>) -> impl IntoResponse {
    if h.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

/// Serves the three routes on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics_: AggregateMetrics,
    ready_: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Health {
            metrics: metrics_,
            ready: ready_,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
