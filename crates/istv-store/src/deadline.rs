//! Query deadlines that stop the database's work, not only the wait for it.
//!
//! A caller that gives up on a query (the server's time limit drops the
//! future) leaves the statement running: SQLite's worker thread and a
//! PostgreSQL backend go on scanning, holding a connection of the query
//! pool, so the next queries wait behind work nobody will read (measured
//! on a 30M-record store: four timed-out two-filter queries kept a
//! single-filter query that takes 56 ms waiting past its own 10 s limit).
//! [`with_deadline`] sets a deadline for the queries a future makes; each
//! connection of the query pool takes it when it is handed out: SQLite
//! through a progress handler that interrupts the statement once the
//! deadline has passed, PostgreSQL through `statement_timeout`.

use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use std::future::Future;
use std::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// SQLite virtual-machine steps between two looks at the clock: about
/// 10-50 us of work, so a statement stops within a millisecond of its
/// deadline, at a cost of one clock read per thousand steps.
const PROGRESS_STEPS: i32 = 1000;

/// Runs `query` with the queries it makes on the store's query pool
/// stopped by the database at `deadline` (they then fail).
pub async fn with_deadline<F: Future>(deadline: Instant, query: F) -> F::Output {
    DEADLINE.scope(deadline, query).await
}

fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Gives a SQLite connection the deadline of the task taking it, or none.
pub(crate) async fn arm_sqlite(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    // The handle is handed over once the connection's worker is idle, so
    // a statement left running by a caller that gave up ends (at its own
    // deadline) before the next one is armed.
    let mut handle = conn.lock_handle().await?;
    match current() {
        Some(deadline) => {
            handle.set_progress_handler(PROGRESS_STEPS, move || Instant::now() < deadline)
        }
        None => handle.remove_progress_handler(),
    }
    Ok(())
}

/// Gives a PostgreSQL connection the deadline of the task taking it, or
/// none (`statement_timeout` 0).
pub(crate) async fn arm_postgres(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    // 0 turns the timeout off; a deadline already passed still gets 1 ms.
    let ms = current().map_or(0, |d| {
        d.saturating_duration_since(Instant::now())
            .as_millis()
            .clamp(1, i32::MAX as u128)
    });
    sqlx::query(&format!("SET statement_timeout = {ms}"))
        .execute(conn)
        .await?;
    Ok(())
}
