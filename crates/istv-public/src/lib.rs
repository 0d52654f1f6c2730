//! The public tier: once a month, counts by borough x assault method for
//! the month just ended, with noise from a differential privacy library
//! (OpenDP's discrete Laplace mechanism) at a stated epsilon. A release is
//! computed once, stored, and served as stored; nothing here is computed
//! per request. No I/O: the store and the server are adapters around it.
//!
//! # The guarantee
//!
//! Each record counts in exactly one borough x month x method cell, so
//! adding or removing one record changes one count of one month's release
//! by 1: the L1 sensitivity is 1 and noise of scale `1 / epsilon` makes
//! each month's release epsilon-differentially private for one record
//! added or removed. Months hold disjoint records, so the releases of
//! every month together are still epsilon-private per record (parallel
//! composition). Changing one record's borough or method is two such
//! steps (2 epsilon); a person with several attendances in the month is
//! protected at epsilon per attendance (k epsilon for k of them).
//!
//! A release counts the records as stored when it is computed, corrections
//! included; records or corrections arriving later never change it (a
//! second computation would be a second draw of noise and spend epsilon
//! again).
#![warn(missing_docs)]

mod month;
pub mod noise;
mod release;

pub use month::Month;
pub use noise::{DiscreteLaplace, NoiseSource, OpenDp, MAX_EPSILON, SENSITIVITY};
pub use release::{compute, Release, ReleaseRow};

/// The epsilon of a release when none is given.
pub const DEFAULT_EPSILON: f64 = 1.0;

/// Why a release cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A month not written `YYYY-MM`.
    #[error("month `{0}` is not a month YYYY-MM")]
    Month(String),
    /// An epsilon outside (0, MAX_EPSILON].
    #[error("epsilon {0} is outside the accepted range: above 0, at most {MAX_EPSILON}")]
    Epsilon(f64),
    /// No borough to release.
    #[error(
        "the geography has no boroughs: import borough boundaries first (istv geo import-default)"
    )]
    NoBoroughs,
    /// The differential privacy library refused or failed.
    #[error("differential privacy library: {0}")]
    Library(String),
}
