//! `serve --config`: the TOML file naming several targets, each a `[targets.NAME]`
//! table, checked whole before anything is probed. Names become labels and URL
//! parameters, so they are kept plain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::args::{DEFAULT_TARGET, ServeArgs, ServeError};
use crate::call::target::{Pin, Target, ThenMethod, TokenReuse, WrongPasswordProbe};
use crate::call::tls_version::TlsVersion;
use crate::util::units::parse_period;

/// The `--config` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    targets: BTreeMap<String, TargetEntry>,
}

/// One `[targets.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    url: String,
    username: String,
    /// Relative paths are relative to the config file.
    password_file: PathBuf,
    timeout: Option<String>,
    /// `--resolve` for this target: HOST:PORT:ADDR.
    resolve: Option<String>,
    /// `--then` for this target: the call made with each ok login's token.
    then: Option<String>,
    then_method: Option<ThenMethod>,
    token_reuse: Option<TokenReuse>,
    /// Now and then a login with a wrong password, which must be refused.
    #[serde(default)]
    wrong_password_probe: bool,
    /// The account the wrong password is tried on (default: `username`).
    wrong_password_username: Option<String>,
    /// At most one wrong-password login this often (default 5m).
    wrong_password_every: Option<String>,
    /// `--client-cert` and `--client-key` for this target; relative to the config file.
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    /// `--tls-min` and `--tls-max` for this target: "1.2" or "1.3" (or 1.2, 1.3).
    tls_min: Option<VersionValue>,
    tls_max: Option<VersionValue>,
    /// `--http2` for this target.
    http2: Option<bool>,
}

/// A TLS version as TOML may write it: `"1.3"` or `1.3`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum VersionValue {
    Text(String),
    Number(f64),
}

impl VersionValue {
    fn parse(&self) -> Result<TlsVersion, String> {
        match self {
            VersionValue::Text(s) => TlsVersion::parse(s),
            VersionValue::Number(n) => TlsVersion::parse(&n.to_string()),
        }
    }
}

impl std::fmt::Display for VersionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionValue::Text(s) => write!(f, "{s:?}"),
            VersionValue::Number(n) => write!(f, "{n:?}"),
        }
    }
}

/// The named, checked targets of a `serve` command line, in the order they are shown.
/// With `--mock` the one target still has to be aimed at the mock.
pub fn resolve_targets(args: &ServeArgs) -> Result<Vec<(String, Target)>, ServeError> {
    let Some(path) = &args.config else {
        let target = args.target.resolve().map_err(ServeError::Flags)?;
        return Ok(vec![(DEFAULT_TARGET.to_string(), target)]);
    };
    if args.target.url.is_some() || args.target.mock || args.target.resolve.is_some() || args.target.then.is_some() {
        return Err(ServeError::ConfigAndFlags);
    }
    let shown = path.display().to_string();
    let text = crate::util::units::read_input_file(path)
        .map_err(|cause| ServeError::ReadConfig { path: shown.clone(), cause })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for entry in parse_config(&text, &shown)? {
        let mut flags = args.target.clone();
        flags.url = Some(entry.url);
        flags.username = Some(entry.username);
        flags.password_file = Some(base.join(entry.password_file));
        flags.timeout = entry.timeout.unwrap_or(flags.timeout);
        flags.resolve = entry.resolve;
        flags.then = entry.then;
        flags.then_method = entry.then_method.unwrap_or(ThenMethod::Get);
        flags.token_reuse = entry.token_reuse.unwrap_or(flags.token_reuse);
        if let Some((cert, key)) = entry.client_cert {
            // Both from the table (parse_config holds them together), over the flags.
            flags.client_cert = Some(base.join(cert));
            flags.client_key = Some(base.join(key));
        }
        flags.tls_min = entry.tls_min.or(flags.tls_min);
        flags.tls_max = entry.tls_max.or(flags.tls_max);
        flags.http2 = entry.http2.unwrap_or(flags.http2);
        let name = entry.name;
        let mut target =
            flags.resolve().map_err(|cause| ServeError::Target { path: shown.clone(), name: name.clone(), cause })?;
        target.wrong_password = entry.wrong_password;
        out.push((name, target));
    }
    Ok(out)
}

