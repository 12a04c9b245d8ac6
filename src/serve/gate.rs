//! The gate every login of `serve` goes through, one per target: at most one login in
//! flight, at most one new login per `--probe-min-interval`. A caller that arrives
//! while a login runs shares its result; one that arrives within the interval after a
//! login started gets the last result, with its age. The background `--interval` loop
//! and `/probe` both go through it, so no client of the exporter can make the target
//! see more logins than that, however many requests it sends.
//!
//! It must never run a login on a caller's task (a scraper that hangs up would cancel
//! it mid-flight and a retry would start another), and never hold its lock across an
//! await.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A finished login and when it finished.
#[derive(Debug)]
pub struct Done<T> {
    pub value: T,
    pub finished: Instant,
}

impl<T> Done<T> {
    /// How old the result is now.
    pub fn age(&self) -> Duration {
        self.finished.elapsed()
    }
}

type Slot<T> = watch::Receiver<Option<Arc<Done<T>>>>;

/// One target's gate. Clone the `Arc` to share it between the loop and the handlers.
#[derive(Debug)]
pub struct Gate<T> {
    min_interval: Duration,
    stop: CancellationToken,
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    /// When the last login started; the rate is counted from starts, so a login that
    /// failed or was slow still counts.
    last_start: Option<Instant>,
    running: Option<Slot<T>>,
    last: Option<Arc<Done<T>>>,
    logins: u64,
}

