//! The librdkafka settings of each client the services make.

use rdkafka::ClientConfig;

/// Why a setting given on the command line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Not `KEY=VALUE`.
    #[error("kafka option {0:?} is not KEY=VALUE")]
    NotKeyValue(String),
    /// A setting the services' guarantees rest on.
    #[error("kafka option {0} cannot be changed: the services' delivery guarantees rest on it")]
    Fixed(String),
}

/// Settings the guarantees rest on: an option naming one is refused.
const FIXED: &[&str] = &[
    "enable.idempotence",
    "acks",
    "isolation.level",
    "enable.auto.commit",
    "transactional.id",
    "group.id",
    "partitioner",
];

/// Where the brokers are, the topics' prefix and any other librdkafka
/// settings (`--kafka-option KEY=VALUE`: timeouts, TLS, SASL...).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `HOST:PORT,...`.
    pub brokers: String,
    /// Put before every topic name.
    pub prefix: String,
    /// Other librdkafka settings, applied before the fixed ones.
    pub options: Vec<(String, String)>,
}

impl Settings {
    /// Settings of `brokers` with `prefix`, and `options` as `KEY=VALUE`.
    pub fn new(brokers: &str, prefix: &str, options: &[String]) -> Result<Settings, SettingsError> {
        let options = options
            .iter()
            .map(|o| {
                let (k, v) = o
                    .split_once('=')
                    .ok_or_else(|| SettingsError::NotKeyValue(o.clone()))?;
                let k = k.trim();
                if FIXED.contains(&k) {
                    return Err(SettingsError::Fixed(k.to_owned()));
                }
                Ok((k.to_owned(), v.trim().to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Settings {
            brokers: brokers.to_owned(),
            prefix: prefix.to_owned(),
            options,
        })
    }

    /// A topic's name with the prefix.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        // Consumer lag and queue depths for the metrics.
        c.set("statistics.interval.ms", "5000");
        for (k, v) in &self.options {
            c.set(k, v);
        }
        c
    }

    /// An idempotent producer, `acks=all`: a retried send is written once,
    /// in order, and acknowledged only once every in-sync replica has it.
    /// Keys are partitioned as the Java client does (murmur2), so every
    /// client puts a record's versions on the same partition.
    pub fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random");
        c
    }

    /// A transactional producer named `transactional_id` (idempotent,
    /// `acks=all`). The id is the instance's: a restarted instance with the
    /// same id aborts what its previous life left open and fences it.
    pub fn transactional_producer(&self, transactional_id: &str) -> ClientConfig {
        let mut c = self.producer();
        c.set("transactional.id", transactional_id);
        c
    }

    /// A consumer in `group` that reads only committed messages, commits
    /// nothing itself (offsets go in the producer's transactions, or in the
    /// store's), and starts a new group at the earliest message.
    pub fn consumer(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_and_guarantees_are_fixed() {
        let s = Settings::new(
            "127.0.0.1:9092",
            "t.",
            &[
                "session.timeout.ms = 6000".into(),
                "fetch.wait.max.ms=10".into(),
            ],
        )
        .unwrap();
        assert_eq!(s.topic("istv.geocoded.v1"), "t.istv.geocoded.v1");
        let c = s.consumer("g");
        assert_eq!(c.get("session.timeout.ms"), Some("6000"));
        assert_eq!(c.get("fetch.wait.max.ms"), Some("10"));
        assert_eq!(c.get("isolation.level"), Some("read_committed"));
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        let p = s.transactional_producer("istv-geocode-a");
        assert_eq!(p.get("enable.idempotence"), Some("true"));
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("transactional.id"), Some("istv-geocode-a"));
        assert_eq!(p.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(
            Settings::new("b", "", &["acks=1".into()]).unwrap_err(),
            SettingsError::Fixed("acks".into())
        );
        assert_eq!(
            Settings::new("b", "", &["linger.ms".into()]).unwrap_err(),
            SettingsError::NotKeyValue("linger.ms".into())
        );
    }
}
