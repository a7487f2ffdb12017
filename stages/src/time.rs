//! Lenient date parsing for crawl dates (WARC-Date, JSONL dates) into Unix seconds.
//!
//! Accepts ISO 8601 / RFC 3339 (`2020-08-08T17:02:27Z`, fractional seconds, offsets), WARC/0.18
//! compact dates (`20081029123456`) and plain dates. Returns `None` for anything it cannot make
//! sense of (ClueWeb's `2008-10-294T...`), so that a broken date never fails a record.

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a date-time into Unix seconds (UTC).
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    // Dates are ASCII; anything else would also break the byte-offset slicing below (found by
    // the warc_read fuzz target: `1011-01-0\u{2ab}00:00:0n`).
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    // Compact WARC/0.18 and ARC form: YYYYMMDDhhmmss
    if b.len() >= 8 && b.iter().all(|c| c.is_ascii_digit()) {
        let y = num(&s[0..4])?;
        let mo = num(&s[4..6])? as u32;
        let d = num(&s[6..8])? as u32;
        let (h, mi, se) = if b.len() >= 14 {
            (num(&s[8..10])?, num(&s[10..12])?, num(&s[12..14])?)
        } else {
            (0, 0, 0)
        };
        return civil(y, mo, d, h, mi, se);
    }
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = num(&s[0..4])?;
    let mo = num(&s[5..7])? as u32;
    let d = num(&s[8..10])? as u32;
    if b.len() == 10 {
        return civil(y, mo, d, 0, 0, 0);
    }
    if b[10] != b'T' && b[10] != b' ' || b.len() < 16 {
        return None;
    }
    let h = num(&s[11..13])?;
    let mi = num(&s[14..16])?;
    let mut rest = &s[16..];
    let mut se = 0;
    if let Some(r) = rest.strip_prefix(':') {
        if r.len() < 2 {
            return None;
        }
        se = num(&r[..2])?;
        rest = &r[2..];
    }
    if let Some(r) = rest.strip_prefix('.') {
        let k = r.bytes().take_while(|c| c.is_ascii_digit()).count();
        rest = &r[k..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        r if (r.starts_with('+') || r.starts_with('-')) && r.len() >= 3 => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            let hh = num(&r[1..3])?;
            let mm = r[3..].trim_start_matches(':');
            let mm = if mm.is_empty() { 0 } else { num(mm)? };
            sign * (hh * 3600 + mm * 60)
        }
        _ => return None,
    };
    Some(civil(y, mo, d, h, mi, se)? - offset)
}

fn civil(y: i64, mo: u32, d: u32, h: i64, mi: i64, se: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        // Fuzz regression: a multi-byte character where a digit belongs.
        assert_eq!(parse_datetime("1011-01-0\u{2ab}00:00:0n"), None);
        assert_eq!(parse_datetime("2020-08-08T17:02:27+0\u{e9}"), None);
        assert_eq!(parse_datetime("2020-08-08T17:02:27Z"), Some(1596906147));
        assert_eq!(
            parse_datetime("2020-08-08T17:02:27.123456Z"),
            Some(1596906147)
        );
        assert_eq!(
            parse_datetime("2020-08-08T19:02:27+02:00"),
            Some(1596906147)
        );
        assert_eq!(parse_datetime("20200808170227"), Some(1596906147));
        assert_eq!(parse_datetime("2020-08-08"), Some(1596844800));
        assert_eq!(parse_datetime("2008-10-294T12:00:00Z"), None);
        assert_eq!(parse_datetime("garbage"), None);
    }
}
