//! The reader of an upload, shared by every path: reads and validates the
//! feed, counting rows into the receipt, and gives the rows to what comes
//! after validation (a [`Rows`]), which sends them on in batches.

use super::{Receipt, RowCounts, RECEIPT_ERROR_CAP};
use istv_core::{Attendance, Feed, FieldError, Validator};

/// What comes after validation: the geocoding and writing of
/// [`super::Ingest::run`], or the forwarding of [`super::forward`]. It
/// takes the rows as they are validated and decides when they make a
/// batch.
pub(super) trait Rows {
    /// Why a batch could not be sent on; it ends the upload.
    type Error;

    /// Takes an accepted record; `counts` are those of its batch so far.
    fn accept(&mut self, record: Attendance, counts: &mut RowCounts);

    /// Takes a row error, in row order (a rejected row has one or more).
    fn reject(&mut self, error: FieldError);

    /// Whether the rows taken since the last batch make one.
    fn is_full(&self) -> bool;

    /// Sends on the rows taken since the last batch, whose counts are
    /// `counts`. Called once more after the last row (`last`), when there
    /// may be none.
    fn send(&mut self, counts: RowCounts, last: bool) -> Result<(), Self::Error>;
}

/// Reads and validates every row of `feed`, giving each to `rows` and
/// counting it into `receipt`: rows, accepted and rejected rows, the
/// first [`RECEIPT_ERROR_CAP`] row errors (the rest counted), accepted rows
/// whose record id came earlier in the file (when `validator` tracks
/// record ids), and why reading stopped, when the feed failed part way.
pub(super) fn read<R: Rows>(
    feed: &mut Feed,
    validator: &mut Validator,
    receipt: &mut Receipt,
    rows: &mut R,
) -> Result<(), R::Error> {
    let mut counts = RowCounts::default();
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
                rows.accept(record, &mut counts);
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
                    rows.reject(e);
                }
            }
        }
        if rows.is_full() {
            rows.send(std::mem::take(&mut counts), false)?;
        }
    }
    rows.send(counts, true)
}
