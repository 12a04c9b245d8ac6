//! Native histograms, the protobuf exposition and exemplars (docs/metrics.md): the body
//! decodes into the documented families, and a real Prometheus with native histograms
//! on stores native series whose 99th percentile agrees with the probes' own within the
//! histogram's resolution.

use std::time::{Duration, Instant};

use nehr_probe::call::{Observation, Outcome};
use nehr_probe::metrics::{
    DURATION_BUCKETS, Metrics, NATIVE_SCHEMA, PHASE_BUCKETS, Registry, encode, encode_as, native_bucket_growth,
    register_build_info,
};
use nehr_probe::mock::{Latency, MockArgs};
use nehr_probe::util::exposition::model::{MetricFamily, MetricType};
use nehr_probe::util::exposition::{Format, PROTOBUF};
use prost::Message;
use serde_json::Value;

use crate::serve::{ServeProcess, eventually, get, mock, query, start_prometheus_with, tool, value};
use crate::support::USERNAME;

/// What Prometheus 2.4x sends with `--enable-feature=native-histograms`.
const NATIVE_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn decode(mut body: &[u8]) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    while !body.is_empty() {
        out.push(MetricFamily::decode_length_delimited(&mut body).expect("a length-delimited MetricFamily"));
    }
    out
}

fn family<'f>(families: &'f [MetricFamily], name: &str) -> &'f MetricFamily {
    families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no family {name}"))
}

#[test]
fn the_protobuf_body_decodes_into_the_families_of_the_text_with_native_buckets_and_exemplars() {
    let registry = Registry::new();
    let metrics = Metrics::register(&registry, "production").unwrap();
    register_build_info(&registry).unwrap();
    let t = Instant::now();
    for (seq, ms) in [(7, 42), (8, 43), (9, 180)] {
        let mut obs = Observation::new(seq, t, t, t + Duration::from_millis(ms), Some(200), Outcome::Ok);
        obs.phases.processing = Some(Duration::from_millis(ms - 1));
        metrics.observe(&obs);
    }
    let families = decode(&encode_as(&registry, Format::Protobuf));
    let text = encode(&registry);
    // The same families, types and series as the text format.
    let text_names: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect::<Vec<_>>();
    assert_eq!(families.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), text_names);
    let requests = family(&families, "nehr_probe_requests_total");
    assert_eq!(requests.r#type, MetricType::Counter as i32);
    assert_eq!(requests.metric.len(), Outcome::COUNT);
    let ok = requests.metric.iter().find(|m| m.label.iter().any(|l| l.value == "ok")).unwrap();
    let labels: Vec<(&str, &str)> = ok.label.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
    assert_eq!(labels, [("outcome", "ok"), ("target", "production")]);
    assert_eq!(ok.counter.as_ref().unwrap().value, 3.0);

    let duration = family(&families, "nehr_probe_request_duration_seconds");
    assert_eq!(duration.r#type, MetricType::Histogram as i32);
    let h = duration.metric[0].histogram.as_ref().unwrap();
    assert_eq!((h.sample_count, h.schema), (3, i32::from(NATIVE_SCHEMA)));
    assert!((h.sample_sum - 0.265).abs() < 1e-9, "{h:?}");
    // Native: three observations in two or three buckets of the positive side.
    let native: u32 = h.positive_span.iter().map(|s| s.length).sum();
    assert!((2..=3).contains(&native) && h.positive_delta.len() == native as usize, "{h:?}");
    assert_eq!(
        h.positive_delta
            .iter()
            .scan(0, |c, d| {
                *c += d;
                Some(*c)
            })
            .sum::<i64>(),
        3
    );
    // Classic: today's buckets, and the last call of each as its exemplar.
    let bounds: Vec<f64> = h.bucket.iter().map(|b| b.upper_bound).collect();
    assert_eq!(bounds, DURATION_BUCKETS.iter().copied().chain([f64::INFINITY]).collect::<Vec<_>>());
    let with_exemplar: Vec<(f64, &str, f64)> = h
        .bucket
        .iter()
        .filter_map(|b| b.exemplar.as_ref().map(|e| (b.upper_bound, e.label[0].value.as_str(), e.value)))
        .collect();
    assert_eq!(with_exemplar, [(0.05, "8", 0.043), (0.25, "9", 0.18)]);
    let e = h.bucket[5].exemplar.as_ref().unwrap();
    assert_eq!(e.label[0].name, "call");
    assert!(e.timestamp.is_some(), "Prometheus keeps an exemplar with a timestamp only");
    assert_eq!(h.exemplars.len(), 2, "the native histogram's own list (Prometheus 3.x)");

    let phases = family(&families, "nehr_probe_phase_duration_seconds");
    assert_eq!(phases.metric.len(), 5, "all five phases from the start");
    let processing = phases.metric.iter().find(|m| m.label.iter().any(|l| l.value == "processing")).unwrap();
    let ph = processing.histogram.as_ref().unwrap();
    assert_eq!((ph.sample_count, ph.bucket.len()), (3, PHASE_BUCKETS.len() + 1));
    assert!(!ph.positive_span.is_empty());

    // OpenMetrics text carries the exemplars; the classic text has none and no native
    // buckets, exactly as before.
    let om = String::from_utf8(encode_as(&registry, Format::OpenMetrics)).unwrap();
    assert!(om.contains("le=\"0.05\"} 2 # {call=\"8\"} 0.043 "), "{om}");
    assert!(om.contains("# TYPE nehr_probe_requests counter\n") && om.ends_with("# EOF\n"), "{om}");
    assert!(!text.contains(" # ") && !text.contains("call="), "{text}");
    assert!(text.contains("nehr_probe_request_duration_seconds_bucket{target=\"production\",le=\"0.05\"} 2\n"));
    assert!(text.contains("nehr_probe_request_duration_seconds_bucket{target=\"production\",le=\"5\"} 3\n"));
}

/// The nearest-rank quantile of `samples`.
fn quantile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[((q * samples.len() as f64).ceil() as usize).max(1) - 1]
}

