//! The HTTP adapter of istv: uploads come in, receipts go out, and community
//! safety teams query the aggregates. The pipeline stages themselves
//! (validate, geocode, aggregate) are plain functions in other crates; this
//! crate moves bytes between them, the network and the store.
#![warn(missing_docs)]

mod edge;
mod error;
mod ingest;
pub mod metrics;
mod publish;
mod sink;
mod state;

pub use error::ApiError;
pub use istv_pipeline::{Receipt, RECEIPT_ERROR_CAP};
pub use state::{AppState, ServerConfig};

use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/uploads", post(ingest::upload))
        .route("/api/v1/uploads/{id}", get(ingest::receipt))
        .route("/api/v1/uploads/{id}/errors", get(ingest::errors))
        .route("/api/v1/aggregates", get(publish::aggregates))
        .route("/api/v1/cells", get(publish::cells))
        .route("/api/v1/areas", get(publish::areas))
        .route("/metrics", get(metrics::export))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(state::ready))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    state.set_ready(true);
    let ready = state.clone();
    let config = state.config();
    let limits = edge::EdgeLimits {
        header_read_timeout: config.header_read_timeout,
        max_connections: config.max_connections,
    };
    edge::serve(listener, router(state), limits, async move {
        shutdown.await;
        // New uploads are refused from here; running ones complete.
        ready.set_ready(false);
        tracing::info!("shutting down: finishing in-flight requests");
    })
    .await
}
