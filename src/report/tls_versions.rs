//! The load report's `tls_versions`: answers by the TLS version of the connection they
//! came on (`{"TLS 1.3": 480}`), counted by the recorder in fixed memory, added up by
//! merges and shown on one line of the text report. Calls over http, and calls that
//! got no answer, are in no count.

use std::collections::BTreeMap;

/// The versions a handshake of nehr-probe can end in, as reports name them.
const VERSIONS: [&str; 2] = ["TLS 1.2", "TLS 1.3"];

/// Answers by TLS version; no allocation per call.
#[derive(Debug, Clone, Default)]
pub struct TlsCounts {
    counts: [u64; VERSIONS.len()],
}

impl TlsCounts {
    /// Counts one answer on a connection of `version` (none over http).
    pub fn record(&mut self, version: Option<&str>) {
        if let Some(i) = version.and_then(|v| VERSIONS.iter().position(|k| *k == v)) {
            self.counts[i] += 1;
        }
    }

    /// The report's `tls_versions`: the versions seen, each with its count.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        VERSIONS.iter().zip(self.counts).filter(|(_, n)| *n > 0).map(|(v, n)| (v.to_string(), n)).collect()
    }
}

/// Adds `from`'s counts to `into` (a merge).
pub fn add(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (version, n) in from {
        *into.entry(version.clone()).or_default() += n;
    }
}

/// `  TLS versions: TLS 1.3 480 (96.0 %), TLS 1.2 20 (4.0 %) of 500 calls`, or
/// nothing for a run without TLS.
pub fn text_line(counts: &BTreeMap<String, u64>, requests: u64) -> Option<String> {
    if counts.is_empty() {
        return None;
    }
    let share = |n: u64| if requests == 0 { 0.0 } else { n as f64 * 100.0 / requests as f64 };
    let parts: Vec<String> = counts.iter().rev().map(|(v, n)| format!("{v} {n} ({:.1} %)", share(*n))).collect();
    Some(format!("  TLS versions: {} of {requests} calls", parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_and_read_in_one_line() {
        let mut c = TlsCounts::default();
        for v in [Some("TLS 1.3"), Some("TLS 1.3"), Some("TLS 1.2"), None, Some("unknown")] {
            c.record(v);
        }
        let map = c.to_map();
        assert_eq!(map, BTreeMap::from([("TLS 1.2".to_string(), 1), ("TLS 1.3".to_string(), 2)]));
        let mut merged = map.clone();
        add(&mut merged, &map);
        assert_eq!(merged["TLS 1.3"], 4);
        assert_eq!(text_line(&map, 5).unwrap(), "  TLS versions: TLS 1.3 2 (40.0 %), TLS 1.2 1 (20.0 %) of 5 calls");
        assert_eq!(text_line(&BTreeMap::new(), 5), None);
        assert!(TlsCounts::default().to_map().is_empty());
    }
}
