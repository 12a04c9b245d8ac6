//! Pictures checked in a real browser: Debian's `chromium` (which `.ci/run` installs)
//! renders a page headless to a PNG, and the test reads the pixels and the browser's
//! console. Without chromium a test prints a note and passes, unless `CI` is set: then
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
    let chromium = tool("chromium", "chromium")?;
    let profile = tempfile::tempdir().unwrap();
    let _ = std::fs::remove_file(png);
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
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = reader.join().unwrap();
    let console = log.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_owned).collect();
    assert!(png.is_file(), "chromium wrote no screenshot:\n{log}");
    let (width, height, pixels) = read_png(png);
    Some(Shot { path: png.to_path_buf(), width, height, pixels, console })
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