impl<T: Send + Sync + 'static> Gate<T> {
    /// A gate that starts no login after `stop` is cancelled.
    pub fn new(min_interval: Duration, stop: CancellationToken) -> Arc<Gate<T>> {
        Arc::new(Gate {
            min_interval,
            stop,
            state: Mutex::new(State { last_start: None, running: None, last: None, logins: 0 }),
        })
    }

    /// A result no older than the policy allows: the one in flight, the last one when
    /// a login started less than the minimum interval ago, or a new login made by
    /// `login` on a task of its own. `None` once the gate is stopped.
    pub async fn get<F, Fut>(self: &Arc<Self>, login: F) -> Option<Arc<Done<T>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let mut slot = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(running) = &s.running {
                running.clone()
            } else if let (Some(last), Some(started)) = (&s.last, s.last_start)
                && started.elapsed() < self.min_interval
            {
                return Some(Arc::clone(last));
            } else if self.stop.is_cancelled() {
                return None;
            } else {
                let (tx, rx) = watch::channel(None);
                s.last_start = Some(Instant::now());
                s.running = Some(rx.clone());
                s.logins += 1;
                tokio::spawn(Arc::clone(self).run(login(), tx));
                rx
            }
        };
        // Err: the login was dropped unfinished (the gate stopped).
        slot.wait_for(Option::is_some).await.ok()?.clone()
    }

    async fn run(self: Arc<Self>, login: impl Future<Output = T>, tx: watch::Sender<Option<Arc<Done<T>>>>) {
        let value = tokio::select! {
            _ = self.stop.cancelled() => None,
            v = login => Some(v),
        };
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.running = None;
        if let Some(value) = value {
            let done = Arc::new(Done { value, finished: Instant::now() });
            s.last = Some(Arc::clone(&done));
            let _ = tx.send(Some(done));
        }
    }

    /// Waits until a new login may start (`--probe-min-interval` after the last one
    /// started), or returns at once. The `--interval` loop waits here before [`Gate::get`]
    /// so its own last login, started a few milliseconds after the previous tick, does
    /// not make the gate hand back that result instead of a new login: with `--interval`
    /// equal to the minimum that skipped every second or third probe (1 s probed about
    /// every 1.6 s). The gate is not delayed for `/probe`, which takes the last result.
    pub async fn turn(&self) {
        let next = {
            let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.last_start.map(|started| started + self.min_interval)
        };
        if let Some(next) = next {
            tokio::select! {
                _ = self.stop.cancelled() => {}
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }

    /// How many logins this gate has started.
    pub fn logins(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).logins
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn counting(
        calls: &Arc<AtomicU64>,
        takes: Duration,
    ) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = u64> + Send>> {
        let calls = Arc::clone(calls);
        move || {
            Box::pin(async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(takes).await;
                n
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_login() {
        let gate = Gate::new(Duration::from_secs(1), CancellationToken::new());
        let calls = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (gate, calls) = (Arc::clone(&gate), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                gate.get(counting(&calls, Duration::from_millis(300))).await.unwrap().value
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 1);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(gate.logins(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_one_new_login_per_interval_and_the_last_result_meanwhile() {
        let gate = Gate::new(Duration::from_secs(1), CancellationToken::new());
        let calls = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut seen = Vec::new();
        // A caller every 50 ms for 5 s; each login takes 10 ms.
        while start.elapsed() < Duration::from_secs(5) {
            let done = gate.get(counting(&calls, Duration::from_millis(10))).await.unwrap();
            assert!(done.age() < Duration::from_secs(1), "never older than the interval");
            seen.push(done.value);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let n = calls.load(Ordering::SeqCst);
        assert!((5..=6).contains(&n), "{n} logins in 5 s");
        assert_eq!(seen.last().copied(), Some(n));
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    }

    /// The loop's turn comes the min interval after its last login started, however
    /// late in its tick that login began: then the gate starts a new login.
    #[tokio::test(start_paused = true)]
    async fn the_loops_turn_comes_when_a_new_login_may_start() {
        let gate = Gate::new(Duration::from_secs(1), CancellationToken::new());
        let calls = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        gate.turn().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "no login yet: at once");
        tokio::time::sleep(Duration::from_millis(3)).await;
        assert_eq!(gate.get(counting(&calls, Duration::from_millis(10))).await.unwrap().value, 1);
        tokio::time::sleep_until(start + Duration::from_secs(1)).await;
        // The tick: 3 ms short of the min interval, the gate would give the last result.
        gate.turn().await;
        assert_eq!(start.elapsed(), Duration::from_millis(1003));
        assert_eq!(gate.get(counting(&calls, Duration::from_millis(10))).await.unwrap().value, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_login_is_never_doubled() {
        let gate = Gate::new(Duration::from_millis(100), CancellationToken::new());
        let calls = Arc::new(AtomicU64::new(0));
        let first = {
            let (gate, calls) = (Arc::clone(&gate), Arc::clone(&calls));
            tokio::spawn(async move { gate.get(counting(&calls, Duration::from_secs(3))).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Long past the interval, but the first login still runs: share it.
        let second = gate.get(counting(&calls, Duration::from_secs(3))).await.unwrap();
        assert_eq!(second.value, 1);
        assert_eq!(first.await.unwrap().unwrap().value, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_does_not_cancel_the_login() {
        let gate = Gate::new(Duration::from_secs(1), CancellationToken::new());
        let calls = Arc::new(AtomicU64::new(0));
        let impatient =
            tokio::time::timeout(Duration::from_millis(10), gate.get(counting(&calls, Duration::from_millis(200))));
        assert!(impatient.await.is_err());
        // The login went on without the caller; the next caller gets its result.
        let later = gate.get(counting(&calls, Duration::from_millis(200))).await.unwrap();
        assert_eq!(later.value, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_gate_starts_nothing_and_releases_its_waiters() {
        let stop = CancellationToken::new();
        let gate: Arc<Gate<u64>> = Gate::new(Duration::from_secs(1), stop.clone());
        let calls = Arc::new(AtomicU64::new(0));
        let waiter = {
            let (gate, calls) = (Arc::clone(&gate), Arc::clone(&calls));
            tokio::spawn(async move { gate.get(counting(&calls, Duration::from_secs(60))).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.cancel();
        assert!(waiter.await.unwrap().is_none());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(gate.get(counting(&calls, Duration::ZERO)).await.is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
