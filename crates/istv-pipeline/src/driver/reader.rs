//! The reader side of an upload: reads, validates and geocodes the feed,
//! counting rows into the receipt, and sends batches to the writer, which
//! sends them back once written.

use super::writer::{self, Job, Ticket, Written};
use super::{Batch, DriverError, Ingest, Receipt, RowCounts, Sink, RECEIPT_ERROR_CAP};
use istv_aggregate::BatchOutcome;
use istv_core::{Attendance, Feed, Validator};
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
    mut observe: impl FnMut(&RowCounts),
) -> Result<Receipt, DriverError<S::Error>> {
    let Ingest {
        geocoder,
        keys,
        batch_rows,
    } = *settings;
    let batch_rows = batch_rows.max(1);
    let mut sender = Sender {
        jobs,
        ticket: Ticket::new(upload),
        in_flight: VecDeque::with_capacity(IN_FLIGHT),
        written: BatchOutcome::default(),
    };
    let mut batch = Batch::default();
    // Small first batches, doubling up to `batch_rows` (see `Ingest::run`).
    let mut limit = batch_rows.div_ceil(16);
    // Accepted records wait here to be geocoded a few dozen at a time.
    let mut pending: Vec<Attendance> = Vec::with_capacity(GEOCODE_CHUNK);
    let mut counts = RowCounts::default();
    let geocode_pending = |pending: &mut Vec<Attendance>,
                           batch: &mut Batch,
                           counts: &mut RowCounts| {
        let from = batch.events.len();
        crate::geocode_stage_many(geocoder, keys, pending, &mut batch.events);
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
                    counts.rejected[e.code as usize] += 1;
                    if receipt.errors.len() < RECEIPT_ERROR_CAP {
                        receipt.errors.push(e.clone());
                    } else {
                        receipt.errors_not_shown += 1;
                    }
                    batch.errors.push(e);
                }
            }
        }
        if batch.events.len() + pending.len() >= limit || batch.errors.len() >= limit {
            geocode_pending(&mut pending, &mut batch, &mut counts);
            observe(&counts);
            counts = RowCounts::default();
            limit = (limit * 2).min(batch_rows);
            batch = sender.send(batch, limit)?;
        }
    }
    geocode_pending(&mut pending, &mut batch, &mut counts);
    observe(&counts);
    if !batch.is_empty() {
        sender.send(batch, 0)?;
    }
    let written = sender.wait_all()?;
    receipt.duplicates = written.duplicates;
    receipt.corrections = written.corrections;
    receipt.replaced_in_file = written.replaced_in_upload;
    writer::finish(jobs, &sender.ticket, receipt)
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
