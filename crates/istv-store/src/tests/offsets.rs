//! Consumer positions on both databases: they commit with the counts of
//! their batch or not at all, a writer that starts from a position no
//! longer stored is refused with nothing of its batch stored, and of two
//! writers racing from one position exactly one wins.

use super::*;
use crate::{OffsetMove, PartitionOffset, StreamBatch};

const GROUP: &str = "istv-aggregate";
const TOPIC: &str = "istv.geocoded.v1";

fn mv(partition: i32, from: Option<i64>, to: i64) -> OffsetMove {
    OffsetMove {
        topic: TOPIC.into(),
        partition,
        from,
        to,
    }
}

fn at(partition: i32, next_offset: i64) -> PartitionOffset {
    PartitionOffset {
        topic: TOPIC.into(),
        partition,
        next_offset,
    }
}

async fn apply(store: &Store, moves: &[OffsetMove], events: &[Event]) -> Result<BatchOutcome> {
    let batch = StreamBatch {
        group: GROUP,
        moves,
    };
    store.apply_stream_batch(&batch, events).await
}

async fn offsets(store: &Store) -> Vec<PartitionOffset> {
    store.consumer_offsets(GROUP, TOPIC).await.unwrap()
}

fn by_borough(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    expect(pairs)
}

/// Counts and positions move together; a batch of no events moves
/// positions only; a re-consumed record with the same content counts once.
pub(super) async fn offsets_commit_with_counts(store: Store) {
    assert!(offsets(&store).await.is_empty());
    let five = five();
    let out = apply(&store, &[mv(0, None, 3)], &five[..3]).await.unwrap();
    assert_eq!(out.accepted, 3);
    assert_eq!(offsets(&store).await, vec![at(0, 3)]);
    assert_eq!(rows(&store, &[]).await, expect(&[("", 3)]));

    // Partition 1 moves past messages that held no events (dead letters).
    let out = apply(&store, &[mv(1, None, 7), mv(0, Some(3), 5)], &five[3..])
        .await
        .unwrap();
    assert_eq!(out.accepted, 2);
    assert_eq!(offsets(&store).await, vec![at(0, 5), at(1, 7)]);
    // a, b, d in Southwark; c, e in Lambeth.
    assert_eq!(
        rows(&store, &[("group_by", "borough")]).await,
        by_borough(&[(LAMBETH, 2), (SOUTHWARK, 3)])
    );

    // The same records again (a producer's retry further on): duplicates.
    let out = apply(&store, &[mv(1, Some(7), 12)], &five).await.unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 5));
    assert_eq!(rows(&store, &[]).await, expect(&[("", 5)]));
    // A correction moves the count from one key to the other.
    let mut moved = five[0].clone();
    moved.borough = Some(LAMBETH.into());
    moved.content_hash ^= 1;
    let out = apply(&store, &[mv(0, Some(5), 6)], &[moved]).await.unwrap();
    assert_eq!(out.corrections, 1);
    assert_eq!(
        rows(&store, &[("group_by", "borough")]).await,
        by_borough(&[(LAMBETH, 3), (SOUTHWARK, 2)])
    );
    assert_eq!(offsets(&store).await, vec![at(0, 6), at(1, 12)]);
    // No upload's counts are involved, and other groups see nothing.
    assert!(store
        .consumer_offsets("other", TOPIC)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .consumer_offsets(GROUP, "other")
        .await
        .unwrap()
        .is_empty());
    assert_exact(&store).await;
}

