//! Why calls failed: the most frequent reasons of each failing outcome, counted in
//! fixed memory, for the report's `reasons` (docs/json.md). The load recorder counts a
//! run's with a [`Tally`] per outcome, and `report` sums saved reports' the same way.
//!
//! A reason is our own classification text (`Observation::reason`, less the outcome's
//! name: `TCP connect to 127.0.0.1:1 failed: Connection refused (os error 111)`),
//! never a server's body beyond what the observation keeps, so it holds no password or
//! token. Memory stays flat: at most [`TRACKED`] distinct reasons an outcome, each at
//! most [`MAX_CHARS`] characters (longer ones are cut); when a new one would be one too many, the reasons
//! that differ only in their numbers (a port, a count) are joined into one whose
//! differing numbers read `…`; what still does not fit is counted as other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Reasons a report keeps per outcome, the most frequent first.
pub const TOP: usize = 5;
/// Distinct reasons counted per outcome before they are joined or counted as other.
pub const TRACKED: usize = 16;
/// The longest a reason is kept, in characters (longer ones are cut).
pub const MAX_CHARS: usize = 160;
/// What stands for a number that differs between the calls a reason counts.
const VARIES: char = '…';

/// One reason and how many calls gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    pub reason: String,
    pub count: u64,
}

/// An outcome's reasons in a report: the [`TOP`] most frequent, and how many calls had
/// another.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeReasons {
    pub top: Vec<Counted>,
    pub other: u64,
}

impl OutcomeReasons {
    /// All the calls counted: the top reasons' and the others.
    pub fn calls(&self) -> u64 {
        self.top.iter().fold(self.other, |sum, c| sum.saturating_add(c.count))
    }
}

/// An outcome's reasons while they are counted, in fixed memory.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// A reason (its numbers that differ between calls written [`VARIES`]) and its count.
    entries: Vec<(String, u64)>,
    other: u64,
}

impl Tally {
    /// Counts `n` calls that failed for `reason`.
    pub fn add(&mut self, reason: &str, n: u64) {
        if n == 0 {
            return;
        }
        let reason = if reason.is_empty() { "(no reason given)" } else { clip(reason) };
        if let Some(e) = self.entries.iter_mut().find(|(t, _)| fits(t, reason) == Fit::Same) {
            e.1 = e.1.saturating_add(n);
        } else if self.entries.len() < TRACKED {
            self.entries.push((reason.to_string(), n));
        } else if let Some(i) = self.entries.iter().position(|(t, _)| fits(t, reason) == Fit::Numbers) {
            // One too many: the reasons this one differs from only in numbers become one.
            let joined = join(&self.entries[i].0, reason);
            let mut count = n;
            self.entries.retain(|(t, c)| {
                let folds = fits(&joined, t) == Fit::Same;
                count = count.saturating_add(if folds { *c } else { 0 });
                !folds
            });
            self.entries.push((joined, count));
        } else {
            self.other = self.other.saturating_add(n);
        }
    }

    /// Counts `n` calls whose reason is not known (a report's `other`).
    pub fn add_other(&mut self, n: u64) {
        self.other = self.other.saturating_add(n);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.other == 0
    }

    /// The [`TOP`] most frequent (ties by text), the rest counted as other.
    pub fn report(&self) -> OutcomeReasons {
        let mut sorted = self.entries.clone();
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let rest = sorted.iter().skip(TOP).fold(0u64, |sum, e| sum.saturating_add(e.1));
        let top = sorted.into_iter().take(TOP).map(|(reason, count)| Counted { reason, count }).collect();
        OutcomeReasons { top, other: self.other.saturating_add(rest) }
    }
}

/// Several reports' `reasons` summed, still bounded: each outcome's top reasons added
/// reason by reason (and joined where they differ only in numbers, as a run's are),
/// the [`TOP`] most frequent kept and the rest counted as other. Only the outcomes
/// `names` lists are kept.
pub fn sum<'a>(
    tables: impl IntoIterator<Item = &'a BTreeMap<String, OutcomeReasons>>,
    names: &[&str],
) -> BTreeMap<String, OutcomeReasons> {
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for table in tables {
        for (name, reasons) in table {
            let Some(name) = names.iter().find(|n| **n == name.as_str()) else { continue };
            let tally = tallies.entry(name).or_default();
            for c in &reasons.top {
                tally.add(&c.reason, c.count);
            }
            tally.add_other(reasons.other);
        }
    }
    tallies.into_iter().filter(|(_, t)| !t.is_empty()).map(|(name, t)| (name.to_string(), t.report())).collect()
}

