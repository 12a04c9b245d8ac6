//! The wire formats of a scrape, all written from one gathered set of metric families
//! (Prometheus' data model, `io.prometheus.client.MetricFamily`): the classic text format
//! (0.0.4, what every consumer reads and `promtool check metrics` lints), OpenMetrics
//! text 1.0.0 (exemplars), and the length-delimited protobuf Prometheus asks for when
//! native histograms are on (native histograms and exemplars). [`Format::negotiate`]
//! picks one from a scraper's `Accept`; the text format unless it asks for another.
//! Also the `process_*` series of the running process, read from `/proc`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_protobuf;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry as ClientRegistry;
use prost::Message;

use model::{Metric, MetricFamily, MetricType};
pub use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model as model;

/// The content type of the classic text format.
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the delimited protobuf format.
pub const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// One of the formats a scrape can be answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
    Protobuf,
}

impl Format {
    /// The format an `Accept` header asks for: the acceptable one with the highest `q`
    /// (the earliest on a tie), the text format when none is named or none is offered.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let mut best: Option<(f64, Format)> = None;
        for range in accept.unwrap_or("").split(',') {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut proto, mut encoding) = (1.0_f64, None, None);
            for p in params {
                let Some((k, v)) = p.split_once('=') else { continue };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.parse().unwrap_or(0.0),
                    "proto" => proto = Some(v.to_string()),
                    "encoding" => encoding = Some(v.to_ascii_lowercase()),
                    _ => {}
                }
            }
            let format = match media.as_str() {
                "application/vnd.google.protobuf"
                    if proto.as_deref() == Some("io.prometheus.client.MetricFamily")
                        && encoding.as_deref() == Some("delimited") =>
                {
                    Format::Protobuf
                }
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Format::Text,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT,
            Format::OpenMetrics => OPENMETRICS,
            Format::Protobuf => PROTOBUF,
        }
    }

    /// `families` in this format.
    pub fn render(self, families: &[MetricFamily]) -> Vec<u8> {
        match self {
            Format::Text => text(families).into_bytes(),
            Format::OpenMetrics => openmetrics(families).into_bytes(),
            Format::Protobuf => protobuf(families),
        }
    }
}

/// Families with one name merged into one, each metric's labels sorted by name, the
/// metrics of a family sorted by their labels, the families by name, empty ones left out:
/// every format lists the same series in the same order, whoever registered them.
pub fn tidy(families: Vec<MetricFamily>) -> Vec<MetricFamily> {
    let mut by_name: std::collections::BTreeMap<String, MetricFamily> = std::collections::BTreeMap::new();
    for mut f in families {
        for m in &mut f.metric {
            m.label.sort_by(|a, b| a.name.cmp(&b.name));
        }
        match by_name.get_mut(&f.name) {
            Some(have) => have.metric.append(&mut f.metric),
            None => {
                by_name.insert(f.name.clone(), f);
            }
        }
    }
    let mut out: Vec<MetricFamily> = by_name.into_values().filter(|f| !f.metric.is_empty()).collect();
    for f in &mut out {
        f.metric.sort_by(|a, b| {
            a.label.iter().map(|l| (&l.name, &l.value)).cmp(b.label.iter().map(|l| (&l.name, &l.value)))
        });
    }
    out
}

/// The length-delimited protobuf exposition.
pub fn protobuf(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::with_capacity(families.iter().map(|f| f.encoded_len() + 10).sum());
    for f in families {
        f.encode_length_delimited(&mut out).expect("a Vec grows as needed");
    }
    out
}

/// A sample value as Prometheus writes it: `1`, `0.25`, `+Inf`, `NaN`.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        v.to_string()
    }
}

fn escape(v: &str, quote: bool) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

