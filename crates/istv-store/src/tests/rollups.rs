//! Roll-ups on both databases: every table equals the in-memory model's
//! after random inserts, re-sends and corrections in random batches, and
//! random queries give the figures of a brute-force recount of the records.

use super::*;
use istv_aggregate::rollup::MAX_COLUMNS;
use istv_aggregate::{route, Cube, Dimension, RollupSet, Table, Value};
use sqlx::Row as _;
use std::collections::HashMap;

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every non-zero row of a store's roll-up table, as the model holds it.
async fn stored_rows(store: &Store, table: &Table) -> HashMap<(i32, [Value; MAX_COLUMNS]), Tally> {
    let cols: Vec<&str> = table.rollup.columns.iter().map(|c| c.name()).collect();
    let mut sql = String::from("SELECT bucket");
    for c in &cols {
        sql.push_str(", ");
        sql.push_str(c);
    }
    sql.push_str(&format!(
        ", count, keysum FROM {} WHERE count <> 0 OR keysum <> 0",
        table.name()
    ));
    let mut out = HashMap::new();
    on_db!(&store.db, pool => {
        for row in sqlx::query(&sql).fetch_all(pool).await.unwrap() {
            let mut values: [Value; MAX_COLUMNS] = std::array::from_fn(|_| Value::Int(0));
            for (i, c) in table.rollup.columns.iter().enumerate() {
                values[i] = if c.codes().is_some() {
                    let code = row.try_get::<i64, _>(i + 1).unwrap();
                    Value::Text(c.codes().unwrap()[code as usize].to_owned())
                } else if c.is_int() {
                    Value::Int(row.try_get::<i64, _>(i + 1).unwrap())
                } else {
                    Value::Text(row.try_get::<String, _>(i + 1).unwrap())
                };
            }
            let n = cols.len() + 1;
            let tally = Tally {
                count: row.try_get(n).unwrap(),
                keysum: row.try_get(n + 1).unwrap(),
            };
            let bucket = row.try_get::<i64, _>(0).unwrap() as i32;
            out.insert((bucket, values), tally);
        }
    });
    out
}

async fn assert_tables_match(store: &Store, model: &RollupSet) {
    for table in Table::all() {
        let want: HashMap<(i32, [Value; MAX_COLUMNS]), Tally> = model
            .rows(*table)
            .map(|(b, v, t)| ((b, v.clone()), t))
            .collect();
        let got = stored_rows(store, table).await;
        assert_eq!(got.len(), want.len(), "rows of {}", table.name());
        assert!(got == want, "{} differs from the model", table.name());
    }
}

/// A correction of `e`: other content, and a changed day, hour, method and
/// place, so that it moves between roll-up rows.
fn corrected(e: &Event, r: &mut Rng) -> Event {
    let mut c = e.clone();
    c.content_hash = r.next();
    c.assault_date = e.assault_date + chrono::Duration::days(r.below(90) as i64 - 45);
    c.assault_hour = [None, Some(r.below(24) as u8)][r.below(2)];
    c.method = AssaultMethod::ALL[r.below(AssaultMethod::ALL.len())];
    if r.below(3) == 0 {
        c.borough = Some(format!("E090000{:02}", 1 + r.below(33)).into());
        c.cell = None;
    }
    c
}

/// Random batches of new records, unchanged re-sends and corrections, in
/// random order and sizes; after every batch the store's roll-ups equal the
/// model's, and at the end `recount_check` (roll-ups against the records,
/// in SQL) passes.
async fn rollups_follow_random_batches(store: Store) {
    let pool = synthetic(3_000, 21, 0);
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut model = Ledger::new();
    let mut sent: Vec<Event> = Vec::new();
    let id = store.begin_upload("RJ1", "csv").await.unwrap();
    let mut next_new = 0;
    for round in 0..12 {
        let size = [1, 7, 64, 300, 900][r.below(5)];
        let mut batch = Vec::with_capacity(size);
        for _ in 0..size {
            match r.below(4) {
                0 | 1 if next_new < pool.len() => {
                    batch.push(pool[next_new].clone());
                    next_new += 1;
                }
                2 if !sent.is_empty() => batch.push(sent[r.below(sent.len())].clone()),
                _ if !sent.is_empty() => {
                    let c = corrected(&sent[r.below(sent.len())], &mut r);
                    batch.push(c);
                }
                _ => {}
            }
        }
        let want = model.apply(&batch);
        let got = store.apply_batch(&id, &batch).await.unwrap();
        assert_eq!(got, want, "round {round}");
        sent = model.records().cloned().collect();
        sent.sort_by_key(Event::record_key);
        assert_tables_match(&store, model.rollups()).await;
    }
    assert!(model.records().count() > 500);
    // Independently of the batches: the model's roll-ups are those of a
    // recount of its records.
    assert_eq!(
        model.rollups(),
        &RollupSet::of_cube(&Cube::recount(model.records()))
    );
    let report = store.recount_check().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.rollups);
    assert_eq!(report.rollups.len(), Table::all().len());
}

