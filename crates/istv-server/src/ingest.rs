//! `POST /api/v1/uploads`: the ingest adapter. The body streams from the
//! socket into a blocking worker that runs the pipeline stages (read,
//! validate, geocode) and writes batches to the store; the receipt is sent
//! only after the last batch and the receipt itself are committed, so an
//! acknowledged upload survives a crash.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use istv_core::{ErrorCode, Feed, FieldError, FileError, Format, Validator};
use istv_store::{Completion, RowError, UploadId};
use serde::Serialize;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::Instrument;

/// How many row errors a receipt lists; the rest are counted, and all are at
/// `GET /api/v1/uploads/{id}/errors`.
pub const RECEIPT_ERROR_CAP: usize = 100;

/// What the uploader gets back.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Receipt {
    /// The upload's id.
    pub upload_id: String,
    /// The site the token belongs to.
    pub site_code: String,
    /// Rows read.
    pub rows: u64,
    /// Rows that passed validation and are stored (new, corrected or
    /// unchanged).
    pub accepted: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Accepted rows identical to what was already stored.
    pub duplicates: u64,
    /// Accepted rows that replaced different stored content.
    pub corrections: u64,
    /// The first row errors.
    pub errors: Vec<FieldError>,
    /// Row errors not listed in `errors`.
    pub errors_not_shown: u64,
    /// Accepted rows whose `record_id` came earlier in the same upload: the
    /// later row wins. Each is also counted in `duplicates` (same content)
    /// or `corrections` (changed content).
    pub replaced_in_file: u64,
    /// Why reading stopped early, when it did; rows before that point are
    /// accepted as counted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Bearer <site token>".into())
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be Bearer <site token>".into())
        })
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = bearer(headers)?;
    state
        .store()
        .authenticate(token)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("unknown or revoked token".into()))
}

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

/// `POST /api/v1/uploads`.
pub(crate) async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let started = Instant::now();
    if !state.is_ready() {
        return Err(ApiError::Unavailable(
            "the service is shutting down; send the file again shortly".into(),
        ));
    }
    let site = authenticate(&state, &headers).await?;
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
    let runtime = tokio::runtime::Handle::current();
    let worker_span = span;
    let receipt = tokio::task::spawn_blocking(move || {
        let _enter = worker_span.enter();
        let reader = BodyReader {
            rx,
            current: Bytes::new(),
        };
        process(
            reader,
            format,
            &worker_site,
            &worker_upload,
            &worker_state,
            &runtime,
        )
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

/// Runs the stages over one upload. Everything here is synchronous; the
/// store is reached through the runtime handle.
fn process(
    reader: BodyReader,
    format: Option<Format>,
    site: &str,
    upload: &UploadId,
    state: &AppState,
    runtime: &tokio::runtime::Handle,
) -> Result<Receipt, ApiError> {
    let m = state.metrics();
    let mut feed = match Feed::from_reader(reader, format) {
        Ok(f) => f,
        Err(e) => {
            let message = e.to_string();
            let receipt = empty_receipt(upload, site, Some(message.clone()));
            finish(state, runtime, upload, &receipt, &[])?;
            return Err(match e {
                FileError::Io(_) => ApiError::BadRequest(message),
                _ => ApiError::Unprocessable(message),
            });
        }
    };
    // The store counts rows repeated within the upload, so the validator need
    // not remember every record id of a multi-million-row file.
    let mut validator = Validator::new(chrono::Utc::now())
        .for_site(site)
        .without_duplicate_tracking();
    let mut receipt = empty_receipt(upload, site, None);
    let batch_rows = state.config().batch_rows.max(1);
    let geocoder = state.geocoder().clone();
    let keys = state.store().disclosure_keys().clone();
    // The store writes one batch while this thread reads, validates and
    // geocodes the next: the two stages overlap on two cores. The channel
    // holds one batch, so at most three are in memory. Errors travel with
    // the batches, so memory stays flat however many rows a file gets wrong.
    let (to_writer, from_reader) = std::sync::mpsc::sync_channel::<Batch>(1);
    // Written batches go back to the reader, which frees them: memory is
    // cheaper to free on the thread that allocated it, and the writer is
    // the busier of the two.
    let (to_reader, written_batches) = std::sync::mpsc::channel::<Batch>();
    let span = tracing::Span::current();
    let written = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let _enter = span.enter();
            write_batches(from_reader, to_reader, upload, state, runtime)
        });
        let read = read_batches(
            &mut feed,
            &mut validator,
            (&geocoder, &keys),
            batch_rows,
            &mut receipt,
            (&to_writer, &written_batches),
            m,
        );
        // Closing the channel lets the writer finish what it has.
        drop(to_writer);
        let written = writer
            .join()
            .map_err(|_| ApiError::Internal("the store writer failed".into()))?;
        // A writer error explains a reader stopped by a closed channel.
        let written = written?;
        read.map(|()| written)
    })?;
    receipt.duplicates = written.duplicates;
    receipt.corrections = written.corrections;
    receipt.replaced_in_file = written.replaced_in_upload;
    finish(state, runtime, upload, &receipt, &[])?;
    Ok(receipt)
}

