//! The producer of `istv ingest`: an upload's validated attendances to
//! `istv.attendances.v1` and its row errors to `istv.rejections.v1`, each
//! batch returned only once the broker has acknowledged every message.
//!
//! The producer is idempotent with `acks=all`: librdkafka retries a send
//! that failed or timed out with the same producer id and sequence number,
//! so the broker writes it once and in order, and acknowledges it once all
//! in-sync replicas have it. A message that still fails (after
//! `message.timeout.ms`, or a fatal producer error) fails the upload: no
//! receipt, so the uploader sends the file again, and the rows that did
//! arrive are recognised downstream as duplicates by their content hash.

use crate::metrics::KafkaMetrics;
use crate::settings::Settings;
use istv_core::{Attendance, FieldError};
use istv_server::{Forward, ForwardUpload};
use istv_wire::records::{attendance_value, rejection_value};
use istv_wire::{encode, topics, Schema};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::Message;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Header naming the upload an attendance or rejection came in.
pub const UPLOAD_HEADER: &str = "istv.upload_id";

/// Why the producer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    /// librdkafka refused the settings.
    #[error("cannot make the kafka producer: {0}")]
    Client(#[from] KafkaError),
}

/// The messages of one batch not yet acknowledged, and the first failure.
#[derive(Default)]
pub(crate) struct Tracker {
    state: Mutex<(usize, Option<String>)>,
    done: Condvar,
}

impl Tracker {
    fn add(&self) {
        self.state.lock().expect("tracker lock").0 += 1;
    }

    fn settle(&self, failure: Option<String>) {
        let mut s = self.state.lock().expect("tracker lock");
        s.0 -= 1;
        if s.1.is_none() {
            s.1 = failure;
        }
        if s.0 == 0 {
            self.done.notify_all();
        }
    }

    /// Waits until every message is settled; the first failure.
    fn wait(&self) -> Option<String> {
        let mut s = self.state.lock().expect("tracker lock");
        while s.0 > 0 {
            s = self.done.wait(s).expect("tracker lock");
        }
        s.1.take()
    }
}

/// The producer's context: settles each delivery report with its batch and
/// counts what was acknowledged.
pub(crate) struct PublishContext {
    metrics: KafkaMetrics,
    /// Set once librdkafka reports a fatal error: the producer can send no
    /// more (an idempotence guarantee could no longer be kept).
    fatal: AtomicBool,
}

impl ClientContext for PublishContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.metrics.set_lag(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
            self.fatal.store(true, Ordering::SeqCst);
            tracing::error!(error = %error, reason, "fatal kafka producer error: no more uploads are taken");
        } else {
            tracing::warn!(error = %error, reason, "kafka producer error");
        }
    }
}

impl ProducerContext for PublishContext {
    type DeliveryOpaque = Arc<Tracker>;

    fn delivery(&self, result: &DeliveryResult<'_>, tracker: Arc<Tracker>) {
        match result {
            Ok(m) => {
                self.metrics.produced.with_label_values(&[m.topic()]).inc();
                tracker.settle(None);
            }
            Err((e, m)) => tracker.settle(Some(format!("{} not delivered: {e}", m.topic()))),
        }
    }
}

/// The writer schemas the producer frames values with, and their registry
/// ids.
#[derive(Debug, Clone, Copy)]
pub struct SchemaIds {
    /// Of `istv.v1.Attendance` (subject `istv.attendances.v1-value`).
    pub attendance: u32,
    /// Of `istv.v1.Rejection` (subject `istv.rejections.v1-value`).
    pub rejection: u32,
}

/// The producer of `istv ingest`.
pub struct Publisher {
    producer: ThreadedProducer<PublishContext>,
    attendances: String,
    rejections: String,
    ids: SchemaIds,
}

impl Publisher {
    /// A producer on the brokers of `settings`, framing with `ids`,
    /// counting into `metrics`.
    pub fn new(
        settings: &Settings,
        ids: SchemaIds,
        metrics: KafkaMetrics,
    ) -> Result<Publisher, PublisherError> {
        let context = PublishContext {
            metrics,
            fatal: AtomicBool::new(false),
        };
        let producer = settings.producer().create_with_context(context)?;
        Ok(Publisher {
            producer,
            attendances: settings.topic(topics::ATTENDANCES),
            rejections: settings.topic(topics::REJECTIONS),
            ids,
        })
    }

    /// Queues one message, waiting while librdkafka's queue is full.
    fn queue(
        &self,
        tracker: &Arc<Tracker>,
        topic: &str,
        key: &str,
        payload: &[u8],
        upload: &ForwardUpload<'_>,
    ) -> Result<(), String> {
        let headers = OwnedHeaders::new().insert(Header {
            key: UPLOAD_HEADER,
            value: Some(upload.upload_id),
        });
        tracker.add();
        let mut record = BaseRecord::with_opaque_to(topic, tracker.clone())
            .key(key)
            .payload(payload)
            .timestamp(upload.received_at.timestamp_millis())
            .headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The background thread drains the queue as the broker
                    // acknowledges.
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    tracker.settle(Some(format!("{topic} not queued: {e}")));
                    return Err(format!("{topic} not queued: {e}"));
                }
            }
        }
    }

    /// Sends a batch and waits for every acknowledgement.
    pub fn publish(
        &self,
        upload: &ForwardUpload<'_>,
        attendances: &[Attendance],
        errors: &[FieldError],
    ) -> Result<(), String> {
        if self.producer.context().fatal.load(Ordering::SeqCst) {
            return Err("the producer has had a fatal error".into());
        }
        let tracker = Arc::new(Tracker::default());
        let sent = self.queue_all(&tracker, upload, attendances, errors);
        // Wait for what was queued even when queueing stopped: its reports
        // refer to the tracker.
        let failed = tracker.wait();
        sent?;
        failed.map_or(Ok(()), Err)
    }

    fn queue_all(
        &self,
        tracker: &Arc<Tracker>,
        upload: &ForwardUpload<'_>,
        attendances: &[Attendance],
        errors: &[FieldError],
    ) -> Result<(), String> {
        let schema: &Schema = istv_core::schema::attendance_v1();
        for a in attendances {
            let payload = encode(self.ids.attendance, schema, attendance_value(a))
                .map_err(|e| e.to_string())?;
            let key = topics::record_key(&a.site_code, &a.record_id);
            self.queue(tracker, &self.attendances, &key, &payload, upload)?;
        }
        // An upload's rejections stay in row order on one partition.
        let key = format!("{}/{}", upload.site_code, upload.upload_id);
        let schema = istv_core::schema::rejection_v1();
        for e in errors {
            let payload = encode(
                self.ids.rejection,
                schema,
                rejection_value(upload.upload_id, e),
            )
            .map_err(|e| e.to_string())?;
            self.queue(tracker, &self.rejections, &key, &payload, upload)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for every queued message (at shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
}

impl Forward for Publisher {
    fn send(
        &self,
        upload: &ForwardUpload<'_>,
        attendances: &[Attendance],
        errors: &[FieldError],
    ) -> Result<(), String> {
        self.publish(upload, attendances, errors)
    }

    fn is_ready(&self) -> bool {
        !self.producer.context().fatal.load(Ordering::SeqCst)
    }
}
