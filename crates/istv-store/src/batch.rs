//! What both databases' batches share: what a batch sends and which of it
//! is stored (the input of [`istv_aggregate::plan_batch_in_upload`]), the
//! record ids per site, the check that an upload is open, and the end of a
//! batch's transaction.

use crate::{Result, StoreError, StreamBatch, UploadId};
use istv_aggregate::{Event, RecordKey};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Adds a batch's counts to its upload (parameters: accepted, duplicates,
/// corrections, upload id).
pub(crate) const UPDATE_UPLOAD_COUNTS: &str = include_str!("sql/update_upload_counts.sql");

/// Where a batch comes from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// An open upload of the store: its running counts change with the
    /// batch.
    Upload(&'a UploadId),
    /// A consumer group's messages: its positions move with the batch.
    Stream {
        /// The positions.
        batch: &'a StreamBatch<'a>,
        /// What its records are stamped with (see [`StreamBatch::stamp`]).
        stamp: &'a str,
    },
}

impl Source<'_> {
    /// What the batch's records are stamped with (through its id in
    /// `record_stamps`, see [`stamp_id`]).
    pub(crate) fn stamp(&self) -> &str {
        match self {
            Source::Upload(u) => u.as_str(),
            Source::Stream { stamp, .. } => stamp,
        }
    }
}

/// The start of a batch's transaction on either database: an upload must
/// be open; a stream batch moves its positions (fenced, see
/// [`crate::offsets`]).
macro_rules! begin_batch {
    ($tx:ident, $source:expr) => {{
        match $source {
            $crate::batch::Source::Upload(upload) => {
                let state: Option<(i64,)> =
                    sqlx::query_as("SELECT completed FROM uploads WHERE id = $1")
                        .bind(upload.as_str())
                        .fetch_optional(&mut *$tx)
                        .await?;
                $crate::batch::check_open(upload, state)?;
            }
            $crate::batch::Source::Stream { batch, .. } => {
                $crate::offsets::advance_offsets!($tx, batch);
            }
        }
    }};
}
pub(crate) use begin_batch;

/// The id of a batch's stamp (see [`Source::stamp`]) in `record_stamps`,
/// made on its first use: the records hold it in their `stamp` column,
/// an integer where the upload's id took 26 bytes of every row.
macro_rules! stamp_id {
    ($tx:ident, $stamp:expr) => {{
        let stamp: &str = $stamp;
        sqlx::query("INSERT INTO record_stamps (stamp) VALUES ($1) ON CONFLICT (stamp) DO NOTHING")
            .bind(stamp)
            .execute(&mut *$tx)
            .await?;
        let (id,): (i64,) = sqlx::query_as("SELECT id FROM record_stamps WHERE stamp = $1")
            .bind(stamp)
            .fetch_one(&mut *$tx)
            .await?;
        id
    }};
}
pub(crate) use stamp_id;

/// The end of a batch's transaction on either database: add the batch's
/// changes to the quality tallies and, for an upload, its counts to the
/// upload; commit.
macro_rules! finish_batch {
    ($tx:ident, $outcome:expr, $source:expr, $tallies:expr) => {{
        $crate::portal::add_tallies!($tx, $tallies);
        let o: $crate::BatchOutcome = $outcome;
        if let $crate::batch::Source::Upload(upload) = $source {
            sqlx::query($crate::batch::UPDATE_UPLOAD_COUNTS)
                .bind(o.accepted as i64)
                .bind(o.duplicates as i64)
                .bind(o.corrections as i64)
                .bind(upload.as_str())
                .execute(&mut *$tx)
                .await?;
        }
        $tx.commit().await?;
        Ok(o)
    }};
}
pub(crate) use finish_batch;

/// Fails unless the upload exists and is not finished (`state` is its
/// `completed` column).
pub(crate) fn check_open(upload: &UploadId, state: Option<(i64,)>) -> Result<()> {
    match state {
        None => Err(StoreError::NoSuchUpload(upload.to_string())),
        Some((c,)) if c != 0 => Err(StoreError::UploadFinished(upload.to_string())),
        Some(_) => Ok(()),
    }
}

/// The record ids of `events` grouped by site, sites in order (the order
/// the PostgreSQL advisory locks are taken in), ids sorted and distinct.
pub(crate) fn ids_by_site<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut by_site: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in events {
        by_site
            .entry(e.site_code.as_str())
            .or_default()
            .push(e.record_id.as_str());
    }
    for ids in by_site.values_mut() {
        ids.sort_unstable();
        ids.dedup();
    }
    by_site
}

/// What a batch sends under one record key.
pub(crate) struct Sent<'a> {
    /// The first event with the key.
    pub(crate) first: &'a Event,
    /// The content hash every event with the key has; `None` when they
    /// differ.
    hash: Option<u64>,
    /// The batch sends the key once.
    pub(crate) once: bool,
    /// Inserted as a new record during the lookup (SQLite).
    pub(crate) inserted: bool,
}

