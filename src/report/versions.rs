//! The load report's answers by protocol version, one shape for both: `tls_versions`
//! (`{"TLS 1.3": 480}`, by the TLS version of the connection an answer came on; calls
//! over http are in no count) and `http_versions` (`{"HTTP/1.1": 480, "HTTP/2": 20}`,
//! by the HTTP version the answer came in). Calls that got no answer are in neither.
//! Counted by the recorder in fixed memory (an array indexed by the version), added
//! up by merges and shown on one line each of the text report and the HTML page.
//!
//! Keys are the versions' one name (`TLS 1.3`, `HTTP/2`, never `HTTP/2.0`): a saved
//! report is read back with whatever keys it has, so a merge adds names, not indexes.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use crate::call::observation::HttpVersion;
use crate::call::tls_version::TlsVersion;

/// A protocol whose versions a report counts.
pub trait Version: Copy + PartialEq + 'static {
    /// Every version, oldest first.
    const ALL: &'static [Self];
    /// What the text report's line and the HTML page call the counts.
    const LABEL: &'static str;
    /// The one name reports and labels use.
    fn name(self) -> &'static str;
}

impl Version for TlsVersion {
    const ALL: &'static [TlsVersion] = &[TlsVersion::Tls12, TlsVersion::Tls13];
    const LABEL: &'static str = "TLS versions";
    fn name(self) -> &'static str {
        TlsVersion::name(self)
    }
}

impl Version for HttpVersion {
    const ALL: &'static [HttpVersion] = &HttpVersion::ALL;
    const LABEL: &'static str = "HTTP versions";
    fn name(self) -> &'static str {
        HttpVersion::name(self)
    }
}

/// The most versions of one protocol counted.
const MAX: usize = 4;

/// Answers by version of `V`; no allocation per call.
#[derive(Debug, Clone)]
pub struct Counts<V> {
    counts: [u64; MAX],
    of: PhantomData<V>,
}

impl<V> Default for Counts<V> {
    fn default() -> Self {
        Counts { counts: [0; MAX], of: PhantomData }
    }
}

impl<V: Version> Counts<V> {
    /// Refuses to build for a protocol with more versions than the array holds.
    const FITS: () = assert!(V::ALL.len() <= MAX, "more versions than Counts holds");

    /// Counts one answer in `version` (none: nothing to count).
    pub fn record(&mut self, version: Option<V>) {
        let () = Self::FITS;
        if let Some(i) = version.and_then(|v| V::ALL.iter().position(|k| *k == v)) {
            self.counts[i] += 1;
        }
    }

    /// Counts one answer in the version named `name` (an observation names its TLS
    /// version); a name of no version of `V` counts nowhere.
    pub fn record_name(&mut self, name: Option<&str>) {
        let () = Self::FITS;
        if let Some(i) = name.and_then(|n| V::ALL.iter().position(|k| k.name() == n)) {
            self.counts[i] += 1;
        }
    }

    /// The report's map: the versions seen, each with its count.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        V::ALL.iter().zip(self.counts).filter(|(_, n)| *n > 0).map(|(v, n)| (v.name().to_string(), n)).collect()
    }
}

/// Adds `from`'s counts to `into` (a merge).
pub fn add(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (version, n) in from {
        *into.entry(version.clone()).or_default() += n;
    }
}

/// `TLS 1.3 480 (96.0 %), TLS 1.2 20 (4.0 %) of 500 calls`, the newest version first;
/// nothing when no version was counted.
pub fn summary(counts: &BTreeMap<String, u64>, requests: u64) -> Option<String> {
    if counts.is_empty() {
        return None;
    }
    let share = |n: u64| if requests == 0 { 0.0 } else { n as f64 * 100.0 / requests as f64 };
    // The names order by version (`HTTP/1.0` < `HTTP/1.1` < `HTTP/2`, `TLS 1.2` <
    // `TLS 1.3`).
    let parts: Vec<String> = counts.iter().rev().map(|(v, n)| format!("{v} {n} ({:.1} %)", share(*n))).collect();
    Some(format!("{} of {requests} calls", parts.join(", ")))
}

/// The text report's line: `  TLS versions: TLS 1.3 480 (96.0 %) … of 500 calls`, or
/// nothing when no version was counted (a run over http has no TLS line, a run
/// without answers no HTTP line).
pub fn text_line<V: Version>(counts: &BTreeMap<String, u64>, requests: u64) -> Option<String> {
    summary(counts, requests).map(|s| format!("  {}: {s}", V::LABEL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_counts_add_and_read_in_one_line() {
        let mut c = Counts::<TlsVersion>::default();
        for v in [Some("TLS 1.3"), Some("TLS 1.3"), Some("TLS 1.2"), None, Some("unknown")] {
            c.record_name(v);
        }
        let map = c.to_map();
        assert_eq!(map, BTreeMap::from([("TLS 1.2".to_string(), 1), ("TLS 1.3".to_string(), 2)]));
        let mut merged = map.clone();
        add(&mut merged, &map);
        assert_eq!(merged["TLS 1.3"], 4);
        assert_eq!(
            text_line::<TlsVersion>(&map, 5).unwrap(),
            "  TLS versions: TLS 1.3 2 (40.0 %), TLS 1.2 1 (20.0 %) of 5 calls"
        );
        assert_eq!(text_line::<TlsVersion>(&BTreeMap::new(), 5), None);
        assert!(Counts::<TlsVersion>::default().to_map().is_empty());
    }

    #[test]
    fn http_counts_are_keyed_by_the_one_name_newest_first() {
        let mut c = Counts::<HttpVersion>::default();
        for v in [Some(HttpVersion::Http2), None, Some(HttpVersion::Http11), Some(HttpVersion::Http2)] {
            c.record(v);
        }
        c.record(Some(HttpVersion::Http10));
        let map = c.to_map();
        assert_eq!(
            map,
            BTreeMap::from([("HTTP/1.0".to_string(), 1), ("HTTP/1.1".to_string(), 1), ("HTTP/2".to_string(), 2)])
        );
        assert!(!map.keys().any(|k| k.contains("2.0")), "never HTTP/2.0: {map:?}");
        assert_eq!(
            text_line::<HttpVersion>(&map, 5).unwrap(),
            "  HTTP versions: HTTP/2 2 (40.0 %), HTTP/1.1 1 (20.0 %), HTTP/1.0 1 (20.0 %) of 5 calls"
        );
        // A name the recorder never writes (a hand-edited report) is added as given.
        let mut odd = map.clone();
        add(&mut odd, &BTreeMap::from([("HTTP/3".to_string(), 4), ("HTTP/2".to_string(), 1)]));
        assert_eq!((odd["HTTP/3"], odd["HTTP/2"]), (4, 3));
    }
}
