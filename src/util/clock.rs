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

    // How close to its instant a clock wakes is measured in tests/timing (the mock's
    // `--latency` sleeps on a pool: `the_mocks_latency_is_precise`), where no other test
    // runs beside it. Here, among the parallel unit tests, only what a busy machine cannot
    // change is checked: never early, the timerfd kept, the clocks reused.

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clock_never_wakes_early_and_keeps_its_timer() {
        let mut clock = Clock::new();
        for _ in 0..20 {
            let at = Instant::now() + Duration::from_micros(1700);
            clock.sleep_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke {:?} early", at - now);
        }
        // An instant already past: at once, and the timer is still good for the next.
        clock.sleep_until(Instant::now() - Duration::from_millis(1)).await;
        let at = Instant::now() + Duration::from_micros(1700);
        clock.sleep_until(at).await;
        assert!(Instant::now() >= at);
        // On Linux every sleep was on the timerfd, not tokio's millisecond timer.
        assert_eq!(clock.is_precise(), cfg!(target_os = "linux"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pool_keeps_one_clock_per_concurrent_sleep_and_reuses_them() {
        let clocks = std::sync::Arc::new(Clocks::default());
        // Eight at once: released together, and long enough that all have begun (taken
        // their clock) before the first ends, even on a crowded machine…
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let mut sleeps = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (clocks, start) = (std::sync::Arc::clone(&clocks), std::sync::Arc::clone(&start));
            sleeps.spawn(async move {
                start.wait().await;
                clocks.sleep(Duration::from_millis(250)).await
            });
        }
        sleeps.join_all().await;
        let idle = || clocks.idle.lock().unwrap().len();
        let kept = if cfg!(target_os = "linux") { 8 } else { 0 };
        assert_eq!(idle(), kept);
        // …then one at a time, on a clock taken from the pool and given back.
        let wait = Duration::from_micros(1700);
        for _ in 0..20 {
            let start = Instant::now();
            clocks.sleep(wait).await;
            assert!(start.elapsed() >= wait);
        }
        assert_eq!(idle(), kept);
    }
}
