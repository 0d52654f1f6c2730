//! The same suite against SQLite (a temporary file) and PostgreSQL (a fresh
//! database per test on the server named by `ISTV_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). PostgreSQL tests fail, not
//! skip, when the server is unreachable.

use super::*;
use crate::codec::{day_text, write_day};
use crate::sqlite::checkpoint::WAL_AUTOCHECKPOINT_PAGES;
use crate::sqlite::SQLITE_PAGE_SIZE;
use chrono::NaiveDate;
use h3o::{LatLng, Resolution};
use istv_aggregate::{Column, GeocodeMethod, Ledger, Table, Tally};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use std::future::Future;
use std::time::Duration;

/// The content key of the synthetic events' keyed hashes.
static CONTENT_KEY: std::sync::LazyLock<istv_aggregate::ContentKey> =
    std::sync::LazyLock::new(|| istv_aggregate::ContentKey::new([7; 32]));

const SOUTHWARK: &str = "E09000028";
const LAMBETH: &str = "E09000022";

fn event(id: &str, day: &str, borough: &str, hash: u64) -> Event {
    Event {
        site_code: "RJ1".into(),
        record_id: id.into(),
        content_hash: hash,
        legacy_hash: hash,
        assault_date: NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap(),
        assault_hour: Some(23),
        method: AssaultMethod::SharpObject,
        location_type: LocationType::Street,
        age_band: AgeBand::Age18To24,
        sex: Sex::Male,
        geocode_method: GeocodeMethod::PostcodeUnit,
        precision_m: Some(40),
        cell: Some(LatLng::new(51.5, -0.09).unwrap().to_cell(Resolution::Ten)),
        borough: Some(borough.into()),
        ward: Some("E05011095".into()),
        lsoa: None,
        disclosure_key: DisclosureKeys::new(3).key("RJ1", id),
    }
}

/// The cell key of some of [`event`]'s records, summed by hand.
fn cell_key(ids: &[&str]) -> u16 {
    let sum: u32 = ids
        .iter()
        .map(|id| u32::from(DisclosureKeys::new(3).key("RJ1", id)))
        .sum();
    (sum % u32::from(istv_aggregate::RECORD_KEYS)) as u16
}

fn five() -> Vec<Event> {
    vec![
        event("a", "2024-03-01", SOUTHWARK, 1),
        event("b", "2024-03-31", SOUTHWARK, 2),
        event("c", "2024-03-15", LAMBETH, 3),
        event("d", "2024-04-01", SOUTHWARK, 4),
        event("e", "2024-04-30", LAMBETH, 5),
    ]
}

/// Deterministic synthetic events: `n` records over `sites` sites, spread
/// over dates, hours, codes, cells of varying resolution and boroughs.
pub(crate) fn synthetic(n: usize, seed: u64, hash_salt: u64) -> Vec<Event> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let sites = ["RJ1", "RJ2", "RYJ", "R1H"];
    (0..n)
        .map(|i| {
            let r = next();
            let site = sites[i % sites.len()];
            let lat = 51.3 + (r % 4000) as f64 / 10_000.0;
            let lng = -0.5 + ((r >> 12) % 8000) as f64 / 10_000.0;
            let res = Resolution::try_from(7 + ((r >> 25) % 4) as u8).unwrap();
            let located = (r >> 27) % 10 != 0;
            let cell = located.then(|| LatLng::new(lat, lng).unwrap().to_cell(res));
            let borough_n = (r >> 30) % 33;
            Event {
                site_code: site.into(),
                record_id: format!("{site}-{}", i / sites.len()),
                // The content is a function of (i, seed), as a real hash is
                // of the content.
                content_hash: istv_aggregate::content_hash(
                    &CONTENT_KEY,
                    &[&i.to_string(), &seed.to_string(), &hash_salt.to_string()],
                ),
                legacy_hash: istv_aggregate::legacy_content_hash(&[
                    &i.to_string(),
                    &seed.to_string(),
                    &hash_salt.to_string(),
                ]),
                assault_date: NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()
                    + chrono::Duration::days(((r >> 36) % 730) as i64),
                assault_hour: ((r >> 46) % 25 != 24).then_some(((r >> 46) % 25) as u8),
                method: AssaultMethod::ALL[((r >> 51) % 6) as usize],
                location_type: LocationType::ALL[((r >> 54) % 8) as usize],
                age_band: AgeBand::ALL[((r >> 57) % 9) as usize],
                sex: Sex::ALL[((r >> 61) % 4) as usize],
                geocode_method: if located {
                    GeocodeMethod::LatLon
                } else {
                    GeocodeMethod::Unresolved
                },
                precision_m: located.then_some(10),
                cell,
                borough: located.then(|| format!("E090000{:02}", borough_n + 1).into()),
                ward: located.then(|| format!("E0501{:04}", (r >> 40) % 600).into()),
                lsoa: located.then(|| format!("E0100{:04}", (r >> 20) % 4800).into()),
                disclosure_key: DisclosureKeys::new(3)
                    .key(site, &format!("{site}-{}", i / sites.len())),
            }
        })
        .collect()
}

fn q(pairs: &[(&str, &str)]) -> Query {
    Query::from_pairs(pairs.iter().copied()).expect("valid query")
}

fn counts(rows: &[Row]) -> Vec<(String, u64)> {
    rows.iter()
        .map(|r| (r.values.join("|"), r.count.expect("not suppressed")))
        .collect()
}

