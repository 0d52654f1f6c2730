//! SQLite: how a store's pools are opened, batches (`batch`), the records'
//! spans (`spans`), the WAL checkpointer (`checkpoint`) and many-row writes
//! on the connection's own handle (`rows`).

mod batch;
pub(crate) mod checkpoint;
pub(crate) mod identity;
pub(crate) mod rows;
pub(crate) mod spans;

pub(crate) use batch::apply_batch;

use crate::{Result, READ_CONNECTIONS};
use checkpoint::{spawn_checkpointer, WAL_AUTOCHECKPOINT_PAGES};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// Page size of a new SQLite store, in bytes.
pub(crate) const SQLITE_PAGE_SIZE: u32 = 16_384;

/// Opens a SQLite store's pools (writes, then queries), creating the file
/// if missing, runs the migrations and starts the checkpointer.
pub(crate) async fn connect(url: &str) -> Result<(SqlitePool, SqlitePool)> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30))
        // Takes effect when the file is created; an existing store
        // keeps its pages. Rows are appended in bulk, and larger
        // pages mean fewer page splits and WAL frames per row: the
        // 1M-row upload ran faster than with 4 KiB in most runs
        // side by side (README).
        .page_size(SQLITE_PAGE_SIZE)
        .pragma("cache_size", "-16384")
        .pragma("temp_store", "memory")
        // A safety net: the checkpointer below keeps the WAL well
        // under this unless it falls behind.
        .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string());
    let in_memory = options.get_filename() == std::path::Path::new(":memory:");
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options.clone())
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    spawn_checkpointer(pool.clone());
    // Queries read through connections of their own (WAL readers
    // never block the writer), so a burst of queries cannot take
    // the connections that uploads and token checks need. An
    // in-memory database exists once per connection: it shares.
    let read = if in_memory {
        pool.clone()
    } else {
        // Each query connection takes the deadline of the query taking it.
        SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .after_connect(|conn, _| Box::pin(crate::deadline::arm_sqlite(conn)))
            .before_acquire(|conn, _| {
                Box::pin(async move { crate::deadline::arm_sqlite(conn).await.map(|()| true) })
            })
            .connect_lazy_with(options)
    };
    Ok((pool, read))
}
