//! What every request handler shares.

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::sink::{StoreSink, WRITER_QUEUE};
use crate::throttle::{RateLimit, Throttle};
use axum::extract::State;
use axum::http::StatusCode;
use istv_aggregate::disclosure::PtableError;
use istv_aggregate::{Disclosure, PerturbationParams};
use istv_geo::Geocoder;
use istv_pipeline::Writer;
use istv_store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Settings of the HTTP service.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest upload body accepted, in bytes (after any compression).
    pub max_body_bytes: u64,
    /// Uploads one token may run at once; more get 429.
    pub per_token_concurrency: usize,
    /// `k` of disclosure control: no published value from 1 to k-1.
    pub suppress_below: u64,
    /// `D`: the largest perturbation of a published count; 0 turns
    /// perturbation off (plain suppression, for trusted use only).
    pub max_perturbation: u32,
    /// `V`: the variance of the perturbation.
    pub perturbation_variance: f64,
    /// Rows per store transaction.
    pub batch_rows: usize,
    /// Queries run at once; more wait in line.
    pub query_concurrency: usize,
    /// Queries that may wait for a turn; more get 503 with `Retry-After`.
    pub query_queue: usize,
    /// The longest a query may wait for its turn and then run; past it the
    /// answer is 503 with `Retry-After`.
    pub query_timeout: std::time::Duration,
    /// Longest wait for a request's header, from a new connection's start
    /// or from the first byte of a request; then the connection is closed.
    pub header_read_timeout: std::time::Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: std::time::Duration,
    /// A request body that sends no byte for this long is cut off.
    pub body_stall: std::time::Duration,
    /// A request body slower than this on average over `body_rate_window`
    /// is cut off; 0 checks no rate.
    pub min_body_bytes_per_s: u64,
    /// The span `min_body_bytes_per_s` is averaged over.
    pub body_rate_window: std::time::Duration,
    /// Connections open at once; one more is closed when accepted.
    pub max_connections: usize,
    /// A session ends after this long without a request.
    pub session_idle: std::time::Duration,
    /// A session ends this long after sign-in, however used.
    pub session_absolute: std::time::Duration,
    /// Marks the session cookie `Secure` (set it when a TLS proxy is in
    /// front; implied by `tls`).
    pub secure_cookies: bool,
    /// True when the service itself serves TLS: answers carry HSTS and the
    /// session cookie is `Secure`.
    pub tls: bool,
    /// Failed sign-ins per user name, and per client address, before it is
    /// refused for the rest of `sign_in_window`.
    pub sign_in_max_failures: u32,
    /// The window of `sign_in_max_failures`, from the first failure.
    pub sign_in_window: std::time::Duration,
    /// Queries each user may make a minute (a bucket refilled evenly).
    pub query_rate_per_minute: u32,
    /// Queries all the users of one organisation may make a minute
    /// together (a bucket refilled evenly), so that an organisation's
    /// users cannot average many queries by sharing them out.
    pub query_rate_per_org_per_minute: u32,
    /// The deployment's secret key of records' content hashes (kept in the
    /// data directory by `istv serve`); only uploads stored here (not
    /// forwarded) are keyed with it. The default is random per process,
    /// which suits tests, and a service that takes no upload: under another
    /// key every re-sent row of a record stored before counts as a
    /// correction.
    pub content_key: istv_aggregate::ContentKey,
    /// The bearer token a Prometheus scrape may send for `/metrics`.
    pub metrics_token: Option<String>,
    /// True when `/metrics` is served on a listener of its own
    /// ([`crate::serve_metrics`]) and not on the main one.
    pub metrics_separate: bool,
    /// The public tier: `None` (the default) serves no public route and
    /// makes no release.
    pub public_tier: Option<crate::PublicTier>,
    /// Whether uploads are taken (`POST /api/v1/uploads`); off for `istv
    /// query`, which serves the query API and portal over a store that
    /// another service fills.
    pub ingest: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 512 << 20,
            per_token_concurrency: 2,
            suppress_below: 5,
            max_perturbation: 3,
            perturbation_variance: 1.0,
            // Into a 3M-record store, 50k-row batches ingested 2.1-2.9 times
            // as fast as 10k (each random page a batch dirties is written
            // once per commit); the peak memory of two uploads rose 65 MB.
            batch_rows: 50_000,
            query_concurrency: 4,
            query_queue: 64,
            query_timeout: std::time::Duration::from_secs(10),
            header_read_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
            // A hospital link slower than 1 KiB/s for 30 s, or silent for
            // 30 s, is broken or hostile: free the site's upload slot.
            body_stall: std::time::Duration::from_secs(30),
            min_body_bytes_per_s: 1024,
            body_rate_window: std::time::Duration::from_secs(30),
            max_connections: 1024,
            session_idle: std::time::Duration::from_secs(30 * 60),
            session_absolute: std::time::Duration::from_secs(12 * 3600),
            secure_cookies: false,
            tls: false,
            sign_in_max_failures: 5,
            sign_in_window: std::time::Duration::from_secs(15 * 60),
            query_rate_per_minute: 120,
            query_rate_per_org_per_minute: 600,
            content_key: {
                let mut bytes = [0u8; istv_aggregate::ContentKey::LEN];
                getrandom::fill(&mut bytes).expect("the system's random source is unavailable");
                istv_aggregate::ContentKey::new(bytes)
            },
            metrics_token: None,
            metrics_separate: false,
            public_tier: None,
            ingest: true,
        }
    }
}

