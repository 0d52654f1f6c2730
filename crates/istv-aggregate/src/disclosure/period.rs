//! Fine places only for whole periods: ward, LSOA and H3 resolution 9-10
//! figures are published only for whole ISO weeks or whole months, so that
//! two ranges a day apart cannot be differenced at the finest places.

use crate::query::{Dimension, Query, QueryError};
use chrono::{Datelike, NaiveDate, Weekday};

fn is_month_end(d: NaiveDate) -> bool {
    d.succ_opt().is_none_or(|n| n.day() == 1)
}

impl Query {
    /// The place detail that the whole-period rule covers, when the query
    /// groups or filters by it: `ward`, `lsoa` or a cell at resolution 9
    /// or 10.
    pub fn fine_place(&self) -> Option<String> {
        let uses = |d: Dimension| self.uses(d);
        if uses(Dimension::Ward) {
            Some("ward".into())
        } else if uses(Dimension::Lsoa) {
            Some("lsoa".into())
        } else if uses(Dimension::Cell) && self.resolution().get() >= 9 {
            Some(format!("cell (resolution {})", self.resolution().get()))
        } else {
            None
        }
    }

    /// Checks the whole-period rule: a query at a fine place
    /// ([`Query::fine_place`]) must not group or filter by day, must not
    /// combine week and month, and its `from` and `to` must bound whole
    /// ISO weeks (Monday to Sunday) or whole months (first to last day);
    /// with week it must be weeks, with month months. An open bound is
    /// whole. The error names the rule.
    pub fn check_whole_periods(&self) -> Result<(), QueryError> {
        let Some(level) = self.fine_place() else {
            return Ok(());
        };
        let fail = |reason: &str| {
            Err(QueryError::WholePeriodsOnly {
                level: level.clone(),
                reason: reason.to_owned(),
            })
        };
        if self.uses(Dimension::Day) {
            return fail("`day` cannot be grouped or filtered by; use `week` or `month`");
        }
        let (week, month) = (self.uses(Dimension::Week), self.uses(Dimension::Month));
        if week && month {
            return fail("`week` and `month` cannot be combined");
        }
        let whole_weeks = self.from().is_none_or(|d| d.weekday() == Weekday::Mon)
            && self.to().is_none_or(|d| d.weekday() == Weekday::Sun);
        let whole_months =
            self.from().is_none_or(|d| d.day() == 1) && self.to().is_none_or(is_month_end);
        if week && !whole_weeks {
            return fail("with `week`, `from` must be a Monday and `to` a Sunday");
        }
        if month && !whole_months {
            return fail("with `month`, `from` must be the first and `to` the last day of a month");
        }
        if !whole_weeks && !whole_months {
            return fail(
                "`from` must be a Monday and `to` a Sunday, or `from` the first and `to` the last day of a month",
            );
        }
        Ok(())
    }

    /// True when the query groups or filters by `d`.
    fn uses(&self, d: Dimension) -> bool {
        self.group_by().contains(&d) || self.filtered_by().any(|f| f == d)
    }
}
