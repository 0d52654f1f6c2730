//! Attacks on the published figures, on a generated feed: each tries to
//! learn a small count exactly, and each is measured against what the
//! design guarantees.
//!
//! The guarantee behind the differencing attacks: an attacker who
//! subtracts two published figures `T' = T + e(T, K_T)` and
//! `C' = C + e(C, K_C)` (where `T - C` is the small count `x` sought)
//! gets `x + e(T, K_T) - e(C, K_C)`. `K_T = K_C + K_x` modulo 4096, and
//! `K_x`, a sum of secret uniform record keys, is uniform and independent
//! of `K_C`, so `K_T` and `K_C` are independent and uniform. Hence the
//! attacker is exactly right with probability `sum_v q_T(v) q_C(v)`,
//! where `q_i` is the distribution that the table's row for `i` realises
//! over the 4096 keys; when both counts are at least `js + D + 1` both
//! rows are the last one and the chance is `sum_v q(v)^2` (4727692 / 4096², 28.2%,
//! for D = 3, V = 1), and the attacker cannot tell which answers are the
//! exact ones.

use super::*;
use crate::cube::{Ledger, Tally};
use crate::event::{DisclosureKeys, Event, GeocodeMethod};
use crate::query::{Query, Row};
use chrono::{Datelike, Duration, NaiveDate};
use h3o::{CellIndex, LatLng, Resolution};
use istv_core::generate::{Rng, SITES};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use std::collections::{BTreeMap, HashMap};

const BOROUGHS: usize = 33;

fn borough_code(i: usize) -> String {
    format!("E090000{:02}", i + 1)
}

/// A generated year of records: the generator's ED sites and random
/// stream, a typical weapon mix (firearms rare), points scattered around
/// each site, record keys as a deployment assigns them.
fn feed(n: usize) -> Vec<Event> {
    let keys = DisclosureKeys::new(0xd15c);
    let mut r = Rng::new(14);
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let methods = [
        AssaultMethod::BodyPart,
        AssaultMethod::BluntObject,
        AssaultMethod::SharpObject,
        AssaultMethod::Firearm,
        AssaultMethod::Other,
        AssaultMethod::NotKnown,
    ];
    let sexes = [Sex::Female, Sex::Male, Sex::Other, Sex::NotKnown];
    (0..n)
        .map(|i| {
            let site = SITES[r.below(SITES.len() as u64) as usize];
            let id = format!("G{i:07}");
            let lat = site.2 + 0.02 * r.normal();
            let lon = site.3 + 0.03 * r.normal();
            let cell = LatLng::new(lat, lon).unwrap().to_cell(Resolution::Ten);
            Event {
                site_code: site.0.into(),
                record_id: id.clone(),
                content_hash: i as u64,
                legacy_hash: i as u64,
                assault_date: start + Duration::days(r.below(366) as i64),
                assault_hour: Some(r.below(24) as u8),
                method: methods[r.weighted(&[50, 15, 20, 1, 5, 9])],
                location_type: LocationType::Street,
                age_band: AgeBand::ALL[r.below(AgeBand::ALL.len() as u64) as usize],
                sex: sexes[r.weighted(&[30, 66, 1, 3])],
                geocode_method: GeocodeMethod::LatLon,
                precision_m: Some(10),
                cell: Some(cell),
                borough: Some(borough_code(r.below(BOROUGHS as u64) as usize).into()),
                ward: None,
                lsoa: None,
                disclosure_key: keys.key(site.0, &id),
            }
        })
        .collect()
}

/// [`feed`] and a ledger of it.
fn feed_ledger(n: usize) -> (Vec<Event>, Ledger) {
    let events = feed(n);
    let mut ledger = Ledger::new();
    ledger.apply(&events);
    (events, ledger)
}

/// The exact tally of the events that satisfy `keep`, recounted.
fn truth<'a>(events: &'a [Event], keep: impl Fn(&&'a Event) -> bool) -> Tally {
    let mut t = Tally::default();
    for e in events.iter().filter(keep) {
        t += Tally::of(e);
    }
    t
}