impl ServerConfig {
    /// The disclosure control of analysts' answers, from `suppress_below`,
    /// `max_perturbation` and `perturbation_variance`.
    pub fn disclosure(&self) -> Result<Disclosure, PtableError> {
        Disclosure::from_params(PerturbationParams {
            max_perturbation: self.max_perturbation,
            variance: self.perturbation_variance,
            threshold: u32::try_from(self.suppress_below).unwrap_or(u32::MAX),
        })
    }
}

struct Inner {
    store: Store,
    /// Writes the batches and receipts of every upload, one at a time.
    writer: Writer<StoreSink>,
    geocoder: Arc<Geocoder>,
    metrics: Metrics,
    config: ServerConfig,
    ready: AtomicBool,
    /// True until the geocoder's tables are built (see `warm_geocoder`).
    warming: AtomicBool,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Turns to run a query.
    queries: Semaphore,
    /// Queries waiting for a turn.
    waiting: AtomicUsize,
    /// Failed sign-ins per user name and per client address.
    sign_in: Throttle,
    /// Queries per user.
    query_rate: RateLimit,
    /// Queries per organisation.
    org_query_rate: RateLimit,
    /// A hash to verify unknown users' passwords against (made once).
    decoy: tokio::sync::OnceCell<String>,
    /// Where uploads go instead of the store's records (`istv ingest`).
    forward: std::sync::OnceLock<Arc<dyn crate::Forward>>,
}

