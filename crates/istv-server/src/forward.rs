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
use crate::sink::{finish_upload, row_errors};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use istv_core::{Attendance, FieldError, Validator};
use istv_pipeline::{ForwardSink, Receipt};
use istv_store::{Store, UploadId};
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

/// Runs one forwarded upload on this (blocking) thread: the pipeline's
/// reader ([`istv_pipeline::forward`]) over a [`Broker`].
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
    let receipt = Receipt::new(upload.to_string(), site);
    let mut feed = crate::ingest::open_feed(reader, format, &receipt, |receipt| {
        finish_upload(&runtime, store, upload, &receipt)
    })?;
    let upload_id = upload.to_string();
    let mut broker = Broker {
        forward,
        to: ForwardUpload {
            upload_id: &upload_id,
            site_code: site,
            received_at: Utc::now(),
        },
        upload,
        store,
        runtime: &runtime,
    };
    // Rows repeated within the file are counted here: no store is asked.
    let mut validator = Validator::new(Utc::now()).for_site(site);
    let metrics = state.metrics();
    istv_pipeline::forward(
        &mut broker,
        receipt,
        &mut feed,
        &mut validator,
        state.config().batch_rows,
        |counts| metrics.add_rows(counts),
    )
}

/// A forwarded upload's sink: its rows to the [`Forward`], its row errors
/// and its receipt to the store too.
struct Broker<'a> {
    forward: &'a dyn Forward,
    to: ForwardUpload<'a>,
    upload: &'a UploadId,
    store: &'a Store,
    runtime: &'a tokio::runtime::Handle,
}

impl ForwardSink for Broker<'_> {
    type Error = ApiError;

    fn send(&mut self, attendances: &[Attendance], errors: &[FieldError]) -> Result<(), ApiError> {
        self.forward
            .send(&self.to, attendances, errors)
            .map_err(|e| {
                ApiError::Unavailable(format!(
                    "the broker did not take the upload: {e}; send the file again"
                ))
            })?;
        if !errors.is_empty() {
            self.runtime
                .block_on(self.store.add_errors(self.upload, &row_errors(errors)))?;
        }
        Ok(())
    }

    fn finish(&mut self, receipt: &Receipt) -> Result<(), ApiError> {
        finish_upload(self.runtime, self.store, self.upload, receipt)
    }
}
