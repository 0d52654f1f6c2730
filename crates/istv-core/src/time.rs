//! Date-times as EDs write them, read as Europe/London local time unless they
//! carry an offset.
//!
//! Local times in the spring-forward gap (e.g. 01:30 on the last Sunday of
//! March, which never happens on a London clock) are read with the offset in
//! force before the gap, so 01:30 becomes 02:30 BST; times in the autumn
//! overlap (01:00-01:59 on the last Sunday of October, which happens twice)
//! are read as the first of the two, BST. This is the rule of `java.time` and
//! RFC 5545, so exports from those systems round-trip. The rules may still
//! pick the second occurrence of an overlap time when only that one makes a
//! record consistent (an arrival at 01:10 after an assault at 01:40 that
//! night), see [`WrittenDateTime::later_instant`].

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Europe::London;

/// Why a date-time could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateTimeError {
    /// The text matches none of the accepted layouts.
    #[error("expected an ISO 8601 date-time (2024-03-01T22:15) or dd/mm/yyyy hh:mm")]
    Layout,
    /// The layout is right but the date or time does not exist.
    #[error("no such date or time")]
    OutOfRange,
}

/// A date-time as written: a date, maybe a time, maybe an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenDateTime {
    /// The calendar date as written.
    pub date: NaiveDate,
    /// The time of day, when given.
    pub time: Option<NaiveTime>,
    /// The UTC offset, when given.
    pub offset: Option<FixedOffset>,
}

/// An instant of the assault, with the London calendar date and, when the
/// feed gave one, the London clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssaultTime {
    /// The instant; for a date without a time, London midnight of that date.
    pub instant: DateTime<Utc>,
    /// London calendar date.
    pub local_date: NaiveDate,
    /// London clock time, `None` when the feed gave only a date.
    pub local_time: Option<NaiveTime>,
}

impl AssaultTime {
    /// Hour of day on a London clock, when known.
    pub fn hour(&self) -> Option<u32> {
        self.local_time.map(|t| t.hour())
    }

    /// Day of week, Monday = 1 to Sunday = 7.
    pub fn iso_weekday(&self) -> u32 {
        self.local_date.weekday().number_from_monday()
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut v: u32 = 0;
        while self.i < self.s.len() && self.i - start < max && self.s[self.i].is_ascii_digit() {
            v = v * 10 + u32::from(self.s[self.i] - b'0');
            self.i += 1;
        }
        (self.i - start >= min).then_some(v)
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}

/// Reads `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH[:MM]]` (a space may
/// stand for the `T`), `dd/mm/yyyy` and `dd/mm/yyyy hh:mm[:ss]` (one-digit day,
/// month and hour accepted, as spreadsheets write them).
pub fn parse_written(text: &str) -> Result<WrittenDateTime, DateTimeError> {
    let mut c = Cursor {
        s: crate::record::trim(text).as_bytes(),
        i: 0,
    };
    let (y, m, d, iso);
    let first = c.digits(1, 4).ok_or(DateTimeError::Layout)?;
    if c.i == 4 && c.eat(b'-') {
        y = first;
        m = c.digits(2, 2).ok_or(DateTimeError::Layout)?;
        if !c.eat(b'-') {
            return Err(DateTimeError::Layout);
        }
        d = c.digits(2, 2).ok_or(DateTimeError::Layout)?;
        iso = true;
    } else if c.i <= 2 && c.eat(b'/') {
        d = first;
        m = c.digits(1, 2).ok_or(DateTimeError::Layout)?;
        if !c.eat(b'/') {
            return Err(DateTimeError::Layout);
        }
        y = c.digits(4, 4).ok_or(DateTimeError::Layout)?;
        iso = false;
    } else {
        return Err(DateTimeError::Layout);
    }
    let date = NaiveDate::from_ymd_opt(y as i32, m, d).ok_or(DateTimeError::OutOfRange)?;
    if c.done() {
        return Ok(WrittenDateTime {
            date,
            time: None,
            offset: None,
        });
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err(DateTimeError::Layout);
    }
    let h = c
        .digits(if iso { 2 } else { 1 }, 2)
        .ok_or(DateTimeError::Layout)?;
    if !c.eat(b':') {
        return Err(DateTimeError::Layout);
    }
    let min = c.digits(2, 2).ok_or(DateTimeError::Layout)?;
    let mut sec = 0;
    let mut nano = 0;
    if c.eat(b':') {
        sec = c.digits(2, 2).ok_or(DateTimeError::Layout)?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            let frac = c.digits(1, 9).ok_or(DateTimeError::Layout)?;
            nano = frac * 10u32.pow(9 - (c.i - start) as u32);
            // Finer digits than nanoseconds carry no information here.
            while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.i += 1;
            }
        }
    }
    let time = NaiveTime::from_hms_nano_opt(h, min, sec, nano).ok_or(DateTimeError::OutOfRange)?;
    let offset = if c.done() {
        None
    } else if c.eat(b'Z') || c.eat(b'z') {
        Some(FixedOffset::east_opt(0).expect("zero offset"))
    } else {
        let sign: i32 = if c.eat(b'+') {
            1
        } else if c.eat(b'-') {
            -1
        } else {
            return Err(DateTimeError::Layout);
        };
        let oh = c.digits(2, 2).ok_or(DateTimeError::Layout)?;
        c.eat(b':');
        let om = if c.done() {
            0
        } else {
            c.digits(2, 2).ok_or(DateTimeError::Layout)?
        };
        if oh > 23 || om > 59 {
            return Err(DateTimeError::OutOfRange);
        }
        Some(
            FixedOffset::east_opt(sign * (oh as i32 * 3600 + om as i32 * 60))
                .ok_or(DateTimeError::OutOfRange)?,
        )
    };
    if !c.done() {
        return Err(DateTimeError::Layout);
    }
    Ok(WrittenDateTime {
        date,
        time: Some(time),
        offset,
    })
}

