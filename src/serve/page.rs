//! The landing page a person opens in a browser: links to the endpoints and, per
//! target, the last probe, the last failure and the certificate's time left. Every
//! text from a target or an answer is escaped.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::Html;

use super::state::{App, Seen};
use crate::call::Outcome;
use crate::util::fmt::cert_note;

/// The landing page: links, and each target's last outcome and last failure.
pub async fn landing(State(app): State<Arc<App>>) -> Html<String> {
    Html(landing_page(&app))
}

pub fn landing_page(app: &App) -> String {
    let now = SystemTime::now();
    let unix_now = crate::metrics::unix_now() as i64;
    let mut rows = String::new();
    for w in &app.targets {
        let h = w.history.lock().unwrap_or_else(|p| p.into_inner());
        let seen = |s: &Option<Seen>, none: &str| match s {
            Some(s) => format!(
                "<td class=\"{cls}\">{outcome}</td><td>{reason}</td><td>{ago} ago ({ms:.1} ms)</td>",
                cls = if s.outcome == Outcome::Ok { "ok" } else { "bad" },
                outcome = s.outcome,
                reason = escape(&s.reason),
                ago = ago(now, s.at),
                ms = s.latency.as_secs_f64() * 1e3,
            ),
            None => format!("<td>-</td><td>{none}</td><td></td>"),
        };
        let _ = writeln!(
            rows,
            "<tr><th><a href=\"probe?target={name}\">{name}</a></th><td><code>{url}</code></td><td>{probes}</td>{last}{failure}<td>{cert}</td></tr>",
            name = escape(&w.name),
            url = escape(&w.url),
            probes = h.probes,
            last = seen(&h.last, "not probed yet"),
            failure = seen(&h.last_failure, "none since start"),
            cert = h.cert_not_after.map_or_else(|| "-".to_string(), |t| cert_note(t.saturating_sub(unix_now))),
        );
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nehr-probe</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}.ok{{color:#070}}.bad{{color:#b00;font-weight:bold}}</style>
</head><body>
<h1>nehr-probe {version}</h1>
<p>Probes the NEHR login (<code>POST …/nehrapi/login/getToken</code>) every {interval}; up since {since}.</p>
<ul>
<li><a href="metrics">/metrics</a>: the metrics of every target, for Prometheus</li>
<li><a href="probe">/probe</a>: one fresh probe per request, blackbox style (<code>?target=NAME</code>)</li>
<li><a href="healthz">/healthz</a>: is this process up</li>
</ul>
<table>
<tr><th rowspan="2">target</th><th rowspan="2">url</th><th rowspan="2">probes</th><th colspan="3">last probe</th><th colspan="3">last failure</th><th rowspan="2">TLS</th></tr>
<tr><th>outcome</th><th>reason</th><th>when</th><th>outcome</th><th>reason</th><th>when</th></tr>
{rows}</table>
</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        interval = humantime::format_duration(app.interval),
        since = humantime::format_rfc3339_seconds(app.started),
    )
}

fn ago(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).unwrap_or_default().as_secs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use prometheus::Registry;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::call::Observation;
    use crate::serve::state::tests::watched;

    #[test]
    fn landing_page_escapes_and_shows_the_last_failure() {
        let w = watched("production");
        let mut bad = Observation::test(Outcome::TransportError, None, 0, 3);
        bad.detail = Some("<script>x</script>".into());
        w.record(&bad);
        w.record(&Observation::test(Outcome::Ok, Some(200), 0, 3));
        let app = App {
            targets: vec![w],
            registry: Registry::new(),
            interval: Duration::from_secs(30),
            started: SystemTime::now(),
            stop: CancellationToken::new(),
        };
        let page = landing_page(&app);
        assert!(page.contains("href=\"metrics\"") && page.contains("href=\"healthz\""), "{page}");
        assert!(page.contains("href=\"probe?target=production\""), "{page}");
        assert!(page.contains("transport_error: &lt;script&gt;x&lt;/script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains(">ok</td>") && page.contains(">transport_error</td>"), "{page}");
        assert!(page.contains("every 30s"), "{page}");
        assert!(page.contains("<td>-</td></tr>"), "no certificate over http: {page}");

        let mut tls = Observation::test(Outcome::Ok, Some(200), 0, 3);
        tls.cert_not_after = Some(crate::metrics::unix_now() as i64 + 10 * 86_400 + 600);
        app.targets[0].record(&tls);
        let page = landing_page(&app);
        assert!(page.contains("<td>certificate expires in 10 days</td></tr>"), "{page}");
    }
}
