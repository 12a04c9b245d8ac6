//! When each request of an open-model run is due: request *i* is due at
//! `t0 + offset(i)`, computed from *i* alone, so the schedule never drifts however late
//! the client or the server runs. Owns the `--stages` grammar and the rate math; it
//! knows nothing of clocks, sockets or workers.
//!
//! The rate is piecewise linear in time (k6's stages: each stage ramps linearly from the
//! rate the previous one ended at, the first from 0). The number of requests due by time
//! `t` is the integral of the rate, `N(t)`, and request *i* is due at `N⁻¹(i)`.

use std::fmt;
use std::time::Duration;

use crate::util::units::parse_duration;

/// One k6-style stage: ramp linearly to `target` requests per second over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", humantime::format_duration(self.duration), self.target)
    }
}

/// The longest a `--stages` schedule may last in all.
pub const MAX_STAGES: Duration = Duration::from_secs(366 * 86_400);

/// `30s:100,2m:100,30s:0`: ramp to 100 rps over 30 s, hold 2 min, ramp down over 30 s.
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, String> {
    let err = |why: String| format!("invalid --stages {s:?}: {why}; expected DURATION:RPS,… e.g. 30s:100,2m:100,30s:0");
    let mut stages = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let Some((d, r)) = part.split_once(':') else {
            return Err(err(format!("stage {part:?} has no ':'")));
        };
        let duration = parse_duration(d).map_err(err)?;
        let target: f64 = r.trim().parse().map_err(|_| err(format!("rate {:?} is not a number", r.trim())))?;
        if !target.is_finite() || target < 0.0 {
            return Err(err(format!("rate {target} must be 0 or more")));
        }
        stages.push(Stage { duration, target });
    }
    if stages.iter().all(|s| s.duration.is_zero()) {
        return Err(err("the stages last no time".into()));
    }
    // Far beyond any load test, and what keeps the schedule's arithmetic in range.
    let total = stages.iter().try_fold(Duration::ZERO, |sum, s| sum.checked_add(s.duration));
    if total.is_none_or(|t| t > MAX_STAGES) {
        return Err(err(format!("the stages last more than {} days in all", MAX_STAGES.as_secs() / 86_400)));
    }
    if stages.iter().all(|s| s.target == 0.0) {
        return Err(err("every stage has rate 0, so no request would be sent".into()));
    }
    Ok(stages)
}

/// One stage as a segment of the rate curve, with the requests due before it.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: f64,
    len: f64,
    from: f64,
    to: f64,
    before: f64,
}

impl Segment {
    fn requests(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.len
    }
}

/// An open-model schedule: where request *i* falls in time.
#[derive(Debug, Clone)]
pub struct Schedule(Kind);

#[derive(Debug, Clone)]
enum Kind {
    /// `--rps`: request *i* at `i / rps`.
    Constant { rps: f64 },
    /// `--stages`: a piecewise-linear rate.
    Stages { stages: Vec<Stage>, segments: Vec<Segment>, total: f64 },
}

impl Schedule {
    pub fn constant(rps: f64) -> Schedule {
        Schedule(Kind::Constant { rps })
    }

