//! Aggregation of ISTV assault records, with no I/O.
//!
//! An accepted, geocoded record becomes an [`Event`]: only derived fields, no
//! patient identifier, no free text. Each event counts +1 on its
//! [`CubeKey`], the finest grain stored; a correction counts -1 on the old
//! key and +1 on the new. [`plan_batch`] turns a batch of events and the
//! records already stored into the records to write and the net change per
//! key, so a store applies both in one transaction and stays equal to a
//! recount. A [`Query`] (parsed from the API's parameters) gives a [`Plan`]
//! for the store and folds its rows into published [`Row`]s under
//! [`Disclosure`] control.
#![warn(missing_docs)]

pub mod cube;
pub mod event;
pub mod query;

pub use cube::{
    cell_from_int, cell_to_int, plan_batch, plan_batch_in_upload, BatchOutcome, BatchPlan,
    CellResolution, Column, Cube, CubeKey, Ledger, Value,
};
pub use event::{content_hash, ContentHasher, Event, GeocodeMethod, LocationStatus, RecordKey};
pub use query::{Dimension, Disclosure, Plan, Query, QueryError, Row};

#[cfg(test)]
mod tests;
