//! A sleep precise to tens of microseconds. Tokio's timer rounds every wait up to the
//! next millisecond; on Linux a [`Clock`] waits on a `timerfd` (a high-resolution timer
//! registered with the runtime's own epoll, so no extra thread wakes). Elsewhere, or if
//! the timerfd cannot be made, it falls back to tokio's timer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A precise sleep: a `timerfd` on Linux, tokio's timer elsewhere or if it fails.
pub(crate) struct Clock {
    #[cfg(target_os = "linux")]
    timer: Option<timerfd::Timer>,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            #[cfg(target_os = "linux")]
            timer: timerfd::Timer::new().ok(),
        }
    }

    pub(crate) async fn sleep_until(&mut self, at: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(timer) = &mut self.timer {
            if timer.sleep_until(at).await.is_ok() {
                return;
            }
            self.timer = None;
        }
        tokio::time::sleep_until(at.into()).await;
    }

    /// Whether it still has its precise timer (else it is tokio's timer, or it is not Linux).
    fn is_precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.timer.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }
}

/// Idle clocks kept for reuse, at most this many.
const MAX_IDLE: usize = 4096;

/// Clocks for many sleeps at once (a server holding each answer for a while). Making a
/// clock takes four system calls (create, register, deregister, close): measured, that
/// halved the mock's throughput under `--latency`. So clocks are kept and reused. A
/// clock belongs to the runtime it was made on: use a pool on one runtime only.
#[derive(Default)]
pub(crate) struct Clocks {
    idle: Mutex<Vec<Clock>>,
}

impl Clocks {
    /// Sleeps `wait` on an idle clock, or a new one.
    pub(crate) async fn sleep(&self, wait: Duration) {
        let at = Instant::now() + wait;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut clock = idle.unwrap_or_else(Clock::new);
        clock.sleep_until(at).await;
        if clock.is_precise() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(clock);
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod timerfd {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::time::Instant;

    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create, timerfd_settime,
    };
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// A one-shot monotonic timerfd registered with the runtime's epoll.
    pub struct Timer {
        fd: AsyncFd<OwnedFd>,
        /// When it is set to go off, until it has: a sleep abandoned and begun again
        /// for the same instant (a loop waiting on several things at once) costs no
        /// system call.
        armed: Option<Instant>,
    }

    impl Timer {
        pub fn new() -> io::Result<Timer> {
            let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
            // SAFETY: an OwnedFd is an open descriptor that stays the same and open for as
            // long as it lives, and the AsyncFd owns it for its whole life.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
            Ok(Timer { fd, armed: None })
        }

        pub async fn sleep_until(&mut self, at: Instant) -> io::Result<()> {
            if self.armed != Some(at) {
                let Some(wait) = at.checked_duration_since(Instant::now()).filter(|w| !w.is_zero()) else {
                    return Ok(());
                };
                let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
                let value = Timespec { tv_sec: wait.as_secs() as _, tv_nsec: wait.subsec_nanos() as _ };
                // Setting it again also discards an expiry of an earlier setting not read.
                self.armed = None;
                timerfd_settime(
                    self.fd.get_ref(),
                    TimerfdTimerFlags::empty(),
                    &Itimerspec { it_interval: zero, it_value: value },
                )?;
                self.armed = Some(at);
            }
            loop {
                let mut ready = self.fd.readable().await?;
                let mut expirations = [0u8; 8];
                match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expirations)?)) {
                    Ok(result) => {
                        // One-shot: read, it cannot be readable again before it is set
                        // again, so the next sleep need not find that out by a failed read.
                        ready.clear_ready();
                        self.armed = None;
                        return result.map(|_| ());
                    }
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_clock_wakes_within_a_fraction_of_a_millisecond() {
        let mut clock = Clock::new();
        let mut late = Vec::new();
        for _ in 0..20 {
            let at = Instant::now() + Duration::from_micros(1700);
            clock.sleep_until(at).await;
            late.push(Instant::now().saturating_duration_since(at));
        }
        late.sort();
        // Tokio's timer alone would be ~0.3 to 1 ms late; the median must do far better
        // on Linux (elsewhere the fallback only has to be on time or late).
        if cfg!(target_os = "linux") {
            assert!(late[10] < Duration::from_micros(400), "{late:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pool_keeps_one_clock_per_concurrent_sleep_and_stays_precise() {
        let clocks = std::sync::Arc::new(Clocks::default());
        // Eight at once (long enough that all have begun before the first ends)…
        let mut sleeps = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let clocks = std::sync::Arc::clone(&clocks);
            sleeps.spawn(async move { clocks.sleep(Duration::from_millis(50)).await });
        }
        sleeps.join_all().await;
        // …then one at a time, on a clock taken from the pool.
        let wait = Duration::from_micros(1700);
        let mut took = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            clocks.sleep(wait).await;
            took.push(start.elapsed());
        }
        took.sort();
        assert!(took[0] >= wait, "{took:?}");
        if cfg!(target_os = "linux") {
            assert_eq!(clocks.idle.lock().unwrap().len(), 8);
            assert!(took[10] < wait + Duration::from_micros(400), "{took:?}");
        }
    }
}
