//! Which partitions an aggregate instance owns and how far its pending
//! batch has read in each: the source of a batch's offset moves. Pure: the
//! consumer loop feeds it assignments, revocations and messages.
//!
//! A batch's messages of a partition must follow on from the stored
//! position without a hole (a hole would be messages never counted), so a
//! message before the partition's next position (read again after a seek)
//! is skipped, and any rebalance drops the pending batch: the assignment
//! that follows seeks every partition to its stored position.

use istv_store::{OffsetMove, PartitionOffset};
use std::collections::BTreeMap;

/// One owned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owned {
    /// The stored position the pending batch starts at (`None`: none
    /// stored, consumption starts at the beginning).
    from: Option<i64>,
    /// The position after the last message taken into the pending batch.
    next: Option<i64>,
}

/// The partitions owned, by (topic, partition).
#[derive(Debug, Default)]
pub struct Positions {
    owned: BTreeMap<(String, i32), Owned>,
    /// Counts assignments and revocations, so that a batch gathered across
    /// one is known to be stale.
    epoch: u64,
}

/// What to do with a consumed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Part of the pending batch.
    Take,
    /// Before the partition's position: already in the store or in the
    /// batch.
    Seen,
    /// Of a partition not owned (revoked since it was fetched).
    NotOwned,
}

impl Positions {
    /// No partition owned.
    pub fn new() -> Positions {
        Positions::default()
    }

    /// The number of assignments and revocations so far.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Takes partitions on assignment, each at its stored position (absent
    /// from `stored`: none stored), and drops any pending batch.
    pub fn assign(&mut self, partitions: &[(String, i32)], stored: &[PartitionOffset]) {
        self.epoch += 1;
        self.drop_pending();
        for (topic, partition) in partitions {
            let from = stored
                .iter()
                .find(|s| &s.topic == topic && s.partition == *partition)
                .map(|s| s.next_offset);
            self.owned
                .insert((topic.clone(), *partition), Owned { from, next: from });
        }
    }

    /// Gives partitions up on revocation, and drops any pending batch.
    pub fn revoke(&mut self, partitions: &[(String, i32)]) {
        self.epoch += 1;
        self.drop_pending();
        for key in partitions {
            self.owned.remove(key);
        }
    }

    /// Gives every partition up (the consumer left the group).
    pub fn revoke_all(&mut self) {
        self.epoch += 1;
        self.owned.clear();
    }

    /// The position each owned partition should be consumed from: its
    /// stored one (`None`: from the beginning).
    pub fn starts(&self) -> Vec<((String, i32), Option<i64>)> {
        self.owned
            .iter()
            .map(|(k, o)| (k.clone(), o.from))
            .collect()
    }

    /// Whether the message at `offset` of a partition joins the pending
    /// batch; if so the partition's position moves past it.
    pub fn take(&mut self, topic: &str, partition: i32, offset: i64) -> Take {
        let Some(o) = self.owned.get_mut(&(topic.to_owned(), partition)) else {
            return Take::NotOwned;
        };
        if o.next.is_some_and(|next| offset < next) {
            return Take::Seen;
        }
        o.next = Some(offset + 1);
        Take::Take
    }

    /// The moves of the pending batch: one per partition it read from.
    pub fn moves(&self) -> Vec<OffsetMove> {
        self.owned
            .iter()
            .filter(|(_, o)| o.next != o.from)
            .map(|((topic, partition), o)| OffsetMove {
                topic: topic.clone(),
                partition: *partition,
                from: o.from,
                to: o.next.expect("a partition read from has a position"),
            })
            .collect()
    }

    /// The pending batch committed: its positions are the stored ones.
    pub fn committed(&mut self) {
        for o in self.owned.values_mut() {
            o.from = o.next;
        }
    }

    /// The pending batch given up: every partition back at its stored
    /// position (the consumer seeks there).
    pub fn drop_pending(&mut self) {
        for o in self.owned.values_mut() {
            o.next = o.from;
        }
    }