/// Valid rows as events, and the row errors read with them.
#[derive(Default)]
struct Batch {
    events: Vec<istv_aggregate::Event>,
    errors: Vec<RowError>,
}

/// Reads, validates and geocodes the feed, counting rows into `receipt` and
/// sending batches to the writer, which sends them back once written.
/// Fails only when the writer has stopped.
fn read_batches(
    feed: &mut Feed,
    validator: &mut Validator,
    (geocoder, keys): (&istv_geo::Geocoder, &istv_aggregate::DisclosureKeys),
    batch_rows: usize,
    receipt: &mut Receipt,
    (to_writer, written): (
        &std::sync::mpsc::SyncSender<Batch>,
        &std::sync::mpsc::Receiver<Batch>,
    ),
    m: &crate::metrics::Metrics,
) -> Result<(), ApiError> {
    let stopped = || ApiError::Internal("the store writer stopped".into());
    let mut batch = Batch::default();
    // The first batches are small so that the store starts writing early (a
    // fresh server fills its geocoding tables as points arrive, and a full
    // first batch kept the writer idle for half a second); then they double
    // up to `batch_rows`.
    let mut limit = batch_rows.div_ceil(16);
    // Accepted records wait here to be geocoded a few dozen at a time.
    let mut pending: Vec<istv_core::Attendance> = Vec::with_capacity(GEOCODE_CHUNK);
    // Counted here and added to the metrics once per batch: a labelled
    // counter is a lookup and a lock, too dear for every row.
    let mut counts = RowCounts::default();
    let geocode_pending = |pending: &mut Vec<istv_core::Attendance>,
                           batch: &mut Batch,
                           counts: &mut RowCounts| {
        let from = batch.events.len();
        istv_pipeline::geocode_stage_many(geocoder, keys, pending, &mut batch.events);
        for event in &batch.events[from..] {
            counts.geocoded[event.geocode_method as usize][event.location_status() as usize] += 1;
        }
    };
    loop {
        let raw = match feed.next() {
            None => break,
            Some(Ok(raw)) => raw,
            Some(Err(e)) => {
                receipt.error = Some(e.to_string());
                break;
            }
        };
        let verdict = validator.validate(&raw);
        receipt.rows += 1;
        counts.received += 1;
        match verdict.record {
            Some(record) => {
                receipt.accepted += 1;
                counts.accepted += 1;
                pending.push(record);
                if pending.len() == GEOCODE_CHUNK {
                    geocode_pending(&mut pending, &mut batch, &mut counts);
                }
            }
            None => {
                receipt.rejected += 1;
                for e in verdict.errors {
                    m.rejected.with_label_values(&[e.code.as_str()]).inc();
                    if receipt.errors.len() < RECEIPT_ERROR_CAP {
                        receipt.errors.push(e.clone());
                    } else {
                        receipt.errors_not_shown += 1;
                    }
                    batch.errors.push(RowError {
                        row: e.row,
                        field: e.field,
                        code: e.code.as_str().to_string(),
                        message: e.message,
                    });
                }
            }
        }
        if batch.events.len() + pending.len() >= limit || batch.errors.len() >= limit {
            geocode_pending(&mut pending, &mut batch, &mut counts);
            counts.flush(m);
            limit = (limit * 2).min(batch_rows);
            // The last written batch, emptied here, is the next one.
            let mut next = Batch::default();
            while let Ok(mut done) = written.try_recv() {
                done.events.clear();
                done.errors.clear();
                next = done;
            }
            next.events.reserve(limit);
            to_writer
                .send(std::mem::replace(&mut batch, next))
                .map_err(|_| stopped())?;
        }
    }
    geocode_pending(&mut pending, &mut batch, &mut counts);
    counts.flush(m);
    to_writer.send(batch).map_err(|_| stopped())
}

/// Row counts not yet added to the metrics.
#[derive(Default)]
struct RowCounts {
    received: u64,
    accepted: u64,
    /// By geocode method, then location status, indexed by their
    /// discriminants, which are their places in `ALL` (tested).
    geocoded:
        [[u64; istv_aggregate::LocationStatus::ALL.len()]; istv_geo::GeocodeMethod::ALL.len()],
}

