//! Queries over the cube: dimensions, parameter parsing, the plan a store
//! runs, and the folding of its rows into published, disclosure-controlled
//! rows.

use crate::cube::{cell_from_int, CellResolution, Column, Cube, CubeKey, Tally, Value};
use crate::disclosure::Disclosure;
use crate::event::LocationStatus;
use chrono::{Datelike, NaiveDate, Weekday};
use h3o::CellIndex;
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};
use std::collections::{BTreeSet, HashMap};

/// A dimension that results can be grouped and filtered by. The names are
/// the query API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// `day`: `YYYY-MM-DD`.
    Day,
    /// `week`: ISO week, `YYYY-Www`.
    Week,
    /// `month`: `YYYY-MM`.
    Month,
    /// `hour`: 0-23, or `unknown` when only a date was given.
    Hour,
    /// `weekday`: `mon` to `sun`.
    Weekday,
    /// `cell`: H3 cell (hex) at the query's resolution, or `unknown`.
    Cell,
    /// `borough`: ONS code or `unknown`.
    Borough,
    /// `ward`: ONS code or `unknown`.
    Ward,
    /// `lsoa`: ONS code or `unknown`.
    Lsoa,
    /// `assault_method`.
    AssaultMethod,
    /// `location_type`.
    LocationType,
    /// `age_band`: `0-9` ... `65+`, `unknown`.
    AgeBand,
    /// `sex`.
    Sex,
    /// `site`: ODS site code.
    Site,
    /// `location_status`: `resolved`, `out_of_area`, `unresolved`.
    LocationStatus,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const UNKNOWN: &str = "unknown";

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 15] = [
        Dimension::Day,
        Dimension::Week,
        Dimension::Month,
        Dimension::Hour,
        Dimension::Weekday,
        Dimension::Cell,
        Dimension::Borough,
        Dimension::Ward,
        Dimension::Lsoa,
        Dimension::AssaultMethod,
        Dimension::LocationType,
        Dimension::AgeBand,
        Dimension::Sex,
        Dimension::Site,
        Dimension::LocationStatus,
    ];

    /// The API name.
    pub const fn name(self) -> &'static str {
        match self {
            Dimension::Day => "day",
            Dimension::Week => "week",
            Dimension::Month => "month",
            Dimension::Hour => "hour",
            Dimension::Weekday => "weekday",
            Dimension::Cell => "cell",
            Dimension::Borough => "borough",
            Dimension::Ward => "ward",
            Dimension::Lsoa => "lsoa",
            Dimension::AssaultMethod => "assault_method",
            Dimension::LocationType => "location_type",
            Dimension::AgeBand => "age_band",
            Dimension::Sex => "sex",
            Dimension::Site => "site",
            Dimension::LocationStatus => "location_status",
        }
    }

    /// The dimension with this exact name.
    pub fn parse(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The names of all dimensions, for error messages.
    pub fn expected() -> String {
        let names: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
        names.join(", ")
    }

    /// True for the dimensions derived from the date.
    pub const fn is_time(self) -> bool {
        matches!(
            self,
            Dimension::Day | Dimension::Week | Dimension::Month | Dimension::Weekday
        )
    }

    /// The stored column this dimension is computed from.
    pub fn column(self, resolution: CellResolution) -> Column {
        match self {
            Dimension::Day | Dimension::Week | Dimension::Month | Dimension::Weekday => Column::Day,
            Dimension::Hour => Column::Hour,
            Dimension::Cell => Column::Cell(resolution),
            Dimension::Borough => Column::Borough,
            Dimension::Ward => Column::Ward,
            Dimension::Lsoa => Column::Lsoa,
            Dimension::AssaultMethod => Column::Method,
            Dimension::LocationType => Column::LocationType,
            Dimension::AgeBand => Column::AgeBand,
            Dimension::Sex => Column::Sex,
            Dimension::Site => Column::Site,
            Dimension::LocationStatus => Column::LocationStatus,
        }
    }

    /// The published label of a stored value of this dimension's column.
    pub fn label(self, value: &Value) -> String {
        match (self, value) {
            (d, Value::Text(t)) if d.is_time() => match parse_day(t) {
                Some(day) => time_label(d, day),
                None => UNKNOWN.to_owned(),
            },
            (Dimension::Hour, Value::Int(h)) if (0..24).contains(h) => h.to_string(),
            (Dimension::Cell, Value::Int(c)) => match cell_from_int(*c) {
                Some(cell) => cell.to_string(),
                None => UNKNOWN.to_owned(),
            },
            (_, Value::Text(t)) if !t.is_empty() => t.clone(),
            _ => UNKNOWN.to_owned(),
        }
    }

    /// An order of labels that reads naturally: numbers and codes in their
    /// own order, `unknown` last.
    fn sort_key(self, label: &str) -> SortKey {
        if label == UNKNOWN {
            return (1, 0, String::new());
        }
        let rank = match self {
            Dimension::Hour => label.parse::<i64>().unwrap_or(0),
            Dimension::Weekday => WEEKDAYS.iter().position(|w| *w == label).unwrap_or(0) as i64,
            Dimension::AgeBand => AgeBand::ALL
                .iter()
                .position(|b| b.as_str() == label)
                .unwrap_or(0) as i64,
            _ => 0,
        };
        (0, rank, label.to_owned())
    }
}

