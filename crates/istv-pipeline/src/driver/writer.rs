//! The writer thread: takes jobs (a batch to write, a receipt to finish
//! with) from a bounded queue, in order, and answers each on the channel
//! that came with it.

use super::{Batch, DriverError, Receipt, Sink};
use istv_aggregate::BatchOutcome;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::Arc;

/// An upload as the writer knows it.
pub(super) struct Ticket<U> {
    /// What the sink knows it by.
    pub(super) upload: U,
    /// Set by the writer once a call for the upload has failed: its later
    /// jobs are answered without calling the sink, so what is written is
    /// exactly what came before the failure.
    failed: AtomicBool,
}

impl<U> Ticket<U> {
    pub(super) fn new(upload: U) -> Arc<Ticket<U>> {
        Arc::new(Ticket {
            upload,
            failed: AtomicBool::new(false),
        })
    }
}

/// What a failed job answers.
pub(super) type JobError<S> = DriverError<<S as Sink>::Error>;

/// A written batch, given back to be freed, and what writing it gave.
pub(super) struct Written<S: Sink + ?Sized> {
    pub(super) batch: Batch,
    pub(super) outcome: Result<BatchOutcome, JobError<S>>,
}

/// The receipt, given back, and whether the sink has it.
pub(super) struct Finished<S: Sink + ?Sized> {
    pub(super) receipt: Receipt,
    pub(super) outcome: Result<(), JobError<S>>,
}

/// One thing for the writer to do, and where to answer.
pub(super) enum Job<S: Sink + ?Sized> {
    /// A batch: its row errors, then its events.
    Write {
        ticket: Arc<Ticket<S::Upload>>,
        batch: Batch,
        reply: Sender<Written<S>>,
    },
    /// The receipt, after the upload's last batch.
    Finish {
        ticket: Arc<Ticket<S::Upload>>,
        receipt: Receipt,
        reply: Sender<Finished<S>>,
    },
}

/// A writer thread that owns a sink and writes the batches of every
/// upload given to it, one job at a time in the order they come. Readers
/// on any number of threads share it by reference. The queue between the
/// readers and the writer is bounded: once it is full, a reader with a
/// batch to send waits, so uploads of different sources queue here rather
/// than contend for the sink.
///
/// The thread ends when the writer is dropped, after the jobs already
/// queued (each reader waits for the answers to its own jobs, so by then
/// there are none).
pub struct Writer<S: Sink> {
    jobs: SyncSender<Job<S>>,
}

impl<S> Writer<S>
where
    S: Sink + Send + 'static,
    S::Upload: 'static,
    S::Error: 'static,
{
    /// Starts the writer thread, named `name`, with room for `queue` jobs
    /// (at least 1) waiting across all uploads.
    pub fn spawn(sink: S, queue: usize, name: &str) -> std::io::Result<Writer<S>> {
        let (jobs, waiting) = std::sync::mpsc::sync_channel(queue.max(1));
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || serve(&sink, waiting))?;
        Ok(Writer { jobs })
    }
}

impl<S: Sink> Writer<S> {
    /// Ends an upload that has no rows to write (say, a body that is not a
    /// feed) with its receipt, which is given back once the sink has it.
    pub fn finish(
        &self,
        upload: S::Upload,
        receipt: Receipt,
    ) -> Result<Receipt, DriverError<S::Error>> {
        finish(&self.jobs, &Ticket::new(upload), receipt)
    }

    pub(super) fn jobs(&self) -> &SyncSender<Job<S>> {
        &self.jobs
    }
}

/// Sends the receipt to the writer and waits for its answer.
pub(super) fn finish<S: Sink + ?Sized>(
    jobs: &SyncSender<Job<S>>,
    ticket: &Arc<Ticket<S::Upload>>,
    receipt: Receipt,
) -> Result<Receipt, DriverError<S::Error>> {
    let (reply, answer) = std::sync::mpsc::channel();
    jobs.send(Job::Finish {
        ticket: ticket.clone(),
        receipt,
        reply,
    })
    .map_err(|_| DriverError::Stopped)?;
    let done = answer.recv().map_err(|_| DriverError::Stopped)?;
    done.outcome.map(|()| done.receipt)
}

/// The writer's loop: every job until the queue is closed.
pub(super) fn serve<S: Sink + ?Sized>(sink: &S, jobs: Receiver<Job<S>>) {
    for job in jobs {
        match job {
            Job::Write {
                ticket,
                batch,
                reply,
            } => {
                let outcome = attempt(&ticket, || write(sink, &ticket.upload, &batch));
                // A reader that has stopped has dropped its end; the batch
                // is then freed here.
                let _ = reply.send(Written { batch, outcome });
            }
            Job::Finish {
                ticket,
                receipt,
                reply,
            } => {
                let outcome = attempt(&ticket, || sink.finish(&ticket.upload, &receipt));
                let _ = reply.send(Finished { receipt, outcome });
            }
        }
    }
}

/// A batch's errors, then its events.
fn write<S: Sink + ?Sized>(
    sink: &S,
    upload: &S::Upload,
    batch: &Batch,
) -> Result<BatchOutcome, S::Error> {
    if !batch.errors.is_empty() {
        sink.add_errors(upload, &batch.errors)?;
    }
    if batch.events.is_empty() {
        return Ok(BatchOutcome::default());
    }
    sink.write_batch(upload, &batch.events)
}

/// Runs `call` unless an earlier call of the upload failed, and marks the
/// upload failed when this one does. A panic is caught: the writer serves
/// other uploads after it.
fn attempt<U, T, E>(
    ticket: &Ticket<U>,
    call: impl FnOnce() -> Result<T, E>,
) -> Result<T, DriverError<E>> {
    // Only the writer thread reads or sets the flag.
    if ticket.failed.load(Ordering::Relaxed) {
        return Err(DriverError::Stopped);
    }
    let outcome = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(DriverError::Sink(e)),
        Err(panic) => Err(DriverError::Panicked(panic_message(&*panic))),
    };
    if outcome.is_err() {
        ticket.failed.store(true, Ordering::Relaxed);
    }
    outcome
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_string()
    }
}
