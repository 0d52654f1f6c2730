//! H3 maps under disclosure control: a cell whose published count is below
//! k merges into its parent, level by level up to [`MERGE_FLOOR`], so a
//! sparse area shows a true (perturbed) count of a larger cell rather than
//! nothing.
//!
//! The merge works on exact tallies and perturbs each cell shown once: a
//! merged parent's count and cell key are the sums of its children's, so
//! the parent is perturbed as one cell (its records' keys give its key).
//! When any cell of a parent is below k, the whole parent replaces all of
//! its cells shown so far, so the cells shown never overlap and each record
//! is counted in exactly one of them (or, at the floor, in a cell published
//! as 0, which is not shown). The decision to merge is taken on published
//! values only, so the shape of the map reveals no more than publishing
//! those cells' values would.
//!
//! A merged cell counts the records whose cell at the query's resolution
//! lies in it; asked for at its own resolution, the same cell also counts
//! the records placed only that coarsely (their precision allowed no finer
//! cell), which a map at the finer resolution counts as location unknown.
//! Either figure is perturbed by the cell key of its own records.

use super::{Disclosure, Published};
use crate::cube::Tally;
use h3o::{CellIndex, Resolution};
use std::collections::BTreeMap;

/// The coarsest resolution a map cell merges up to: the coarsest the query
/// API serves. A cell still below k there is published as it is.
pub const MERGE_FLOOR: u8 = 7;

/// A cell as shown on a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapCell {
    /// The H3 cell published: the query's or, merged, an ancestor.
    pub cell: CellIndex,
    /// Its resolution.
    pub resolution: u8,
    /// What is published of its count.
    pub published: Published,
}

/// Merges exact per-cell tallies (cells at one resolution) into the cells
/// to show, and publishes each under `disclosure`. Cells published as 0
/// are left out, as empty cells are. Sorted by cell index.
pub fn merge_cells<I>(cells: I, disclosure: &Disclosure) -> Vec<MapCell>
where
    I: IntoIterator<Item = (CellIndex, Tally)>,
{
    let mut shown: BTreeMap<CellIndex, Tally> = BTreeMap::new();
    for (cell, tally) in cells {
        *shown.entry(cell).or_default() += tally;
    }
    let publish = |t: &Tally| disclosure.publish(t.count.max(0) as u64, t.cell_key());
    let finest = shown.keys().map(|c| u8::from(c.resolution())).max();
    for level in ((MERGE_FLOOR + 1)..=finest.unwrap_or(0)).rev() {
        let parent_res = Resolution::try_from(level - 1).expect("an H3 resolution");
        let mut groups: BTreeMap<CellIndex, Vec<CellIndex>> = BTreeMap::new();
        for cell in shown.keys() {
            if u8::from(cell.resolution()) >= level {
                let parent = cell.parent(parent_res).expect("a coarser resolution");
                groups.entry(parent).or_default().push(*cell);
            }
        }
        for (parent, members) in groups {
            let small = members.iter().any(|c| {
                u8::from(c.resolution()) == level
                    && disclosure.is_below_threshold(publish(&shown[c]))
            });
            if small {
                let mut sum = Tally::default();
                for c in &members {
                    sum += shown.remove(c).expect("a shown cell");
                }
                shown.insert(parent, sum);
            }
        }
    }
    shown
        .iter()
        .map(|(cell, t)| MapCell {
            cell: *cell,
            resolution: u8::from(cell.resolution()),
            published: publish(t),
        })
        .filter(|m| m.published.count != Some(0))
        .collect()
}
