//! `--web-config FILE`: the web configuration file of Prometheus exporters
//! (exporter-toolkit's YAML format), so the file a node_exporter already reads works
//! here too: TLS (`tls_server_config`, served by rustls), client certificates,
//! `basic_auth_users` with bcrypt hashes, and `http_server_config.headers`.
//!
//! Owns the file's grammar, its checks, and turning it into a rustls server config.
//! Every error names the line and says what to fix; unknown keys are refused, and so is
//! any known key whose setting would not be enforced here. It must never put a password,
//! a hash or a private key in an error, and it reads no file: `web_load.rs` reads the
//! file and what it names, `access.rs` checks requests against it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// The highest bcrypt cost accepted: each cost step doubles the time of one check
/// (cost 10 is about 70 ms), and a check that takes seconds is a denial of service.
pub const MAX_BCRYPT_COST: u32 = 16;

/// A checked web config. Paths are already resolved against the file's directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebConfig {
    pub tls: Option<TlsSettings>,
    /// User name to bcrypt hash. Empty: no authentication.
    pub users: BTreeMap<String, BcryptHash>,
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Things the operator should know that are not errors, logged at load.
    pub notes: Vec<String>,
}

/// `tls_server_config`, when it names a certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub cert: Pem,
    pub key: Pem,
    pub client_auth: ClientAuth,
    pub client_ca: Option<Pem>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// `prefer_server_cipher_suites` (default true, as in exporter-toolkit).
    pub prefer_server_order: bool,
}

/// PEM text given inline or in a file, and the line of the file that names it.
#[derive(Clone, PartialEq)]
pub enum Pem {
    File { path: PathBuf, line: Option<usize> },
    Inline { text: String, line: Option<usize> },
}

/// Never shows inline PEM: it may be a private key.
impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File { path, .. } => write!(f, "Pem::File({})", path.display()),
            Pem::Inline { .. } => f.write_str("Pem::Inline(..)"),
        }
    }
}

/// `client_auth_type`: only the policies that check what they are given. Go's
/// `RequestClientCert` and `RequireAnyClientCert` accept any certificate unchecked, so
/// they are refused with what to use instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    #[default]
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// `min_version` / `max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

/// A bcrypt hash whose form and cost were checked. Its text never appears in output.
#[derive(Clone, PartialEq)]
pub struct BcryptHash(String);

impl BcryptHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BcryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BcryptHash(..)")
    }
}

/// What is wrong with a web config, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct Problem {
    pub line: Option<usize>,
    pub message: String,
}

/// A web config that cannot be used, with the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("--web-config {path}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct WebConfigError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl WebConfigError {
    pub fn new(path: &Path, problem: Problem) -> WebConfigError {
        WebConfigError { path: path.display().to_string(), line: problem.line, message: problem.message }
    }
}

/// Parses and checks the text of a web config without touching any file; relative
/// paths are resolved against `base`.
pub fn parse(text: &str, base: &Path) -> Result<WebConfig, Problem> {
    let raw: Option<RawFile> = serde_yaml_ng::from_str(text)
        .map_err(|e| Problem { line: e.location().map(|l| l.line()), message: yaml_message(&e) })?;
    let raw = raw.unwrap_or_default();
    let at = |key: &str| line_of(text, key);
    let mut config = WebConfig::default();
    if raw.rate_limit.is_some() {
        return Err(Problem {
            line: at("rate_limit"),
            message: "rate_limit is not supported: /probe already makes at most one login per --probe-min-interval; remove it".into(),
        });
    }
    if let Some(list) = raw.basic_auth_users {
        config.users = users(list.0, &at)?;
    }
    if let Some(http) = raw.http_server_config {
        for (name, value) in http.headers.unwrap_or_default() {
            if let Some(pair) = header(&name, &value).map_err(|message| Problem { line: at(&name), message })? {
                config.headers.push(pair);
            }
        }
    }
    if let Some(tls) = raw.tls_server_config {
        config.tls = tls_settings(tls, base, &at)?;
    }
    if let Some(t) = &config.tls
        && t.min_version < TlsVersion::Tls12
    {
        config.notes.push(
            "min_version is below TLS12, but TLS 1.0 and 1.1 are never offered here: clients need TLS 1.2 or 1.3"
                .to_string(),
        );
    }
    if config.tls.is_none() && !config.users.is_empty() {
        config.notes.push(
            "basic_auth_users without tls_server_config: passwords cross the network readable; add a certificate"
                .to_string(),
        );
    }
    Ok(config)
}

