//! What an aggregate instance has published to the compacted aggregates
//! topic, and what changed since: the next messages to send. Pure.
//!
//! Each instance compares the store's current published rows (after
//! disclosure control) with what it last sent, and sends only the groups
//! that differ, a tombstone for a group that has gone. Two instances may
//! send one group's message in either order, but each sends a group again
//! whenever the store's value differs from its own last one, and checks
//! after every batch and when idle: once the stream is quiet the last
//! message of every group is the store's value.

use apache_avro::types::Value;
use istv_aggregate::Row;
use std::collections::{BTreeMap, HashMap};

/// A published group's value: its count (`None` when withheld) and
/// whether it is suppressed.
pub type Figure = (Option<u64>, bool);

/// One message to send: a group's key, its dimension values, and its
/// figure or `None` for a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The message key, `dim=value/dim=value` in the grouping's order.
    pub key: String,
    /// Dimension name to value.
    pub group: Vec<(String, String)>,
    /// The figure; `None` when the group has no records any more.
    pub figure: Option<Figure>,
}

/// The figures last sent, by key.
#[derive(Debug, Default)]
pub struct Published {
    last: BTreeMap<String, Figure>,
}

/// The message key of a group.
pub fn group_key(dims: &[&str], values: &[String]) -> String {
    dims.iter()
        .zip(values)
        .map(|(d, v)| format!("{d}={v}"))
        .collect::<Vec<_>>()
        .join("/")
}

impl Published {
    /// Nothing sent yet.
    pub fn new() -> Published {
        Published::default()
    }

    /// The changes from what was sent to `rows` (the store's published
    /// rows grouped by `dims`), in key order.
    pub fn changes(&self, dims: &[&str], rows: &[Row]) -> Vec<Change> {
        let mut now: BTreeMap<String, (Vec<(String, String)>, Figure)> = BTreeMap::new();
        for r in rows {
            let group = dims
                .iter()
                .zip(&r.values)
                .map(|(d, v)| ((*d).to_owned(), v.clone()))
                .collect();
            now.insert(group_key(dims, &r.values), (group, (r.count, r.suppressed)));
        }
        let mut out = Vec::new();
        for (key, (group, figure)) in &now {
            if self.last.get(key) != Some(figure) {
                out.push(Change {
                    key: key.clone(),
                    group: group.clone(),
                    figure: Some(*figure),
                });
            }
        }
        for key in self.last.keys() {
            if !now.contains_key(key) {
                out.push(Change {
                    key: key.clone(),
                    group: parse_key(key),
                    figure: None,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Changes the broker has acknowledged.
    pub fn sent(&mut self, changes: &[Change]) {
        for c in changes {
            match c.figure {
                Some(f) => {
                    self.last.insert(c.key.clone(), f);
                }
                None => {
                    self.last.remove(&c.key);
                }
            }
        }
    }
}

/// A key's dimension values back.
fn parse_key(key: &str) -> Vec<(String, String)> {
    key.split('/')
        .filter_map(|part| part.split_once('='))
        .map(|(d, v)| (d.to_owned(), v.to_owned()))
        .collect()
}

/// The `istv.v1.Aggregate` value of a change with a figure.
pub fn aggregate_value(group: &[(String, String)], figure: Figure) -> Value {
    let null = || Value::Union(0, Box::new(Value::Null));
    let map: HashMap<String, Value> = group
        .iter()
        .map(|(d, v)| (d.clone(), Value::String(v.clone())))
        .collect();
    Value::Record(vec![
        ("group".into(), Value::Map(map)),
        ("from".into(), null()),
        ("to".into(), null()),
        (
            "count".into(),
            match figure.0 {
                Some(c) => Value::Union(1, Box::new(Value::Long(c as i64))),
                None => null(),
            },
        ),
        ("suppressed".into(), Value::Boolean(figure.1)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(month: &str, borough: &str, count: Option<u64>) -> Row {
        Row {
            values: vec![month.into(), borough.into()],
            count,
            suppressed: count.is_none(),
            cell_key: 0,
        }
    }

    const DIMS: [&str; 2] = ["month", "borough"];

    #[test]
    fn only_changed_groups_are_sent_and_a_gone_group_is_a_tombstone() {
        let mut p = Published::new();
        let first = vec![row("2024-03", "E1", Some(7)), row("2024-03", "E2", None)];
        let c = p.changes(&DIMS, &first);
        assert_eq!(
            c.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
            ["month=2024-03/borough=E1", "month=2024-03/borough=E2"]
        );
        assert_eq!(c[1].figure, Some((None, true)));
        // Not acknowledged: still to send.
        assert_eq!(p.changes(&DIMS, &first).len(), 2);
        p.sent(&c);
        assert!(p.changes(&DIMS, &first).is_empty());

        let second = vec![row("2024-03", "E1", Some(8)), row("2024-04", "E1", Some(5))];
        let c = p.changes(&DIMS, &second);
        assert_eq!(
            c,
            vec![
                Change {
                    key: "month=2024-03/borough=E1".into(),
                    group: vec![
                        ("month".into(), "2024-03".into()),
                        ("borough".into(), "E1".into())
                    ],
                    figure: Some((Some(8), false)),
                },
                Change {
                    key: "month=2024-03/borough=E2".into(),
                    group: vec![
                        ("month".into(), "2024-03".into()),
                        ("borough".into(), "E2".into())
                    ],
                    figure: None,
                },
                Change {
                    key: "month=2024-04/borough=E1".into(),
                    group: vec![
                        ("month".into(), "2024-04".into()),
                        ("borough".into(), "E1".into())
                    ],
                    figure: Some((Some(5), false)),
                },
            ]
        );
        p.sent(&c);
        assert!(p.changes(&DIMS, &second).is_empty());
    }

    #[test]
    fn the_value_is_an_aggregate_of_the_schema() {
        let schema = istv_core::schema::aggregate_v1();
        let v = aggregate_value(&[("month".into(), "2024-03".into())], (Some(12), false));
        let resolved = v.resolve(schema).expect("a value of the schema");
        let Value::Record(fields) = resolved else {
            panic!("a record")
        };
        assert_eq!(fields[3].1, Value::Union(1, Box::new(Value::Long(12))));
        assert_eq!(fields[4].1, Value::Boolean(false));
    }
}
