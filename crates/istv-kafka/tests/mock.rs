//! The ingest producer against librdkafka's mock cluster, which injects the
//! faults a real broker cannot be made to show on demand: a broker down
//! and back up while a batch is in flight, produce requests answered with
//! errors. Each batch either returns acknowledged, with every message on
//! the topic exactly once, or returns an error (no receipt) — and what was
//! acknowledged is never lost nor written twice.

use chrono::{TimeZone, Utc};
use istv_core::{Attendance, ErrorCode, Field, FieldError, RawRecord, Validator};
use istv_kafka::{KafkaMetrics, Publisher, SchemaIds, Settings};
use istv_server::{Forward, ForwardUpload};
use istv_wire::records::{attendance_from_value, rejection_from_value};
use istv_wire::{topics, Decoder};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const IDS: SchemaIds = SchemaIds {
    attendance: 1,
    rejection: 2,
};

/// `n` attendances of RJ122, record ids `R0`...
fn attendances(n: usize) -> Vec<Attendance> {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut v = Validator::new(now);
    (0..n)
        .map(|i| {
            let mut raw = RawRecord::new(i as u64 + 1);
            let id = format!("R{i}");
            let minute = format!("2024-03-01T10:{:02}", i % 60);
            for (f, t) in [
                (Field::SiteCode, "RJ122"),
                (Field::RecordId, id.as_str()),
                (Field::AssaultDatetime, minute.as_str()),
                (Field::AssaultMethod, "sharp_object"),
                (Field::AssaultLocationType, "street"),
                (Field::AssaultPostcode, "SE5 9RS"),
            ] {
                raw.set(f, Cow::Owned(t.to_owned()));
            }
            v.validate(&raw).record.expect("a valid row")
        })
        .collect()
}

fn upload() -> ForwardUpload<'static> {
    ForwardUpload {
        upload_id: "u-1",
        site_code: "RJ122",
        received_at: Utc.timestamp_millis_opt(1_709_287_200_000).unwrap(),
    }
}

fn publisher(cluster: &MockCluster<'_, DefaultProducerContext>) -> Publisher {
    let settings = Settings::new(
        &cluster.bootstrap_servers(),
        "",
        &[
            // Faults are waited out well within a test.
            "message.timeout.ms=20000".into(),
            "retry.backoff.ms=50".into(),
            "statistics.interval.ms=0".into(),
        ],
    )
    .unwrap();
    let metrics = KafkaMetrics::new(&prometheus::Registry::new()).unwrap();
    Publisher::new(&settings, IDS, metrics).unwrap()
}

/// Every message on `topic` (all partitions), read until `want` have come
/// and then 1 s more in which none may come: (key, value, upload header).
fn read_all(
    cluster: &MockCluster<'_, DefaultProducerContext>,
    topic: &str,
    want: usize,
) -> Vec<(String, Vec<u8>, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", format!("read-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_until: Option<Instant> = None;
    loop {
        if got.len() >= want && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_secs(1));
        }
        if quiet_until.is_some_and(|t| Instant::now() > t) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {want} messages of {topic}",
            got.len()
        );
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            let header = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "istv.upload_id"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
                .unwrap_or_default();
            got.push((
                String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
                m.payload().unwrap().to_vec(),
                header,
            ));
        }
    }
    got
}

/// Each attendance read back once, by key; fails on any key seen twice.
fn once_each(messages: &[(String, Vec<u8>, String)]) -> BTreeMap<String, Attendance> {
    let schema = istv_core::schema::attendance_v1();
    let mut d = Decoder::new(schema.clone());
    d.add_writer(IDS.attendance, schema.clone());
    let mut by_key = BTreeMap::new();
    for (key, value, header) in messages {
        assert_eq!(header, "u-1");
        let a = attendance_from_value(&d.decode(value).unwrap().value).unwrap();
        assert_eq!(key, &format!("{}/{}", a.site_code, a.record_id));
        assert!(
            by_key.insert(key.clone(), a).is_none(),
            "{key} written twice"
        );
    }
    by_key
}

