//! One cancellation token for Ctrl-C and SIGTERM, and a memory of which came. Commands
//! watch the token to stop cleanly and still report what they measured; nothing calls
//! `process::exit` from a task. `load` turns the signal into its exit code (130 after
//! SIGINT, 143 after SIGTERM, as shells report them), so a cut-short run never passes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

/// The signal that stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT, Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Signal {
    /// The exit code of a run this signal cut short: 128 + the signal's number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// The token, cancelled at the first Ctrl-C (SIGINT) or SIGTERM, and which one it was.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    /// 0: none yet; 1: SIGINT; 2: SIGTERM.
    signal: Arc<AtomicU8>,
}

impl Shutdown {
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Which signal cancelled the token, if one did.
    pub fn signal(&self) -> Option<Signal> {
        match self.signal.load(Ordering::Acquire) {
            1 => Some(Signal::Interrupt),
            2 => Some(Signal::Terminate),
            _ => None,
        }
    }

    /// Records `signal` (the first one only) and cancels the token.
    pub fn stop(&self, signal: Signal) {
        let code = match signal {
            Signal::Interrupt => 1,
            Signal::Terminate => 2,
        };
        let _ = self.signal.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.token.cancel();
    }
}

/// A [`Shutdown`] that the first Ctrl-C (SIGINT) or SIGTERM stops.
pub fn on_signals() -> Shutdown {
    let shutdown = Shutdown::default();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).ok();
            let sigterm = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let got = tokio::select! {
                _ = tokio::signal::ctrl_c() => Signal::Interrupt,
                _ = sigterm => Signal::Terminate,
            };
            stop.stop(got);
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            stop.stop(Signal::Interrupt);
        }
    });
    shutdown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_is_remembered() {
        let s = Shutdown::default();
        assert_eq!(s.signal(), None);
        assert!(!s.token().is_cancelled());
        s.stop(Signal::Terminate);
        s.stop(Signal::Interrupt);
        assert_eq!(s.signal(), Some(Signal::Terminate));
        assert!(s.token().is_cancelled());
        assert_eq!((Signal::Interrupt.exit_code(), Signal::Terminate.exit_code()), (130, 143));
    }
}
