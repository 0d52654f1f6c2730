//! Aggregation of ISTV assault records, with no I/O.
//!
//! An accepted, geocoded record becomes an [`Event`]: only derived fields, no
//! patient identifier, no free text. Each event counts +1 on its
//! [`CubeKey`], the finest grain stored; a correction counts -1 on the old
//! key and +1 on the new. [`plan_batch`] turns a batch of events and the
//! records already stored into the records to write and the net change per
//! key, so a store applies both in one transaction and stays equal to a
//! recount. Every change of the cube is also a change of each of its
//! [`rollup`]s, summed over all but a few dimensions per day or month, which
//! answer most queries reading few rows. A [`Query`] (parsed from the API's
//! parameters) gives a [`Plan`] for the store, is [`route`]d to a roll-up
//! where one covers it, and folds the rows read into published [`Row`]s
//! under [`Disclosure`] control: the cell key method, whose published
//! value is the count plus a perturbation that a [`Ptable`] gives for the
//! count and the cell's key. Every count carries the sum of its records'
//! keys ([`Tally`]) for it.
#![warn(missing_docs)]

pub mod content;
pub mod cube;
pub mod disclosure;
pub mod event;
pub mod query;
pub mod rollup;

pub use content::{
    content_hash, legacy_content_hash, ContentHasher, ContentHashes, ContentKey, ContentKeyError,
};
pub use cube::{
    cell_from_int, cell_to_int, plan_batch, plan_batch_in_upload, BatchOutcome, BatchPlan,
    CellResolution, Column, Cube, CubeKey, Ledger, Tally, Value,
};
pub use disclosure::{Disclosure, PerturbationParams, Ptable, Published};
pub use event::{DisclosureKeys, Event, GeocodeMethod, LocationStatus, RecordKey, RECORD_KEYS};
pub use query::{Dimension, Plan, Query, QueryError, Row};
pub use rollup::{route, Grain, KeyView, Rollup, RollupDeltas, RollupSet, Route, Table, ROLLUPS};

#[cfg(test)]
mod tests;
