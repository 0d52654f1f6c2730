//! How the store's values go into statements and come back out of rows, on
//! both databases: bind placeholders, the records column list, a record's
//! parameters and codes, days and times as text, records read back from
//! rows, and a records row's cube columns as SQL.

use crate::sqlite::rows::Param;
use crate::{Backend, Result, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use istv_aggregate::{
    cell_from_int, cell_to_int, Column, Event, GeocodeMethod, Grain, LocationStatus,
};
use istv_core::{AgeBand, AssaultMethod, LocationType, Sex};

/// SQLite allows 32766 bound parameters per statement, PostgreSQL 65535.
pub(crate) const MAX_PARAMS: usize = 32_000;

/// The records table's columns, in the order of [`record_params`] and
/// [`event_from_row`]. `hash_kind` is [`HASH_KEYED`] for every record
/// written (see migration 0009). Since migration 0015 the day is a day
/// number ([`day_number`]), the enumerations are codes ([`code`]) and the
/// upload or stream that last wrote the record is a `record_stamps` id.
pub(crate) const RECORD_COLUMNS: [&str; 18] = [
    "site_code",
    "record_id",
    "content_hash",
    "stamp",
    "day",
    "hour",
    "assault_method",
    "location_type",
    "age_band",
    "sex",
    "geocode_method",
    "precision_m",
    "cell",
    "borough",
    "ward",
    "lsoa",
    "rkey",
    "hash_kind",
];

/// The records columns a select list reads as BIGINT: PostgreSQL keeps them
/// narrower (SMALLINT, INTEGER), and its rows decode only as their type.
const NARROW: [&str; 7] = [
    "day",
    "assault_method",
    "location_type",
    "age_band",
    "sex",
    "geocode_method",
    "hash_kind",
];

/// [`RECORD_COLUMNS`] as a select list that [`event_from_row`] reads on
/// either database.
pub(crate) fn record_select() -> String {
    RECORD_COLUMNS
        .iter()
        .map(|c| {
            if NARROW.contains(c) {
                format!("CAST({c} AS BIGINT)")
            } else {
                (*c).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A day as the records table stores it: days since 1970-01-01, the day
/// grain's bucket (two bytes on SQLite's disk where the text took ten).
pub(crate) fn day_number(d: NaiveDate) -> i64 {
    i64::from(Grain::Day.bucket(d))
}

/// The day of a stored day number.
pub(crate) fn day_of_number(n: i64, column: &'static str) -> Result<NaiveDate> {
    i32::try_from(n)
        .ok()
        .and_then(|n| Grain::Day.start(n))
        .ok_or_else(|| StoreError::Corrupt {
            column,
            value: n.to_string(),
        })
}

/// An enumeration's value as the records table stores it: its place in the
/// enumeration's `ALL`, as [`Column::codes`] numbers the roll-ups' columns.
/// The lists only ever grow at the end.
pub(crate) fn code<T: PartialEq>(all: &[T], v: &T) -> i64 {
    let at = all.iter().position(|x| x == v);
    at.expect("an enumeration's value is in its ALL") as i64
}

/// The value of a stored code.
fn of_code<T: Copy>(all: &[T], code: i64, column: &'static str) -> Result<T> {
    usize::try_from(code)
        .ok()
        .and_then(|i| all.get(i).copied())
        .ok_or_else(|| StoreError::Corrupt {
            column,
            value: code.to_string(),
        })
}

/// `records.hash_kind` of a keyed content hash (HMAC-SHA256); 0 is the
/// legacy FNV-1a of records stored before migration 0009.
pub(crate) const HASH_KEYED: i64 = 1;

/// Bind placeholders: `$1, $2, ...` for PostgreSQL, anonymous `?` for
/// SQLite, whose cost of binding a numbered parameter grows with the number
/// of parameters (a statement of 32,000 `$n` takes seconds to bind).
pub(crate) struct Placeholders {
    numbered: bool,
    next: usize,
}

impl Placeholders {
    /// Fresh placeholders for one statement on `backend`.
    pub(crate) fn new(backend: Backend) -> Placeholders {
        Placeholders {
            numbered: backend == Backend::Postgres,
            next: 1,
        }
    }

    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        if self.numbered {
            let p = format!("${}", self.next);
            self.next += 1;
            p
        } else {
            "?".to_owned()
        }
    }

    /// `count` placeholders separated by commas.
    pub(crate) fn list(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| self.next())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `INSERT INTO table (cols) VALUES (...), ... tail` for `rows` rows.
pub(crate) fn insert_sql(
    mut ph: Placeholders,
    table: &str,
    columns: &[&str],
    rows: usize,
    tail: &str,
) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&ph.list(columns.len()));
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// `d` as `YYYY-MM-DD` (see [`write_day`]).
pub(crate) fn day_text(d: NaiveDate) -> String {
    let mut text = String::with_capacity(10);
    write_day(&mut text, d);
    text
}

/// Writes `d` as `YYYY-MM-DD` into `out`, replacing what it held (a query
/// by day writes one per answer row).
pub(crate) fn write_day(out: &mut String, d: NaiveDate) {
    use chrono::Datelike;
    out.clear();
    let Ok(year @ 0..=9999) = u32::try_from(d.year()) else {
        // Not from a validated record; kept exact all the same.
        out.push_str(&format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()));
        return;
    };
    for (n, width, then) in [(year, 4, "-"), (d.month(), 2, "-"), (d.day(), 2, "")] {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
        }
        out.push_str(then);
    }
}

pub(crate) fn now_text() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn parse_time(text: &str, column: &'static str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            column,
            value: text.to_owned(),
        })
}

