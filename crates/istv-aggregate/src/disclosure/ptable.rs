//! The count perturbation table of the cell key method, built as sdcTools'
//! `ptable` package builds one (`create_cnt_ptable(D, V, js)`): for each
//! original count, the maximum-entropy distribution of the perturbation
//! over the allowed targets, then its cumulative distribution cut into
//! ranges of the 4096 cell keys.
//!
//! For an original count `i`, the allowed targets are the counts `j` with
//! `|j - i| <= D`, `j >= 0` and `j` not in `1..=js` (`js = k - 1`: no
//! published value from 1 to k-1). Among the distributions over those
//! targets, the row takes the one of maximum entropy that has
//!
//! 1. mean perturbation 0 and variance `V`, when such a distribution with
//!    every target possible exists;
//! 2. otherwise mean perturbation 0 (the variance is whatever maximum
//!    entropy gives), when targets lie on both sides of `i`;
//! 3. otherwise all mass on the target nearest `i` (no unbiased choice
//!    exists: for example, with D = 3 and k = 5, a count of 4 can only
//!    become 5, 6 or 7, and a count of 1 only 0).
//!
//! Cases 2 and 3 only occur for counts below `js + D + 1`; every row from
//! `js + D + 1` on is the same distribution of perturbations (no target is
//! negative or blocked), so the table stops there and larger counts use its
//! last row, which is exact rather than an approximation. The count 0 is
//! never perturbed.
//!
//! The maximum-entropy distribution with mean and variance constraints has
//! the form `p(v) ∝ exp(a v + b v²)`; `a` and `b` are found by Newton's
//! method on the convex dual, to a residual below 1e-12.

use crate::event::RECORD_KEYS;

/// The documented parameters of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerturbationParams {
    /// `D`: the largest perturbation, in either direction. 0 turns
    /// perturbation off, leaving only the suppression of 1 to k-1.
    pub max_perturbation: u32,
    /// `V`: the variance of the perturbation of every count of at least
    /// `k + D` (and of smaller counts where it is attainable).
    pub variance: f64,
    /// `k`: no published value from 1 to k-1. 0 and 1 block nothing.
    pub threshold: u32,
}

impl PerturbationParams {
    /// The default maximum perturbation `D`.
    pub const DEFAULT_MAX_PERTURBATION: u32 = 3;
    /// The default variance `V`.
    pub const DEFAULT_VARIANCE: f64 = 1.0;
    /// The default threshold `k`.
    pub const DEFAULT_THRESHOLD: u32 = 5;
    /// The largest `D` accepted: beyond it the figures stop being useful.
    pub const MAX_MAX_PERTURBATION: u32 = 20;
    /// The largest `k` accepted.
    pub const MAX_THRESHOLD: u32 = 1000;

    /// The default D = 3, V = 1 with this threshold.
    pub const fn with_threshold(threshold: u32) -> PerturbationParams {
        PerturbationParams {
            max_perturbation: Self::DEFAULT_MAX_PERTURBATION,
            variance: Self::DEFAULT_VARIANCE,
            threshold,
        }
    }

    /// `js`: the largest blocked count (k - 1, or 0).
    pub const fn blocked_up_to(&self) -> u64 {
        self.threshold.saturating_sub(1) as u64
    }
}

impl Default for PerturbationParams {
    fn default() -> Self {
        PerturbationParams::with_threshold(Self::DEFAULT_THRESHOLD)
    }
}

/// Why a table cannot be built from some parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PtableError {
    /// D outside 1..=20 (0 is handled by the caller as "no perturbation").
    #[error("maximum perturbation {0} is out of range: expected 0 to 20")]
    MaxPerturbation(u32),
    /// V not strictly between 0 and D².
    #[error("perturbation variance {variance} is out of range: expected more than 0 and less than {max} (D squared)")]
    Variance {
        /// The variance asked for.
        variance: f64,
        /// D².
        max: f64,
    },
    /// k too large.
    #[error("threshold {0} is out of range: expected 0 to 1000")]
    Threshold(u32),
    /// k larger than 2D + 1: some count from 1 to k-1 could reach neither
    /// 0 nor k within D.
    #[error("threshold {threshold} needs a maximum perturbation of at least {needed} (k - 1 halved, rounded up), not {max_perturbation}")]
    ThresholdAboveReach {
        /// k.
        threshold: u32,
        /// D.
        max_perturbation: u32,
        /// The least D for this k.
        needed: u32,
    },
}

/// Which constraints a row meets (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// Mean 0 and variance V.
    MeanAndVariance,
    /// Mean 0; V was not attainable.
    MeanOnly,
    /// One target only, the nearest allowed one.
    Nearest,
}

