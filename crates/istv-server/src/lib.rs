//! The HTTP adapter of istv: uploads come in, receipts go out, and community
//! safety teams query the aggregates. The pipeline stages themselves
//! (validate, geocode, aggregate) are plain functions in other crates; this
//! crate moves bytes between them, the network and the store.
#![warn(missing_docs)]

mod audit;
mod auth;
mod edge;
mod error;
mod forward;
mod headers;
mod ingest;
pub mod metrics;
mod openapi;
mod portal;
pub mod public;
mod publish;
mod quality;
pub mod registry;
pub mod registry_client;
mod saved;
mod sink;
mod slow_body;
mod state;
#[cfg(test)]
mod test_support;
mod throttle;
mod tls;
mod users;

pub use auth::{CSRF_HEADER, SESSION_COOKIE};
pub use error::ApiError;
pub use forward::{Forward, ForwardUpload};
pub use istv_pipeline::{Receipt, RECEIPT_ERROR_CAP};
pub use public::PublicTier;
pub use state::{AppState, ServerConfig};
pub use tls::{Tls, TlsError};

use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;

/// Every route of the main listener with its handlers, in one place: the
/// router is built from it, and the OpenAPI tests check that
/// `openapi.json` documents exactly these paths and the methods each
/// answers. Each needs a credential except `/healthz`, `/readyz` and the
/// portal's files (`/` and `/assets/...`, which hold no figures);
/// `/metrics` is left out when it has a listener of its own (`metrics`
/// false), and `/api/v1/public/releases[/{month}]`, which need no
/// credential, are there only when the public tier is on (`public`);
/// `POST /api/v1/uploads` only when uploads are taken (`ingest`, off for
/// `istv query`). A new route is added here and to `openapi.json`.
pub(crate) fn routes(
    metrics: bool,
    public: bool,
    ingest: bool,
) -> Vec<(&'static str, MethodRouter<AppState>)> {
    let uploads = if ingest {
        post(ingest::upload).get(quality::list)
    } else {
        get(quality::list)
    };
    let mut routes = vec![
        (
            "/api/v1/session",
            post(auth::sign_in).delete(auth::sign_out),
        ),
        ("/api/v1/me", get(auth::me)),
        ("/api/v1/uploads", uploads),
        ("/api/v1/uploads/{id}", get(ingest::receipt)),
        ("/api/v1/uploads/{id}/errors", get(ingest::errors)),
        ("/api/v1/aggregates", get(publish::aggregates)),
        ("/api/v1/cells", get(publish::cells)),
        ("/api/v1/areas", get(publish::areas)),
        (
            "/api/v1/saved-queries",
            get(saved::list).post(saved::create),
        ),
        ("/api/v1/saved-queries/{id}", delete(saved::delete)),
        ("/api/v1/quality", get(quality::quality)),
        ("/api/v1/users", get(users::list).post(users::add)),
        ("/api/v1/users/{name}/disable", post(users::disable)),
        ("/api/v1/users/{name}/password", post(users::reset_password)),
        ("/api/v1/users/{name}/tokens", post(users::issue_token)),
        (
            "/api/v1/users/{name}/tokens/{token}",
            delete(users::revoke_token),
        ),
        ("/api/v1/openapi.json", get(openapi::serve)),
        ("/", get(portal::index)),
        ("/assets/{path}", get(portal::asset)),
        ("/healthz", get(|| async { "ok\n" })),
        ("/readyz", get(state::ready)),
    ];
    if public {
        // The public tier: published releases, for anyone.
        routes.push(("/api/v1/public/releases", get(public::list)));
        routes.push(("/api/v1/public/releases/{month}", get(public::month)));
    }
    if metrics {
        routes.push(("/metrics", get(guarded_metrics)));
    }
    routes
}

/// Every route (see [`routes`]) with the layers every answer passes.
pub fn router(state: AppState) -> Router {
    let config = state.config();
    let body_rate = slow_body::BodyRate {
        stall: config.body_stall,
        min_bytes_per_s: config.min_body_bytes_per_s,
        window: config.body_rate_window,
    };
    let transport = headers::Transport { tls: config.tls };
    let mut router = Router::new();
    for (path, handlers) in routes(
        !config.metrics_separate,
        config.public_tier.is_some(),
        config.ingest,
    ) {
        router = router.route(path, handlers);
    }
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            body_rate,
            slow_body::guard,
        ))
        .layer(axum::extract::DefaultBodyLimit::disable())
        // Outermost, so every answer has them, errors and 404s included.
        .layer(axum::middleware::from_fn_with_state(
            transport,
            headers::secure,
        ))
        .with_state(state)
}

/// `/metrics` on the main address: the scrape token or an admin.
async fn guarded_metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (mut parts, _) = req.into_parts();
    match auth::metrics_allowed(&state, &mut parts).await {
        Ok(()) => metrics::export(axum::extract::State(state)).await,
        Err(e) => e.into_response(),
    }
}

/// The metrics listener's routes: `/metrics` without a credential, for an
/// address only the scraper reaches.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::export))
        // Its own listener is plain HTTP: no HSTS.
        .layer(axum::middleware::from_fn_with_state(
            headers::Transport { tls: false },
            headers::secure,
        ))
        .with_state(state)
}

/// Serves [`metrics_router`] on its own listener until `shutdown`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "metrics listening");
    let config = state.config();
    let limits = edge::EdgeLimits {
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
    };
    edge::serve(listener, metrics_router(state), limits, None, shutdown).await
}

/// Serves plain HTTP until `shutdown` completes, then lets in-flight
/// requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, None, shutdown).await
}

/// As [`serve`], over TLS when `tls` is given (set `ServerConfig::tls` to
/// match, for HSTS and `Secure` cookies).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    state.set_ready(true);
    let ready = state.clone();
    let config = state.config();
    let limits = edge::EdgeLimits {
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
    };
    edge::serve(listener, router(state), limits, tls, async move {
        shutdown.await;
        // New uploads are refused from here; running ones complete.
        ready.set_ready(false);
        tracing::info!("shutting down: finishing in-flight requests");
    })
    .await
}
