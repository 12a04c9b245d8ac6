//! `--stages`: any text is a schedule or a one-line error; a schedule's due times never
//! go backwards, and asking it anything never panics.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nehr_probe::load::schedule::{Schedule, parse_stages};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let stages = match parse_stages(text) {
        Err(e) => {
            assert!(!e.contains('\n'), "{e}");
            return;
        }
        Ok(s) => s,
    };
    let schedule = Schedule::stages(stages);
    let length = schedule.length().unwrap_or_default();
    let mut last = Duration::ZERO;
    for i in [0, 1, 2, 3, 10, 100, 1_000, 1_000_000, u64::MAX / 2, u64::MAX] {
        if let Some(at) = schedule.offset(i) {
            assert!(at >= last, "request {i} due at {at:?}, before {last:?}");
            last = at;
        }
    }
    for window in [Duration::ZERO, Duration::from_millis(1), Duration::from_secs(1), length, length.saturating_mul(2)] {
        let _ = schedule.due_within(window);
        let _ = schedule.mean_rate(window);
    }
    let _ = schedule.warmup_rate();
});
