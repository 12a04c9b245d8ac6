//! The target every command probes: URL, credentials, limits, TLS and schema, turned
//! from raw flags into a checked [`Target`] before any network I/O, so every bad input
//! is caught here with one clear message. No other module reads the password flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use url::Url;

use super::ledger::Ledger;
use super::secret::Secret;
use super::tls::{ClientCertError, ClientIdentity, TlsError};
use super::tls_version::{TlsVersion, TlsVersions};
use super::validate::{SchemaError, Validator};
use crate::util::units::{parse_period, parse_size};
use crate::util::url::UrlError;

/// The spec's example account: the embedded mock accepts it and `--mock` logs in with it.
pub const EXAMPLE_USERNAME: &str = "MOH-90008";
pub const EXAMPLE_PASSWORD: &str = "Moh@-90008";
/// The documented path of the endpoint.
pub const TOKEN_PATH: &str = "/nehrapi/login/getToken";

/// Target options shared by `load`, `check` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Full URL of the getToken endpoint, e.g. https://nehr.example/nehrapi/login/getToken
    #[arg(long, env = "NEHR_PROBE_URL", value_name = "URL", help_heading = "Target")]
    pub url: Option<String>,

    /// Account to log in with
    #[arg(long, env = "NEHR_PROBE_USERNAME", value_name = "NAME", help_heading = "Target")]
    pub username: Option<String>,

    /// File holding the password (one line). Or set NEHR_PROBE_PASSWORD. There is no
    /// --password flag: it would show in `ps` and shell history
    #[arg(long, env = "NEHR_PROBE_PASSWORD_FILE", value_name = "FILE", help_heading = "Target")]
    pub password_file: Option<PathBuf>,

    /// Deadline for the whole call: connect, headers and body
    #[arg(allow_hyphen_values = true, long, default_value = "10s", value_parser = parse_period, value_name = "DURATION", help_heading = "Target")]
    pub timeout: Duration,

    /// Largest answer body read; a bigger 200 answer is `invalid_body`
    #[arg(allow_hyphen_values = true, long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE", help_heading = "Target")]
    pub max_body: usize,

    /// JSON Schema file that replaces the built-in answer schema (see `nehr-probe schema`)
    #[arg(long, value_name = "FILE", help_heading = "Target")]
    pub schema: Option<PathBuf>,

    /// Extra CA certificate (PEM) to trust for https targets
    #[arg(long, value_name = "FILE", help_heading = "Target")]
    pub ca_cert: Option<PathBuf>,

    /// Accept any TLS certificate (test systems only)
    #[arg(long, help_heading = "Target")]
    pub insecure: bool,

    /// Client certificate (PEM, the certificate first, then any intermediates) to
    /// present when the server asks for one (mutual TLS); needs --client-key
    #[arg(long, value_name = "FILE", help_heading = "Target")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM, not encrypted) of --client-cert
    #[arg(long, value_name = "FILE", help_heading = "Target")]
    pub client_key: Option<PathBuf>,

    /// Lowest TLS version to offer: 1.2 or 1.3 [default: 1.2]
    #[arg(long, value_name = "VERSION", value_parser = TlsVersion::parse, help_heading = "Target")]
    pub tls_min: Option<TlsVersion>,

    /// Highest TLS version to offer: 1.2 or 1.3 [default: 1.3]
    #[arg(long, value_name = "VERSION", value_parser = TlsVersion::parse, help_heading = "Target")]
    pub tls_max: Option<TlsVersion>,

    /// Speak HTTP/2: over https offer it by ALPN (HTTP/1.1 when the server declines,
    /// and the reports say so); over http with prior knowledge (h2c). Without it,
    /// HTTP/1.1 only
    #[arg(long, help_heading = "Target")]
    pub http2: bool,

    /// Connect to ADDR instead of looking HOST up, curl's syntax, e.g.
    /// nehr.example:443:10.0.0.12 (one node behind a load balancer). HOST:PORT must be
    /// the URL's; TLS still checks HOST, and SNI and Host stay the URL's
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = Pin::parse, conflicts_with = "mock", help_heading = "Target")]
    pub resolve: Option<Pin>,

    /// Start the embedded mock on a loopback port and probe it with the spec's example
    /// account (or, for load, the --credentials accounts, which the mock then accepts):
    /// the zero-setup way to see the tool work
    #[arg(long, help_heading = "Target")]
    pub mock: bool,

    /// A failure for the embedded mock to play, repeatable: reject-tokens[=SHARE] (its
    /// protected resource refuses that share of tokens, all by default), cached-token
    /// (every login gets the same token), any-password (any password is accepted)
    #[arg(long, value_name = "FAULT", value_parser = MockFault::parse, requires = "mock", help_heading = "Target")]
    pub mock_fault: Vec<MockFault>,

    /// After each ok login, call URL with its token (Authorization: Bearer …): the
    /// journey is ok only when that call is accepted (2xx). A path such as
    /// /nehrapi/mock/resource is taken on the login URL's host
    #[arg(long, value_name = "URL", help_heading = "Target")]
    pub then: Option<String>,

    /// Method of the --then call (POST sends an empty body)
    #[arg(long, value_enum, default_value_t = ThenMethod::Get, requires = "then", help_heading = "Target")]
    pub then_method: ThenMethod,

    /// Which repeated access tokens fail a login as `reused_token`: forbid (any token
    /// handed to a second login) or same-account (only one handed to another account)
    #[arg(long, value_enum, default_value_t = TokenReuse::Forbid, value_name = "RULE", help_heading = "Target")]
    pub token_reuse: TokenReuse,
}

