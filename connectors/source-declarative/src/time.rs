//! Times as the CDK writes and reads them: Python's `strftime`/`strptime` directives plus
//! Airbyte's `%s`, `%s_as_float`, `%ms`, `%_ms` and `%epoch_microseconds`, and ISO 8601
//! durations for windows, steps and lookbacks.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDateTime, TimeZone, Timelike, Utc};

/// A time with its offset (UTC unless the text said otherwise).
pub type Time = DateTime<FixedOffset>;

/// The current time, in UTC.
pub fn now() -> Time {
    Utc::now().fixed_offset()
}

/// `dt` written in `format` as the CDK's `DatetimeParser.format` writes it.
pub fn format(dt: &Time, format: &str) -> String {
    let micros = dt.timestamp_micros();
    match format {
        "%s" => return dt.timestamp().to_string(),
        "%s_as_float" => return python_float(micros as f64 / 1e6),
        "%epoch_microseconds" => return micros.to_string(),
        "%ms" => return dt.timestamp_millis().to_string(),
        _ => {}
    }
    let format = format.replace("%_ms", &format!("{:03}", dt.nanosecond() / 1_000_000));
    strftime(dt, &format)
}

/// Python's `datetime.strftime` (the C library's directives that Python passes through).
pub fn strftime(dt: &Time, format: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(d) = chars.next() else {
            out.push('%');
            break;
        };
        match d {
            'Y' => out.push_str(&format!("{:04}", dt.year())),
            'y' => out.push_str(&format!("{:02}", dt.year() % 100)),
            'm' => out.push_str(&format!("{:02}", dt.month())),
            'd' => out.push_str(&format!("{:02}", dt.day())),
            'e' => out.push_str(&format!("{:>2}", dt.day())),
            'H' => out.push_str(&format!("{:02}", dt.hour())),
            'I' => out.push_str(&format!("{:02}", (dt.hour() + 11) % 12 + 1)),
            'p' => out.push_str(if dt.hour() < 12 { "AM" } else { "PM" }),
            'M' => out.push_str(&format!("{:02}", dt.minute())),
            'S' => out.push_str(&format!("{:02}", dt.second())),
            'f' => out.push_str(&format!("{:06}", dt.nanosecond() / 1000)),
            'j' => out.push_str(&format!("{:03}", dt.ordinal())),
            'a' => out.push_str(&dt.format("%a").to_string()),
            'A' => out.push_str(&dt.format("%A").to_string()),
            'b' | 'h' => out.push_str(&dt.format("%b").to_string()),
            'B' => out.push_str(&dt.format("%B").to_string()),
            'w' => out.push_str(&dt.weekday().num_days_from_sunday().to_string()),
            'u' => out.push_str(&dt.weekday().number_from_monday().to_string()),
            'U' => out.push_str(&dt.format("%U").to_string()),
            'W' => out.push_str(&dt.format("%W").to_string()),
            'G' => out.push_str(&dt.format("%G").to_string()),
            'V' => out.push_str(&dt.format("%V").to_string()),
            'z' => out.push_str(&offset(dt, "")),
            ':' if chars.clone().next() == Some('z') => {
                chars.next();
                out.push_str(&offset(dt, ":"));
            }
            'Z' => out.push_str(if dt.offset().local_minus_utc() == 0 {
                "UTC"
            } else {
                ""
            }),
            's' => out.push_str(&dt.timestamp().to_string()),
            'F' => out.push_str(&strftime(dt, "%Y-%m-%d")),
            'T' => out.push_str(&strftime(dt, "%H:%M:%S")),
            'D' => out.push_str(&strftime(dt, "%m/%d/%y")),
            '%' => out.push('%'),
            other => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out
}

fn offset(dt: &Time, sep: &str) -> String {
    let secs = dt.offset().local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}{sep}{:02}", secs / 3600, secs % 3600 / 60)
}

