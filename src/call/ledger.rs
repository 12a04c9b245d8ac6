//! Which access tokens a target has handed out: the memory behind `reused_token`.
//!
//! A cache or proxy that replays one login answer hands one user's session to the
//! next. The ledger remembers a keyed hash of each ok login's access token (never the
//! token: the key is random per process, so a hash cannot be looked up elsewhere) and
//! tells when a token comes back, and whether to the same account. It remembers at
//! least the last [`REMEMBERED`] tokens in bounded memory: two generations of hashes,
//! the older dropped whole when the newer is full (about 4.4 MB at most, 16 bytes and a
//! control byte a slot).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// How many of the latest tokens are surely remembered (up to twice as many are).
pub const REMEMBERED: usize = 100_000;
/// How many repeated tokens have their number of logins counted; beyond, a repeat is
/// still told, as handed to at least 2 logins.
const COUNTED_REPEATS: usize = 4096;

/// The tokens of one target's ok logins, shared by every lane that calls it.
pub struct Ledger {
    key: std::collections::hash_map::RandomState,
    inner: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    /// A token's hash → the account (its index in the target's list) first handed it.
    current: HashMap<u64, u32>,
    previous: HashMap<u64, u32>,
    /// For a token seen more than once: how many logins were handed it.
    repeats: HashMap<u64, u32>,
}

/// What the ledger knew of a token a login was just handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handed {
    /// How many logins were handed it, this one included (1: a new token).
    pub logins: u32,
    /// Whether the account first handed it is another than this login's.
    pub other_account: bool,
}

impl Handed {
    pub fn is_new(self) -> bool {
        self.logins == 1
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger { key: std::collections::hash_map::RandomState::new(), inner: Mutex::default() }
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

impl Ledger {
    /// Notes that a login of `account` was handed `token`, and what was known of it.
    pub fn hand_out(&self, token: &str, account: u32) -> Handed {
        let hash = self.key.hash_one(token.as_bytes());
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let first = match g.current.get(&hash).or_else(|| g.previous.get(&hash)) {
            Some(&first) => first,
            None => {
                if g.current.len() >= REMEMBERED {
                    g.previous = std::mem::take(&mut g.current);
                }
                g.current.insert(hash, account);
                return Handed { logins: 1, other_account: false };
            }
        };
        let logins = match g.repeats.get_mut(&hash) {
            Some(n) => {
                *n = n.saturating_add(1);
                *n
            }
            None => {
                if g.repeats.len() < COUNTED_REPEATS {
                    g.repeats.insert(hash, 2);
                }
                2
            }
        };
        Handed { logins, other_account: first != account }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_handed_out_again_is_told_with_its_count() {
        let ledger = Ledger::default();
        let logins = |token, account| ledger.hand_out(token, account).logins;
        assert_eq!(logins("a", 0), 1);
        assert_eq!(logins("b", 0), 1);
        assert_eq!(logins("a", 0), 2);
        assert_eq!(logins("a", 0), 3);
        assert_eq!(logins("b", 0), 2);
        assert_eq!(ledger.hand_out("b", 1), Handed { logins: 3, other_account: true });
        assert_eq!(ledger.hand_out("a", 0), Handed { logins: 4, other_account: false });
    }

    #[test]
    fn the_last_hundred_thousand_are_remembered_in_bounded_memory() {
        let ledger = Ledger::default();
        let total = 3 * REMEMBERED + 17;
        for i in 0..total {
            assert!(ledger.hand_out(&format!("token-{i}"), 0).is_new(), "{i}");
        }
        // Every one of the last REMEMBERED comes back as a repeat.
        for i in total - REMEMBERED..total {
            assert_eq!(ledger.hand_out(&format!("token-{i}"), 0).logins, 2, "{i}");
        }
        let g = ledger.inner.lock().unwrap();
        assert!(g.current.len() + g.previous.len() <= 2 * REMEMBERED);
    }
}