/// Shared state: the store, the geocoder, metrics and settings.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// State over an open store and a loaded geocoder. Starts the store's
    /// writer thread, which reaches the store through the current tokio
    /// runtime: call it within one.
    pub fn new(store: Store, geocoder: Arc<Geocoder>, mut config: ServerConfig) -> Self {
        // A session cookie sent over TLS is never sent over plain HTTP.
        config.secure_cookies |= config.tls;
        let metrics = Metrics::new();
        let sink = StoreSink::new(
            store.clone(),
            tokio::runtime::Handle::current(),
            metrics.clone(),
        );
        let writer = Writer::spawn(sink, WRITER_QUEUE, "istv-store-writer")
            .expect("cannot start the store writer thread");
        AppState(Arc::new(Inner {
            store,
            writer,
            geocoder,
            metrics,
            ready: AtomicBool::new(false),
            warming: AtomicBool::new(false),
            slots: Mutex::new(HashMap::new()),
            queries: Semaphore::new(config.query_concurrency.max(1)),
            waiting: AtomicUsize::new(0),
            sign_in: Throttle::new(config.sign_in_max_failures, config.sign_in_window),
            query_rate: RateLimit::new(config.query_rate_per_minute),
            org_query_rate: RateLimit::new(config.query_rate_per_org_per_minute),
            decoy: tokio::sync::OnceCell::new(),
            forward: std::sync::OnceLock::new(),
            config,
        }))
    }

    /// Makes this the state of `istv ingest`: uploads are validated and
    /// forwarded to `forward` (a broker) instead of geocoded into the
    /// store, which keeps the credentials, uploads and receipts. Set once,
    /// before serving; a second call is refused.
    pub fn forward_to(&self, forward: Arc<dyn crate::Forward>) -> Result<(), ApiError> {
        self.0
            .forward
            .set(forward)
            .map_err(|_| ApiError::Internal("uploads are forwarded already".into()))
    }

    /// Where uploads are forwarded, for `istv ingest`.
    pub(crate) fn forward(&self) -> Option<&Arc<dyn crate::Forward>> {
        self.0.forward.get()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The store's writer: uploads queue their batches here.
    pub(crate) fn writer(&self) -> &Writer<StoreSink> {
        &self.0.writer
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

    /// Failed sign-ins per user name and client address.
    pub(crate) fn sign_in_throttle(&self) -> &Throttle {
        &self.0.sign_in
    }

    /// Queries per user.
    pub(crate) fn query_rate(&self) -> &RateLimit {
        &self.0.query_rate
    }

    /// Queries per organisation.
    pub(crate) fn org_query_rate(&self) -> &RateLimit {
        &self.0.org_query_rate
    }

    /// The hash an unknown user's password is verified against, so that
    /// the answer takes as long as for a wrong password.
    pub(crate) async fn decoy_hash(&self) -> Result<String, ApiError> {
        self.0
            .decoy
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(istv_access::password::decoy)
                    .await
                    .map_err(|e| ApiError::Internal(format!("decoy hash failed: {e}")))?
                    .map_err(|e| ApiError::Internal(e.to_string()))
            })
            .await
            .cloned()
    }

    /// Marks the service ready (or not) for `/readyz` and uploads.
    pub fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::SeqCst);
    }

    /// True while serving and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }

    /// Builds the geocoder's lookup tables on background threads, one per
    /// core. Until they are built `/readyz` answers 503 (a load balancer
    /// waits) while uploads are still taken, only slower: the same tables
    /// would otherwise be built by the first rows of each place.
    pub fn warm_geocoder(&self) {
        self.0.warming.store(true, Ordering::SeqCst);
        let state = self.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let parts = std::thread::available_parallelism().map_or(1, |n| n.get());
            let points: Option<usize> = std::thread::scope(|scope| {
                let geocoder = state.geocoder();
                let workers: Vec<_> = (0..parts)
                    .map(|part| scope.spawn(move || geocoder.warm(part, parts)))
                    .collect();
                workers
                    .into_iter()
                    .map(|w| {
                        w.join().unwrap_or_else(|_| {
                            tracing::error!(
                                "a geocoding warm-up thread failed; the first rows of its places build their tables"
                            );
                            Some(0)
                        })
                    })
                    .sum()
            });
            match points {
                Some(points) => tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    points,
                    "geocoding tables built"
                ),
                None => tracing::warn!(
                    "the service area is too large to build the geocoding tables at start; \
                     the first rows of each place build them"
                ),
            }
            state.0.warming.store(false, Ordering::SeqCst);
        });
    }

    /// True while the geocoder's tables are being built.
    pub fn is_warming(&self) -> bool {
        self.0.warming.load(Ordering::SeqCst)
    }

    /// The concurrency slots of one token, keyed by its site.
    /// Runs a query in its turn: at most `query_concurrency` at once, at
    /// most `query_queue` waiting, each within `query_timeout` from arrival
    /// (waiting included). Otherwise [`ApiError::Busy`]. Uploads and token
    /// checks do not take turns: the store reads queries through a pool of
    /// their own.
    pub(crate) async fn query<T>(
        &self,
        run: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let config = &self.0.config;
        let limit = config.query_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let permit = {
            let waiting = self.0.waiting.fetch_add(1, Ordering::SeqCst);
            let _left = Leave(&self.0.waiting);
            if waiting >= config.query_queue {
                return Err(ApiError::Busy(format!(
                    "{waiting} queries are waiting already; retry shortly"
                )));
            }
            tokio::time::timeout_at(deadline, self.0.queries.acquire())
                .await
                .map_err(|_| {
                    ApiError::Busy(format!(
                        "no turn to run the query within {} s; retry shortly",
                        limit.as_secs_f64()
                    ))
                })?
                .expect("the query semaphore is never closed")
        };
        // The store stops the statement at the same deadline: a query
        // given up on does not keep its connection busy.
        let run = istv_store::with_deadline(deadline.into_std(), run);
        let timed_out = || {
            ApiError::Busy(format!(
                "the query took longer than the limit of {} s; narrow it (a shorter range, fewer groups) or retry",
                limit.as_secs_f64()
            ))
        };
        let answer = match tokio::time::timeout_at(deadline, run).await {
            Err(_) => Err(timed_out()),
            // Interrupted by the store at the deadline, just before the timer.
            Ok(Err(_)) if tokio::time::Instant::now() >= deadline => Err(timed_out()),
            Ok(answer) => answer,
        };
        drop(permit);
        answer
    }

    pub(crate) fn slots(&self, site: &str) -> Arc<Semaphore> {
        let mut slots = self.0.slots.lock().expect("slots lock");
        slots
            .entry(site.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.0.config.per_token_concurrency)))
            .clone()
    }
}