/// Python's `repr` of a float (`1.0`, `0.5`, `1e+16`).
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Scientific, as Python writes it: `1e+16`, `1.5e-05`.
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f:?}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Text in `format` as the CDK's `DatetimeParser.parse` reads it; naive times are UTC.
pub fn parse(text: &str, format: &str) -> Option<Time> {
    let text = text.trim();
    let epoch = |secs: f64| {
        let micros = (secs * 1e6).round() as i64;
        Utc.timestamp_micros(micros)
            .single()
            .map(|t| t.fixed_offset())
    };
    match format {
        "%s" => {
            return Utc
                .timestamp_opt(text.parse().ok()?, 0)
                .single()
                .map(|t| t.fixed_offset());
        }
        "%s_as_float" => return epoch(text.parse().ok()?),
        "%epoch_microseconds" => {
            return Utc
                .timestamp_micros(text.parse().ok()?)
                .single()
                .map(|t| t.fixed_offset());
        }
        "%ms" => {
            return Utc
                .timestamp_millis_opt(text.parse().ok()?)
                .single()
                .map(|t| t.fixed_offset());
        }
        _ => {}
    }
    strptime(text, format)
}

/// Python's `datetime.strptime` for the directives manifests use.
pub fn strptime(text: &str, format: &str) -> Option<Time> {
    // Python's `%z` also reads `Z` and `+00:00`; chrono's reads `+0000` and `+00:00`.
    let mut text = text.to_string();
    let mut fmt = String::new();
    let mut chars = format.chars().peekable();
    let mut has_offset = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            fmt.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => {
                // Python's `%f` is 1–6 digits of fraction after a literal `.` in the format.
                if fmt.ends_with('.') {
                    fmt.pop();
                    fmt.push_str("%.f");
                } else {
                    fmt.push_str("%6f");
                }
            }
            Some('z') => {
                has_offset = true;
                fmt.push_str("%#z");
            }
            Some('_') if chars.peek() == Some(&'m') => {
                chars.next();
                chars.next();
                fmt.push_str("%3f");
            }
            Some(d) => {
                fmt.push('%');
                fmt.push(d);
            }
            None => fmt.push('%'),
        }
    }
    if has_offset && text.ends_with('Z') {
        text.pop();
        text.push_str("+00:00");
    }
    if has_offset {
        return DateTime::parse_from_str(&text, &fmt).ok();
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(&text, &fmt) {
        return Some(t.and_utc().fixed_offset());
    }
    chrono::NaiveDate::parse_from_str(&text, &fmt)
        .ok()
        .map(|d| {
            d.and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc()
                .fixed_offset()
        })
}

/// ISO 8601 text in the liberal ways `dateutil.parser.isoparse`/`parse` accept it: dates,
/// date-times with `T` or a space, fractions, `Z` or an offset.
pub fn parse_iso(text: &str) -> Option<Time> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt);
    }
    let t2 = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&t2) {
        return Some(dt);
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z"] {
        let fixed = if t2.ends_with('Z') {
            format!("{}+00:00", &t2[..t2.len() - 1])
        } else {
            t2.clone()
        };
        if let Ok(dt) = DateTime::parse_from_str(&fixed, f) {
            return Some(dt);
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&t2, f) {
            return Some(dt.and_utc().fixed_offset());
        }
    }
    for f in ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d"] {
        if let Ok(d) = chrono::NaiveDate::parse_from_str(t, f) {
            return d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc().fixed_offset());
        }
    }
    None
}

/// An ISO 8601 duration (`P1D`, `PT1H30M`, `P1W`, `P1M`), months as 30 days and years as 365
/// (the CDK's `isodate` keeps calendar months; windows of months are rare and documented).
/// The longest duration read (about 10,000 years): longer ones are no duration, so that time
/// arithmetic on them stays inside the calendar.
pub const MAX_DURATION_SECS: f64 = 10_000.0 * 365.0 * 86_400.0;

