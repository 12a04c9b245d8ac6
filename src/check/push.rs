//! `check --push URL`: delivers the metrics of one check to a Prometheus Pushgateway,
//! for cron jobs on machines without node_exporter. Same metric names as `serve`; the
//! group is job `nehr_probe`, keyed by `instance` (this host) and `target` (`--name`).
//!
//! A push replaces the group's previous metrics (HTTP PUT), so a stale failure never
//! lingers beside a fresh success. The Pushgateway URL must not carry credentials, and
//! errors never echo the URL's query or anything from the check but its metrics.

use std::time::Duration;

use base64::Engine;
use reqwest::Url;

use crate::util::url::{UrlError, http_url};

/// The `job` label of pushed metrics.
pub const JOB: &str = "nehr_probe";

/// Longest wait for the Pushgateway to take the metrics.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("invalid --push URL {url:?}: {why}; expected e.g. http://pushgateway.example:9091")]
    BadUrl { url: String, why: String },
    #[error("invalid --push URL: credentials do not belong in the URL")]
    Credentials,
    #[error("cannot push to the Pushgateway at {url}: {why}")]
    Send { url: String, why: String },
    #[error("the Pushgateway at {url} refused the metrics: HTTP {status}: {answer}")]
    Refused { url: String, status: u16, answer: String },
}

/// The URL of the group `job/nehr_probe/instance/<instance>/target/<target>` under the
/// Pushgateway at `base` (which may have a path prefix).
pub fn group_url(base: &str, instance: &str, target: &str) -> Result<Url, PushError> {
    let bad = |why: &str| PushError::BadUrl { url: base.to_string(), why: why.to_string() };
    let mut url = http_url(base).map_err(|e| match e {
        UrlError::Credentials => PushError::Credentials,
        UrlError::Bad(why) => bad(&why),
    })?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment, please"));
    }
    {
        let mut path = url.path_segments_mut().map_err(|()| bad("not a base URL"))?;
        path.pop_if_empty();
        path.extend(["metrics", "job", JOB]);
        for (label, value) in [("instance", instance), ("target", target)] {
            let (key, value) = group_segment(label, value);
            path.push(&key);
            path.push(&value);
        }
    }
    Ok(url)
}

/// A grouping label as two path segments: plain when the value is plain, else in the
/// Pushgateway's `label@base64` form (values with `/`, empty values, anything odd).
fn group_segment(label: &str, value: &str) -> (String, String) {
    let plain =
        !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if plain {
        (label.to_string(), value.to_string())
    } else {
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(value.as_bytes());
        (format!("{label}@base64"), if encoded.is_empty() { "=".to_string() } else { encoded })
    }
}

/// This host's name, the `instance` of the group: two hosts checking one target must
/// not overwrite each other's results.
pub fn instance_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// PUTs `metrics` (text exposition format) to a group's `url` (from [`group_url`]).
pub async fn push(url: Url, metrics: String) -> Result<(), PushError> {
    let shown = {
        let mut u = url.clone();
        u.set_path("");
        u.to_string()
    };
    let send_error = |e: reqwest::Error| PushError::Send {
        url: shown.clone(),
        why: crate::util::fmt::error_chain(&e.without_url()),
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(PUSH_TIMEOUT)
        .user_agent(crate::call::h1::USER_AGENT)
        .build()
        .map_err(send_error)?;
    let resp = client
        .put(url)
        .header(reqwest::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
        .body(metrics)
        .send()
        .await
        .map_err(send_error)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.bytes().await.unwrap_or_default();
    let answer: String = String::from_utf8_lossy(&body).split_whitespace().collect::<Vec<_>>().join(" ");
    let answer = match answer.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &answer[..i]),
        None => answer,
    };
    Err(PushError::Refused { url: shown, status: status.as_u16(), answer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_urls() {
        let u = group_url("http://127.0.0.1:9091", "host-1", "production").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9091/metrics/job/nehr_probe/instance/host-1/target/production");
        let u = group_url("https://gw.example/prefix/", "h", "a/b").unwrap();
        assert_eq!(u.as_str(), "https://gw.example/prefix/metrics/job/nehr_probe/instance/h/target@base64/YS9i");
        let u = group_url("http://gw:9091", "h", "").unwrap();
        assert!(u.as_str().ends_with("/target@base64/="), "{u}");
    }

    #[test]
    fn bad_urls_say_why_and_never_echo_credentials() {
        let e = group_url("http://user:hunter2@gw:9091", "h", "t").unwrap_err().to_string();
        assert!(e.contains("credentials do not belong") && !e.contains("hunter2"), "{e}");
        let e = group_url("gw:9091", "h", "t").unwrap_err().to_string();
        assert!(e.contains("expected e.g. http://"), "{e}");
        let e = group_url("ftp://gw", "h", "t").unwrap_err().to_string();
        assert!(e.contains("only http:// and https://"), "{e}");
    }
}