/// The stored records a batch touches, as gathered by the lookup
/// (SQLite) or the prefetch (PostgreSQL).
pub(crate) struct Stored<'a> {
    /// What the batch sends, by (site, record id): an index into `sents`.
    sent: HashMap<(&'a str, &'a str), u32, foldhash::fast::RandomState>,
    /// One per record key the batch sends, in first-seen order.
    pub(crate) sents: Vec<Sent<'a>>,
    /// Per event of the batch, in order, its index into `sents`: each key
    /// is hashed once per batch.
    pub(crate) slot: Vec<u32>,
    /// The stored record of each key the batch touches and is stored.
    pub(crate) existing: HashMap<RecordKey, Event>,
    /// Keys of the stored records last written by the batch's upload.
    pub(crate) same_upload: HashSet<RecordKey>,
    /// The hash that a stored record of the legacy scheme stands as (see
    /// [`Stored::hashes`]), by key.
    legacy: HashMap<RecordKey, u64>,
}

/// A stored record's hash as a batch's lookup reads it.
pub(crate) struct StoredHash {
    /// The record id (of the site looked up).
    pub(crate) id: String,
    /// The stored content hash.
    pub(crate) hash: i64,
    /// Keyed (`hash_kind` 1); else the legacy FNV-1a of a record stored
    /// before migration 0009.
    pub(crate) keyed: bool,
    /// Last written by the batch's upload.
    pub(crate) same_upload: bool,
}

impl<'a> Stored<'a> {
    /// What `events` sends; nothing stored found yet.
    pub(crate) fn new(events: &'a [Event]) -> Stored<'a> {
        let mut sent: HashMap<_, u32, _> =
            HashMap::with_capacity_and_hasher(events.len(), Default::default());
        let mut sents: Vec<Sent> = Vec::with_capacity(events.len());
        let mut slot = Vec::with_capacity(events.len());
        for e in events {
            let next = sents.len() as u32;
            let at = *sent
                .entry((e.site_code.as_str(), e.record_id.as_str()))
                .or_insert(next);
            if at == next {
                sents.push(Sent {
                    first: e,
                    hash: Some(e.content_hash),
                    once: true,
                    inserted: false,
                });
            } else {
                let s = &mut sents[at as usize];
                s.once = false;
                if s.hash != Some(e.content_hash) {
                    s.hash = None;
                }
            }
            slot.push(at);
        }
        Stored {
            sent,
            sents,
            slot,
            existing: HashMap::new(),
            same_upload: HashSet::new(),
            legacy: HashMap::new(),
        }
    }

    /// Takes a site's stored hashes and returns the ids whose full row is
    /// needed. Same hash means same content, so for a key the batch only
    /// re-sends unchanged, the batch's own event stands for the stored one.
    ///
    /// A record stored under the legacy scheme is compared under it: only
    /// the batch's first event of a key is compared with the stored record
    /// (later ones with the events before them), so when that event's
    /// legacy hash is the stored one, the record is that content and stands
    /// as the event's keyed hash (a duplicate); otherwise the content
    /// differs and it stands as a hash unequal to the event's (a
    /// correction). Writing it again stores the keyed hash.
    pub(crate) fn hashes(
        &mut self,
        site: &str,
        rows: impl IntoIterator<Item = StoredHash>,
    ) -> Vec<String> {
        let mut changed = Vec::new();
        for row in rows {
            let Some(&at) = self.sent.get(&(site, row.id.as_str())) else {
                continue;
            };
            let sent = &self.sents[at as usize];
            let first = sent.first;
            if row.same_upload {
                self.same_upload.insert(first.record_key());
            }
            let mut hash = row.hash as u64;
            if !row.keyed {
                hash = if hash == first.legacy_hash {
                    first.content_hash
                } else {
                    !first.content_hash
                };
                self.legacy.insert(first.record_key(), hash);
            }
            if sent.hash == Some(hash) {
                self.existing.insert(first.record_key(), first.clone());
            } else {
                changed.push(row.id);
            }
        }
        changed
    }

    /// Whether the record of the batch's `i`th event was inserted as new
    /// during the lookup (SQLite).
    pub(crate) fn inserted(&self, i: usize) -> bool {
        self.sents[self.slot[i] as usize].inserted
    }

    /// Takes a full stored row (its hash as [`Stored::hashes`] read it).
    pub(crate) fn full(&mut self, mut e: Event) {
        let key = e.record_key();
        if let Some(&hash) = self.legacy.get(&key) {
            e.content_hash = hash;
        }
        self.existing.insert(key, e);
    }
}
