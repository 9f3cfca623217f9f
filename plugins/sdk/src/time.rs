//! Calendar conversions without a time-zone database: channels use fixed offsets (Beijing is
//! UTC+8 all year).

/// Seconds since the Unix epoch → "YYYY-MM-DD HH:MM:SS" at a fixed UTC offset.
pub fn format_datetime(unix_seconds: i64, offset_seconds: i32) -> String {
    let local = unix_seconds + i64::from(offset_seconds);
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// "YYYY-MM-DD HH:MM:SS" at a fixed UTC offset → Unix seconds.
pub fn parse_datetime(text: &str, offset_seconds: i32) -> Option<i64> {
    let (date, time) = text.split_once(' ')?;
    Some(parse_date(date)? * 86_400 + parse_time(time)? - i64::from(offset_seconds))
}

/// RFC 3339 with a numeric offset or Z ("2026-11-24T10:34:56+08:00") → Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once('T')?;
    let (time, offset) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (t, o) = rest.split_at(at);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (h, m) = o[1..].split_once(':')?;
        (
            t,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    };
    let time = time.split('.').next()?;
    Some(parse_date(date)? * 86_400 + parse_time(time)? - offset)
}

/// Refuses anything but a real "YYYY-MM-DD" day, with a clear error.
pub fn require_day(day: &str) -> crate::ChannelResult<()> {
    match parse_date(day) {
        Some(_) => Ok(()),
        None => Err(crate::malformed(format!("{day:?} is not a YYYY-MM-DD day"))),
    }
}

/// "YYYY-MM-DD" → days since the epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn parse_time(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next()?.parse().ok()?;
    ((0..24).contains(&h) && (0..60).contains(&m) && (0..61).contains(&s))
        .then_some(h * 3600 + m * 60 + s)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Days/civil conversions in the proleptic Gregorian calendar, using eras of 400 years
// (146,097 days) that start on March 1st so the leap day falls at the end of the year.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = i64::from((m + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(d) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let d = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let m = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let y = year_of_era + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEIJING: i32 = 8 * 3600;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_datetime(0, 0), "1970-01-01 00:00:00");
        // 2026-11-24T07:30:00Z is 15:30 in Beijing.
        assert_eq!(
            format_datetime(1_795_505_400, BEIJING),
            "2026-11-24 15:30:00"
        );
        assert_eq!(format_datetime(951_782_400, 0), "2000-02-29 00:00:00");
    }

    #[test]
    fn parses_what_it_formats() {
        for t in [0, 951_782_400, 1_795_505_400, 4_102_444_799] {
            assert_eq!(
                parse_datetime(&format_datetime(t, BEIJING), BEIJING),
                Some(t)
            );
        }
        assert_eq!(
            parse_rfc3339("2026-11-24T15:30:00+08:00"),
            Some(1_795_505_400)
        );
        assert_eq!(parse_rfc3339("2026-11-24T07:30:00Z"), Some(1_795_505_400));
        assert_eq!(
            parse_rfc3339("2026-11-24T07:30:00.123Z"),
            Some(1_795_505_400)
        );
        assert_eq!(parse_date("2026-02-29"), None);
        assert_eq!(parse_datetime("2026-11-24 25:00:00", 0), None);
    }
}