/// One `[targets.NAME]` table, checked as far as the text alone can tell (the URL and
/// the password file are checked when the target is built).
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub url: String,
    pub username: String,
    /// As written: relative to the config file.
    pub password_file: PathBuf,
    pub timeout: Option<Duration>,
    pub resolve: Option<Pin>,
    /// As written: checked when the target is built.
    pub then: Option<String>,
    pub then_method: Option<ThenMethod>,
    pub token_reuse: Option<TokenReuse>,
    pub wrong_password: Option<WrongPasswordProbe>,
    /// `client_cert` and `client_key`, as written; both or neither.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub tls_min: Option<TlsVersion>,
    pub tls_max: Option<TlsVersion>,
    /// `http2 = true` (or false, over `--http2`).
    pub http2: Option<bool>,
}

/// The targets the text of a `--config` file names (`shown` names the file in errors):
/// at least one, plain names, well-formed values; every error names the line or target.
pub fn parse_config(text: &str, shown: &str) -> Result<Vec<Entry>, ServeError> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| ServeError::ParseConfig {
        path: shown.to_string(),
        line: e.span().map_or(1, |s| line_at(text, s.start)),
        message: e.message().trim().to_string(),
    })?;
    if file.targets.is_empty() {
        return Err(ServeError::NoTargets { path: shown.to_string() });
    }
    let mut out = Vec::with_capacity(file.targets.len());
    for (name, entry) in file.targets {
        if !valid_name(&name) {
            return Err(ServeError::BadName { path: shown.to_string(), name });
        }
        let duration = |key: &'static str, value: Option<String>| match value {
            None => Ok(None),
            Some(value) => parse_period(&value).map(Some).map_err(|why| ServeError::BadDuration {
                path: shown.to_string(),
                name: name.clone(),
                key,
                value: value.clone(),
                why,
            }),
        };
        let timeout = duration("timeout", entry.timeout)?;
        let every = duration("wrong_password_every", entry.wrong_password_every)?;
        if !entry.wrong_password_probe && (every.is_some() || entry.wrong_password_username.is_some()) {
            return Err(ServeError::DoorWithoutProbe { path: shown.to_string(), name });
        }
        let wrong_password = entry.wrong_password_probe.then(|| WrongPasswordProbe {
            username: entry.wrong_password_username,
            every: every.unwrap_or(super::door::DEFAULT_EVERY),
        });
        let resolve = match entry.resolve {
            None => None,
            Some(value) => Some(Pin::parse(&value).map_err(|why| ServeError::BadResolve {
                path: shown.to_string(),
                name: name.clone(),
                why: why.replacen("--resolve", "resolve", 1),
            })?),
        };
        let bad = |why: String| ServeError::BadEntry { path: shown.to_string(), name: name.clone(), why };
        let client_cert = match (entry.client_cert, entry.client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((cert, key)),
            (Some(_), None) => return Err(bad("client_cert needs client_key too, in the same table".into())),
            (None, Some(_)) => return Err(bad("client_key needs client_cert too, in the same table".into())),
        };
        let version = |key: &str, value: Option<VersionValue>| {
            value.map(|v| v.parse().map_err(|why| bad(format!("invalid {key} {v}: {why}")))).transpose()
        };
        let (tls_min, tls_max) = (version("tls_min", entry.tls_min)?, version("tls_max", entry.tls_max)?);
        if let (Some(min), Some(max)) = (tls_min, tls_max)
            && min > max
        {
            return Err(bad(format!("tls_min {} is above tls_max {}", min.number(), max.number())));
        }
        out.push(Entry {
            name,
            url: entry.url,
            username: entry.username,
            password_file: entry.password_file,
            timeout,
            resolve,
            then: entry.then,
            then_method: entry.then_method,
            token_reuse: entry.token_reuse,
            wrong_password,
            client_cert,
            tls_min,
            tls_max,
            http2: entry.http2,
        });
    }
    Ok(out)
}

/// The 1-based line of byte `at` (clamped to the text, and to a character boundary).
fn line_at(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text[..at].matches('\n').count() + 1
}