impl std::fmt::Display for Dimension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Unknown last (1 after 0), then a rank, then the label.
type SortKey = (u8, i64, String);

fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// The label of a date for a time dimension.
fn time_label(d: Dimension, day: NaiveDate) -> String {
    match d {
        Dimension::Week => {
            let w = day.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        Dimension::Month => day.format("%Y-%m").to_string(),
        Dimension::Weekday => WEEKDAYS[day.weekday().num_days_from_monday() as usize].to_owned(),
        _ => day.format("%Y-%m-%d").to_string(),
    }
}

/// Why a query's parameters were refused. Each message names the parameter
/// or value at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter that is neither a control parameter nor a dimension.
    #[error("unknown parameter `{0}`: expected group_by, from, to, resolution or a dimension ({dims})", dims = Dimension::expected())]
    UnknownParameter(String),
    /// A `group_by` entry that is not a dimension.
    #[error("unknown dimension `{0}` in `group_by`: expected one of {dims}", dims = Dimension::expected())]
    UnknownDimension(String),
    /// A dimension named twice in `group_by`.
    #[error("dimension `{0}` appears twice in `group_by`")]
    RepeatedDimension(String),
    /// A single-valued parameter given twice.
    #[error("parameter `{0}` given more than once")]
    RepeatedParameter(String),
    /// A value that does not fit its parameter.
    #[error("invalid value `{value}` for `{parameter}`: expected {expected}")]
    InvalidValue {
        /// The parameter.
        parameter: String,
        /// The value as given.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A fine place (ward, LSOA, H3 resolution 9-10) asked for over a
    /// period that is not whole ISO weeks or whole months.
    #[error("{level} figures are published only for whole ISO weeks or whole months: {reason}")]
    WholePeriodsOnly {
        /// The place detail asked for.
        level: String,
        /// What breaks the rule.
        reason: String,
    },
    /// `from` after `to`.
    #[error("`from` ({from}) is after `to` ({to})")]
    EmptyRange {
        /// The first day asked for.
        from: NaiveDate,
        /// The last day asked for.
        to: NaiveDate,
    },
}

/// A validated filter value of one dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum FilterValue {
    /// Compared with the stored column.
    Stored(Value),
    /// Compared with the label of the stored day; the range is the days the
    /// label covers, used to narrow the scan.
    Time(String, NaiveDate, NaiveDate),
}

/// A validated query: what to group by, what to keep, which cell resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    group_by: Vec<Dimension>,
    filters: Vec<(Dimension, BTreeSet<FilterValue>)>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    resolution: CellResolution,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            group_by: Vec::new(),
            filters: Vec::new(),
            from: None,
            to: None,
            resolution: CellResolution::DEFAULT,
        }
    }
}

fn invalid(parameter: &str, value: &str, expected: impl Into<String>) -> QueryError {
    QueryError::InvalidValue {
        parameter: parameter.to_owned(),
        value: value.to_owned(),
        expected: expected.into(),
    }
}

fn is_ons_code(v: &str) -> bool {
    v.len() == 9
        && v.as_bytes()[0].is_ascii_uppercase()
        && v.as_bytes()[1..].iter().all(u8::is_ascii_digit)
}