/// `ON CONFLICT` clause replacing a stored record.
pub(crate) fn records_upsert_tail() -> String {
    format!(
        "ON CONFLICT (site_code, record_id) DO UPDATE SET {}",
        RECORD_COLUMNS[2..]
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A record's row in [`RECORD_COLUMNS`] order, `stamp` the id of what
/// writes it (see [`crate::batch::stamp_id`]).
pub(crate) fn record_params(e: &Event, stamp: i64) -> [Param<'_>; 18] {
    [
        e.site_code.as_str().into(),
        e.record_id.as_str().into(),
        (e.content_hash as i64).into(),
        stamp.into(),
        day_number(e.assault_date).into(),
        e.assault_hour.map(i64::from).into(),
        code(AssaultMethod::ALL, &e.method).into(),
        code(LocationType::ALL, &e.location_type).into(),
        code(&AgeBand::ALL, &e.age_band).into(),
        code(Sex::ALL, &e.sex).into(),
        code(&GeocodeMethod::ALL, &e.geocode_method).into(),
        e.precision_m.map(i64::from).into(),
        e.cell.map(|c| cell_to_int(Some(c))).into(),
        e.borough.as_deref().into(),
        e.ward.as_deref().into(),
        e.lsoa.as_deref().into(),
        i64::from(e.disclosure_key).into(),
        HASH_KEYED.into(),
    ]
}

/// One cube column of a records row, as an SQL expression over the records
/// table: a column with [`Column::codes`] as its code, the day as its day
/// number, integers as BIGINT on either database. The cell at each
/// resolution is the H3 parent, computed on the index's bits: the
/// resolution field (bits 52-55) set to the resolution and every finer
/// digit (3 bits each, the finest in the lowest bits) set to 7; none (0)
/// when the stored cell is coarser.
pub(crate) fn record_expr(column: Column) -> String {
    let status = |s: LocationStatus| code(&LocationStatus::ALL, &s);
    match column {
        Column::Day => "CAST(day AS BIGINT)".to_owned(),
        Column::Hour => "COALESCE(hour, -1)".to_owned(),
        Column::Method => "CAST(assault_method AS BIGINT)".to_owned(),
        Column::LocationType => "CAST(location_type AS BIGINT)".to_owned(),
        Column::AgeBand => "CAST(age_band AS BIGINT)".to_owned(),
        Column::Sex => "CAST(sex AS BIGINT)".to_owned(),
        Column::Site => "site_code".to_owned(),
        Column::LocationStatus => format!(
            "CAST(CASE WHEN geocode_method = {} THEN {} \
             WHEN cell IS NOT NULL OR borough IS NOT NULL OR ward IS NOT NULL OR lsoa IS NOT NULL \
             THEN {} ELSE {} END AS BIGINT)",
            code(&GeocodeMethod::ALL, &GeocodeMethod::OutOfArea),
            status(LocationStatus::OutOfArea),
            status(LocationStatus::Resolved),
            status(LocationStatus::Unresolved),
        ),
        Column::Cell(r) => {
            let clear_resolution = !(0xF_i64 << 52);
            let r = i64::from(r.get());
            let set = (r << 52) | ((1_i64 << (3 * (15 - r))) - 1);
            format!(
                "CASE WHEN cell IS NULL OR ((cell >> 52) & 15) < {r} THEN 0 \
                 ELSE ((cell & ({clear_resolution})) | {set}) END"
            )
        }
        Column::Borough => "COALESCE(borough, '')".to_owned(),
        Column::Ward => "COALESCE(ward, '')".to_owned(),
        Column::Lsoa => "COALESCE(lsoa, '')".to_owned(),
    }
}

/// Reads a records row (columns in [`RECORD_COLUMNS`] order, as
/// [`record_select`] reads them) back into an event. Works for both
/// databases' rows.
pub(crate) fn event_from_row<R>(row: &R) -> Result<Event>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |i: usize| row.try_get::<String, _>(i);
    let opt_text = |i: usize| row.try_get::<Option<String>, _>(i);
    let opt_int = |i: usize| row.try_get::<Option<i64>, _>(i);
    let int = |i: usize| row.try_get::<i64, _>(i);
    let cell = match opt_int(12)? {
        Some(v) => Some(cell_from_int(v).ok_or_else(|| StoreError::Corrupt {
            column: "records.cell",
            value: v.to_string(),
        })?),
        None => None,
    };
    Ok(Event {
        site_code: text(0)?,
        record_id: text(1)?,
        // Under the kind it was stored with (see `Stored::hashes`).
        content_hash: row.try_get::<i64, _>(2)? as u64,
        // Not stored.
        legacy_hash: 0,
        assault_date: day_of_number(int(4)?, "records.day")?,
        assault_hour: opt_int(5)?.map(|h| h as u8),
        method: of_code(AssaultMethod::ALL, int(6)?, "records.assault_method")?,
        location_type: of_code(LocationType::ALL, int(7)?, "records.location_type")?,
        age_band: of_code(&AgeBand::ALL, int(8)?, "records.age_band")?,
        sex: of_code(Sex::ALL, int(9)?, "records.sex")?,
        geocode_method: of_code(&GeocodeMethod::ALL, int(10)?, "records.geocode_method")?,
        precision_m: opt_int(11)?.map(|p| p as u32),
        cell,
        borough: opt_text(13)?.map(Into::into),
        ward: opt_text(14)?.map(Into::into),
        lsoa: opt_text(15)?.map(Into::into),
        disclosure_key: {
            let k = row.try_get::<i64, _>(16)?;
            u16::try_from(k)
                .ok()
                .filter(|k| *k < istv_aggregate::RECORD_KEYS)
                .ok_or_else(|| StoreError::Corrupt {
                    column: "records.rkey",
                    value: k.to_string(),
                })?
        },
    })
}