/// A failure the embedded mock plays (`--mock-fault`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MockFault {
    /// The protected resource refuses this share of valid tokens.
    RejectTokens(f64),
    CachedToken,
    AnyPassword,
}

impl MockFault {
    pub fn parse(s: &str) -> Result<MockFault, String> {
        let bad =
            || format!("invalid --mock-fault {s:?}: expected reject-tokens[=SHARE], cached-token or any-password");
        match s.split_once('=') {
            None if s == "reject-tokens" => Ok(MockFault::RejectTokens(1.0)),
            None if s == "cached-token" => Ok(MockFault::CachedToken),
            None if s == "any-password" => Ok(MockFault::AnyPassword),
            Some(("reject-tokens", share)) => crate::util::units::parse_share(share)
                .map(MockFault::RejectTokens)
                .map_err(|why| format!("invalid --mock-fault {s:?}: {why}")),
            _ => Err(bad()),
        }
    }
}

/// Which repeated access tokens are `reused_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenReuse {
    /// Every token handed to a second login: a cache replaying answers hands one
    /// user's session to the next.
    #[default]
    Forbid,
    /// Only a token handed to another account: for servers that give one account its
    /// live token again (as Spring's token services do).
    SameAccount,
}

/// The method of the call after the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[value(rename_all = "UPPER")]
pub enum ThenMethod {
    Get,
    Post,
}

impl ThenMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ThenMethod::Get => "GET",
            ThenMethod::Post => "POST",
        }
    }
}

/// Where the call after the login goes: a URL of its own, or a path on the login's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThenUrl {
    Path(String),
    Url(Url),
}

/// `--then`: the call that shows the token works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Then {
    pub url: ThenUrl,
    pub method: ThenMethod,
}

impl Then {
    /// Checks `--then URL` (or a config's `then`): an http(s) URL without credentials,
    /// or a path starting with `/`.
    pub fn parse(raw: &str, method: ThenMethod) -> Result<Then, ConfigError> {
        let bad = |why: &str| ConfigError::BadThen { url: raw.to_string(), why: why.to_string() };
        let url = if raw.starts_with('/') {
            if raw.bytes().any(|b| !b.is_ascii_graphic()) {
                return Err(bad("a path must be ASCII without blanks"));
            }
            ThenUrl::Path(raw.to_string())
        } else {
            match parse_url(raw) {
                Ok(url) => ThenUrl::Url(url),
                Err(ConfigError::UrlWithCredentials) => return Err(bad("credentials do not belong in the URL")),
                Err(ConfigError::BadUrl { why, .. }) => return Err(bad(&why)),
                Err(e) => return Err(e),
            }
        };
        Ok(Then { url, method })
    }
}

