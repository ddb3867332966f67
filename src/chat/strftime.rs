//! `strftime_now(format)`, which Hugging Face gives chat templates (Llama 3.1 and later put the
//! date in the system prompt with it). UTC, since there is no time-zone database here.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// (year, month 1..=12, day 1..=31) of a day counted from 1970-01-01, proleptic Gregorian.
fn civil(days: i64) -> (i64, usize, i64) {
    // Count from 0000-03-01 so that the leap day ends each 4-year cycle; 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as usize, day)
}

/// Formats `secs` since the epoch (UTC) with C `strftime` directives: `%Y %y %m %d %e %B %b %A
/// %a %H %M %S %j %%`. Others are an error.
pub fn format(secs: i64, fmt: &str) -> Result<String, String> {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let yday = days - civil_days(year) + 1;
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('e') => out.push_str(&format!("{day:2}")),
            Some('B') => out.push_str(MONTHS[month - 1]),
            Some('b') => out.push_str(&MONTHS[month - 1][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('H') => out.push_str(&format!("{:02}", sod / 3600)),
            Some('M') => out.push_str(&format!("{:02}", sod / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", sod % 60)),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('%') => out.push('%'),
            Some(other) => return Err(format!("strftime_now: unsupported directive %{other}")),
            None => return Err("strftime_now: the format ends with %".into()),
        }
    }
    Ok(out)
}

/// Days from 1970-01-01 to January 1st of `year`.
fn civil_days(year: i64) -> i64 {
    let y = year - 1;
    365 * (y - 1969) + (y / 4 - 1969 / 4) - (y / 100 - 1969 / 100) + (y / 400 - 1969 / 400)
}

/// The current UTC time formatted with [`format`].
pub fn now(fmt: &str) -> Result<String, String> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format(secs, fmt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // Values from `date -u -d @SECS +FORMAT`.
        let f = "%Y-%m-%d %H:%M:%S %a %A %b %B %j %y %e %%";
        assert_eq!(
            format(0, f).unwrap(),
            "1970-01-01 00:00:00 Thu Thursday Jan January 001 70  1 %"
        );
        assert_eq!(
            format(951_782_400, f).unwrap(),
            "2000-02-29 00:00:00 Tue Tuesday Feb February 060 00 29 %"
        );
        assert_eq!(
            format(1_735_689_599, f).unwrap(),
            "2024-12-31 23:59:59 Tue Tuesday Dec December 366 24 31 %"
        );
        assert_eq!(format(4_107_542_400, "%d %b %Y").unwrap(), "01 Mar 2100");
        assert_eq!(
            format(-86_400, "%Y-%m-%d %A").unwrap(),
            "1969-12-31 Wednesday"
        );
        assert!(format(0, "%Q").is_err());
        assert!(format(0, "50%").is_err());
    }
}