fn labels(out: &mut String, m: &Metric, extra: Option<(&str, &str)>) {
    let pairs = m.label.iter().map(|l| (l.name.as_str(), l.value.as_str())).chain(extra);
    let mut sep = '{';
    let mut any = false;
    for (k, v) in pairs {
        let _ = write!(out, "{sep}{k}=\"{}\"", escape(v, true));
        sep = ',';
        any = true;
    }
    if any {
        out.push('}');
    }
}

fn type_name(f: &MetricFamily) -> &'static str {
    match MetricType::try_from(f.r#type).unwrap_or(MetricType::Untyped) {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Summary => "summary",
        MetricType::Histogram => "histogram",
        MetricType::GaugeHistogram => "gaugehistogram",
        MetricType::Untyped => "untyped",
    }
}

/// Each sample of `f`: its name suffix, its metric, an extra label, its value, its exemplar.
fn samples<'f>(
    f: &'f MetricFamily,
    mut each: impl FnMut(&str, &'f Metric, Option<(&str, &str)>, f64, Option<&'f model::Exemplar>),
) {
    for m in &f.metric {
        if let Some(h) = &m.histogram {
            for b in &h.bucket {
                each(
                    "_bucket",
                    m,
                    Some(("le", &number(b.upper_bound))),
                    b.cumulative_count as f64,
                    b.exemplar.as_ref(),
                );
            }
            if h.bucket.last().is_none_or(|b| b.upper_bound != f64::INFINITY) && !h.bucket.is_empty() {
                each("_bucket", m, Some(("le", "+Inf")), h.sample_count as f64, None);
            }
            each("_sum", m, None, h.sample_sum, None);
            each("_count", m, None, h.sample_count as f64, None);
        } else if let Some(c) = &m.counter {
            each("", m, None, c.value, c.exemplar.as_ref());
        } else if let Some(g) = &m.gauge {
            each("", m, None, g.value, None);
        } else if let Some(u) = &m.untyped {
            each("", m, None, u.value, None);
        }
    }
}

/// About how long the text of `families` is, a little over: written into a string of
/// that size at once, a large scrape never holds a half-grown copy beside the whole.
fn text_len(families: &[MetricFamily]) -> usize {
    let metric = |f: &MetricFamily, m: &Metric| {
        let line = f.name.len() + 48 + m.label.iter().map(|l| l.name.len() + l.value.len() + 4).sum::<usize>();
        let exemplars = m.histogram.as_ref().map_or(0, |h| h.exemplars.len() * 64);
        line * m.histogram.as_ref().map_or(1, |h| h.bucket.len() + 2) + exemplars
    };
    families
        .iter()
        .map(|f| 64 + 2 * (f.name.len() + f.help.len()) + f.metric.iter().map(|m| metric(f, m)).sum::<usize>())
        .sum::<usize>()
        + 8
}

/// The classic text format, as the `prometheus` crate wrote it before (HELP, TYPE,
/// samples; no exemplars, no native buckets).
pub fn text(families: &[MetricFamily]) -> String {
    let mut out = String::with_capacity(text_len(families));
    for f in families {
        if !f.help.is_empty() {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape(&f.help, false));
        }
        let _ = writeln!(out, "# TYPE {} {}", f.name, type_name(f));
        samples(f, |suffix, m, extra, value, _| {
            out.push_str(&f.name);
            out.push_str(suffix);
            labels(&mut out, m, extra);
            let _ = writeln!(out, " {}", number(value));
        });
    }
    out
}

