//! A statement's day, `YYYY-MM-DD` in the channel's time zone (Beijing time for Alipay and
//! WeChat Pay), and the instants it spans.

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    /// Days since 1970-01-01.
    days: i64,
}

impl Day {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
            2 => 28,
            _ => return None,
        };
        if !(1970..=9999).contains(&year) || !(1..=days_in_month).contains(&day) {
            return None;
        }
        Some(Self {
            days: days_from_civil(year, month, day),
        })
    }

    /// The day `unix_ms` falls on at `offset_s` from UTC.
    pub fn of(unix_ms: i64, offset_s: i32) -> Self {
        Self {
            days: (unix_ms + i64::from(offset_s) * 1000).div_euclid(DAY_MS),
        }
    }

    pub fn previous(self) -> Self {
        self.plus(-1)
    }

    /// The day `days` after this one (before it when negative).
    pub fn plus(self, days: i64) -> Self {
        Self {
            days: self.days + days,
        }
    }

    /// The first instant of the day at `offset_s` from UTC, in Unix milliseconds; the day
    /// ends where the next begins.
    pub fn start_ms(self, offset_s: i32) -> i64 {
        self.days * DAY_MS - i64::from(offset_s) * 1000
    }

    pub fn end_ms(self, offset_s: i32) -> i64 {
        self.start_ms(offset_s) + DAY_MS
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (year, month, day) = civil_from_days(self.days);
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

// Howard Hinnant's algorithms between the proleptic Gregorian calendar and day numbers.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_read_and_print_alike() {
        for text in [
            "1970-01-01",
            "2024-02-29",
            "2026-11-30",
            "2026-12-31",
            "2100-03-01",
        ] {
            assert_eq!(Day::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-11-31",
            "26-11-30",
            "2026/11/30",
            "2026-11-3x",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_beijing_day_starts_at_sixteen_utc_the_day_before() {
        let day = Day::parse("2026-11-30").unwrap();
        let beijing = 8 * 3600;
        // 2026-11-29T16:00:00Z
        assert_eq!(day.start_ms(beijing), 1_795_968_000_000);
        assert_eq!(day.end_ms(beijing) - day.start_ms(beijing), DAY_MS);
        assert_eq!(Day::of(day.start_ms(beijing), beijing), day);
        assert_eq!(Day::of(day.start_ms(beijing) - 1, beijing), day.previous());
        assert_eq!(day.previous().to_string(), "2026-11-29");
    }
}
