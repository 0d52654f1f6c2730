//! Content hashes across migration 0009 on both databases: records stored
//! with the legacy (unkeyed FNV-1a) hash are compared under it when sent
//! again, so an unchanged re-send is a duplicate and a changed one a
//! correction, and writing them again stores the keyed hash.

use super::*;

/// Stores `events` as the code before keyed hashes did: the FNV-1a hash in
/// `content_hash`, and `hash_kind` 0, which migration 0009 gives every row
/// stored before it (checked by `migration_marks_stored_records_legacy`).
async fn store_legacy(store: &Store, events: &[Event]) {
    let old: Vec<Event> = events
        .iter()
        .map(|e| Event {
            content_hash: e.legacy_hash,
            ..e.clone()
        })
        .collect();
    upload(store, &old).await;
    on_db!(&store.db, pool => {
        sqlx::query("UPDATE records SET hash_kind = 0").execute(pool).await.unwrap();
    });
}

/// How many records still carry the legacy hash.
async fn legacy_records(store: &Store) -> i64 {
    let sql = "SELECT COUNT(*) FROM records WHERE hash_kind = 0";
    on_db!(&store.db, pool => {
        sqlx::query_as::<_, (i64,)>(sql).fetch_one(pool).await.unwrap().0
    })
}

/// `e` with other content: moved to a borough of its own, its hashes those
/// of another content.
fn changed(e: &Event, salt: u64) -> Event {
    let parts = [e.record_id.as_str(), &salt.to_string()];
    Event {
        borough: Some("E09000099".into()),
        content_hash: istv_aggregate::content_hash(&CONTENT_KEY, &parts),
        legacy_hash: istv_aggregate::legacy_content_hash(&parts),
        ..e.clone()
    }
}

async fn legacy_records_are_compared_under_their_scheme(store: Store) {
    let events = synthetic(40, 1, 0);
    store_legacy(&store, &events[..30]).await;
    assert_eq!(legacy_records(&store).await, 30);
    assert_eq!(rows(&store, &[]).await, expect(&[("", 30)]));
    // After the upgrade: 10 unchanged, 10 changed, record 20 unchanged then
    // changed in the same batch, and 10 new.
    let mut batch: Vec<Event> = events[..10].to_vec();
    batch.extend(events[10..20].iter().map(|e| changed(e, 1)));
    batch.push(events[20].clone());
    batch.push(changed(&events[20], 1));
    batch.extend_from_slice(&events[30..40]);
    let (_, out) = upload(&store, &batch).await;
    assert_eq!(
        (out.accepted, out.duplicates, out.corrections),
        (10, 11, 11)
    );
    // Nothing counted twice: 40 records, 11 of them moved.
    assert_eq!(rows(&store, &[]).await, expect(&[("", 40)]));
    assert_eq!(
        rows(&store, &[("borough", "E09000099")]).await,
        expect(&[("", 11)])
    );
    assert_exact(&store).await;
    // The 21 written again now carry the keyed hash; 9 were not sent.
    assert_eq!(legacy_records(&store).await, 9);
    // Sent again: the upgraded ones under the keyed hash, the others
    // still under FNV-1a; all unchanged.
    let mut again: Vec<Event> = events[..10].to_vec();
    again.extend(events[10..20].iter().map(|e| changed(e, 1)));
    again.extend_from_slice(&events[21..30]);
    let (_, out) = upload(&store, &again).await;
    assert_eq!((out.accepted, out.duplicates, out.corrections), (0, 29, 0));
    assert_eq!(legacy_records(&store).await, 0);
    assert_eq!(rows(&store, &[]).await, expect(&[("", 40)]));
    assert_exact(&store).await;
}

async fn a_keyed_hash_equal_to_a_stored_legacy_one_is_still_a_change(store: Store) {
    let events = synthetic(2, 5, 0);
    store_legacy(&store, &events).await;
    // Other content (another legacy hash) whose keyed hash happens to be
    // the stored FNV-1a value: the content differs, so a correction.
    let forged = Event {
        borough: Some("E09000099".into()),
        content_hash: events[0].legacy_hash,
        legacy_hash: events[0].legacy_hash ^ 1,
        ..events[0].clone()
    };
    // And the other record re-sent unchanged but in a batch that sends it
    // twice with different content (its full row is read).
    let second = changed(&events[1], 9);
    let (_, out) = upload(&store, &[forged, events[1].clone(), second]).await;
    assert_eq!((out.accepted, out.duplicates, out.corrections), (0, 1, 2));
    assert_eq!(
        rows(&store, &[("borough", "E09000099")]).await,
        expect(&[("", 2)])
    );
    assert_eq!(rows(&store, &[]).await, expect(&[("", 2)]));
    assert_exact(&store).await;
}

on_both!(
    legacy_records_are_compared_under_their_scheme,
    a_keyed_hash_equal_to_a_stored_legacy_one_is_still_a_change,
);

/// The records row the code before migration 0009 wrote.
const OLD_RECORD: &str = "INSERT INTO records (site_code, record_id, content_hash, upload_id, \
     day, hour, assault_method, location_type, age_band, sex, geocode_method, precision_m, \
     cell, borough, ward, lsoa, rkey) VALUES ('RJ1', 'a', -5, 'u1', '2024-03-02', NULL, \
     'body_part', 'home', 'unknown', 'female', 'none', NULL, NULL, NULL, NULL, NULL, 7)";

#[tokio::test]
async fn migration_marks_stored_records_legacy_on_sqlite() {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    sqlite_migrations_before(&mut conn, 9).await;
    sqlx::raw_sql(OLD_RECORD).execute(&mut conn).await.unwrap();
    sqlx::raw_sql(include_str!(
        "../../migrations/sqlite/0009_keyed_content_hash.sql"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let row: (i64, i64) = sqlx::query_as("SELECT content_hash, hash_kind FROM records")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(row, (-5, 0));
}

#[tokio::test]
async fn migration_marks_stored_records_legacy_on_postgres() {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&pg_server_url()).await.unwrap();
    // The scratch schema goes with the rollback.
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(
        "CREATE SCHEMA istv_hash_kind_check; SET LOCAL search_path TO istv_hash_kind_check",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    postgres_migrations_before(&mut tx, 9).await;
    sqlx::raw_sql(OLD_RECORD).execute(&mut *tx).await.unwrap();
    sqlx::raw_sql(include_str!(
        "../../migrations/postgres/0009_keyed_content_hash.sql"
    ))
    .execute(&mut *tx)
    .await
    .unwrap();
    let row: (i64, i16) = sqlx::query_as("SELECT content_hash, hash_kind FROM records")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(row, (-5, 0));
    tx.rollback().await.unwrap();
}
