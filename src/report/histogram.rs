//! The histograms of a report: their shape (1 µs to 1 h, 3 significant digits, so
//! memory is fixed whatever the run's length) and their text form in the JSON (base64 of
//! the compressed V2 encoding, which HdrHistogram's own tools read).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Highest value the histograms track: one hour, in microseconds.
pub const HIGHEST_US: u64 = 3_600_000_000;

/// A histogram of microseconds, 1 µs to 1 h, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("static bounds are valid")
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
pub fn encode_phases(h: &[Histogram<u64>; 5]) -> std::collections::BTreeMap<String, String> {
    crate::call::phases::PHASE_NAMES.iter().zip(h).map(|(name, h)| (name.to_string(), encode(h))).collect()
}

/// The phases' histograms back from a report; an absent phase is an error.
pub fn decode_phases(saved: &std::collections::BTreeMap<String, String>) -> Result<[Histogram<u64>; 5], String> {
    let mut out: [Histogram<u64>; 5] = std::array::from_fn(|_| histogram());
    for (name, h) in crate::call::phases::PHASE_NAMES.iter().zip(&mut out) {
        let text = saved.get(*name).ok_or_else(|| format!("without the {name} phase"))?;
        *h = decode(text).map_err(|why| format!("{name}: {why}"))?;
    }
    Ok(out)
}
