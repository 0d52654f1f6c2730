//! What comes after validation in [`forward`]: accepted records, not
//! geocoded, and the row errors go to a [`ForwardSink`] in batches, on
//! the reader's thread.

use super::reader::{self, Rows};
use super::{Receipt, RowCounts};
use istv_core::{Attendance, Feed, FieldError, Validator};

/// Where [`forward`] sends an upload's rows: validated but not geocoded
/// (a broker, from which later stages take them). Calls come from the
/// reader's thread, in row order, each once the one before has returned:
/// the batches ([`ForwardSink::send`]), then the receipt
/// ([`ForwardSink::finish`]). After a call fails there is none.
pub trait ForwardSink {
    /// Why a call failed.
    type Error;

    /// Sends one batch: its accepted attendances and its row errors, not
    /// both empty. Returns once the sink holds every one (a broker has
    /// acknowledged them); an error means some may be lost, and the upload
    /// ends without a receipt.
    fn send(
        &mut self,
        attendances: &[Attendance],
        errors: &[FieldError],
    ) -> Result<(), Self::Error>;

    /// Ends the upload with its receipt, after its last batch.
    fn finish(&mut self, receipt: &Receipt) -> Result<(), Self::Error>;
}

/// Runs one upload whose rows are forwarded: reads and validates the rows
/// of `feed` on this thread, counting them into `receipt` (made by
/// [`Receipt::new`]), and sends them to `sink` in batches of up to
/// `batch_rows` (at least 1) attendances or row errors. `observe` gets
/// each batch's row counts once the sink holds it. Returns the receipt
/// once the sink holds every batch and the receipt itself.
///
/// Whether a row repeats or corrects a stored record is decided where the
/// records are, after the sink, so the receipt counts no duplicates and no
/// corrections; rows replaced within the file are those `validator` finds
/// (one that tracks record ids). A feed that fails part way is not an
/// error, as in [`super::Ingest::run`]; an error is the sink's, and there
/// is no receipt.
pub fn forward<F: ForwardSink>(
    sink: &mut F,
    mut receipt: Receipt,
    feed: &mut Feed,
    validator: &mut Validator,
    batch_rows: usize,
    observe: impl FnMut(&RowCounts),
) -> Result<Receipt, F::Error> {
    let batch_rows = batch_rows.max(1);
    let mut rows = Forwarded {
        sink: &mut *sink,
        attendances: Vec::with_capacity(batch_rows.min(4096)),
        errors: Vec::new(),
        batch_rows,
        observe,
    };
    reader::read(feed, validator, &mut receipt, &mut rows)?;
    sink.finish(&receipt)?;
    Ok(receipt)
}

/// The batch of a forwarded upload being filled.
struct Forwarded<'a, F, O> {
    sink: &'a mut F,
    attendances: Vec<Attendance>,
    errors: Vec<FieldError>,
    batch_rows: usize,
    observe: O,
}

impl<F: ForwardSink, O: FnMut(&RowCounts)> Rows for Forwarded<'_, F, O> {
    type Error = F::Error;

    fn accept(&mut self, record: Attendance, _counts: &mut RowCounts) {
        self.attendances.push(record);
    }

    fn reject(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    fn is_full(&self) -> bool {
        self.attendances.len() >= self.batch_rows || self.errors.len() >= self.batch_rows
    }

    fn send(&mut self, counts: RowCounts, _last: bool) -> Result<(), F::Error> {
        if !(self.attendances.is_empty() && self.errors.is_empty()) {
            self.sink.send(&self.attendances, &self.errors)?;
            self.attendances.clear();
            self.errors.clear();
        }
        (self.observe)(&counts);
        Ok(())
    }
}
