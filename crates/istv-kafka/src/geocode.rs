//! `istv geocode`: attendances in, geocoded events out, effectively once.
//!
//! Each batch of consumed attendances is one Kafka transaction of the
//! instance's transactional producer: the geocoded events, the dead
//! letters and the batch's consumed offsets (`send_offsets_to_transaction`
//! with the consumer's group metadata) commit together or not at all.
//! Consumers downstream read with `isolation.level=read_committed`, so
//! they see each event of a committed batch once and nothing of an aborted
//! one. A crash before the commit leaves the transaction open; the next
//! instance with the same `transactional.id` aborts it when it starts
//! (`init_transactions`), and the group's committed offsets still point
//! at the batch's start, so the batch is made again. An instance whose
//! partitions were given to another cannot commit for them: its offsets
//! carry the group generation it read them in, which the coordinator
//! refuses, and the transaction aborts.
//!
//! rdkafka's transaction calls block: the loop runs on a thread of its own.

use crate::metrics::KafkaMetrics;
use crate::settings::Settings;
use crate::transform::{Output, Stage};
use istv_server::registry_client::RegistryClient;
use istv_wire::dead_letter::Origin;
use istv_wire::{topics, Decoder};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum GeocodeError {
    /// librdkafka refused a setting or a call it cannot recover from (a
    /// fenced or fatal producer): the process ends and is restarted.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The consumer has no group metadata to send offsets with.
    #[error("the consumer has no group metadata")]
    NoGroup,
}

/// Most messages per transaction by default. Each transaction costs about
/// 0.1 s of round trips whatever its size, so 500 held one instance to
/// about 4,300 messages/s on tansu and 2,000 to about 13,000
/// (`scripts/bench-kafka-chain`).
pub const DEFAULT_BATCH_MAX: usize = 2000;

/// How the service runs.
#[derive(Debug, Clone)]
pub struct GeocodeConfig {
    /// The consumer group (all instances share it).
    pub group: String,
    /// This instance's transactional id, the same across its restarts.
    pub transactional_id: String,
    /// Most messages per transaction.
    pub batch_max: usize,
    /// Longest a batch waits to fill once it has a message.
    pub batch_wait: Duration,
    /// Timeout of each transaction call.
    pub call_timeout: Duration,
}

impl Default for GeocodeConfig {
    fn default() -> Self {
        GeocodeConfig {
            group: "istv-geocode".into(),
            transactional_id: "istv-geocode".into(),
            batch_max: DEFAULT_BATCH_MAX,
            batch_wait: Duration::from_millis(50),
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// The consumer's context: lag from statistics, and the partitions revoked
/// since the loop last looked (their messages in hand are another
/// instance's now).
pub struct GeocodeContext {
    metrics: KafkaMetrics,
    revoked: Mutex<HashSet<(String, i32)>>,
}

impl ClientContext for GeocodeContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.metrics.set_lag(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka consumer error");
    }
}

impl ConsumerContext for GeocodeContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut revoked = self.revoked.lock().expect("revoked lock");
            for e in list.elements() {
                revoked.insert((e.topic().to_owned(), e.partition()));
            }
            tracing::info!(partitions = list.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            tracing::info!(partitions = list.count(), "partitions assigned");
        }
    }
}

/// The producer's context: errors through `tracing`.
pub struct ProducerLog;

impl ClientContext for ProducerLog {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka producer error");
    }
}

impl ProducerContext for ProducerLog {
    type DeliveryOpaque = ();
    // A failed send fails the transaction's commit, which aborts it.
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

/// What one committed batch counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchCounts {
    /// Messages consumed.
    pub consumed: u64,
    /// Geocoded events sent.
    pub geocoded: u64,
    /// Dead letters by reason code.
    pub dead: BTreeMap<&'static str, u64>,
}

