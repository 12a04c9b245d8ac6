//! The HTTP endpoints Prometheus and people call: `/metrics`, blackbox-style `/probe`
//! (a configured target name only, never an address; the call fits the scrape's
//! timeout), `/healthz`, and a 404 that points to the landing page.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::probe_metrics::{ProbeResult, probe_families};
use super::state::{App, Watched};
use crate::call::Prober;
use crate::util::exposition::Format;
use crate::util::exposition::model::MetricFamily;

pub async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    metrics_response(&headers, &app.registry.gather())
}

/// `families` in the format the scraper's `Accept` asks for (docs/metrics.md).
pub fn metrics_response(headers: &HeaderMap, families: &[MetricFamily]) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let mut resp = format.render(families).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    resp
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found: see / for /metrics, /probe and /healthz\n").into_response()
}

/// `/probe[?target=NAME]`: a probe blackbox_exporter style, under the target's gate:
/// fresh, shared with the login in flight, or the last result within
/// `--probe-min-interval` (with its age).
pub async fn probe(
    State(app): State<Arc<App>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let w = match pick_target(&app.targets, &query) {
        Ok(w) => w,
        Err(message) => return (StatusCode::BAD_REQUEST, message + "\n").into_response(),
    };
    let budget = scrape_budget(&headers, w.timeout);
    let start = Instant::now();
    let shutting_down = || (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    let got = tokio::select! {
        _ = app.stop.cancelled() => return shutting_down(),
        got = tokio::time::timeout(budget, w.probe()) => got,
    };
    let probed = match got {
        Ok(Some(done)) => ProbeResult::of(&done.value, done.age()),
        Ok(None) => return shutting_down(),
        // The login goes on, for the next request; this scrape has to answer now.
        Err(_) => ProbeResult::of(&Prober::gave_up(start, budget), Duration::ZERO),
    };
    metrics_response(&headers, &probe_families(&probed))
}

/// The target a `/probe` query names: a configured name only, never an address.
fn pick_target<'a>(targets: &'a [Arc<Watched>], query: &[(String, String)]) -> Result<&'a Arc<Watched>, String> {
    let names = || targets.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ");
    let asked: Vec<&str> = query.iter().filter(|(k, _)| k == "target").map(|(_, v)| v.as_str()).collect();
    match asked.as_slice() {
        [] if targets.len() == 1 => Ok(&targets[0]),
        [] => Err(format!("several targets are configured: add ?target=NAME, one of: {}", names())),
        [name] => targets.iter().find(|w| w.name == *name).ok_or_else(|| {
            format!("unknown target: ?target= takes the name of a configured target (one of: {}), never a URL", names())
        }),
        _ => Err("give ?target= once".to_string()),
    }
}

/// How long a `/probe` may take: the target's timeout, capped by what Prometheus
/// waits for the scrape, less a margin to send the answer (as blackbox_exporter does).
fn scrape_budget(headers: &HeaderMap, timeout: Duration) -> Duration {
    let scrape = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0);
    let Some(secs) = scrape else { return timeout };
    let budget = if secs > 1.0 { secs - 0.5 } else { secs / 2.0 };
    Duration::try_from_secs_f64(budget).map_or(timeout, |b| b.min(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::state::tests::watched;

    #[test]
    fn scrape_timeout_caps_the_probe() {
        let mut h = HeaderMap::new();
        let ten = Duration::from_secs(10);
        assert_eq!(scrape_budget(&h, ten), ten);
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", HeaderValue::from_static("5"));
        assert_eq!(scrape_budget(&h, ten), Duration::from_millis(4500));
        assert_eq!(scrape_budget(&h, Duration::from_secs(2)), Duration::from_secs(2));
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", HeaderValue::from_static("0.4"));
        assert_eq!(scrape_budget(&h, ten), Duration::from_millis(200));
        // Junk is ignored: the target's own timeout, never a zero budget.
        for junk in ["-1", "0", "NaN", "inf", "1e300", "soon"] {
            h.insert("X-Prometheus-Scrape-Timeout-Seconds", HeaderValue::from_static(junk));
            assert_eq!(scrape_budget(&h, ten), ten, "{junk}");
        }
    }

    #[test]
    fn probe_takes_configured_names_only() {
        let one = vec![watched("default")];
        assert_eq!(pick_target(&one, &[]).unwrap().name, "default");
        let two = vec![watched("production"), watched("staging")];
        let q = |v: &str| vec![("target".to_string(), v.to_string())];
        assert_eq!(pick_target(&two, &q("staging")).unwrap().name, "staging");
        assert!(pick_target(&two, &[]).map(|w| &w.name).unwrap_err().contains("one of: production, staging"));
        let e = pick_target(&two, &q("http://evil.example/")).map(|w| &w.name).unwrap_err();
        assert!(e.contains("never a URL") && !e.contains("evil"), "{e}");
        assert!(pick_target(&one, &q("nope")).is_err());
        let mut twice = q("production");
        twice.extend(q("staging"));
        assert!(pick_target(&two, &twice).is_err());
    }
}
