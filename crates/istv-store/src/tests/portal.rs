//! Saved queries, sites' expected intervals, the data-quality tallies and
//! the receipts list on both databases, with tallies counted by hand.

use super::*;
use crate::{MonthCounts, NewUser, SiteTallies};
use istv_access::{Profile, Role, Scope};
use std::collections::BTreeMap;

async fn users(store: &Store) {
    store
        .add_org("VRU", "Violence Reduction Unit")
        .await
        .unwrap();
    store.add_org("MET", "Police").await.unwrap();
    for (name, org) in [("ana", "VRU"), ("bob", "VRU"), ("cat", "MET")] {
        store
            .add_user(&NewUser {
                name,
                org,
                role: Role::Analyst,
                password_hash: "$argon2id$stored-as-given",
                scope: &Scope::London,
                profile: &Profile::FULL,
                sites: &[],
            })
            .await
            .unwrap();
    }
}

/// Lets the clock move on, so that creation times differ.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

fn names(list: &[crate::SavedQuery]) -> Vec<&str> {
    list.iter().map(|q| q.name.as_str()).collect()
}

async fn saved_queries(store: Store) {
    users(&store).await;
    let mine = store
        .add_saved_query("ana", "mine", "group_by=month", false)
        .await
        .unwrap();
    assert_eq!(
        (mine.owner.as_str(), mine.org.as_str(), mine.query.as_str()),
        ("ana", "VRU", "group_by=month")
    );
    assert!(!mine.shared);
    tick().await;
    let team = store
        .add_saved_query("ana", "team", "borough=E09000001", true)
        .await
        .unwrap();
    tick().await;
    store
        .add_saved_query("bob", "bobs", "x=1", false)
        .await
        .unwrap();
    tick().await;
    store
        .add_saved_query("cat", "met", "y=2", true)
        .await
        .unwrap();
    assert!(matches!(
        store.add_saved_query("nobody", "n", "q", false).await,
        Err(StoreError::NoSuchUser(u)) if u == "nobody"
    ));

    // Own ones plus those shared in the organisation, newest first.
    let ana = store.saved_queries_for("ana", "VRU").await.unwrap();
    assert_eq!(names(&ana), ["team", "mine"]);
    assert_eq!(ana[0], team);
    let bob = store.saved_queries_for("bob", "VRU").await.unwrap();
    assert_eq!(names(&bob), ["bobs", "team"]);
    let cat = store.saved_queries_for("cat", "MET").await.unwrap();
    assert_eq!(names(&cat), ["met"]);

    // Only the owner deletes.
    assert_eq!(
        store.delete_saved_query(&team.id, "bob").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .delete_saved_query("01NOSUCHQUERY", "ana")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        names(&store.saved_queries_for("bob", "VRU").await.unwrap()),
        ["bobs", "team"]
    );
    assert_eq!(
        store.delete_saved_query(&team.id, "ana").await.unwrap(),
        Some(team.clone())
    );
    assert_eq!(
        names(&store.saved_queries_for("bob", "VRU").await.unwrap()),
        ["bobs"]
    );
    assert_eq!(
        names(&store.saved_queries_for("ana", "VRU").await.unwrap()),
        ["mine"]
    );
    assert_eq!(
        store.delete_saved_query(&team.id, "ana").await.unwrap(),
        None
    );
}

async fn site_intervals(store: Store) {
    store.add_site("RJ1", "King's").await.unwrap();
    store.add_site("RJ2", "Guy's").await.unwrap();
    store.set_site_interval("RJ2", 7).await.unwrap();
    let sites = store.list_sites().await.unwrap();
    let intervals: Vec<(&str, u32)> = sites
        .iter()
        .map(|s| (s.code.as_str(), s.expected_interval_days))
        .collect();
    assert_eq!(intervals, [("RJ1", 35), ("RJ2", 7)]);
    assert!(matches!(
        store.set_site_interval("XX9", 3).await,
        Err(StoreError::NoSuchSite(c)) if c == "XX9"
    ));
}

/// A record of site RJ1 placed by `method`, with or without an assault
/// time, an age and a sex.
fn placed(id: &str, hash: u64, method: GeocodeMethod, time: bool, age: bool, sex: bool) -> Event {
    Event {
        assault_hour: time.then_some(21),
        age_band: if age {
            AgeBand::Age25To34
        } else {
            AgeBand::Unknown
        },
        sex: if sex { Sex::Female } else { Sex::NotKnown },
        geocode_method: method,
        ..event(id, "2024-03-01", SOUTHWARK, hash)
    }
}

