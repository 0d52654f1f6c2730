//! What the Kafka tests read of a message.

use rdkafka::message::{Headers, Message};

/// A message's headers as (name, value) text pairs, in order; a value that
/// is not UTF-8 is read lossily, a missing one as empty.
pub fn text_headers(m: &impl Message) -> Vec<(String, String)> {
    m.headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
