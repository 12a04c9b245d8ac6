//! Parsers for the human units on the command line: durations (`500ms`, `10s`, `2m`),
//! byte sizes (`1MiB`, `64KiB`, `4096`) and rates or shares (`0.05`, `5%`). Each error
//! says what was expected, because it is what the user sees.

use std::time::Duration;

/// `500ms`, `10s`, `2m`, `1h30m`; a bare `0` means zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let why = if negative(t) { "a duration cannot be negative; " } else { "" };
    humantime::parse_duration(t).map_err(|_| format!("invalid duration {s:?}: {why}expected e.g. 30s, 500ms, 2m"))
}

/// A duration above zero: a deadline, an interval, a test's length. The one place
/// that says a zero one is refused, for every flag and config key that takes one.
pub fn parse_period(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("it must be more than 0, e.g. 30s, 500ms or 2m".to_string()),
        d => Ok(d),
    }
}

/// Whether `t` is written as a negative number (`-5`, `-.5s`), not a flag given where a
/// value was due (`--quiet`).
pub fn negative(t: &str) -> bool {
    t.strip_prefix('-').is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
}

/// A count of at least 1, e.g. `--requests 1000`.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim();
    match t.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => {
            let why = if negative(t) { "a count cannot be negative; " } else { "" };
            Err(format!("invalid count {s:?}: {why}expected a whole number, 1 or more, e.g. 1000"))
        }
    }
}

/// `1048576`, `512KiB`, `1MiB`, `1MB` (decimal units are 1000-based).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let why = if negative(t) { "a size cannot be negative; " } else { "" };
    let err = || format!("invalid size {s:?}: {why}expected e.g. 1MiB, 512KiB, 4096");
    let n: usize = num.parse().map_err(|_| err())?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1024,
        "m" | "mb" => 1_000_000,
        "mib" => 1024 * 1024,
        "gib" => 1024 * 1024 * 1024,
        _ => return Err(err()),
    };
    n.checked_mul(mult).filter(|&v| v > 0).ok_or_else(err)
}

/// A share between 0 and 1: `0.05` or `5%`.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("invalid share {s:?}: expected a number from 0 to 1, or a percentage like 5%"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("invalid share {s:?}: must be between 0 and 1 (0% and 100%)"));
    }
    Ok(v)
}

/// The most any input file (password, accounts, schema, config, saved report) may hold:
/// far above any real one, far below what would exhaust memory when a path is wrong
/// (`--schema /dev/zero`, a log file given as a report).
pub const MAX_INPUT_FILE: u64 = 64 << 20;

/// Reads a text input file, refusing one larger than [`MAX_INPUT_FILE`] or not UTF-8.
pub fn read_input_file(path: &std::path::Path) -> std::io::Result<String> {
    read_input(std::fs::File::open(path)?)
}

/// Reads a text input (a file, standard input), refusing one larger than
/// [`MAX_INPUT_FILE`] or not UTF-8.
pub fn read_input(input: impl std::io::Read) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    input.take(MAX_INPUT_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_FILE {
        return Err(std::io::Error::other(format!("larger than {} MiB; is it the right file?", MAX_INPUT_FILE >> 20)));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Rounded to the microsecond (six decimals): what the reports and JSON print.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// At most three decimals, trailing zeros dropped: `0.5`, `2`, `49.98`.
pub fn trim3(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        let e = parse_duration("ten").unwrap_err();
        assert!(e.contains("expected e.g. 30s"), "{e}");
        assert!(parse_duration("10").is_err());
        assert!(!parse_duration("--quiet").unwrap_err().contains("negative"));
        assert_eq!(parse_period("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_period("0").unwrap_err().contains("more than 0"));
        assert!(parse_period("0ms").unwrap_err().contains("more than 0"));
        let e = parse_duration("-5s").unwrap_err();
        assert!(e.contains("cannot be negative") && e.contains("expected e.g. 30s"), "{e}");
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("1000").unwrap(), 1000);
        assert!(parse_count("0").is_err() && parse_count("1.5").is_err());
        assert!(parse_count("-5").unwrap_err().contains("cannot be negative"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("2mb").unwrap(), 2_000_000);
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1TiB").is_err());
        assert!(parse_size("-5").unwrap_err().contains("cannot be negative"));
    }

    #[test]
    fn shares() {
        assert_eq!(parse_share("0.25").unwrap(), 0.25);
        assert_eq!(parse_share("5%").unwrap(), 0.05);
        assert!(parse_share("1.5").is_err());
        assert!(parse_share("-1").is_err());
        assert!(parse_share("x").is_err());
    }

    #[test]
    fn input_files_are_bounded_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "MOH-1:pw\n").unwrap();
        assert_eq!(read_input_file(&p).unwrap(), "MOH-1:pw\n");
        std::fs::write(&p, b"\xff\xfe").unwrap();
        assert!(read_input_file(&p).unwrap_err().to_string().contains("not UTF-8"));
        // Sparse: no 64 MiB written to disk, but 64 MiB + 1 to read.
        std::fs::File::create(&p).unwrap().set_len(MAX_INPUT_FILE + 1).unwrap();
        assert!(read_input_file(&p).unwrap_err().to_string().contains("larger than 64 MiB"));
    }
}