    pub fn stages(stages: Vec<Stage>) -> Schedule {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut start, mut from, mut before) = (0.0, 0.0, 0.0);
        for s in &stages {
            let seg = Segment { start, len: s.duration.as_secs_f64(), from, to: s.target, before };
            before += seg.requests();
            start += seg.len;
            from = s.target;
            segments.push(seg);
        }
        Schedule(Kind::Stages { stages, segments, total: before })
    }

    /// When request `i` is due, from the start of the run; `None` once the schedule has
    /// no request `i` (the stages are over).
    pub fn offset(&self, i: u64) -> Option<Duration> {
        let i = i as f64;
        match &self.0 {
            Kind::Constant { rps } => Some(Duration::from_secs_f64(i / rps)),
            Kind::Stages { segments, total, .. } => {
                if i >= *total {
                    return None;
                }
                // The last segment that starts at or before request i and carries requests.
                let seg = segments.iter().rev().find(|s| s.before <= i && s.requests() > 0.0)?;
                // Solve before + from·τ + (to − from)·τ²/(2·len) = i for τ, in the form
                // that stays exact when the ramp is flat (to = from).
                let a = (seg.to - seg.from) / (2.0 * seg.len);
                let k = i - seg.before;
                let disc = (seg.from * seg.from + 4.0 * a * k).max(0.0);
                let denom = seg.from + disc.sqrt();
                let tau = if denom > 0.0 { 2.0 * k / denom } else { 0.0 };
                Some(Duration::from_secs_f64(seg.start + tau.clamp(0.0, seg.len)))
            }
        }
    }

    /// How long the schedule lasts by itself: the sum of the stages; `None` for `--rps`.
    pub fn length(&self) -> Option<Duration> {
        match &self.0 {
            Kind::Constant { .. } => None,
            Kind::Stages { stages, .. } => Some(stages.iter().map(|s| s.duration).sum()),
        }
    }

    /// How many requests are due in `[0, window)`.
    pub fn due_within(&self, window: Duration) -> u64 {
        let t = window.as_secs_f64();
        let n = match &self.0 {
            Kind::Constant { rps } => rps * t,
            Kind::Stages { segments, total, .. } => match segments.iter().rev().find(|s| s.start <= t) {
                None => 0.0,
                Some(s) => {
                    let tau = (t - s.start).min(s.len);
                    let rate_at = s.from + (s.to - s.from) * if s.len > 0.0 { tau / s.len } else { 0.0 };
                    (s.before + (s.from + rate_at) / 2.0 * tau).min(*total)
                }
            },
        };
        // Requests 0..n are due before t when their offset is < t: ceil, minus float noise.
        (n - 1e-9).ceil().max(0.0) as u64
    }

    /// The rate a warmup runs at: `--rps`, or the first stage's target.
    pub fn warmup_rate(&self) -> f64 {
        match &self.0 {
            Kind::Constant { rps } => *rps,
            Kind::Stages { stages, .. } => stages.iter().map(|s| s.target).find(|&r| r > 0.0).unwrap_or_default(),
        }
    }

    /// The lowest rate above `floor` the schedule runs at (stages ramp through every rate
    /// between 0 and their peak), if it ever runs above it.
    pub fn lowest_rate_above(&self, floor: f64) -> Option<f64> {
        match &self.0 {
            Kind::Constant { rps } => (*rps > floor).then_some(*rps),
            Kind::Stages { stages, .. } => stages.iter().any(|s| s.target > floor).then_some(floor.next_up()),
        }
    }

    /// The mean planned rate over `window` (for `--stages`, planned requests over time).
    pub fn mean_rate(&self, window: Duration) -> f64 {
        match &self.0 {
            Kind::Constant { rps } => *rps,
            Kind::Stages { .. } if window.is_zero() => 0.0,
            Kind::Stages { .. } => self.due_within(window) as f64 / window.as_secs_f64(),
        }
    }
}

