//! Calendar months, the unit of a public release.

use crate::ReleaseError;
use chrono::{Datelike, Days, NaiveDate};

/// A calendar month, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// The month of `YYYY-MM` (four-digit year, two-digit month).
    pub fn parse(text: &str) -> Result<Month, ReleaseError> {
        let bad = || ReleaseError::Month(text.to_owned());
        let b = text.as_bytes();
        if b.len() != 7
            || b[4] != b'-'
            || !b
                .iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit())
        {
            return Err(bad());
        }
        let year: i32 = text[..4].parse().map_err(|_| bad())?;
        let month: u32 = text[5..].parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || NaiveDate::from_ymd_opt(year, month, 1).is_none() {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    /// The month that holds `day`.
    pub fn of(day: NaiveDate) -> Month {
        Month {
            year: day.year(),
            month: day.month(),
        }
    }

    /// Its first day.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a valid month")
    }

    /// Its last day.
    pub fn last_day(self) -> NaiveDate {
        self.next()
            .first_day()
            .pred_opt()
            .expect("not the first day of time")
    }

    /// The month after.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before.
    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// True when the month has ended by `today`: its last day is before it.
    pub fn is_complete(self, today: NaiveDate) -> bool {
        self.last_day() < today
    }

    /// The month a scheduled release is due for on `today`: the previous
    /// month once `lag_days` days of the current one have passed (so that
    /// late uploads of its records are in), else none.
    pub fn due(today: NaiveDate, lag_days: u32) -> Option<Month> {
        let current = Month::of(today);
        let from = current
            .first_day()
            .checked_add_days(Days::new(u64::from(lag_days)))?;
        (today >= from).then(|| current.previous())
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months_parse_and_print_as_yyyy_mm() {
        let m = Month::parse("2024-02").unwrap();
        assert_eq!(m.to_string(), "2024-02");
        assert_eq!(m.first_day(), day("2024-02-01"));
        // A leap year.
        assert_eq!(m.last_day(), day("2024-02-29"));
        assert_eq!(
            Month::parse("2023-12").unwrap().next().to_string(),
            "2024-01"
        );
        assert_eq!(
            Month::parse("2024-01").unwrap().previous().to_string(),
            "2023-12"
        );
        for bad in [
            "2024-13",
            "2024-00",
            "2024-1",
            "24-01",
            "2024/01",
            "2024-01-01",
            "+202-01",
            "",
        ] {
            assert!(
                matches!(Month::parse(bad), Err(ReleaseError::Month(t)) if t == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_month_is_complete_the_day_after_its_last() {
        let march = Month::parse("2024-03").unwrap();
        assert!(!march.is_complete(day("2024-03-31")));
        assert!(march.is_complete(day("2024-04-01")));
        assert!(!march.is_complete(day("2024-03-01")));
    }

    #[test]
    fn the_previous_month_is_due_after_the_lag() {
        assert_eq!(
            Month::due(day("2024-04-01"), 0),
            Month::parse("2024-03").ok()
        );
        assert_eq!(Month::due(day("2024-04-07"), 7), None);
        assert_eq!(
            Month::due(day("2024-04-08"), 7),
            Month::parse("2024-03").ok()
        );
        assert_eq!(
            Month::due(day("2024-01-15"), 7),
            Month::parse("2023-12").ok()
        );
    }
}
