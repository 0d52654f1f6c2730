//! `istv ingest` and `istv geocode` against a real Kafka-protocol broker
//! (tansu): an upload ends as exactly its accepted rows on the attendances
//! topic and its row errors on the rejections topic, and the geocode stage
//! turns those into the events `istv serve`'s pipeline makes of the same
//! rows; each kind of poison message lands in the dead-letter topic with
//! its reason; geocode killed with SIGKILL mid-stream and restarted loses
//! no event. Its transactions would also keep a read_committed consumer
//! from seeing any event twice, but tansu shows aborted transactions'
//! messages as committed (tested below): on it, the batch in hand at the
//! kill may repeat, byte for byte, which the store counts once.
//!
//! No test decides it is done from watermarks or lag (tansu reports a wrong
//! high watermark): each reads until it has the messages it expects, then
//! a quiet spell in which no more may come.

use istv_aggregate::{DisclosureKeys, Event};
use istv_core::{Attendance, Feed, FieldError, Format, Validator};
use istv_e2e::process::Service;
use istv_e2e::registry::Registry;
use istv_e2e::tansu::{consumer_config, producer_config, Tansu};
use istv_e2e::{add_site, get_with, import_boroughs, istv, post_upload, stderr, METRICS_TOKEN};
use istv_geo::{Geocoder, GeocoderConfig};
use istv_pipeline::{ContentKey, Keys};
use istv_server::registry_client::RegistryClient;
use istv_wire::records::{attendance_from_value, attendance_value, rejection_from_value};
use istv_wire::{encode, frame, topics, Decoder, GeocodedEvent};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn client(pairs: Vec<(&'static str, String)>) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in pairs {
        c.set(k, v);
    }
    c
}

/// `istv geocode` on the store and geography of `dir`.
fn geocode(dir: &Path, brokers: &str, registry: &str, prefix: &str, extra: &[&str]) -> Service {
    let args = [&["--topic-prefix", prefix][..], extra].concat();
    Service::geocode(dir, brokers, registry, &args)
}

/// A message as read: key, value, headers.
type Read = (String, Vec<u8>, Vec<(String, String)>);

/// A read_committed consumer of `topic` in a new group.
fn consumer(brokers: &str, topic: &str, group: &str) -> BaseConsumer {
    let mut config = client(consumer_config(brokers, group));
    config.set("isolation.level", "read_committed");
    let c: BaseConsumer = config.create().unwrap();
    c.subscribe(&[topic]).unwrap();
    c
}

/// Reads until `want` messages have come (within `limit`, else fails),
/// then `quiet` more in which none may come.
fn read(c: &BaseConsumer, want: usize, limit: Duration, quiet: Duration) -> Vec<Read> {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut until: Option<Instant> = None;
    loop {
        if got.len() >= want && until.is_none() {
            until = Some(Instant::now() + quiet);
        }
        if until.is_some_and(|t| Instant::now() > t) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {want} messages",
            got.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("the consumer reads");
            let headers = istv_e2e::kafka::text_headers(&m);
            got.push((
                String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                m.payload().unwrap_or_default().to_vec(),
                headers,
            ));
        }
    }
}

fn header<'a>(r: &'a Read, name: &str) -> Option<&'a str> {
    r.2.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The decoder of `reader` that knows the registry's ids as they come.
fn decode_all(
    registry: &RegistryClient,
    reader: &istv_wire::Schema,
    reads: &[Read],
) -> Vec<istv_wire::Value> {
    let mut d = Decoder::new(reader.clone());
    reads
        .iter()
        .map(|r| {
            registry.prepare(&mut d, Some(&r.1)).unwrap();
            d.decode(&r.1).unwrap().value
        })
        .collect()
}

/// The rows of `feed` the rules accept for `site` and the row errors, as
/// `istv serve` validates an upload.
fn validate(feed: &[u8], site: &str) -> (Vec<Attendance>, Vec<FieldError>) {
    let mut f = Feed::from_reader(std::io::Cursor::new(feed.to_vec()), Some(Format::Csv)).unwrap();
    let mut v = Validator::new(chrono::Utc::now()).for_site(site);
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    while let Some(raw) = f.next() {
        let verdict = v.validate(&raw.unwrap());
        match verdict.record {
            Some(a) => ok.push(a),
            None => errors.extend(verdict.errors),
        }
    }
    (ok, errors)
}