/// Years in which UK summer time follows today's rule: from the last Sunday
/// of March to the last Sunday of October, changing at 01:00 UTC (the rule
/// since 1996). Inside them the offset is computed directly, which is much
/// faster than a tz database lookup; outside, the tz database decides.
const RULE_YEARS: std::ops::RangeInclusive<i32> = 1996..=2099;

/// The last Sunday of a month (March or October), at 00:00.
fn last_sunday(year: i32, month: u32) -> NaiveDateTime {
    let last = NaiveDate::from_ymd_opt(year, month, 31).expect("March and October have 31 days");
    let back = last.weekday().num_days_from_sunday();
    (last - chrono::Duration::days(i64::from(back))).and_time(NaiveTime::MIN)
}

/// Summer time of a rule year, [start, end), as naive UTC and as London
/// clock readings (UTC plus one hour).
#[derive(Clone, Copy)]
struct Summer {
    utc: (NaiveDateTime, NaiveDateTime),
    local: (NaiveDateTime, NaiveDateTime),
}

/// [`Summer`] of a rule year. Computed once per process: date arithmetic
/// on every row would cost more than the rest of the time handling.
fn summer(year: i32) -> Summer {
    static TABLE: std::sync::OnceLock<Vec<Summer>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let hour = chrono::Duration::hours(1);
        RULE_YEARS
            .map(|y| {
                let utc = (last_sunday(y, 3) + hour, last_sunday(y, 10) + hour);
                Summer {
                    utc,
                    local: (utc.0 + hour, utc.1 + hour),
                }
            })
            .collect()
    });
    table[(year - RULE_YEARS.start()) as usize]
}

/// London local time of an instant.
pub fn london_local(instant: DateTime<Utc>) -> NaiveDateTime {
    let utc = instant.naive_utc();
    if RULE_YEARS.contains(&utc.year()) {
        let (start, end) = summer(utc.year()).utc;
        return if utc >= start && utc < end {
            utc + chrono::Duration::hours(1)
        } else {
            utc
        };
    }
    instant.with_timezone(&London).naive_local()
}

/// The instant a London wall-clock reading stands for (gap and overlap rules
/// in the module docs).
pub fn london_instant(local: NaiveDateTime) -> DateTime<Utc> {
    if RULE_YEARS.contains(&local.year()) {
        // On a London clock summer time runs from 02:00 on the start day
        // (01:00-01:59 is the gap, read as GMT) to 02:00 on the end day
        // (01:00-01:59 happens twice, read as BST): the bounds are the UTC
        // bounds plus one hour.
        let (start, end) = summer(local.year()).local;
        let bst = local >= start && local < end;
        let utc = if bst {
            local - chrono::Duration::hours(1)
        } else {
            local
        };
        return utc.and_utc();
    }
    london_instant_tz(local)
}

