//! `serve`'s landing page after a run of probes with mixed outcomes: the history strip
//! holds a cell per probe coloured by its outcome, the sparkline a point per probe, the
//! availability is stated, and a real headless chromium draws it (non-blank, no console
//! message, both the ok and the failure colour on screen), and, laid out at two widths,
//! its table keeps each reason on one line and its strip has a time axis, a scale and a
//! legend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nehr_probe::mock::MockArgs;
use nehr_probe::serve::Exporter;

use serde::Deserialize;

use crate::browser::{Rect, keep, measure, screenshot};
use crate::serve::{get, mock, serve_args};
use crate::support::{PASSWORD, USERNAME, refused_addr};

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

/// What the landing page script measures, laid out by chromium.
#[derive(Debug, Deserialize)]
struct Laid {
    /// The page is wider than the window (a horizontal scroll bar for the whole page).
    page_overflows: bool,
    /// The table is wider than its room (it scrolls sideways).
    table_overflows: bool,
    /// The table's rows (the heading first), each one line tall.
    rows: Vec<f64>,
    /// One line of the table's text: the "last probe" label's cell.
    line: f64,
    /// Each reason as shown: its cell's height, whether it is cut short, its tooltip.
    reasons: Vec<(f64, bool, String)>,
    histories: Vec<History>,
}

#[derive(Debug, Deserialize)]
struct History {
    frame: Rect,
    times: Vec<(String, Rect)>,
    scale: Vec<(String, Rect)>,
    legend: Vec<(String, Rect)>,
}

const LAID: &str = "
const box = e => e.getBoundingClientRect();
const texts = (svg, sel) => [...svg.querySelectorAll(sel)].map(t => [t.textContent.trim(), box(t)]);
document.body.dataset.measured = JSON.stringify({
  page_overflows: document.documentElement.scrollWidth > window.innerWidth,
  table_overflows: (w => w.scrollWidth > w.clientWidth)(document.querySelector('.wide')),
  rows: [...document.querySelectorAll('table.targets tr')].map(r => box(r).height),
  line: box(document.querySelector('td.k')).height,
  reasons: [...document.querySelectorAll('td.reason')].map(td => {
    const cut = td.querySelector('.cut');
    return [box(td).height, cut.scrollWidth > cut.clientWidth, cut.title];
  }),
  histories: [...document.querySelectorAll('.hist')].map(h => {
    const spark = h.querySelector('svg.spark');
    return {
      frame: box(spark),
      times: texts(spark, 'text.time'),
      scale: texts(spark, 'text.scale'),
      legend: [...h.querySelectorAll('.legend span')].map(s => [s.textContent.trim(), box(s)]),
    };
  }),
});
";

/// Two targets, one failing to connect (a long reason) and one with mixed outcomes, laid
/// out in chromium at 1280 and 800 pixels: each table row one line (reasons cut short,
/// the whole in the tooltip, the outcome name not repeated), the history's time axis
/// ending at "now", the sparkline's scale and the strip's legend drawn, nothing
/// overlapping and the page no wider than the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_page_strip_has_its_axis_scale_and_legend_and_reasons_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = mock(dir.path(), MockArgs { error_rate: 0.4, ..MockArgs::default() }).await;
    let (_held, refused) = refused_addr();
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let config = dir.path().join("targets.toml");
    let target = |name: &str, url: &str| {
        format!("[targets.{name}]\nurl = \"{url}\"\nusername = \"{USERNAME}\"\npassword_file = \"password\"\n\n")
    };
    let refused_url = format!("http://{refused}/nehrapi/login/getToken");
    let toml = target("closed", &refused_url) + &target("production", &server.url());
    std::fs::write(&config, toml).unwrap();
    let argv = ["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    let args = serve_args(&[&argv[..], &["--interval", "50ms", "--probe-min-interval", "50ms"]].concat());
    let log: nehr_probe::serve::Log = Arc::new(|_: &str| {});
    let exporter = Exporter::start(&args, log).await.unwrap();
    let base = format!("http://{}/", exporter.addr());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let (code, page) = get(&client, &base).await;
        assert_eq!(code, 200);
        if page.matches("<rect").count() >= 42 && page.contains("  ok  ") && page.contains("  server_error  ") {
            break page;
        }
        assert!(Instant::now() < deadline, "too few probes after 30 s:\n{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    exporter.stop().await;
    assert!(page.contains("TCP connect to "), "{page}");
    assert!(!page.contains("connect_error: "), "the outcome name once: {page}");

    let html = dir.path().join("landing.html");
    std::fs::write(&html, &page).unwrap();
    for width in [1280, 800] {
        let Some(measured) = measure(&html, (width, 900), LAID) else { return };
        let laid: Laid = serde_json::from_str(&measured).unwrap_or_else(|e| panic!("{e}: {measured}"));
        let what = format!("at {width} px");
        assert!(!laid.page_overflows, "{what}: the page is wider than the window");
        // Narrower, the table scrolls sideways within the page rather than wrap its lines.
        assert!(width < 1280 || !laid.table_overflows, "{what}: the table does not fit");
        assert!(laid.line > 10.0 && laid.rows.len() == 5, "{what}: {laid:?}");
        for row in &laid.rows {
            assert!(*row < laid.line * 1.3, "{what}: a row of {row} px, a line is {} px", laid.line);
        }
        assert_eq!(laid.reasons.len(), 4, "{what}");
        for (height, _, title) in &laid.reasons {
            assert!(*height < laid.line * 1.3, "{what}: reason {title:?} wraps ({height} px)");
        }
        let (_, cut, title) = &laid.reasons[0];
        assert!(*cut, "{what}: the connect error's long reason is cut short");
        assert!(title.starts_with("TCP connect to 127.0.0.1:") && title.contains("refused"), "{title}");
        assert_eq!(laid.histories.len(), 2, "{what}");
        for (h, keys) in laid.histories.iter().zip([&["connect_error"][..], &["ok", "server_error"]]) {
            let times: Vec<&str> = h.times.iter().map(|t| t.0.as_str()).collect();
            assert!(times.len() >= 2 && times.last() == Some(&"now"), "{what}: {times:?}");
            assert!(
                times[..times.len() - 1].iter().all(|t| t.starts_with('\u{2212}') && t.ends_with(" s")),
                "{times:?}"
            );
            assert_eq!(h.scale.len(), 2, "{what}: the sparkline's lowest and highest latency: {h:?}");
            let legend: Vec<&str> = h.legend.iter().map(|t| t.0.split(' ').next().unwrap()).collect();
            assert_eq!(legend, keys, "{what}");
            let labels: Vec<&(String, Rect)> = h.times.iter().chain(&h.scale).collect();
            for (i, (text, at)) in labels.iter().enumerate() {
                assert!(h.frame.holds(at) && at.height() > 5.0, "{what}: {text:?} at {at:?}, outside {:?}", h.frame);
                for (other, there) in &labels[i + 1..] {
                    assert!(!at.overlaps(there), "{what}: {text:?} overlaps {other:?}");
                }
            }
            for (text, at) in &h.legend {
                assert!(at.height() > 5.0 && at.right <= f64::from(width), "{what}: legend {text:?} at {at:?}");
            }
        }
        let png = keep(&format!("landing-page-{width}.png"));
        let shot = screenshot(&html, &png, (width, 900)).expect("chromium ran");
        eprintln!("screenshot: {}", png.display());
        shot.assert_drawn();
    }
}
