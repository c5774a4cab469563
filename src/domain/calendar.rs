//! The university's calendar: every date-based rule is judged on the Stockholm wall-clock date.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Stockholm;

/// The date in Europe/Stockholm at instant `now`.
///
/// Deadlines are "on or before" a calendar date as the student and the university experience it, so a
/// submission at 23:59 local time on the deadline day counts even though it is already the next day in
/// UTC half of the year (and the reverse at 00:30 local time).
pub fn stockholm_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&Stockholm).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn summer_time_is_two_hours_ahead_of_utc() {
        let date = NaiveDate::from_ymd_opt(2026, 6, 2).unwrap();
        assert_eq!(stockholm_date(utc(2026, 6, 1, 22, 0)), date);
        assert_eq!(
            stockholm_date(utc(2026, 6, 1, 21, 59)),
            date.pred_opt().unwrap()
        );
    }

    #[test]
    fn winter_time_is_one_hour_ahead_of_utc() {
        let date = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        assert_eq!(stockholm_date(utc(2026, 1, 1, 23, 0)), date);
        assert_eq!(
            stockholm_date(utc(2026, 1, 1, 22, 59)),
            date.pred_opt().unwrap()
        );
    }
}
