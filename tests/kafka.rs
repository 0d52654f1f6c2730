//! The scaled-out foundation against a real Kafka-protocol broker (tansu):
//! `istv topics create`, then framed attendances produced by an idempotent
//! producer (acks=all) keyed `site_code/record_id` and read back in a
//! consumer group, decoded with the writer schema found in `istv
//! registry`; a poison message between them routed to the dead-letter
//! topic with its reason in headers. No test waits on watermarks or lag
//! (tansu reports a wrong high watermark): they read until they have the
//! messages they sent.

use istv_e2e::registry::Registry;
use istv_e2e::tansu::{consumer_config, producer_config, Tansu};
use istv_e2e::{istv, stderr, stdout};
use istv_server::registry_client::RegistryClient;
use istv_wire::dead_letter::{self, Origin, Routed};
use istv_wire::{encode, topics, Decoder, PoisonKind, Value};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::Duration;

fn client_config(pairs: Vec<(&'static str, String)>) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in pairs {
        config.set(k, v);
    }
    config
}

/// An attendance of RJ122 with `method`; every optional field null but
/// the age.
fn attendance(record_id: &str, method: &str) -> Value {
    let schema = istv_core::schema::attendance_v1();
    let istv_wire::Schema::Record(r) = schema else {
        unreachable!()
    };
    Value::Record(
        r.fields
            .iter()
            .map(|f| {
                let v = match f.name.as_str() {
                    "site_code" => Value::String("RJ122".into()),
                    "record_id" => Value::String(record_id.into()),
                    "assault_datetime" => Value::String("2024-03-01T23:15".into()),
                    "assault_method" => Value::String(method.into()),
                    "assault_location_type" => Value::String("street".into()),
                    "patient_age" => Value::Union(1, Box::new(Value::Int(19))),
                    _ => Value::Union(0, Box::new(Value::Null)),
                };
                (f.name.clone(), v)
            })
            .collect(),
    )
}

