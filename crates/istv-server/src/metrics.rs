//! Prometheus metrics for the dashboards that scrape `/metrics`.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
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
    /// Rows received, accepted and rejected by site (`outcome`): the
    /// dashboards' records per minute and the per-site rejection alert.
    pub site_rows: IntCounterVec,
    /// Each active site's expected upload interval, from the store at
    /// every scrape: the alert on a silent site compares against it.
    pub site_interval: IntGaugeVec,
    /// Unix time each active site was registered, from the store at every
    /// scrape: a site that never uploaded is silent since then.
    pub site_registered: IntGaugeVec,
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
        let gauge_vec = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["site"]).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let site_interval = gauge_vec(
            "istv_site_expected_interval_seconds",
            "Seconds within which each active site is expected to upload again.",
        );
        let site_registered = gauge_vec(
            "istv_site_registered_timestamp_seconds",
            "Unix time each active site was registered.",
        );
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
            site_rows: counter_vec(
                "istv_site_records_total",
                "Rows by site and outcome (received, accepted, rejected).",
                &["site", "outcome"],
            ),
            site_interval,
            site_registered,
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

    /// Adds one batch's row counts to its site's counters.
    pub fn add_site_rows(&self, site: &str, counts: &istv_pipeline::RowCounts) {
        let rejected = counts.received.saturating_sub(counts.accepted);
        for (outcome, n) in [
            ("received", counts.received),
            ("accepted", counts.accepted),
            ("rejected", rejected),
        ] {
            self.site_rows.with_label_values(&[site, outcome]).inc_by(n);
        }
    }

    /// Sets the per-site gauges from the store's sites and uploads: what
    /// another instance received, or this one before a restart, counts
    /// too. The last upload only moves forward; a revoked site leaves the
    /// interval and registration gauges, so it never alerts.
    pub fn refresh_sites(&self, sites: &[istv_store::Site], last: &[(String, DateTime<Utc>)]) {
        for site in sites {
            let code = [site.code.as_str()];
            if site.revoked {
                let _ = self.site_interval.remove_label_values(&code);
                let _ = self.site_registered.remove_label_values(&code);
            } else {
                self.site_interval
                    .with_label_values(&code)
                    .set(i64::from(site.expected_interval_days) * 86_400);
                self.site_registered
                    .with_label_values(&code)
                    .set(site.created_at.timestamp());
            }
        }
        for (code, at) in last {
            let gauge = self.last_upload.with_label_values(&[code.as_str()]);
            gauge.set(gauge.get().max(at.timestamp()));
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
    let store = state.store();
    match (store.list_sites().await, store.last_upload_per_site().await) {
        (Ok(sites), Ok(last)) => state.metrics().refresh_sites(&sites, &last),
        // The process's own metrics are still worth a scrape.
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot read the sites for the metrics")
        }
    }
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

    /// A batch of 5 rows with 3 accepted is 2 rejected rows of its site,
    /// whatever number of error codes they carry.
    #[test]
    fn site_rows_count_rows_not_errors() {
        let mut counts = RowCounts {
            received: 5,
            accepted: 3,
            ..RowCounts::default()
        };
        counts.rejected[ErrorCode::InvalidPostcode as usize] += 2;
        counts.rejected[ErrorCode::InvalidEnum as usize] += 1;
        let m = Metrics::new();
        m.add_site_rows("RJ122", &counts);
        m.add_site_rows("RJ122", &counts);
        m.add_site_rows("RYJ01", &counts);
        let rows = |site, outcome| m.site_rows.with_label_values(&[site, outcome]).get();
        assert_eq!(rows("RJ122", "received"), 10);
        assert_eq!(rows("RJ122", "accepted"), 6);
        assert_eq!(rows("RJ122", "rejected"), 4);
        assert_eq!(rows("RYJ01", "rejected"), 2);
    }

    /// The store's sites set the gauges; a revoked site leaves them; the
    /// last upload never moves back.
    #[test]
    fn site_gauges_follow_the_store() {
        use chrono::{TimeZone, Utc};
        let site = |code: &str, revoked, days| istv_store::Site {
            code: code.into(),
            name: code.into(),
            created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            revoked,
            expected_interval_days: days,
        };
        let m = Metrics::new();
        let at = |t| Utc.timestamp_opt(t, 0).unwrap();
        m.refresh_sites(
            &[site("A", false, 35), site("B", false, 7)],
            &[("A".into(), at(1_700_100_000))],
        );
        assert_eq!(m.site_interval.with_label_values(&["A"]).get(), 35 * 86_400);
        assert_eq!(m.site_interval.with_label_values(&["B"]).get(), 7 * 86_400);
        assert_eq!(
            m.site_registered.with_label_values(&["B"]).get(),
            1_700_000_000
        );
        assert_eq!(m.last_upload.with_label_values(&["A"]).get(), 1_700_100_000);
        // An upload this process saw after the store's answer is kept.
        m.last_upload.with_label_values(&["A"]).set(1_700_200_000);
        m.refresh_sites(
            &[site("A", false, 35), site("B", true, 7)],
            &[("A".into(), at(1_700_100_000))],
        );
        assert_eq!(m.last_upload.with_label_values(&["A"]).get(), 1_700_200_000);
        let text = m.render();
        assert!(!text.contains("site=\"B\""), "{text}");
        assert!(
            text.contains("istv_site_expected_interval_seconds{site=\"A\"} 3024000"),
            "{text}"
        );
    }
}
