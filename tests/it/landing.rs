//! `serve`'s landing page after a run of probes with mixed outcomes: the history strip
//! holds a cell per probe coloured by its outcome, the sparkline a point per probe, the
//! availability is stated, and a real headless chromium draws it (non-blank, no console
//! message, both the ok and the failure colour on screen).

use std::sync::Arc;
use std::time::{Duration, Instant};

use nehr_probe::mock::MockArgs;
use nehr_probe::serve::Exporter;

use crate::browser::{keep, screenshot};
use crate::serve::{get, mock, serve_args};
use crate::support::{PASSWORD, USERNAME};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_page_shows_the_last_hour_of_mixed_probes() {
    let dir = tempfile::tempdir().unwrap();
    let server = mock(dir.path(), MockArgs { error_rate: 0.4, ..MockArgs::default() }).await;
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let url = server.url();
    let args = serve_args(&[
        "--url",
        &url,
        "--username",
        USERNAME,
        "--password-file",
        password.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "50ms",
        "--probe-min-interval",
        "50ms",
    ]);
    let log: nehr_probe::serve::Log = Arc::new(|_: &str| {});
    let exporter = Exporter::start(&args, log).await.unwrap();
    let base = format!("http://{}/", exporter.addr());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();

    // Probes until both outcomes were seen a few times.
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let (code, page) = get(&client, &base).await;
        assert_eq!(code, 200);
        let cells = page.matches("<rect").count().saturating_sub(1);
        if cells >= 20 && page.contains("  ok  ") && page.contains("  server_error  ") {
            break page;
        }
        assert!(Instant::now() < deadline, "too few probes after 30 s:\n{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    exporter.stop().await;

    let strip = &page[page.find("<svg class=\"strip\"").expect("a strip")..];
    let strip = &strip[..strip.find("</svg>").unwrap()];
    let cells = strip.matches("<rect").count();
    let oks = strip.matches("  ok  ").count();
    let failures = strip.matches("  server_error  ").count();
    assert_eq!(oks + failures, cells, "every cell says its outcome: {strip}");
    assert!(strip.matches("fill=\"#2ea043\"").count() == oks && strip.matches("fill=\"#cf222e\"").count() == failures);
    let share = format!("{:.2} % available over the last {cells} probes ({oks} ok)", oks as f64 * 100.0 / cells as f64);
    assert!(page.contains(&share), "{share}\n{page}");
    let spark = &page[page.find("<svg class=\"spark\"").expect("a sparkline")..];
    let points = spark.split("points=\"").nth(1).unwrap();
    assert_eq!(points[..points.find('"').unwrap()].split(' ').count(), cells);
    assert!(!page.contains("<script") && !page.contains("src="), "nothing fetched");

    let html = dir.path().join("landing.html");
    std::fs::write(&html, &page).unwrap();
    let png = keep("landing-page.png");
    let Some(shot) = screenshot(&html, &png, (1000, 700)) else { return };
    eprintln!("screenshot: {}", png.display());
    shot.assert_drawn();
    assert!(shot.count([46, 160, 67], 6) > 50, "no ok cell on screen");
    assert!(shot.count([207, 34, 46], 6) > 20, "no failed cell on screen");
}