fn expect(rows: &[(&str, u64)]) -> Vec<(String, u64)> {
    rows.iter().map(|(k, c)| (k.to_string(), *c)).collect()
}

async fn rows(store: &Store, pairs: &[(&str, &str)]) -> Vec<(String, u64)> {
    counts(&store.aggregate(&q(pairs), Disclosure::NONE).await.unwrap())
}

async fn assert_exact(store: &Store) {
    let report = store.recount_check().await.unwrap();
    assert!(
        report.is_ok(),
        "aggregates differ from a recount: {report:?}"
    );
}

/// Applies events as one upload, finished, and returns its id.
async fn upload(store: &Store, events: &[Event]) -> (UploadId, BatchOutcome) {
    let id = store.begin_upload("RJ1", "csv").await.unwrap();
    let out = store.apply_batch(&id, events).await.unwrap();
    let receipt = serde_json::json!({ "accepted": out.accepted });
    store
        .finish_upload(
            &id,
            Completion {
                rows: events.len() as u64,
                rejected: 0,
                receipt: &receipt,
                errors: &[],
            },
        )
        .await
        .unwrap();
    (id, out)
}

// ----- the suite -----

async fn hand_counted_groups(store: Store) {
    let (_, out) = upload(&store, &five()).await;
    assert_eq!(
        out,
        BatchOutcome {
            accepted: 5,
            duplicates: 0,
            corrections: 0,
            replaced_in_upload: 0
        }
    );
    assert_eq!(
        rows(&store, &[("group_by", "month,borough")]).await,
        expect(&[
            ("2024-03|E09000022", 1),
            ("2024-03|E09000028", 2),
            ("2024-04|E09000022", 1),
            ("2024-04|E09000028", 1),
        ])
    );
    assert_eq!(rows(&store, &[]).await, expect(&[("", 5)]));
    assert_eq!(
        rows(&store, &[("group_by", "borough"), ("month", "2024-03")]).await,
        expect(&[("E09000022", 1), ("E09000028", 2)])
    );
    assert_eq!(
        rows(
            &store,
            &[
                ("borough", SOUTHWARK),
                ("from", "2024-03-02"),
                ("to", "2024-04-01")
            ]
        )
        .await,
        expect(&[("", 2)])
    );
    assert_eq!(
        rows(&store, &[("group_by", "weekday,hour"), ("weekday", "fri")]).await,
        expect(&[("fri|23", 2)])
    );
    assert_eq!(
        rows(&store, &[("group_by", "week"), ("from", "2024-04-01")]).await,
        expect(&[("2024-W14", 1), ("2024-W18", 1)])
    );
    assert_eq!(
        rows(
            &store,
            &[(
                "group_by",
                "site,sex,age_band,assault_method,location_type,location_status,ward,lsoa"
            )]
        )
        .await,
        expect(&[(
            "RJ1|male|18-24|sharp_object|street|resolved|E05011095|unknown",
            5
        )])
    );
    assert!(rows(&store, &[("assault_method", "firearm")])
        .await
        .is_empty());
    // The cell key method: each count plus the table's perturbation for
    // its (hand-counted) count and (recomputed) cell key; a 0 is absent.
    let perturbed = Disclosure::new(3);
    let table = perturbed.table().unwrap();
    let want: Vec<(String, u64)> = [
        (LAMBETH, table.publish(2, cell_key(&["c", "e"]))),
        (SOUTHWARK, table.publish(3, cell_key(&["a", "b", "d"]))),
    ]
    .into_iter()
    .filter(|(_, c)| *c > 0)
    .map(|(b, c)| (b.to_string(), c))
    .collect();
    let got: Vec<(String, u64)> = store
        .aggregate(&q(&[("group_by", "borough")]), perturbed)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.values[0].clone(), r.count.unwrap()))
        .collect();
    assert_eq!(got, want);
    // Plain suppression: Lambeth's 2 is suppressed, Southwark's 3 is not.
    let published = store
        .aggregate(&q(&[("group_by", "borough")]), Disclosure::suppress_only(3))
        .await
        .unwrap();
    assert_eq!(
        published,
        vec![
            Row {
                values: vec![LAMBETH.into()],
                count: None,
                suppressed: true,
                cell_key: cell_key(&["c", "e"]),
            },
            Row {
                values: vec![SOUTHWARK.into()],
                count: Some(3),
                suppressed: false,
                cell_key: cell_key(&["a", "b", "d"]),
            },
        ]
    );
    assert_exact(&store).await;
}