/// Reads until `n` messages have arrived (a minute at most, else fails):
/// (key, partition, offset, payload, headers).
async fn read(
    consumer: &StreamConsumer,
    n: usize,
) -> Vec<(String, i32, i64, Option<Vec<u8>>, Vec<(String, String)>)> {
    let mut got = Vec::new();
    while got.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages within a minute", got.len()))
            .expect("the consumer reads");
        let headers = istv_e2e::kafka::text_headers(&msg);
        got.push((
            String::from_utf8(msg.key().unwrap().to_vec()).unwrap(),
            msg.partition(),
            msg.offset(),
            msg.payload().map(<[u8]>::to_vec),
            headers,
        ));
        consumer.commit_message(&msg, CommitMode::Sync).unwrap();
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_then_framed_attendances_through_a_consumer_group() {
    let broker = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let create = |dir: &std::path::Path| {
        let o = istv(dir)
            .args(["topics", "create", "--brokers", &broker.brokers])
            .args(["--prefix", "e2e.", "--partitions", "3"])
            .args(["--replication-factor", "1"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(
        create(dir.path()),
        "created e2e.istv.attendances.v1: 3 partitions, replication 1, kept 168 h\n\
         created e2e.istv.rejections.v1: 3 partitions, replication 1, kept 168 h\n\
         created e2e.istv.geocoded.v1: 3 partitions, replication 1, kept 168 h\n\
         created e2e.istv.aggregates.v1: 3 partitions, replication 1, compacted\n\
         created e2e.istv.dead-letters.v1: 3 partitions, replication 1, kept 720 h\n"
    );
    let again = create(dir.path());
    assert_eq!(again.lines().count(), 5);
    assert!(
        again.lines().all(|l| l.starts_with("exists e2e.istv.")),
        "{again}"
    );

    let registry = Registry::start(
        dir.path(),
        None,
        &["--register-schemas", "--prefix", "e2e."],
    );
    let client = RegistryClient::new(&registry.url, Duration::from_secs(10));
    let topic = format!("e2e.{}", topics::ATTENDANCES);
    let dead_topic = format!("e2e.{}", topics::DEAD_LETTERS);
    let subject = topics::value_subject(&topic);
    let id = {
        let client = client.clone();
        tokio::task::spawn_blocking(move || client.latest(&subject).unwrap().unwrap().id)
            .await
            .unwrap()
    };
    assert_eq!(id, 1);

    // Metadata: each topic with its 3 partitions.
    let producer: FutureProducer = client_config(producer_config(&broker.brokers))
        .create()
        .unwrap();
    let metadata = producer
        .client()
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 3);

    // A record, a poison message and the record's correction, all keyed
    // RJ122/A-117: one partition, in this order.
    let key = topics::record_key("RJ122", "A-117");
    let schema = istv_core::schema::attendance_v1();
    let first = attendance("A-117", "sharp_object");
    let corrected = attendance("A-117", "blunt_object");
    let payloads = [
        encode(id, schema, first.clone()).unwrap(),
        b"RJ122,A-117,2024-03-01".to_vec(),
        encode(id, schema, corrected.clone()).unwrap(),
    ];
    let mut delivered = Vec::new();
    for payload in &payloads {
        let d = producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("the broker acknowledges");
        delivered.push((d.partition, d.offset));
    }
    let partition = delivered[0].0;
    assert!(delivered.iter().all(|d| d.0 == partition), "{delivered:?}");
    assert_eq!(
        delivered
            .iter()
            .map(|d| d.1 - delivered[0].1)
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );

    let consumer: StreamConsumer = client_config(consumer_config(&broker.brokers, "e2e-geocode"))
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let got = read(&consumer, 3).await;
    let mut decoder = Decoder::new(schema.clone());
    let mut routed = Vec::new();
    for (k, p, offset, payload, _) in &got {
        assert_eq!((k.as_str(), *p), (key.as_str(), partition));
        {
            let client = client.clone();
            let payload = payload.clone();
            decoder = tokio::task::spawn_blocking(move || {
                client.prepare(&mut decoder, payload.as_deref()).unwrap();
                decoder
            })
            .await
            .unwrap();
        }
        let origin = Origin {
            topic: &topic,
            partition: *p,
            offset: *offset,
        };
        routed.push((
            *offset,
            dead_letter::route(&decoder, payload.as_deref(), &origin),
        ));
    }
    assert_eq!(
        got.iter().map(|g| g.2).collect::<Vec<_>>(),
        delivered.iter().map(|d| d.1).collect::<Vec<_>>()
    );
    match &routed[0].1 {
        Routed::Record(d) => assert_eq!((d.schema_id, &d.value), (1, &first)),
        other => panic!("{other:?}"),
    }
    match &routed[2].1 {
        Routed::Record(d) => assert_eq!((d.schema_id, &d.value), (1, &corrected)),
        other => panic!("{other:?}"),
    }
    let Routed::DeadLetter(letter) = &routed[1].1 else {
        panic!("the poison message was routed as a record")
    };
    // "RJ1..." : the first byte is 'R' (82), not the wire format's 0.
    assert_eq!(letter.kind, PoisonKind::BadFrame);

    // Committed in the group: the next offset to read.
    let mut list = TopicPartitionList::new();
    list.add_partition(&topic, partition);
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed
            .find_partition(&topic, partition)
            .unwrap()
            .offset(),
        Offset::Offset(delivered[2].1 + 1)
    );

    // The dead letter: the original key and bytes, the reason in headers.
    let mut headers = OwnedHeaders::new();
    for (k, v) in &letter.headers {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_str()),
        });
    }
    producer
        .send(
            FutureRecord::to(&dead_topic)
                .key(&key)
                .payload(&payloads[1])
                .headers(headers),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let dead: StreamConsumer = client_config(consumer_config(&broker.brokers, "e2e-dead"))
        .create()
        .unwrap();
    dead.subscribe(&[&dead_topic]).unwrap();
    let letters = read(&dead, 1).await;
    let (k, _, _, payload, headers) = &letters[0];
    assert_eq!(k, &key);
    assert_eq!(payload.as_deref(), Some(&payloads[1][..]));
    let want: Vec<(String, String)> = [
        ("istv.dead_letter.reason", "bad_frame".to_owned()),
        (
            "istv.dead_letter.error",
            "magic byte is 82, expected 0".to_owned(),
        ),
        ("istv.dead_letter.topic", topic.clone()),
        ("istv.dead_letter.partition", partition.to_string()),
        ("istv.dead_letter.offset", delivered[1].1.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(headers, &want, "{}", broker.log());
    drop(registry);
}
