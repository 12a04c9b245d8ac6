//! Where one call's time went: the [`Phases`] of an observation (resolve, connect, TLS,
//! sending, processing, transfer) and whether it ran on a new or a reused
//! [`Connection`], and the [`Marks`] the call path stamps on its way to them.
//!
//! Phases are read off the monotonic clock at points the call passes anyway: no extra
//! system call (`Instant::now` is a vDSO read), no allocation. Marks are atomics only
//! because a call cut short by its deadline drops the future that stamps them, and the
//! stamps taken until then must still be read. This module knows nothing of HTTP.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use enum_map::{Enum, EnumMap, enum_map};
use serde::{Deserialize, Serialize};

use super::keyed::Named;

/// The phases of one call. A phase that did not happen (no name to resolve, a reused
/// connection, a call that failed before it) is `None`, never zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Looking the host name up (none for an IP address or a `--resolve` pin).
    pub resolve: Option<Duration>,
    /// The TCP handshake.
    pub connect: Option<Duration>,
    /// The TLS handshake (https, new connections only).
    pub tls: Option<Duration>,
    /// Writing the request, from the connection being ready (check_curl's
    /// `time_headers`); not one of the five phases reports list.
    pub sending: Option<Duration>,
    /// HTTP/2: waiting for a stream the server allows (its
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` all in use), from the connection being ready;
    /// `None` when none was waited for. Part of `sending`, not one of the five phases.
    pub stream_wait: Option<Duration>,
    /// From the request written to the first byte of the answer: the server's time.
    pub processing: Option<Duration>,
    /// From the first byte of the answer to its last.
    pub transfer: Option<Duration>,
}

/// The five phases reports and metrics list, in the order they list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Enum)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    Processing,
    Transfer,
}

impl Named for Phase {
    /// The label value and JSON key.
    fn name(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Processing => "processing",
            Phase::Transfer => "transfer",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Values by phase: the one shape the observation's phases, the recorder's histograms
/// and the reports' phase tables are kept in (JSON: an object keyed by phase name).
pub type PhaseMap<T> = EnumMap<Phase, T>;

impl Phases {
    /// The five listed phases.
    pub fn listed(&self) -> PhaseMap<Option<Duration>> {
        enum_map! {
            Phase::Resolve => self.resolve,
            Phase::Connect => self.connect,
            Phase::Tls => self.tls,
            Phase::Processing => self.processing,
            Phase::Transfer => self.transfer,
        }
    }
}

/// Which connection a call ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// The call opened it (its TCP handshake completed, whatever came next).
    New,
    /// An idle keep-alive connection from the pool.
    Reused,
}

/// The points one call passed, stamped as it passes them. Offsets are nanoseconds after
/// `start`, plus one, so 0 means "not reached".
#[derive(Debug)]
pub struct Marks {
    start: Instant,
    stamps: [AtomicU64; Mark::COUNT],
    connection: AtomicU8,
}

/// A point of the call path.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    Resolved,
    Connected,
    Secured,
    /// The connection is ready for the request (new or from the pool).
    Ready,
    /// HTTP/2: a stream was granted after waiting for one (stamped only after a wait).
    Opened,
    /// The request's last byte was handed to the socket.
    Written,
    /// The answer's first byte arrived.
    FirstByte,
    /// The last byte of the body was read.
    Done,
}

impl Mark {
    const COUNT: usize = 8;
}

impl Marks {
    pub fn new(start: Instant) -> Marks {
        Marks { start, stamps: Default::default(), connection: AtomicU8::new(0) }
    }

    /// Stamps `mark` now.
    pub fn stamp(&self, mark: Mark) {
        self.stamp_at(mark, Instant::now());
    }

    /// Stamps `mark` at `at` (a time read elsewhere).
    pub fn stamp_at(&self, mark: Mark, at: Instant) {
        self.store(mark, nanos(at.saturating_duration_since(self.start)));
    }

    fn store(&self, mark: Mark, offset: u64) {
        self.stamps[mark as usize].store(offset.min(u64::MAX - 1) + 1, Ordering::Relaxed);
    }

    /// Nanoseconds from the start to `mark`, if reached.
    fn offset(&self, mark: Mark) -> Option<u64> {
        self.stamps[mark as usize].load(Ordering::Relaxed).checked_sub(1)
    }

    pub fn get(&self, mark: Mark) -> Option<Instant> {
        self.offset(mark).map(|n| self.start + Duration::from_nanos(n))
    }

    pub fn set_connection(&self, c: Connection) {
        self.connection.store(if c == Connection::New { 1 } else { 2 }, Ordering::Relaxed);
    }

    pub fn connection(&self) -> Option<Connection> {
        match self.connection.load(Ordering::Relaxed) {
            1 => Some(Connection::New),
            2 => Some(Connection::Reused),
            _ => None,
        }
    }

    /// The phases these marks delimit. A phase is there only when both its ends are.
    /// Integer arithmetic on the offsets only: this runs once per call.
    pub fn phases(&self) -> Phases {
        let between = |from: Option<u64>, to: Option<u64>| match (from, to) {
            (Some(a), Some(b)) if b >= a => Some(Duration::from_nanos(b - a)),
            _ => None,
        };
        let resolved = self.offset(Mark::Resolved);
        let connected = self.offset(Mark::Connected);
        let first_byte = self.offset(Mark::FirstByte);
        let written = self.offset(Mark::Written);
        Phases {
            resolve: between(Some(0), resolved),
            connect: between(resolved.or(Some(0)), connected),
            tls: between(connected, self.offset(Mark::Secured)),
            sending: between(self.offset(Mark::Ready), written),
            stream_wait: between(self.offset(Mark::Ready), self.offset(Mark::Opened)),
            processing: between(written, first_byte),
            transfer: between(first_byte, self.offset(Mark::Done)),
        }
    }
}

/// Whole nanoseconds, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_come_from_the_marks_reached() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let m = Marks::new(t);
        assert_eq!(m.phases(), Phases::default());
        assert_eq!(m.connection(), None);
        m.stamp_at(Mark::Connected, t + ms(2));
        m.stamp_at(Mark::Secured, t + ms(5));
        m.stamp_at(Mark::Ready, t + ms(5));
        m.stamp_at(Mark::Written, t + ms(6));
        m.set_connection(Connection::New);
        // Cut short while waiting for the answer: no processing, no transfer.
        let p = m.phases();
        assert_eq!((p.resolve, p.connect, p.tls, p.sending), (None, Some(ms(2)), Some(ms(3)), Some(ms(1))));
        assert_eq!((p.processing, p.transfer), (None, None));
        m.stamp_at(Mark::FirstByte, t + ms(26));
        m.stamp_at(Mark::Done, t + ms(56));
        let p = m.phases();
        assert_eq!((p.processing, p.transfer), (Some(ms(20)), Some(ms(30))));
        assert_eq!(m.connection(), Some(Connection::New));

        let named = Marks::new(t);
        named.stamp_at(Mark::Resolved, t + ms(7));
        named.stamp_at(Mark::Connected, t + ms(8));
        let p = named.phases();
        assert_eq!((p.resolve, p.connect), (Some(ms(7)), Some(ms(1))));
        // A mark at the very start is a mark, not "not reached".
        named.stamp_at(Mark::Ready, t);
        assert_eq!(named.get(Mark::Ready), Some(t));
    }
}
