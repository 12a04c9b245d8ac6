//! Values by outcome, by `--then` outcome or by phase: one shape wherever they are kept
//! (an [`EnumMap`], a fixed array indexed by the enum, no lookup, no allocation), and one
//! JSON form (an object keyed by the documented names). Reading a saved report, a key
//! it lacks is the default (a report written before `reused_token` existed reads 0) and
//! a key it does not know is ignored.

use std::collections::BTreeMap;

use enum_map::{Enum, EnumArray, EnumMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An enum whose values are keyed by their documented name.
pub trait Named: Enum + Copy {
    /// The label value and JSON key.
    fn name(self) -> &'static str;

    /// Every value, in the order reports list them (the declaration order).
    fn all() -> impl Iterator<Item = Self> {
        (0..Self::LENGTH).map(Self::from_usize)
    }
}

/// The JSON object of `map`, keyed by name in the listed order.
pub fn serialize<K, V, S>(map: &EnumMap<K, V>, s: S) -> Result<S::Ok, S::Error>
where
    K: Named + EnumArray<V>,
    V: Serialize,
    S: Serializer,
{
    s.collect_map(map.iter().map(|(k, v)| (k.name(), v)))
}

/// `map` read back from its JSON object: missing keys default, unknown ones are ignored.
pub fn deserialize<'de, K, V, D>(d: D) -> Result<EnumMap<K, V>, D::Error>
where
    K: Named + EnumArray<V>,
    V: Deserialize<'de> + Default,
    D: Deserializer<'de>,
{
    let raw = BTreeMap::<String, V>::deserialize(d)?;
    let mut map = EnumMap::<K, V>::default();
    for (name, value) in raw {
        if let Some(k) = K::all().find(|k| k.name() == name) {
            map[k] = value;
        }
    }
    Ok(map)
}

/// The name → value pairs of `map`, in the listed order.
pub fn named<K: Named + EnumArray<V>, V: Copy>(map: &EnumMap<K, V>) -> impl Iterator<Item = (&'static str, V)> + '_ {
    map.iter().map(|(k, v)| (k.name(), *v))
}

/// `from`'s counts added to `into`'s, key by key.
pub fn add_all<K: EnumArray<u64>>(into: &mut EnumMap<K, u64>, from: &EnumMap<K, u64>) {
    for (n, m) in into.values_mut().zip(from.values()) {
        *n += m;
    }
}

/// All the counts together.
pub fn total<K: EnumArray<u64>>(counts: &EnumMap<K, u64>) -> u64 {
    counts.values().sum()
}