/// `GET /readyz`: 200 when serving, 503 while starting (the geocoder's
/// tables included) or shutting down.
/// Takes one off a waiting count when dropped.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.is_warming() && state.is_ready() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "warming geocoding tables\n",
        )
    } else if state.is_ready() && state.forward().is_some_and(|f| !f.is_ready()) {
        (StatusCode::SERVICE_UNAVAILABLE, "broker unavailable\n")
    } else if state.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use istv_geo::GeocoderConfig;

    #[tokio::test]
    async fn readyz_waits_for_the_geocoding_tables() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let geocoder = Arc::new(Geocoder::new(GeocoderConfig::default()));
        let state = AppState::new(store, geocoder, ServerConfig::default());
        let not_ready = (StatusCode::SERVICE_UNAVAILABLE, "not ready\n");
        assert_eq!(ready(State(state.clone())).await, not_ready);
        state.set_ready(true);
        assert_eq!(
            ready(State(state.clone())).await,
            (StatusCode::OK, "ready\n")
        );
        // What `warm_geocoder` sets before its threads start.
        state.0.warming.store(true, Ordering::SeqCst);
        let warming = (
            StatusCode::SERVICE_UNAVAILABLE,
            "warming geocoding tables\n",
        );
        assert_eq!(ready(State(state.clone())).await, warming);
        state.warm_geocoder();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while state.is_warming() {
            assert!(std::time::Instant::now() < deadline, "tables not built");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            ready(State(state.clone())).await,
            (StatusCode::OK, "ready\n")
        );
        // Shutting down wins over warming.
        state.0.warming.store(true, Ordering::SeqCst);
        state.set_ready(false);
        assert_eq!(ready(State(state)).await, not_ready);
    }

    async fn state(concurrency: usize, queue: usize, timeout_ms: u64) -> AppState {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let geocoder = Arc::new(Geocoder::new(GeocoderConfig::default()));
        let config = ServerConfig {
            query_concurrency: concurrency,
            query_queue: queue,
            query_timeout: std::time::Duration::from_millis(timeout_ms),
            ..ServerConfig::default()
        };
        AppState::new(store, geocoder, config)
    }

    /// A query that holds its turn until `release` is sent.
    async fn held(
        state: &AppState,
        release: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<u8, ApiError> {
        state
            .query(async move {
                release.await.ok();
                Ok(1)
            })
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queries_past_the_turns_and_the_line_are_refused() {
        use axum::response::IntoResponse;
        let state = state(1, 1, 5_000).await;
        let (free_first, first_held) = tokio::sync::oneshot::channel();
        let first = tokio::spawn({
            let state = state.clone();
            async move { held(&state, first_held).await }
        });
        // The first holds the only turn and has left the line (it counts as
        // waiting until just after it takes the turn, on another thread);
        // then the second waits in line.
        while state.0.queries.available_permits() > 0 || state.0.waiting.load(Ordering::SeqCst) > 0
        {
            tokio::task::yield_now().await;
        }
        let (free_second, second_held) = tokio::sync::oneshot::channel();
        let second = tokio::spawn({
            let state = state.clone();
            async move { held(&state, second_held).await }
        });
        while state.0.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The line is full: a third is refused at once, with Retry-After.
        let third = state.query(async { Ok(3) }).await.unwrap_err();
        assert!(matches!(third, ApiError::Busy(_)), "{third:?}");
        let answer = third.into_response();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()[axum::http::header::RETRY_AFTER], "1");
        free_first.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        free_second.send(()).unwrap();
        assert_eq!(second.await.unwrap().unwrap(), 1);
        // All turns given back.
        assert_eq!(state.0.queries.available_permits(), 1);
        assert_eq!(state.0.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(state.query(async { Ok(4) }).await.unwrap(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_past_the_time_limit_is_cut_off() {
        let state = state(2, 8, 50).await;
        let slow = state
            .query(async {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&slow, ApiError::Busy(m) if m.contains("longer than the limit")),
            "{slow:?}"
        );
        // Its turn is given back.
        assert_eq!(state.0.queries.available_permits(), 2);
    }

    /// The store stops a statement at the query's deadline, and its error
    /// can come back just before the server's own timer fires: it is the
    /// time limit's 503 too, not a failure of the store. An error before
    /// the deadline stays what it is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_the_store_stopped_at_the_deadline_is_the_time_limit() {
        let state = state(2, 8, 50).await;
        let stopped = state
            .query(async {
                // Past the deadline, but without yielding to the timer.
                std::thread::sleep(std::time::Duration::from_millis(80));
                Err::<(), _>(ApiError::Internal("interrupted".into()))
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&stopped, ApiError::Busy(m) if m.contains("longer than the limit")),
            "{stopped:?}"
        );
        let failed = state
            .query(async { Err::<(), _>(ApiError::Internal("broken".into())) })
            .await
            .unwrap_err();
        assert!(
            matches!(&failed, ApiError::Internal(m) if m == "broken"),
            "{failed:?}"
        );
    }
}