async fn duplicates_and_corrections(store: Store) {
    upload(&store, &five()).await;
    // Same content: nothing changes.
    let (_, out) = upload(&store, &five()[..2]).await;
    assert_eq!(
        out,
        BatchOutcome {
            accepted: 0,
            duplicates: 2,
            corrections: 0,
            replaced_in_upload: 0
        }
    );
    assert_eq!(
        rows(&store, &[("group_by", "borough")]).await,
        expect(&[("E09000022", 2), ("E09000028", 3)])
    );
    // Record `a` moves from Southwark to Lambeth and from March to April.
    let (_, out) = upload(&store, &[event("a", "2024-04-02", LAMBETH, 11)]).await;
    assert_eq!(out.corrections, 1);
    assert_eq!(
        rows(&store, &[("group_by", "month,borough")]).await,
        expect(&[
            ("2024-03|E09000022", 1),
            ("2024-03|E09000028", 1),
            ("2024-04|E09000022", 2),
            ("2024-04|E09000028", 1),
        ])
    );
    // Within one batch: a new record corrected twice, then re-sent.
    let f1 = event("f", "2024-05-01", SOUTHWARK, 20);
    let f2 = event("f", "2024-05-02", SOUTHWARK, 21);
    let (_, out) = upload(&store, &[f1, f2.clone(), f2]).await;
    assert_eq!(
        out,
        BatchOutcome {
            accepted: 1,
            duplicates: 1,
            corrections: 1,
            replaced_in_upload: 2
        }
    );
    assert_eq!(
        rows(&store, &[("group_by", "day"), ("month", "2024-05")]).await,
        expect(&[("2024-05-02", 1)])
    );
    // A correction in a later upload leaves the rows of `a`'s old key
    // summing to zero: that key is no figure at all, not even a zero.
    let (_, out) = upload(&store, &[event("a", "2024-04-03", LAMBETH, 12)]).await;
    assert_eq!(out.corrections, 1);
    assert_eq!(
        rows(&store, &[("group_by", "day"), ("month", "2024-04")]).await,
        expect(&[("2024-04-01", 1), ("2024-04-03", 1), ("2024-04-30", 1)])
    );
    assert_exact(&store).await;
    let report = store.recount_check().await.unwrap();
    assert_eq!(report.records, 6);
}

async fn tokens(store: Store) {
    let token = store.add_site("RJ1", "Guy's and St Thomas'").await.unwrap();
    assert_eq!(token.len(), 64);
    assert_eq!(
        store.authenticate(&token).await.unwrap().as_deref(),
        Some("RJ1")
    );
    assert_eq!(store.authenticate("nope").await.unwrap(), None);
    assert!(matches!(
        store.add_site("RJ1", "again").await,
        Err(StoreError::SiteExists(code)) if code == "RJ1"
    ));
    let second = store.issue_token("RJ1").await.unwrap();
    assert_ne!(second, token);
    assert_eq!(
        store.authenticate(&second).await.unwrap().as_deref(),
        Some("RJ1")
    );
    let other = store.add_site("RYJ", "Imperial").await.unwrap();
    let sites = store.list_sites().await.unwrap();
    assert_eq!(
        sites
            .iter()
            .map(|s| (s.code.as_str(), s.revoked))
            .collect::<Vec<_>>(),
        vec![("RJ1", false), ("RYJ", false)]
    );
    store.revoke_site("RJ1").await.unwrap();
    assert_eq!(store.authenticate(&token).await.unwrap(), None);
    assert_eq!(store.authenticate(&second).await.unwrap(), None);
    assert_eq!(
        store.authenticate(&other).await.unwrap().as_deref(),
        Some("RYJ")
    );
    assert!(store.list_sites().await.unwrap()[0].revoked);
    // Rotation after a revoke: the new token works, the old ones never again.
    let rotated = store.issue_token("RJ1").await.unwrap();
    assert_eq!(
        store.authenticate(&rotated).await.unwrap().as_deref(),
        Some("RJ1")
    );
    assert_eq!(store.authenticate(&token).await.unwrap(), None);
    assert_eq!(store.authenticate(&second).await.unwrap(), None);
    assert!(!store.list_sites().await.unwrap()[0].revoked);
    store.revoke_site("RJ1").await.unwrap();
    assert_eq!(store.authenticate(&rotated).await.unwrap(), None);
    assert!(matches!(
        store.revoke_site("XXX").await,
        Err(StoreError::NoSuchSite(_))
    ));
    assert!(matches!(
        store.issue_token("XXX").await,
        Err(StoreError::NoSuchSite(_))
    ));
    // Only the hash is stored.
    let stored: Vec<(String,)> = on_db!(&store.db, pool => {
        sqlx::query_as("SELECT token_hash FROM site_tokens").fetch_all(pool).await.unwrap()
    });
    assert!(stored
        .iter()
        .all(|(h,)| *h != token && *h != second && *h != other));
}

async fn uploads_and_errors(store: Store) {
    let id = store.begin_upload("RJ1", "jsonl").await.unwrap();
    let fresh = store.upload(&id).await.unwrap().unwrap();
    assert!(!fresh.completed);
    assert_eq!(fresh.format, "jsonl");
    store.apply_batch(&id, &five()[..3]).await.unwrap();
    store.apply_batch(&id, &five()[2..]).await.unwrap();
    let errors: Vec<RowError> = (0..7)
        .map(|i| RowError {
            row: 10 + i,
            field: (i % 2 == 0).then(|| "patient_age".to_owned()),
            code: "out_of_range".into(),
            message: format!("error {i}"),
        })
        .collect();
    let receipt = serde_json::json!({ "upload_id": id.to_string(), "accepted": 5 });
    // Errors arrive in parts: two while reading, the rest at the end.
    store.add_errors(&id, &errors[..1]).await.unwrap();
    store.add_errors(&id, &errors[1..2]).await.unwrap();
    store.add_errors(&id, &[]).await.unwrap();
    store
        .finish_upload(
            &id,
            Completion {
                rows: 13,
                rejected: 7,
                receipt: &receipt,
                errors: &errors[2..],
            },
        )
        .await
        .unwrap();
    let up = store.upload(&id).await.unwrap().unwrap();
    assert!(up.completed);
    assert_eq!(up.site_code, "RJ1");
    assert_eq!(
        (
            up.rows,
            up.accepted,
            up.rejected,
            up.duplicates,
            up.corrections
        ),
        (13, 5, 7, 1, 0)
    );
    assert_eq!(up.receipt, Some(receipt.clone()));
    assert!(up.completed_at.unwrap() >= up.received_at);
    assert_eq!(store.upload_errors(&id, 0, 100).await.unwrap(), errors);
    assert_eq!(store.upload_errors(&id, 5, 100).await.unwrap(), errors[5..]);
    assert_eq!(store.upload_errors(&id, 2, 2).await.unwrap(), errors[2..4]);
    assert!(matches!(
        store.add_errors(&id, &errors).await,
        Err(StoreError::UploadFinished(_))
    ));
    assert!(matches!(
        store.apply_batch(&id, &five()).await,
        Err(StoreError::UploadFinished(_))
    ));
    let done = Completion {
        rows: 0,
        rejected: 0,
        receipt: &receipt,
        errors: &[],
    };
    assert!(matches!(
        store.finish_upload(&id, done).await,
        Err(StoreError::UploadFinished(_))
    ));
    let unknown = UploadId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
    assert!(store.upload(&unknown).await.unwrap().is_none());
    assert!(matches!(
        store.apply_batch(&unknown, &five()).await,
        Err(StoreError::NoSuchUpload(_))
    ));
    let last = store.last_upload_per_site().await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0], ("RJ1".to_owned(), up.completed_at.unwrap()));
}

