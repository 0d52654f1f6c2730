//! The aggregate service's metrics, in a registry of its own (one service
//! per process).

use crate::metrics::KafkaMetrics;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The aggregate service's metrics; cheap to clone.
#[derive(Clone)]
pub struct AggregateMetrics {
    registry: Registry,
    /// The metrics every Kafka service has: messages consumed (taken into
    /// batches) and produced, dead letters, consumer lag.
    pub kafka: KafkaMetrics,
    /// `istv_upload_to_visible_seconds`: commit time minus the message's
    /// timestamp.
    pub upload_to_visible: Histogram,
    /// `istv_aggregate_events_total{outcome}`: accepted, duplicate,
    /// correction.
    pub events: IntCounterVec,
    /// `istv_aggregate_batches_total`: batches committed.
    pub batches: IntCounter,
    /// `istv_aggregate_fenced_batches_total`: batches the store refused
    /// because another instance had moved a partition on.
    pub fenced: IntCounter,
    /// `istv_aggregate_store_errors_total`: batches that failed in the
    /// store and were consumed again.
    pub store_errors: IntCounter,
}

impl AggregateMetrics {
    /// Fresh metrics.
    pub fn new() -> AggregateMetrics {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let kafka = KafkaMetrics::new(&registry).expect("unique metrics");
        let events = counter_vec(
            "istv_aggregate_events_total",
            "Events written to the store, by outcome (accepted, duplicate, correction).",
            &["outcome"],
        );
        let upload_to_visible = Histogram::with_opts(
            HistogramOpts::new(
                "istv_upload_to_visible_seconds",
                "From a geocoded event's message timestamp to its commit in the store.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(upload_to_visible.clone()))
            .expect("unique metric");
        AggregateMetrics {
            kafka,
            upload_to_visible,
            events,
            batches: counter("istv_aggregate_batches_total", "Batches committed."),
            fenced: counter(
                "istv_aggregate_fenced_batches_total",
                "Batches refused because another instance moved a partition on.",
            ),
            store_errors: counter(
                "istv_aggregate_store_errors_total",
                "Batches that failed in the store and were consumed again.",
            ),
            registry,
        }
    }

    /// The text exposition of every metric.
    pub fn export(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of metrics");
        String::from_utf8(out).expect("metrics text is UTF-8")
    }
}

impl Default for AggregateMetrics {
    fn default() -> Self {
        AggregateMetrics::new()
    }
}
