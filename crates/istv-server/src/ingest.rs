//! `POST /api/v1/uploads`: the ingest adapter. The body streams from the
//! socket into a blocking worker that runs the ingest driver
//! ([`istv_pipeline::Ingest`]): it reads, validates and geocodes, and hands
//! batches to the store's one writer, which all uploads share. The receipt
//! is sent only after the last batch and the receipt itself are committed,
//! so an acknowledged upload survives a crash.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::sink::StoreUpload;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use istv_core::{ErrorCode, Feed, FieldError, FileError, Format, Validator};
use istv_pipeline::{DriverError, Ingest, Receipt};
use istv_store::UploadId;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::Instrument;

fn format_of(headers: &HeaderMap) -> Result<Option<Format>, ApiError> {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("").trim().to_ascii_lowercase();
        // gzip is detected from the bytes themselves; others are not read.
        if !(enc.is_empty() || enc == "gzip" || enc == "identity" || enc == "x-gzip") {
            return Err(ApiError::UnsupportedMedia(format!(
                "content encoding {enc:?} is not supported; send gzip or no encoding"
            )));
        }
    }
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let ct = ct.to_str().unwrap_or("");
    if ct.starts_with("application/octet-stream") || ct.starts_with("application/gzip") {
        return Ok(None);
    }
    Format::from_content_type(ct).map(Some).ok_or_else(|| {
        ApiError::UnsupportedMedia(format!(
            "content type {ct:?} is not a feed format; use text/csv, application/x-ndjson or avro/binary"
        ))
    })
}

/// Reads the request body on a blocking thread.
struct BodyReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// `?site=` of an upload: which of an uploader's sites it is for.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadParams {
    site: Option<String>,
}

/// `POST /api/v1/uploads`.
pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
    params: Result<Query<UploadParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let answer = receive(state.clone(), &caller, params, headers, body).await;
    crate::audit::upload(&state, &caller, &uri, answer).await
}

/// The upload itself.
async fn receive(
    state: AppState,
    caller: &Caller,
    params: Result<Query<UploadParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let started = Instant::now();
    if !state.is_ready() {
        return Err(ApiError::Unavailable(
            "the service is shutting down; send the file again shortly".into(),
        ));
    }
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let site = istv_access::may_upload(&caller.principal, params.site.as_deref())?;
    let format = format_of(&headers)?;
    let max = state.config().max_body_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        if len > max {
            return Err(ApiError::TooLarge(format!(
                "the body is {len} bytes; the limit is {max}"
            )));
        }
    }
    let slots = state.slots(&site);
    let _permit = slots.try_acquire_owned().map_err(|_| {
        ApiError::TooMany(format!(
            "site {site} already has {} uploads running; wait for one to finish",
            state.config().per_token_concurrency
        ))
    })?;
    let upload = state
        .store()
        .begin_upload(&site, format.map(|f| f.as_str()).unwrap_or("auto"))
        .await?;
    let span = tracing::info_span!("upload", upload_id = %upload, site = %site);
    run_upload(
        state,
        body,
        format,
        site,
        upload,
        started,
        max,
        span.clone(),
    )
    .instrument(span)
    .await
}

