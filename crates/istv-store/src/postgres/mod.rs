//! PostgreSQL: how a store's pools are opened, the advisory lock keys, and
//! batches (`batch`).

mod batch;

pub(crate) use batch::apply_batch;

use crate::{Result, READ_CONNECTIONS};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;

/// Opens a PostgreSQL store's pools (writes, then queries) and runs the
/// migrations.
pub(crate) async fn connect(url: &str) -> Result<(PgPool, PgPool)> {
    let options = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options.clone())
        .await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    // Each query connection takes the deadline of the query taking it.
    let read = PgPoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        .after_connect(|conn, _| Box::pin(crate::deadline::arm_postgres(conn)))
        .before_acquire(|conn, _| {
            Box::pin(async move { crate::deadline::arm_postgres(conn).await.map(|()| true) })
        })
        .connect_lazy_with(options);
    Ok((pool, read))
}

/// A stable lock key of a site for PostgreSQL advisory locks.
pub(crate) fn site_lock_key(site: &str) -> i64 {
    istv_aggregate::legacy_content_hash(&["istv-site-lock", site]) as i64
}