/// Several batches with repeats and corrections, more rows than one
/// statement takes: the store answers exactly as the in-memory model.
async fn matches_the_model(store: Store) {
    let first = synthetic(5_000, 1, 0);
    // Same ids, half re-sent unchanged, half changed.
    let mut second = synthetic(5_000, 2, 0);
    for (i, e) in second.iter_mut().enumerate() {
        if i % 2 == 0 {
            *e = first[i].clone();
        }
    }
    let third = synthetic(7_000, 3, 1);
    let mut model = Ledger::new();
    let id = store.begin_upload("RJ1", "csv").await.unwrap();
    for batch in [&first[..], &second[..], &third[..], &first[..100]] {
        let expected = model.apply(batch);
        let got = store.apply_batch(&id, batch).await.unwrap();
        assert_eq!(got, expected);
    }
    for pairs in [
        &[("group_by", "month,borough")][..],
        &[("group_by", "cell"), ("resolution", "7")],
        &[
            ("group_by", "cell,hour"),
            ("resolution", "10"),
            ("site", "RJ2"),
        ],
        &[
            ("group_by", "week,location_status,age_band"),
            ("from", "2023-06-01"),
            ("to", "2024-02-29"),
        ],
        &[
            ("group_by", "weekday,sex"),
            ("assault_method", "sharp_object,firearm"),
        ],
        &[("group_by", "lsoa"), ("ward", "unknown")],
        &[
            ("month", "2024-02"),
            ("weekday", "sat,sun"),
            ("hour", "unknown,0,1,2"),
        ],
    ] {
        let query = q(pairs);
        let want = query.run(model.cube(), Disclosure::NONE);
        let got = store.aggregate(&query, Disclosure::NONE).await.unwrap();
        assert_eq!(got, want, "query {pairs:?}");
    }
    let report = store.recount_check().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, model.records().count() as u64);
}

/// A batch mixing new keys, stored ones (unchanged and changed) and keys
/// repeated within it, in long runs of each, gives the model's counts:
/// SQLite inserts a new key sent once during its lookup, and plans the
/// rest; PostgreSQL plans them all.
async fn new_and_stored_keys_mixed(store: Store) {
    let old = synthetic(400, 4, 0);
    let mut model = Ledger::new();
    let id = store.begin_upload("RJ1", "csv").await.unwrap();
    assert_eq!(
        store.apply_batch(&id, &old[..200]).await.unwrap(),
        model.apply(&old[..200])
    );
    let changed = synthetic(400, 4, 1);
    let mut batch: Vec<Event> = Vec::new();
    batch.extend_from_slice(&old[200..300]); // new
    batch.extend_from_slice(&old[..100]); // stored, unchanged
    batch.extend_from_slice(&changed[100..200]); // stored, changed
    batch.extend_from_slice(&old[300..]); // new, after the limit
    batch.push(changed[350].clone()); // new above, corrected within the batch
    batch.push(old[0].clone()); // stored, sent twice
    let expected = model.apply(&batch);
    assert_eq!(
        expected,
        BatchOutcome {
            accepted: 200,
            duplicates: 101,
            corrections: 101,
            replaced_in_upload: 202
        }
    );
    assert_eq!(store.apply_batch(&id, &batch).await.unwrap(), expected);
    for pairs in [
        &[][..],
        &[("group_by", "month,site")],
        &[("group_by", "lsoa")],
    ] {
        let query = q(pairs);
        let want = query.run(model.cube(), Disclosure::NONE);
        assert_eq!(
            store.aggregate(&query, Disclosure::NONE).await.unwrap(),
            want
        );
    }
    assert_exact(&store).await;
    assert_eq!(
        store.recount_check().await.unwrap().records,
        model.records().count() as u64
    );
}

/// A process that dies between batches leaves a consistent store, and
/// re-sending the whole file counts nothing twice.
async fn crash_between_batches_then_resend(store: Store) {
    let events = synthetic(3_000, 7, 0);
    let lost = store.begin_upload("RJ1", "csv").await.unwrap();
    store.apply_batch(&lost, &events[..1_000]).await.unwrap();
    // ...the process dies here: no more batches, no finish.
    assert_exact(&store).await;
    assert_eq!(rows(&store, &[]).await, expect(&[("", 1_000)]));
    let (_, out) = upload(&store, &events).await;
    assert_eq!(
        out,
        BatchOutcome {
            accepted: 2_000,
            duplicates: 1_000,
            corrections: 0,
            replaced_in_upload: 0
        }
    );
    assert_eq!(rows(&store, &[]).await, expect(&[("", 3_000)]));
    assert_exact(&store).await;
    let lost = store.upload(&lost).await.unwrap().unwrap();
    assert!(!lost.completed);
    assert_eq!(lost.accepted, 1_000);
}