    /// The store's positions read again after a refused batch: each owned
    /// partition starts from what is stored now.
    pub fn restart_from(&mut self, stored: &[PartitionOffset]) {
        for ((topic, partition), o) in self.owned.iter_mut() {
            let from = stored
                .iter()
                .find(|s| &s.topic == topic && s.partition == *partition)
                .map(|s| s.next_offset);
            *o = Owned { from, next: from };
        }
    }

    /// Whether any partition is owned.
    pub fn is_empty(&self) -> bool {
        self.owned.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "istv.geocoded.v1";

    fn parts(ps: &[i32]) -> Vec<(String, i32)> {
        ps.iter().map(|p| (T.to_owned(), *p)).collect()
    }

    fn stored(p: i32, next_offset: i64) -> PartitionOffset {
        PartitionOffset {
            topic: T.into(),
            partition: p,
            next_offset,
        }
    }

    fn mv(partition: i32, from: Option<i64>, to: i64) -> OffsetMove {
        OffsetMove {
            topic: T.into(),
            partition,
            from,
            to,
        }
    }

    #[test]
    fn a_batch_moves_each_partition_it_read_from_its_stored_position() {
        let mut p = Positions::new();
        p.assign(&parts(&[0, 1, 2]), &[stored(1, 40)]);
        assert_eq!(p.starts()[1], ((T.to_owned(), 1), Some(40)));
        assert_eq!(p.take(T, 0, 0), Take::Take);
        assert_eq!(p.take(T, 0, 1), Take::Take);
        // A hole left by a transaction marker is no message missed.
        assert_eq!(p.take(T, 0, 3), Take::Take);
        assert_eq!(p.take(T, 1, 40), Take::Take);
        assert_eq!(p.take(T, 7, 0), Take::NotOwned);
        assert_eq!(p.moves(), vec![mv(0, None, 4), mv(1, Some(40), 41)]);
        p.committed();
        assert!(p.moves().is_empty());
        // Read again after a seek: already counted.
        assert_eq!(p.take(T, 0, 3), Take::Seen);
        assert_eq!(p.take(T, 1, 39), Take::Seen);
        assert_eq!(p.take(T, 1, 41), Take::Take);
        assert_eq!(p.moves(), vec![mv(1, Some(41), 42)]);
    }

    #[test]
    fn a_rebalance_drops_the_pending_batch() {
        let mut p = Positions::new();
        p.assign(&parts(&[0, 1]), &[stored(0, 10), stored(1, 20)]);
        let e = p.epoch();
        p.take(T, 0, 10);
        p.take(T, 1, 20);
        p.revoke(&parts(&[1]));
        assert_ne!(p.epoch(), e);
        assert!(p.moves().is_empty());
        assert_eq!(p.take(T, 1, 21), Take::NotOwned);
        // Partition 0 is read again from its stored position.
        assert_eq!(p.take(T, 0, 10), Take::Take);
        assert_eq!(p.moves(), vec![mv(0, Some(10), 11)]);
        p.drop_pending();
        assert!(p.moves().is_empty());
        p.revoke_all();
        assert!(p.is_empty());
    }

    #[test]
    fn a_refused_batch_restarts_from_what_is_stored_now() {
        let mut p = Positions::new();
        p.assign(&parts(&[0]), &[]);
        p.take(T, 0, 0);
        p.take(T, 0, 1);
        // Another instance committed up to 5 meanwhile.
        p.restart_from(&[stored(0, 5)]);
        assert!(p.moves().is_empty());
        assert_eq!(p.starts(), vec![((T.to_owned(), 0), Some(5))]);
        assert_eq!(p.take(T, 0, 2), Take::Seen);
        assert_eq!(p.take(T, 0, 5), Take::Take);
        assert_eq!(p.moves(), vec![mv(0, Some(5), 6)]);
    }
}