/// The label a record has for a dimension, at a resolution.
fn label_of(e: &Event, d: Dimension, res: &str) -> String {
    let query = Query::from_pairs([("resolution", res)])
        .unwrap()
        .with_group_by(&[d]);
    query.run(&Cube::recount([e]), Disclosure::NONE)[0].values[0].clone()
}

/// Stores 4,000 records over two years, then corrects every fifth, so that
/// the roll-ups hold rows moved by -1s and records were updated in place;
/// the records as they now are.
async fn store_corrected_records(store: &Store, r: &mut Rng) -> Vec<Event> {
    let mut events = synthetic(4_000, 31, 0);
    let corrections: Vec<Event> = events.iter().step_by(5).map(|e| corrected(e, r)).collect();
    let id = store.begin_upload("RJ1", "csv").await.unwrap();
    for part in events.chunks(1_000) {
        store.apply_batch(&id, part).await.unwrap();
    }
    store.apply_batch(&id, &corrections).await.unwrap();
    for c in &corrections {
        let at = events
            .iter()
            .position(|e| e.record_key() == c.record_key())
            .unwrap();
        events[at] = c.clone();
    }
    events
}

/// Random queries, any grouping and filters, on roll-ups or the records, give
/// the figures and cell keys of a brute-force recount of the records.
async fn random_queries_match_a_recount(store: Store) {
    let mut r = Rng(77);
    let events = store_corrected_records(&store, &mut r).await;
    let truth = Cube::recount(&events);
    let (mut routed, mut from_records) = (0, 0);
    for i in 0..150 {
        let res = (7 + r.below(4)).to_string();
        let mut dims = Dimension::ALL.to_vec();
        let mut pairs: Vec<(String, String)> = vec![("resolution".into(), res.clone())];
        let groups: Vec<&str> = (0..r.below(3))
            .map(|_| dims.remove(r.below(dims.len())).name())
            .collect();
        pairs.push(("group_by".into(), groups.join(",")));
        for _ in 0..r.below(3) {
            let d = dims.remove(r.below(dims.len()));
            let e = &events[r.below(events.len())];
            pairs.push((d.name().into(), label_of(e, d, &res)));
        }
        let start = NaiveDate::from_ymd_opt(2022, 12, 1).unwrap();
        let from = start + chrono::Duration::days(r.below(760) as i64);
        let to = from + chrono::Duration::days(r.below(400) as i64);
        match r.below(4) {
            0 => {}
            1 => pairs.push(("from".into(), day_text(from))),
            2 => pairs.push(("to".into(), day_text(to))),
            _ => {
                pairs.push(("from".into(), day_text(from)));
                pairs.push(("to".into(), day_text(to)));
            }
        }
        let query = Query::from_pairs(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap();
        if route(&query, &query.plan()).is_some() {
            routed += 1;
        } else {
            from_records += 1;
        }
        let want = query.run(&truth, Disclosure::NONE);
        let got = store.aggregate(&query, Disclosure::NONE).await.unwrap();
        assert_eq!(got, want, "query {i}: {pairs:?}");
        let keys = |rows: &[Row]| rows.iter().map(|r| r.cell_key).collect::<Vec<_>>();
        assert_eq!(keys(&got), keys(&want), "cell keys of query {i}: {pairs:?}");
    }
    // Both paths were tried.
    assert!(
        routed > 20 && from_records > 20,
        "{routed} routed, {from_records} from the records"
    );
}

/// The portal's views (web/src/main.js: map hexagons at resolutions 7 and
/// 8, monthly trend from a year earlier, hour x weekday, by method, by
/// place, top boroughs now and in the previous period), unfiltered, under
/// each single filter it offers and under every two of them (a borough
/// among them), are answered by roll-ups (but resolution 8 under filters
/// other than one method), with the figures and cell keys of a brute-force
/// recount of the records.
async fn portal_views_match_a_recount(store: Store) {
    let mut r = Rng(78);
    let events = store_corrected_records(&store, &mut r).await;
    let truth = Cube::recount(&events);
    let dims = [
        Dimension::AssaultMethod,
        Dimension::LocationType,
        Dimension::AgeBand,
        Dimension::Sex,
        Dimension::Site,
        Dimension::Borough,
    ];
    let mut filters: Vec<Vec<(Dimension, String)>> = vec![vec![]];
    for d in &dims[..5] {
        // Two values each, from two records.
        for e in [
            &events[r.below(events.len())],
            &events[r.below(events.len())],
        ] {
            filters.push(vec![(*d, label_of(e, *d, "7"))]);
        }
    }
    let singles = filters.len();
    let placed: Vec<&Event> = events.iter().filter(|e| e.borough.is_some()).collect();
    for (i, a) in dims.iter().enumerate() {
        for b in &dims[i + 1..] {
            // Both values from one record, so that the pair has figures.
            let e = placed[r.below(placed.len())];
            filters.push(vec![(*a, label_of(e, *a, "7")), (*b, label_of(e, *b, "7"))]);
        }
    }
    let year = [("from", "2024-01-01"), ("to", "2024-12-31")];
    let views: Vec<Vec<(&str, &str)>> = vec![
        vec![("group_by", "cell"), ("resolution", "7"), year[0], year[1]],
        vec![("group_by", "cell"), ("resolution", "8"), year[0], year[1]],
        vec![("group_by", "month"), ("from", "2023-01-01"), year[1]],
        vec![("group_by", "hour,weekday"), year[0], year[1]],
        vec![("group_by", "assault_method"), year[0], year[1]],
        vec![("group_by", "location_type"), year[0], year[1]],
        vec![("group_by", "borough"), year[0], year[1]],
        vec![
            ("group_by", "borough"),
            ("from", "2023-01-01"),
            ("to", "2023-12-31"),
        ],
    ];
    let mut nonzero = vec![0; filters.len()];
    for (f, filter) in filters.iter().enumerate() {
        for view in &views {
            let mut pairs: Vec<(&str, &str)> = view.clone();
            pairs.extend(filter.iter().map(|(d, v)| (d.name(), v.as_str())));
            let query = Query::from_pairs(pairs.iter().copied()).unwrap();
            let cells8 = pairs.contains(&("resolution", "8"));
            let only_method = filter.iter().all(|(d, _)| *d == Dimension::AssaultMethod);
            // Hexagons at resolution 8 are kept with the method only.
            if !cells8 || (only_method && filter.len() <= 1) {
                assert!(
                    route(&query, &query.plan()).is_some(),
                    "not routed: {pairs:?}"
                );
            }
            let want = query.run(&truth, Disclosure::NONE);
            let got = store.aggregate(&query, Disclosure::NONE).await.unwrap();
            assert_eq!(got, want, "{pairs:?}");
            let keys = |rows: &[Row]| rows.iter().map(|r| r.cell_key).collect::<Vec<_>>();
            assert_eq!(keys(&got), keys(&want), "cell keys of {pairs:?}");
            nonzero[f] += usize::from(!want.is_empty());
        }
    }
    // Each single filter's views have figures, and each pair's trend at
    // least (its record is in it).
    assert_eq!(nonzero[..singles], vec![views.len(); singles]);
    assert!(nonzero[singles..].iter().all(|n| *n > 0), "{nonzero:?}");
}

/// A roll-up table dropped behind the store's back is rebuilt from the
/// records when the store next connects, and a changed row is reported.
async fn rollups_are_rebuilt_and_checked(store: Store) {
    let events = synthetic(2_000, 41, 0);
    upload(&store, &events).await;
    let mut model = Ledger::new();
    model.apply(&events);
    let table = Table::all()[3];
    on_db!(&store.db, pool => {
        sqlx::query(&format!("UPDATE {} SET count = count + 1 WHERE bucket = (SELECT MIN(bucket) FROM {})", table.name(), table.name()))
            .execute(pool)
            .await
            .unwrap();
    });
    let report = store.recount_check().await.unwrap();
    assert!(!report.is_ok());
    let differ: Vec<&(String, u64)> = report.rollups.iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(differ.len(), 1, "{:?}", report.rollups);
    assert_eq!(differ[0].0, table.name());
    // Forget it was built: the next connect builds it again.
    on_db!(&store.db, pool => {
        sqlx::query("DELETE FROM rollups_built WHERE name = $1")
            .bind(table.name())
            .execute(pool)
            .await
            .unwrap();
    });
    store.ensure_rollups().await.unwrap();
    assert!(store.recount_check().await.unwrap().is_ok());
    assert_tables_match(&store, model.rollups()).await;
}

on_both!(
    rollups_follow_random_batches,
    random_queries_match_a_recount,
    portal_views_match_a_recount,
    rollups_are_rebuilt_and_checked,
);