/// One row of the table: the perturbations of one original count, with
/// their probabilities and the cell keys that select each.
#[derive(Debug, Clone, PartialEq)]
pub struct PtableRow {
    /// The original count.
    pub count: u64,
    /// Which constraints the row meets.
    pub kind: RowKind,
    /// `(perturbation, probability)`, perturbations ascending.
    pub outcomes: Vec<(i64, f64)>,
    /// For each outcome, the first cell key past its range: outcome `m`
    /// is chosen by the keys `bounds[m-1]..bounds[m]` (from 0 for the
    /// first). The last bound is 4096.
    pub key_bounds: Vec<u16>,
}

impl PtableRow {
    /// The perturbation that this cell key selects.
    pub fn perturbation(&self, cell_key: u16) -> i64 {
        let m = self
            .key_bounds
            .iter()
            .position(|b| cell_key < *b)
            .unwrap_or(self.outcomes.len() - 1);
        self.outcomes[m].0
    }

    /// Each outcome's probability as realised by the keys: the share of the
    /// 4096 keys that select it.
    pub fn key_probabilities(&self) -> Vec<(i64, f64)> {
        let mut lo = 0u16;
        self.outcomes
            .iter()
            .zip(&self.key_bounds)
            .map(|(&(v, _), &hi)| {
                let n = hi - lo;
                lo = hi;
                (v, f64::from(n) / f64::from(RECORD_KEYS))
            })
            .collect()
    }
}

/// The perturbation table: rows for the counts `0..=js + D + 1`; larger
/// counts use the last row.
#[derive(Debug, Clone, PartialEq)]
pub struct Ptable {
    params: PerturbationParams,
    rows: Vec<PtableRow>,
}

impl Ptable {
    /// Builds the table. `D` must be 1 to 20, `V` strictly between 0 and
    /// `D²`, and `k` at most `2D + 1` (so that every count from 1 to k-1
    /// can reach 0 or k).
    pub fn new(params: PerturbationParams) -> Result<Ptable, PtableError> {
        let d = params.max_perturbation;
        if d == 0 || d > PerturbationParams::MAX_MAX_PERTURBATION {
            return Err(PtableError::MaxPerturbation(d));
        }
        if params.threshold > PerturbationParams::MAX_THRESHOLD {
            return Err(PtableError::Threshold(params.threshold));
        }
        let needed = params.threshold.saturating_sub(1).div_ceil(2);
        if d < needed {
            return Err(PtableError::ThresholdAboveReach {
                threshold: params.threshold,
                max_perturbation: d,
                needed,
            });
        }
        let max = f64::from(d * d);
        let v = params.variance;
        if !(v.is_finite() && v > 0.0 && v < max) {
            return Err(PtableError::Variance { variance: v, max });
        }
        let js = params.blocked_up_to();
        let last = js + u64::from(d) + 1;
        let rows = (0..=last).map(|i| row(i, &params)).collect();
        Ok(Ptable { params, rows })
    }

    /// The parameters.
    pub fn params(&self) -> PerturbationParams {
        self.params
    }

    /// The rows, for the counts 0, 1, ... in order.
    pub fn rows(&self) -> &[PtableRow] {
        &self.rows
    }

    /// The row that perturbs this count.
    pub fn row(&self, count: u64) -> &PtableRow {
        let i = usize::try_from(count).unwrap_or(usize::MAX);
        &self.rows[i.min(self.rows.len() - 1)]
    }

    /// The published value of a count with this cell key: the count plus
    /// the perturbation the table gives. Never negative, never from 1 to
    /// k-1, 0 only for 0 or a small count.
    pub fn publish(&self, count: u64, cell_key: u16) -> u64 {
        if count == 0 {
            return 0;
        }
        let p = self.row(count).perturbation(cell_key % RECORD_KEYS);
        count.saturating_add_signed(p)
    }
}

/// The row of original count `i`.
fn row(i: u64, params: &PerturbationParams) -> PtableRow {
    let d = i64::from(params.max_perturbation);
    let js = params.blocked_up_to() as i64;
    let i_signed = i as i64;
    let support: Vec<i64> = if i == 0 {
        vec![0]
    } else {
        (-d..=d)
            .filter(|v| {
                let j = i_signed + v;
                j >= 0 && !(1..=js).contains(&j)
            })
            .collect()
    };
    let (kind, probs) = distribution(&support, params.variance);
    let outcomes: Vec<(i64, f64)> = support.iter().copied().zip(probs).collect();
    PtableRow {
        count: i,
        kind,
        key_bounds: key_bounds(&outcomes),
        outcomes,
    }
}