impl RowCounts {
    fn flush(&mut self, m: &crate::metrics::Metrics) {
        m.received.inc_by(self.received);
        m.accepted.inc_by(self.accepted);
        for (method, by_status) in istv_geo::GeocodeMethod::ALL.iter().zip(&self.geocoded) {
            for (status, &n) in istv_aggregate::LocationStatus::ALL.iter().zip(by_status) {
                if n > 0 {
                    m.geocoded
                        .with_label_values(&[method.as_str(), status.as_str()])
                        .inc_by(n);
                }
            }
        }
        *self = RowCounts::default();
    }
}

/// Accepted records geocoded together (see `Geocoder::geocode_many`).
const GEOCODE_CHUNK: usize = 64;

/// Writes batches to the store until the reader is done, each batch's
/// errors first; returns the store's counts over all of them.
fn write_batches(
    from_reader: std::sync::mpsc::Receiver<Batch>,
    to_reader: std::sync::mpsc::Sender<Batch>,
    upload: &UploadId,
    state: &AppState,
    runtime: &tokio::runtime::Handle,
) -> Result<istv_aggregate::BatchOutcome, ApiError> {
    let m = state.metrics();
    let mut total = istv_aggregate::BatchOutcome::default();
    for batch in from_reader {
        runtime.block_on(state.store().add_errors(upload, &batch.errors))?;
        if batch.events.is_empty() {
            continue;
        }
        let t = Instant::now();
        let outcome = runtime.block_on(state.store().apply_batch(upload, &batch.events))?;
        m.store_write.observe(t.elapsed().as_secs_f64());
        m.duplicates.inc_by(outcome.duplicates);
        m.corrections.inc_by(outcome.corrections);
        total.add(outcome);
        // A reader that has finished drops it with the channel.
        let _ = to_reader.send(batch);
    }
    Ok(total)
}

fn empty_receipt(upload: &UploadId, site: &str, error: Option<String>) -> Receipt {
    Receipt {
        upload_id: upload.to_string(),
        site_code: site.to_string(),
        rows: 0,
        accepted: 0,
        rejected: 0,
        duplicates: 0,
        corrections: 0,
        errors: Vec::new(),
        errors_not_shown: 0,
        replaced_in_file: 0,
        error,
    }
}

fn finish(
    state: &AppState,
    runtime: &tokio::runtime::Handle,
    upload: &UploadId,
    receipt: &Receipt,
    errors: &[RowError],
) -> Result<(), ApiError> {
    let json = serde_json::to_value(receipt).map_err(|e| ApiError::Internal(e.to_string()))?;
    runtime.block_on(state.store().finish_upload(
        upload,
        Completion {
            rows: receipt.rows,
            rejected: receipt.rejected,
            receipt: &json,
            errors,
        },
    ))?;
    Ok(())
}

fn parse_id(id: &str) -> Result<UploadId, ApiError> {
    UploadId::parse(id).ok_or_else(|| ApiError::NotFound(format!("no upload {id:?}")))
}

/// `GET /api/v1/uploads/{id}`: the receipt again, for the site that sent it.
pub(crate) async fn receipt(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let site = authenticate(&state, &headers).await?;
    let upload = state
        .store()
        .upload(&parse_id(&id)?)
        .await?
        .filter(|u| u.site_code == site)
        .ok_or_else(|| ApiError::NotFound(format!("no upload {id:?} for site {site}")))?;
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
    headers: HeaderMap,
    Path(id): Path<String>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let site = authenticate(&state, &headers).await?;
    let upload_id = parse_id(&id)?;
    let upload = state
        .store()
        .upload(&upload_id)
        .await?
        .filter(|u| u.site_code == site)
        .ok_or_else(|| ApiError::NotFound(format!("no upload {id:?} for site {site}")))?;
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

#[cfg(test)]
mod tests {
    use super::RowCounts;

    /// `RowCounts` indexes by discriminant and labels by place in `ALL`.
    #[test]
    fn row_counts_label_each_count_with_its_method_and_status() {
        for (i, m) in istv_geo::GeocodeMethod::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i, "{m:?}");
        }
        for (i, s) in istv_aggregate::LocationStatus::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "{s:?}");
        }
        let mut counts = RowCounts::default();
        counts.geocoded[istv_geo::GeocodeMethod::Grid as usize]
            [istv_aggregate::LocationStatus::OutOfArea as usize] += 3;
        counts.received = 5;
        let m = crate::metrics::Metrics::new();
        counts.flush(&m);
        assert_eq!(m.received.get(), 5);
        assert_eq!(
            m.geocoded.with_label_values(&["grid", "out_of_area"]).get(),
            3
        );
        assert_eq!(m.geocoded.with_label_values(&["grid", "resolved"]).get(), 0);
        // Flushed counts start again from zero.
        counts.flush(&m);
        assert_eq!(m.received.get(), 5);
    }
}