/// The running service.
pub struct GeocodeService {
    consumer: BaseConsumer<GeocodeContext>,
    producer: BaseProducer<ProducerLog>,
    registry: RegistryClient,
    decoder: Decoder,
    stage: Stage,
    metrics: KafkaMetrics,
    config: GeocodeConfig,
    attendances: String,
    geocoded: String,
    dead_letters: String,
}

impl GeocodeService {
    /// A service over the brokers of `settings`; nothing is read until
    /// [`GeocodeService::run`].
    pub fn new(
        settings: &Settings,
        config: GeocodeConfig,
        registry: RegistryClient,
        stage: Stage,
        metrics: KafkaMetrics,
    ) -> Result<GeocodeService, GeocodeError> {
        let consumer = settings
            .consumer(&config.group)
            .create_with_context(GeocodeContext {
                metrics: metrics.clone(),
                revoked: Mutex::new(HashSet::new()),
            })?;
        let producer = settings
            .transactional_producer(&config.transactional_id)
            .create_with_context(ProducerLog)?;
        Ok(GeocodeService {
            consumer,
            producer,
            registry,
            decoder: Decoder::new(istv_core::schema::attendance_v1().clone()),
            stage,
            metrics,
            config,
            attendances: settings.topic(topics::ATTENDANCES),
            geocoded: settings.topic(topics::GEOCODED),
            dead_letters: settings.topic(topics::DEAD_LETTERS),
        })
    }