/// Concurrent uploads from several sites stay exact.
async fn concurrent_batches(store: Store) {
    let events = synthetic(4_000, 9, 0);
    let mut tasks = Vec::new();
    for part in events.chunks(500) {
        let store = store.clone();
        let part = part.to_vec();
        tasks.push(tokio::spawn(async move {
            let id = store.begin_upload("RJ1", "csv").await.unwrap();
            // Each part twice, the second time corrected.
            store.apply_batch(&id, &part).await.unwrap();
            let changed: Vec<Event> = part
                .into_iter()
                .map(|mut e| {
                    e.content_hash ^= 1;
                    e.assault_hour = None;
                    e
                })
                .collect();
            store.apply_batch(&id, &changed).await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().corrections, 500);
    }
    assert_eq!(
        rows(&store, &[("group_by", "hour")]).await,
        expect(&[("unknown", 4_000)])
    );
    assert_exact(&store).await;
}

async fn a_tampered_rollup_is_reported(store: Store) {
    upload(&store, &five()).await;
    // Every roll-up row of Lambeth (records `c` and `e`) in the first table
    // that keeps the borough, one more than its records.
    let table = Table::all()
        .iter()
        .find(|t| t.rollup.columns.contains(&Column::Borough))
        .unwrap();
    let tampered = on_db!(&store.db, pool => {
        sqlx::query(&format!("UPDATE {} SET count = count + 1 WHERE borough = $1", table.name()))
            .bind(LAMBETH)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected()
    });
    assert!(tampered >= 1);
    let report = store.recount_check().await.unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.records, 5);
    for (name, differ) in &report.rollups {
        let want = if *name == table.name() { tampered } else { 0 };
        assert_eq!(*differ, want, "{name}");
    }
}

/// Records store days as numbers from 1970-01-01, so the buckets the SQL
/// recount makes of days before it (negative numbers) and after must be
/// the buckets the batch made: Monday 1969-12-29 to Sunday 1970-01-04.
async fn days_around_the_epoch_recount_exactly(store: Store) {
    let mut events: Vec<Event> = (29..=31)
        .map(|d| event(&format!("d{d}"), &format!("1969-12-{d}"), SOUTHWARK, d))
        .chain((1..=4).map(|d| event(&format!("j{d}"), &format!("1970-01-0{d}"), SOUTHWARK, d)))
        .collect();
    events.push(event("x", "1969-12-31", LAMBETH, 99));
    upload(&store, &events).await;
    let report = store.recount_check().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        rows(&store, &[("group_by", "month")]).await,
        expect(&[("1969-12", 4), ("1970-01", 4)])
    );
    assert_eq!(
        rows(&store, &[("group_by", "day"), ("borough", LAMBETH)]).await,
        expect(&[("1969-12-31", 1)])
    );
}

/// Migration 0015 stores days as day numbers, every enumeration's value as
/// its place in the enumeration's `ALL` and each upload id once, in
/// `record_stamps`: rows written by the code before it, each enumeration
/// cycling through all its values, read back after it.
macro_rules! check_coded_records_migration {
    ($conn:expr, $migration:expr) => {{
        let n = 9;
        for i in 0..n {
            let sql = format!(
                "INSERT INTO records (site_code, record_id, content_hash, upload_id, day, hour, \
                 assault_method, location_type, age_band, sex, geocode_method, precision_m, cell, \
                 borough, ward, lsoa, rkey, hash_kind) VALUES ('RJ1', 'r{i}', {i}, '{}', '{}', \
                 NULL, '{}', '{}', '{}', '{}', '{}', NULL, NULL, NULL, NULL, NULL, {i}, 1)",
                ["u1", "u2", "u2"][i % 3],
                ["2024-03-02", "2023-01-01", "1969-12-31"][i % 3],
                AssaultMethod::ALL[i % AssaultMethod::ALL.len()].as_str(),
                LocationType::ALL[i % LocationType::ALL.len()].as_str(),
                AgeBand::ALL[i % AgeBand::ALL.len()].as_str(),
                Sex::ALL[i % Sex::ALL.len()].as_str(),
                GeocodeMethod::ALL[i % GeocodeMethod::ALL.len()].as_str(),
            );
            sqlx::raw_sql(&sql).execute(&mut *$conn).await.unwrap();
        }
        sqlx::raw_sql($migration).execute(&mut *$conn).await.unwrap();
        type Row = (String, String, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT r.record_id, s.stamp, CAST(r.day AS BIGINT), \
             CAST(r.assault_method AS BIGINT), CAST(r.location_type AS BIGINT), \
             CAST(r.age_band AS BIGINT), CAST(r.sex AS BIGINT), \
             CAST(r.geocode_method AS BIGINT) \
             FROM records AS r JOIN record_stamps AS s ON s.id = r.stamp ORDER BY r.record_id",
        )
        .fetch_all(&mut *$conn)
        .await
        .unwrap();
        let want: Vec<Row> = (0..n)
            .map(|i| {
                (
                    format!("r{i}"),
                    ["u1", "u2", "u2"][i % 3].to_owned(),
                    // Counted by hand from 1970-01-01.
                    [19_784, 19_358, -1][i % 3],
                    (i % 6) as i64,
                    (i % 8) as i64,
                    (i % 9) as i64,
                    (i % 4) as i64,
                    (i % 9) as i64,
                )
            })
            .collect();
        assert_eq!(rows, want);
        let stamps: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM record_stamps")
            .fetch_one(&mut *$conn)
            .await
            .unwrap();
        assert_eq!(stamps, (2,));
    }};
}