/// The geocoded events `istv serve`'s pipeline makes of `records` with the
/// geography and content key of `dir`, by key (as they read back: legacy
/// hash 0, record key under `keys`).
fn pipeline_events(
    dir: &Path,
    records: &[Attendance],
    keys: &DisclosureKeys,
) -> BTreeMap<String, GeocodedEvent> {
    let geocoder = Geocoder::load(&dir.join("geo"), GeocoderConfig::default()).unwrap();
    let content =
        ContentKey::from_hex(&std::fs::read_to_string(dir.join("content-hash.key")).unwrap())
            .unwrap();
    records
        .iter()
        .map(|a| {
            let event = istv_pipeline::geocode_stage(
                &geocoder,
                Keys {
                    disclosure: keys,
                    content: &content,
                },
                a,
            );
            let g = GeocodedEvent::new(
                a,
                Event {
                    legacy_hash: 0,
                    ..event
                },
            );
            (topics::record_key(&a.site_code, &a.record_id), g)
        })
        .collect()
}

/// `name{labels} value` of a metrics text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn an_upload_through_ingest_and_geocode_and_each_poison_kind() {
    let broker = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let prefix = "k.";
    broker.create_topics(data, prefix, 3);
    let registry = Registry::start(data, None, &["--register-schemas", "--prefix", prefix]);
    let registry_client = RegistryClient::new(&registry.url, Duration::from_secs(10));
    import_boroughs(data);
    let token = add_site(data, None, "RJ122");

    let (ingest, base) = Service::ingest(
        data,
        &broker.brokers,
        &registry.url,
        &["--topic-prefix", prefix, "--no-warm-geocoder"],
    );

    // A generated feed with a tenth of its rows wrong in one field.
    let feed_path = data.join("feed.csv");
    let o = istv(data)
        .args(["generate", "--records", "400", "--site", "RJ122"])
        .args(["--invalid-rate", "0.1", "--seed", "16", "-o"])
        .arg(&feed_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let feed = std::fs::read(&feed_path).unwrap();
    let (accepted, errors) = validate(&feed, "RJ122");
    assert!(
        accepted.len() > 300 && !errors.is_empty(),
        "{}",
        accepted.len()
    );

    let (status, receipt) = post_upload(&base, &token, "text/csv", &feed);
    assert_eq!(status, 200, "{receipt}\n{}", ingest.log());
    assert_eq!(receipt["rows"], 400);
    assert_eq!(receipt["accepted"], accepted.len() as u64);
    assert_eq!(receipt["rejected"], 400 - accepted.len() as u64);
    assert_eq!(
        (
            receipt["duplicates"].as_u64(),
            receipt["corrections"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let upload_id = receipt["upload_id"].as_str().unwrap().to_owned();
    // The receipt is kept, as by istv serve.
    let (status, again) = get_with(&format!("{base}/api/v1/uploads/{upload_id}"), Some(&token));
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&again).unwrap(),
        receipt
    );

    // Exactly the accepted rows on the attendances topic, keyed
    // site_code/record_id, with the upload's id.
    let attendances_topic = format!("{prefix}{}", topics::ATTENDANCES);
    let c = consumer(&broker.brokers, &attendances_topic, "t-attendances");
    let reads = read(
        &c,
        accepted.len(),
        Duration::from_secs(90),
        Duration::from_secs(2),
    );
    assert_eq!(reads.len(), accepted.len());
    let values = decode_all(&registry_client, istv_core::schema::attendance_v1(), &reads);
    let mut on_topic = BTreeMap::new();
    for (r, v) in reads.iter().zip(&values) {
        assert_eq!(header(r, "istv.upload_id"), Some(upload_id.as_str()));
        let a = attendance_from_value(v).unwrap();
        assert!(on_topic.insert(r.0.clone(), a).is_none(), "{} twice", r.0);
    }
    let want: BTreeMap<String, Attendance> = accepted
        .iter()
        .map(|a| (topics::record_key(&a.site_code, &a.record_id), a.clone()))
        .collect();
    assert_eq!(on_topic, want);

    // Every row error on the rejections topic, in row order.
    let rejections_topic = format!("{prefix}{}", topics::REJECTIONS);
    let c = consumer(&broker.brokers, &rejections_topic, "t-rejections");
    let reads = read(
        &c,
        errors.len(),
        Duration::from_secs(60),
        Duration::from_secs(2),
    );
    let values = decode_all(&registry_client, istv_core::schema::rejection_v1(), &reads);
    let got: Vec<FieldError> = values
        .iter()
        .map(|v| {
            let r = rejection_from_value(v).unwrap();
            assert_eq!(r.upload_id, upload_id);
            r.error
        })
        .collect();
    assert_eq!(got, errors);
    assert!(reads.iter().all(|r| r.0 == format!("RJ122/{upload_id}")));
    let (_, metrics) = get_with(&format!("{base}/metrics"), Some(METRICS_TOKEN));
    assert_eq!(
        metric(
            &metrics,
            &format!("istv_kafka_produced_total{{topic=\"{attendances_topic}\"}}")
        ),
        Some(accepted.len() as f64),
        "{metrics}"
    );

    // The geocode stage: the events istv serve's pipeline makes.
    let geocoder = geocode(
        data,
        &broker.brokers,
        &registry.url,
        prefix,
        &["--transactional-id", "k-geocode"],
    );
    let geocoded_topic = format!("{prefix}{}", topics::GEOCODED);
    let c = consumer(&broker.brokers, &geocoded_topic, "t-geocoded");
    let reads = read(
        &c,
        accepted.len(),
        Duration::from_secs(90),
        Duration::from_secs(2),
    );
    let keys = DisclosureKeys::new(7);
    let values = decode_all(
        &registry_client,
        istv_core::schema::geocoded_event_v1(),
        &reads,
    );
    let mut events = BTreeMap::new();
    for (r, v) in reads.iter().zip(&values) {
        assert_eq!(header(r, "istv.upload_id"), Some(upload_id.as_str()));
        let g = GeocodedEvent::from_value(v, &keys).unwrap();
        assert!(events.insert(r.0.clone(), g).is_none(), "{} twice", r.0);
    }
    let want = pipeline_events(data, &accepted, &keys);
    assert_eq!(events.len(), want.len());
    for (k, g) in &want {
        assert_eq!(events.get(k), Some(g), "{k}");
    }
    // Not every event is the same: the geography placed them.
    assert!(events.values().any(|g| g.event.borough.is_some()));

    // Each kind of poison, then a good record: the poison goes to the
    // dead-letter topic unchanged, with its reason; the record goes on.
    let attendance_id = registry_client
        .latest(&topics::value_subject(&attendances_topic))
        .unwrap()
        .unwrap()
        .id;
    let other_id = registry_client
        .register("k.other-value", istv_core::schema::REJECTION_V1)
        .unwrap();
    let extra = validate(
        b"site_code,record_id,assault_datetime,assault_method,assault_location_type\nRJ122,P-1,2024-03-01T10:00,firearm,street\n",
        "RJ122",
    )
    .0;
    let good = encode(
        attendance_id,
        istv_core::schema::attendance_v1(),
        attendance_value(&extra[0]),
    )
    .unwrap();
    let rejection = encode(
        other_id,
        istv_core::schema::rejection_v1(),
        istv_wire::records::rejection_value("u", &errors[0]),
    )
    .unwrap();
    let poison: Vec<(&str, Vec<u8>)> = vec![
        ("bad_frame", b"RJ122,P-0,2024-03-01".to_vec()),
        ("unknown_schema_id", frame(999_999, &good[5..])),
        ("truncated_datum", good[..good.len() - 3].to_vec()),
        ("unresolvable_schema", rejection),
    ];
    let producer: BaseProducer = client(producer_config(&broker.brokers)).create().unwrap();
    let key = "RJ122/P-0";
    for (_, payload) in &poison {
        producer
            .send(BaseRecord::to(&attendances_topic).key(key).payload(payload))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer
        .send(
            BaseRecord::to(&attendances_topic)
                .key("RJ122/P-1")
                .payload(&good),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    let dead_topic = format!("{prefix}{}", topics::DEAD_LETTERS);
    let dead = consumer(&broker.brokers, &dead_topic, "t-dead");
    let letters = read(&dead, 4, Duration::from_secs(60), Duration::from_secs(2));
    assert_eq!(letters.len(), 4);
    for ((reason, payload), letter) in poison.iter().zip(&letters) {
        assert_eq!(letter.0, key);
        assert_eq!(
            &letter.1, payload,
            "{reason}: the message is kept unchanged"
        );
        assert_eq!(header(letter, "istv.dead_letter.reason"), Some(*reason));
        assert_eq!(
            header(letter, "istv.dead_letter.topic"),
            Some(attendances_topic.as_str())
        );
        assert!(header(letter, "istv.dead_letter.error").is_some_and(|e| !e.is_empty()));
    }
    // All four were one partition's messages, in order.
    let offsets: Vec<i64> = letters
        .iter()
        .map(|l| {
            header(l, "istv.dead_letter.offset")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, (0..4).map(|i| offsets[0] + i).collect::<Vec<_>>());
    assert_eq!(
        header(&letters[1], "istv.dead_letter.schema_id"),
        Some("999999")
    );
    let last = read(&c, 1, Duration::from_secs(60), Duration::from_secs(2));
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].0, "RJ122/P-1");

    let url = geocoder.announced.clone();
    let (status, metrics) = get_with(&url, None);
    assert_eq!(status, 200);
    for (reason, _) in &poison {
        assert_eq!(
            metric(
                &metrics,
                &format!(
                    "istv_dead_letters_total{{reason=\"{reason}\",topic=\"{attendances_topic}\"}}"
                )
            ),
            Some(1.0),
            "{reason}: {metrics}"
        );
    }
    assert_eq!(
        metric(
            &metrics,
            &format!("istv_kafka_consumed_total{{topic=\"{attendances_topic}\"}}")
        ),
        Some((accepted.len() + 5) as f64)
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("istv_kafka_produced_total{{topic=\"{geocoded_topic}\"}}")
        ),
        Some((accepted.len() + 1) as f64)
    );
    let ready = url.replace("/metrics", "/readyz");
    assert_eq!(get_with(&ready, None).0, 200);
    drop(geocoder);
    drop(ingest);
    drop(registry);
}

#[test]
fn geocode_killed_mid_stream_and_restarted_loses_nothing_and_repeats_at_most_its_open_batch() {
    let broker = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let prefix = "s.";
    broker.create_topics(data, prefix, 3);
    let registry = Registry::start(data, None, &["--register-schemas", "--prefix", prefix]);
    let registry_client = RegistryClient::new(&registry.url, Duration::from_secs(10));
    std::fs::write(
        data.join("content-hash.key"),
        format!("{}\n", "ab".repeat(32)),
    )
    .unwrap();
    let attendances_topic = format!("{prefix}{}", topics::ATTENDANCES);
    let id = registry_client
        .latest(&topics::value_subject(&attendances_topic))
        .unwrap()
        .unwrap()
        .id;

    // 3,000 attendances straight onto the topic.
    const N: usize = 3000;
    let mut csv = String::from("site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_latitude,assault_longitude\n");
    for i in 0..N {
        csv.push_str(&format!(
            "RJ122,K-{i},2024-0{}-1{}T{:02}:{:02},sharp_object,street,51.{:04},-0.{:04}\n",
            1 + i % 9,
            i % 10,
            i % 24,
            i % 60,
            4000 + i,
            1000 + i
        ));
    }
    let (records, errors) = validate(csv.as_bytes(), "RJ122");
    assert_eq!((records.len(), errors.len()), (N, 0));
    let producer: BaseProducer = client(producer_config(&broker.brokers)).create().unwrap();
    for a in &records {
        let payload = encode(id, istv_core::schema::attendance_v1(), attendance_value(a)).unwrap();
        let key = topics::record_key(&a.site_code, &a.record_id);
        let mut record = BaseRecord::to(&attendances_topic)
            .key(&key)
            .payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();

    // Small transactions, so that the kill lands between and inside them.
    let small = [
        "--transactional-id",
        "s-geocode",
        "--batch-max",
        "25",
        "--batch-wait-ms",
        "5",
    ];
    let first = geocode(data, &broker.brokers, &registry.url, prefix, &small);
    let geocoded_topic = format!("{prefix}{}", topics::GEOCODED);
    let c = consumer(&broker.brokers, &geocoded_topic, "s-geocoded");
    let mut reads = read(&c, 300, Duration::from_secs(90), Duration::ZERO);
    assert!(
        reads.len() < N,
        "all {} geocoded before the kill",
        reads.len()
    );
    let (_, metrics) = get_with(&first.announced, None);
    let consumed = metric(
        &metrics,
        &format!("istv_kafka_consumed_total{{topic=\"{attendances_topic}\"}}"),
    )
    .unwrap();
    assert!(
        consumed < N as f64,
        "all {consumed} consumed before the kill"
    );
    first.kill9();
    let killed_at = reads.len();
    let second = geocode(data, &broker.brokers, &registry.url, prefix, &small);
    let rest = read(
        &c,
        N - killed_at,
        Duration::from_secs(180),
        Duration::from_secs(4),
    );
    reads.extend(rest);

    let keys = DisclosureKeys::new(1);
    let values = decode_all(
        &registry_client,
        istv_core::schema::geocoded_event_v1(),
        &reads,
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut events = BTreeMap::new();
    for (r, v) in reads.iter().zip(&values) {
        *seen.entry(r.0.clone()).or_default() += 1;
        events.insert(r.0.clone(), GeocodedEvent::from_value(v, &keys).unwrap());
    }
    // Nothing lost: every record's event, as the pipeline makes it.
    assert_eq!(seen.len(), N, "{}", second.log());
    // Repeats: on Apache Kafka none (the killed instance's open
    // transaction is aborted by its successor and read_committed skips
    // it). tansu shows an aborted transaction's messages as committed
    // (see the test below), so here the batch in hand at the kill may
    // appear twice: at most one batch, each repeat byte for byte the same
    // message, which the store counts once (same key, same content hash).
    let repeats = reads.len() - N;
    assert!(
        repeats <= 25,
        "{repeats} repeats: more than the one batch in hand"
    );
    let mut first_copy: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for r in &reads {
        let copy = *first_copy.entry(&r.0).or_insert(&r.1);
        assert_eq!(copy, &r.1[..], "{}: a repeat differs", r.0);
    }
    // Without geography every event is placed by its point alone.
    std::fs::create_dir_all(data.join("geo")).unwrap();
    assert_eq!(events, pipeline_events(data, &records, &keys));
    drop(second);
    drop(registry);
}

/// The broker's own behaviour that bounds what the kill test can ask:
/// tansu gives a read_committed consumer the messages of aborted
/// transactions, and of a transaction left open by a producer that died
/// (aborted when its successor of the same id starts), as if committed.
/// Sends `n` messages of key `a` to `topic`, `{prefix}0` onwards.
fn send_numbered(p: &BaseProducer, topic: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let payload = format!("{prefix}{i}");
        p.send(BaseRecord::to(topic).key("a").payload(&payload))
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

#[test]
fn tansu_shows_aborted_and_dangling_transactions_to_read_committed_consumers() {
    let broker = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    broker.create_topics(dir.path(), "p.", 1);
    let topic = format!("p.{}", topics::GEOCODED);
    let mut config = client(producer_config(&broker.brokers));
    config.set("transactional.id", "probe");
    let p: BaseProducer = config.create().unwrap();
    p.init_transactions(Duration::from_secs(30)).unwrap();
    p.begin_transaction().unwrap();
    send_numbered(&p, &topic, "aborted", 5);
    p.flush(Duration::from_secs(10)).unwrap();
    p.abort_transaction(Duration::from_secs(30)).unwrap();
    p.begin_transaction().unwrap();
    send_numbered(&p, &topic, "committed", 3);
    p.commit_transaction(Duration::from_secs(30)).unwrap();
    // An open transaction left by a process that died: a new producer of the same id.
    p.begin_transaction().unwrap();
    send_numbered(&p, &topic, "dangling", 4);
    p.flush(Duration::from_secs(10)).unwrap();
    std::mem::forget(p);
    let mut config = client(producer_config(&broker.brokers));
    config.set("transactional.id", "probe");
    let p2: BaseProducer = config.create().unwrap();
    p2.init_transactions(Duration::from_secs(30)).unwrap();
    p2.begin_transaction().unwrap();
    p2.send(BaseRecord::to(&topic).key("a").payload("after"))
        .map_err(|(e, _)| e)
        .unwrap();
    p2.commit_transaction(Duration::from_secs(30)).unwrap();
    let c = consumer(&broker.brokers, &topic, "probe-rc");
    let got = read(&c, 1, Duration::from_secs(60), Duration::from_secs(3));
    let payloads: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8_lossy(&r.1).into_owned())
        .collect();
    // Apache Kafka would give only committed0-2 and after. When this
    // fails because tansu hides them too, the kill test above can ask for
    // no repeat at all.
    let want: Vec<String> = (0..5)
        .map(|i| format!("aborted{i}"))
        .chain((0..3).map(|i| format!("committed{i}")))
        .chain((0..4).map(|i| format!("dangling{i}")))
        .chain(["after".to_owned()])
        .collect();
    assert_eq!(payloads, want);
}
