//! The consumer loop of `istv aggregate`, on a thread of its own: gather a
//! batch, dead-letter its poison, write its events and positions in one
//! store transaction, publish what changed. Rebalances run inside `poll`
//! on this same thread (the context's `rebalance`), so a batch is never
//! written while its partitions are being reassigned here; an instance
//! that is slow past its session is fenced by the store instead.

use super::positions::{Positions, Take};
use super::published::{aggregate_value, Change, Published};
use super::{AggregateError, AggregateMetrics, AggregateOptions};
use istv_aggregate::{Event, Query};
use istv_server::registry_client::{value_subject, RegistryClient};
use istv_store::{PartitionOffset, Store, StoreError, StreamBatch};
use istv_wire::dead_letter::{self, Origin, Routed};
use istv_wire::records::GeocodedEvent;
use istv_wire::Decoder;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the consumer thread is given.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) options: AggregateOptions,
    pub(crate) metrics: AggregateMetrics,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) ready: Arc<AtomicBool>,
}

/// How long to wait before trying the store or the registry again.
const RETRY: Duration = Duration::from_millis(500);

/// The consumer's context: positions restored from the store on
/// assignment, lag from the statistics.
struct Context {
    store: Store,
    runtime: tokio::runtime::Handle,
    group: String,
    topic: String,
    positions: Arc<Mutex<Positions>>,
    metrics: AggregateMetrics,
    stop: Arc<AtomicBool>,
}

impl ClientContext for Context {
    fn stats(&self, statistics: Statistics) {
        self.metrics.kafka.set_lag(&statistics);
    }
}

impl Context {
    /// The stored positions, read until the store answers (or the
    /// service stops: then none).
    fn stored(&self) -> Option<Vec<PartitionOffset>> {
        loop {
            match self
                .runtime
                .block_on(self.store.consumer_offsets(&self.group, &self.topic))
            {
                Ok(s) => return Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the stored positions; trying again");
                    if self.stop.load(Ordering::SeqCst) {
                        return None;
                    }
                    std::thread::sleep(RETRY);
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let Some(stored) = self.stored() else {
                    self.positions.lock().expect("positions").revoke_all();
                    return;
                };
                for (topic, partition) in &parts {
                    let at = stored
                        .iter()
                        .find(|s| &s.topic == topic && s.partition == *partition)
                        .map_or(Offset::Beginning, |s| Offset::Offset(s.next_offset));
                    if let Err(e) = tpl.set_partition_offset(topic, *partition, at) {
                        tracing::error!(error = %e, topic, partition, "cannot set a start position");
                    }
                }
                self.positions
                    .lock()
                    .expect("positions")
                    .assign(&parts, &stored);
                tracing::info!(partitions = ?parts.iter().map(|p| p.1).collect::<Vec<_>>(), "assigned; seeking to the stored positions");
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "cannot take the assignment");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.positions.lock().expect("positions").revoke(&parts);
                tracing::info!(partitions = ?parts.iter().map(|p| p.1).collect::<Vec<_>>(), "revoked; the pending batch is dropped");
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "cannot give the assignment up");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed");
                self.positions.lock().expect("positions").revoke_all();
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        // Only tools read the Kafka offsets; the store's are the truth.
        if let Err(e) = result {
            tracing::debug!(error = %e, "kafka offset commit failed (informational only)");
        }
    }
}

/// One consumed message's fate in a batch.
struct DeadMessage {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
}

/// A gathered batch.
struct Batch {
    events: Vec<Event>,
    /// Message timestamps (ms since the epoch) of the events, when known.
    stamps: Vec<Option<i64>>,
    dead: Vec<DeadMessage>,
}

/// What gathering ended with.
enum Gathered {
    /// Messages to write (possibly only positions to move).
    Batch(Batch),
    /// Nothing arrived.
    Idle,
    /// A rebalance happened: the batch is dropped.
    Stale,
}

fn client_config(options: &AggregateOptions) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &options.brokers)
        .set("broker.address.family", "v4");
    c
}

fn apply_overrides(c: &mut ClientConfig, options: &AggregateOptions) {
    for (k, v) in &options.client {
        c.set(k, v);
    }
}

