//! The histograms of a report: their shape (1 µs to 1 h, 3 significant digits, so
//! memory is fixed whatever the run's length) and their text form in the JSON (base64 of
//! the compressed V2 encoding, which HdrHistogram's own tools read).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;

use crate::call::keyed::Named;
use crate::call::phases::PhaseMap;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Highest value the histograms track: one hour, in microseconds.
pub const HIGHEST_US: u64 = 3_600_000_000;

/// A histogram of microseconds, 1 µs to 1 h, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("static bounds are valid")
}

/// The value at percentile `p` (0 to 100) of `h`, in µs: the one every report, chart,
/// threshold and comparison shows. Nearest rank: the smallest recorded value with at
/// least `p` % of the values at or below it, the rank ⌈n p / 100⌉ computed in integers
/// with `p` read to 1e-7 %, so that 99.9 is the 99.9th percentile and not the
/// 0.9990000000000001 quantile that floating point makes of `99.9 / 100` (one call
/// further along). `p` 0 is the minimum, 100 the maximum; 0 when `h` is empty.
pub fn percentile(h: &Histogram<u64>, p: f64) -> u64 {
    let n = h.len();
    if n == 0 {
        return 0;
    }
    const SCALE: u128 = 1_000_000_000; // p / 100 in billionths
    let billionths = (p.clamp(0.0, 100.0) * 1e7).round() as u128;
    if billionths == 0 {
        return h.min();
    }
    let rank = (n as u128 * billionths).div_ceil(SCALE).clamp(1, n as u128) as u64;
    // Halfway into the rank: HdrHistogram's ceil(q n) lands on `rank` itself.
    h.value_at_quantile((rank as f64 - 0.5) / n as f64)
}

/// Whole microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Adds `from` into `into`. Values beyond an hour (another tool's histogram) land at the
/// top; `add` checks the range before it adds anything.
pub fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// Base64 of the compressed V2 encoding.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).expect("serializing into memory cannot fail");
    BASE64.encode(bytes)
}

pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = BASE64.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("not an HdrHistogram: {e:?}"))
}

/// The phases' histograms as the report saves them: by phase name, [`encode`]d.
pub fn encode_phases(h: &PhaseMap<Histogram<u64>>) -> std::collections::BTreeMap<String, String> {
    h.iter().map(|(p, h)| (p.name().to_string(), encode(h))).collect()
}

/// The phases' histograms back from a report; an absent phase is an error.
pub fn decode_phases(saved: &std::collections::BTreeMap<String, String>) -> Result<PhaseMap<Histogram<u64>>, String> {
    let mut out = PhaseMap::from_fn(|_| histogram());
    for (phase, h) in &mut out {
        let name = phase.name();
        let text = saved.get(name).ok_or_else(|| format!("without the {name} phase"))?;
        *h = decode(text).map_err(|why| format!("{name}: {why}"))?;
    }
    Ok(out)
}

/// p50, p90 and p99 of intervals joined after their histograms are gone: the
/// request-weighted means of theirs. The one approximation the timeline (joining
/// neighbours) and `report` (lining segments up) both make; a report says when it did.
#[derive(Debug, Default, Clone, Copy)]
pub struct JoinedQuantiles {
    weighted: [f64; 3],
    requests: u64,
}

impl JoinedQuantiles {
    /// Adds an interval of `requests` calls with these p50, p90 and p99.
    pub fn add(&mut self, quantiles: [f64; 3], requests: u64) {
        for (w, q) in self.weighted.iter_mut().zip(quantiles) {
            *w += q * requests as f64;
        }
        self.requests += requests;
    }

    /// The joined p50, p90 and p99; `None` when no call was added.
    pub fn get(&self) -> Option<[f64; 3]> {
        (self.requests > 0).then(|| self.weighted.map(|w| w / self.requests as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the text report showed p99.9 of 1000 calls as the 1000th (the
    /// spectrum, from `99.9 / 100`) and as the 999th (the table, from `0.999`).
    #[test]
    fn a_percentile_is_one_number_however_it_is_written() {
        let mut h = histogram();
        for ms in 1..=1000 {
            h.record(ms * 1000).unwrap();
        }
        let at = |us: u64| h.highest_equivalent(us);
        assert_eq!(percentile(&h, 99.9), at(999_000));
        assert_eq!(percentile(&h, 99.9), percentile(&h, 0.999 * 100.0));
        assert_eq!(percentile(&h, 99.0), at(990_000));
        assert_eq!(percentile(&h, 50.0), at(500_000));
        assert_eq!(percentile(&h, 99.99), at(1_000_000));
        assert_eq!(percentile(&h, 100.0), h.max());
        assert_eq!(percentile(&h, 0.0), h.min());
        assert_eq!(percentile(&h, 0.05), at(1000));
        assert_eq!(percentile(&histogram(), 99.0), 0);
        // Every percentile the reports list, at the rank ⌈n p / 100⌉ in hundredths of a %.
        for n in [7u64, 10, 100, 1000, 3333, 10_000, 100_000] {
            let mut h = histogram();
            for i in 1..=n {
                h.record(i).unwrap();
            }
            for (p, hundredths) in
                [(50.0, 5000), (75.0, 7500), (90.0, 9000), (95.0, 9500), (99.0, 9900), (99.9, 9990), (99.99, 9999)]
            {
                let rank = (n * hundredths).div_ceil(10_000);
                assert_eq!(percentile(&h, p), h.highest_equivalent(rank), "p{p} of {n}");
            }
        }
    }
}
