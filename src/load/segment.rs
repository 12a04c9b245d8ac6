//! One schedule striped over N processes started together: `--segment I/N` and
//! `--start-at TIME`. Owns their grammar, the global numbering of a segment's requests
//! and the wait for the common start.
//!
//! Segment I of N sends the requests of the one global schedule whose sequence number
//! k has k mod N = I, so N segments together send exactly what one process would, each
//! due at its global time. It must not change the schedule itself (that is
//! [`super::schedule`]'s) nor start a run late without counting the lateness: a start
//! already passed by more than [`START_TOLERANCE`] is refused.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::util::time::rfc3339;

pub use crate::report::model::Segment;

/// How far past `--start-at` a process may still start: its first requests are then
/// late by as much, and that lateness counts in their latency.
pub const START_TOLERANCE: Duration = Duration::from_secs(1);

/// The furthest ahead `--start-at` may be: further is taken for a mistake (milliseconds
/// given for seconds, a wrong year).
const START_HORIZON: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most segments a schedule is split into.
const MAX_SEGMENTS: u64 = 10_000;

/// The whole schedule (no `--segment`).
pub const WHOLE: Segment = Segment { index: 0, count: 1 };

/// `--segment I/N`: I from 0 (as Kubernetes' `JOB_COMPLETION_INDEX`), I < N.
pub fn parse_segment(s: &str) -> Result<Segment, String> {
    let err = |why: &str| format!("invalid --segment {s:?}: {why}; expected I/N with 0 <= I < N, e.g. 0/3");
    let (i, n) = s.trim().split_once('/').ok_or_else(|| err("no '/'"))?;
    let index: u64 = i.trim().parse().map_err(|_| err("I is not a whole number"))?;
    let count: u64 = n.trim().parse().map_err(|_| err("N is not a whole number"))?;
    if count == 0 || count > MAX_SEGMENTS {
        return Err(err(&format!("N must be 1 to {MAX_SEGMENTS}")));
    }
    if index >= count {
        return Err(err("I must be less than N (segments count from 0)"));
    }
    Ok(Segment { index, count })
}

/// Lane `lane` of `lanes` in this process, as a lane of the global schedule: it owns
/// the global sequence numbers `l`, `l + ls`, … for the returned `(l, ls)`, which are
/// this segment's requests `lane`, `lane + lanes`, ….
pub fn stripe(segment: Segment, lane: u64, lanes: u64) -> (u64, u64) {
    (segment.index + segment.count * lane, segment.count * lanes)
}

/// The global sequence number of this segment's `j`-th request.
pub fn global(segment: Segment, j: u64) -> u64 {
    segment.index + segment.count * j
}

/// `--start-at`: RFC 3339 (`2026-05-01T12:00:00Z`, `2026-05-01T14:00:00+02:00`) or
/// Unix seconds (`1777636800`, `1777636800.5`).
pub fn parse_start_at(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    let err = || {
        format!(
            "invalid --start-at {s:?}: expected an RFC 3339 time such as 2026-05-01T12:00:00Z, \
             or Unix seconds such as 1777636800 (date -u -d '+1 min' +%FT%TZ)"
        )
    };
    if let Ok(secs) = s.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) || secs > 1e11 {
            return Err(err());
        }
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    crate::util::time::parse_rfc3339(s).ok_or_else(err)
}

/// The monotonic instant of wall-clock `at`, and how far ahead it is (negative: past).
fn locate(at: SystemTime) -> (Instant, f64) {
    let (now, wall) = (Instant::now(), SystemTime::now());
    match at.duration_since(wall) {
        Ok(ahead) => (now + ahead, ahead.as_secs_f64()),
        Err(e) => {
            let behind = e.duration();
            (now.checked_sub(behind).unwrap_or(now), -behind.as_secs_f64())
        }
    }
}

/// Checks `--start-at` against the clock: a start passed by more than the tolerance,
/// or absurdly far ahead, is a usage error.
pub fn check_start(at: SystemTime, shown: &str) -> anyhow::Result<()> {
    let (_, ahead) = locate(at);
    if ahead < -START_TOLERANCE.as_secs_f64() {
        anyhow::bail!(
            "--start-at {shown} passed {:.1} s ago (a start may be at most {} s late): give a time in the future",
            -ahead,
            START_TOLERANCE.as_secs()
        );
    }
    if ahead > START_HORIZON.as_secs_f64() {
        anyhow::bail!("--start-at {shown} is more than 7 days away: expected seconds, not milliseconds?");
    }
    Ok(())
}

