//! The SQLite WAL checkpointer.

use sqlx::sqlite::SqlitePool;
use std::time::Duration;

/// How often the SQLite checkpointer copies committed WAL pages into the
/// database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL pages after which a committing connection checkpoints itself, as
/// SQLite does by default after 1,000: 40 MiB of 4 KiB pages (a store
/// created with them) or 160 MiB of 16 KiB pages.
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Copies the WAL into the database file from a task of its own. Left to
/// SQLite, the commit that takes the WAL past 1,000 pages does it, and with
/// it a sync of the database file: a third of the commit time of a 1M-row
/// upload went there. A passive checkpoint neither waits for nor blocks
/// writers and readers; durability does not depend on it (each commit
/// syncs the WAL). Ends when the pool is closed.
pub(crate) fn spawn_checkpointer(pool: SqlitePool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                if pool.is_closed() {
                    break;
                }
                tracing::warn!(error = %e, "wal checkpoint failed; the next commit past the limit does it");
            }
        }
    });
}