#[tokio::test]
async fn coded_records_migration_keeps_every_value_on_sqlite() {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    sqlite_migrations_before(&mut conn, 15).await;
    let spans = "INSERT INTO record_spans VALUES (1, 9, '1969-12-31', '2024-03-02')";
    sqlx::raw_sql(spans).execute(&mut conn).await.unwrap();
    check_coded_records_migration!(
        &mut conn,
        include_str!("../migrations/sqlite/0015_coded_records.sql")
    );
    let spans: Vec<(i64, i64, i64, i64)> = sqlx::query_as("SELECT * FROM record_spans")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(spans, vec![(1, 9, -1, 19_784)]);
}

#[tokio::test]
async fn coded_records_migration_keeps_every_value_on_postgres() {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&pg_server_url()).await.unwrap();
    // The scratch schema goes with the rollback.
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql("CREATE SCHEMA istv_coded_check; SET LOCAL search_path TO istv_coded_check")
        .execute(&mut *tx)
        .await
        .unwrap();
    postgres_migrations_before(&mut tx, 15).await;
    check_coded_records_migration!(
        &mut *tx,
        include_str!("../migrations/postgres/0015_coded_records.sql")
    );
    tx.rollback().await.unwrap();
}

// ----- running the suite on both databases -----

async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("istv.db").display());
    let store = Store::connect(&url).await.unwrap();
    test(store.clone()).await;
    store.close().await;
}

fn pg_server_url() -> String {
    std::env::var("ISTV_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    use sqlx::Connection;
    let server = pg_server_url();
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for these tests and is unreachable ({e}); \
             start it or point ISTV_TEST_PG_URL at a server"
            )
        });
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).unwrap();
    let name = format!("istv_test_{:016x}", u64::from_le_bytes(suffix));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let store = Store::connect(&with_database(&server, &name))
        .await
        .unwrap();
    // Run in a task so that a failed assertion still drops the database.
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::with_sqlite(super::$name).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::with_postgres(super::$name).await;
                }
            }
        )*
    };
}

on_both!(
    hand_counted_groups,
    duplicates_and_corrections,
    tokens,
    uploads_and_errors,
    matches_the_model,
    new_and_stored_keys_mixed,
    crash_between_batches_then_resend,
    concurrent_batches,
    a_tampered_rollup_is_reported,
    days_around_the_epoch_recount_exactly,
);

#[test]
fn database_name_is_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}

