//! Query deadlines: a statement on the query pool under a deadline is
//! stopped by the database once it has passed, well before it would have
//! finished; a connection taken afterwards without one runs to the end.

use super::*;
use crate::{with_deadline, Db};
use std::time::{Duration, Instant};

/// A statement of about `seconds` on either database (SQLite: counting
/// about ten million rows a second), and its answer.
fn taking(store: &Store, seconds: f64) -> (String, i64) {
    match store.read {
        Db::Sqlite(_) => {
            let rows = (seconds * 1e7) as i64;
            let sql = format!(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) \
                 SELECT count(*) FROM c"
            );
            (sql, rows)
        }
        Db::Postgres(_) => (format!("SELECT 1::BIGINT FROM pg_sleep({seconds})"), 1),
    }
}

async fn run(store: &Store, sql: &str) -> Result<i64, sqlx::Error> {
    on_db!(&store.read, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await)
}

async fn statements_stop_at_their_deadline(store: Store) {
    let (sql, _) = taking(&store, 3.0);
    let started = Instant::now();
    let deadline = started + Duration::from_millis(200);
    let err = with_deadline(deadline, run(&store, &sql))
        .await
        .expect_err("the statement outlives its deadline");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "stopped after {took:?}: {err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("interrupt") || message.contains("statement timeout"),
        "{message}"
    );

    // Every connection of the pool, taken again with no deadline, runs a
    // statement longer than a passed deadline allows to its end.
    let (sql, answer) = taking(&store, 0.3);
    let runs: Vec<_> = (0..READ_CONNECTIONS)
        .map(|_| {
            let (store, sql) = (store.clone(), sql.clone());
            tokio::spawn(async move { run(&store, &sql).await })
        })
        .collect();
    for got in runs {
        assert_eq!(got.await.unwrap().unwrap(), answer);
    }
    // And under a deadline already passed, the same statement stops.
    let err = with_deadline(Instant::now(), run(&store, &sql)).await;
    assert!(err.is_err(), "{err:?}");
}

on_both!(statements_stop_at_their_deadline);
