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
    /// client consumes whose lag is known (see [`partition_lag`]).
    pub fn set_lag(&self, stats: &Statistics) {
        for (name, topic) in &stats.topics {
            for (id, p) in &topic.partitions {
                // -1 is librdkafka's internal unassigned partition.
                if *id < 0 {
                    continue;
                }
                if let Some(lag) = partition_lag(p.ls_offset, p.hi_offset, p.app_offset) {
                    self.lag
                        .with_label_values(&[name, &id.to_string()])
                        .set(lag);
                }
            }
        }
    }
}

/// Messages between a partition's end and the consumer's position, from
/// its statistics (last stable offset, high watermark, position; librdkafka
/// reports an unknown one as negative); `None` where the end or the
/// position is unknown (not yet fetched, or not consumed from).
///
/// librdkafka's own `consumer_lag` counts from the consumer's committed
/// offset, which these services do not keep in the consumer: geocode sends
/// its offsets in the producer's transaction and aggregate keeps them in
/// the store, so that figure is missing or stale. The position
/// (`app_offset`, the next offset handed to the service) is what was
/// consumed. The end is the last stable offset, which read_committed
/// consumers stop at (open transactions' messages are not yet readable),
/// or the high watermark where the broker reported no stable offset. A
/// position past an end reported before it moved reads 0.
pub fn partition_lag(ls_offset: i64, hi_offset: i64, app_offset: i64) -> Option<i64> {
    let end = if ls_offset >= 0 { ls_offset } else { hi_offset };
    (end >= 0 && app_offset >= 0).then(|| (end - app_offset).max(0))
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

#[cfg(test)]
mod tests {
    use super::partition_lag;

    #[test]
    fn lag_is_the_end_minus_the_position() {
        // 120 stable, 125 written (an open transaction), at 100: 20 behind.
        assert_eq!(partition_lag(120, 125, 100), Some(20));
        // No stable offset reported: the high watermark.
        assert_eq!(partition_lag(-1, 125, 100), Some(25));
        // Caught up, and a position past an end reported before it moved.
        assert_eq!(partition_lag(100, 100, 100), Some(0));
        assert_eq!(partition_lag(90, 90, 100), Some(0));
        // Nothing consumed yet (-1001, librdkafka's invalid offset), or
        // no end fetched yet.
        assert_eq!(partition_lag(120, 125, -1001), None);
        assert_eq!(partition_lag(-1, -1, 100), None);
    }
}
