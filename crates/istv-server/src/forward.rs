//! Uploads forwarded to a broker (`istv ingest`): the same upload API,
//! credentials, limits and receipts as `istv serve`, but the validated rows
//! and the row errors go to a [`Forward`] (Kafka topics) instead of the
//! store's records. The store keeps the upload, its row errors and its
//! receipt, so `GET /api/v1/uploads/{id}` and `/errors` answer as before.
//!
//! The receipt is given only once the forward has acknowledged every
//! accepted row. Whether a row repeats or corrects a stored record is
//! decided downstream, where the records are, so a forwarded upload's
//! receipt counts no duplicates and no corrections; `replaced_in_file`
//! counts rows whose record id came earlier in the same file.

use crate::error::ApiError;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use istv_core::{Attendance, Feed, FieldError, FileError, Validator};
use istv_pipeline::{Receipt, RowCounts, RECEIPT_ERROR_CAP};
use istv_store::{Completion, RowError, UploadId};
use std::io::Read;

/// The upload a forwarded batch belongs to.
#[derive(Debug, Clone, Copy)]
pub struct ForwardUpload<'a> {
    /// The upload's id.
    pub upload_id: &'a str,
    /// The site it is for.
    pub site_code: &'a str,
    /// When it arrived: the messages' timestamp, from which the last stage
    /// measures upload-to-visible latency.
    pub received_at: DateTime<Utc>,
}

/// Where a forwarded upload's rows go. Called from a blocking thread, one
/// batch of an upload at a time, in row order.
pub trait Forward: Send + Sync + 'static {
    /// Sends one batch: its accepted attendances and its row errors.
    /// Returns once every message is acknowledged; an error means some may
    /// not be, and the upload then ends without a receipt (the uploader
    /// sends the file again; rows already sent are recognised downstream
    /// as duplicates by their content).
    fn send(
        &self,
        upload: &ForwardUpload<'_>,
        attendances: &[Attendance],
        errors: &[FieldError],
    ) -> Result<(), String>;

    /// False while the broker cannot take messages (for `/readyz`).
    fn is_ready(&self) -> bool {
        true
    }
}

/// Runs one forwarded upload on this (blocking) thread.
pub(crate) fn process<R: Read + Send + 'static>(
    forward: &dyn Forward,
    reader: R,
    format: Option<istv_core::Format>,
    site: &str,
    upload: &UploadId,
    state: &AppState,
) -> Result<Receipt, ApiError> {
    let runtime = tokio::runtime::Handle::current();
    let store = state.store();
    let mut receipt = Receipt::new(upload.to_string(), site);
    let finish = |receipt: &Receipt| -> Result<(), ApiError> {
        let json = serde_json::to_value(receipt).map_err(|e| ApiError::Internal(e.to_string()))?;
        runtime.block_on(store.finish_upload(
            upload,
            Completion {
                rows: receipt.rows,
                rejected: receipt.rejected,
                receipt: &json,
                errors: &[],
            },
        ))?;
        Ok(())
    };
    let mut feed = match Feed::from_reader(reader, format) {
        Ok(f) => f,
        Err(e) => {
            let message = e.to_string();
            receipt.error = Some(message.clone());
            finish(&receipt)?;
            return Err(match e {
                FileError::Io(_) => ApiError::BadRequest(message),
                _ => ApiError::Unprocessable(message),
            });
        }
    };
    let upload_id = upload.to_string();
    let to = ForwardUpload {
        upload_id: &upload_id,
        site_code: site,
        received_at: Utc::now(),
    };
    // Rows repeated within the file are counted here: no store is asked.
    let mut validator = Validator::new(Utc::now()).for_site(site);
    let batch_rows = state.config().batch_rows.max(1);
    let mut attendances: Vec<Attendance> = Vec::with_capacity(batch_rows.min(4096));
    let mut errors: Vec<FieldError> = Vec::new();
    let mut counts = RowCounts::default();
    let metrics = state.metrics();
    let send = |attendances: &mut Vec<Attendance>,
                errors: &mut Vec<FieldError>,
                counts: &mut RowCounts|
     -> Result<(), ApiError> {
        forward.send(&to, attendances, errors).map_err(|e| {
            ApiError::Unavailable(format!(
                "the broker did not take the upload: {e}; send the file again"
            ))
        })?;
        if !errors.is_empty() {
            let rows: Vec<RowError> = errors
                .iter()
                .map(|e| RowError {
                    row: e.row,
                    field: e.field.clone(),
                    code: e.code.as_str().to_string(),
                    message: e.message.clone(),
                })
                .collect();
            runtime.block_on(store.add_errors(upload, &rows))?;
        }
        metrics.add_rows(counts);
        *counts = RowCounts::default();
        attendances.clear();
        errors.clear();
        Ok(())
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
                if verdict.replaces.is_some() {
                    receipt.replaced_in_file += 1;
                }
                attendances.push(record);
            }
            None => {
                receipt.rejected += 1;
                for e in verdict.errors {
                    counts.rejected[e.code as usize] += 1;
                    if receipt.errors.len() < RECEIPT_ERROR_CAP {
                        receipt.errors.push(e.clone());
                    } else {
                        receipt.errors_not_shown += 1;
                    }
                    errors.push(e);
                }
            }
        }
        if attendances.len() >= batch_rows || errors.len() >= batch_rows {
            send(&mut attendances, &mut errors, &mut counts)?;
        }
    }
    if !(attendances.is_empty() && errors.is_empty()) {
        send(&mut attendances, &mut errors, &mut counts)?;
    }
    metrics.add_rows(&counts);
    finish(&receipt)?;
    Ok(receipt)
}