/// Runs the loop until asked to stop.
pub(crate) fn run(shared: Shared) -> Result<(), AggregateError> {
    let o = &shared.options;
    let topic = o.geocoded_topic();
    let positions = Arc::new(Mutex::new(Positions::new()));
    let context = Context {
        store: shared.store.clone(),
        runtime: shared.runtime.clone(),
        group: o.group.clone(),
        topic: topic.clone(),
        positions: positions.clone(),
        metrics: shared.metrics.clone(),
        stop: shared.stop.clone(),
    };
    let mut cc = client_config(o);
    cc.set("group.id", &o.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // The geocode stage writes in transactions: only committed ones.
        .set("isolation.level", "read_committed")
        // Eager: every rebalance revokes all, then assigns, so a batch
        // never spans two assignments.
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("statistics.interval.ms", "5000");
    apply_overrides(&mut cc, o);
    let consumer: BaseConsumer<Context> = cc.create_with_context(context)?;
    let mut pc = client_config(o);
    pc.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("partitioner", "murmur2_random");
    for (k, v) in &o.client {
        // Consumer-only settings would only be warned about.
        if !k.starts_with("session.")
            && !k.starts_with("heartbeat.")
            && !k.starts_with("fetch.")
            && k != "auto.offset.reset"
            && k != "max.poll.interval.ms"
        {
            pc.set(k, v);
        }
    }
    let producer: FutureProducer = pc.create()?;
    let registry = RegistryClient::new(&o.registry_url, Duration::from_secs(10));
    let publishing = if o.publish_group_by.is_empty() {
        None
    } else {
        let pairs = [("group_by", o.publish_group_by.join(","))];
        let query = Query::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
            .map_err(|e| AggregateError::Grouping(e.to_string()))?;
        let subject = value_subject(&o.aggregates_topic());
        let id = loop {
            match registry.register(&subject, istv_core::schema::AGGREGATE_V1) {
                Ok(id) => break id,
                Err(e) if shared.stop.load(Ordering::SeqCst) => {
                    return Err(AggregateError::Registry(e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot register the aggregates schema; trying again");
                    std::thread::sleep(RETRY);
                }
            }
        };
        Some((query, id))
    };
    consumer.subscribe(&[&topic])?;
    shared.ready.store(true, Ordering::SeqCst);
    tracing::info!(topic, group = %o.group, "consuming");
    let mut lp = Loop {
        shared: &shared,
        consumer: &consumer,
        producer: &producer,
        registry: &registry,
        decoder: Decoder::new(istv_core::schema::geocoded_event_v1().clone()),
        positions,
        published: Published::new(),
        publishing,
        topic,
        last_publish: Instant::now() - o.publish_every,
    };
    while !shared.stop.load(Ordering::SeqCst) {
        lp.step();
    }
    tracing::info!("leaving the group");
    consumer.unsubscribe();
    Ok(())
}

/// The loop's state.
struct Loop<'a> {
    shared: &'a Shared,
    consumer: &'a BaseConsumer<Context>,
    producer: &'a FutureProducer,
    registry: &'a RegistryClient,
    decoder: Decoder,
    positions: Arc<Mutex<Positions>>,
    published: Published,
    publishing: Option<(Query, u32)>,
    topic: String,
    last_publish: Instant,
}

impl Loop<'_> {
    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }

    fn positions(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.positions.lock().expect("positions")
    }

    /// One batch, or an idle turn.
    fn step(&mut self) {
        match self.gather() {
            Gathered::Stale => {}
            Gathered::Idle => {
                if self.last_publish.elapsed() >= self.shared.options.publish_every {
                    self.publish();
                }
            }
            Gathered::Batch(batch) => {
                if self.write(batch) {
                    self.publish();
                }
            }
        }
    }

    /// Gathers messages until the batch is full or its time is up.
    fn gather(&mut self) -> Gathered {
        let o = &self.shared.options;
        let epoch = self.positions().epoch();
        let mut batch = Batch {
            events: Vec::new(),
            stamps: Vec::new(),
            dead: Vec::new(),
        };
        let mut taken = 0usize;
        let mut first: Option<Instant> = None;
        loop {
            let wait = match first {
                None => Duration::from_millis(100),
                Some(t) => {
                    let left = o.max_wait.saturating_sub(t.elapsed());
                    if left.is_zero() || taken >= o.max_batch {
                        break;
                    }
                    left
                }
            };
            let polled = self.consumer.poll(wait);
            if self.positions().epoch() != epoch {
                return Gathered::Stale;
            }
            let msg = match polled {
                None if first.is_none() => return Gathered::Idle,
                None => continue,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    if first.is_none() {
                        return Gathered::Idle;
                    }
                    continue;
                }
                Some(Ok(m)) => m,
            };
            let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
            if self.positions().take(topic, partition, offset) != Take::Take {
                continue;
            }
            first.get_or_insert_with(Instant::now);
            taken += 1;
            self.shared
                .metrics
                .kafka
                .consumed
                .with_label_values(&[topic])
                .inc();
            let origin = Origin {
                topic,
                partition,
                offset,
            };
            let payload = msg.payload();
            // An unreachable registry is waited for, not a poison.
            while let Err(e) = self.registry.prepare(&mut self.decoder, payload) {
                tracing::warn!(error = %e, "schema registry unreachable; waiting");
                if self.stopping() {
                    return Gathered::Stale;
                }
                std::thread::sleep(RETRY);
            }
            let dead = |reason: &'static str, headers| DeadMessage {
                key: msg.key().map(<[u8]>::to_vec),
                payload: payload.map(<[u8]>::to_vec),
                reason,
                headers,
            };
            match dead_letter::route(&self.decoder, payload, &origin) {
                Routed::Record(decoded) => {
                    match GeocodedEvent::from_value(
                        &decoded.value,
                        self.shared.store.disclosure_keys(),
                    ) {
                        Ok(g) => {
                            batch.events.push(g.event);
                            batch.stamps.push(msg.timestamp().to_millis());
                        }
                        Err(e) => {
                            let headers =
                                mapping_headers(&e.to_string(), &origin, decoded.schema_id);
                            batch
                                .dead
                                .push(dead(istv_wire::PoisonKind::MalformedDatum.code(), headers));
                        }
                    }
                }
                Routed::DeadLetter(d) => batch.dead.push(dead(d.kind.code(), d.headers)),
            }
        }
        Gathered::Batch(batch)
    }

    /// Writes a batch: dead letters first (acked), then events and
    /// positions in one transaction. Returns whether it committed.
    fn write(&mut self, batch: Batch) -> bool {
        let moves = self.positions().moves();
        if moves.is_empty() {
            return false;
        }
        if !self.send_dead_letters(&batch.dead) {
            self.start_over();
            return false;
        }
        let group = self.shared.options.group.clone();
        let stream = StreamBatch {
            group: &group,
            moves: &moves,
        };
        let result = self
            .shared
            .runtime
            .block_on(self.shared.store.apply_stream_batch(&stream, &batch.events));
        let m = &self.shared.metrics;
        match result {
            Ok(outcome) => {
                self.positions().committed();
                m.batches.inc();
                m.events
                    .with_label_values(&["accepted"])
                    .inc_by(outcome.accepted);
                m.events
                    .with_label_values(&["duplicate"])
                    .inc_by(outcome.duplicates);
                m.events
                    .with_label_values(&["correction"])
                    .inc_by(outcome.corrections);
                let now = chrono::Utc::now().timestamp_millis();
                for t in batch.stamps.iter().flatten() {
                    m.upload_to_visible
                        .observe((now - t).max(0) as f64 / 1000.0);
                }
                // For tools that show the group's lag; never read back.
                let mut tpl = TopicPartitionList::new();
                for mv in &moves {
                    let _ =
                        tpl.add_partition_offset(&mv.topic, mv.partition, Offset::Offset(mv.to));
                }
                if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                    tracing::debug!(error = %e, "kafka offset commit not sent (informational only)");
                }
                tracing::debug!(
                    events = batch.events.len(),
                    dead = batch.dead.len(),
                    "batch committed"
                );
                true
            }
            Err(StoreError::OffsetFenced {
                partition,
                from,
                stored,
                ..
            }) => {
                m.fenced.inc();
                tracing::warn!(partition, ?from, ?stored, "batch refused: another instance moved the partition on; reading the positions again");
                if let Some(stored) = self.read_stored() {
                    self.positions().restart_from(&stored);
                }
                self.seek_to_starts();
                false
            }
            Err(e) => {
                m.store_errors.inc();
                tracing::error!(error = %e, "batch failed in the store; consuming it again");
                std::thread::sleep(RETRY);
                self.start_over();
                false
            }
        }
    }

    /// Drops the pending batch and reads again from the positions it
    /// started at.
    fn start_over(&mut self) {
        self.positions().drop_pending();
        self.seek_to_starts();
    }

    fn read_stored(&self) -> Option<Vec<PartitionOffset>> {
        let group = &self.shared.options.group;
        match self
            .shared
            .runtime
            .block_on(self.shared.store.consumer_offsets(group, &self.topic))
        {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the stored positions");
                None
            }
        }
    }

    /// Seeks every owned partition to its start position.
    fn seek_to_starts(&self) {
        let starts = self.positions().starts();
        for ((topic, partition), from) in starts {
            let at = from.map_or(Offset::Beginning, Offset::Offset);
            if let Err(e) = self
                .consumer
                .seek(&topic, partition, at, Duration::from_secs(10))
            {
                // Not fetching yet (just assigned): the assignment's
                // position is already the stored one.
                tracing::debug!(error = %e, topic, partition, "seek failed");
            }
        }
    }

    /// Sends the dead letters and waits for the broker's acks.
    fn send_dead_letters(&self, dead: &[DeadMessage]) -> bool {
        if dead.is_empty() {
            return true;
        }
        let dlq = self.shared.options.dead_letter_topic();
        let mut futures = Vec::with_capacity(dead.len());
        for d in dead {
            let mut headers = OwnedHeaders::new_with_capacity(d.headers.len());
            for (k, v) in &d.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&dlq).headers(headers);
            if let Some(k) = &d.key {
                record = record.key(k.as_slice());
            }
            if let Some(p) = &d.payload {
                record = record.payload(p.as_slice());
            }
            match self.producer.send_result(record) {
                Ok(f) => futures.push(f),
                Err((e, _)) => {
                    tracing::error!(error = %e, "cannot queue a dead letter");
                    return false;
                }
            }
        }
        let mut ok = true;
        for (f, d) in futures.into_iter().zip(dead) {
            match self.shared.runtime.block_on(f) {
                Ok(Ok(_)) => {
                    let m = &self.shared.metrics;
                    m.kafka.produced.with_label_values(&[dlq.as_str()]).inc();
                    m.kafka
                        .dead_letters
                        .with_label_values(&[self.topic.as_str(), d.reason])
                        .inc();
                }
                Ok(Err((e, _))) => {
                    tracing::error!(error = %e, "a dead letter was not delivered");
                    ok = false;
                }
                Err(_) => ok = false,
            }
        }
        ok
    }

    /// Publishes the groups whose published figure changed.
    fn publish(&mut self) {
        self.last_publish = Instant::now();
        let Some((query, schema_id)) = &self.publishing else {
            return;
        };
        let o = &self.shared.options;
        let rows = match self
            .shared
            .runtime
            .block_on(self.shared.store.aggregate(query, o.disclosure.clone()))
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the aggregates to publish");
                return;
            }
        };
        let dims: Vec<&str> = o.publish_group_by.iter().map(String::as_str).collect();
        let changes = self.published.changes(&dims, &rows);
        if changes.is_empty() {
            return;
        }
        let topic = o.aggregates_topic();
        let schema = istv_core::schema::aggregate_v1();
        let mut futures = Vec::with_capacity(changes.len());
        for c in &changes {
            let payload = match c.figure {
                Some(f) => {
                    match istv_wire::encode(*schema_id, schema, aggregate_value(&c.group, f)) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            tracing::error!(error = %e, key = c.key, "cannot encode an aggregate");
                            continue;
                        }
                    }
                }
                None => None,
            };
            let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&topic).key(&c.key);
            if let Some(p) = &payload {
                record = record.payload(p.as_slice());
            }
            match self.producer.send_result(record) {
                Ok(f) => futures.push((f, c)),
                Err((e, _)) => tracing::error!(error = %e, "cannot queue an aggregate"),
            }
        }
        let mut sent: Vec<Change> = Vec::with_capacity(futures.len());
        for (f, c) in futures {
            if let Ok(Ok(_)) = self.shared.runtime.block_on(f) {
                sent.push(c.clone());
            }
        }
        self.shared
            .metrics
            .kafka
            .produced
            .with_label_values(&[topic.as_str()])
            .inc_by(sent.len() as u64);
        // What was not acked is sent at the next check.
        self.published.sent(&sent);
    }
}

/// The dead-letter headers of a decoded value the domain refuses.
fn mapping_headers(
    error: &str,
    origin: &Origin<'_>,
    schema_id: u32,
) -> Vec<(&'static str, String)> {
    vec![
        (
            dead_letter::REASON_HEADER,
            istv_wire::PoisonKind::MalformedDatum.code().to_owned(),
        ),
        (dead_letter::ERROR_HEADER, error.to_owned()),
        (dead_letter::TOPIC_HEADER, origin.topic.to_owned()),
        (dead_letter::PARTITION_HEADER, origin.partition.to_string()),
        (dead_letter::OFFSET_HEADER, origin.offset.to_string()),
        (dead_letter::SCHEMA_ID_HEADER, schema_id.to_string()),
    ]
}
