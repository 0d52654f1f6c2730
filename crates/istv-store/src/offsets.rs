//! Kafka consumer positions kept in the store (migration 0013), moved in
//! the same transaction as the counts of a batch of consumed events (see
//! [`Store::apply_stream_batch`]), as Quickwit keeps its source checkpoint
//! in the metastore transaction that publishes the data.
//!
//! Fencing: a batch states, per partition, the position it started from
//! (the one read at assignment, or the last it committed). The move is a
//! compare-and-set on the stored row, taken first in the transaction: when
//! the stored position differs, another instance has taken the partition
//! and committed since, and the whole batch is refused and rolled back. On
//! PostgreSQL the conditional `UPDATE` (or the `INSERT` of a first
//! position) waits for a concurrent writer of the same partition and then
//! sees its commit, so two writers that started from the same position
//! cannot both succeed; on SQLite write transactions are serialised.

use crate::codec::now_text;
use crate::{Db, Result, Store, StoreError};
use istv_aggregate::{BatchOutcome, Event};

/// One partition's position as stored: the offset of the next message to
/// consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next message to consume.
    pub next_offset: i64,
}

/// How a batch moves one partition's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetMove {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The stored position the batch's messages start at; `None` when the
    /// store holds none for the partition (its first batch).
    pub from: Option<i64>,
    /// The position after the batch's messages (the offset after the last).
    pub to: i64,
}

/// A batch of consumed events with the positions it moves: written by
/// [`Store::apply_stream_batch`].
#[derive(Debug, Clone, Copy)]
pub struct StreamBatch<'a> {
    /// The consumer group whose positions move.
    pub group: &'a str,
    /// One move per partition the batch consumed from, each partition at
    /// most once.
    pub moves: &'a [OffsetMove],
}

impl StreamBatch<'_> {
    /// What records written by a consumer group are stamped with (no
    /// upload of the store sends them).
    pub fn stamp(group: &str) -> String {
        format!("kafka:{group}")
    }

    /// The moves sorted by (topic, partition), the order their rows are
    /// locked in so that two batches cannot deadlock; fails on a partition
    /// given twice or a move backwards.
    pub(crate) fn checked_moves(&self) -> Result<Vec<&OffsetMove>> {
        let mut moves: Vec<&OffsetMove> = self.moves.iter().collect();
        moves.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        for pair in moves.windows(2) {
            if (&pair[0].topic, pair[0].partition) == (&pair[1].topic, pair[1].partition) {
                return Err(StoreError::InvalidOffsetMove(format!(
                    "topic `{}` partition {} is moved twice in one batch",
                    pair[0].topic, pair[0].partition
                )));
            }
        }
        for m in &moves {
            if m.to < m.from.unwrap_or(0) || m.to < 0 {
                return Err(StoreError::InvalidOffsetMove(format!(
                    "topic `{}` partition {} would move from {:?} back to {}",
                    m.topic, m.partition, m.from, m.to
                )));
            }
        }
        Ok(moves)
    }
}

/// The compare-and-set of a partition's position (parameters: to, now,
/// group, topic, partition, from).
pub(crate) const MOVE_OFFSET: &str =
    "UPDATE consumer_offsets SET next_offset = $1, updated_at = $2 \
     WHERE consumer_group = $3 AND topic = $4 AND partition_id = $5 AND next_offset = $6";

/// A partition's first position (parameters: group, topic, partition, to,
/// now); inserts nothing when one is stored.
pub(crate) const FIRST_OFFSET: &str = "INSERT INTO consumer_offsets \
     (consumer_group, topic, partition_id, next_offset, updated_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (consumer_group, topic, partition_id) DO NOTHING";

/// A partition's stored position (parameters: group, topic, partition).
pub(crate) const STORED_OFFSET: &str = "SELECT next_offset FROM consumer_offsets \
     WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3";

