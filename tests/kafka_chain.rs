//! The scaled-out chain on a real Kafka-protocol broker (tansu) and
//! PostgreSQL: two `istv aggregate` instances in one consumer group
//! consume geocoded events, one is killed with SIGKILL mid-stream and
//! restarted, and the store ends exactly as if the same events had been
//! applied once, in order: the counts of several groupings (straight from
//! the store, and through `istv query`'s API), the recount, and the latest
//! message of every group on the compacted aggregates topic. Then the
//! whole chain: a feed uploaded twice to `istv ingest`, geocoded by `istv
//! geocode`, counted by two aggregate instances (one SIGKILLed and
//! restarted), answers through `istv query` as `istv serve` answers for
//! the same feed. No test waits
//! on watermarks or lag (tansu's are wrong): the stored positions must
//! reach the end of every partition, as the producer's delivery reports
//! give it.

use chrono::{TimeZone, Utc};
use istv_aggregate::{Disclosure, Event, Query};
use istv_e2e::aggregate::{metric, Aggregator};
use istv_e2e::events::{stream_feed, STREAM_SITES};
use istv_e2e::process::Service;
use istv_e2e::registry::Registry;
use istv_e2e::tansu::{consumer_config, producer_config, Tansu};
use istv_e2e::{fresh_pg_database, get, istv, stderr, Server};
use istv_server::registry_client::{value_subject, RegistryClient};
use istv_store::Store;
use istv_wire::records::GeocodedEvent;
use istv_wire::{topics, Decoder, Value};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const GROUP: &str = "istv-aggregate";
const PARTITIONS: i32 = 4;

fn client_config(pairs: Vec<(&'static str, String)>) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in pairs {
        config.set(k, v);
    }
    config
}

/// Produces the events keyed `site/record_id` with the registered schema
/// id; the end position of every partition from the delivery reports.
async fn produce(brokers: &str, schema_id: u32, events: &[Event]) -> BTreeMap<i32, i64> {
    let producer: FutureProducer = client_config(producer_config(brokers)).create().unwrap();
    let schema = istv_core::schema::geocoded_event_v1();
    let mut pending = Vec::new();
    for e in events {
        let g = GeocodedEvent {
            event: e.clone(),
            assault_at: Utc.timestamp_opt(1_704_067_200, 0).unwrap(),
            arrival_at: None,
        };
        let payload = istv_wire::encode(schema_id, schema, g.to_value().unwrap()).unwrap();
        let key = topics::record_key(&e.site_code, &e.record_id);
        let record = FutureRecord::to(topics::GEOCODED)
            .key(&key)
            .payload(&payload);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    let mut ends = BTreeMap::new();
    for p in pending {
        let d = p.await.unwrap().map_err(|(e, _)| e).unwrap();
        let end = ends.entry(d.partition).or_insert(0i64);
        *end = (*end).max(d.offset + 1);
    }
    ends
}

async fn positions(store: &Store) -> BTreeMap<i32, i64> {
    store
        .consumer_offsets(GROUP, topics::GEOCODED)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition, p.next_offset))
        .collect()
}

const GROUPINGS: [&str; 6] = [
    "",
    "month",
    "borough",
    "assault_method,borough",
    "site,week",
    "age_band,sex,location_type",
];

async fn counts(store: &Store, group_by: &str) -> Vec<(Vec<String>, Option<u64>)> {
    let q = Query::from_pairs([("group_by", group_by)]).unwrap();
    let rows = store.aggregate(&q, Disclosure::NONE).await.unwrap();
    rows.into_iter().map(|r| (r.values, r.count)).collect()
}

/// The latest value of every key on the aggregates topic, read until it
/// equals `expected` (two minutes at most).
async fn read_aggregates(
    brokers: &str,
    registry: &str,
    expected: &BTreeMap<String, Option<u64>>,
) -> BTreeMap<String, Option<u64>> {
    let consumer: StreamConsumer = client_config(consumer_config(brokers, "test-reader"))
        .create()
        .unwrap();
    consumer.subscribe(&[topics::AGGREGATES]).unwrap();
    let client = RegistryClient::new(registry, Duration::from_secs(10));
    let mut decoder = Decoder::new(istv_core::schema::aggregate_v1().clone());
    let mut latest: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while &latest != expected {
        assert!(
            Instant::now() < deadline,
            "the aggregates topic holds {latest:?}, expected {expected:?}"
        );
        let Ok(msg) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await else {
            continue;
        };
        let msg = msg.unwrap();
        let key = String::from_utf8(msg.key().unwrap().to_vec()).unwrap();
        match msg.payload() {
            None => {
                latest.remove(&key);
            }
            Some(p) => {
                let c = client.clone();
                let bytes = p.to_vec();
                decoder = tokio::task::spawn_blocking(move || {
                    c.prepare(&mut decoder, Some(&bytes)).unwrap();
                    decoder
                })
                .await
                .unwrap();
                let d = decoder.decode(p).unwrap();
                let Value::Record(fields) = d.value else {
                    panic!("a record")
                };
                let count = match &fields[3].1 {
                    Value::Union(_, v) => match **v {
                        Value::Long(c) => Some(c as u64),
                        _ => None,
                    },
                    _ => None,
                };
                latest.insert(key, count);
            }
        }
    }
    latest
}