fn error(row: u64, code: &str) -> RowError {
    RowError {
        row,
        field: None,
        code: code.into(),
        message: "fixed text".into(),
    }
}

async fn finish(store: &Store, id: &UploadId, rows: u64, rejected: u64, errors: &[RowError]) {
    let receipt = serde_json::json!({ "upload_id": id.to_string(), "rows": rows });
    store
        .finish_upload(
            id,
            Completion {
                rows,
                rejected,
                receipt: &receipt,
                errors,
            },
        )
        .await
        .unwrap();
}

/// The tallies of the records table, recounted with SQL of its own (the
/// records store an enumeration's value as its place in its `ALL`).
async fn recount(store: &Store, site: &str) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let methods: Vec<(i64, i64)> = on_db!(&store.db, pool => {
        sqlx::query_as(
            "SELECT CAST(geocode_method AS BIGINT), CAST(COUNT(*) AS BIGINT) FROM records \
             WHERE site_code = $1 GROUP BY geocode_method",
        )
        .bind(site)
        .fetch_all(pool)
        .await
        .unwrap()
    });
    let unknown_age = AgeBand::ALL.iter().position(|b| *b == AgeBand::Unknown);
    let unknown_sex = Sex::ALL.iter().position(|s| *s == Sex::NotKnown);
    let fields: (i64, i64, i64) = on_db!(&store.db, pool => {
        sqlx::query_as(
            "SELECT CAST(SUM(CASE WHEN hour IS NULL THEN 0 ELSE 1 END) AS BIGINT), \
             CAST(SUM(CASE WHEN age_band = $2 THEN 0 ELSE 1 END) AS BIGINT), \
             CAST(SUM(CASE WHEN sex = $3 THEN 0 ELSE 1 END) AS BIGINT) \
             FROM records WHERE site_code = $1",
        )
        .bind(site)
        .bind(unknown_age.unwrap() as i32)
        .bind(unknown_sex.unwrap() as i32)
        .fetch_one(pool)
        .await
        .unwrap()
    });
    let methods = methods
        .into_iter()
        .map(|(m, n)| (GeocodeMethod::ALL[m as usize].as_str().to_owned(), n as u64))
        .collect();
    let fields = [
        ("assault_time", fields.0),
        ("age_band", fields.1),
        ("sex", fields.2),
    ]
    .into_iter()
    .filter(|(_, n)| *n != 0)
    .map(|(f, n)| (f.to_owned(), n as u64))
    .collect();
    (methods, fields)
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

