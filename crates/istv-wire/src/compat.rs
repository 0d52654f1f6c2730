//! Schema compatibility levels, as a Confluent schema registry checks them
//! before it registers a new version of a subject, with apache-avro's
//! schema resolution rules.

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

/// A subject's compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Level {
    /// The new schema reads data written with the latest one (consumers
    /// upgrade first). The registry's default.
    #[default]
    Backward,
    /// As `Backward`, against every earlier version.
    BackwardTransitive,
    /// Data written with the new schema is read by the latest one
    /// (producers upgrade first).
    Forward,
    /// As `Forward`, against every earlier version.
    ForwardTransitive,
    /// Both `Backward` and `Forward`.
    Full,
    /// As `Full`, against every earlier version.
    FullTransitive,
    /// No check.
    None,
}

impl Level {
    /// Every level.
    pub const ALL: [Level; 7] = [
        Level::Backward,
        Level::BackwardTransitive,
        Level::Forward,
        Level::ForwardTransitive,
        Level::Full,
        Level::FullTransitive,
        Level::None,
    ];

    /// The registry's name (`BACKWARD`, `FULL_TRANSITIVE`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
            Level::None => "NONE",
        }
    }

    /// The level of a registry name, in any case.
    pub fn parse(name: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(name))
    }

    /// True when every earlier version is checked, not only the latest.
    pub fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }
}

/// The outcome of a compatibility check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compatibility {
    /// The schema may be registered.
    Compatible,
    /// It may not; why, one line per failed check.
    Incompatible(Vec<String>),
}

impl Compatibility {
    /// True when compatible.
    pub fn is_compatible(&self) -> bool {
        matches!(self, Compatibility::Compatible)
    }
}

/// Whether `new` may follow `existing` (a subject's versions, oldest first)
/// at `level`: the latest version only, or all of them for a transitive
/// level. With no existing version anything is compatible.
pub fn check(level: Level, new: &Schema, existing: &[Schema]) -> Compatibility {
    let against: &[Schema] = if level.transitive() {
        existing
    } else {
        existing.last().map(std::slice::from_ref).unwrap_or(&[])
    };
    let mut reasons = Vec::new();
    for (i, old) in against.iter().enumerate() {
        let which = if level.transitive() {
            format!("version {}", i + 1)
        } else {
            "the latest version".to_owned()
        };
        if level.backward() {
            if let Err(e) = SchemaCompatibility::can_read(old, new) {
                reasons.push(format!(
                    "the new schema cannot read data written with {which}: {e}"
                ));
            }
        }
        if level.forward() {
            if let Err(e) = SchemaCompatibility::can_read(new, old) {
                reasons.push(format!(
                    "{which} cannot read data written with the new schema: {e}"
                ));
            }
        }
    }
    if reasons.is_empty() {
        Compatibility::Compatible
    } else {
        Compatibility::Incompatible(reasons)
    }
}