/// Waits until wall-clock `at`, saying so on stderr, and returns its monotonic instant
/// (the run's t0; up to the tolerance in the past). `None` if stopped while waiting.
pub async fn wait_for(
    at: SystemTime,
    segment: Segment,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Instant>> {
    let shown = rfc3339(at);
    check_start(at, &shown)?;
    let (t0, ahead) = locate(at);
    if ahead > 0.0 {
        let who = if segment == WHOLE { String::new() } else { format!("segment {segment} ") };
        eprintln!("nehr-probe load: {who}waiting {ahead:.1} s to start at {shown}");
    } else {
        eprintln!("nehr-probe load: starting {:.3} s after --start-at {shown}", -ahead);
    }
    // Tokio's timer wakes up to a millisecond late; the pacer's own clock waits out the
    // last stretch to t0 exactly.
    let wake = t0.checked_sub(Duration::from_millis(5)).unwrap_or(t0);
    tokio::select! {
        _ = shutdown.cancelled() => Ok(None),
        () = tokio::time::sleep_until(wake.into()) => Ok(Some(t0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_grammar() {
        assert_eq!(parse_segment("0/3"), Ok(Segment { index: 0, count: 3 }));
        assert_eq!(parse_segment(" 2 / 3 "), Ok(Segment { index: 2, count: 3 }));
        assert_eq!(parse_segment("0/1"), Ok(WHOLE));
        for bad in ["", "3", "3/3", "4/3", "-1/3", "0/0", "a/3", "1/b", "1/2/3", "0/10001", "$(JOB_COMPLETION_INDEX)/3"]
        {
            let e = parse_segment(bad).unwrap_err();
            assert!(e.contains("expected I/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn segments_partition_the_schedule() {
        // Every global number belongs to exactly one segment; shares add to the whole.
        let n = 3;
        let segs: Vec<Segment> = (0..n).map(|index| Segment { index, count: n }).collect();
        for total in [0, 1, 2, 3, 10, 100, 101] {
            let share = |s: Segment| (0..total).take_while(|&j| global(s, j) < total).count() as u64;
            assert_eq!(segs.iter().map(|&s| share(s)).sum::<u64>(), total, "{total}");
        }
        let mut seen = vec![0; 60];
        for s in &segs {
            // Two lanes per process, as on a two-CPU machine.
            for lane in 0..2 {
                let (l, ls) = stripe(*s, lane, 2);
                for j in 0..10 {
                    seen[(l + ls * j) as usize] += 1;
                }
            }
            assert_eq!(global(*s, 4), s.index + 12);
        }
        assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
        assert_eq!(stripe(WHOLE, 1, 2), (1, 2));
    }

    #[test]
    fn start_times() {
        let t = parse_start_at("2026-05-01T12:00:00Z").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_777_636_800));
        assert_eq!(parse_start_at("2026-05-01T14:00:00+02:00").unwrap(), t);
        assert_eq!(parse_start_at("1777636800").unwrap(), t);
        assert_eq!(parse_start_at("1777636800.25").unwrap(), t + Duration::from_millis(250));
        assert_eq!(rfc3339(t + Duration::from_millis(250)), "2026-05-01T12:00:00.250Z");
        for bad in ["", "soon", "2026-05-01", "2026-05-01 12:00", "-5", "inf", "1e300", "$(NEHR_PROBE_START_AT)"] {
            let e = parse_start_at(bad).unwrap_err();
            assert!(e.contains("expected an RFC 3339 time"), "{bad}: {e}");
        }
        let now = SystemTime::now();
        assert!(check_start(now + Duration::from_secs(60), "x").is_ok());
        assert!(check_start(now - Duration::from_millis(200), "x").is_ok());
        let e = check_start(now - Duration::from_secs(30), "x").unwrap_err().to_string();
        assert!(e.contains("passed 30") && e.contains("in the future"), "{e}");
        assert!(check_start(now + Duration::from_secs(3600 * 24 * 30), "x").is_err());
    }
}