/// Moves every position of a stream batch inside its transaction `$tx`, or
/// returns [`StoreError::OffsetFenced`] from the enclosing function (the
/// transaction, dropped, rolls back).
macro_rules! advance_offsets {
    ($tx:ident, $batch:expr) => {{
        let batch: &$crate::offsets::StreamBatch<'_> = $batch;
        let now = $crate::codec::now_text();
        for m in batch.checked_moves()? {
            let done = match m.from {
                Some(from) => sqlx::query($crate::offsets::MOVE_OFFSET)
                    .bind(m.to)
                    .bind(&now)
                    .bind(batch.group)
                    .bind(m.topic.as_str())
                    .bind(m.partition)
                    .bind(from)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected(),
                None => sqlx::query($crate::offsets::FIRST_OFFSET)
                    .bind(batch.group)
                    .bind(m.topic.as_str())
                    .bind(m.partition)
                    .bind(m.to)
                    .bind(&now)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected(),
            };
            if done != 1 {
                let stored: Option<(i64,)> = sqlx::query_as($crate::offsets::STORED_OFFSET)
                    .bind(batch.group)
                    .bind(m.topic.as_str())
                    .bind(m.partition)
                    .fetch_optional(&mut *$tx)
                    .await?;
                return Err($crate::StoreError::OffsetFenced {
                    group: batch.group.to_owned(),
                    topic: m.topic.clone(),
                    partition: m.partition,
                    from: m.from,
                    stored: stored.map(|s| s.0),
                });
            }
        }
    }};
}
pub(crate) use advance_offsets;

impl Store {
    /// Applies a batch of consumed events and moves the consumer group's
    /// positions in one transaction: the records, the cube, the roll-ups,
    /// the quality tallies and the positions commit together or not at
    /// all. Counting is as [`Store::apply_batch`] (a re-sent record with
    /// the same content changes nothing); no upload's counts change.
    ///
    /// Fails with [`StoreError::OffsetFenced`], storing nothing of the
    /// batch, when a partition's stored position is not the batch's
    /// `from`: the consumer must read the positions again
    /// ([`Store::consumer_offsets`]) and consume from there. A batch with
    /// no events only moves positions (e.g. past dead-lettered messages).
    pub async fn apply_stream_batch(
        &self,
        batch: &StreamBatch<'_>,
        events: &[Event],
    ) -> Result<BatchOutcome> {
        let _guard = self.write_guard().await;
        let stamp = StreamBatch::stamp(batch.group);
        let source = crate::batch::Source::Stream {
            batch,
            stamp: &stamp,
        };
        self.apply(source, events).await
    }

    /// The stored positions of a consumer group on a topic, by partition:
    /// where to seek on partition assignment (a partition absent has none
    /// stored: consume from the start).
    pub async fn consumer_offsets(&self, group: &str, topic: &str) -> Result<Vec<PartitionOffset>> {
        let rows: Vec<(i32, i64)> = on_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT partition_id, next_offset FROM consumer_offsets \
                 WHERE consumer_group = $1 AND topic = $2 ORDER BY partition_id",
            )
            .bind(group)
            .bind(topic)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(partition, next_offset)| PartitionOffset {
                topic: topic.to_owned(),
                partition,
                next_offset,
            })
            .collect())
    }

    /// Sets a consumer group's position on a partition outright, whatever
    /// is stored (an operator's reset, e.g. to consume a topic again into
    /// an emptied store). A running consumer of the partition is fenced by
    /// it: its next batch starts from a position no longer stored.
    pub async fn reset_consumer_offset(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        next_offset: i64,
    ) -> Result<()> {
        let _guard = self.write_guard().await;
        let now = now_text();
        on_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO consumer_offsets \
                 (consumer_group, topic, partition_id, next_offset, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (consumer_group, topic, partition_id) \
                 DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at",
            )
            .bind(group)
            .bind(topic)
            .bind(partition)
            .bind(next_offset)
            .bind(&now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