fn expected(records: &[Attendance]) -> BTreeMap<String, Attendance> {
    records
        .iter()
        .map(|a| (format!("{}/{}", a.site_code, a.record_id), a.clone()))
        .collect()
}

#[test]
fn a_batch_sent_while_the_broker_is_down_is_acknowledged_once_it_is_back() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(topics::ATTENDANCES, 3, 1).unwrap();
    cluster.create_topic(topics::REJECTIONS, 3, 1).unwrap();
    let p = publisher(&cluster);
    // The producer knows the cluster first.
    p.send(&upload(), &attendances(1), &[]).unwrap();

    let records = attendances(300);
    cluster.broker_down(1).unwrap();
    let sending = std::thread::scope(|s| {
        let sent = s.spawn(|| p.send(&upload(), &records[1..], &[]));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            !sent.is_finished(),
            "acknowledged while the broker was down"
        );
        cluster.broker_up(1).unwrap();
        sent.join().unwrap()
    });
    assert_eq!(sending, Ok(()));
    let got = once_each(&read_all(&cluster, topics::ATTENDANCES, 300));
    assert_eq!(got, expected(&records));
}

#[test]
fn produce_errors_are_retried_without_doubling_and_rejections_follow() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(topics::ATTENDANCES, 3, 1).unwrap();
    cluster.create_topic(topics::REJECTIONS, 1, 1).unwrap();
    let p = publisher(&cluster);
    p.send(&upload(), &attendances(1), &[]).unwrap();
    // The next produce requests fail with retriable errors, some of which
    // (a timeout, a leader change) leave the client unsure whether the
    // broker wrote the batch: the idempotent producer resends with the
    // same sequence numbers and the broker writes it once.
    use RDKafkaRespErr::*;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let records = attendances(120);
    let errors: Vec<FieldError> = (0..3)
        .map(|i| FieldError {
            row: 200 + i,
            field: Some("assault_postcode".into()),
            code: ErrorCode::InvalidPostcode,
            message: "not a full or partial UK postcode".into(),
        })
        .collect();
    assert_eq!(p.send(&upload(), &records[1..], &errors), Ok(()));
    let got = once_each(&read_all(&cluster, topics::ATTENDANCES, 120));
    assert_eq!(got, expected(&records));

    let rejected = read_all(&cluster, topics::REJECTIONS, 3);
    let schema = istv_core::schema::rejection_v1();
    let mut d = Decoder::new(schema.clone());
    d.add_writer(IDS.rejection, schema.clone());
    let rows: Vec<(String, u64)> = rejected
        .iter()
        .map(|(key, value, _)| {
            let r = rejection_from_value(&d.decode(value).unwrap().value).unwrap();
            assert_eq!(r.upload_id, "u-1");
            (key.clone(), r.error.row)
        })
        .collect();
    // One partition, in row order.
    assert_eq!(
        rows,
        [
            ("RJ122/u-1".to_owned(), 200),
            ("RJ122/u-1".to_owned(), 201),
            ("RJ122/u-1".to_owned(), 202)
        ]
    );
}

#[test]
fn a_batch_the_broker_refuses_fails_and_is_not_acknowledged() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(topics::ATTENDANCES, 1, 1).unwrap();
    let p = publisher(&cluster);
    p.send(&upload(), &attendances(1), &[]).unwrap();
    // An error no retry can mend: the batch fails, so the upload gets no
    // receipt and is sent again by its uploader.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; 4],
    );
    let records = attendances(5);
    let failed = p.send(&upload(), &records[1..], &[]);
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.contains("istv.attendances.v1 not delivered")),
        "{failed:?}"
    );
    // The next batch goes through; the topic holds the first one and it,
    // each record once: the refused batch was not written.
    cluster.clear_request_errors(RDKafkaApiKey::Produce);
    let again = attendances(8);
    assert_eq!(p.send(&upload(), &again[1..], &[]), Ok(()));
    let got = once_each(&read_all(&cluster, topics::ATTENDANCES, 8));
    assert_eq!(got, expected(&again));
}