async fn quality_tallies(store: Store) {
    use GeocodeMethod::*;
    // Upload 1: four new records; two rows rejected, one of them for two
    // reasons.
    let first = store.begin_upload("RJ1", "csv").await.unwrap();
    let a = placed("a", 1, LatLon, true, true, true);
    let b = placed("b", 2, PostcodeUnit, false, false, true);
    let c = placed("c", 3, Unresolved, true, false, false);
    let d = placed("d", 4, Grid, true, true, true);
    store
        .apply_batch(&first, &[a.clone(), b, c, d])
        .await
        .unwrap();
    let errors = [
        error(5, "invalid_enum"),
        error(5, "missing_required"),
        error(6, "invalid_enum"),
    ];
    store.add_errors(&first, &errors[..1]).await.unwrap();
    finish(&store, &first, 6, 2, &errors[1..]).await;

    // Upload 2: `a` re-sent unchanged, `b` corrected (now placed by the
    // gazetteer, with every field), `e` new and corrected within the same
    // batch (first by text postcode without fields, finally out of area
    // with a time and a sex); one row rejected.
    let second = store.begin_upload("RJ1", "csv").await.unwrap();
    let b2 = placed("b", 20, Gazetteer, true, true, true);
    store.apply_batch(&second, &[a, b2]).await.unwrap();
    let e1 = placed("e", 5, TextPostcode, false, false, false);
    let e2 = placed("e", 50, OutOfArea, true, false, true);
    store.apply_batch(&second, &[e1, e2]).await.unwrap();
    finish(&store, &second, 5, 1, &[error(3, "outside_uk")]).await;

    // Another site: one record, no error.
    let other = store.begin_upload("RJ2", "csv").await.unwrap();
    let x = Event {
        site_code: "RJ2".into(),
        ..placed("x", 9, LatLon, false, false, false)
    };
    store.apply_batch(&other, &[x]).await.unwrap();
    // An upload cut off before its end: its record is stored, its rows are
    // never counted as received.
    let cut = store.begin_upload("RJ2", "csv").await.unwrap();
    let y = Event {
        site_code: "RJ2".into(),
        ..placed("y", 10, Grid, true, false, false)
    };
    store.apply_batch(&cut, &[y]).await.unwrap();
    finish(&store, &other, 1, 0, &[]).await;

    // Upload 1 arrived in January 2025.
    on_db!(&store.db, pool => {
        sqlx::query("UPDATE uploads SET received_at = '2025-01-15T10:00:00.000000Z' WHERE id = $1")
            .bind(first.as_str())
            .execute(pool)
            .await
            .unwrap();
    });
    let this_month = now_text()[..7].to_owned();

    let all = store.site_tallies().await.unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["RJ1", "RJ2"]);
    let rj1 = &all["RJ1"];
    let rj1_last = store.upload(&second).await.unwrap().unwrap().completed_at;
    assert_eq!(
        *rj1,
        SiteTallies {
            months: BTreeMap::from([
                (
                    "2025-01".to_owned(),
                    MonthCounts {
                        received: 6,
                        accepted: 4,
                        rejected: 2
                    }
                ),
                (
                    this_month.clone(),
                    MonthCounts {
                        received: 5,
                        accepted: 1,
                        rejected: 1
                    }
                ),
            ]),
            // a, b (gazetteer), c, d, e (out of area); b's postcode and
            // e's text postcode left.
            methods: map(&[
                ("gazetteer", 1),
                ("grid", 1),
                ("latlon", 1),
                ("out_of_area", 1),
                ("unresolved", 1)
            ]),
            // time: a b c d e; age: a b d; sex: a b d e.
            fields: map(&[("age_band", 3), ("assault_time", 5), ("sex", 4)]),
            rejections: map(&[
                ("invalid_enum", 2),
                ("missing_required", 1),
                ("outside_uk", 1)
            ]),
            last_upload_at: rj1_last,
        }
    );
    let rj2 = &all["RJ2"];
    assert_eq!(
        rj2.months,
        BTreeMap::from([(
            this_month,
            MonthCounts {
                received: 1,
                accepted: 2,
                rejected: 0
            }
        )])
    );
    assert_eq!(rj2.methods, map(&[("grid", 1), ("latlon", 1)]));
    assert_eq!(rj2.fields, map(&[("assault_time", 1)]));
    assert!(rj2.rejections.is_empty());
    // The tallies equal a recount of the records.
    for site in ["RJ1", "RJ2"] {
        let (methods, fields) = recount(&store, site).await;
        assert_eq!(
            (methods, fields),
            (all[site].methods.clone(), all[site].fields.clone())
        );
    }
}

async fn receipts_newest_first(store: Store) {
    let one = store.begin_upload("RJ1", "csv").await.unwrap();
    finish(&store, &one, 1, 0, &[]).await;
    tick().await;
    let other = store.begin_upload("RJ2", "csv").await.unwrap();
    finish(&store, &other, 2, 0, &[]).await;
    tick().await;
    let two = store.begin_upload("RJ1", "csv").await.unwrap();
    finish(&store, &two, 3, 0, &[]).await;
    // Not finished: no receipt.
    store.begin_upload("RJ1", "csv").await.unwrap();
    let ids = |list: Vec<serde_json::Value>| -> Vec<String> {
        list.iter()
            .map(|r| r["upload_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let rj1 = ["RJ1".to_string()];
    assert_eq!(
        ids(store.receipts(&rj1, 50).await.unwrap()),
        [two.to_string(), one.to_string()]
    );
    assert_eq!(
        ids(store.receipts(&rj1, 1).await.unwrap()),
        [two.to_string()]
    );
    let both = ["RJ1".to_string(), "RJ2".to_string()];
    assert_eq!(
        ids(store.receipts(&both, 50).await.unwrap()),
        [two.to_string(), other.to_string(), one.to_string()]
    );
    assert_eq!(
        ids(store.receipts(&both, 2).await.unwrap()),
        [two.to_string(), other.to_string()]
    );
    assert!(store
        .receipts(&["XX9".to_string()], 5)
        .await
        .unwrap()
        .is_empty());
}

on_both!(
    saved_queries,
    site_intervals,
    quality_tallies,
    receipts_newest_first
);
