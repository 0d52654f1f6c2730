//! The flags every Kafka service shares: brokers, schema registry, topic
//! prefix and other librdkafka settings.

use crate::config::FileConfig;
use anyhow::Context;
use istv_server::registry_client::RegistryClient;
use std::time::Duration;

/// Kafka flags of `istv ingest` and `istv geocode`.
#[derive(clap::Args, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap brokers, HOST:PORT,...
    #[arg(long, env = "ISTV_BROKERS")]
    pub brokers: Option<String>,
    /// The Confluent-compatible schema registry (istv registry, Confluent,
    /// Karapace, Apicurio), http://HOST:PORT.
    #[arg(long, env = "ISTV_SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<String>,
    /// Put before every topic name, as given to istv topics create.
    #[arg(long, env = "ISTV_TOPIC_PREFIX")]
    pub topic_prefix: Option<String>,
    /// Any other librdkafka setting, KEY=VALUE (repeatable): TLS, SASL,
    /// timeouts. The settings the delivery guarantees rest on (acks,
    /// enable.idempotence, isolation.level, transactional.id...) are fixed.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
}

impl KafkaArgs {
    /// The client settings, flags over the file.
    pub fn settings(&self, file: &FileConfig) -> anyhow::Result<istv_kafka::Settings> {
        let brokers = self
            .brokers
            .clone()
            .or(file.brokers.clone())
            .context("--brokers (or ISTV_BROKERS) is required")?;
        let prefix = self
            .topic_prefix
            .clone()
            .or(file.topic_prefix.clone())
            .unwrap_or_default();
        let mut options = file.kafka_options.clone().unwrap_or_default();
        options.extend(self.kafka_options.iter().cloned());
        Ok(istv_kafka::Settings::new(&brokers, &prefix, &options)?)
    }

    /// The schema registry's client.
    pub fn registry(&self, file: &FileConfig) -> anyhow::Result<RegistryClient> {
        let url = self
            .schema_registry_url
            .clone()
            .or(file.schema_registry_url.clone())
            .context("--schema-registry-url (or ISTV_SCHEMA_REGISTRY_URL) is required")?;
        Ok(RegistryClient::new(&url, Duration::from_secs(10)))
    }
}

/// Registers `schema` under the value subject of `topic` (its id when it is
/// registered already), retrying while the registry cannot be reached.
pub fn register(client: &RegistryClient, topic: &str, schema: &str) -> anyhow::Result<u32> {
    let subject = istv_wire::topics::value_subject(topic);
    let mut tries = 0;
    loop {
        match client.register(&subject, schema) {
            Ok(id) => return Ok(id),
            Err(e @ istv_server::registry_client::ClientError::Unreachable { .. })
                if tries < 30 =>
            {
                tries += 1;
                tracing::warn!(error = %e, "schema registry unreachable; trying again");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot register the schema of {subject}"))
            }
        }
    }
}

/// A stable name of this host, for a default transactional id.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