/// A `--resolve HOST:PORT:ADDR`: where to connect for the URL's host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub host: String,
    pub port: u16,
    pub addr: std::net::IpAddr,
}

impl Pin {
    pub fn parse(s: &str) -> Result<Pin, String> {
        let bad = |why: &str| {
            format!("invalid --resolve {s:?}: {why}; expected HOST:PORT:ADDR, e.g. nehr.example:443:10.0.0.12")
        };
        let mut parts = s.splitn(3, ':');
        let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("three parts are needed"));
        };
        if host.is_empty() || host.starts_with('[') {
            return Err(bad("HOST must be a host name"));
        }
        let port =
            port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("PORT must be a number from 1 to 65535"))?;
        let bare = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(addr);
        let addr = bare.parse().map_err(|_| bad("ADDR must be one IPv4 or IPv6 address"))?;
        Ok(Pin { host: host.to_ascii_lowercase(), port, addr })
    }
}

/// One account to log in with.
#[derive(Debug, Clone)]
pub struct Credential {
    pub username: String,
    pub password: Secret,
}

/// A checked target, ready to build a [`crate::probe::Prober`] from.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    /// Used round robin; never empty.
    pub credentials: Vec<Credential>,
    pub timeout: Duration,
    pub max_body: usize,
    pub validator: Arc<Validator>,
    pub ca_cert: Option<Vec<u8>>,
    pub insecure: bool,
    /// `--client-cert` and `--client-key`, checked.
    pub client_cert: Option<Arc<ClientIdentity>>,
    /// `--tls-min` to `--tls-max`.
    pub tls_versions: TlsVersions,
    /// `--http2`: HTTP/2 by ALPN over https, by prior knowledge over http.
    pub http2: bool,
    /// `--resolve`: the address to connect to for the URL's host.
    pub pinned: Option<std::net::IpAddr>,
    /// `--then`: the call after each ok login.
    pub then: Option<Then>,
    /// The access tokens handed out so far, shared by every prober of this target.
    pub ledger: Arc<Ledger>,
    pub token_reuse: TokenReuse,
    /// `serve`'s `wrong_password_probe`: a login with a wrong password now and then.
    pub wrong_password: Option<WrongPasswordProbe>,
}

