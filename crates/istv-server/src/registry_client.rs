//! A client of a Confluent-compatible schema registry (`istv registry`,
//! Confluent's, Karapace, Apicurio's compatibility API), as the services
//! use it: register the schemas they write, find the writer schema of an
//! id they read. Blocking (ureq): call it from a blocking thread; ids are
//! immutable, so callers keep what they found.

use crate::registry::REGISTRY_CONTENT_TYPE;
use istv_wire::Decoder;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry could not be reached or the connection failed.
    #[error("schema registry at {url} unreachable: {reason}")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The registry answered an error.
    #[error("schema registry refused ({status}, error code {error_code}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The registry's error code (40401, 409, 42201...).
        error_code: u32,
        /// Its message.
        message: String,
    },
    /// An answer that is not what the API specifies.
    #[error("schema registry answered {status} with an unexpected body: {reason}")]
    BadAnswer {
        /// The HTTP status.
        status: u16,
        /// Why it was not understood.
        reason: String,
    },
}

impl ClientError {
    /// The registry's error code, when it answered one.
    pub fn error_code(&self) -> Option<u32> {
        match self {
            ClientError::Refused { error_code, .. } => Some(*error_code),
            _ => None,
        }
    }
}

/// A subject's version as the registry answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredVersion {
    /// The subject.
    pub subject: String,
    /// Its version.
    pub version: u32,
    /// The schema's global id.
    pub id: u32,
    /// The schema's text.
    pub schema: String,
}

/// A registry client; cheap to clone.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base: String,
    agent: ureq::Agent,
}

pub use istv_wire::topics::value_subject;

impl RegistryClient {
    /// A client of the registry at `url` (`http://host:port`, a path
    /// prefix allowed), each request limited to `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        RegistryClient {
            base: url.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: ureq::Error| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let result = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Accept", REGISTRY_CONTENT_TYPE)
                .call(),
            (_, body) => {
                let text = body.unwrap_or(Value::Null).to_string();
                let request = if method == "PUT" {
                    self.agent.put(&url)
                } else {
                    self.agent.post(&url)
                };
                request
                    .header("Accept", REGISTRY_CONTENT_TYPE)
                    .header("Content-Type", REGISTRY_CONTENT_TYPE)
                    .send(text.as_bytes())
            }
        };
        let mut response = result.map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(unreachable)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ClientError::BadAnswer {
            status,
            reason: format!("not JSON: {e}"),
        })?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        match (value["error_code"].as_u64(), value["message"].as_str()) {
            (Some(code), message) => Err(ClientError::Refused {
                status,
                error_code: code as u32,
                message: message.unwrap_or_default().to_owned(),
            }),
            _ => Err(ClientError::BadAnswer {
                status,
                reason: "an error without error_code".into(),
            }),
        }
    }

    fn field<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ClientError> {
        serde_json::from_value(value).map_err(|e| ClientError::BadAnswer {
            status: 200,
            reason: e.to_string(),
        })
    }

    /// Registers `schema` (Avro JSON text) under `subject`; its global id
    /// (the same id when it was registered before).
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, ClientError> {
        let path = format!("/subjects/{}/versions", encode(subject));
        let answer = self.call("POST", &path, Some(json!({"schema": schema})))?;
        #[derive(Deserialize)]
        struct Id {
            id: u32,
        }
        Ok(Self::field::<Id>(answer)?.id)
    }

    /// The text of the schema with global id `id`; `None` when the
    /// registry does not know it (40403).
    pub fn schema(&self, id: u32) -> Result<Option<String>, ClientError> {
        match self.call("GET", &format!("/schemas/ids/{id}"), None) {
            Ok(answer) => {
                #[derive(Deserialize)]
                struct Text {
                    schema: String,
                }
                Ok(Some(Self::field::<Text>(answer)?.schema))
            }
            Err(e) if e.error_code() == Some(40403) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A subject's latest version; `None` for a subject with none (40401).
    pub fn latest(&self, subject: &str) -> Result<Option<RegisteredVersion>, ClientError> {
        let path = format!("/subjects/{}/versions/latest", encode(subject));
        match self.call("GET", &path, None) {
            Ok(answer) => Ok(Some(Self::field(answer)?)),
            Err(e) if e.error_code() == Some(40401) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `schema` may be registered after `subject`'s `version`
    /// (`latest` or a number) at the subject's level.
    pub fn is_compatible(
        &self,
        subject: &str,
        version: &str,
        schema: &str,
    ) -> Result<bool, ClientError> {
        let path = format!(
            "/compatibility/subjects/{}/versions/{}",
            encode(subject),
            encode(version)
        );
        let answer = self.call("POST", &path, Some(json!({"schema": schema})))?;
        answer["is_compatible"]
            .as_bool()
            .ok_or_else(|| ClientError::BadAnswer {
                status: 200,
                reason: "no is_compatible".into(),
            })
    }

    /// The global compatibility level (`BACKWARD`...).
    pub fn level(&self) -> Result<String, ClientError> {
        let answer = self.call("GET", "/config", None)?;
        answer["compatibilityLevel"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::BadAnswer {
                status: 200,
                reason: "no compatibilityLevel".into(),
            })
    }

    /// Sets the global compatibility level.
    pub fn set_level(&self, level: &str) -> Result<(), ClientError> {
        self.call("PUT", "/config", Some(json!({"compatibility": level})))?;
        Ok(())
    }

    /// Gives `decoder` the writer schema of a consumed message's id when it
    /// does not have it yet. An id the registry does not know is left
    /// unknown: the message is then dead-lettered as `unknown_schema_id`.
    /// A registry that cannot be reached is an error: the consumer should
    /// wait and retry, not dead-letter the message.
    pub fn prepare(&self, decoder: &mut Decoder, value: Option<&[u8]>) -> Result<(), ClientError> {
        if let Some(id) = istv_wire::dead_letter::needs_lookup(decoder, value) {
            if let Some(text) = self.schema(id)? {
                decoder.add_writer_text(id, &text);
            }
        }
        Ok(())
    }
}

/// A path segment, percent-encoded (subjects hold dots and dashes; any
/// other byte outside the unreserved set is encoded).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