/// A writer that starts a partition from a position no longer stored is
/// refused, and nothing of its batch is stored: not its events, not the
/// moves of its other partitions.
pub(super) async fn a_stale_writer_is_refused(store: Store) {
    let five = five();
    apply(&store, &[mv(0, None, 3)], &five[..3]).await.unwrap();
    let before = rows(&store, &[("group_by", "borough")]).await;
    let quality = store.site_tallies().await.unwrap();

    // Started when nothing was stored (it was assigned before the other
    // instance's first commit).
    let stale = apply(&store, &[mv(0, None, 2)], &five[3..]).await;
    match stale {
        Err(StoreError::OffsetFenced {
            partition: 0,
            from: None,
            stored: Some(3),
            ..
        }) => {}
        other => panic!("expected a fenced batch, got {other:?}"),
    }
    // Started from an older position, with a fresh partition beside it.
    let stale = apply(&store, &[mv(1, None, 4), mv(0, Some(1), 5)], &five[3..]).await;
    match stale {
        Err(StoreError::OffsetFenced {
            partition: 0,
            from: Some(1),
            stored: Some(3),
            ..
        }) => {}
        other => panic!("expected a fenced batch, got {other:?}"),
    }
    // From a position ahead of the stored one (a lost commit): refused too.
    assert!(matches!(
        apply(&store, &[mv(0, Some(4), 5)], &five[3..]).await,
        Err(StoreError::OffsetFenced { .. })
    ));
    assert_eq!(offsets(&store).await, vec![at(0, 3)]);
    assert_eq!(rows(&store, &[("group_by", "borough")]).await, before);
    assert_eq!(store.site_tallies().await.unwrap(), quality);
    assert_exact(&store).await;

    // The owner goes on from the stored position.
    apply(&store, &[mv(0, Some(3), 5), mv(1, None, 4)], &five[3..])
        .await
        .unwrap();
    assert_eq!(offsets(&store).await, vec![at(0, 5), at(1, 4)]);
    assert_eq!(rows(&store, &[]).await, expect(&[("", 5)]));

    // Moves that make no sense are refused before anything is written.
    assert!(matches!(
        apply(&store, &[mv(0, Some(5), 4)], &[]).await,
        Err(StoreError::InvalidOffsetMove(_))
    ));
    assert!(matches!(
        apply(&store, &[mv(0, Some(5), 6), mv(0, Some(5), 7)], &[]).await,
        Err(StoreError::InvalidOffsetMove(_))
    ));
    assert_eq!(offsets(&store).await, vec![at(0, 5), at(1, 4)]);
}

/// A batch that fails after its positions moved, in the middle of its
/// writes, stores neither its counts nor its positions; once the fault is
/// gone the same batch commits.
pub(super) async fn counts_and_offsets_fail_together(store: Store) {
    let five = five();
    apply(&store, &[mv(0, None, 2)], &five[..2]).await.unwrap();
    // The quality tallies are the batch's last write: every earlier one
    // (positions, records, roll-ups) has been made when it fails.
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    on_db!(&store.db, pool => {
        sqlx::query(&rename("quality_tallies", "quality_tallies_away"))
            .execute(pool)
            .await
            .unwrap();
    });
    let failed = apply(&store, &[mv(0, Some(2), 5), mv(3, None, 1)], &five[2..]).await;
    assert!(
        matches!(failed, Err(StoreError::Database(_))),
        "expected a database error, got {failed:?}"
    );
    on_db!(&store.db, pool => {
        sqlx::query(&rename("quality_tallies_away", "quality_tallies"))
            .execute(pool)
            .await
            .unwrap();
    });
    assert_eq!(offsets(&store).await, vec![at(0, 2)]);
    assert_eq!(rows(&store, &[]).await, expect(&[("", 2)]));
    assert_exact(&store).await;

    let out = apply(&store, &[mv(0, Some(2), 5), mv(3, None, 1)], &five[2..])
        .await
        .unwrap();
    assert_eq!(out.accepted, 3);
    assert_eq!(offsets(&store).await, vec![at(0, 5), at(3, 1)]);
    assert_eq!(rows(&store, &[]).await, expect(&[("", 5)]));
    assert_exact(&store).await;
}

/// Two writers race from the same position with different records: one
/// commits, the other is refused and stores nothing.
pub(super) async fn racing_writers_one_wins(store: Store) {
    let events = synthetic(400, 11, 0);
    apply(&store, &[mv(0, None, 10)], &[]).await.unwrap();
    for round in 0..5i64 {
        let from = 10 + round * 100;
        let (a, b) = events[(round as usize) * 80..(round as usize + 1) * 80].split_at(40);
        let (a, b) = (a.to_vec(), b.to_vec());
        let (sa, sb) = (store.clone(), store.clone());
        let (ma, mb) = (
            vec![mv(0, Some(from), from + 100)],
            vec![mv(0, Some(from), from + 100)],
        );
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { apply(&sa, &ma, &a).await.map(|o| o.accepted) }),
            tokio::spawn(async move { apply(&sb, &mb, &b).await.map(|o| o.accepted) }),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let won = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {ra:?} {rb:?}");
        for r in [&ra, &rb] {
            match r {
                Ok(accepted) => assert_eq!(*accepted, 40),
                Err(StoreError::OffsetFenced { stored, .. }) => {
                    assert_eq!(*stored, Some(from + 100))
                }
                Err(e) => panic!("round {round}: {e}"),
            }
        }
    }
    assert_eq!(offsets(&store).await, vec![at(0, 510)]);
    assert_eq!(rows(&store, &[]).await, expect(&[("", 200)]));
    assert_exact(&store).await;
}

on_both!(
    offsets_commit_with_counts,
    a_stale_writer_is_refused,
    counts_and_offsets_fail_together,
    racing_writers_one_wins,
);