/// OpenMetrics text 1.0.0: a counter's family is named without `_total`, exemplars
/// follow the samples they belong to, `# EOF` ends it.
pub fn openmetrics(families: &[MetricFamily]) -> String {
    let mut out = String::with_capacity(text_len(families));
    for f in families {
        let counter = f.r#type == MetricType::Counter as i32;
        let family = if counter { f.name.strip_suffix("_total").unwrap_or(&f.name) } else { &f.name };
        let _ = writeln!(out, "# TYPE {family} {}", type_name(f));
        if !f.help.is_empty() {
            let _ = writeln!(out, "# HELP {family} {}", escape(&f.help, true));
        }
        samples(f, |suffix, m, extra, value, exemplar| {
            out.push_str(family);
            out.push_str(if counter { "_total" } else { suffix });
            labels(&mut out, m, extra);
            let _ = write!(out, " {}", number(value));
            if let Some(e) = exemplar {
                let mut set = String::new();
                labels(&mut set, &Metric { label: e.label.clone(), ..Metric::default() }, None);
                let set = if set.is_empty() { "{}".to_string() } else { set };
                let _ = write!(out, " # {set} {}", number(e.value));
                if let Some(t) = &e.timestamp {
                    let _ = write!(out, " {}.{:03}", t.seconds, t.nanos / 1_000_000);
                }
            }
            out.push('\n');
        });
    }
    out.push_str("# EOF\n");
    out
}

/// What a scrape gathers from: the parts registered, each removable (a target that left
/// the config). prometheus-client's registry has no unregister, so the one encoded is
/// rebuilt from the parts that remain whenever they change; the metrics themselves are
/// shared handles, so a part that stays keeps its counts.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<Parts>>);

#[derive(Default)]
struct Parts {
    parts: Vec<Part>,
    built: Option<Arc<Built>>,
}

struct Part {
    /// One part per key (`metrics/NAME`, `door/NAME`, …): registering a key twice fails.
    key: String,
    register: Box<dyn Fn(&mut ClientRegistry) + Send + Sync>,
    /// The exemplars of the part's histograms, by series ([`series_key`]).
    exemplars: Vec<(String, Slots)>,
}

struct Built {
    registry: ClientRegistry,
    exemplars: HashMap<String, Slots>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, Parts> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn add(
        &self,
        key: String,
        register: impl Fn(&mut ClientRegistry) + Send + Sync + 'static,
        exemplars: Vec<(String, Slots)>,
    ) -> anyhow::Result<()> {
        let mut p = self.parts();
        if p.parts.iter().any(|part| part.key == key) {
            anyhow::bail!("the series {key} are registered already");
        }
        p.parts.push(Part { key, register: Box::new(register), exemplars });
        p.built = None;
        Ok(())
    }

    pub fn remove(&self, key: &str) {
        let mut p = self.parts();
        p.parts.retain(|part| part.key != key);
        p.built = None;
    }

    /// Every series, in Prometheus' data model: families merged by name and sorted,
    /// the exemplars in their buckets.
    pub fn gather(&self) -> Vec<MetricFamily> {
        let built = {
            let mut p = self.parts();
            match &p.built {
                Some(b) => Arc::clone(b),
                None => {
                    let mut registry = ClientRegistry::default();
                    for part in &p.parts {
                        (part.register)(&mut registry);
                    }
                    let exemplars =
                        p.parts.iter().flat_map(|part| part.exemplars.iter().cloned()).collect::<HashMap<_, _>>();
                    let b = Arc::new(Built { registry, exemplars });
                    p.built = Some(Arc::clone(&b));
                    b
                }
            }
        };
        let mut families = gather(&built.registry);
        for f in &mut families {
            for m in &mut f.metric {
                let Some(h) = m.histogram.as_mut() else { continue };
                let labels: Vec<(&str, &str)> = m.label.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
                if let Some(slots) = built.exemplars.get(&series_key(&f.name, &labels)) {
                    attach(h, &slots.lock().unwrap_or_else(PoisonError::into_inner));
                }
            }
        }
        families
    }
}

/// The families of a prometheus-client registry, tidied ([`tidy`]).
pub fn gather(registry: &ClientRegistry) -> Vec<MetricFamily> {
    tidy(prometheus_protobuf::encode(registry).expect("encoding metrics into the data model"))
}

/// The name and sorted labels of one series: the key its exemplars are kept under.
pub fn series_key(family: &str, labels: &[(&str, &str)]) -> String {
    let mut sorted = labels.to_vec();
    sorted.sort();
    let inner: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{family}{{{}}}", inner.join(","))
}

