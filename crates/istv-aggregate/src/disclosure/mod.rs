//! Disclosure control: what an analyst is shown of a count.
//!
//! The cell key method (ONS, Census 2021; ABS TableBuilder). Every record
//! has a secret random key 0-4095 ([`crate::DisclosureKeys`]); a cell's key
//! is the sum of its records' keys modulo 4096, so it depends only on which
//! records are in the cell. The published value is the true count plus the
//! perturbation that a fixed [`Ptable`] gives for (count, cell key). Hence:
//!
//! - the same set of records always gets the same published value, whatever
//!   query (grouping, filters, roll-up or cube) produces it, and repeating a
//!   query gives nothing new;
//! - no published value lies from 1 to k-1 and no perturbation exceeds D,
//!   so a zero is never shown for a cell of more than D records;
//! - differences of published figures (a total minus its published parts, a
//!   range minus a range one day shorter, a filter minus its complement)
//!   carry the difference of two independent perturbations, so they give a
//!   small count exactly only by chance (about 28% of the time with the
//!   defaults D = 3, V = 1: the chance that two independent draws of the
//!   table's last row agree), and the attacker cannot tell when.
//!
//! What it does not guarantee: averaging many different queries that cover
//! the same small cell with different complements narrows its value down
//! (the known weakness of the method), so the service also needs query rate
//! limits and an audit trail; and counts of records whose keys an attacker
//! knows are not protected (keys are a deployment secret).
//!
//! A published 0 from a positive count is treated as a true 0: the row is
//! absent, as a cell with no records is. The `suppressed` flag is only set
//! under the plain suppression rule (D = 0), where it marks the counts 1 to
//! k-1; under perturbation no value from 1 to k-1 exists to suppress.

mod merge;
mod period;
pub mod ptable;

pub use merge::{merge_cells, MapCell, MERGE_FLOOR};
pub use ptable::{PerturbationParams, Ptable, PtableError, PtableRow, RowKind};

use std::sync::{Arc, Mutex};

/// Disclosure control: exact counts (trusted internal use only), plain
/// suppression of 1 to k-1, or the cell key method with a [`Ptable`].
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosure {
    rule: Rule,
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Exact,
    Suppress(u64),
    Perturb(Arc<Ptable>),
}

/// What is published of one count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The value shown; `None` when suppressed.
    pub count: Option<u64>,
    /// True when the count is withheld (plain suppression only).
    pub suppressed: bool,
}

/// Tables already built, by parameters: building one solves a few small
/// optimisation problems, which a request should not repeat.
static TABLES: Mutex<Vec<Arc<Ptable>>> = Mutex::new(Vec::new());

impl Disclosure {
    /// Exact counts: for trusted internal calls (`istv check`, tests),
    /// never an analyst's answer.
    pub const NONE: Disclosure = Disclosure { rule: Rule::Exact };

    /// The cell key method with the default D = 3 and V = 1, and no
    /// published value from 1 to `threshold - 1` (at most 41). A threshold
    /// above 7 (2D + 1) raises D to `(threshold - 1) / 2` rounded up.
    pub fn new(threshold: u64) -> Disclosure {
        let k = u32::try_from(threshold).unwrap_or(u32::MAX).min(41);
        let mut params = PerturbationParams::with_threshold(k);
        params.max_perturbation = params.max_perturbation.max(k.saturating_sub(1).div_ceil(2));
        Disclosure::from_params(params).expect("D and V are valid for every threshold up to 41")
    }

    /// From documented parameters. `D = 0` gives plain suppression of the
    /// counts 1 to k-1 (no perturbation: a suppressed count is recovered
    /// by differencing, so only for trusted use), and with `k <= 1` too,
    /// exact counts.
    pub fn from_params(params: PerturbationParams) -> Result<Disclosure, PtableError> {
        if params.max_perturbation == 0 {
            if params.threshold > PerturbationParams::MAX_THRESHOLD {
                return Err(PtableError::Threshold(params.threshold));
            }
            let rule = match params.threshold {
                0 | 1 => Rule::Exact,
                k => Rule::Suppress(u64::from(k)),
            };
            return Ok(Disclosure { rule });
        }
        let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = tables.iter().find(|t| t.params() == params) {
            return Ok(Disclosure {
                rule: Rule::Perturb(Arc::clone(t)),
            });
        }
        let table = Arc::new(Ptable::new(params)?);
        tables.push(Arc::clone(&table));
        Ok(Disclosure {
            rule: Rule::Perturb(table),
        })
    }

    /// Plain suppression of the counts 1 to `threshold - 1`, without
    /// perturbation: what the service did before the cell key method, kept
    /// for comparison and trusted use.
    pub fn suppress_only(threshold: u64) -> Disclosure {
        Disclosure {
            rule: if threshold <= 1 {
                Rule::Exact
            } else {
                Rule::Suppress(threshold)
            },
        }
    }

    /// `k`: no published value (or, under plain suppression, no shown
    /// value) from 1 to k-1. 0 for exact counts.
    pub fn threshold(&self) -> u64 {
        match &self.rule {
            Rule::Exact => 0,
            Rule::Suppress(k) => *k,
            Rule::Perturb(t) => u64::from(t.params().threshold),
        }
    }

    /// The perturbation table, under the cell key method.
    pub fn table(&self) -> Option<&Ptable> {
        match &self.rule {
            Rule::Perturb(t) => Some(t),
            _ => None,
        }
    }

    /// What is published of a count whose records' keys sum to `cell_key`
    /// modulo 4096.
    pub fn publish(&self, count: u64, cell_key: u16) -> Published {
        match &self.rule {
            Rule::Exact => Published {
                count: Some(count),
                suppressed: false,
            },
            Rule::Suppress(k) if count > 0 && count < *k => Published {
                count: None,
                suppressed: true,
            },
            Rule::Suppress(_) => Published {
                count: Some(count),
                suppressed: false,
            },
            Rule::Perturb(t) => Published {
                count: Some(t.publish(count, cell_key)),
                suppressed: false,
            },
        }
    }

    /// True when a published figure is below k: suppressed, or shown as
    /// less than k (under the cell key method, only 0). Decided on the
    /// published figure alone, so acting on it reveals nothing more.
    pub fn is_below_threshold(&self, published: Published) -> bool {
        published.suppressed || published.count.is_some_and(|c| c < self.threshold())
    }
}

impl Default for Disclosure {
    /// The cell key method with D = 3, V = 1, k = 5.
    fn default() -> Self {
        Disclosure::new(u64::from(PerturbationParams::DEFAULT_THRESHOLD))
    }
}

#[cfg(test)]
mod attacks;
#[cfg(test)]
mod tests;
