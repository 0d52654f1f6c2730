//! Prometheus metrics for the dashboards that scrape `/metrics`.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::time::Instant;

/// The service's metrics, in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Rows received in uploads.
    pub received: IntCounter,
    /// Rows accepted (new, corrected or duplicate).
    pub accepted: IntCounter,
    /// Rows rejected, by reason code.
    pub rejected: IntCounterVec,
    /// Rows that repeated stored content.
    pub duplicates: IntCounter,
    /// Rows that replaced stored content.
    pub corrections: IntCounter,
    /// Accepted rows by geocode method and outcome.
    pub geocoded: IntCounterVec,
    /// Unix time of each site's last successful upload.
    pub last_upload: IntGaugeVec,
    /// Seconds from an upload's arrival to its rows being visible in the
    /// aggregates (the commit of its last batch).
    pub latency: Histogram,
    /// HTTP requests by route and status.
    pub http_requests: IntCounterVec,
    /// HTTP request durations by route.
    pub http_duration: HistogramVec,
    /// Seconds per store write transaction.
    pub store_write: Histogram,
}

impl Metrics {
    /// Fresh metrics.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let seconds = [
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ];
        let histogram = |name: &str, help: &str| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(seconds.to_vec()))
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let last_upload = IntGaugeVec::new(
            Opts::new(
                "istv_site_last_upload_timestamp_seconds",
                "Unix time of the last successful upload per site.",
            ),
            &["site"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(last_upload.clone()))
            .expect("unique metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "istv_http_request_duration_seconds",
                "HTTP request duration by route.",
            )
            .buckets(seconds.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("unique metric");
        Metrics {
            received: counter("istv_records_received_total", "Rows received in uploads."),
            accepted: counter(
                "istv_records_accepted_total",
                "Rows that passed validation.",
            ),
            rejected: counter_vec(
                "istv_records_rejected_total",
                "Rows rejected, by reason code.",
                &["code"],
            ),
            duplicates: counter(
                "istv_records_duplicate_total",
                "Accepted rows identical to stored ones.",
            ),
            corrections: counter(
                "istv_records_corrected_total",
                "Accepted rows that replaced stored content.",
            ),
            geocoded: counter_vec(
                "istv_records_geocoded_total",
                "Accepted rows by geocode method and outcome.",
                &["method", "outcome"],
            ),
            last_upload,
            latency: histogram(
                "istv_processing_latency_seconds",
                "Seconds from an upload's arrival to its rows being visible in aggregates.",
            ),
            http_requests: counter_vec(
                "istv_http_requests_total",
                "HTTP requests by route and status.",
                &["route", "status"],
            ),
            http_duration,
            store_write: histogram(
                "istv_store_write_seconds",
                "Seconds per store write transaction.",
            ),
            registry,
        }
    }

    /// Adds one batch's row counts from the ingest driver (given once per
    /// batch: a labelled counter is a lookup and a lock, too dear for every
    /// row).
    pub fn add_rows(&self, counts: &istv_pipeline::RowCounts) {
        self.received.inc_by(counts.received);
        self.accepted.inc_by(counts.accepted);
        for (code, n) in counts.rejected() {
            self.rejected.with_label_values(&[code.as_str()]).inc_by(n);
        }
        for (method, status, n) in counts.geocoded() {
            self.geocoded
                .with_label_values(&[method.as_str(), status.as_str()])
                .inc_by(n);
        }
    }

    /// The registry, for the collectors of another adapter (the Kafka
    /// clients of `istv ingest`) to be exported with these.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encodable metrics");
        String::from_utf8(buf).expect("metrics are UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `GET /metrics`.
pub(crate) async fn export(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

/// Counts and times every request by its route template (never the raw
/// path, which could carry an id).
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let start = Instant::now();
    let response = next.run(req).await;
    let m = state.metrics();
    m.http_duration
        .with_label_values(&[&route])
        .observe(start.elapsed().as_secs_f64());
    m.http_requests
        .with_label_values(&[&route, response.status().as_str()])
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use super::Metrics;
    use istv_aggregate::LocationStatus;
    use istv_core::ErrorCode;
    use istv_geo::GeocodeMethod;
    use istv_pipeline::RowCounts;

    /// Each count of a batch goes to the metric of its method and status,
    /// or of its code.
    #[test]
    fn row_counts_are_added_under_their_labels() {
        let mut counts = RowCounts::default();
        counts.geocoded[GeocodeMethod::Grid as usize][LocationStatus::OutOfArea as usize] += 3;
        counts.rejected[ErrorCode::InvalidPostcode as usize] += 2;
        counts.received = 5;
        counts.accepted = 3;
        let m = Metrics::new();
        m.add_rows(&counts);
        assert_eq!((m.received.get(), m.accepted.get()), (5, 3));
        assert_eq!(
            m.geocoded.with_label_values(&["grid", "out_of_area"]).get(),
            3
        );
        assert_eq!(m.geocoded.with_label_values(&["grid", "resolved"]).get(), 0);
        assert_eq!(m.rejected.with_label_values(&["invalid_postcode"]).get(), 2);
        m.add_rows(&counts);
        assert_eq!(m.received.get(), 10);
    }
}
