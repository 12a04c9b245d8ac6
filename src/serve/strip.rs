//! The recent probes of one target, for the landing page's history: a ring of the last
//! [`CELLS`] probes (outcome, latency, when), so memory is fixed per target however long
//! `serve` runs. It keeps facts only; `page.rs` draws them. It must never hold a reason
//! text or anything from an answer: an outcome and a duration are all a cell needs.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::call::Outcome;

/// Probes kept per target: an hour at one probe every 10 s (at shorter intervals the
/// strip covers the last 360 probes, less than an hour).
pub const CELLS: usize = 360;
/// How far back the landing page looks.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// One probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub at: SystemTime,
    pub outcome: Outcome,
    pub latency: Duration,
}

/// The last [`CELLS`] probes, oldest first.
#[derive(Debug, Default)]
pub struct Strip {
    cells: VecDeque<Cell>,
}

impl Strip {
    pub fn push(&mut self, cell: Cell) {
        if self.cells.len() == CELLS {
            self.cells.pop_front();
        }
        self.cells.push_back(cell);
    }

    /// The probes of the last [`WINDOW`] before `now`, oldest first.
    pub fn recent(&self, now: SystemTime) -> Vec<Cell> {
        let since = now.checked_sub(WINDOW).unwrap_or(SystemTime::UNIX_EPOCH);
        self.cells.iter().filter(|c| c.at >= since).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strip_keeps_the_last_probes_of_the_last_hour_in_fixed_memory() {
        let mut strip = Strip::default();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..(CELLS as u64 + 40) {
            let outcome = if i % 3 == 0 { Outcome::ServerError } else { Outcome::Ok };
            strip.push(Cell { at: start + Duration::from_secs(i), outcome, latency: Duration::from_millis(i) });
        }
        assert_eq!(strip.cells.len(), CELLS);
        assert!(strip.cells.capacity() <= 2 * CELLS);
        let now = start + Duration::from_secs(CELLS as u64 + 40);
        let recent = strip.recent(now);
        assert_eq!(recent.len(), CELLS);
        assert_eq!(recent[0].latency, Duration::from_millis(40));
        // An hour later only the probes of the last hour remain.
        let later = strip.recent(now + WINDOW - Duration::from_secs(10));
        assert_eq!(later.len(), 10);
        assert!(strip.recent(now + 2 * WINDOW).is_empty());
    }
}
