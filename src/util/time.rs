//! Wall-clock instants as text: the one RFC 3339 form the reports write (UTC,
//! milliseconds) and the one parser that reads them back (any offset).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` as reports write it: RFC 3339, UTC, milliseconds (`2026-05-01T12:00:00.250Z`).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// An RFC 3339 time (`2026-05-01T12:00:00Z`, `2026-05-01T14:00:00.5+02:00`), or `None`
/// when it is not one or lies before 1970.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    let nanos = u64::try_from(t.unix_timestamp_nanos()).ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_offsets_count() {
        let t = UNIX_EPOCH + Duration::from_millis(1_777_636_800_250);
        assert_eq!(rfc3339(t), "2026-05-01T12:00:00.250Z");
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        assert_eq!(parse_rfc3339("2026-05-01T14:00:00.250+02:00"), Some(t));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
