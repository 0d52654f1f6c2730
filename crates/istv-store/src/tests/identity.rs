//! Record identity on SQLite: records found by fingerprint, through
//! collisions, merges of the recent tier and a store whose records had no
//! fingerprints yet.

use super::*;

/// A SQLite store whose fingerprints all collide and whose recent tier is
/// merged every `merge_after` entries.
async fn with_identity<F, Fut>(collide: bool, merge_after: u64, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    with_sqlite(|mut store| async move {
        let ids = store.record_ids.as_mut().expect("a SQLite store");
        ids.collide = collide;
        ids.merge_after = merge_after;
        test(store).await
    })
    .await
}

/// Entries in (main tier, recent tier).
async fn tiers(store: &Store) -> (i64, i64) {
    let Db::Sqlite(pool) = &store.db else {
        unreachable!()
    };
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM record_ids), (SELECT COUNT(*) FROM record_ids_recent)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fingerprint_colliding_gives_the_models_counts() {
    // Every lookup meets every stored record under one fingerprint, and
    // must pick the one with its site and record id.
    with_identity(true, 1_000, |store| async move {
        let first = synthetic(300, 1, 0);
        let mut second = synthetic(300, 2, 0);
        for (i, e) in second.iter_mut().enumerate() {
            if i % 3 == 0 {
                *e = first[i].clone();
            }
        }
        let mut model = Ledger::new();
        let id = store.begin_upload("RJ1", "csv").await.unwrap();
        for batch in [&first[..100], &first[..], &second[..], &second[250..]] {
            assert_eq!(
                store.apply_batch(&id, batch).await.unwrap(),
                model.apply(batch)
            );
        }
        assert_eq!(model.records().count(), 300);
        assert_exact(&store).await;
        assert_eq!(tiers(&store).await, (0, 300));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_suite_passes_with_colliding_fingerprints_and_frequent_merges() {
    with_identity(true, 97, matches_the_model).await;
    with_identity(false, 97, new_and_stored_keys_mixed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_move_the_recent_tier_into_the_main_one() {
    with_identity(false, 100, |store| async move {
        let events = synthetic(1_000, 5, 0);
        let id = store.begin_upload("RJ1", "csv").await.unwrap();
        let mut merged = 0;
        for (n, batch) in events.chunks(64).enumerate() {
            store.apply_batch(&id, batch).await.unwrap();
            let written = ((n + 1) * 64).min(1_000) as i64;
            // A batch merges once the recent tier holds 100 or more, after
            // its own inserts: hand-computed from the batch sizes.
            if written - merged >= 100 {
                merged = written;
            }
            assert_eq!(tiers(&store).await, (merged, written - merged), "batch {n}");
        }
        assert_eq!(merged, 1_000);
        // Every record is found again, in either tier.
        let again = store.begin_upload("RJ1", "csv").await.unwrap();
        let outcome = store.apply_batch(&again, &events).await.unwrap();
        assert_eq!((outcome.accepted, outcome.duplicates), (0, 1_000));
        assert_exact(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_fingerprints_get_them_when_the_store_connects() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("istv.db").display());
    let events = synthetic(500, 9, 0);
    let store = Store::connect(&url).await.unwrap();
    let id = store.begin_upload("RJ1", "csv").await.unwrap();
    store.apply_batch(&id, &events).await.unwrap();
    // As a store migrated from a keyed records table is left: records,
    // no fingerprints.
    let Db::Sqlite(pool) = &store.db else {
        unreachable!()
    };
    sqlx::raw_sql(
        "DELETE FROM record_ids; DELETE FROM record_ids_recent; \
         DELETE FROM store_meta WHERE name = 'record_ids_built'",
    )
    .execute(pool)
    .await
    .unwrap();
    store.close().await;

    let store = Store::connect(&url).await.unwrap();
    assert_eq!(tiers(&store).await, (500, 0));
    let changed = synthetic(500, 9, 1);
    let again = store.begin_upload("RJ1", "csv").await.unwrap();
    let mut batch = events[..200].to_vec();
    batch.extend_from_slice(&changed[200..300]);
    let outcome = store.apply_batch(&again, &batch).await.unwrap();
    assert_eq!(
        (outcome.accepted, outcome.duplicates, outcome.corrections),
        (0, 200, 100)
    );
    assert_eq!(store.recount_check().await.unwrap().records, 500);
    assert_exact(&store).await;
    store.close().await;
}

#[tokio::test]
async fn the_heap_migration_keeps_every_record() {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    sqlite_migrations_before(&mut conn, 6).await;
    sqlx::raw_sql(
        "INSERT INTO records (site_code, record_id, content_hash, upload_id, day, hour, \
         assault_method, location_type, age_band, sex, geocode_method, precision_m, cell, \
         borough, ward, lsoa, rkey) VALUES \
         ('RJ2', 'b', -5, 'u1', '2024-03-02', NULL, 'body_part', 'home', 'unknown', 'female', \
          'none', NULL, NULL, NULL, NULL, NULL, 4095), \
         ('RJ1', 'z', 7, 'u1', '2024-03-01', 22, 'sharp_object', 'street', '18-24', 'male', \
          'postcode_unit', 40, 12345, 'E09000028', 'E05000001', 'E01000001', 17)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql(include_str!("../../migrations/sqlite/0006_record_heap.sql"))
        .execute(&mut conn)
        .await
        .unwrap();
    // Copied in the old key order, so RJ1 first.
    type Row = (
        i64,
        String,
        String,
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT rid, site_code, record_id, content_hash, hour, cell, borough, rkey \
         FROM records ORDER BY rid",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                1,
                "RJ1".into(),
                "z".into(),
                7,
                Some(22),
                Some(12345),
                Some("E09000028".into()),
                17
            ),
            (2, "RJ2".into(), "b".into(), -5, None, None, None, 4095),
        ]
    );
    let ids: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM record_ids), (SELECT COUNT(*) FROM record_ids_recent)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(ids, (0, 0));
}