/// The run-wide sequence number of lane `lane`'s `j`-th request, when `lanes` lanes
/// share a schedule round robin (lane `k` owns `k`, `k + lanes`, …).
pub fn lane_seq(lane: u64, lanes: u64, j: u64) -> u64 {
    lane + lanes * j
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn stages_grammar() {
        let s = parse_stages("30s:100,2m:100, 30s:0").unwrap();
        assert_eq!(
            s,
            [
                Stage { duration: secs(30.0), target: 100.0 },
                Stage { duration: secs(120.0), target: 100.0 },
                Stage { duration: secs(30.0), target: 0.0 },
            ]
        );
        assert_eq!(parse_stages("0s:50,10s:50").unwrap()[0].duration, Duration::ZERO);
        for bad in ["", "30s", "30s:x", "ten:5", "30s:-1", "30s:inf", "30s:0,1m:0", "0s:10"] {
            let e = parse_stages(bad).unwrap_err();
            assert!(e.contains("expected DURATION:RPS"), "{bad}: {e}");
        }
    }

    #[test]
    fn stages_past_a_year_are_refused_before_their_sum_overflows() {
        // Found by fuzzing: two stages of billions of months made the schedule's length
        // overflow a Duration.
        for huge in ["5555030355555month:00.300", "400d:1", "300d:1,300d:2", "18446744073709551615s:1,1s:1"] {
            let e = parse_stages(huge).unwrap_err();
            assert!(e.contains("the stages last more than 366 days in all"), "{huge}: {e}");
        }
        let year = parse_stages("365d:1").unwrap();
        let s = Schedule::stages(year);
        assert!(s.offset(1_000).is_some() && s.length() == Some(secs(365.0 * 86_400.0)));
    }

    #[test]
    fn constant_rate_is_absolute() {
        let s = Schedule::constant(50.0);
        assert_eq!(s.offset(0), Some(Duration::ZERO));
        assert_eq!(s.offset(1), Some(secs(0.02)));
        // Far into a long run the offset is still i / rps, not a sum of rounded steps.
        assert_eq!(s.offset(4_320_000), Some(secs(86_400.0)));
        assert_eq!(s.due_within(secs(10.0)), 500);
        assert_eq!(s.due_within(secs(10.001)), 501);
        assert_eq!(Schedule::constant(3.0).due_within(secs(1.0)), 3);
    }

    #[test]
    fn ramp_up_hold_ramp_down() {
        let s = Schedule::stages(parse_stages("10s:100,10s:100,10s:0").unwrap());
        assert_eq!(s.length(), Some(secs(30.0)));
        // 500 requests in the ramp up, 1000 in the hold, 500 in the ramp down.
        assert_eq!(s.due_within(secs(10.0)), 500);
        assert_eq!(s.due_within(secs(20.0)), 1500);
        assert_eq!(s.due_within(secs(30.0)), 2000);
        assert_eq!(s.offset(2000), None);
        // In a ramp from 0 the count grows with t²: half the requests by t = 10/√2.
        let t = s.offset(250).unwrap().as_secs_f64();
        assert!((t - 10.0 / 2f64.sqrt()).abs() < 1e-9, "{t}");
        // The hold is a constant rate.
        let (a, b) = (s.offset(600).unwrap(), s.offset(700).unwrap());
        assert!(((b - a).as_secs_f64() - 1.0).abs() < 1e-9);
        // Offsets only grow, and every request falls inside the run.
        let mut last = Duration::ZERO;
        for i in 0..2000 {
            let o = s.offset(i).unwrap();
            assert!(o >= last && o <= secs(30.0), "request {i} at {o:?}");
            last = o;
        }
        // Counts per second follow the rate: second 5 of the ramp carries ~55.
        let per = |k: f64| s.due_within(secs(k + 1.0)) - s.due_within(secs(k));
        assert!((per(4.0) as i64 - 45).abs() <= 1 && (per(14.0) as i64 - 100).abs() <= 1);
        assert!((per(25.0) as i64 - 45).abs() <= 1, "{}", per(25.0));
    }

    #[test]
    fn jump_and_pause_stages() {
        // A 0 s stage jumps to a rate; a stage at 0 pauses.
        let s = Schedule::stages(parse_stages("0s:10,1s:10,1s:0,1s:0,1s:10").unwrap());
        assert_eq!(s.due_within(secs(1.0)), 10);
        assert_eq!(s.due_within(secs(3.0)), 15);
        assert_eq!(s.due_within(secs(4.0)), 20);
        let o = s.offset(15).unwrap().as_secs_f64();
        assert!((3.0..4.0).contains(&o), "{o}");
        assert_eq!(s.warmup_rate(), 10.0);
        assert!((s.mean_rate(secs(4.0)) - 5.0).abs() < 1e-9);
    }
}