#[tokio::test]
async fn sqlite_is_durable_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("istv.db").display());
    let store = Store::connect(&url).await.unwrap();
    let (journal, sync): (String, i64) = on_db!(&store.db, pool => {
        let j: (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(pool).await.unwrap();
        let s: (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(pool).await.unwrap();
        (j.0, s.0)
    });
    assert_eq!(journal, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
    upload(&store, &five()).await;
    store.close().await;
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(rows(&again, &[]).await, expect(&[("", 5)]));
    assert_exact(&again).await;
}

/// New stores get 16 KiB pages; a store created with SQLite's default 4 KiB
/// pages (as before) opens, takes uploads and keeps its pages.
#[tokio::test]
async fn sqlite_page_size_new_and_existing_stores() {
    let page_size = |store: Store| async move {
        let n = on_db!(&store.db, pool => {
            let p: (i64,) = sqlx::query_as("PRAGMA page_size").fetch_one(pool).await.unwrap();
            p.0
        });
        store.close().await;
        n
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("new.db").display());
    assert_eq!(page_size(Store::connect(&url).await.unwrap()).await, 16_384);

    let old = dir.path().join("old.db");
    let options = SqliteConnectOptions::new()
        .filename(&old)
        .create_if_missing(true)
        .page_size(4096)
        .journal_mode(SqliteJournalMode::Wal);
    let mut c = sqlx::ConnectOptions::connect(&options).await.unwrap();
    sqlx::query("CREATE TABLE before_istv (x INTEGER)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::Connection::close(c).await.unwrap();
    let url = format!("sqlite://{}?mode=rwc", old.display());
    let store = Store::connect(&url).await.unwrap();
    upload(&store, &five()).await;
    assert_eq!(rows(&store, &[]).await, expect(&[("", 5)]));
    assert_exact(&store).await;
    assert_eq!(page_size(store).await, 4096);
}

/// Committed pages reach the database file without a commit having to copy
/// them: the WAL of this upload stays under the automatic checkpoint's 10,000
/// pages, so only the checkpointer can have moved them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpointer_moves_the_wal_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("istv.db");
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    upload(&store, &synthetic(20_000, 11, 0)).await;
    let wal = std::fs::metadata(dir.path().join("istv.db-wal"))
        .unwrap()
        .len();
    let limit = u64::from(WAL_AUTOCHECKPOINT_PAGES) * u64::from(SQLITE_PAGE_SIZE);
    assert!(wal < limit, "{wal} bytes of WAL");
    // Several checkpoint periods, generously: this waits for an event, it
    // does not time one.
    let mut waited = 0;
    while size() < before + 2_000_000 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(
        size() >= before + 2_000_000,
        "database file {} bytes, {before} before the upload",
        size()
    );
    assert_eq!(rows(&store, &[]).await, expect(&[("", 20_000)]));
    store.close().await;
}

#[test]
fn days_are_written_as_iso_dates() {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let mut out = String::from("left over");
    for (d, text) in [
        (day(2024, 2, 29), "2024-02-29"),
        (day(1999, 12, 31), "1999-12-31"),
        (day(999, 1, 5), "0999-01-05"),
        (day(0, 10, 1), "0000-10-01"),
        // Never from a validated record, but not garbled either.
        (day(12_345, 6, 7), "12345-06-07"),
        (day(-1, 6, 7), "-001-06-07"),
    ] {
        write_day(&mut out, d);
        assert_eq!(out, text);
        assert_eq!(day_text(d), text);
    }
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_echoing_them() {
    let err = Store::connect("mysql://user:secret@host/db")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported database url scheme `mysql`: expected sqlite: or postgres://"
    );
}

/// Rows a cube of the first schema holds: two keys, one emptied by a
/// correction (count 0).
const OLD_CUBE_ROWS: &str = "INSERT INTO cube VALUES \
    ('2024-03-01', 22, 'sharp_object', 'street', '18-24', 'male', 'RJ1', 'resolved', \
     1, 2, 3, 4, 'E09000028', 'E05000001', 'E01000001', 3), \
    ('2024-03-02', -1, 'body_part', 'home', 'unknown', 'female', 'RJ1', 'unresolved', \
     0, 0, 0, 0, '', '', '', 0)";

/// The second migration turns a stored cube into the log form with the same
/// counts, dropping keys a correction had emptied.
macro_rules! check_cube_migration {
    ($conn:expr, $first:expr, $second:expr) => {{
        sqlx::raw_sql($first).execute(&mut *$conn).await.unwrap();
        sqlx::query(OLD_CUBE_ROWS)
            .execute(&mut *$conn)
            .await
            .unwrap();
        sqlx::raw_sql($second).execute(&mut *$conn).await.unwrap();
        let row: (i64, i64, String, String) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(SUM(count) AS BIGINT), MIN(day), MIN(lsoa) \
             FROM cube",
        )
        .fetch_one(&mut *$conn)
        .await
        .unwrap();
        assert_eq!(row, (1, 3, "2024-03-01".into(), "E01000001".into()));
    }};
}

#[tokio::test]
async fn cube_migration_keeps_counts_on_sqlite() {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    check_cube_migration!(
        &mut conn,
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/sqlite/0002_cube_log.sql")
    );
    // The third numbers the rows and covers them with one span.
    sqlx::raw_sql(include_str!("../migrations/sqlite/0003_cube_spans.sql"))
        .execute(&mut conn)
        .await
        .unwrap();
    let seq: Vec<(i64, i64, String)> = sqlx::query_as("SELECT seq, count, day FROM cube")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(seq, vec![(1, 3, "2024-03-01".into())]);
    assert_eq!(
        spans(&mut conn, "cube_spans").await,
        vec![(1, 1, "2024-03-01", "2024-03-01")]
    );
}

/// The spans of a SQLite store: (first, last, first day, last day), the
/// days as text whether stored as text (before migration 0015) or as day
/// numbers.
async fn spans(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
) -> Vec<(i64, i64, &'static str, &'static str)> {
    use sqlx::Row as _;
    let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY 1"))
        .fetch_all(conn)
        .await
        .unwrap();
    let day = |row: &sqlx::sqlite::SqliteRow, i: usize| -> &'static str {
        let text = row.try_get::<String, _>(i).unwrap_or_else(|_| {
            let n = row.try_get::<i64, _>(i).unwrap();
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
            (epoch + chrono::Duration::days(n)).to_string()
        });
        text.leak()
    };
    rows.iter()
        .map(|r| (r.get(0), r.get(1), day(r, 2), day(r, 3)))
        .collect()
}

