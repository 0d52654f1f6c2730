use super::*;
use crate::RECORD_KEYS;

fn default_table() -> Ptable {
    Ptable::new(PerturbationParams::default()).unwrap()
}

fn moments(outcomes: &[(i64, f64)]) -> (f64, f64, f64) {
    let sum: f64 = outcomes.iter().map(|o| o.1).sum();
    let mean: f64 = outcomes.iter().map(|(v, p)| *v as f64 * p).sum();
    let var: f64 = outcomes
        .iter()
        .map(|(v, p)| (*v as f64 - mean).powi(2) * p)
        .sum();
    (sum, mean, var)
}

/// Bisection for the `x` in `lo..hi` where an increasing `f` crosses 0.
fn bisect(lo: f64, hi: f64, f: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (lo, hi);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Key bounds recomputed by hand: cumulative probabilities times 4096,
/// rounded.
fn bounds(probs: &[f64]) -> Vec<u16> {
    let mut cum = 0.0;
    probs
        .iter()
        .map(|p| {
            cum += p;
            (cum * 4096.0).round() as u16
        })
        .collect()
}

const PARAMS: [(u32, f64, u32); 9] = [
    (3, 1.0, 5),
    (3, 1.0, 0),
    (3, 1.0, 1),
    (3, 2.0, 5),
    (2, 1.0, 3),
    (1, 0.5, 2),
    (4, 1.5, 8),
    (5, 3.0, 10),
    (5, 3.0, 11),
];

fn tables() -> Vec<Ptable> {
    PARAMS
        .iter()
        .map(|&(d, v, k)| {
            Ptable::new(PerturbationParams {
                max_perturbation: d,
                variance: v,
                threshold: k,
            })
            .unwrap()
        })
        .collect()
}

#[test]
fn rows_are_probability_distributions_meeting_their_constraints() {
    // As ptable's pt_check: probabilities sum to 1, mean 0, variance V.
    for t in tables() {
        let p = t.params();
        let js = p.blocked_up_to();
        let d = u64::from(p.max_perturbation);
        assert_eq!(t.rows().len() as u64, js + d + 2, "{p:?}");
        for r in t.rows() {
            let (sum, mean, var) = moments(&r.outcomes);
            assert!(
                (sum - 1.0).abs() < 1e-12,
                "{p:?} row {}: sum {sum}",
                r.count
            );
            assert!(r.outcomes.iter().all(|o| o.1 >= 0.0));
            match r.kind {
                RowKind::MeanAndVariance => {
                    assert!(mean.abs() < 1e-9, "{p:?} row {}: mean {mean}", r.count);
                    assert!(
                        (var - p.variance).abs() < 1e-9,
                        "{p:?} row {}: var {var}",
                        r.count
                    );
                }
                RowKind::MeanOnly => assert!(mean.abs() < 1e-9, "{p:?} row {}", r.count),
                RowKind::Nearest => {
                    // Only when every target lies on one side.
                    let all_up = r.outcomes.iter().all(|o| o.0 > 0);
                    let all_down = r.outcomes.iter().all(|o| o.0 < 0);
                    assert!(all_up || all_down, "{p:?} row {}", r.count);
                }
            }
            // Realised by the keys, the mean and variance are off by at
            // most the rounding of each bound to a 4096th.
            let (ksum, kmean, kvar) = moments(&r.key_probabilities());
            let slack = (2 * d + 1) as f64 / 4096.0;
            assert!((ksum - 1.0).abs() < 1e-12);
            if r.kind != RowKind::Nearest {
                assert!(kmean.abs() <= slack * d as f64, "{p:?} row {}", r.count);
            }
            if r.kind == RowKind::MeanAndVariance {
                assert!((kvar - p.variance).abs() <= slack * (d * d) as f64 * 2.0);
            }
        }
        // From js + D + 1 on, every row meets mean 0 and variance V.
        for r in &t.rows()[(js + d + 1) as usize..] {
            assert_eq!(r.kind, RowKind::MeanAndVariance, "{p:?}");
        }
    }
}

#[test]
fn no_published_value_from_one_to_k_minus_one_and_never_more_than_d_away() {
    for t in tables() {
        let p = t.params();
        let d = i64::from(p.max_perturbation);
        for count in 0..60u64 {
            for key in 0..RECORD_KEYS {
                let out = t.publish(count, key);
                if count == 0 {
                    assert_eq!(out, 0);
                }
                assert!(
                    out == 0 || out >= u64::from(p.threshold),
                    "{p:?}: {count} -> {out}"
                );
                assert!(
                    (out as i64 - count as i64).abs() <= d,
                    "{p:?}: {count} -> {out}"
                );
            }
        }
        // Counts past the table use its last row.
        let last = t.rows().last().unwrap();
        for key in [0, 1000, 4095] {
            assert_eq!(
                t.publish(10_000, key) as i64 - 10_000,
                last.perturbation(key)
            );
        }
    }
}

#[test]
fn tables_are_deterministic() {
    assert_eq!(default_table(), default_table());
    let a = Disclosure::new(5);
    let b = Disclosure::default();
    for count in 0..40 {
        for key in (0..RECORD_KEYS).step_by(97) {
            assert_eq!(a.publish(count, key), b.publish(count, key));
        }
    }
}

#[test]
fn last_row_matches_a_brute_force_recomputation() {
    // D = 3, V = 1: symmetric, so p(v) ∝ r^(v²) with r found by bisection
    // so that E[v²] = 1.
    let ev2 = |r: f64| {
        let w = |v: i32| r.powi(v * v);
        let z: f64 = (-3..=3).map(w).sum();
        (-3..=3).map(|v| f64::from(v * v) * w(v)).sum::<f64>() / z - 1.0
    };
    let r = bisect(0.01, 0.99, ev2);
    let w: Vec<f64> = (-3..=3).map(|v: i32| r.powi(v * v)).collect();
    let z: f64 = w.iter().sum();
    let probs: Vec<f64> = w.iter().map(|x| x / z).collect();
    let t = default_table();
    let last = t.rows().last().unwrap();
    assert_eq!(last.count, 8);
    for (m, (v, p)) in last.outcomes.iter().enumerate() {
        assert_eq!(*v, m as i64 - 3);
        assert!((p - probs[m]).abs() < 1e-9, "{v}: {p} vs {}", probs[m]);
    }
    assert_eq!(last.key_bounds, bounds(&probs));
    // And by hand from those bounds (18, 241, 1232, 2864, 3855, 4078):
    // a count of 20 with these keys is published as...
    for (key, want) in [
        (0, 17),
        (17, 17),
        (18, 18),
        (240, 18),
        (241, 19),
        (1232, 20),
        (2863, 20),
        (2864, 21),
        (4077, 22),
        (4078, 23),
        (4095, 23),
    ] {
        assert_eq!(t.publish(20, key), want, "key {key}");
    }
    assert_eq!(last.key_bounds, vec![18, 241, 1232, 2864, 3855, 4078, 4096]);
}

#[test]
fn small_rows_match_hand_derivations() {
    let t = default_table();
    // 1: the only target within 3 outside 1..4 is 0.
    for key in [0, 2048, 4095] {
        assert_eq!(t.publish(1, key), 0);
    }
    // 2: targets 0 and 5; mean 0 needs 2 p(0) = 3 p(5), so p(0) = 3/5 and
    // the keys below round(0.6 * 4096) = 2458 give 0.
    assert_eq!(t.publish(2, 2457), 0);
    assert_eq!(t.publish(2, 2458), 5);
    assert_eq!(t.publish(2, 4095), 5);
    // 3: targets 0, 5, 6 (v = -3, 2, 3); variance 1 is below the least a
    // mean-0 choice can have (6), so mean 0 only: p ∝ exp(a v), a by
    // bisection.
    let mean = |a: f64| {
        let vs = [-3.0f64, 2.0, 3.0];
        let z: f64 = vs.iter().map(|v| (a * v).exp()).sum();
        vs.iter().map(|v| v * (a * v).exp()).sum::<f64>() / z
    };
    let a = bisect(-5.0, 5.0, mean);
    let probs: Vec<f64> = {
        let vs = [-3.0f64, 2.0, 3.0];
        let z: f64 = vs.iter().map(|v| (a * v).exp()).sum();
        vs.iter().map(|v| (a * v).exp() / z).collect()
    };
    let b = bounds(&probs);
    assert_eq!(t.rows()[3].key_bounds, b);
    assert_eq!(t.publish(3, b[0] - 1), 0);
    assert_eq!(t.publish(3, b[0]), 5);
    assert_eq!(t.publish(3, b[1]), 6);
    // 4: targets 5, 6, 7 only (0 is 4 away): the nearest, always 5.
    // 5: targets 5..8, mean 0 forces staying at 5.
    for key in [0, 1234, 4095] {
        assert_eq!(t.publish(4, key), 5);
        assert_eq!(t.publish(5, key), 5);
    }
}

#[test]
fn asymmetric_rows_are_the_exponential_family_solution() {
    // The maximum-entropy distribution under mean and variance constraints
    // is p(v) ∝ exp(a v + b v²): log p is a quadratic in v, which with the
    // constraints characterises it. Row 6 of the default table (targets
    // 5..9, v = -1..3) and row 7 (v = -2..3).
    let t = default_table();
    for i in [6usize, 7] {
        let r = &t.rows()[i];
        assert_eq!(r.kind, RowKind::MeanAndVariance);
        let lp: Vec<f64> = r.outcomes.iter().map(|o| o.1.ln()).collect();
        let second: Vec<f64> = lp.windows(3).map(|w| w[0] - 2.0 * w[1] + w[2]).collect();
        for s in &second {
            assert!((s - second[0]).abs() < 1e-8, "row {i}: {second:?}");
        }
        assert_eq!(
            r.outcomes.first().unwrap().0 + i as i64,
            i64::max(5, i as i64 - 3)
        );
    }
}

#[test]
fn parameters_out_of_range_are_refused() {
    let p = |d, v, k| PerturbationParams {
        max_perturbation: d,
        variance: v,
        threshold: k,
    };
    assert_eq!(
        Ptable::new(p(21, 1.0, 5)),
        Err(PtableError::MaxPerturbation(21))
    );
    assert!(matches!(
        Ptable::new(p(3, 9.0, 5)),
        Err(PtableError::Variance { .. })
    ));
    assert!(matches!(
        Ptable::new(p(3, 0.0, 5)),
        Err(PtableError::Variance { .. })
    ));
    assert_eq!(
        Ptable::new(p(20, 1.0, 1001)),
        Err(PtableError::Threshold(1001))
    );
    // k = 9 needs D >= 4: a count of 4 could reach neither 0 nor 9 by 3.
    assert_eq!(
        Ptable::new(p(3, 1.0, 9)),
        Err(PtableError::ThresholdAboveReach {
            threshold: 9,
            max_perturbation: 3,
            needed: 4
        })
    );
    assert!(Ptable::new(p(3, 1.0, 7)).is_ok());
    assert_eq!(
        Disclosure::new(9)
            .table()
            .unwrap()
            .params()
            .max_perturbation,
        4
    );
    // D = 0: plain suppression, or exact counts for k <= 1.
    let plain = Disclosure::from_params(p(0, 0.0, 5)).unwrap();
    assert_eq!(plain, Disclosure::suppress_only(5));
    assert_eq!(
        Disclosure::from_params(p(0, 0.0, 1)).unwrap(),
        Disclosure::NONE
    );
    assert_eq!(Disclosure::new(5).threshold(), 5);
    assert_eq!(Disclosure::NONE.threshold(), 0);
}

#[test]
fn fine_places_only_for_whole_weeks_or_months() {
    let check = |pairs: &[(&str, &str)]| {
        crate::Query::from_pairs(pairs.iter().copied())
            .unwrap()
            .check_whole_periods()
    };
    let ok = |pairs: &[(&str, &str)]| assert_eq!(check(pairs), Ok(()), "{pairs:?}");
    let refused = |pairs: &[(&str, &str)], reason: &str| match check(pairs) {
        Err(crate::QueryError::WholePeriodsOnly { reason: r, .. }) => {
            assert!(r.contains(reason), "{pairs:?}: {r}")
        }
        other => panic!("{pairs:?}: {other:?}"),
    };
    // 2024-03-04 is a Monday, 2024-03-31 a Sunday and a month's end.
    ok(&[("group_by", "ward")]);
    ok(&[
        ("group_by", "ward"),
        ("from", "2024-03-01"),
        ("to", "2024-03-31"),
    ]);
    ok(&[
        ("group_by", "lsoa"),
        ("from", "2024-03-04"),
        ("to", "2024-03-17"),
    ]);
    ok(&[
        ("group_by", "week,ward"),
        ("from", "2024-03-04"),
        ("to", "2024-03-31"),
    ]);
    ok(&[
        ("group_by", "borough"),
        ("from", "2024-03-02"),
        ("to", "2024-03-05"),
    ]);
    ok(&[
        ("group_by", "cell"),
        ("resolution", "8"),
        ("from", "2024-03-02"),
    ]);
    ok(&[("group_by", "weekday,ward"), ("month", "2024-03")]);
    refused(
        &[
            ("group_by", "ward"),
            ("from", "2024-03-01"),
            ("to", "2024-03-30"),
        ],
        "or `from` the first",
    );
    refused(&[("group_by", "cell"), ("to", "2024-03-30")], "a Sunday");
    refused(&[("group_by", "day"), ("lsoa", "E01000001")], "`day`");
    refused(
        &[
            ("group_by", "week,ward"),
            ("from", "2024-03-01"),
            ("to", "2024-03-31"),
        ],
        "with `week`",
    );
    refused(
        &[
            ("group_by", "month"),
            ("ward", "E05000001"),
            ("from", "2024-03-04"),
            ("to", "2024-03-17"),
        ],
        "with `month`",
    );
    refused(
        &[
            ("week", "2024-W10"),
            ("month", "2024-03"),
            ("group_by", "ward"),
        ],
        "combined",
    );
    let e = check(&[
        ("group_by", "cell"),
        ("resolution", "10"),
        ("from", "2024-03-02"),
    ])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cell (resolution 10) figures are published only for whole ISO weeks or whole months: \
         `from` must be a Monday and `to` a Sunday, or `from` the first and `to` the last day of a month"
    );
}