/// How `serve` tries a wrong password on a target (docs/journeys.md#the-door-stays-shut).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongPasswordProbe {
    /// The account tried; the target's own when `None`.
    pub username: Option<String>,
    /// At most one such login this often.
    pub every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing --url (or NEHR_PROBE_URL); try --mock to probe the embedded mock server")]
    MissingUrl,
    #[error("missing --username (or NEHR_PROBE_USERNAME)")]
    MissingUsername,
    #[error("missing password: give --password-file FILE, or set NEHR_PROBE_PASSWORD_FILE or NEHR_PROBE_PASSWORD")]
    MissingPassword,
    #[error("invalid --url {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("invalid --url: credentials do not belong in the URL; use --username and --password-file")]
    UrlWithCredentials,
    #[error("cannot read {what} {path}: {cause}")]
    Read { what: &'static str, path: String, cause: std::io::Error },
    #[error("{what} {path} is empty")]
    Empty { what: &'static str, path: String },
    #[error("credentials file {path}, line {line}: expected username:password")]
    BadCredentialLine { path: String, line: usize },
    #[error("invalid --ca-cert {path}: {why}")]
    BadCaCert { path: String, why: String },
    #[error("invalid {flag} {path}: {why}")]
    BadClientCert { flag: &'static str, path: String, why: Box<ClientCertError> },
    #[error("{given} needs {missing} too: the client certificate and its private key go together")]
    HalfClientCert { given: &'static str, missing: &'static str },
    #[error("--tls-min {min} is above --tls-max {max}: no TLS version is left to offer")]
    TlsRange { min: &'static str, max: &'static str },
    #[error("--resolve {pin} does not match the URL's host and port {url}: it only pins the URL's own")]
    PinElsewhere { pin: String, url: String },
    #[error("invalid --then {url:?}: {why}; expected a URL such as https://host/api/… or a path such as /nehrapi/…")]
    BadThen { url: String, why: String },
    #[error("--mock and {flag} cannot be used together: --mock probes the embedded mock with its own URL and account")]
    MockOverrides { flag: &'static str },
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl From<TlsError> for ConfigError {
    fn from(e: TlsError) -> Self {
        match e {
            TlsError::CaCert(why) => ConfigError::BadCaCert { path: "--ca-cert".into(), why },
            TlsError::Setup(why) => ConfigError::Client(why),
        }
    }
}

impl TargetArgs {
    /// Checks every target flag. With `--mock`, the URL and account are filled in later
    /// by [`Target::aim_at`] once the mock has a port.
    pub fn resolve(&self) -> Result<Target, ConfigError> {
        self.resolve_with(None)
    }

    /// As [`TargetArgs::resolve`], with the accounts taken from a credentials file
    /// (`username:password` a line) instead of `--username` and the password flags.
    pub fn resolve_with(&self, credentials_file: Option<&Path>) -> Result<Target, ConfigError> {
        let validator = Arc::new(match &self.schema {
            Some(path) => Validator::from_file(path)?,
            None => Validator::builtin(),
        });
        let ca_cert = self.ca_cert.as_deref().map(read_ca_cert).transpose()?;
        let client_cert = self.client_identity()?.map(Arc::new);
        let tls_versions = TlsVersions::new(self.tls_min, self.tls_max).map_err(|_| ConfigError::TlsRange {
            min: self.tls_min.unwrap_or(TlsVersion::Tls12).number(),
            max: self.tls_max.unwrap_or(TlsVersion::Tls13).number(),
        })?;
        let (url, credentials) = if self.mock {
            self.refuse_flags_mock_replaces()?;
            // The mock is started with the same accounts (`mock::start_embedded`).
            let url = Url::parse(&format!("http://127.0.0.1:0{TOKEN_PATH}")).expect("static URL");
            let credentials = match credentials_file {
                Some(path) => read_credentials(path)?,
                None => vec![example_credential()],
            };
            (url, credentials)
        } else {
            let url = parse_url(self.url.as_deref().ok_or(ConfigError::MissingUrl)?)?;
            let credentials = match credentials_file {
                Some(path) => read_credentials(path)?,
                None => vec![Credential {
                    username: self.username.clone().filter(|u| !u.is_empty()).ok_or(ConfigError::MissingUsername)?,
                    password: self.password()?,
                }],
            };
            (url, credentials)
        };
        let pinned = match &self.resolve {
            None => None,
            Some(pin) => Some(pin_for(pin, &url)?),
        };
        let then = self.then.as_deref().map(|raw| Then::parse(raw, self.then_method)).transpose()?;
        Ok(Target {
            url,
            credentials,
            timeout: self.timeout,
            max_body: self.max_body,
            validator,
            ca_cert,
            insecure: self.insecure,
            client_cert,
            tls_versions,
            http2: self.http2,
            pinned,
            then,
            ledger: Arc::default(),
            token_reuse: self.token_reuse,
            wrong_password: None,
        })
    }

    /// `--mock` brings its own URL and account, so a `--url`, `--username` or
    /// `--password-file` given with it would be ignored: a usage error. The same settings
    /// from the environment (`NEHR_PROBE_URL`, …) stay defaults that `--mock` overrides.
    fn refuse_flags_mock_replaces(&self) -> Result<(), ConfigError> {
        let on_command_line = |value: Option<&std::ffi::OsStr>, env: &str| {
            value.is_some_and(|v| std::env::var_os(env).is_none_or(|e| e != v))
        };
        let given = [
            ("--url", on_command_line(self.url.as_deref().map(AsRef::as_ref), "NEHR_PROBE_URL")),
            ("--username", on_command_line(self.username.as_deref().map(AsRef::as_ref), "NEHR_PROBE_USERNAME")),
            (
                "--password-file",
                on_command_line(self.password_file.as_deref().map(AsRef::as_ref), "NEHR_PROBE_PASSWORD_FILE"),
            ),
        ];
        match given.into_iter().find(|(_, given)| *given) {
            Some((flag, _)) => Err(ConfigError::MockOverrides { flag }),
            None => Ok(()),
        }
    }

    /// `--client-cert` and `--client-key`, both or neither, read and checked: they
    /// belong together, the certificate is valid now, the key is not encrypted.
    fn client_identity(&self) -> Result<Option<ClientIdentity>, ConfigError> {
        let (cert, key) = match (&self.client_cert, &self.client_key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) => {
                return Err(ConfigError::HalfClientCert { given: "--client-cert", missing: "--client-key" });
            }
            (None, Some(_)) => {
                return Err(ConfigError::HalfClientCert { given: "--client-key", missing: "--client-cert" });
            }
        };
        let read = |path: &Path, what: &'static str| {
            crate::util::units::read_input_file(path).map(String::into_bytes).map_err(|cause| ConfigError::Read {
                what,
                path: path.display().to_string(),
                cause,
            })
        };
        let cert_pem = read(cert, "--client-cert")?;
        // Read as bytes and never shown: an error names the file, not what is in it.
        let key_pem = read(key, "--client-key")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        ClientIdentity::from_pem(&cert_pem, &key_pem, now).map(Some).map_err(|(about_cert, why)| {
            let (flag, path) = if about_cert { ("--client-cert", cert) } else { ("--client-key", key) };
            ConfigError::BadClientCert { flag, path: path.display().to_string(), why: Box::new(why) }
        })
    }

    fn password(&self) -> Result<Secret, ConfigError> {
        if let Some(path) = &self.password_file {
            let text = read_file(path, "password file")?;
            let line = text.lines().next().unwrap_or("");
            if line.is_empty() {
                return Err(ConfigError::Empty { what: "password file", path: path.display().to_string() });
            }
            return Ok(Secret::new(line));
        }
        match std::env::var("NEHR_PROBE_PASSWORD") {
            Ok(p) if !p.is_empty() => Ok(Secret::new(p)),
            _ => Err(ConfigError::MissingPassword),
        }
    }
}

impl Target {
    /// Points the target at a server on `addr` (the embedded mock).
    pub fn aim_at(&mut self, addr: std::net::SocketAddr) {
        self.url = Url::parse(&format!("http://{addr}{TOKEN_PATH}")).expect("socket address makes a URL");
    }

    /// The URL as it may be shown: never with credentials (they are refused anyway).
    pub fn display_url(&self) -> String {
        self.url.to_string()
    }

    /// Where the call after the login goes, a path taken on the login URL's host.
    pub fn then_url(&self) -> Option<Url> {
        self.then.as_ref().map(|then| match &then.url {
            ThenUrl::Url(url) => url.clone(),
            ThenUrl::Path(path) => {
                let mut url = self.url.clone();
                let (path, query) = path.split_once('?').map_or((path.as_str(), None), |(p, q)| (p, Some(q)));
                url.set_path(path);
                url.set_query(query);
                url
            }
        })
    }
}

pub fn example_credential() -> Credential {
    Credential { username: EXAMPLE_USERNAME.to_string(), password: Secret::new(EXAMPLE_PASSWORD) }
}

fn parse_url(raw: &str) -> Result<Url, ConfigError> {
    crate::util::url::http_url(raw).map_err(|e| match e {
        UrlError::Credentials => ConfigError::UrlWithCredentials,
        UrlError::Bad(why) if Url::parse(raw).is_err() => ConfigError::BadUrl {
            url: raw.to_string(),
            why: format!("{why}; expected e.g. https://host/nehrapi/login/getToken"),
        },
        UrlError::Bad(why) => ConfigError::BadUrl { url: raw.to_string(), why },
    })
}

/// The pinned address, when `pin` names the URL's host and port.
fn pin_for(pin: &Pin, url: &Url) -> Result<std::net::IpAddr, ConfigError> {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = url.port_or_known_default().unwrap_or_default();
    if pin.host != host || pin.port != port {
        return Err(ConfigError::PinElsewhere {
            pin: format!("{}:{}", pin.host, pin.port),
            url: format!("{host}:{port}"),
        });
    }
    Ok(pin.addr)
}

fn read_file(path: &Path, what: &'static str) -> Result<String, ConfigError> {
    crate::util::units::read_input_file(path).map_err(|cause| ConfigError::Read {
        what,
        path: path.display().to_string(),
        cause,
    })
}

fn read_ca_cert(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let pem = crate::util::units::read_input_file(path).map(String::into_bytes).map_err(|cause| ConfigError::Read {
        what: "CA certificate",
        path: path.display().to_string(),
        cause,
    })?;
    // Parsed here as the TLS connector will parse it, so a bad file is a start-up error.
    let bad = |why: String| ConfigError::BadCaCert { path: path.display().to_string(), why };
    let certs = super::tls::parse_pem_certs(&pem).map_err(bad)?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(pem)
}

/// Reads `username:password` lines; blank lines and `#` comments are skipped. Errors
/// name the line, never its content.
pub fn read_credentials(path: &Path) -> Result<Vec<Credential>, ConfigError> {
    let shown = path.display().to_string();
    let text = read_file(path, "credentials file")?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((user, pass)) if !user.trim().is_empty() && !pass.is_empty() => {
                out.push(Credential { username: user.trim().to_string(), password: Secret::new(pass) })
            }
            _ => return Err(ConfigError::BadCredentialLine { path: shown, line: i + 1 }),
        }
    }
    if out.is_empty() {
        return Err(ConfigError::Empty { what: "credentials file", path: shown });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(parse_url("http://127.0.0.1:8080/nehrapi/login/getToken").is_ok());
        assert!(parse_url("https://[::1]/x").is_ok());
        let e = parse_url("ftp://127.0.0.1/x").unwrap_err().to_string();
        assert!(e.contains("only http:// and https://"), "{e}");
        let e = parse_url("http://u:hunter2@127.0.0.1/x").unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("credentials do not belong"), "{e}");
        assert!(parse_url("not a url").unwrap_err().to_string().contains("expected e.g."));
    }

    #[test]
    fn resolve_pins_the_urls_own_host_and_port() {
        let pin = Pin::parse("nehr.example:443:10.0.0.12").unwrap();
        assert_eq!((pin.host.as_str(), pin.port, pin.addr.to_string().as_str()), ("nehr.example", 443, "10.0.0.12"));
        assert_eq!(Pin::parse("NEHR.example:8443:[::1]").unwrap().addr.to_string(), "::1");
        assert_eq!(Pin::parse("h:80:::1").unwrap().addr.to_string(), "::1");
        for bad in ["nehr.example:443", "nehr.example:x:10.0.0.1", ":443:10.0.0.1", "h:0:1.2.3.4", "h:443:host.name"] {
            let e = Pin::parse(bad).unwrap_err();
            assert!(e.contains("expected HOST:PORT:ADDR"), "{bad}: {e}");
        }
        let url = parse_url("https://Nehr.Example/nehrapi/login/getToken").unwrap();
        assert_eq!(pin_for(&pin, &url).unwrap(), pin.addr);
        let other_port = Pin::parse("nehr.example:8443:10.0.0.12").unwrap();
        let e = pin_for(&other_port, &url).unwrap_err().to_string();
        assert!(e.contains("nehr.example:8443") && e.contains("nehr.example:443"), "{e}");
        assert!(pin_for(&Pin::parse("other.example:443:10.0.0.12").unwrap(), &url).is_err());
    }

    #[test]
    fn credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("creds");
        std::fs::write(&p, "# accounts\nMOH-1:pa:ss\n\nMOH-2:x\r\n").unwrap();
        let c = read_credentials(&p).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].username, "MOH-1");
        assert_eq!(c[0].password.expose(), "pa:ss");
        assert_eq!(c[1].password.expose(), "x");
        std::fs::write(&p, "MOH-1:ok\nsecretwithoutcolon\n").unwrap();
        let e = read_credentials(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && !e.contains("secretwithoutcolon"), "{e}");
        std::fs::write(&p, "\n# none\n").unwrap();
        assert!(read_credentials(&p).unwrap_err().to_string().contains("is empty"));
    }
}
