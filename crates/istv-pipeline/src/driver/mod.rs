//! The ingest driver: one upload's rows from a [`Feed`] to a [`Sink`].
//!
//! The calling thread reads, validates and geocodes the rows and gathers
//! them into batches; a writer thread writes each batch to the sink while
//! the next is read, so the two stages overlap on two cores. Row errors
//! travel with the batches, so memory stays flat however many rows a file
//! gets wrong. Once the last batch is written the receipt is given to the
//! sink ([`Sink::finish`]), and only then returned: a caller that answers
//! with it answers for rows the sink holds.
//!
//! A [`Writer`] is a writer thread that lives as long as the sink and is
//! shared by every upload: batches of all uploads queue at it, which holds
//! back every reader once the sink falls behind. [`Ingest::run_with`] runs
//! one upload with a writer thread of its own.
//!
//! [`forward`] runs an upload whose rows go on unplaced instead (to a
//! broker, say): the same reader validates and counts them, and the
//! calling thread sends each batch to a [`ForwardSink`] in turn.
//!
//! Nothing here is asynchronous: a sink over an asynchronous store blocks
//! on it (see the HTTP adapter's store sink).

mod events;
mod forward;
mod reader;
mod writer;

pub use forward::{forward, ForwardSink};
pub use writer::Writer;

use istv_aggregate::{BatchOutcome, Event, LocationStatus};
use istv_core::{ErrorCode, Feed, FieldError, Validator};
use istv_geo::{GeocodeMethod, Geocoder};
use serde::{Deserialize, Serialize};

/// How many row errors a receipt lists; the rest are counted, and all are
/// given to the sink.
pub const RECEIPT_ERROR_CAP: usize = 100;

/// What the uploader gets back. Its JSON form is part of the public
/// interface: clients read it, and sinks store it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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

impl Receipt {
    /// The receipt of an upload before any row is read.
    pub fn new(upload_id: impl Into<String>, site_code: impl Into<String>) -> Receipt {
        Receipt {
            upload_id: upload_id.into(),
            site_code: site_code.into(),
            rows: 0,
            accepted: 0,
            rejected: 0,
            duplicates: 0,
            corrections: 0,
            errors: Vec::new(),
            errors_not_shown: 0,
            replaced_in_file: 0,
            error: None,
        }
    }
}

/// Where the driver writes: a store, or anything that counts like one.
///
/// Calls come from one writer thread at a time and block until done; each
/// is all or nothing (a transaction). For one upload they come in row
/// order: for each batch its row errors ([`Sink::add_errors`]), then its
/// events ([`Sink::write_batch`]), and after the last batch the receipt
/// ([`Sink::finish`]). The driver makes no call with an empty slice. After
/// a call fails (or panics) the driver makes no further call for that
/// upload, so the batches written are exactly those before the failure.
pub trait Sink {
    /// What names an upload to the sink (a store's upload id, say). The
    /// writer thread gets it by reference with every batch.
    type Upload: Send + Sync;
    /// Why a write failed.
    type Error: Send;

    /// Writes a batch of one upload's events, in order, and counts them:
    /// new records, duplicates, corrections, and records replaced within
    /// the upload.
    fn write_batch(
        &self,
        upload: &Self::Upload,
        events: &[Event],
    ) -> Result<BatchOutcome, Self::Error>;

    /// Keeps row errors of the upload after those given before.
    fn add_errors(&self, upload: &Self::Upload, errors: &[FieldError]) -> Result<(), Self::Error>;

    /// Ends the upload with its receipt, after its last batch.
    fn finish(&self, upload: &Self::Upload, receipt: &Receipt) -> Result<(), Self::Error>;
}

/// A sink behind a reference or a shared pointer is that sink.
macro_rules! sink_through {
    ($($pointer:ty),+) => {$(
        impl<S: Sink + ?Sized> Sink for $pointer {
            type Upload = S::Upload;
            type Error = S::Error;

            fn write_batch(
                &self,
                upload: &Self::Upload,
                events: &[Event],
            ) -> Result<BatchOutcome, Self::Error> {
                (**self).write_batch(upload, events)
            }

            fn add_errors(
                &self,
                upload: &Self::Upload,
                errors: &[FieldError],
            ) -> Result<(), Self::Error> {
                (**self).add_errors(upload, errors)
            }

            fn finish(&self, upload: &Self::Upload, receipt: &Receipt) -> Result<(), Self::Error> {
                (**self).finish(upload, receipt)
            }
        }
    )+};
}

sink_through!(&S, std::sync::Arc<S>);

/// Why an upload stopped before its receipt.
#[derive(Debug)]
pub enum DriverError<E> {
    /// The sink refused a write. Batches before it are written, none after.
    Sink(E),
    /// A sink call panicked, with the panic's message. The writer goes on
    /// with other uploads.
    Panicked(String),
    /// The writer thread is gone.
    Stopped,
}