/// serde_yaml's message without the positions it writes in (we print the line once).
fn yaml_message(e: &serde_yaml_ng::Error) -> String {
    let mut text = e.to_string();
    while let Some(i) = text.find(" at line ") {
        let rest = &text[i + " at line ".len()..];
        let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let mut end = digits(rest);
        if let Some(col) = rest[end..].strip_prefix(" column ") {
            end += " column ".len() + digits(col);
        }
        text.replace_range(i..i + " at line ".len() + end, "");
    }
    // "invalid type: string \"...\", expected ...": the string may be a hash or a key.
    if let Some(i) = text.find("string \"")
        && let Some(j) = text.rfind("\", expected")
        && j >= i + "string ".len()
    {
        text.replace_range(i + "string".len()..j + 1, "");
    }
    crate::util::fmt::one_line(&text)
}

/// The lines of `text` as YAML counts them: `\r\n`, `\n` and a lone `\r` each end one.
pub fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').flat_map(|l| {
        let l = l.strip_suffix('\r').unwrap_or(l);
        l.split('\r')
    })
}

/// The first line that sets `key`, for errors found after parsing.
fn line_of(text: &str, key: &str) -> Option<usize> {
    yaml_lines(text)
        .position(|line| {
            let l = line.trim_start().trim_start_matches("- ").trim_start_matches(['"', '\'']);
            l.strip_prefix(key)
                .map(|rest| rest.trim_start_matches(['"', '\'']).trim_start())
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .map(|i| i + 1)
}

fn tls_settings(raw: RawTls, base: &Path, at: &dyn Fn(&str) -> Option<usize>) -> Result<Option<TlsSettings>, Problem> {
    let problem = |key: &str, message: String| Problem { line: at(key), message };
    let refused = [
        ("cipher_suites", &raw.cipher_suites, "rustls offers only modern AEAD suites"),
        ("curve_preferences", &raw.curve_preferences, "rustls picks from X25519, P-256 and P-384"),
        (
            "client_allowed_sans",
            &raw.client_allowed_sans,
            "sign the allowed clients' certificates with a CA of their own and name it in client_ca_file",
        ),
    ];
    for (key, list, why) in refused {
        if list.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(problem(key, format!("{key} cannot be set here ({why}); remove the list")));
        }
    }
    let client_auth_type =
        client_auth(raw.client_auth_type.as_deref().unwrap_or("")).map_err(|m| problem("client_auth_type", m))?;
    let version = |key: &str, value: &Option<String>| {
        value.as_deref().map(|v| tls_version(key, v)).transpose().map_err(|m| problem(key, m))
    };
    let min_version = version("min_version", &raw.min_version)?;
    let max_version = version("max_version", &raw.max_version)?;
    let pem = |file: Option<String>, inline: Option<String>, file_key: &str, inline_key: &str| match (file, inline) {
        (Some(_), Some(_)) => Err(problem(inline_key, format!("give {file_key} or {inline_key}, not both"))),
        (Some(f), None) if f.trim().is_empty() => Ok(None),
        (Some(f), None) => Ok(Some(Pem::File { path: base.join(f), line: at(file_key) })),
        (None, Some(t)) if t.trim().is_empty() => Ok(None),
        (None, Some(t)) => Ok(Some(Pem::Inline { text: t, line: at(inline_key) })),
        (None, None) => Ok(None),
    };
    let cert = pem(raw.cert_file, raw.cert, "cert_file", "cert")?;
    let key = pem(raw.key_file, raw.key, "key_file", "key")?;
    let client_ca = pem(raw.client_ca_file, raw.client_ca, "client_ca_file", "client_ca")?;
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => {
            return Err(problem(
                "cert_file",
                "cert_file is set but key_file is missing: add the certificate's private key".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(problem("key_file", "key_file is set but cert_file is missing: add the certificate".into()));
        }
        (None, None) => {
            // exporter-toolkit's rule: no certificate, no TLS. Anything else set here would
            // be silently unused, so it is an error instead.
            let set = [
                ("client_ca_file", client_ca.is_some()),
                ("client_auth_type", client_auth_type != ClientAuth::NoClientCert),
                ("min_version", min_version.is_some()),
                ("max_version", max_version.is_some()),
            ];
            if let Some((name, _)) = set.iter().find(|(_, on)| *on) {
                return Err(problem(
                    name,
                    format!("{name} is set but TLS is off without a certificate: add cert_file and key_file"),
                ));
            }
            return Ok(None);
        }
    };
    match (client_auth_type, &client_ca) {
        (ClientAuth::NoClientCert, Some(_)) => {
            return Err(problem(
                "client_ca_file",
                "client_ca_file is set but client_auth_type is NoClientCert: set client_auth_type to RequireAndVerifyClientCert"
                    .into(),
            ));
        }
        (ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert, None) => {
            return Err(problem(
                "client_auth_type",
                "client_auth_type verifies client certificates, which needs client_ca_file: add the CA that signs them"
                    .into(),
            ));
        }
        _ => {}
    }
    let min_version = min_version.unwrap_or(TlsVersion::Tls12);
    let max_version = max_version.unwrap_or(TlsVersion::Tls13);
    if max_version < TlsVersion::Tls12 {
        return Err(problem(
            "max_version",
            "max_version must be TLS12 or TLS13: TLS 1.0 and 1.1 are never offered".into(),
        ));
    }
    if max_version < min_version {
        return Err(problem("max_version", "max_version is below min_version".into()));
    }
    Ok(Some(TlsSettings {
        cert,
        key,
        client_auth: client_auth_type,
        client_ca,
        min_version,
        max_version,
        prefer_server_order: raw.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

/// The response headers exporter-toolkit allows, with the values it allows.
fn header(name: &str, value: &str) -> Result<Option<(HeaderName, HeaderValue)>, String> {
    const ALLOWED: [&str; 5] = [
        "Content-Security-Policy",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "X-XSS-Protection",
        "Strict-Transport-Security",
    ];
    let Some(canonical) = ALLOWED.iter().find(|a| a.eq_ignore_ascii_case(name)) else {
        return Err(format!("header {name:?} cannot be set here; the ones that can: {}", ALLOWED.join(", ")));
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let fixed: Option<&[&str]> = match *canonical {
        "X-Frame-Options" => Some(&["deny", "sameorigin"]),
        "X-Content-Type-Options" => Some(&["nosniff"]),
        _ => None,
    };
    if let Some(fixed) = fixed
        && !fixed.iter().any(|f| f.eq_ignore_ascii_case(value))
    {
        return Err(format!("header {canonical} takes one of: {}", fixed.join(", ")));
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| format!("header {canonical}: the value holds characters a header cannot carry"))?;
    Ok(Some((HeaderName::from_static(lowercase(canonical)), value)))
}

fn lowercase(canonical: &str) -> &'static str {
    match canonical {
        "Content-Security-Policy" => "content-security-policy",
        "X-Frame-Options" => "x-frame-options",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "strict-transport-security",
    }
}

// ---- the file's grammar ----------------------------------------------------------
//
// Values are read as plain strings and checked after parsing, where `line_of` can point
// at them: errors raised inside serde carry the line of the enclosing table instead.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<Users>,
    rate_limit: Option<de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    client_auth_type: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// Accepted for compatibility; this server speaks HTTP/1.1 either way.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// `basic_auth_users` in file order, duplicates kept so they can be refused.
#[derive(Debug, Default)]
struct Users(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Users {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct UsersVisitor;
        impl<'de> Visitor<'de> for UsersVisitor {
            type Value = Users;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("user names, each with a bcrypt hash")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Users, E> {
                Ok(Users::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Users, A::Error> {
                let mut users = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    users.push(entry);
                }
                Ok(Users(users))
            }
        }
        d.deserialize_any(UsersVisitor)
    }
}

fn client_auth(value: &str) -> Result<ClientAuth, String> {
    match value {
        "" | "NoClientCert" => Ok(ClientAuth::NoClientCert),
        "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyClientCertIfGiven),
        "RequireAndVerifyClientCert" => Ok(ClientAuth::RequireAndVerifyClientCert),
        "RequestClientCert" | "RequireAnyClientCert" => Err(format!(
            "client_auth_type {value} accepts any certificate without checking it; use RequireAndVerifyClientCert with client_ca_file"
        )),
        _ => Err(format!(
            "unknown client_auth_type {value:?}: use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )),
    }
}

fn tls_version(key: &str, value: &str) -> Result<TlsVersion, String> {
    match value {
        "TLS10" => Ok(TlsVersion::Tls10),
        "TLS11" => Ok(TlsVersion::Tls11),
        "TLS12" => Ok(TlsVersion::Tls12),
        "TLS13" => Ok(TlsVersion::Tls13),
        _ => Err(format!("unknown {key} {value:?}: use TLS12 or TLS13")),
    }
}

/// Checks the users: plain names, once each, every value a bcrypt hash of a sane cost.
fn users(
    list: Vec<(String, String)>,
    at: &dyn Fn(&str) -> Option<usize>,
) -> Result<BTreeMap<String, BcryptHash>, Problem> {
    let how = "make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'";
    let mut users = BTreeMap::new();
    for (name, hash) in list {
        let fail = |message: String| Problem { line: at(&name).or_else(|| at("basic_auth_users")), message };
        if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
            return Err(fail(format!(
                "basic_auth_users: {name:?} cannot be a user name (empty, or holds ':' or a control character)"
            )));
        }
        let parts: bcrypt::HashParts = hash
            .parse()
            .map_err(|_| fail(format!("basic_auth_users: the value of {name:?} is not a bcrypt hash; {how}")))?;
        let cost = parts.get_cost();
        if cost > MAX_BCRYPT_COST {
            return Err(fail(format!(
                "basic_auth_users: the hash of {name:?} has cost {cost}, which takes seconds per check; use 10 to {MAX_BCRYPT_COST}: {how}"
            )));
        }
        if users.contains_key(&name) {
            return Err(fail(format!("basic_auth_users: {name:?} is listed twice")));
        }
        users.insert(name, BcryptHash(hash));
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze";

    fn problem(text: &str) -> Problem {
        parse(text, Path::new("/etc/x")).unwrap_err()
    }

    #[test]
    fn empty_and_comment_only_files_mean_plain_http_without_auth() {
        for text in ["", "# nothing yet\n", "---\n", "tls_server_config:\nbasic_auth_users:\n"] {
            let c = parse(text, Path::new(".")).unwrap();
            assert_eq!(c, WebConfig::default(), "{text:?}");
        }
    }

    #[test]
    fn the_full_format_parses() {
        let text = format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ''\nbasic_auth_users:\n  alice: {ALICE}\n"
        );
        let c = parse(&text, Path::new("/etc/nehr-probe")).unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.cert, Pem::File { path: "/etc/nehr-probe/server.crt".into(), line: Some(2) });
        assert_eq!(t.key, Pem::File { path: "/abs/server.key".into(), line: Some(3) });
        assert_eq!(t.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(t.min_version, TlsVersion::Tls13);
        assert_eq!(t.max_version, TlsVersion::Tls13);
        assert!(t.prefer_server_order);
        assert_eq!(c.users["alice"].as_str(), ALICE);
        let names: Vec<&str> = c.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["strict-transport-security", "x-frame-options"], "blank values are unset");
        assert!(c.notes.is_empty(), "{:?}", c.notes);
    }

    #[test]
    fn errors_name_the_line_and_what_to_fix() {
        let cases: &[(&str, usize, &str)] = &[
            ("tls_server_config:\n  cert_file: a\n  key_fle: b\n", 3, "unknown field `key_fle`"),
            ("basic_auth_user:\n  a: b\n", 1, "unknown field `basic_auth_user`"),
            ("tls_server_config:\n  cert_file: a\n", 2, "key_file is missing"),
            ("tls_server_config:\n  key_file: a\n", 2, "cert_file is missing"),
            ("tls_server_config:\n  client_ca_file: ca\n", 2, "TLS is off without a certificate"),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
                4,
                "RequireAndVerifyClientCert",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
                4,
                "needs client_ca_file",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
                4,
                "without checking it",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe\n",
                4,
                "unknown client_auth_type",
            ),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n", 4, "use TLS12 or TLS13"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS11\n", 4, "max_version must be"),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n",
                5,
                "below min_version",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
                4,
                "remove the list",
            ),
            ("tls_server_config:\n  cert_file: a\n  cert: b\n  key_file: c\n", 3, "not both"),
            ("basic_auth_users:\n  alice: hunter2\n", 2, "not a bcrypt hash"),
            ("basic_auth_users:\n  alice: [1]\n", 2, "expected a string"),
            ("http_server_config:\n  headers:\n    Server: x\n", 3, "cannot be set here"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", 3, "deny, sameorigin"),
            ("rate_limit:\n  interval: 1s\n  burst: 2\n", 1, "rate_limit is not supported"),
            ("tls_server_config: [1, 2]\n", 1, "invalid type"),
            ("basic_auth_users:\n  a: x\n  : y\n", 3, "did not find expected key, while"),
            ("basic_auth_users:\n  '': x\n", 2, "cannot be a user name"),
            ("{{{\n", 1, ""),
        ];
        for (text, line, needle) in cases {
            let p = problem(text);
            assert_eq!(p.line, Some(*line), "{text:?}: {p}");
            assert!(p.message.contains(needle), "{text:?}: {p}");
            assert!(!p.message.contains('\n'), "{text:?}: {p}");
        }
    }

    #[test]
    fn lines_are_counted_as_yaml_counts_them() {
        // Found by fuzzing: a lone CR ends a line for the YAML parser, so it must for us.
        for eol in ["\n", "\r\n", "\r"] {
            let text = ["tls_server_config:", "  cert_file: a", "  key_fle: b", ""].join(eol);
            assert_eq!(problem(&text).line, Some(3), "{eol:?}");
            let text = ["tls_server_config:", "  cert_file: a", ""].join(eol);
            assert_eq!(problem(&text).line, Some(2), "{eol:?}");
        }
        assert_eq!(yaml_lines("a\r\nb\rc\n").collect::<Vec<_>>(), ["a", "b", "c", ""]);
    }

    #[test]
    fn an_unknown_key_with_newlines_is_shown_on_one_line() {
        // Found by fuzzing: a quoted key may hold newlines, and serde quotes it back.
        let p = problem("\"tt\\n\\nttICA\": 1\n");
        assert!(p.message.contains("unknown field `tt\\n\\nttICA`"), "{p}");
        assert!(!p.to_string().contains('\n'), "{p}");
    }

    #[test]
    fn duplicates_are_refused() {
        let text = format!("basic_auth_users:\n  alice: {ALICE}\n  alice: {ALICE}\n");
        assert!(problem(&text).message.contains("listed twice"));
        let p = problem("tls_server_config:\n  cert_file: a\n  cert_file: b\n");
        assert!(p.message.contains("duplicate"), "{p}");
    }

    #[test]
    fn a_hash_or_a_password_never_shows_in_an_error() {
        for text in [
            "basic_auth_users:\n  alice: hunter2-is-the-password\n".to_string(),
            format!("basic_auth_users:\n  alice: {}\n", ALICE.replace("$10$", "$31$")),
            "tls_server_config:\n  cert_file: a\n  key: \"-----BEGIN PRIVATE KEY-----secretkey\"\n  min_version: 1\n"
                .to_string(),
            "tls_server_config: \"-----BEGIN PRIVATE KEY-----secretkey\"\n".to_string(),
            "basic_auth_users: \"hunter2\"\n".to_string(),
            "basic_auth_users:\n  alice:\n    x: hunter2\n".to_string(),
        ] {
            let p = problem(&text).to_string();
            assert!(!p.contains("hunter2") && !p.contains("mDwo") && !p.contains("secretkey"), "{p}");
        }
        let p = problem(&format!("basic_auth_users:\n  alice: {}\n", ALICE.replace("$10$", "$20$")));
        assert!(p.message.contains("cost 20"), "{p}");
    }

    #[test]
    fn notes_say_what_is_weaker_than_it_looks() {
        let c = parse(&format!("basic_auth_users:\n  alice: {ALICE}\n"), Path::new(".")).unwrap();
        assert!(c.notes[0].contains("readable"), "{:?}", c.notes);
        let c =
            parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n", Path::new(".")).unwrap();
        assert!(c.notes[0].contains("TLS 1.2 or 1.3"), "{:?}", c.notes);
    }
}