/// `secs` as a duration added to `total`, within [`MAX_DURATION_SECS`] altogether.
fn add_secs(total: Duration, secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs.abs() > MAX_DURATION_SECS {
        return None;
    }
    let sum = total.checked_add(&Duration::microseconds((secs * 1e6) as i64))?;
    (sum.num_seconds().unsigned_abs() as f64 <= MAX_DURATION_SECS).then_some(sum)
}

pub fn duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let body = t.strip_prefix('P')?;
    let (date, time) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let mut total = Duration::zero();
    let mut any = false;
    let mut num = String::new();
    for c in date.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        any = true;
        let secs = match c {
            'Y' => n * 365.0 * 86400.0,
            'M' => n * 30.0 * 86400.0,
            'W' => n * 7.0 * 86400.0,
            'D' => n * 86400.0,
            _ => return None,
        };
        total = add_secs(total, secs)?;
    }
    if !num.is_empty() {
        return None;
    }
    if let Some(time) = time {
        for c in time.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let n: f64 = num.parse().ok()?;
            num.clear();
            any = true;
            let secs = match c {
                'H' => n * 3600.0,
                'M' => n * 60.0,
                'S' => n,
                _ => return None,
            };
            total = add_secs(total, secs)?;
        }
        if !num.is_empty() {
            return None;
        }
    }
    any.then_some(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn formats_follow_python_and_airbyte() {
        let dt = t("2024-03-05T06:07:08.123456Z");
        assert_eq!(format(&dt, "%Y-%m-%dT%H:%M:%SZ"), "2024-03-05T06:07:08Z");
        assert_eq!(
            format(&dt, "%Y-%m-%dT%H:%M:%S.%f%z"),
            "2024-03-05T06:07:08.123456+0000"
        );
        assert_eq!(format(&dt, "%s"), "1709618828");
        assert_eq!(format(&dt, "%ms"), "1709618828123");
        assert_eq!(format(&dt, "%epoch_microseconds"), "1709618828123456");
        assert_eq!(format(&dt, "%s_as_float"), "1709618828.123456");
        assert_eq!(
            format(&dt, "%Y-%m-%dT%H:%M:%S.%_msZ"),
            "2024-03-05T06:07:08.123Z"
        );
        assert_eq!(format(&dt, "%d %b %Y %I%p %%"), "05 Mar 2024 06AM %");
    }

    #[test]
    fn parsing_reads_what_formatting_writes() {
        let dt = t("2024-03-05T06:07:08.123456Z");
        for f in [
            "%Y-%m-%dT%H:%M:%S.%f%z",
            "%Y-%m-%dT%H:%M:%S.%fZ",
            "%s_as_float",
            "%epoch_microseconds",
        ] {
            assert_eq!(parse(&format(&dt, f), f), Some(dt), "{f}");
        }
        assert_eq!(
            parse("2024-03-05", "%Y-%m-%d"),
            Some(t("2024-03-05T00:00:00Z"))
        );
        assert_eq!(
            parse("2024-03-05T06:07:08Z", "%Y-%m-%dT%H:%M:%S%z"),
            Some(t("2024-03-05T06:07:08Z"))
        );
        assert_eq!(parse("1709618828", "%s"), Some(t("2024-03-05T06:07:08Z")));
        assert_eq!(parse("nope", "%Y-%m-%d"), None);
        assert_eq!(
            parse_iso("2024-03-05 06:07:08+01:00"),
            Some(t("2024-03-05T06:07:08+01:00"))
        );
        assert_eq!(parse_iso("2024-03-05"), Some(t("2024-03-05T00:00:00Z")));
    }

    #[test]
    fn durations_and_floats() {
        assert_eq!(duration("P1D"), Some(Duration::days(1)));
        assert_eq!(duration("PT1H30M"), Some(Duration::minutes(90)));
        assert_eq!(duration("P1W"), Some(Duration::days(7)));
        assert_eq!(duration("PT0.000001S"), Some(Duration::microseconds(1)));
        assert_eq!(duration("P"), None);
        assert_eq!(duration("1D"), None);
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(1.5), "1.5");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(1.5e-5), "1.5e-05");
    }
}
