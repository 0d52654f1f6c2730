//! Record identity on SQLite: which stored record, if any, has a (site,
//! record id), without a b-tree keyed by it (see migration 0006).
//!
//! A record's fingerprint is SipHash-1-3 of its site and record id under a
//! key the store makes at random (`store_meta.record_id_seed`), so an
//! uploader cannot choose ids that collide. Fingerprints of new records go
//! to `record_ids_recent`; once it holds [`RecordIds::merge_after`] entries
//! they are merged in fingerprint order into `record_ids` and the recent
//! tier starts again empty. A batch's random inserts therefore land in a
//! table of a few hundred pages, and the large tier is written once per
//! merge in key order, instead of a page of a table as large as the records
//! for nearly every record.

use super::rows::Statement;
use crate::Result;
use siphasher::sip::SipHasher13;
use sqlx::sqlite::{LockedSqliteHandle, SqlitePool};
use std::hash::Hasher;

/// The stored record with a (site, record id) fingerprint `?2`, site `?3`
/// and id `?4`: its rowid, content hash and whether the stamp id `?1` last
/// wrote it.
pub(crate) const RECORD_LOOKUP: &str = include_str!("../sql/sqlite/record_lookup.sql");

/// Entries of the recent tier after which a batch merges it into the main
/// one. At 20-odd bytes an entry, 500k fill about 700 pages of 16 KiB: a
/// batch of 50k new records writes most of them, and the merge writes the
/// main tier (about 5,500 pages at 3M records) once per 500k records.
pub(crate) const MERGE_AFTER: u64 = 500_000;

/// The name of the seed in `store_meta`.
pub(crate) const SEED_NAME: &str = "record_id_seed";

/// `store_meta` holds this name once every stored record has its
/// fingerprint.
const BUILT_NAME: &str = "record_ids_built";

/// How a store finds its records by (site, record id).
#[derive(Clone)]
pub(crate) struct RecordIds {
    k0: u64,
    k1: u64,
    /// Entries of the recent tier that make a batch merge it.
    pub(crate) merge_after: u64,
    /// Tests only: every fingerprint the same, so that every lookup meets
    /// collisions.
    #[cfg(test)]
    pub(crate) collide: bool,
}

impl std::fmt::Debug for RecordIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret.
        f.write_str("RecordIds(..)")
    }
}

impl RecordIds {
    /// Fingerprints under `seed` (kept secret by the store).
    pub(crate) fn new(seed: u64) -> RecordIds {
        RecordIds {
            k0: seed,
            k1: seed.rotate_left(29) ^ 0x6973_7476_2d69_6473,
            merge_after: MERGE_AFTER,
            #[cfg(test)]
            collide: false,
        }
    }

    /// The fingerprint of (site, record id). The site is followed by a byte
    /// no UTF-8 text holds, so ("ab", "c") and ("a", "bc") differ.
    pub(crate) fn fingerprint(&self, site: &str, record_id: &str) -> i64 {
        #[cfg(test)]
        if self.collide {
            return 7;
        }
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(site.as_bytes());
        h.write_u8(0xff);
        h.write(record_id.as_bytes());
        h.finish() as i64
    }

    /// Records the fingerprint `?1` of a new record with rowid `?2`.
    pub(crate) const ADD_RECENT: &'static str =
        "INSERT INTO record_ids_recent (fp, rid) VALUES (?1, ?2)";

    /// Merges the recent tier into the main one if it holds enough
    /// entries; in the caller's transaction. Returns the entries merged.
    pub(crate) fn merge_if_full(&self, handle: &mut LockedSqliteHandle<'_>) -> Result<u64> {
        let mut count = Statement::prepare(handle, "SELECT COUNT(*) FROM record_ids_recent")?;
        let [recent] = count.first_row::<1>(&[])?.unwrap_or([0]);
        drop(count);
        let recent = recent as u64;
        if recent < self.merge_after {
            return Ok(0);
        }
        // OR IGNORE: no (fp, rid) is in both tiers (rowids are unique), and
        // a statement that cannot abort on a constraint keeps no statement
        // journal. The plain INSERT kept one in memory the size of the
        // pages it changed (measured: 2.5M entries in the main tier, 45 MB
        // peak against 22.5 MB).
        Statement::prepare(
            handle,
            "INSERT OR IGNORE INTO record_ids (fp, rid) \
             SELECT fp, rid FROM record_ids_recent ORDER BY fp, rid",
        )?
        .execute(&[])?;
        Statement::prepare(handle, "DELETE FROM record_ids_recent")?.execute(&[])?;
        Ok(recent)
    }

    /// Gives every stored record without one its fingerprint: once, for the
    /// records a store held before migration 0006 (a new store's are none).
    pub(crate) async fn ensure_built(&self, pool: &SqlitePool) -> Result<()> {
        let built = "SELECT 1 FROM store_meta WHERE name = ?1";
        if sqlx::query(built)
            .bind(BUILT_NAME)
            .fetch_optional(pool)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        if sqlx::query(built)
            .bind(BUILT_NAME)
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return Ok(());
        }
        // In pages of rowids: only the fingerprints (16 bytes a record)
        // are held all at once.
        let mut fps: Vec<(i64, i64)> = Vec::new();
        let mut after = 0;
        loop {
            let rows: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT rid, site_code, record_id FROM records WHERE rid > ?1 \
                 ORDER BY rid LIMIT 65536",
            )
            .bind(after)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            fps.extend(
                rows.iter()
                    .map(|(rid, site, id)| (self.fingerprint(site, id), *rid)),
            );
        }
        fps.sort_unstable();
        {
            let mut handle = tx.lock_handle().await?;
            let mut insert = Statement::prepare(
                &mut handle,
                "INSERT INTO record_ids (fp, rid) VALUES (?1, ?2)",
            )?;
            for &(fp, rid) in &fps {
                insert.execute(&[fp.into(), rid.into()])?;
            }
        }
        sqlx::query("INSERT INTO store_meta (name, value) VALUES (?1, '1')")
            .bind(BUILT_NAME)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if !fps.is_empty() {
            tracing::info!(
                records = fps.len(),
                seconds = started.elapsed().as_secs_f64(),
                "indexed the stored records by fingerprint"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_siphash_1_3_of_site_and_id() {
        let ids = RecordIds::new(42);
        // The same bytes hashed by hand: site, 0xff, id.
        let mut h = SipHasher13::new_with_keys(42, 42u64.rotate_left(29) ^ 0x6973_7476_2d69_6473);
        h.write(b"RJ1\xffabc");
        assert_eq!(ids.fingerprint("RJ1", "abc"), h.finish() as i64);
        assert_ne!(ids.fingerprint("ab", "c"), ids.fingerprint("a", "bc"));
        assert_ne!(
            ids.fingerprint("RJ1", "abc"),
            RecordIds::new(43).fingerprint("RJ1", "abc")
        );
    }

    #[test]
    fn the_specified_siphash_1_3_is_used() {
        // SipHash-1-3 with key 00..0f over the bytes 00..0e, the sixteenth
        // of the test vectors Rust's standard library once checked its
        // SipHash-1-3 against: a crate upgrade that changed the output
        // would make every stored fingerprint unreachable.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let mut h = SipHasher13::new_with_keys(k0, k1);
        h.write(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(h.finish(), EXPECTED_15);
    }

    /// SipHash-1-3, key 00..0f, message 00..0e (fifteen bytes).
    const EXPECTED_15: u64 = u64::from_le_bytes([0x56, 0x99, 0x51, 0x2a, 0x6d, 0xd8, 0x20, 0xd3]);
}
