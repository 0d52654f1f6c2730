//! The Kafka adapters of istv's scaled-out services, over rdkafka: the
//! clients' settings ([`Settings`]), the producer of `istv ingest`
//! ([`Publisher`], acknowledged batches from an idempotent producer), the
//! consume-transform-produce loop of `istv geocode` ([`GeocodeService`],
//! one Kafka transaction per batch with its consumed offsets), the
//! consumer of `istv aggregate` ([`aggregate`], its offsets kept in the
//! store in the same transaction as the counts), and the metrics and
//! health routes the services export.
//!
//! The stages themselves are the pure functions of `istv-pipeline` and the
//! mapping of `istv-wire`; here are only the clients that move messages.
#![warn(missing_docs)]

pub mod aggregate;
pub mod geocode;
pub mod health;
pub mod metrics;
pub mod publisher;
pub mod settings;
pub mod transform;

pub use geocode::{GeocodeConfig, GeocodeError, GeocodeService};
pub use metrics::KafkaMetrics;
pub use publisher::{Publisher, SchemaIds};
pub use settings::Settings;
pub use transform::{Output, Stage};