impl Query {
    /// The total count: no grouping, no filter.
    pub fn new() -> Query {
        Query::default()
    }

    /// Parses decoded query-string pairs: `group_by=month,borough`,
    /// `from=YYYY-MM-DD`, `to=YYYY-MM-DD` (both inclusive), `resolution=7..10`
    /// (for `cell`, default 9) and `dimension=value` filters. Values of one
    /// dimension, repeated or comma-separated, are alternatives; filters of
    /// different dimensions must all hold.
    pub fn from_pairs<'a, I>(pairs: I) -> Result<Query, QueryError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        let mut q = Query::new();
        let mut seen_single: BTreeSet<&str> = BTreeSet::new();
        // Single-valued parameters first: cell filters need the resolution.
        for &(name, value) in &pairs {
            if !matches!(name, "from" | "to" | "resolution") {
                continue;
            }
            if !seen_single.insert(name) {
                return Err(QueryError::RepeatedParameter(name.to_owned()));
            }
            let value = value.trim();
            match name {
                "resolution" => {
                    q.resolution = value
                        .parse::<u8>()
                        .ok()
                        .and_then(CellResolution::new)
                        .ok_or_else(|| invalid(name, value, "an H3 resolution from 7 to 10"))?;
                }
                _ => {
                    let day = parse_day(value)
                        .ok_or_else(|| invalid(name, value, "a date YYYY-MM-DD"))?;
                    if name == "from" {
                        q.from = Some(day);
                    } else {
                        q.to = Some(day);
                    }
                }
            }
        }
        if let (Some(from), Some(to)) = (q.from, q.to) {
            if from > to {
                return Err(QueryError::EmptyRange { from, to });
            }
        }
        let mut filters: HashMap<Dimension, BTreeSet<FilterValue>> = HashMap::new();
        for &(name, value) in &pairs {
            match name {
                "from" | "to" | "resolution" => {}
                "group_by" => {
                    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let d = Dimension::parse(part)
                            .ok_or_else(|| QueryError::UnknownDimension(part.to_owned()))?;
                        if q.group_by.contains(&d) {
                            return Err(QueryError::RepeatedDimension(part.to_owned()));
                        }
                        q.group_by.push(d);
                    }
                }
                _ => {
                    let d = Dimension::parse(name)
                        .ok_or_else(|| QueryError::UnknownParameter(name.to_owned()))?;
                    for part in value.split(',').map(str::trim) {
                        let v = q.parse_filter_value(d, part)?;
                        filters.entry(d).or_default().insert(v);
                    }
                }
            }
        }
        let mut filters: Vec<_> = filters.into_iter().collect();
        filters.sort_by_key(|(d, _)| *d);
        q.filters = filters;
        Ok(q)
    }

    fn parse_filter_value(&self, d: Dimension, raw: &str) -> Result<FilterValue, QueryError> {
        let name = d.name();
        let text = |s: &str| Ok(FilterValue::Stored(Value::Text(s.to_owned())));
        match d {
            Dimension::Day => {
                let day = parse_day(raw).ok_or_else(|| invalid(name, raw, "a date YYYY-MM-DD"))?;
                Ok(FilterValue::Time(time_label(d, day), day, day))
            }
            Dimension::Week => {
                let bad = || invalid(name, raw, "an ISO week YYYY-Www, e.g. 2024-W09");
                let (y, w) = raw.split_once(['-']).ok_or_else(bad)?;
                let w = w.strip_prefix(['W', 'w']).ok_or_else(bad)?;
                if y.len() != 4 || w.len() != 2 {
                    return Err(bad());
                }
                let (y, w) = (
                    y.parse::<i32>().map_err(|_| bad())?,
                    w.parse::<u32>().map_err(|_| bad())?,
                );
                let start = NaiveDate::from_isoywd_opt(y, w, Weekday::Mon).ok_or_else(bad)?;
                let end = NaiveDate::from_isoywd_opt(y, w, Weekday::Sun).ok_or_else(bad)?;
                Ok(FilterValue::Time(time_label(d, start), start, end))
            }
            Dimension::Month => {
                let bad = || invalid(name, raw, "a month YYYY-MM");
                if raw.len() != 7 {
                    return Err(bad());
                }
                let start = parse_day(&format!("{raw}-01")).ok_or_else(bad)?;
                let next = start
                    .checked_add_months(chrono::Months::new(1))
                    .ok_or_else(bad)?;
                let end = next.pred_opt().ok_or_else(bad)?;
                Ok(FilterValue::Time(time_label(d, start), start, end))
            }
            Dimension::Weekday => {
                let v = raw.to_ascii_lowercase();
                if !WEEKDAYS.contains(&v.as_str()) {
                    return Err(invalid(
                        name,
                        raw,
                        "one of mon, tue, wed, thu, fri, sat, sun",
                    ));
                }
                Ok(FilterValue::Time(v, NaiveDate::MIN, NaiveDate::MAX))
            }
            Dimension::Hour => {
                if raw == UNKNOWN {
                    return Ok(FilterValue::Stored(Value::Int(-1)));
                }
                match raw.parse::<u8>() {
                    Ok(h) if h < 24 => Ok(FilterValue::Stored(Value::Int(i64::from(h)))),
                    _ => Err(invalid(name, raw, "an hour from 0 to 23, or unknown")),
                }
            }
            Dimension::Cell => {
                let r = self.resolution.get();
                if raw == UNKNOWN {
                    return Ok(FilterValue::Stored(Value::Int(0)));
                }
                match raw.parse::<CellIndex>() {
                    Ok(c) if u8::from(c.resolution()) == r => {
                        Ok(FilterValue::Stored(Value::Int(u64::from(c) as i64)))
                    }
                    _ => Err(invalid(
                        name,
                        raw,
                        format!(
                            "an H3 cell index at resolution {r} (set by `resolution`), or unknown"
                        ),
                    )),
                }
            }
            Dimension::Borough | Dimension::Ward | Dimension::Lsoa => {
                if raw == UNKNOWN {
                    return text("");
                }
                let v = raw.to_ascii_uppercase();
                if !is_ons_code(&v) {
                    return Err(invalid(
                        name,
                        raw,
                        "a 9-character ONS code such as E09000033, or unknown",
                    ));
                }
                text(&v)
            }
            Dimension::AssaultMethod => AssaultMethod::parse(raw).map_or_else(
                || Err(invalid(name, raw, AssaultMethod::expected())),
                |m| text(m.as_str()),
            ),
            Dimension::LocationType => LocationType::parse(raw).map_or_else(
                || Err(invalid(name, raw, LocationType::expected())),
                |m| text(m.as_str()),
            ),
            Dimension::Sex => Sex::parse(raw).map_or_else(
                || Err(invalid(name, raw, Sex::expected())),
                |m| text(m.as_str()),
            ),
            Dimension::AgeBand => AgeBand::parse(raw).map_or_else(
                || {
                    let labels: Vec<&str> = AgeBand::ALL.iter().map(|b| b.as_str()).collect();
                    Err(invalid(name, raw, labels.join(", ")))
                },
                |b| text(b.as_str()),
            ),
            Dimension::Site => {
                let v = raw.to_ascii_uppercase();
                if !(3..=12).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(invalid(
                        name,
                        raw,
                        "an ODS site code (3-12 letters and digits)",
                    ));
                }
                text(&v)
            }
            Dimension::LocationStatus => LocationStatus::parse(raw).map_or_else(
                || {
                    Err(invalid(
                        name,
                        raw,
                        "one of resolved, out_of_area, unresolved",
                    ))
                },
                |s| text(s.as_str()),
            ),
        }
    }

    /// Groups by these dimensions, in this order (replacing any grouping).
    pub fn with_group_by(mut self, dims: &[Dimension]) -> Query {
        self.group_by = dims.to_vec();
        self
    }

    /// The dimensions filtered on, in dimension order.
    pub fn filtered(&self) -> impl Iterator<Item = Dimension> + '_ {
        self.filters.iter().map(|(d, _)| *d)
    }

    /// The labels of one dimension's filter values (`unknown` for an
    /// unknown place, time values as given), or `None` when the query does
    /// not filter on it.
    pub fn filter_labels(&self, d: Dimension) -> Option<Vec<String>> {
        let (_, values) = self.filters.iter().find(|(f, _)| *f == d)?;
        Some(
            values
                .iter()
                .map(|v| match v {
                    FilterValue::Stored(v) => d.label(v),
                    FilterValue::Time(label, ..) => label.clone(),
                })
                .collect(),
        )
    }

    /// Adds a filter on `d` (values as in the query string), for a
    /// dimension the query does not filter on yet; an existing filter on
    /// `d` is replaced.
    pub fn with_filter(mut self, d: Dimension, values: &[&str]) -> Result<Query, QueryError> {
        let mut set = BTreeSet::new();
        for v in values {
            set.insert(self.parse_filter_value(d, v)?);
        }
        self.filters.retain(|(f, _)| *f != d);
        self.filters.push((d, set));
        self.filters.sort_by_key(|(d, _)| *d);
        Ok(self)
    }

    /// The dimensions grouped by, in order.
    pub fn group_by(&self) -> &[Dimension] {
        &self.group_by
    }

    /// The dimensions filtered by.
    pub fn filtered_by(&self) -> impl Iterator<Item = Dimension> + '_ {
        self.filters.iter().map(|(d, _)| *d)
    }

    /// The first day counted, inclusive.
    pub fn from(&self) -> Option<NaiveDate> {
        self.from
    }

    /// The last day counted, inclusive.
    pub fn to(&self) -> Option<NaiveDate> {
        self.to
    }

    /// The resolution of the `cell` dimension.
    pub fn resolution(&self) -> CellResolution {
        self.resolution
    }

    /// What a store must compute: sums of counts grouped by `plan.columns`,
    /// over keys that satisfy every condition and whose day is in range.
    pub fn plan(&self) -> Plan {
        let mut columns: Vec<Column> = Vec::new();
        let mut push = |c: Column| {
            if !columns.contains(&c) {
                columns.push(c);
            }
        };
        for d in &self.group_by {
            push(d.column(self.resolution));
        }
        let mut conditions = Vec::new();
        let (mut from, mut to) = (self.from, self.to);
        for (d, values) in &self.filters {
            if d.is_time() {
                // Exact test after the scan, on the label of the day.
                push(Column::Day);
                let lo = values.iter().filter_map(time_range).map(|r| r.0).min();
                let hi = values.iter().filter_map(time_range).map(|r| r.1).max();
                if let Some(lo) = lo.filter(|lo| *lo != NaiveDate::MIN) {
                    from = Some(from.map_or(lo, |f| f.max(lo)));
                }
                if let Some(hi) = hi.filter(|hi| *hi != NaiveDate::MAX) {
                    to = Some(to.map_or(hi, |t| t.min(hi)));
                }
            } else {
                let vals = values
                    .iter()
                    .filter_map(|v| match v {
                        FilterValue::Stored(v) => Some(v.clone()),
                        FilterValue::Time(..) => None,
                    })
                    .collect();
                conditions.push((d.column(self.resolution), vals));
            }
        }
        Plan {
            columns,
            conditions,
            from,
            to,
        }
    }

    /// True when the query needs the day of each count, not only its month:
    /// it groups or filters by day, week or weekday.
    pub fn needs_day(&self) -> bool {
        self.groups_or_filters_by(|d| {
            matches!(d, Dimension::Day | Dimension::Week | Dimension::Weekday)
        })
    }

    /// True when the query needs each count's date, not only its month and
    /// weekday: it groups or filters by day or week.
    pub fn needs_date(&self) -> bool {
        self.groups_or_filters_by(|d| matches!(d, Dimension::Day | Dimension::Week))
    }

    /// True when a dimension it groups or filters by is one of `these`.
    fn groups_or_filters_by(&self, these: impl Fn(&Dimension) -> bool) -> bool {
        self.group_by.iter().any(&these) || self.filters.iter().any(|(d, _)| these(d))
    }

    /// Folds a store's rows for [`Query::plan`] (values in the order of
    /// `plan.columns`, then the summed tally) into published rows: time
    /// filters applied, labels computed, counts summed per label, sorted,
    /// disclosure control applied. Groups whose count is 0, or is published
    /// as 0, are absent.
    pub fn fold<I>(&self, rows: I, disclosure: Disclosure) -> Vec<Row>
    where
        I: IntoIterator<Item = (Vec<Value>, Tally)>,
    {
        let plan = self.plan();
        let index_of = |c: Column| plan.columns.iter().position(|x| *x == c).expect("planned");
        let group_idx: Vec<usize> = self
            .group_by
            .iter()
            .map(|d| index_of(d.column(self.resolution)))
            .collect();
        let time_filters: Vec<(Dimension, BTreeSet<&str>)> = self
            .filters
            .iter()
            .filter(|(d, _)| d.is_time())
            .map(|(d, vals)| {
                let labels = vals
                    .iter()
                    .filter_map(|v| match v {
                        FilterValue::Time(l, ..) => Some(l.as_str()),
                        FilterValue::Stored(_) => None,
                    })
                    .collect();
                (*d, labels)
            })
            .collect();
        let day_idx = (!time_filters.is_empty()).then(|| index_of(Column::Day));
        let mut sums: HashMap<Vec<String>, Tally> = HashMap::new();
        for (values, tally) in rows {
            if let Some(i) = day_idx {
                let keep = time_filters
                    .iter()
                    .all(|(d, labels)| labels.contains(d.label(&values[i]).as_str()));
                if !keep {
                    continue;
                }
            }
            let labels: Vec<String> = self
                .group_by
                .iter()
                .zip(&group_idx)
                .map(|(d, &i)| d.label(&values[i]))
                .collect();
            *sums.entry(labels).or_default() += tally;
        }
        let mut out: Vec<(Vec<SortKey>, Row)> = sums
            .into_iter()
            .filter(|(_, t)| t.count > 0)
            .map(|(values, t)| {
                let key = self
                    .group_by
                    .iter()
                    .zip(&values)
                    .map(|(d, l)| d.sort_key(l))
                    .collect();
                let published = disclosure.publish(t.count as u64, t.cell_key());
                (
                    key,
                    Row {
                        values,
                        count: published.count,
                        suppressed: published.suppressed,
                        cell_key: t.cell_key(),
                    },
                )
            })
            .filter(|(_, r)| r.count != Some(0))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter().map(|(_, r)| r).collect()
    }

    /// Runs the query over an in-memory cube.
    pub fn run(&self, cube: &Cube, disclosure: Disclosure) -> Vec<Row> {
        let plan = self.plan();
        let rows = cube
            .iter()
            .filter(|(k, _)| plan.matches(k))
            .map(|(k, c)| (plan.project(k), c));
        self.fold(rows, disclosure)
    }
}