/// The last call seen in a classic bucket: the exemplar of that bucket.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub call: u64,
    pub value: f64,
    pub at: SystemTime,
}

pub type Slots = Arc<Mutex<Vec<Option<Seen>>>>;

fn attach(h: &mut model::Histogram, slots: &[Option<Seen>]) {
    for (bucket, seen) in h.bucket.iter_mut().zip(slots) {
        let Some(s) = seen else { continue };
        let at = s.at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let exemplar = model::Exemplar {
            label: vec![model::LabelPair { name: "call".into(), value: s.call.to_string() }],
            value: s.value,
            timestamp: Some(prost_types::Timestamp { seconds: at.as_secs() as i64, nanos: at.subsec_nanos() as i32 }),
        };
        // Prometheus 2.4x reads a native histogram's exemplars from its buckets, 3.x
        // from the histogram's own list.
        h.exemplars.push(exemplar.clone());
        bucket.exemplar = Some(exemplar);
    }
}

/// The `process_*` series of the running process (Linux), under the names every
/// Prometheus client uses.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What `/proc` says about this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStat {
    pub cpu_seconds: f64,
    pub open_fds: i64,
    pub max_fds: i64,
    pub virtual_bytes: i64,
    pub resident_bytes: i64,
    pub start_time_seconds: f64,
    pub threads: i64,
}

impl ProcessStat {
    /// Reads `/proc/self`; `None` where there is no such thing.
    #[cfg(not(target_os = "linux"))]
    pub fn read() -> Option<ProcessStat> {
        None
    }