/// [`london_instant`] by the tz database alone.
fn london_instant_tz(local: NaiveDateTime) -> DateTime<Utc> {
    match London.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Only the spring gap lands here; GMT was in force just before it.
            Utc.from_utc_datetime(&local)
        }
    }
}

impl WrittenDateTime {
    /// The instant; a bare date is London midnight.
    pub fn instant(&self) -> DateTime<Utc> {
        let local = self.date.and_time(self.time.unwrap_or(NaiveTime::MIN));
        match self.offset {
            Some(off) => (local - off).and_utc(),
            None => london_instant(local),
        }
    }

    /// For a London clock time in the autumn overlap (written without an
    /// offset), the second of its two instants; `None` otherwise.
    pub fn later_instant(&self) -> Option<DateTime<Utc>> {
        let time = self.time?;
        if self.offset.is_some() {
            return None;
        }
        let local = self.date.and_time(time);
        if RULE_YEARS.contains(&local.year()) {
            let Summer { utc, local: clock } = summer(local.year());
            // 01:00-01:59 local on the end day: first BST, then GMT.
            return (local >= utc.1 && local < clock.1).then(|| local.and_utc());
        }
        match London.from_local_datetime(&local) {
            LocalResult::Ambiguous(_, second) => Some(second.with_timezone(&Utc)),
            _ => None,
        }
    }

    /// As an assault time with London date and clock.
    pub fn to_assault_time(&self) -> AssaultTime {
        let instant = self.instant();
        match (self.time, self.offset) {
            (None, _) => AssaultTime {
                instant,
                local_date: self.date,
                local_time: None,
            },
            (Some(_), _) => {
                let local = london_local(instant);
                AssaultTime {
                    instant,
                    local_date: local.date(),
                    local_time: Some(local.time()),
                }
            }
        }
    }
}

