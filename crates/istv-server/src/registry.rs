//! `istv registry`: a Confluent-compatible schema registry over the store,
//! so that a Confluent, Karapace or Apicurio registry can replace it
//! unchanged. Avro only; compatibility is checked with apache-avro's schema
//! resolution rules (`istv_wire::compat`).
//!
//! Routes (content type `application/vnd.schemaregistry.v1+json`; errors
//! `{"error_code":40401,"message":"..."}`):
//! `GET /subjects`, `GET /subjects/{subject}/versions`,
//! `POST /subjects/{subject}/versions` (register; the same schema again
//! gets the same id), `POST /subjects/{subject}` (is this schema
//! registered?), `GET /subjects/{subject}/versions/{version|latest}`,
//! `GET /schemas/ids/{id}`,
//! `POST /compatibility/subjects/{subject}/versions/{version|latest}`,
//! `GET`/`PUT /config` and `GET`/`PUT /config/{subject}`.
//!
//! Like Confluent's default, it asks for no credential: serve it on an
//! address only the services reach.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use istv_store::{Store, StoreError, SubjectVersion};
use istv_wire::compat::{self, Compatibility, Level};
use istv_wire::Schema;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::future::Future;

/// The registry's content type.
pub const REGISTRY_CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Registrations retried when another one changed the subject meanwhile.
const REGISTER_ATTEMPTS: usize = 8;

/// An error answer: the HTTP status and the registry's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RegistryError {
    /// The HTTP status.
    pub status: u16,
    /// The registry's code (40401...).
    pub error_code: u32,
    /// What went wrong.
    pub message: String,
}

impl RegistryError {
    fn new(status: u16, error_code: u32, message: impl Into<String>) -> Self {
        RegistryError {
            status,
            error_code,
            message: message.into(),
        }
    }

    fn subject_not_found(subject: &str) -> Self {
        Self::new(404, 40401, format!("Subject '{subject}' not found."))
    }

    fn version_not_found(version: u32) -> Self {
        Self::new(404, 40402, format!("Version {version} not found."))
    }

    fn invalid_schema(why: impl std::fmt::Display) -> Self {
        Self::new(422, 42201, format!("Invalid schema: {why}"))
    }

    fn store(e: StoreError) -> Self {
        tracing::error!(error = %e, "schema registry store error");
        Self::new(500, 50001, "Error in the backend data store")
    }
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        RegistryError::store(e)
    }
}

fn answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, REGISTRY_CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        answer(
            status,
            &json!({"error_code": self.error_code, "message": self.message}),
        )
    }
}

type Answer = Result<Response, RegistryError>;

fn ok(body: Value) -> Answer {
    Ok(answer(StatusCode::OK, &body))
}

/// Every route of the registry over `store`.
pub fn registry_router(store: Store) -> Router {
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility),
        )
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config).put(set_subject_config),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { RegistryError::new(404, 404, "HTTP 404 Not Found") })
        .with_state(store)
}

/// Serves [`registry_router`] until `shutdown`, then lets requests in
/// flight finish.
pub async fn serve_registry(
    listener: tokio::net::TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "schema registry listening");
    let limits = crate::edge::EdgeLimits {
        header_read_timeout: std::time::Duration::from_secs(10),
        idle_timeout: std::time::Duration::from_secs(60),
        max_connections: 1024,
    };
    crate::edge::serve(listener, registry_router(store), limits, None, shutdown).await
}

/// A schema as sent: `{"schema": "...", "schemaType": "AVRO"}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

/// A parsed schema, its normalised text and that text's fingerprint.
struct Parsed {
    schema: Schema,
    text: String,
    fingerprint: String,
}

fn body_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, RegistryError> {
    serde_json::from_slice(body)
        .map_err(|e| RegistryError::new(400, 400, format!("malformed request body: {e}")))
}

/// The schema of a request body: Avro only, without references.
fn parse_request(body: &Bytes) -> Result<Parsed, RegistryError> {
    let request: SchemaRequest = body_json(body)?;
    if let Some(kind) = request.schema_type.as_deref() {
        if !kind.eq_ignore_ascii_case("AVRO") {
            return Err(RegistryError::invalid_schema(format!(
                "schema type {kind} is not supported; only AVRO"
            )));
        }
    }
    if !request.references.is_empty() {
        return Err(RegistryError::invalid_schema(
            "schema references are not supported",
        ));
    }
    normalise(&request.schema).map_err(RegistryError::invalid_schema)
}