/// Date ranges on SQLite count the records through spans: a batch widens
/// the latest span while it is small and starts one after; a correction
/// takes its new day into the span of its record; the check finds spans
/// that miss records or overlap.
#[tokio::test]
async fn spans_cover_every_record_on_sqlite() {
    with_sqlite(|store| async move {
        let Db::Sqlite(pool) = &store.db else {
            unreachable!()
        };
        let mut conn = pool.acquire().await.unwrap();
        upload(
            &store,
            &[
                event("j1", "2024-01-10", SOUTHWARK, 1),
                event("j2", "2024-01-20", SOUTHWARK, 2),
                event("j3", "2024-01-05", LAMBETH, 3),
            ],
        )
        .await;
        assert_eq!(
            spans(&mut conn, "record_spans").await,
            vec![(1, 3, "2024-01-05", "2024-01-20")]
        );
        // 3 records < SPAN_ROWS: the next batch widens the span, past the
        // size.
        let june: Vec<Event> = (0..12_000)
            .map(|i| {
                event(
                    &format!("u{i}"),
                    &format!("2024-06-{:02}", 1 + i % 30),
                    LAMBETH,
                    9,
                )
            })
            .collect();
        upload(&store, &june).await;
        assert_eq!(
            spans(&mut conn, "record_spans").await,
            vec![(1, 12_003, "2024-01-05", "2024-06-30")]
        );
        upload(
            &store,
            &[
                event("d1", "2024-12-02", SOUTHWARK, 4),
                event("d2", "2024-12-01", SOUTHWARK, 5),
            ],
        )
        .await;
        // `j1` (record 1) moves to December: its span takes in the day.
        upload(&store, &[event("j1", "2024-12-03", SOUTHWARK, 6)]).await;
        assert_eq!(
            spans(&mut conn, "record_spans").await,
            vec![
                (1, 12_003, "2024-01-05", "2024-12-03"),
                (12_004, 12_005, "2024-12-01", "2024-12-02")
            ]
        );
        // No roll-up keeps ward with age band: these count the records.
        let by_ward = |from: &'static str, to: &'static str| {
            [("group_by", "ward,age_band"), ("from", from), ("to", to)]
        };
        for range in [
            by_ward("2024-01-01", "2024-12-31"),
            by_ward("2024-12-01", "2024-12-02"),
        ] {
            assert!(istv_aggregate::route(&q(&range), &q(&range).plan()).is_none());
        }
        let total = |rows: Vec<(String, u64)>| rows.iter().map(|(_, c)| c).sum::<u64>();
        assert_eq!(
            total(rows(&store, &by_ward("2024-01-01", "2024-12-31")).await),
            12_005
        );
        assert_eq!(
            total(rows(&store, &by_ward("2024-12-01", "2024-12-02")).await),
            2
        );
        assert_eq!(
            total(rows(&store, &by_ward("2024-01-06", "2024-01-31")).await),
            1
        );
        assert_eq!(
            rows(&store, &[("group_by", "month"), ("from", "2024-01-01")]).await,
            expect(&[("2024-01", 2), ("2024-06", 12_000), ("2024-12", 3)])
        );
        assert_exact(&store).await;
        // Spans that no longer reach December hide its records from a date
        // range counted from the records; the check names the records.
        // (Days are stored as day numbers: 20057 is 2024-11-30.)
        sqlx::query("UPDATE record_spans SET last_day = 20057")
            .execute(&mut *conn)
            .await
            .unwrap();
        assert!(rows(&store, &by_ward("2024-12-01", "2024-12-31"))
            .await
            .is_empty());
        let report = store.recount_check().await.unwrap();
        assert!(!report.is_ok());
        assert!(report.rollups.iter().all(|(_, differ)| *differ == 0));
        assert_eq!((report.unspanned_records, report.overlapping_spans), (3, 0));
        // Overlapping spans would count records twice.
        sqlx::query(
            "UPDATE record_spans SET last_day = 20060; \
             UPDATE record_spans SET last_rid = 12004 WHERE first_rid = 1",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        let report = store.recount_check().await.unwrap();
        assert_eq!((report.unspanned_records, report.overlapping_spans), (0, 1));
        assert!(!report.is_ok());
    })
    .await;
}

/// Migration 0014 drops the cube and covers the stored records with spans
/// of up to 10,000 rowids each.
#[tokio::test]
async fn record_spans_migration_covers_the_stored_records() {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    sqlite_migrations_before(&mut conn, 14).await;
    for (rid, day) in [
        (1, "2024-05-02"),
        (7, "2023-01-01"),
        (10_000, "2024-06-01"),
        (10_001, "2022-02-02"),
    ] {
        sqlx::query(
            "INSERT INTO records (rid, site_code, record_id, content_hash, upload_id, day, \
             assault_method, location_type, age_band, sex, geocode_method) \
             VALUES (?1, 'RJ1', ?1, 0, 'u', ?2, 'other', 'other', 'unknown', 'unknown', 'none')",
        )
        .bind(rid)
        .bind(day)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let m = sqlx::migrate!("./migrations/sqlite");
    let m = m.iter().find(|m| m.version == 14).unwrap();
    sqlx::raw_sql(&m.sql).execute(&mut conn).await.unwrap();
    assert_eq!(
        spans(&mut conn, "record_spans").await,
        vec![
            (1, 10_000, "2023-01-01", "2024-06-01"),
            (10_001, 10_001, "2022-02-02", "2022-02-02")
        ]
    );
    let cube: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'cube%'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(cube, (0,));
}

#[tokio::test]
async fn cube_migration_keeps_counts_on_postgres() {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&pg_server_url()).await.unwrap();
    // PostgreSQL's DDL is transactional: the scratch schema goes with the
    // rollback, whatever the outcome.
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(
        "CREATE SCHEMA istv_migration_check; SET LOCAL search_path TO istv_migration_check",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    check_cube_migration!(
        &mut *tx,
        include_str!("../migrations/postgres/0001_init.sql"),
        include_str!("../migrations/postgres/0002_cube_log.sql")
    );
    tx.rollback().await.unwrap();
}

/// Runs the SQLite migrations numbered below `version` on `conn`: a store
/// as the code before `version` left it, for tests of that migration.
async fn sqlite_migrations_before(conn: &mut sqlx::SqliteConnection, version: i64) {
    let migrator = sqlx::migrate!("./migrations/sqlite");
    for m in migrator.iter().filter(|m| m.version < version) {
        sqlx::raw_sql(&m.sql).execute(&mut *conn).await.unwrap();
    }
}

/// [`sqlite_migrations_before`] for PostgreSQL.
async fn postgres_migrations_before(conn: &mut sqlx::PgConnection, version: i64) {
    let migrator = sqlx::migrate!("./migrations/postgres");
    for m in migrator.iter().filter(|m| m.version < version) {
        sqlx::raw_sql(&m.sql).execute(&mut *conn).await.unwrap();
    }
}

mod accounts;
mod audit;
mod content_hash;
mod deadline;
mod identity;
mod offsets;
mod portal;
mod public;
mod registry;
mod rollups;
