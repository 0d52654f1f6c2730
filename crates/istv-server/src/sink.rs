//! The store as the ingest driver's sink. The driver runs on plain
//! threads; the store is asynchronous, so each call blocks on the runtime
//! through its handle.

use crate::error::ApiError;
use crate::metrics::Metrics;
use istv_aggregate::{BatchOutcome, Event};
use istv_core::FieldError;
use istv_pipeline::{Receipt, Sink};
use istv_store::{Completion, RowError, Store, UploadId};
use std::time::Instant;

/// Batches that may wait for the store writer, across all uploads; a
/// reader with another waits (each upload has at most two at the writer).
pub(crate) const WRITER_QUEUE: usize = 4;

/// An upload as the writer sees it: its id, and its span, entered around
/// each store call so that log lines name the upload.
pub(crate) struct StoreUpload {
    pub(crate) id: UploadId,
    pub(crate) span: tracing::Span,
}

/// The store, reached from the writer thread.
pub(crate) struct StoreSink {
    store: Store,
    runtime: tokio::runtime::Handle,
    metrics: Metrics,
}

impl StoreSink {
    /// A sink over `store` that blocks on `runtime` and counts writes in
    /// `metrics`.
    pub(crate) fn new(store: Store, runtime: tokio::runtime::Handle, metrics: Metrics) -> Self {
        StoreSink {
            store,
            runtime,
            metrics,
        }
    }
}

impl Sink for StoreSink {
    type Upload = StoreUpload;
    type Error = ApiError;

    fn write_batch(
        &self,
        upload: &StoreUpload,
        events: &[Event],
    ) -> Result<BatchOutcome, ApiError> {
        let _enter = upload.span.enter();
        let t = Instant::now();
        let outcome = self
            .runtime
            .block_on(self.store.apply_batch(&upload.id, events))?;
        let m = &self.metrics;
        m.store_write.observe(t.elapsed().as_secs_f64());
        m.duplicates.inc_by(outcome.duplicates);
        m.corrections.inc_by(outcome.corrections);
        Ok(outcome)
    }

    fn add_errors(&self, upload: &StoreUpload, errors: &[FieldError]) -> Result<(), ApiError> {
        let _enter = upload.span.enter();
        self.runtime
            .block_on(self.store.add_errors(&upload.id, &row_errors(errors)))?;
        Ok(())
    }

    fn finish(&self, upload: &StoreUpload, receipt: &Receipt) -> Result<(), ApiError> {
        let _enter = upload.span.enter();
        finish_upload(&self.runtime, &self.store, &upload.id, receipt)
    }
}

/// Row errors as the store keeps them.
pub(crate) fn row_errors(errors: &[FieldError]) -> Vec<RowError> {
    errors
        .iter()
        .map(|e| RowError {
            row: e.row,
            field: e.field.clone(),
            code: e.code.as_str().to_string(),
            message: e.message.clone(),
        })
        .collect()
}

/// Ends `upload` in the store with its receipt, blocking on `runtime`.
pub(crate) fn finish_upload(
    runtime: &tokio::runtime::Handle,
    store: &Store,
    upload: &UploadId,
    receipt: &Receipt,
) -> Result<(), ApiError> {
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
}
