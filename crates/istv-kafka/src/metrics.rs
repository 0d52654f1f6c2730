//! The Kafka metrics every service exports (dashboards and alert rules rely
//! on these names), and the client context that feeds consumer lag from
//! librdkafka's statistics.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::Statistics;

/// The Kafka metrics of one service.
#[derive(Clone)]
pub struct KafkaMetrics {
    /// `istv_kafka_produced_total{topic}`: messages acknowledged (or
    /// committed in a transaction).
    pub produced: IntCounterVec,
    /// `istv_kafka_consumed_total{topic}`: messages processed (their
    /// offsets committed).
    pub consumed: IntCounterVec,
    /// `istv_dead_letters_total{topic,reason}`: messages of `topic` sent
    /// to the dead-letter topic, by poison kind.
    pub dead_letters: IntCounterVec,
    /// `istv_kafka_consumer_lag{topic,partition}`: messages behind the
    /// partition's end, from librdkafka's statistics.
    pub lag: IntGaugeVec,
}

impl KafkaMetrics {
    /// The metrics, registered in `registry`.
    pub fn new(registry: &Registry) -> Result<KafkaMetrics, prometheus::Error> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let lag = IntGaugeVec::new(
            Opts::new(
                "istv_kafka_consumer_lag",
                "Messages between the consumer's position and the partition's end.",
            ),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        Ok(KafkaMetrics {
            produced: counter(
                "istv_kafka_produced_total",
                "Messages the broker acknowledged, by topic.",
                &["topic"],
            )?,
            consumed: counter(
                "istv_kafka_consumed_total",
                "Messages consumed and committed, by topic.",
                &["topic"],
            )?,
            dead_letters: counter(
                "istv_dead_letters_total",
                "Messages sent to the dead-letter topic, by the topic read and the reason.",
                &["topic", "reason"],
            )?,
            lag,
        })
    }

    /// Sets the lag gauges from a statistics report: every partition the
    /// client consumes (a lag of -1 is unknown and not set).
    pub fn set_lag(&self, stats: &Statistics) {
        for (name, topic) in &stats.topics {
            for (id, p) in &topic.partitions {
                // -1 is librdkafka's internal unassigned partition.
                if *id >= 0 && p.consumer_lag >= 0 {
                    self.lag
                        .with_label_values(&[name, &id.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

/// A client context that sets the lag gauges from statistics and logs
/// librdkafka's errors through `tracing`.
#[derive(Clone)]
pub struct StatsContext {
    /// Where lag goes.
    pub metrics: KafkaMetrics,
}

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        self.metrics.set_lag(&statistics);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for StatsContext {}