/// The one published figure of an ungrouped query (0 when absent).
fn figure(ledger: &Ledger, d: &Disclosure, pairs: &[(&str, &str)]) -> u64 {
    let rows = Query::from_pairs(pairs.iter().copied())
        .unwrap()
        .run(ledger.cube(), d.clone());
    assert!(rows.len() <= 1);
    rows.first().map_or(0, |r| r.count.expect("not suppressed"))
}

fn month_range(m: u32) -> (String, String) {
    let first = NaiveDate::from_ymd_opt(2024, m, 1).unwrap();
    let last = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap()
        .pred_opt()
        .unwrap();
    (first.to_string(), last.to_string())
}

/// `sum_v q_a(v) q_b(v)`: the chance that rows `a` and `b` of the table
/// give the same perturbation to independent uniform keys.
fn collision(t: &Ptable, a: u64, b: u64) -> f64 {
    let qa: HashMap<i64, f64> = t.row(a).key_probabilities().into_iter().collect();
    t.row(b)
        .key_probabilities()
        .into_iter()
        .map(|(v, q)| q * qa.get(&v).copied().unwrap_or(0.0))
        .sum()
}

#[derive(Default)]
struct Attack {
    recovered: usize,
    tried: usize,
    expected: f64,
}

impl Attack {
    /// One try: the attacker takes `rest` from `total` to learn `x`.
    fn difference(&mut self, total: u64, rest: u64, x: u64) {
        self.tried += 1;
        if total.checked_sub(rest) == Some(x) {
            self.recovered += 1;
        }
    }

    fn share(&self) -> f64 {
        self.recovered as f64 / self.tried as f64
    }

    /// The measured share is the derived chance, up to four standard
    /// errors (the feed is fixed, so this never flakes; it checks that
    /// nothing leaks beyond the derivation).
    fn assert_within_derivation(&self, what: &str) {
        let p = self.expected / self.tried as f64;
        let sigma = (p * (1.0 - p) / self.tried as f64).sqrt();
        println!(
            "{what}: {} of {} recovered exactly ({:.1}%), derived {:.1}% +- {:.1}%",
            self.recovered,
            self.tried,
            100.0 * self.share(),
            100.0 * p,
            400.0 * sigma
        );
        assert!(
            (self.share() - p).abs() <= 4.0 * sigma,
            "{what}: share {} vs derived {p}",
            self.share()
        );
    }
}

const METHODS: [&str; 6] = [
    "body_part",
    "blunt_object",
    "sharp_object",
    "firearm",
    "other",
    "not_known",
];

/// Attack 1, total minus the sum of the published siblings (asked for as
/// one figure, a filter listing every other method): for every borough x
/// month x method cell of 1 to 4, the borough's month total minus the
/// month's other methods there.
fn total_minus_siblings(events: &[Event], ledger: &Ledger, d: &Disclosure) -> Attack {
    let table = d.table();
    let mut a = Attack::default();
    for m in 1..=12u32 {
        let (from, to) = month_range(m);
        for b in 0..BOROUGHS {
            let code = borough_code(b);
            let in_cell = |e: &&Event| {
                e.assault_date.month() == m && e.borough.as_deref() == Some(code.as_str())
            };
            for method in METHODS {
                let x = truth(events, |e| in_cell(e) && e.method.as_str() == method).count;
                if !(1..5).contains(&x) {
                    continue;
                }
                let others: Vec<&str> = METHODS.iter().copied().filter(|o| *o != method).collect();
                let others = others.join(",");
                let base = [
                    ("from", from.as_str()),
                    ("to", to.as_str()),
                    ("borough", &code),
                ];
                let total = figure(ledger, d, &base);
                let mut with_others = base.to_vec();
                with_others.push(("assault_method", &others));
                let rest = figure(ledger, d, &with_others);
                let true_total = truth(events, in_cell).count as u64;
                // The feed's months are big enough that neither figure is
                // small, so plain suppression publishes both.
                assert!(true_total - x as u64 >= 8, "{code} {m}");
                a.difference(total, rest, x as u64);
                if let Some(t) = table {
                    a.expected += collision(t, true_total, true_total - x as u64);
                }
            }
        }
    }
    a
}