/// The rest of an upload, inside its span so every log line names it.
#[allow(clippy::too_many_arguments)]
async fn run_upload(
    state: AppState,
    body: Body,
    format: Option<Format>,
    site: String,
    upload: UploadId,
    started: Instant,
    max: u64,
    span: tracing::Span,
) -> Result<Json<Receipt>, ApiError> {
    tracing::info!("upload started");

    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    let too_large = Arc::new(AtomicBool::new(false));
    let flag = too_large.clone();
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let item = match chunk {
                Ok(b) => {
                    total += b.len() as u64;
                    if total > max {
                        flag.store(true, Ordering::SeqCst);
                        Err(std::io::Error::other(format!(
                            "the body is over the limit of {max} bytes"
                        )))
                    } else {
                        Ok(b)
                    }
                }
                Err(e) => Err(std::io::Error::other(format!(
                    "the upload was interrupted: {e}"
                ))),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });

    let worker_state = state.clone();
    let worker_site = site.clone();
    let worker_upload = upload.clone();
    let worker_span = span;
    let receipt = tokio::task::spawn_blocking(move || {
        let _enter = worker_span.enter();
        let reader = BodyReader {
            rx,
            current: Bytes::new(),
        };
        process(reader, format, &worker_site, &worker_upload, &worker_state)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the upload worker failed: {e}")))??;

    if too_large.load(Ordering::SeqCst) && receipt.accepted == 0 {
        return Err(ApiError::TooLarge(format!(
            "the body is over the limit of {max} bytes"
        )));
    }
    let m = state.metrics();
    m.latency.observe(started.elapsed().as_secs_f64());
    if receipt.error.is_none() {
        m.last_upload
            .with_label_values(&[&site])
            .set(chrono::Utc::now().timestamp());
    }
    tracing::info!(
        rows = receipt.rows,
        accepted = receipt.accepted,
        rejected = receipt.rejected,
        duplicates = receipt.duplicates,
        corrections = receipt.corrections,
        seconds = started.elapsed().as_secs_f64(),
        "upload finished"
    );
    Ok(Json(receipt))
}

/// Runs the driver over one upload: this thread reads, validates and
/// geocodes; the store's writer writes the batches (see
/// [`istv_pipeline::Ingest::run`]).
fn process(
    reader: BodyReader,
    format: Option<Format>,
    site: &str,
    upload: &UploadId,
    state: &AppState,
) -> Result<Receipt, ApiError> {
    if let Some(forward) = state.forward() {
        return crate::forward::process(&**forward, reader, format, site, upload, state);
    }
    let writer = state.writer();
    let ticket = || StoreUpload {
        id: upload.clone(),
        span: tracing::Span::current(),
    };
    let receipt = Receipt::new(upload.to_string(), site);
    let mut feed = open_feed(reader, format, &receipt, |receipt| {
        writer.finish(ticket(), receipt).map_err(driver_error)?;
        Ok(())
    })?;
    // The store counts rows repeated within the upload, so the validator need
    // not remember every record id of a multi-million-row file.
    let mut validator = Validator::new(chrono::Utc::now())
        .for_site(site)
        .without_duplicate_tracking();
    let ingest = Ingest {
        geocoder: state.geocoder(),
        keys: istv_pipeline::Keys {
            disclosure: state.store().disclosure_keys(),
            content: &state.config().content_key,
        },
        batch_rows: state.config().batch_rows.max(1),
    };
    let m = state.metrics();
    ingest
        .run(
            writer,
            ticket(),
            receipt,
            &mut feed,
            &mut validator,
            |counts| {
                m.add_rows(counts);
                m.add_site_rows(site, counts);
            },
        )
        .map_err(driver_error)
}

/// The feed of an upload's body. A body that is not a feed ends the
/// upload at once: `finish` gets the receipt saying why, and the answer is
/// 400 when the body could not be read, else 422.
pub(crate) fn open_feed<R: Read + Send + 'static>(
    reader: R,
    format: Option<Format>,
    receipt: &Receipt,
    finish: impl FnOnce(Receipt) -> Result<(), ApiError>,
) -> Result<Feed, ApiError> {
    Feed::from_reader(reader, format).or_else(|e| {
        let message = e.to_string();
        let mut receipt = receipt.clone();
        receipt.error = Some(message.clone());
        finish(receipt)?;
        Err(match e {
            FileError::Io(_) => ApiError::BadRequest(message),
            _ => ApiError::Unprocessable(message),
        })
    })
}

/// The answer for an upload the driver stopped.
fn driver_error(e: DriverError<ApiError>) -> ApiError {
    match e {
        DriverError::Sink(e) => e,
        DriverError::Panicked(m) => ApiError::Internal(format!("the store writer failed: {m}")),
        DriverError::Stopped => ApiError::Internal("the store writer stopped".into()),
    }
}

fn parse_id(id: &str) -> Result<UploadId, ApiError> {
    UploadId::parse(id).ok_or_else(|| ApiError::NotFound(format!("no upload {id:?}")))
}

/// An upload the caller may read: 403 for a role without receipts, 404
/// for another site's (so its ids are not confirmed) or an unknown id.
async fn own_upload(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<istv_store::Upload, ApiError> {
    istv_access::may_read_receipt(&caller.principal, "")?;
    let not_found = || ApiError::NotFound(format!("no upload {id:?} of your sites"));
    let upload = state
        .store()
        .upload(&parse_id(id)?)
        .await?
        .ok_or_else(not_found)?;
    if istv_access::may_read_receipt(&caller.principal, &upload.site_code)? {
        Ok(upload)
    } else {
        Err(not_found())
    }
}

/// `GET /api/v1/uploads/{id}`: the receipt again, for the site that sent it.
pub(crate) async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let upload = own_upload(&state, &caller, &id).await?;
    match upload.receipt {
        Some(r) => Ok(Json(r)),
        None => Err(ApiError::NotFound(format!(
            "upload {id:?} has no receipt: it did not finish; send the file again (rows already stored will count as duplicates)"
        ))),
    }
}

/// Paging of `GET /api/v1/uploads/{id}/errors`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    #[serde(default)]
    offset: u64,
    #[serde(default = "default_limit")]
    limit: u64,
}

fn default_limit() -> u64 {
    1000
}

/// `GET /api/v1/uploads/{id}/errors?offset=&limit=`: every row error.
pub(crate) async fn errors(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let upload = own_upload(&state, &caller, &id).await?;
    let upload_id = upload.id.clone();
    let limit = page.limit.clamp(1, 100_000);
    let rows = state
        .store()
        .upload_errors(&upload_id, page.offset, limit)
        .await?;
    let errors: Vec<FieldError> = rows
        .into_iter()
        .map(|e| FieldError {
            row: e.row,
            field: e.field,
            code: ErrorCode::parse(&e.code).unwrap_or(ErrorCode::MalformedRow),
            message: e.message,
        })
        .collect();
    Ok(Json(serde_json::json!({
        "upload_id": upload.id.to_string(),
        "offset": page.offset,
        "limit": limit,
        "errors": errors,
    })))
}