/// The London calendar date of an instant.
pub fn london_date(instant: DateTime<Utc>) -> NaiveDate {
    london_local(instant).date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn reads_the_accepted_layouts() {
        let cases = [
            ("2024-01-15T22:15", "2024-01-15T22:15:00Z"),
            ("2024-01-15 22:15:30", "2024-01-15T22:15:30Z"),
            ("2024-07-15T22:15", "2024-07-15T21:15:00Z"),
            ("2024-07-15T22:15:00Z", "2024-07-15T22:15:00Z"),
            ("2024-07-15T22:15:00+02:00", "2024-07-15T20:15:00Z"),
            ("2024-07-15T22:15:00-0130", "2024-07-15T23:45:00Z"),
            ("2024-07-15T22:15:00.250+01", "2024-07-15T21:15:00.25Z"),
            ("15/07/2024 22:15", "2024-07-15T21:15:00Z"),
            ("5/7/2024 9:05", "2024-07-05T08:05:00Z"),
            ("15/01/2024 22:15:59", "2024-01-15T22:15:59Z"),
            ("2024-07-15", "2024-07-14T23:00:00Z"),
            ("15/01/2024", "2024-01-15T00:00:00Z"),
        ];
        for (text, want) in cases {
            let w = parse_written(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(w.instant(), utc(want), "{text}");
        }
    }

    #[test]
    fn rejects_other_layouts_and_impossible_dates() {
        for bad in [
            "",
            "2024",
            "2024-1-15",
            "15-01-2024",
            "2024/01/15",
            "01/15",
            "2024-01-15T",
            "2024-01-15T25",
            "2024-01-15T22:15 BST",
            "15/01/24",
            "yesterday",
            "2024-01-15T22:15:00+2",
        ] {
            assert_eq!(parse_written(bad), Err(DateTimeError::Layout), "{bad:?}");
        }
        for bad in [
            "2024-02-30",
            "31/04/2024",
            "2024-01-15T24:00",
            "2024-01-15T22:60",
            "2024-13-01",
        ] {
            assert_eq!(
                parse_written(bad),
                Err(DateTimeError::OutOfRange),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn spring_gap_reads_with_the_offset_before_it() {
        // 2024-03-31 01:30 does not exist in London: clocks jump 01:00 GMT -> 02:00 BST.
        let w = parse_written("2024-03-31T01:30").unwrap();
        assert_eq!(w.instant(), utc("2024-03-31T01:30:00Z"));
        let t = w.to_assault_time();
        assert_eq!(t.local_time, NaiveTime::from_hms_opt(2, 30, 0));
        assert_eq!(t.hour(), Some(2));
        // Either side of the gap is unambiguous.
        assert_eq!(
            parse_written("2024-03-31T00:59").unwrap().instant(),
            utc("2024-03-31T00:59:00Z")
        );
        assert_eq!(
            parse_written("2024-03-31T02:00").unwrap().instant(),
            utc("2024-03-31T01:00:00Z")
        );
    }

    #[test]
    fn autumn_overlap_reads_as_the_first_occurrence() {
        // 2024-10-27 01:30 happens at 00:30 UTC (BST) and again at 01:30 UTC (GMT).
        let w = parse_written("27/10/2024 01:30").unwrap();
        assert_eq!(w.instant(), utc("2024-10-27T00:30:00Z"));
        assert_eq!(w.to_assault_time().hour(), Some(1));
        // With an explicit offset the second occurrence is reachable.
        let second = parse_written("2024-10-27T01:30+00:00")
            .unwrap()
            .to_assault_time();
        assert_eq!(second.instant, utc("2024-10-27T01:30:00Z"));
        assert_eq!(second.hour(), Some(1));
    }

    #[test]
    fn the_fast_rule_agrees_with_the_tz_database() {
        // Every 10 minutes of both transition days of every rule year, and
        // every 7 hours 13 minutes in between, both directions.
        let mut checked = 0;
        for year in RULE_YEARS {
            let mut times = Vec::new();
            for (m, d) in [(3, last_sunday(year, 3)), (10, last_sunday(year, 10))] {
                let _ = m;
                for step in -12..(36 * 6) {
                    times.push(d + chrono::Duration::minutes(10 * step));
                }
            }
            let mut t = NaiveDate::from_ymd_opt(year, 1, 1)
                .unwrap()
                .and_time(NaiveTime::MIN);
            while t.year() == year {
                times.push(t);
                t += chrono::Duration::minutes(433);
            }
            for local in times {
                assert_eq!(london_instant(local), london_instant_tz(local), "{local}");
                let instant = local.and_utc();
                assert_eq!(
                    london_local(instant),
                    instant.with_timezone(&London).naive_local(),
                    "{instant}"
                );
                checked += 1;
            }
        }
        assert!(checked > 100_000);
        // Outside the rule years the tz database answers: 1995 ended summer
        // time on 22 October, not the last Sunday (29 October).
        let t = NaiveDate::from_ymd_opt(1995, 10, 25)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        assert_eq!(
            london_instant(t),
            Utc.with_ymd_and_hms(1995, 10, 25, 12, 0, 0).unwrap()
        );
    }

    #[test]
    fn later_instant_only_for_overlap_times() {
        let w = parse_written("2024-10-27T01:30").unwrap();
        assert_eq!(w.later_instant(), Some(utc("2024-10-27T01:30:00Z")));
        assert_eq!(
            parse_written("2024-10-27T00:59").unwrap().later_instant(),
            None
        );
        assert_eq!(
            parse_written("2024-10-27T02:00").unwrap().later_instant(),
            None
        );
        assert_eq!(
            parse_written("2024-10-27T01:30Z").unwrap().later_instant(),
            None
        );
        assert_eq!(parse_written("2024-10-27").unwrap().later_instant(), None);
        assert_eq!(
            parse_written("2024-03-31T01:30").unwrap().later_instant(),
            None
        );
        // Outside the rule years, from the tz database: 1995 ended on 22 October.
        assert_eq!(
            parse_written("1995-10-22T01:30").unwrap().later_instant(),
            Some(utc("1995-10-22T01:30:00Z"))
        );
    }

    #[test]
    fn offset_times_take_the_london_calendar_date() {
        // 23:30 UTC on 30 June is 00:30 BST on 1 July in London.
        let t = parse_written("2024-06-30T23:30Z")
            .unwrap()
            .to_assault_time();
        assert_eq!(t.local_date, NaiveDate::from_ymd_opt(2024, 7, 1).unwrap());
        assert_eq!(t.hour(), Some(0));
        assert_eq!(t.iso_weekday(), 1); // 1 July 2024 was a Monday
    }
}