#[test]
fn total_minus_published_siblings_recovers_every_suppressed_cell_before_and_few_after() {
    let (events, ledger) = feed_ledger(20_000);
    let before = total_minus_siblings(&events, &ledger, &Disclosure::suppress_only(5));
    println!(
        "plain suppression: {} of {} recovered exactly",
        before.recovered, before.tried
    );
    assert!(before.tried > 300, "{} cells of 1-4", before.tried);
    assert_eq!(
        before.recovered, before.tried,
        "100% under plain suppression"
    );
    let d = Disclosure::default();
    let after = total_minus_siblings(&events, &ledger, &d);
    assert_eq!(after.tried, before.tried);
    // Every total and complement here is at least js + D + 1 = 8, so the
    // derived chance is the last row's sum of squares for every cell.
    let t = d.table().unwrap();
    let last: f64 = t
        .rows()
        .last()
        .unwrap()
        .key_probabilities()
        .iter()
        .map(|(_, q)| q * q)
        .sum();
    assert!((after.expected / after.tried as f64 - last).abs() < 1e-12);
    // By hand from the last row's key ranges (18, 223, 991, 1632, 991,
    // 223, 18 keys): (2·18² + 2·223² + 2·991² + 1632²) / 4096².
    assert_eq!(last, 4_727_692.0 / 16_777_216.0);
    after.assert_within_derivation("cell key method, total minus siblings");
}

#[test]
fn a_range_minus_the_range_one_day_shorter() {
    let (events, ledger) = feed_ledger(20_000);
    let d = Disclosure::default();
    let t = d.table().unwrap();
    let mut a = Attack::default();
    for m in 1..=12u32 {
        let (from, to) = month_range(m);
        let shorter =
            (NaiveDate::parse_from_str(&to, "%Y-%m-%d").unwrap() - Duration::days(1)).to_string();
        let last_day = NaiveDate::parse_from_str(&to, "%Y-%m-%d").unwrap();
        for b in 0..BOROUGHS {
            let code = borough_code(b);
            let here = |e: &&Event| e.borough.as_deref() == Some(code.as_str());
            let x = truth(&events, |e| here(e) && e.assault_date == last_day).count as u64;
            let whole = truth(&events, |e| here(e) && e.assault_date.month() == m).count as u64;
            let long = figure(
                &ledger,
                &d,
                &[("from", &from), ("to", &to), ("borough", &code)],
            );
            let short = figure(
                &ledger,
                &d,
                &[("from", &from), ("to", &shorter), ("borough", &code)],
            );
            a.difference(long, short, x);
            // With no record on the last day the two figures are the same
            // cell, and the difference is an exact 0.
            a.expected += if x == 0 {
                1.0
            } else {
                collision(t, whole, whole - x)
            };
        }
    }
    a.assert_within_derivation("range minus a day");
    // At the finest places the shorter range is refused.
    let ward = Query::from_pairs([
        ("group_by", "ward"),
        ("from", "2024-03-01"),
        ("to", "2024-03-30"),
    ])
    .unwrap();
    assert!(matches!(
        ward.check_whole_periods(),
        Err(crate::QueryError::WholePeriodsOnly { .. })
    ));
}

#[test]
fn a_filter_minus_its_complement() {
    let (events, ledger) = feed_ledger(20_000);
    let d = Disclosure::default();
    let t = d.table().unwrap();
    let mut a = Attack::default();
    // Women treated at one site in one month: the month's total there
    // minus everyone else's figure.
    for m in 1..=12u32 {
        let (from, to) = month_range(m);
        for site in SITES {
            let here = |e: &&Event| e.site_code == site.0 && e.assault_date.month() == m;
            let x = truth(&events, |e| here(e) && e.sex == Sex::Other).count as u64;
            let whole = truth(&events, here).count as u64;
            if x == 0 {
                continue;
            }
            let base = [
                ("from", from.as_str()),
                ("to", to.as_str()),
                ("site", site.0),
            ];
            let total = figure(&ledger, &d, &base);
            let mut rest = base.to_vec();
            rest.push(("sex", "female,male,not_known"));
            let rest = figure(&ledger, &d, &rest);
            a.difference(total, rest, x);
            a.expected += collision(t, whole, whole - x);
        }
    }
    assert!(a.tried > 50);
    a.assert_within_derivation("filter minus complement");
}