/// The schema's text as stored and returned: apache-avro's JSON form of the
/// parsed schema with object keys in order, so equal schemas written with
/// other spacing or key order get the same fingerprint (and id).
fn normalise(text: &str) -> Result<Parsed, String> {
    let schema = Schema::parse_str(text).map_err(|e| e.to_string())?;
    let value = serde_json::to_value(&schema).map_err(|e| e.to_string())?;
    let text = sorted(value).to_string();
    let fingerprint = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Parsed {
        schema,
        text,
        fingerprint,
    })
}

/// `value` with every object's keys in order, whatever map serde_json
/// was built with.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn stored_schema(text: &str) -> Result<Schema, RegistryError> {
    Schema::parse_str(text).map_err(|e| {
        tracing::error!(error = %e, "a stored schema does not parse");
        RegistryError::new(500, 50001, "a stored schema does not parse")
    })
}

/// `latest`, `-1` (also the latest) or a version from 1.
fn parse_version(text: &str) -> Result<Option<u32>, RegistryError> {
    if text == "latest" || text == "-1" {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if n >= 1 && n <= i32::MAX as u32 => Ok(Some(n)),
        _ => Err(RegistryError::new(
            422,
            42202,
            format!(
                "The specified version '{text}' is not a valid version id. \
                 Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )),
    }
}

fn version_body(v: &SubjectVersion) -> Value {
    json!({"subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema})
}

/// The level that applies to a subject: its own, else the global one, else
/// BACKWARD.
async fn level_of(store: &Store, subject: &str) -> Result<Level, RegistryError> {
    let set = match store.registry_level(Some(subject)).await? {
        Some(level) => Some(level),
        None => store.registry_level(None).await?,
    };
    Ok(set.as_deref().and_then(Level::parse).unwrap_or_default())
}

/// A subject's version, 40401 when the subject has none, 40402 when it
/// lacks that one.
async fn find_version(
    store: &Store,
    subject: &str,
    version: Option<u32>,
) -> Result<SubjectVersion, RegistryError> {
    if let Some(found) = store.registry_version(subject, version).await? {
        return Ok(found);
    }
    match version {
        Some(n) if store.registry_version(subject, None).await?.is_some() => {
            Err(RegistryError::version_not_found(n))
        }
        _ => Err(RegistryError::subject_not_found(subject)),
    }
}

async fn subjects(State(store): State<Store>) -> Answer {
    ok(json!(store.registry_subjects().await?))
}

async fn versions(State(store): State<Store>, Path(subject): Path<String>) -> Answer {
    let history = store.registry_history(&subject).await?;
    if history.is_empty() {
        return Err(RegistryError::subject_not_found(&subject));
    }
    let numbers: Vec<u32> = history.iter().map(|v| v.version).collect();
    ok(json!(numbers))
}

async fn register(State(store): State<Store>, Path(subject): Path<String>, body: Bytes) -> Answer {
    let parsed = parse_request(&body)?;
    for _ in 0..REGISTER_ATTEMPTS {
        if let Some(found) = store.registry_lookup(&subject, &parsed.fingerprint).await? {
            return ok(json!({"id": found.id}));
        }
        let history = store.registry_history(&subject).await?;
        let existing = history
            .iter()
            .map(|v| stored_schema(&v.schema))
            .collect::<Result<Vec<_>, _>>()?;
        let level = level_of(&store, &subject).await?;
        if let Compatibility::Incompatible(reasons) =
            compat::check(level, &parsed.schema, &existing)
        {
            return Err(RegistryError::new(
                409,
                409,
                format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{subject}\" ({}): {}",
                    level.as_str(),
                    reasons.join("; ")
                ),
            ));
        }
        let after = history.last().map(|v| v.version);
        match store
            .registry_register(&subject, &parsed.fingerprint, &parsed.text, after)
            .await
        {
            Ok(registered) => {
                tracing::info!(
                    subject,
                    id = registered.id,
                    version = registered.version,
                    "schema registered"
                );
                return ok(json!({"id": registered.id}));
            }
            Err(StoreError::RegistryMoved(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RegistryError::new(
        409,
        40901,
        format!("subject \"{subject}\" kept changing during registration; try again"),
    ))
}

async fn lookup(State(store): State<Store>, Path(subject): Path<String>, body: Bytes) -> Answer {
    let parsed = parse_request(&body)?;
    match store.registry_lookup(&subject, &parsed.fingerprint).await? {
        Some(found) => ok(version_body(&found)),
        None if store.registry_version(&subject, None).await?.is_none() => {
            Err(RegistryError::subject_not_found(&subject))
        }
        None => Err(RegistryError::new(404, 40403, "Schema not found")),
    }
}

async fn version(
    State(store): State<Store>,
    Path((subject, version)): Path<(String, String)>,
) -> Answer {
    let version = parse_version(&version)?;
    ok(version_body(
        &find_version(&store, &subject, version).await?,
    ))
}

async fn schema_by_id(State(store): State<Store>, Path(id): Path<String>) -> Answer {
    let found = match id.parse::<u32>() {
        Ok(n) => store.registry_schema(n).await?,
        Err(_) => None,
    };
    match found {
        Some(schema) => ok(json!({"schema": schema})),
        None => Err(RegistryError::new(
            404,
            40403,
            format!("Schema {id} not found"),
        )),
    }
}

#[derive(Debug, Deserialize)]
struct Verbose {
    #[serde(default)]
    verbose: bool,
}

async fn compatibility(
    State(store): State<Store>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Query<Verbose>,
    body: Bytes,
) -> Answer {
    let version = parse_version(&version)?;
    let parsed = parse_request(&body)?;
    let against = find_version(&store, &subject, version).await?;
    let old = stored_schema(&against.schema)?;
    let level = level_of(&store, &subject).await?;
    // Against the one version named, in the level's directions.
    let outcome = compat::check(level, &parsed.schema, std::slice::from_ref(&old));
    let mut body = json!({"is_compatible": outcome.is_compatible()});
    if params.verbose {
        body["messages"] = match outcome {
            Compatibility::Compatible => json!([]),
            Compatibility::Incompatible(reasons) => json!(reasons),
        };
    }
    ok(body)
}

/// `{"compatibility": "FULL"}`.
#[derive(Debug, Deserialize)]
struct ConfigRequest {
    compatibility: String,
}

fn parse_level(body: &Bytes) -> Result<Level, RegistryError> {
    let request: ConfigRequest = body_json(body)?;
    Level::parse(&request.compatibility).ok_or_else(|| {
        RegistryError::new(
            422,
            42203,
            format!(
                "Invalid compatibility level {:?}: expected one of {}",
                request.compatibility,
                Level::ALL.map(Level::as_str).join(", ")
            ),
        )
    })
}

async fn global_config(State(store): State<Store>) -> Answer {
    let level = store
        .registry_level(None)
        .await?
        .as_deref()
        .and_then(Level::parse)
        .unwrap_or_default();
    ok(json!({"compatibilityLevel": level.as_str()}))
}

async fn set_global_config(State(store): State<Store>, body: Bytes) -> Answer {
    let level = parse_level(&body)?;
    store.set_registry_level(None, level.as_str()).await?;
    ok(json!({"compatibility": level.as_str()}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DefaultToGlobal {
    #[serde(default)]
    default_to_global: bool,
}

async fn subject_config(
    State(store): State<Store>,
    Path(subject): Path<String>,
    Query(params): Query<DefaultToGlobal>,
) -> Answer {
    let level = match store.registry_level(Some(&subject)).await? {
        Some(level) => Level::parse(&level).unwrap_or_default(),
        None if params.default_to_global => level_of(&store, &subject).await?,
        None => {
            return Err(RegistryError::new(
                404,
                40408,
                format!("Subject '{subject}' does not have subject-level compatibility configured"),
            ))
        }
    };
    ok(json!({"compatibilityLevel": level.as_str()}))
}

async fn set_subject_config(
    State(store): State<Store>,
    Path(subject): Path<String>,
    body: Bytes,
) -> Answer {
    let level = parse_level(&body)?;
    store
        .set_registry_level(Some(&subject), level.as_str())
        .await?;
    ok(json!({"compatibility": level.as_str()}))
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
