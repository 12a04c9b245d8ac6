//! Pictures checked in a real browser: Debian's `chromium` (which `.ci/run` installs)
//! renders a page headless to a PNG, and the test reads the pixels and the browser's
//! console, or measures the laid-out page (boxes of its elements) with a script run in a
//! copy of it. Without chromium a test prints a note and passes, unless `CI` is set: then
//! it fails. The screenshots are kept under the target directory for a reviewer to open.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::serve::tool;

/// What the browser drew and said.
pub struct Shot {
    pub path: PathBuf,
    pub width: usize,
    pub height: usize,
    /// RGB, row by row.
    pub pixels: Vec<[u8; 3]>,
    /// Every console message the page caused (it has no script, so there should be none).
    pub console: Vec<String>,
}

impl Shot {
    /// The share of pixels that are not (nearly) white.
    pub fn inked(&self) -> f64 {
        let ink = self.pixels.iter().filter(|p| p.iter().any(|c| *c < 235)).count();
        ink as f64 / self.pixels.len() as f64
    }

    /// Pixels within `tolerance` of `colour` in every channel.
    pub fn count(&self, colour: [u8; 3], tolerance: u8) -> usize {
        self.pixels.iter().filter(|p| p.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= tolerance)).count()
    }

    /// Drawn, not blank: some ink, and more than a handful of colours.
    pub fn assert_drawn(&self) {
        let inked = self.inked();
        assert!(inked > 0.02, "{}: only {:.2} % of the pixels are not white", self.path.display(), inked * 100.0);
        let mut colours: Vec<[u8; 3]> = self.pixels.iter().step_by(7).copied().collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() > 16, "{}: {} colours", self.path.display(), colours.len());
        assert!(self.console.is_empty(), "console messages: {:?}", self.console);
    }
}

/// Where a test's screenshot is kept: `target/tmp/pictures/NAME`.
pub fn keep(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pictures");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Renders `page` (a file) at `size` into `png`; `None` without chromium (never under CI).
pub fn screenshot(page: &Path, png: &Path, size: (u32, u32)) -> Option<Shot> {
    let _ = std::fs::remove_file(png);
    let (_, log) = chromium(page, size, &format!("--screenshot={}", png.display()))?;
    let console = log.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_owned).collect();
    assert!(png.is_file(), "chromium wrote no screenshot:\n{log}");
    let (width, height, pixels) = read_png(png);
    Some(Shot { path: png.to_path_buf(), width, height, pixels, console })
}

/// A box on the rendered page, in CSS pixels (`getBoundingClientRect`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
pub struct Rect {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl Rect {
    /// Whether the two share any area (touching edges do not count).
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.left < other.right && other.left < self.right && self.top < other.bottom && other.top < self.bottom
    }

    /// Whether `inner` lies wholly inside, give or take half a pixel.
    pub fn holds(&self, inner: &Rect) -> bool {
        inner.left >= self.left - 0.5
            && inner.right <= self.right + 0.5
            && inner.top >= self.top - 0.5
            && inner.bottom <= self.bottom + 0.5
    }

    pub fn height(&self) -> f64 {
        self.bottom - self.top
    }
}

/// Loads `page` (a file) at `size` with `script` appended to its body and returns what
/// the script left in `document.body.dataset.measured` (it runs after the page is laid
/// out, so `getBoundingClientRect` gives the boxes as drawn). The page itself is not
/// changed: the script goes into a copy beside it. `None` without chromium.
pub fn measure(page: &Path, size: (u32, u32), script: &str) -> Option<String> {
    let html = std::fs::read_to_string(page).unwrap();
    let at = html.rfind("</body>").expect("a page with a body");
    let measured = page.with_extension("measured.html");
    std::fs::write(&measured, format!("{}<script>{script}</script>{}", &html[..at], &html[at..])).unwrap();
    let (dom, log) = chromium(&measured, size, "--dump-dom")?;
    let at = dom.find("data-measured=\"").unwrap_or_else(|| panic!("the script left nothing:\n{log}"));
    let value = &dom[at + 15..];
    let value = &value[..value.find('"').unwrap()];
    Some(value.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
}

/// Runs headless chromium on `page` at `size` with one more flag (what to produce):
/// its stdout and its log. `None` without chromium (never under CI).
fn chromium(page: &Path, size: (u32, u32), output: &str) -> Option<(String, String)> {
    let chromium = tool("chromium", "chromium")?;
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--log-level=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(output)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((out.join().unwrap(), log.join().unwrap()))
}

fn read_png(path: &Path) -> (usize, usize, Vec<[u8; 3]>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane PNG")];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let pixels = buf[..info.buffer_size()].chunks_exact(channels).map(|p| [p[0], p[1], p[2]]).collect();
    (info.width as usize, info.height as usize, pixels)
}