#[test]
fn the_same_cell_gets_the_same_figure_whichever_query_asks() {
    let (events, ledger) = feed_ledger(5_000);
    let d = Disclosure::default();
    let t = d.table().unwrap();
    let grouped = Query::from_pairs([("group_by", "month,borough")]).unwrap();
    let first = grouped.run(ledger.cube(), d.clone());
    assert_eq!(first, grouped.run(ledger.cube(), d.clone()), "repeatable");
    // Through the roll-ups, the same figures.
    let rolled = ledger
        .rollups()
        .query(&grouped)
        .expect("a roll-up covers it");
    assert_eq!(grouped.fold(rolled, d.clone()), first);
    let mut checked = 0;
    for m in [2u32, 7] {
        for b in [0usize, 5, 20] {
            let code = borough_code(b);
            let month = format!("2024-{m:02}");
            let exact = truth(&events, |e| {
                e.assault_date.month() == m && e.borough.as_deref() == Some(code.as_str())
            });
            let want = t.publish(exact.count as u64, exact.cell_key());
            // As a filter, as a date range, and as a row of the grouping.
            let (from, to) = month_range(m);
            assert_eq!(
                figure(&ledger, &d, &[("month", &month), ("borough", &code)]),
                want
            );
            assert_eq!(
                figure(
                    &ledger,
                    &d,
                    &[("from", &from), ("to", &to), ("borough", &code)]
                ),
                want
            );
            let row = first
                .iter()
                .find(|r| r.values == [month.clone(), code.clone()])
                .and_then(|r| r.count)
                .unwrap_or(0);
            assert_eq!(row, want);
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

/// The records whose cell lies in `cell`.
fn members<'a>(cell: CellIndex) -> impl Fn(&&'a Event) -> bool {
    let res = cell.resolution();
    move |e: &&Event| e.cell.and_then(|c| c.parent(res)) == Some(cell)
}

fn exact_cells(ledger: &Ledger, resolution: &str) -> Vec<(CellIndex, Tally)> {
    let rows: Vec<Row> = Query::from_pairs([("group_by", "cell"), ("resolution", resolution)])
        .unwrap()
        .run(ledger.cube(), Disclosure::NONE);
    rows.iter()
        .filter_map(|r| {
            let cell = r.values[0].parse::<CellIndex>().ok()?;
            Some((
                cell,
                Tally {
                    count: r.count.unwrap() as i64,
                    keysum: i64::from(r.cell_key),
                },
            ))
        })
        .collect()
}

#[test]
fn an_h3_parent_is_perturbed_as_one_cell_not_as_the_sum_of_its_children() {
    let (events, ledger) = feed_ledger(5_000);
    let d = Disclosure::default();
    let t = d.table().unwrap();
    let run = |r: &str| {
        Query::from_pairs([("group_by", "cell"), ("resolution", r)])
            .unwrap()
            .run(ledger.cube(), d.clone())
    };
    let parents = run("8");
    let children = run("9");
    let mut differ = 0;
    for p in &parents {
        let cell: CellIndex = p.values[0].parse().unwrap();
        let exact = truth(&events, members(cell));
        assert_eq!(
            p.count,
            Some(t.publish(exact.count as u64, exact.cell_key()))
        );
        let sum: u64 = children
            .iter()
            .filter(|c| {
                c.values[0]
                    .parse::<CellIndex>()
                    .unwrap()
                    .parent(cell.resolution())
                    == Some(cell)
            })
            .map(|c| c.count.unwrap())
            .sum();
        if sum != p.count.unwrap() {
            differ += 1;
        }
    }
    // The children's figures do not add up to the parent's in general: the
    // parent's perturbation comes from its own key, so adding up children
    // does not cancel it.
    assert!(differ * 2 > parents.len(), "{differ} of {}", parents.len());
}

/// The merge recomputed by brute force from published values only: the
/// candidate cells' populations are recounted from the records, and each
/// decision asks only for the published value of a population.
fn brute_force_merge(events: &[Event], d: &Disclosure, res: Resolution) -> Vec<(CellIndex, u64)> {
    let published = |cell: CellIndex| {
        let t = truth(events, members(cell));
        d.publish(t.count as u64, t.cell_key())
    };
    let mut shown: Vec<CellIndex> = {
        let mut v: Vec<CellIndex> = events.iter().filter_map(|e| e.cell?.parent(res)).collect();
        v.sort();
        v.dedup();
        v
    };
    for level in (MERGE_FLOOR + 1..=u8::from(res)).rev() {
        let pr = Resolution::try_from(level - 1).unwrap();
        let mut groups: BTreeMap<CellIndex, Vec<CellIndex>> = BTreeMap::new();
        for c in &shown {
            if u8::from(c.resolution()) >= level {
                groups.entry(c.parent(pr).unwrap()).or_default().push(*c);
            }
        }
        for (parent, cells) in groups {
            let small = cells
                .iter()
                .any(|c| u8::from(c.resolution()) == level && d.is_below_threshold(published(*c)));
            if small {
                shown.retain(|c| !cells.contains(c));
                shown.push(parent);
            }
        }
    }
    let mut out: Vec<(CellIndex, u64)> = shown
        .into_iter()
        .map(|c| (c, published(c).count.unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    out.sort();
    out
}

#[test]
fn merged_map_cells_are_true_whole_cells_decided_on_published_values() {
    let (events, ledger) = feed_ledger(3_000);
    let d = Disclosure::default();
    let t = d.table().unwrap();
    for (r, res) in [("10", Resolution::Ten), ("9", Resolution::Nine)] {
        let shown = merge_cells(exact_cells(&ledger, r), &d);
        // Each shown cell: the published value of exactly its records.
        for c in &shown {
            let exact = truth(&events, members(c.cell));
            assert_eq!(
                c.published.count,
                Some(t.publish(exact.count as u64, exact.cell_key()))
            );
            assert!(!c.published.suppressed);
            assert!(c.published.count.unwrap() >= 5 || c.resolution == MERGE_FLOOR);
            assert_eq!(c.resolution, u8::from(c.cell.resolution()));
        }
        // No two overlap.
        for a in &shown {
            for b in &shown {
                if a.cell != b.cell && a.resolution <= b.resolution {
                    assert_ne!(b.cell.parent(a.cell.resolution()), Some(a.cell));
                }
            }
        }
        // Merged: some cells are coarser than asked for.
        assert!(shown.iter().any(|c| c.resolution < u8::from(res)));
        // The shape and values follow from published values alone.
        let brute = brute_force_merge(&events, &d, res);
        let got: Vec<(CellIndex, u64)> = shown
            .iter()
            .map(|c| (c.cell, c.published.count.unwrap()))
            .collect();
        assert_eq!(got, brute, "resolution {r}");
    }
    // Exact counts merge nothing.
    let exact = merge_cells(exact_cells(&ledger, "10"), &Disclosure::NONE);
    assert!(exact.iter().all(|c| c.resolution == 10));
    let n: u64 = exact.iter().map(|c| c.published.count.unwrap()).sum();
    assert_eq!(n, events.len() as u64);
}

#[test]
fn no_figure_is_flagged_and_none_lies_from_one_to_k_minus_one() {
    // Under the cell key method the flag is never set: a flag would say
    // "1 to 4" about a figure, which the published value does not.
    let (_, ledger) = feed_ledger(5_000);
    let d = Disclosure::default();
    let rows = Query::from_pairs([("group_by", "day,borough,sex")])
        .unwrap()
        .run(ledger.cube(), d.clone());
    assert!(!rows.is_empty());
    let exact = Query::from_pairs([("group_by", "day,borough,sex")])
        .unwrap()
        .run(ledger.cube(), Disclosure::NONE);
    let small = exact.iter().filter(|r| r.count.unwrap() < 5).count();
    assert!(small * 2 > exact.len(), "mostly small cells");
    for r in &rows {
        assert!(!r.suppressed);
        let c = r.count.unwrap();
        assert!(c >= 5, "{c}");
    }
    // Every published row is a cell with records: an empty cell is never
    // shown, and a shown 0 would say a small count is there.
    let keys: std::collections::HashSet<&Vec<String>> = exact.iter().map(|r| &r.values).collect();
    assert!(rows.iter().all(|r| keys.contains(&r.values)));
}
