//! Query deadlines: a statement on the query pool under a deadline is
//! stopped by the database once it has passed, well before it would have
//! finished; a connection taken afterwards without one runs to the end.

use super::*;
use crate::{with_deadline, Db};
use std::time::{Duration, Instant};

/// A statement that takes seconds on either database, and its answer.
fn slow(store: &Store) -> (&'static str, i64) {
    match store.read {
        // About 3 s of virtual-machine steps here.
        Db::Sqlite(_) => (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000) \
             SELECT count(*) FROM c",
            30_000_000,
        ),
        Db::Postgres(_) => ("SELECT 1::BIGINT FROM pg_sleep(3)", 1),
    }
}

/// A statement that takes about 0.3 s: longer than a deadline already
/// passed allows, short enough to run to its end in the test.
fn short(store: &Store) -> (&'static str, i64) {
    match store.read {
        Db::Sqlite(_) => (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) \
             SELECT count(*) FROM c",
            3_000_000,
        ),
        Db::Postgres(_) => ("SELECT 1::BIGINT FROM pg_sleep(0.3)", 1),
    }
}

async fn run(store: &Store, sql: &str) -> Result<i64, sqlx::Error> {
    on_db!(&store.read, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await)
}

async fn statements_stop_at_their_deadline(store: Store) {
    let (sql, _) = slow(&store);
    let started = Instant::now();
    let deadline = started + Duration::from_millis(200);
    let err = with_deadline(deadline, run(&store, sql))
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
    let (sql, answer) = short(&store);
    let runs: Vec<_> = (0..READ_CONNECTIONS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { run(&store, sql).await })
        })
        .collect();
    for got in runs {
        assert_eq!(got.await.unwrap().unwrap(), answer);
    }
    // And under a deadline already passed, the same statement stops.
    let err = with_deadline(Instant::now(), run(&store, sql)).await;
    assert!(err.is_err(), "{err:?}");
}

on_both!(statements_stop_at_their_deadline);
