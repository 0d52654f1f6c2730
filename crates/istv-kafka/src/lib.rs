//! The Kafka adapters of istv's scaled-out services. The domain stays in
//! the pure crates (`istv-wire` for messages, `istv-aggregate` for counts);
//! this crate moves messages between the broker, the registry and the
//! store.
#![warn(missing_docs)]

pub mod aggregate;