fn gauge(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_with_native_histograms_stores_them_and_their_p99_is_the_probes() {
    let Some(prometheus) = tool("prometheus", "prometheus") else { return };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    // Latencies spread over several native buckets: 20 to 60 ms.
    let latency = Latency::parse("20ms..60ms").unwrap();
    let mock = mock(dir.path(), MockArgs { latency: Some(latency), ..MockArgs::default() }).await;
    let serve = ServeProcess::start(&[
        "--url",
        &mock.url(),
        "--username",
        USERNAME,
        "--interval",
        "1h",
        "--probe-min-interval",
        "1ms",
    ]);
    let metrics = serve.url("/metrics");
    let count = "nehr_probe_request_duration_seconds_count{target=\"default\"}";
    // The loop's first probe, at start.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut first = f64::NAN;
    while Instant::now() < deadline {
        let (_, text) = get(&client, &metrics).await;
        if text.contains(&format!("{count} 1\n")) {
            first = gauge(&text, "nehr_probe_request_duration_seconds_sum{target=\"default\"}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(first > 0.0, "no first probe in 20 s");

    // The body Prometheus gets: protobuf, with the content type that says so.
    let r = client.get(&metrics).header("Accept", NATIVE_ACCEPT).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], PROTOBUF);
    let families = decode(&r.bytes().await.unwrap());
    assert_eq!(
        family(&families, "nehr_probe_request_duration_seconds").metric[0].histogram.as_ref().unwrap().schema,
        3
    );

    let config = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n  - job_name: nehr_probe\n    static_configs: [{{targets: [\"{}\"]}}]\n",
        serve.addr
    );
    let (_prom, base) =
        start_prometheus_with(&prometheus, dir.path(), &config, &client, &["native-histograms", "exemplar-storage"])
            .await;
    let selector = "nehr_probe_request_duration_seconds{job=\"nehr_probe\",target=\"default\"}";
    let stored = format!("histogram_count({selector})");
    eventually(&client, &base, &stored, Duration::from_secs(30), |r| value(r) == Some(1.0)).await;

    // 150 logins, each one's latency read from its /probe answer: 150 so that no rank
    // asked below falls exactly on a sample (0.99 × 150 = 148.5), where Prometheus'
    // rank and a bucket's count meet in floating point.
    let n = 150;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let (code, text) = get(&client, &serve.url("/probe")).await;
        assert_eq!(code, 200, "{text}");
        assert_eq!(gauge(&text, "probe_success"), 1.0, "{text}");
        // Each login takes 20 ms or more and started after the last one ended, so the
        // gate (--probe-min-interval 1ms) makes a new one for every request.
        assert!(gauge(&text, "nehr_probe_probe_age_seconds") < 1.0, "a login made for this request: {text}");
        samples.push(gauge(&text, "probe_duration_seconds"));
    }
    let want = (n + 1) as f64;
    eventually(&client, &base, &stored, Duration::from_secs(30), |r| value(r) == Some(want)).await;
    // Stored as a native histogram: the result has "histogram", not "value".
    let raw = query(&client, &base, selector).await;
    assert!(raw[0].get("histogram").is_some() && raw[0].get("value").is_none(), "{raw:?}");

    // The increase over the window is the 150 logins (the first point already held the
    // loop's probe), so its 99th percentile is theirs, up to one native bucket.
    let p99 = quantile(&mut samples, 0.99);
    let expr = format!("histogram_quantile(0.99, rate({selector}[10m]))");
    let got = value(&query(&client, &base, &expr).await).unwrap_or_else(|| panic!("{expr}: no value"));
    let growth = native_bucket_growth();
    assert!(
        got <= p99 * growth && got >= p99 / growth,
        "{expr} = {got}, the probes' p99 = {p99}: more than one bucket ({growth}) apart; samples {samples:?}"
    );
    // And a second point of the distribution (0.75 × 150 = 112.5).
    let p75 = quantile(&mut samples, 0.75);
    let expr = format!("histogram_quantile(0.75, rate({selector}[10m]))");
    let got = value(&query(&client, &base, &expr).await).unwrap();
    assert!(got <= p75 * growth && got >= p75 / growth, "{expr} = {got}, the probes' p75 = {p75}");
    // The sum and count agree exactly.
    let sum = value(&query(&client, &base, &format!("histogram_sum({selector})")).await).unwrap();
    let total: f64 = samples.iter().sum::<f64>() + first;
    assert!((sum - total).abs() < 1e-6, "histogram_sum {sum}, the probes' {total}");

    // The exemplars: call numbers, stored.
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/v1/query_exemplars"),
        [("query", selector), ("start", "0"), ("end", &format!("{}", nehr_probe::metrics::unix_now() + 60.0))],
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&client.get(url).send().await.unwrap().bytes().await.unwrap()).unwrap();
    let calls: Vec<u64> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["exemplars"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["labels"]["call"].as_str()?.parse().ok())
        .collect();
    assert!(!calls.is_empty() && calls.iter().all(|c| *c <= n as u64), "exemplars with call numbers: {v}");

    // /probe answers protobuf too.
    let r = client.get(serve.url("/probe")).header("Accept", NATIVE_ACCEPT).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], PROTOBUF);
    let probe = decode(&r.bytes().await.unwrap());
    assert_eq!(family(&probe, "probe_success").metric[0].gauge.as_ref().unwrap().value, 1.0);
    assert_eq!(family(&probe, "nehr_probe_outcome").metric.len(), Outcome::COUNT);
}