impl<E: std::fmt::Display> std::fmt::Display for DriverError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::Sink(e) => write!(f, "{e}"),
            DriverError::Panicked(m) => write!(f, "the writer failed: {m}"),
            DriverError::Stopped => write!(f, "the writer stopped"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for DriverError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DriverError::Sink(e) => Some(e),
            _ => None,
        }
    }
}

/// Row counts of one batch, for a caller's metrics: given to the observer
/// once per batch, as a labelled counter is a lookup and a lock, too dear
/// for every row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// Rows read.
    pub received: u64,
    /// Rows accepted.
    pub accepted: u64,
    /// Row errors by code, indexed by the code's discriminant, which is its
    /// place in [`ErrorCode::ALL`] (tested). A rejected row has one or more.
    pub rejected: [u64; ErrorCode::ALL.len()],
    /// Accepted rows by geocode method, then location status, indexed by
    /// their discriminants, which are their places in [`GeocodeMethod::ALL`]
    /// and [`LocationStatus::ALL`] (tested).
    pub geocoded: [[u64; LocationStatus::ALL.len()]; GeocodeMethod::ALL.len()],
}

impl RowCounts {
    /// Every non-zero count of rejected rows, with its code.
    pub fn rejected(&self) -> impl Iterator<Item = (ErrorCode, u64)> + '_ {
        ErrorCode::ALL
            .iter()
            .zip(&self.rejected)
            .filter(|(_, &n)| n > 0)
            .map(|(c, &n)| (*c, n))
    }

    /// Every non-zero count of geocoded rows, with its method and status.
    pub fn geocoded(&self) -> impl Iterator<Item = (GeocodeMethod, LocationStatus, u64)> + '_ {
        GeocodeMethod::ALL
            .iter()
            .zip(&self.geocoded)
            .flat_map(|(m, by_status)| {
                LocationStatus::ALL
                    .iter()
                    .zip(by_status)
                    .filter(|(_, &n)| n > 0)
                    .map(move |(s, &n)| (*m, *s, n))
            })
    }
}

/// The stages' settings: how rows are geocoded and keyed, and how many go
/// into a batch.
#[derive(Clone, Copy)]
pub struct Ingest<'a> {
    /// Places each accepted row.
    pub geocoder: &'a Geocoder,
    /// Gives each event its record key and keys its content hash.
    pub keys: crate::Keys<'a>,
    /// Rows per batch (one write, one transaction of the sink), at least 1.
    /// The first batches are smaller (see [`Ingest::run`]).
    pub batch_rows: usize,
}

impl Ingest<'_> {
    /// Runs one upload through `writer`: reads, validates and geocodes the
    /// rows of `feed` on this thread, counting them into `receipt` (made by
    /// [`Receipt::new`]), while the writer writes the batches to its sink
    /// as `upload`. `observe` gets each batch's row counts as it is sent.
    /// Returns the receipt once the sink has its last batch and the receipt
    /// itself.
    ///
    /// A feed that fails part way (a broken file, a cut-off body) is not an
    /// error: the rows before it are written and the receipt says why
    /// reading stopped. An error means the sink failed, and there is no
    /// receipt; the batches written before the failure stay written.
    ///
    /// The first batches are small so that the sink starts writing early
    /// (a fresh server fills its geocoding tables as points arrive, and a
    /// full first batch kept the writer idle for half a second); then they
    /// double up to `batch_rows`. At most two batches of an upload are at
    /// the writer (one written, one waiting) while this thread fills a
    /// third. Written batches come back to this thread, which frees their
    /// events and refills their vectors: memory is cheaper to free on the
    /// thread that allocated it, and the writer is the busier of the two
    /// (measured: 283k-300k rows/s end to end against 252k-284k).
    pub fn run<S: Sink>(
        &self,
        writer: &Writer<S>,
        upload: S::Upload,
        receipt: Receipt,
        feed: &mut Feed,
        validator: &mut Validator,
        observe: impl FnMut(&RowCounts),
    ) -> Result<Receipt, DriverError<S::Error>> {
        events::read(
            writer.jobs(),
            upload,
            receipt,
            (feed, validator),
            self,
            observe,
        )
    }

    /// [`Ingest::run`] with a writer thread of its own over `sink`, for a
    /// caller that runs one upload at a time.
    pub fn run_with<S: Sink + Sync>(
        &self,
        sink: &S,
        upload: S::Upload,
        receipt: Receipt,
        feed: &mut Feed,
        validator: &mut Validator,
        observe: impl FnMut(&RowCounts),
    ) -> Result<Receipt, DriverError<S::Error>> {
        std::thread::scope(|scope| {
            let (jobs, queue) = std::sync::mpsc::sync_channel(1);
            scope.spawn(move || writer::serve(sink, queue));
            events::read(&jobs, upload, receipt, (feed, validator), self, observe)
            // Dropping `jobs` ends the writer, which has answered every job.
        })
    }
}

/// Valid rows as events, and the row errors read with them.
#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    errors: Vec<FieldError>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.errors.is_empty()
    }
}

#[cfg(test)]
mod tests;