/// `reason` cut to [`MAX_CHARS`] characters.
fn clip(reason: &str) -> &str {
    match reason.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => &reason[..at],
        None => reason,
    }
}

/// How a reason compares with a kept one.
#[derive(Debug, PartialEq, Eq)]
enum Fit {
    /// It is the kept one (its numbers the same, or where the kept one's vary, any).
    Same,
    /// It differs from the kept one only in numbers.
    Numbers,
    No,
}

/// A piece of a reason: a run of digits, a number that varies, or one other character.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Piece<'a> {
    Digits(&'a str),
    Varies,
    Char(char),
}

fn pieces(s: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let c = rest.chars().next()?;
        if c.is_ascii_digit() {
            let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            let (digits, after) = rest.split_at(end);
            rest = after;
            Some(Piece::Digits(digits))
        } else {
            rest = &rest[c.len_utf8()..];
            Some(if c == VARIES { Piece::Varies } else { Piece::Char(c) })
        }
    })
}

fn fits(kept: &str, reason: &str) -> Fit {
    if kept == reason {
        return Fit::Same;
    }
    let (mut a, mut b) = (pieces(kept), pieces(reason));
    let mut fit = Fit::Same;
    loop {
        match (a.next(), b.next()) {
            (None, None) => return fit,
            (Some(Piece::Varies), Some(Piece::Digits(_) | Piece::Varies)) => {}
            (Some(Piece::Digits(x)), Some(Piece::Digits(y))) if x == y => {}
            (Some(Piece::Digits(_)), Some(Piece::Digits(_) | Piece::Varies)) => fit = Fit::Numbers,
            (Some(Piece::Char(x)), Some(Piece::Char(y))) if x == y => {}
            _ => return Fit::No,
        }
    }
}

/// `kept` with each number that differs in `other` written [`VARIES`]; the two differ
/// only in numbers.
fn join(kept: &str, other: &str) -> String {
    let mut out = String::with_capacity(kept.len());
    for (a, b) in pieces(kept).zip(pieces(other)) {
        match (a, b) {
            (Piece::Digits(x), Piece::Digits(y)) if x == y => out.push_str(x),
            (Piece::Digits(_) | Piece::Varies, _) => out.push(VARIES),
            (Piece::Char(c), _) => out.push(c),
        }
    }
    out
}

