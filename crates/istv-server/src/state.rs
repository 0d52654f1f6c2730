//! What every request handler shares.

use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::StatusCode;
use istv_geo::Geocoder;
use istv_store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Settings of the HTTP service.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest upload body accepted, in bytes (after any compression).
    pub max_body_bytes: u64,
    /// Uploads one token may run at once; more get 429.
    pub per_token_concurrency: usize,
    /// Counts from 1 to this minus one are published as suppressed.
    pub suppress_below: u64,
    /// Rows per store transaction.
    pub batch_rows: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 512 << 20,
            per_token_concurrency: 2,
            suppress_below: 5,
            batch_rows: 10_000,
        }
    }
}

struct Inner {
    store: Store,
    geocoder: Arc<Geocoder>,
    metrics: Metrics,
    config: ServerConfig,
    ready: AtomicBool,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Shared state: the store, the geocoder, metrics and settings.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// State over an open store and a loaded geocoder.
    pub fn new(store: Store, geocoder: Arc<Geocoder>, config: ServerConfig) -> Self {
        AppState(Arc::new(Inner {
            store,
            geocoder,
            metrics: Metrics::new(),
            config,
            ready: AtomicBool::new(false),
            slots: Mutex::new(HashMap::new()),
        }))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The geocoder.
    pub fn geocoder(&self) -> &Arc<Geocoder> {
        &self.0.geocoder
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// Marks the service ready (or not) for `/readyz` and uploads.
    pub fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::SeqCst);
    }

    /// True while serving and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }

    /// The concurrency slots of one token, keyed by its site.
    pub(crate) fn slots(&self, site: &str) -> Arc<Semaphore> {
        let mut slots = self.0.slots.lock().expect("slots lock");
        slots
            .entry(site.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.0.config.per_token_concurrency)))
            .clone()
    }
}

/// `GET /readyz`: 200 when serving, 503 while starting or shutting down.
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}
