//! The aggregate consumer on librdkafka's mock cluster, which injects
//! faults a real broker cannot be made to show on demand: offset commit
//! and fetch request errors, a group coordinator that moves, an instance
//! that leaves mid-stream. Each test produces a feed of geocoded events
//! (new records, then corrections, then re-sends), waits until the store's
//! positions reach the end of every partition (the producer's delivery
//! reports say where that is; no watermark is read), and checks:
//!
//! * nothing lost, nothing doubled: the store's counts equal a store fed
//!   the same events directly, for several groupings, and the recount
//!   agrees with the roll-ups;
//! * every message was committed exactly once: summed over every instance
//!   that ran, the events the store was given (accepted, duplicates and
//!   corrections) equal the messages produced.

use chrono::{TimeZone, Utc};
use istv_aggregate::{Disclosure, Event, Query};
use istv_e2e::events::{stream_feed, STREAM_SITES};
use istv_kafka::aggregate::{self, AggregateMetrics, AggregateOptions, Running};
use istv_server::registry_client::{value_subject, RegistryClient};
use istv_store::Store;
use istv_wire::records::GeocodedEvent;
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TOPIC: &str = "istv.geocoded.v1";
const PARTITIONS: i32 = 4;

struct Fixture {
    cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    registry_url: String,
    store: Store,
    _dirs: Vec<tempfile::TempDir>,
}

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("istv.db").display());
    (Store::connect(&url).await.unwrap(), dir)
}

async fn fixture() -> Fixture {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    cluster.create_topic("istv.dead-letters.v1", 1, 1).unwrap();
    let (registry_store, rdir) = sqlite_store().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(istv_server::registry::serve_registry(
        listener,
        registry_store,
        std::future::pending(),
    ));
    let (store, sdir) = sqlite_store().await;
    Fixture {
        cluster,
        registry_url,
        store,
        _dirs: vec![rdir, sdir],
    }
}