/// A reason as the report lists it under its outcome: `reason` without the outcome's
/// name in front (`connect_error: …`, `invalid body: …`, `rate limited (HTTP 429)`),
/// nor `next call` for a `--then` call's.
pub fn without_outcome(reason: &str, outcome: &str) -> String {
    let reason = reason.strip_prefix("next call ").unwrap_or(reason);
    let spaced = outcome.replace('_', " ");
    for name in [outcome, spaced.as_str()] {
        let Some(rest) = reason.strip_prefix(name) else { continue };
        let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
        // `(HTTP 429)` alone reads better bare.
        let bare = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')).filter(|r| !r.contains(['(', ')']));
        let rest = bare.unwrap_or(rest);
        if !rest.is_empty() {
            return rest.to_string();
        }
    }
    reason.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_name_is_not_repeated() {
        let cases = [
            (
                "connect_error: TCP connect to 127.0.0.1:1 failed: refused",
                "connect_error",
                "TCP connect to 127.0.0.1:1 failed: refused",
            ),
            ("timeout: no complete answer within 1ms (waiting)", "timeout", "no complete answer within 1ms (waiting)"),
            (
                "invalid body: /result/expires_in must be > 0 (HTTP 200)",
                "invalid_body",
                "/result/expires_in must be > 0 (HTTP 200)",
            ),
            ("reused token: the same token", "reused_token", "the same token"),
            ("rate limited (HTTP 429)", "rate_limited", "HTTP 429"),
            ("server error (HTTP 503)", "server_error", "HTTP 503"),
            ("login refused (HTTP 401)", "unauthorized", "login refused (HTTP 401)"),
            ("unexpected answer (HTTP 404)", "http_error", "unexpected answer (HTTP 404)"),
            ("next call connect_error: refused", "connect_error", "refused"),
            ("next call rate limited (HTTP 429)", "rate_limited", "HTTP 429"),
            (
                "the next call refused the token (HTTP 401)",
                "token_refused",
                "the next call refused the token (HTTP 401)",
            ),
            ("timeout", "timeout", "timeout"),
        ];
        for (reason, outcome, want) in cases {
            assert_eq!(without_outcome(reason, outcome), want, "{reason}");
        }
    }

    #[test]
    fn the_top_five_are_kept_and_the_rest_is_other() {
        let mut t = Tally::default();
        for (i, n) in [(1, 50), (2, 40), (3, 30), (4, 20), (5, 10), (6, 5), (7, 1)] {
            t.add(&format!("reason {}", ["a", "b", "c", "d", "e", "f", "g"][i - 1]), n);
        }
        let r = t.report();
        let counts: Vec<u64> = r.top.iter().map(|c| c.count).collect();
        assert_eq!(counts, [50, 40, 30, 20, 10]);
        assert_eq!(r.top[0].reason, "reason a");
        assert_eq!(r.other, 6);
        assert_eq!(r.calls(), 156);
    }

    #[test]
    fn reasons_that_differ_only_in_numbers_join_when_there_are_too_many() {
        let mut t = Tally::default();
        // Few distinct statuses stay apart.
        t.add("unexpected answer (HTTP 404)", 3);
        t.add("unexpected answer (HTTP 302)", 2);
        // A count that grows with every call would make a reason per call.
        for logins in 2..1002 {
            t.add(&format!("the same access token was handed to {logins} logins of one account"), 1);
        }
        assert!(t.entries.len() <= TRACKED, "{:?}", t.entries);
        let r = t.report();
        assert_eq!(
            r.top[0],
            Counted { reason: "the same access token was handed to … logins of one account".into(), count: 1000 }
        );
        assert!(r.top.iter().any(|c| c.reason == "unexpected answer (HTTP 404)" && c.count == 3), "{r:?}");
        assert!(r.top.iter().any(|c| c.reason == "unexpected answer (HTTP 302)" && c.count == 2), "{r:?}");
        assert_eq!(r.other, 0);
        // Reasons with nothing in common beyond the limit are other.
        let mut t = Tally::default();
        for i in 0..100 {
            let word: String = std::iter::repeat_n(char::from(b'a' + (i % 26) as u8), 1 + i / 26).collect();
            t.add(&format!("failed: {word}"), 1);
        }
        assert_eq!(t.entries.len(), TRACKED);
        let r = t.report();
        assert_eq!((r.top.len(), r.other, r.calls()), (TOP, 100 - TOP as u64, 100));
    }

    #[test]
    fn reports_sum_reason_by_reason_and_stay_bounded() {
        let table = |pairs: &[(&str, u64)], other: u64| -> BTreeMap<String, OutcomeReasons> {
            let top = pairs.iter().map(|(r, n)| Counted { reason: r.to_string(), count: *n }).collect();
            [("connect_error".to_string(), OutcomeReasons { top, other })].into()
        };
        let a = table(&[("refused", 10), ("reset", 1), ("r1", 1), ("r2", 1), ("r3", 1)], 4);
        let b = table(&[("refused", 5), ("unreachable", 7), ("r4", 1), ("r5", 1), ("r6", 1)], 0);
        let mut bogus = table(&[("x", 1)], 0);
        bogus.insert("bogus".into(), OutcomeReasons { top: vec![], other: 9 });
        let m = sum([&a, &b, &bogus], &["connect_error"]);
        assert_eq!(m.len(), 1, "{m:?}");
        let r = &m["connect_error"];
        assert_eq!(r.top.len(), TOP);
        assert_eq!(r.top[0], Counted { reason: "refused".into(), count: 15 });
        assert_eq!(r.top[1], Counted { reason: "unreachable".into(), count: 7 });
        assert_eq!(r.calls(), 18 + 15 + 1);
    }

    #[test]
    fn a_long_reason_is_cut() {
        let mut t = Tally::default();
        t.add(&"x".repeat(10_000), 1);
        t.add(&format!("{}y", "x".repeat(10_000)), 1);
        let r = t.report();
        assert_eq!(r.top.len(), 1);
        assert_eq!(r.top[0].reason.chars().count(), MAX_CHARS);
        assert_eq!(r.top[0].count, 2);
        let joined = join("port 1 of 2", "port 3 of 2");
        assert_eq!(joined, "port … of 2");
        assert_eq!(fits(&joined, "port 77 of 2"), Fit::Same);
        assert_eq!(fits(&joined, "port 77 of 3"), Fit::Numbers);
        assert_eq!(fits(&joined, "port x of 2"), Fit::No);
    }
}