/// The maximum-entropy distribution over `support` (ascending) under the
/// strongest constraints it can meet.
fn distribution(support: &[i64], variance: f64) -> (RowKind, Vec<f64>) {
    let (lo, hi) = (support[0], support[support.len() - 1]);
    if lo >= 0 || hi <= 0 {
        // No targets on one side: mean 0 needs all mass on 0 when it is a
        // target, else is impossible; either way the nearest target.
        let nearest = support
            .iter()
            .enumerate()
            .min_by_key(|(_, v)| v.abs())
            .map(|(m, _)| m)
            .expect("support is never empty");
        let mut p = vec![0.0; support.len()];
        p[nearest] = 1.0;
        let kind = if support[nearest] == 0 {
            RowKind::MeanOnly
        } else {
            RowKind::Nearest
        };
        return (kind, p);
    }
    // Mean 0 is attainable. The variances a mean-0 distribution can have
    // run from the nearest chord around 0 (or 0 itself) to -lo * hi; V is
    // met with every target possible only strictly inside.
    let below = support
        .iter()
        .rev()
        .find(|v| **v < 0)
        .copied()
        .unwrap_or(lo);
    let above = support.iter().find(|v| **v > 0).copied().unwrap_or(hi);
    let var_min = if support.contains(&0) {
        0.0
    } else {
        -(below * above) as f64
    };
    let var_max = -(lo * hi) as f64;
    if var_min + 1e-9 < variance && variance < var_max - 1e-9 {
        (RowKind::MeanAndVariance, maxent(support, Some(variance)))
    } else {
        (RowKind::MeanOnly, maxent(support, None))
    }
}

/// `p(v) ∝ exp(a v + b v²)` with mean 0 and, when asked, variance `var`
/// (`b = 0` otherwise), by Newton's method on the dual
/// `log Z(a, b) - b var`, whose gradient is the constraints' residual and
/// whose Hessian is the covariance of `(v, v²)`.
fn maxent(support: &[i64], var: Option<f64>) -> Vec<f64> {
    let vs: Vec<f64> = support.iter().map(|v| *v as f64).collect();
    let probs = |a: f64, b: f64| -> Vec<f64> {
        let e: Vec<f64> = vs.iter().map(|v| a * v + b * v * v).collect();
        let top = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = e.iter().map(|x| (x - top).exp()).collect();
        let z: f64 = w.iter().sum();
        w.into_iter().map(|x| x / z).collect()
    };
    let dual = |a: f64, b: f64| -> f64 {
        let e: Vec<f64> = vs.iter().map(|v| a * v + b * v * v).collect();
        let top = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = e.iter().map(|x| (x - top).exp()).sum();
        top + z.ln() - b * var.unwrap_or(0.0)
    };
    let (mut a, mut b) = (0.0f64, 0.0f64);
    for _ in 0..500 {
        let p = probs(a, b);
        let m1: f64 = p.iter().zip(&vs).map(|(p, v)| p * v).sum();
        let m2: f64 = p.iter().zip(&vs).map(|(p, v)| p * v * v).sum();
        let m3: f64 = p.iter().zip(&vs).map(|(p, v)| p * v * v * v).sum();
        let m4: f64 = p.iter().zip(&vs).map(|(p, v)| p * v * v * v * v).sum();
        let (da, db) = match var {
            Some(target) => {
                let (g1, g2) = (m1, m2 - target);
                if g1.abs() < 1e-13 && g2.abs() < 1e-13 {
                    break;
                }
                // Hessian: covariance of (v, v²).
                let h11 = m2 - m1 * m1;
                let h12 = m3 - m1 * m2;
                let h22 = m4 - m2 * m2;
                let det = h11 * h22 - h12 * h12;
                if det.abs() < 1e-300 {
                    break;
                }
                (-(h22 * g1 - h12 * g2) / det, -(h11 * g2 - h12 * g1) / det)
            }
            None => {
                if m1.abs() < 1e-13 {
                    break;
                }
                (-m1 / (m2 - m1 * m1), 0.0)
            }
        };
        // Backtracking keeps every step a descent of the convex dual.
        let f0 = dual(a, b);
        let mut t = 1.0;
        while t > 1e-12 && dual(a + t * da, b + t * db) > f0 {
            t *= 0.5;
        }
        a += t * da;
        b += t * db;
    }
    probs(a, b)
}

/// Cuts the 4096 keys by the cumulative probabilities, rounded to the
/// nearest key.
fn key_bounds(outcomes: &[(i64, f64)]) -> Vec<u16> {
    let n = f64::from(RECORD_KEYS);
    let mut cum = 0.0;
    let mut bounds: Vec<u16> = outcomes
        .iter()
        .map(|(_, p)| {
            cum += p;
            (cum * n).round().clamp(0.0, n) as u16
        })
        .collect();
    *bounds.last_mut().expect("at least one outcome") = RECORD_KEYS;
    bounds
}
