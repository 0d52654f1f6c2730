//! `istv aggregate`: geocoded events from `istv.geocoded.v1` into the
//! store, effectively once, and the changed aggregates (after disclosure
//! control) to the compacted `istv.aggregates.v1`.
//!
//! Offsets live in the store, not in Kafka: auto-commit is off, every batch
//! of events is written with the positions it consumed up to in one
//! database transaction ([`istv_store::Store::apply_stream_batch`]), and on
//! partition assignment each partition is sought to its stored position.
//! A crash loses nothing (uncommitted messages are read again) and counts
//! nothing twice (the positions commit with the counts). An instance that
//! lost its partitions cannot commit for them: its batch states the
//! position it started from, and the store refuses it when another
//! instance has moved on (the batch is rolled back whole; the instance
//! reads the positions again and goes on from there). Offsets are also
//! committed to Kafka after each batch, for tools that show a group's lag,
//! but nothing reads them back.
//!
//! A poison message (bad frame, unknown schema id, truncated or malformed
//! datum, unresolvable schema, or a value the domain refuses) goes to the
//! dead-letter topic with its reason before the batch that skips it
//! commits, so a crash between the two may send a dead letter twice, never
//! lose one.

mod consumer;
pub mod http;
mod metrics;
pub mod positions;
pub mod published;

pub use metrics::AggregateMetrics;

use istv_aggregate::Disclosure;
use istv_store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How an aggregate instance runs.
#[derive(Debug, Clone)]
pub struct AggregateOptions {
    /// `host:port,...` of the brokers.
    pub brokers: String,
    /// The consumer group every instance shares.
    pub group: String,
    /// The prefix of the topic names.
    pub topic_prefix: String,
    /// The schema registry's URL.
    pub registry_url: String,
    /// Messages per store transaction at most.
    pub max_batch: usize,
    /// How long a batch gathers after its first message.
    pub max_wait: Duration,
    /// The dimensions the published aggregates are grouped by (empty:
    /// nothing published).
    pub publish_group_by: Vec<String>,
    /// Disclosure control of the published aggregates.
    pub disclosure: Disclosure,
    /// How often the published aggregates are checked against the store
    /// when no batch changes them (other instances' batches do).
    pub publish_every: Duration,
    /// More librdkafka settings for the consumer and producers (e.g.
    /// `session.timeout.ms`), applied last.
    pub client: Vec<(String, String)>,
}

impl AggregateOptions {
    /// The topic consumed.
    pub fn geocoded_topic(&self) -> String {
        format!("{}{}", self.topic_prefix, istv_wire::topics::GEOCODED)
    }

    /// The topic published to.
    pub fn aggregates_topic(&self) -> String {
        format!("{}{}", self.topic_prefix, istv_wire::topics::AGGREGATES)
    }

    /// The dead-letter topic.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}{}", self.topic_prefix, istv_wire::topics::DEAD_LETTERS)
    }
}

/// Why the aggregate service stopped.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// The Kafka client could not be made or subscribe.
    #[error("kafka client error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The schema registry refused or could not be reached at start.
    #[error("schema registry error: {0}")]
    Registry(String),
    /// A grouping of the published aggregates that is not a query.
    #[error("invalid published grouping: {0}")]
    Grouping(String),
    /// The consumer thread could not start or panicked.
    #[error("consumer thread failed: {0}")]
    Thread(String),
}

/// A running consumer: stop it with [`Running::stop`].
pub struct Running {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<(), AggregateError>>,
    ready: Arc<AtomicBool>,
}

impl Running {
    /// Whether the consumer has subscribed and found its schemas.
    pub fn ready(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }

    /// Asks the consumer to stop after its current batch, and waits: it
    /// leaves the group, so its partitions move at once.
    pub fn stop(self) -> Result<(), AggregateError> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .map_err(|_| AggregateError::Thread("the consumer thread panicked".into()))?
    }

    /// Whether the consumer thread has ended (on an error).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Starts the consumer on a thread of its own (librdkafka's calls block),
/// reaching the store through `runtime`.
pub fn start(
    store: Store,
    options: AggregateOptions,
    metrics: AggregateMetrics,
    runtime: tokio::runtime::Handle,
) -> Result<Running, AggregateError> {
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicBool::new(false));
    let shared = consumer::Shared {
        store,
        options,
        metrics,
        runtime,
        stop: stop.clone(),
        ready: ready.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("istv-aggregate".into())
        .spawn(move || consumer::run(shared))
        .map_err(|e| AggregateError::Thread(e.to_string()))?;
    Ok(Running {
        stop,
        thread,
        ready,
    })
}