fn options(f: &Fixture, group: &str) -> AggregateOptions {
    AggregateOptions {
        brokers: f.cluster.bootstrap_servers(),
        group: group.into(),
        topic_prefix: String::new(),
        registry_url: f.registry_url.clone(),
        // Small batches: many transactions, so faults land between them.
        max_batch: 25,
        max_wait: Duration::from_millis(20),
        publish_group_by: Vec::new(),
        disclosure: Disclosure::NONE,
        publish_every: Duration::from_secs(1),
        client: [
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
            ("fetch.wait.max.ms", "10"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

/// Produces the feed keyed `site/record_id` and returns the end position
/// of every partition written to, from the delivery reports.
async fn produce(f: &Fixture, events: &[Event]) -> BTreeMap<i32, i64> {
    let url = f.registry_url.clone();
    let id = tokio::task::spawn_blocking(move || {
        RegistryClient::new(&url, Duration::from_secs(10))
            .register(&value_subject(TOPIC), istv_core::schema::GEOCODED_EVENT_V1)
            .unwrap()
    })
    .await
    .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", f.cluster.bootstrap_servers())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let schema = istv_core::schema::geocoded_event_v1();
    let mut ends = BTreeMap::new();
    let mut pending = Vec::new();
    for e in events {
        let g = GeocodedEvent {
            event: e.clone(),
            assault_at: Utc.timestamp_opt(1_704_067_200, 0).unwrap(),
            arrival_at: None,
        };
        let payload = istv_wire::encode(id, schema, g.to_value().unwrap()).unwrap();
        let key = istv_wire::topics::record_key(&e.site_code, &e.record_id);
        let record = FutureRecord::to(TOPIC).key(&key).payload(&payload);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for p in pending {
        let d = p.await.unwrap().map_err(|(e, _)| e).unwrap();
        let end = ends.entry(d.partition).or_insert(0);
        *end = (*end).max(d.offset + 1);
    }
    ends
}

/// Waits (two minutes at most) until the stored positions of `group` are
/// `ends`.
async fn wait_for_positions(store: &Store, group: &str, ends: &BTreeMap<i32, i64>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored: BTreeMap<i32, i64> = store
            .consumer_offsets(group, TOPIC)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.partition, p.next_offset))
            .collect();
        if &stored == ends {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "positions {stored:?} did not reach {ends:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The counts of `store` for several groupings.
async fn answers(store: &Store) -> Vec<Vec<(Vec<String>, Option<u64>)>> {
    let mut out = Vec::new();
    for g in ["", "month", "borough", "assault_method,borough", "site,day"] {
        let q = Query::from_pairs([("group_by", g)]).unwrap();
        let rows = store.aggregate(&q, Disclosure::NONE).await.unwrap();
        out.push(rows.into_iter().map(|r| (r.values, r.count)).collect());
    }
    out
}

/// The same events applied to a fresh store in one upload.
async fn reference(events: &[Event]) -> (Store, tempfile::TempDir) {
    let (store, dir) = sqlite_store().await;
    store.add_site(STREAM_SITES[0], "Reference").await.unwrap();
    let upload = store.begin_upload(STREAM_SITES[0], "csv").await.unwrap();
    store.apply_batch(&upload, events).await.unwrap();
    (store, dir)
}

fn given(metrics: &[AggregateMetrics]) -> u64 {
    metrics
        .iter()
        .map(|m| {
            ["accepted", "duplicate", "correction"]
                .iter()
                .map(|o| m.events.with_label_values(&[*o]).get())
                .sum::<u64>()
        })
        .sum()
}

fn start(f: &Fixture, group: &str) -> (Running, AggregateMetrics) {
    let metrics = AggregateMetrics::new();
    let running = aggregate::start(
        f.store.clone(),
        options(f, group),
        metrics.clone(),
        tokio::runtime::Handle::current(),
    )
    .unwrap();
    (running, metrics)
}

async fn stop(running: Running) {
    tokio::task::spawn_blocking(move || running.stop())
        .await
        .unwrap()
        .unwrap();
}

async fn check(f: &Fixture, events: &[Event], metrics: &[AggregateMetrics]) {
    let (reference, _dir) = reference(events).await;
    assert_eq!(answers(&f.store).await, answers(&reference).await);
    let report = f.store.recount_check().await.unwrap();
    assert!(
        report.is_ok(),
        "aggregates differ from a recount: {report:?}"
    );
    assert_eq!(given(metrics), events.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_and_fetch_errors_lose_and_double_nothing() {
    let f = fixture().await;
    let events = stream_feed(400);
    // Kafka offset commits fail (they are informational: the store's
    // positions are the truth), and fetches fail now and then.
    f.cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 20],
    );
    f.cluster.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 8],
    );
    let (running, metrics) = start(&f, "g1");
    let ends = produce(&f, &events).await;
    assert_eq!(ends.len(), PARTITIONS as usize);
    wait_for_positions(&f.store, "g1", &ends).await;
    stop(running).await;
    check(&f, &events, &[metrics]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_moving_coordinator_and_instances_leaving_lose_and_double_nothing() {
    let f = fixture().await;
    let events = stream_feed(600);
    let (a, ma) = start(&f, "g2");
    let (b, mb) = start(&f, "g2");
    let half = events.len() / 2;
    // The first half a little at a time until both instances have
    // committed batches (on a loaded machine one may join the group after
    // the other has read a whole burst), then the rest of it.
    let mut ends = BTreeMap::new();
    let mut sent = 0;
    let mut merge = |more: BTreeMap<i32, i64>| {
        for (p, end) in more {
            let e = ends.entry(p).or_insert(0);
            *e = (*e).max(end);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while given(std::slice::from_ref(&ma)) == 0 || given(std::slice::from_ref(&mb)) == 0 {
        assert!(Instant::now() < deadline, "an instance got no partition");
        if sent < half {
            let next = (sent + 20).min(half);
            merge(produce(&f, &events[sent..next]).await);
            sent = next;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    merge(produce(&f, &events[sent..half]).await);
    // Mid-stream: once some batches are in, the coordinator moves, then
    // one instance leaves and a new one joins; the second half of the feed
    // comes once the group has settled, so the newcomer has a share.
    while given(&[ma.clone(), mb.clone()]) < 150 {
        assert!(Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.cluster
        .coordinator(MockCoordinator::Group("g2".into()), 2)
        .unwrap();
    stop(a).await;
    let (c, mc) = start(&f, "g2");
    tokio::time::sleep(Duration::from_secs(5)).await;
    f.cluster
        .coordinator(MockCoordinator::Group("g2".into()), 3)
        .unwrap();
    merge(produce(&f, &events[half..]).await);
    wait_for_positions(&f.store, "g2", &ends).await;
    stop(b).await;
    stop(c).await;
    // The instance that left had committed batches, and its partitions
    // went on elsewhere: the one that joined took some.
    assert!(given(std::slice::from_ref(&ma)) > 0);
    assert!(given(std::slice::from_ref(&mc)) > 0);
    check(&f, &events, &[ma, mb, mc]).await;
}