    /// Runs until `stop` is set (after the batch in hand is committed).
    /// `ready` is set once the producer's transactions are initialised and
    /// the consumer subscribed.
    pub fn run(mut self, stop: &AtomicBool, ready: &AtomicBool) -> Result<(), GeocodeError> {
        // Aborts what this transactional id's previous life left open.
        self.producer.init_transactions(self.config.call_timeout)?;
        self.consumer.subscribe(&[&self.attendances])?;
        ready.store(true, Ordering::SeqCst);
        tracing::info!(
            topic = %self.attendances,
            group = %self.config.group,
            transactional_id = %self.config.transactional_id,
            "geocoding"
        );
        while !stop.load(Ordering::SeqCst) {
            let batch = self.gather(stop);
            if batch.is_empty() {
                continue;
            }
            if !self.find_schemas(&batch, stop) {
                break;
            }
            match self.transact(&batch) {
                Ok(counts) => self.count(&counts),
                Err(e) => {
                    // Anything else is aborted; an abort that fails ends
                    // the process, whose restart aborts what is open.
                    let fatal = matches!(&e, GeocodeError::Kafka(KafkaError::Transaction(t)) if t.is_fatal());
                    if fatal {
                        ready.store(false, Ordering::SeqCst);
                        return Err(e);
                    }
                    tracing::warn!(error = %e, messages = batch.len(), "batch aborted; it is read again");
                    if let Err(e) = self.producer.abort_transaction(self.config.call_timeout) {
                        ready.store(false, Ordering::SeqCst);
                        return Err(e.into());
                    }
                    self.rewind(&batch);
                }
            }
        }
        ready.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Polls until a batch is full, or `batch_wait` after its first
    /// message; drops messages of partitions revoked meanwhile.
    fn gather(&mut self, stop: &AtomicBool) -> Vec<OwnedMessage> {
        let mut batch: Vec<OwnedMessage> = Vec::new();
        let mut first: Option<Instant> = None;
        while batch.len() < self.config.batch_max && !stop.load(Ordering::SeqCst) {
            let wait = match first {
                None => Duration::from_millis(100),
                Some(t) => match self.config.batch_wait.checked_sub(t.elapsed()) {
                    Some(left) => left,
                    None => break,
                },
            };
            match self.consumer.poll(wait) {
                // Nothing yet: the caller looks at `stop` again.
                None if first.is_none() => break,
                None => {}
                Some(Ok(m)) => {
                    first.get_or_insert_with(Instant::now);
                    batch.push(m.detach());
                }
                Some(Err(e)) => tracing::warn!(error = %e, "kafka consume error"),
            }
        }
        let revoked = std::mem::take(&mut *self.consumer.context().revoked.lock().expect("lock"));
        if !revoked.is_empty() {
            batch.retain(|m| !revoked.contains(&(m.topic().to_owned(), m.partition())));
        }
        batch
    }

    /// Gives the decoder every writer schema the batch needs. The registry
    /// being unreachable is waited out, never taken for an unknown id (that
    /// would dead-letter good messages); false if `stop` came meanwhile.
    fn find_schemas(&mut self, batch: &[OwnedMessage], stop: &AtomicBool) -> bool {
        for m in batch {
            let mut delay = Duration::from_millis(100);
            while let Err(e) = self.registry.prepare(&mut self.decoder, m.payload()) {
                tracing::warn!(error = %e, "schema registry unavailable; waiting");
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
        true
    }

    /// One transaction: every output of the batch and its offsets.
    fn transact(&mut self, batch: &[OwnedMessage]) -> Result<BatchCounts, GeocodeError> {
        self.producer.begin_transaction()?;
        let mut counts = BatchCounts::default();
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for m in batch {
            let origin = Origin {
                topic: m.topic(),
                partition: m.partition(),
                offset: m.offset(),
            };
            let output = self
                .stage
                .transform(&self.decoder, m.key(), m.payload(), &origin);
            let timestamp = m.timestamp().to_millis();
            match output {
                Output::Geocoded { key, payload } => {
                    // The upload's id and its time travel on.
                    let headers = m.headers().cloned();
                    self.send(
                        &self.geocoded,
                        Some(&key),
                        Some(&payload),
                        timestamp,
                        headers,
                    )?;
                    counts.geocoded += 1;
                }
                Output::Dead { kind, headers } => {
                    let mut h = OwnedHeaders::new();
                    for (k, v) in &headers {
                        h = h.insert(Header {
                            key: k,
                            value: Some(v.as_str()),
                        });
                    }
                    self.send(&self.dead_letters, m.key(), m.payload(), timestamp, Some(h))?;
                    *counts.dead.entry(kind.code()).or_default() += 1;
                }
            }
            counts.consumed += 1;
            next.insert((m.topic().to_owned(), m.partition()), m.offset() + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), offset) in &next {
            offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
        }
        let group = self
            .consumer
            .group_metadata()
            .ok_or(GeocodeError::NoGroup)?;
        self.producer
            .send_offsets_to_transaction(&offsets, &group, self.config.call_timeout)?;
        self.producer.commit_transaction(self.config.call_timeout)?;
        Ok(counts)
    }

    /// Queues a message in the open transaction, waiting while the queue is
    /// full.
    fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        timestamp: Option<i64>,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), GeocodeError> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = payload {
            record = record.payload(p);
        }
        if let Some(t) = timestamp {
            record = record.timestamp(t);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.producer.poll(Duration::ZERO);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// After an abort: back to the batch's first offset of each partition,
    /// so that the batch is read again. A partition no longer assigned is
    /// left: its new owner starts from the committed offset.
    fn rewind(&mut self, batch: &[OwnedMessage]) {
        let mut first: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for m in batch {
            first
                .entry((m.topic().to_owned(), m.partition()))
                .or_insert(m.offset());
        }
        for ((topic, partition), offset) in first {
            if let Err(e) = self.consumer.seek(
                &topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(10),
            ) {
                tracing::warn!(error = %e, topic, partition, "cannot rewind after an abort");
            }
        }
    }

    fn count(&self, counts: &BatchCounts) {
        let m = &self.metrics;
        m.consumed
            .with_label_values(&[&self.attendances])
            .inc_by(counts.consumed);
        m.produced
            .with_label_values(&[&self.geocoded])
            .inc_by(counts.geocoded);
        let dead: u64 = counts.dead.values().sum();
        if dead > 0 {
            m.produced
                .with_label_values(&[&self.dead_letters])
                .inc_by(dead);
        }
        for (reason, n) in &counts.dead {
            m.dead_letters
                .with_label_values(&[self.attendances.as_str(), reason])
                .inc_by(*n);
        }
    }
}
