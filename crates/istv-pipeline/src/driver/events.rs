//! What comes after validation in [`Ingest::run`]: accepted records are
//! geocoded into events and gathered with the row errors into batches,
//! which go to the writer and come back once written.

use super::reader::{self, Rows};
use super::writer::{self, Job, Ticket, Written};
use super::{Batch, DriverError, Ingest, Receipt, RowCounts, Sink};
use istv_aggregate::BatchOutcome;
use istv_core::{Attendance, Feed, FieldError, Validator};
use istv_geo::Geocoder;
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;

/// Accepted records geocoded together (see `Geocoder::geocode_many`).
const GEOCODE_CHUNK: usize = 64;

/// Batches of one upload at the writer at once: one being written, one
/// waiting, so that the writer never waits for this reader while the
/// reader fills a third.
const IN_FLIGHT: usize = 2;

/// Runs one upload; see [`Ingest::run`].
pub(super) fn read<S: Sink + ?Sized>(
    jobs: &SyncSender<Job<S>>,
    upload: S::Upload,
    mut receipt: Receipt,
    (feed, validator): (&mut Feed, &mut Validator),
    settings: &Ingest<'_>,
    observe: impl FnMut(&RowCounts),
) -> Result<Receipt, DriverError<S::Error>> {
    let Ingest {
        geocoder,
        keys,
        batch_rows,
    } = *settings;
    let batch_rows = batch_rows.max(1);
    let mut rows = Events {
        sender: Sender {
            jobs,
            ticket: Ticket::new(upload),
            in_flight: VecDeque::with_capacity(IN_FLIGHT),
            written: BatchOutcome::default(),
        },
        batch: Batch::default(),
        // Small first batches, doubling up to `batch_rows` (see `Ingest::run`).
        limit: batch_rows.div_ceil(16),
        batch_rows,
        pending: Vec::with_capacity(GEOCODE_CHUNK),
        geocoder,
        keys,
        observe,
    };
    reader::read(feed, validator, &mut receipt, &mut rows)?;
    let written = rows.sender.wait_all()?;
    receipt.duplicates = written.duplicates;
    receipt.corrections = written.corrections;
    // The sink's count: its validator need not track record ids.
    receipt.replaced_in_file = written.replaced_in_upload;
    writer::finish(jobs, &rows.sender.ticket, receipt)
}

/// The rows of an upload on their way to the writer.
struct Events<'a, S: Sink + ?Sized, O> {
    sender: Sender<'a, S>,
    /// The batch being filled.
    batch: Batch,
    /// Events, or row errors, that fill the batch being filled.
    limit: usize,
    /// What `limit` doubles up to.
    batch_rows: usize,
    /// Accepted records waiting to be geocoded a few dozen at a time.
    pending: Vec<Attendance>,
    geocoder: &'a Geocoder,
    keys: crate::Keys<'a>,
    observe: O,
}

impl<S: Sink + ?Sized, O> Events<'_, S, O> {
    /// Geocodes the pending records into the batch.
    fn geocode_pending(&mut self, counts: &mut RowCounts) {
        let from = self.batch.events.len();
        crate::geocode_stage_many(
            self.geocoder,
            self.keys,
            &mut self.pending,
            &mut self.batch.events,
        );
        for event in &self.batch.events[from..] {
            counts.geocoded[event.geocode_method as usize][event.location_status() as usize] += 1;
        }
    }
}

impl<S: Sink + ?Sized, O: FnMut(&RowCounts)> Rows for Events<'_, S, O> {
    type Error = DriverError<S::Error>;

    fn accept(&mut self, record: Attendance, counts: &mut RowCounts) {
        self.pending.push(record);
        if self.pending.len() == GEOCODE_CHUNK {
            self.geocode_pending(counts);
        }
    }

    fn reject(&mut self, error: FieldError) {
        self.batch.errors.push(error);
    }

    fn is_full(&self) -> bool {
        self.batch.events.len() + self.pending.len() >= self.limit
            || self.batch.errors.len() >= self.limit
    }

    fn send(&mut self, mut counts: RowCounts, last: bool) -> Result<(), Self::Error> {
        self.geocode_pending(&mut counts);
        (self.observe)(&counts);
        let batch = std::mem::take(&mut self.batch);
        if !last {
            self.limit = (self.limit * 2).min(self.batch_rows);
            self.batch = self.sender.send(batch, self.limit)?;
        } else if !batch.is_empty() {
            self.sender.send(batch, 0)?;
        }
        Ok(())
    }
}

/// The reader's end of the writer: its batches at the writer, and the
/// counts of those written.
struct Sender<'a, S: Sink + ?Sized> {
    jobs: &'a SyncSender<Job<S>>,
    ticket: Arc<Ticket<S::Upload>>,
    /// The answer channels of the batches sent, oldest first.
    in_flight: VecDeque<Receiver<Written<S>>>,
    /// What the batches written so far gave.
    written: BatchOutcome,
}

impl<S: Sink + ?Sized> Sender<'_, S> {
    /// Sends `batch` to the writer, once fewer than [`IN_FLIGHT`] are
    /// there, and returns an empty batch with room for `reserve` events:
    /// the last one written, if one was, emptied here.
    fn send(&mut self, batch: Batch, reserve: usize) -> Result<Batch, DriverError<S::Error>> {
        let mut next = None;
        // Take what is written already without waiting...
        while let Some(answer) = self.in_flight.front() {
            match answer.try_recv() {
                Ok(done) => {
                    self.in_flight.pop_front();
                    next = Some(self.take(done)?);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err(DriverError::Stopped),
            }
        }
        // ...then wait for room.
        while self.in_flight.len() >= IN_FLIGHT {
            next = Some(self.wait_one()?);
        }
        let (reply, answer) = std::sync::mpsc::channel();
        self.jobs
            .send(Job::Write {
                ticket: self.ticket.clone(),
                batch,
                reply,
            })
            .map_err(|_| DriverError::Stopped)?;
        self.in_flight.push_back(answer);
        let mut next = next.unwrap_or_default();
        next.events.reserve(reserve);
        Ok(next)
    }

    /// Waits for the oldest batch at the writer; returns it emptied.
    fn wait_one(&mut self) -> Result<Batch, DriverError<S::Error>> {
        let answer = self.in_flight.pop_front().ok_or(DriverError::Stopped)?;
        let done = answer.recv().map_err(|_| DriverError::Stopped)?;
        self.take(done)
    }

    /// Waits until every batch sent is written; returns what they gave.
    fn wait_all(&mut self) -> Result<BatchOutcome, DriverError<S::Error>> {
        while !self.in_flight.is_empty() {
            self.wait_one()?;
        }
        Ok(self.written)
    }

    /// Counts a written batch and empties it, freeing its events on this
    /// thread.
    fn take(&mut self, done: Written<S>) -> Result<Batch, DriverError<S::Error>> {
        let Written { mut batch, outcome } = done;
        self.written.add(outcome?);
        batch.events.clear();
        batch.errors.clear();
        Ok(batch)
    }
}