fn time_range(v: &FilterValue) -> Option<(NaiveDate, NaiveDate)> {
    match v {
        FilterValue::Time(_, lo, hi) => Some((*lo, *hi)),
        FilterValue::Stored(_) => None,
    }
}

/// What a store computes for a query: `SELECT columns, SUM(count) ... WHERE
/// day BETWEEN from AND to AND column IN (values) ... GROUP BY columns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Columns to group by and return, in order.
    pub columns: Vec<Column>,
    /// Each column's value must be one of the listed values.
    pub conditions: Vec<(Column, Vec<Value>)>,
    /// First day, inclusive.
    pub from: Option<NaiveDate>,
    /// Last day, inclusive.
    pub to: Option<NaiveDate>,
}

impl Plan {
    /// True when a key satisfies the conditions and day range.
    pub fn matches(&self, key: &CubeKey) -> bool {
        self.from.is_none_or(|f| key.day >= f)
            && self.to.is_none_or(|t| key.day <= t)
            && self
                .conditions
                .iter()
                .all(|(c, vals)| vals.contains(&key.value(*c)))
    }

    /// A key's values of the planned columns.
    pub fn project(&self, key: &CubeKey) -> Vec<Value> {
        self.columns.iter().map(|c| key.value(*c)).collect()
    }
}

/// A published row: the labels of the grouped dimensions, in the query's
/// order, and the count, unless suppressed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// One label per `group_by` dimension.
    pub values: Vec<String>,
    /// The count; `None` when suppressed.
    pub count: Option<u64>,
    /// True when the count is withheld (plain suppression only; see
    /// [`Disclosure`]).
    pub suppressed: bool,
    /// The cell key: the sum of the records' keys modulo
    /// [`crate::RECORD_KEYS`]. Never published; disclosure control uses it.
    #[serde(skip)]
    pub cell_key: u16,
}
