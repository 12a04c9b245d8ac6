//! `load` under overload as Prometheus and the dashboard see it. The tests that time
//! the run's end and count its drops closely are in the `timing` binary
//! (tests/timing/overload.rs), where nothing runs beside them.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::serve::{dashboard, eventually, start_prometheus, substitute, tool, value};
use crate::support::silent_server_live_load;

/// A real Prometheus scraping `load --metrics-listen` sees the dropped requests, through
/// the dashboard's own query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_dropped_requests_from_a_live_load() {
    let Some(prometheus) = tool("prometheus", "prometheus") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let extra = ["--rps", "500", "-c", "2", "-d", "10s", "--timeout", "300ms"];
    let (_server, load) = silent_server_live_load(dir.path(), &extra, cancel.clone()).await;
    let addr = &load.listen;
    let config = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
         scrape_configs:\n  - job_name: nehr_probe_load\n    static_configs: [{{targets: [\"{addr}\"]}}]\n"
    );
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let (_prometheus, base) = start_prometheus(&prometheus, dir.path(), &config, &client).await;
    let dash = dashboard();
    let expr = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter_map(|t| t["expr"].as_str())
        .find(|e| e.contains("nehr_probe_dropped_requests_total"))
        .map(substitute)
        .expect("a panel draws dropped requests");
    let rate = eventually(&client, &base, &expr, Duration::from_secs(9), |r| value(r).is_some_and(|v| v > 100.0)).await;
    assert_eq!(rate[0]["metric"]["target"], load.name.as_str(), "{rate:?}");
    cancel.cancel();
    let _ = load.run.await;
}