/// Names go into labels and URLs: keep them plain.
fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::args;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn serve_args(argv: &[&str]) -> ServeArgs {
        args(argv).unwrap()
    }

    fn config_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "targets.toml", text);
        resolve_targets(&serve_args(&["--config", p.to_str().unwrap()])).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_loopback_and_30s() {
        let a = serve_args(&["--mock"]);
        assert_eq!(a.listen, "127.0.0.1:9464".parse().unwrap());
        assert_eq!(a.interval, Duration::from_secs(30));
        let t = resolve_targets(&a).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].0, "default");
    }

    #[test]
    fn the_example_config_parses() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "targets.toml", include_str!("../../deploy/nehr-probe.toml"));
        write(dir.path(), "production.password", "p1\n");
        write(dir.path(), "staging.password", "p2\n");
        let t = resolve_targets(&serve_args(&["--config", p.to_str().unwrap(), "--timeout", "3s"])).unwrap();
        let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["production", "staging"]);
        assert_eq!(t[0].1.timeout, Duration::from_secs(10));
        assert_eq!(t[1].1.timeout, Duration::from_secs(5));
        assert_eq!(t[0].1.credentials[0].password.expose(), "p1");
        assert_eq!(t[1].1.url.as_str(), "https://staging.nehr.example/nehrapi/login/getToken");
    }

    #[test]
    fn config_errors_are_one_line_and_say_what_to_fix() {
        let e = config_error("[targets.a]\nurl = \"http://x/\"\nusername = \"u\"\npasword_file = \"p\"\n");
        assert!(e.contains("line 4") && e.contains("unknown field `pasword_file`"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = config_error("");
        assert!(e.contains("names no targets"), "{e}");
        let e = config_error("[targets.\"a b\"]\nurl = \"http://x/\"\nusername = \"u\"\npassword_file = \"p\"\n");
        assert!(e.contains("invalid target name \"a b\""), "{e}");
        let e = config_error("[targets.a]\nurl = \"http://x/\"\nusername = \"u\"\npassword_file = \"nope\"\n");
        assert!(e.contains("target \"a\"") && e.contains("cannot read password file"), "{e}");
        let e = config_error(
            "[targets.a]\nurl = \"http://x/\"\nusername = \"u\"\npassword_file = \"p\"\ntimeout = \"soon\"\n",
        );
        assert!(e.contains("invalid timeout \"soon\"") && e.contains("expected e.g. 30s"), "{e}");
        let e = resolve_targets(&serve_args(&["--config", "/no/such/file.toml"])).unwrap_err().to_string();
        assert!(e.starts_with("cannot read --config /no/such/file.toml: "), "{e}");
    }

    #[test]
    fn config_and_target_flags_do_not_mix() {
        let e = resolve_targets(&serve_args(&["--config", "x.toml", "--mock"])).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        let e = args::<ServeArgs>(&["--mock", "--interval", "0"]).unwrap_err().to_string();
        assert!(e.contains("--interval") && e.contains("must be more than 0"), "{e}");
        let e = config_error(
            "[targets.a]\nurl = \"http://x/\"\nusername = \"u\"\npassword_file = \"p\"\ntimeout = \"0s\"\n",
        );
        assert!(e.contains("timeout") && e.contains("must be more than 0"), "{e}");
    }

    #[test]
    fn tls_keys_parse_as_written_and_keep_the_pair_together() {
        let base = "[targets.a]\nurl = \"https://x/\"\nusername = \"u\"\npassword_file = \"p\"\n";
        let parse = |extra: &str| parse_config(&format!("{base}{extra}"), "t.toml");
        let e =
            parse("client_cert = \"c.pem\"\nclient_key = \"k.pem\"\ntls_min = 1.3\ntls_max = \"TLS 1.3\"\n").unwrap();
        assert_eq!(e[0].client_cert, Some(("c.pem".into(), "k.pem".into())));
        assert_eq!((e[0].tls_min, e[0].tls_max), (Some(TlsVersion::Tls13), Some(TlsVersion::Tls13)));
        let e = parse("client_key = \"k.pem\"\n").unwrap_err().to_string();
        assert_eq!(e, "--config t.toml, target \"a\": client_key needs client_cert too, in the same table");
        let e = parse("tls_max = 1.0\n").unwrap_err().to_string();
        assert!(e.contains("invalid tls_max 1.0: TLS 1.0 and 1.1 are deprecated"), "{e}");
        let e = parse("tls_min = \"1.3\"\ntls_max = \"1.2\"\n").unwrap_err().to_string();
        assert!(e.ends_with("tls_min 1.3 is above tls_max 1.2"), "{e}");
    }

    #[test]
    fn names() {
        for ok in ["production", "staging-2", "eu.west_1", "0"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a b", "a/b", "http://x", "ä", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