/// `istv query`'s answers for each grouping (as JSON rows).
fn api_answers(base: &str) -> Vec<serde_json::Value> {
    GROUPINGS
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| {
            let (status, body) = get(&format!("{base}/api/v1/aggregates?group_by={g}"));
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["rows"].clone()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_aggregate_instances_one_killed_count_every_event_once() {
    let tansu = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path(), None, &[]);
    tansu.create_topics(dir.path(), "", PARTITIONS as u32);
    let url = registry.url.clone();
    let schema_id = tokio::task::spawn_blocking(move || {
        RegistryClient::new(&url, Duration::from_secs(10))
            .register(
                &value_subject(topics::GEOCODED),
                istv_core::schema::GEOCODED_EVENT_V1,
            )
            .unwrap()
    })
    .await
    .unwrap();
    let db = fresh_pg_database("kafka_chain");
    let store = Store::connect(&db).await.unwrap();

    let events = stream_feed(3000);
    let ends = produce(&tansu.brokers, schema_id, &events).await;
    assert_eq!(ends.len(), PARTITIONS as usize);
    let total: i64 = ends.values().sum();
    assert_eq!(total, events.len() as i64);

    let args = [
        "--brokers",
        &tansu.brokers,
        "--schema-registry-url",
        &registry.url,
        "--batch-messages",
        "40",
        "--batch-wait-ms",
        "20",
        "--publish-every-ms",
        "500",
        "--max-perturbation",
        "0",
    ];
    let a = Aggregator::start(dir.path(), &db, &args);
    let b = Aggregator::start(dir.path(), &db, &args);
    // Mid-stream: a third of the messages stored, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done: i64 = positions(&store).await.values().sum();
        if done >= total / 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress: {done} of {total}; a: {} b: {}",
            a.log(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at: i64 = positions(&store).await.values().sum();
    a.kill9();
    let a = Aggregator::start(dir.path(), &db, &args);
    let deadline = Instant::now() + Duration::from_secs(180);
    while positions(&store).await != ends {
        assert!(
            Instant::now() < deadline,
            "positions {:?} did not reach {ends:?}; a: {} b: {}",
            positions(&store).await,
            a.log(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(killed_at < total, "the kill came after the end");

    // The same events applied once, in order, to a store of their own.
    let reference_db = fresh_pg_database("kafka_chain_ref");
    let reference = Store::connect(&reference_db).await.unwrap();
    reference
        .add_site(STREAM_SITES[0], "Reference")
        .await
        .unwrap();
    let upload = reference
        .begin_upload(STREAM_SITES[0], "csv")
        .await
        .unwrap();
    reference.apply_batch(&upload, &events).await.unwrap();
    for g in GROUPINGS {
        assert_eq!(
            counts(&store, g).await,
            counts(&reference, g).await,
            "group_by={g}"
        );
    }
    // Hand-derived: 3000 records, each counted once.
    assert_eq!(counts(&store, "").await, vec![(vec![], Some(3000))]);
    let report = store.recount_check().await.unwrap();
    assert!(
        report.is_ok(),
        "aggregates differ from a recount: {report:?}"
    );

    // Through the query API: the same answers as over the reference.
    let q = Server::start_query(dir.path(), Some(&db), &["--max-perturbation", "0"]);
    let r = Server::start_query(
        dir.path(),
        Some(&reference_db),
        &["--max-perturbation", "0"],
    );
    assert_eq!(api_answers(&q.base), api_answers(&r.base));
    // No upload is taken by istv query.
    let (status, _) = istv_e2e::post_upload(&q.base, "any", "text/csv", b"x");
    assert_eq!(status, 405);

    // The compacted topic's latest figures are the store's (k=5, no
    // perturbation), whatever instance sent them last.
    let k5 = istv_aggregate::Disclosure::from_params(istv_aggregate::PerturbationParams {
        max_perturbation: 0,
        variance: 1.0,
        threshold: 5,
    })
    .unwrap();
    let q = Query::from_pairs([("group_by", "month,borough")]).unwrap();
    let expected: BTreeMap<String, Option<u64>> = reference
        .aggregate(&q, k5)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                format!("month={}/borough={}", r.values[0], r.values[1]),
                r.count,
            )
        })
        .collect();
    assert!(!expected.is_empty());
    read_aggregates(&tansu.brokers, &registry.url, &expected).await;

    // Every committed batch of the live instances is in their metrics.
    let consumed = metric(&a.metrics(), "istv_kafka_consumed_total", &[])
        + metric(&b.metrics(), "istv_kafka_consumed_total", &[]);
    assert!(consumed > 0.0);
    drop((a, b));
}

/// The whole chain: a feed uploaded to `istv ingest` twice, geocoded by
/// `istv geocode` (SIGKILLed at two thirds and restarted), counted by two
/// `istv aggregate` instances (one SIGKILLed at a third and restarted)
/// gives through `istv query` the
/// answers `istv serve` gives for the same feed; the second upload counts
/// nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_geocode_and_two_aggregates_answer_as_istv_serve() {
    let tansu = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    tansu.create_topics(data, "", 4);
    let registry = Registry::start(data, None, &["--register-schemas"]);
    istv_e2e::import_boroughs(data);
    let token = istv_e2e::add_site(data, None, "RJ122");
    let (_ingest, base) =
        Service::ingest(data, &tansu.brokers, &registry.url, &["--no-warm-geocoder"]);
    let geocode_args = ["--transactional-id", "chain-geocode-1"];
    let geocode = Service::geocode(data, &tansu.brokers, &registry.url, &geocode_args);

    let db = fresh_pg_database("kafka_chain_full");
    let store = Store::connect(&db).await.unwrap();
    let agg_args = [
        "--brokers",
        &tansu.brokers,
        "--schema-registry-url",
        &registry.url,
        "--batch-messages",
        "40",
        "--batch-wait-ms",
        "20",
        "--max-perturbation",
        "0",
    ];
    let a = Aggregator::start(data, &db, &agg_args);
    let b = Aggregator::start(data, &db, &agg_args);

    let feed_path = data.join("feed.csv");
    let o = istv(data)
        .args(["generate", "--records", "2000", "--site", "RJ122"])
        .args(["--invalid-rate", "0.05", "--seed", "16", "-o"])
        .arg(&feed_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let feed = std::fs::read(&feed_path).unwrap();
    let (status, receipt) = istv_e2e::post_upload(&base, &token, "text/csv", &feed);
    assert_eq!(status, 200, "{receipt}");
    let accepted = receipt["accepted"].as_u64().unwrap();
    assert!(accepted > 1800, "{receipt}");

    let total = |store: Store| async move {
        counts(&store, "")
            .await
            .first()
            .and_then(|r| r.1)
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    // The geocode stage, killed once it has written half the events if
    // it has not written them all yet, restarted with the same
    // transactional id (its open transaction is aborted at start).
    let geocoded = || {
        let (_, text) = istv_e2e::get_with(&geocode.announced, None);
        metric(&text, "istv_kafka_produced_total", &[topics::GEOCODED])
    };
    while geocoded() < accepted as f64 / 2.0 {
        assert!(Instant::now() < deadline, "geocode made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let geocoded_at_kill = geocoded();
    drop(geocode);
    eprintln!("geocode killed after {geocoded_at_kill} of {accepted} events");
    let _geocode = Service::geocode(data, &tansu.brokers, &registry.url, &geocode_args);
    while total(store.clone()).await < accepted / 3 {
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill9();
    let a = Aggregator::start(data, &db, &agg_args);
    while total(store.clone()).await < accepted {
        assert!(
            Instant::now() < deadline,
            "{} of {accepted}",
            total(store.clone()).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The same file again: every row a duplicate, given to the live
    // instances (neither is killed from here on).
    let (status, again) = istv_e2e::post_upload(&base, &token, "text/csv", &feed);
    assert_eq!(status, 200, "{again}");
    let duplicates = || {
        metric(&a.metrics(), "istv_aggregate_events_total", &["duplicate"])
            + metric(&b.metrics(), "istv_aggregate_events_total", &["duplicate"])
    };
    while duplicates() < accepted as f64 {
        assert!(Instant::now() < deadline, "{} duplicates", duplicates());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total(store.clone()).await, accepted);
    let report = store.recount_check().await.unwrap();
    assert!(
        report.is_ok(),
        "aggregates differ from a recount: {report:?}"
    );

    // The same feed through istv serve, with the same content key and
    // geography.
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::copy(
        data.join("content-hash.key"),
        dir2.path().join("content-hash.key"),
    )
    .unwrap();
    istv_e2e::import_boroughs(dir2.path());
    let token2 = istv_e2e::add_site(dir2.path(), None, "RJ122");
    let serve = Server::start(dir2.path(), None, &["--max-perturbation", "0"]);
    let (status, direct) = istv_e2e::post_upload(&serve.base, &token2, "text/csv", &feed);
    assert_eq!(status, 200, "{direct}");
    assert_eq!(direct["accepted"].as_u64(), Some(accepted));
    let q = Server::start_query(data, Some(&db), &["--max-perturbation", "0"]);
    let answers = api_answers(&q.base);
    assert!(
        answers
            .iter()
            .all(|rows| rows.as_array().is_some_and(|r| !r.is_empty())),
        "{answers:?}"
    );
    assert_eq!(answers, api_answers(&serve.base));
    drop((a, b));
}