    /// Reads `/proc/self`; `None` where there is no such thing.
    #[cfg(target_os = "linux")]
    pub fn read() -> Option<ProcessStat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as f64;
        let boot: f64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())?;
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| l.lines().find(|l| l.starts_with("Max open files"))?.split_whitespace().nth(3)?.parse().ok());
        Some(ProcessStat {
            cpu_seconds: (field(14)? + field(15)?) / ticks,
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64),
            max_fds: max_fds.unwrap_or(0),
            virtual_bytes: field(23)? as i64,
            resident_bytes: (field(24)? * page) as i64,
            start_time_seconds: boot + field(22)? / ticks,
            threads: field(20)? as i64,
        })
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = ProcessStat::read() else { return Ok(()) };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 6] = [
            ("process_open_fds", "Number of open file descriptors.", p.open_fds as f64),
            ("process_max_fds", "Maximum number of open file descriptors.", p.max_fds as f64),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes.", p.virtual_bytes as f64),
            ("process_resident_memory_bytes", "Resident memory size in bytes.", p.resident_bytes as f64),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                p.start_time_seconds,
            ),
            ("process_threads", "Number of OS threads in the process.", p.threads as f64),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Bucket, Counter, Exemplar, Gauge, Histogram, LabelPair};

    fn pair(name: &str, value: &str) -> LabelPair {
        LabelPair { name: name.into(), value: value.into() }
    }

    fn families() -> Vec<MetricFamily> {
        let exemplar = Exemplar {
            label: vec![pair("call", "7")],
            value: 0.042,
            timestamp: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 250_000_000 }),
        };
        let histogram = Histogram {
            sample_count: 2,
            sample_sum: 0.05,
            bucket: vec![
                Bucket { cumulative_count: 1, upper_bound: 0.01, ..Bucket::default() },
                Bucket { cumulative_count: 2, upper_bound: 1.0, exemplar: Some(exemplar), ..Bucket::default() },
                Bucket { cumulative_count: 2, upper_bound: f64::INFINITY, ..Bucket::default() },
            ],
            schema: 3,
            ..Histogram::default()
        };
        tidy(vec![
            MetricFamily {
                name: "x_seconds".into(),
                help: "Latency".into(),
                r#type: MetricType::Histogram as i32,
                metric: vec![Metric {
                    label: vec![pair("target", "a")],
                    histogram: Some(histogram),
                    ..Metric::default()
                }],
                ..MetricFamily::default()
            },
            MetricFamily {
                name: "x_total".into(),
                help: "Calls, \"by\" outcome\\".into(),
                r#type: MetricType::Counter as i32,
                metric: vec![Metric {
                    label: vec![pair("target", "b"), pair("outcome", "ok")],
                    counter: Some(Counter { value: 3.0, ..Counter::default() }),
                    ..Metric::default()
                }],
                ..MetricFamily::default()
            },
            MetricFamily {
                name: "x_total".into(),
                help: "Calls, \"by\" outcome\\".into(),
                r#type: MetricType::Counter as i32,
                metric: vec![Metric {
                    label: vec![pair("target", "a"), pair("outcome", "ok")],
                    counter: Some(Counter { value: 1.0, ..Counter::default() }),
                    ..Metric::default()
                }],
                ..MetricFamily::default()
            },
            MetricFamily { name: "x_empty".into(), r#type: MetricType::Gauge as i32, ..MetricFamily::default() },
            MetricFamily {
                name: "a_gauge".into(),
                r#type: MetricType::Gauge as i32,
                metric: vec![Metric { gauge: Some(Gauge { value: 1_798_761_600.0 }), ..Metric::default() }],
                ..MetricFamily::default()
            },
        ])
    }

    #[test]
    fn text_is_the_classic_format_merged_and_sorted() {
        let want = "\
# TYPE a_gauge gauge
a_gauge 1798761600
# HELP x_seconds Latency
# TYPE x_seconds histogram
x_seconds_bucket{target=\"a\",le=\"0.01\"} 1
x_seconds_bucket{target=\"a\",le=\"1\"} 2
x_seconds_bucket{target=\"a\",le=\"+Inf\"} 2
x_seconds_sum{target=\"a\"} 0.05
x_seconds_count{target=\"a\"} 2
# HELP x_total Calls, \"by\" outcome\\\\
# TYPE x_total counter
x_total{outcome=\"ok\",target=\"a\"} 1
x_total{outcome=\"ok\",target=\"b\"} 3
";
        assert_eq!(text(&families()), want);
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_carries_exemplars() {
        let om = openmetrics(&families());
        assert!(om.contains("# TYPE x counter\n# HELP x Calls, \\\"by\\\" outcome\\\\\n"), "{om}");
        assert!(om.contains("x_total{outcome=\"ok\",target=\"a\"} 1\n"), "{om}");
        assert!(om.contains("x_seconds_bucket{target=\"a\",le=\"1\"} 2 # {call=\"7\"} 0.042 1700000000.250\n"), "{om}");
        assert!(om.ends_with("x_total{outcome=\"ok\",target=\"b\"} 3\n# EOF\n"), "{om}");
    }

    #[test]
    fn protobuf_decodes_back_into_the_families() {
        let body = protobuf(&families());
        let mut buf = body.as_slice();
        let mut back = Vec::new();
        while !buf.is_empty() {
            back.push(MetricFamily::decode_length_delimited(&mut buf).unwrap());
        }
        assert_eq!(back, families());
    }

    #[test]
    fn negotiation_follows_the_scrapers_preference() {
        let native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let classic = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(native)), Format::Protobuf);
        assert_eq!(Format::negotiate(Some(classic)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(Some("application/json")), Format::Text);
        // A protobuf of another message, or not delimited, is not ours.
        assert_eq!(
            Format::negotiate(Some("application/vnd.google.protobuf;proto=other;encoding=delimited")),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("application/openmetrics-text;q=0")), Format::Text);
    }

    #[test]
    fn the_process_is_read_from_proc() {
        let Some(p) = ProcessStat::read() else { return };
        assert!(p.threads >= 1 && p.open_fds >= 1 && p.max_fds >= p.open_fds, "{p:?}");
        assert!(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes, "{p:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(p.start_time_seconds <= now + 1.0 && p.start_time_seconds > now - 86_400.0 * 365.0, "{p:?}");
    }
}
