//! What a failed TLS handshake means, in words a person can act on. rustls prints some
//! certificate errors as Debug text (`Other(OtherError(CaUsedAsEndEntity))`) and others
//! in UNIX seconds; the verifier of `tls.rs` hands its failures here with the
//! certificate the server presented, and `conn.rs` the handshake's error with what it
//! knows of the handshake ([`Handshake`]: the versions offered, whether a client
//! certificate was given and whether the server asked for one). Each reason says what
//! is wrong and what would fix it (`--ca-cert`, `--insecure`, a URL with the
//! certificate's name, `--client-cert`, `--tls-min`). A server that wants a client
//! certificate it was not given shows it in one of three ways, each told here: a
//! refused handshake (TLS alert `certificate_required`, or `handshake_failure` after it
//! asked for one), a closed connection, or an HTTP answer (nginx's 400 "No required SSL
//! certificate was sent"). It knows nothing of targets or outcomes, and never fails.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, Error, OtherError};

use super::tls_version::TlsVersions;
use x509_parser::certificate::X509Certificate;

/// What `--ca-cert` and `--insecure` would do, for a certificate this machine does not
/// trust.
const TRUST: &str = "with --ca-cert FILE, or skip the check with --insecure (test systems only)";
/// For a certificate no trust would make valid.
const INSECURE: &str = "(--insecure skips the check, test systems only)";

/// A certificate failure in words: the verifier returns it inside rustls' error, and
/// [`handshake`] takes it out again.
#[derive(Debug)]
struct Worded(String);

impl std::fmt::Display for Worded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Worded {}

/// The verifier's `error` about the certificate `end_entity` presented for `name`,
/// with its reason in words.
pub fn certificate(error: Error, end_entity: &CertificateDer<'_>, name: &ServerName<'_>) -> Error {
    let Error::InvalidCertificate(why) = &error else { return error };
    let parsed = x509_parser::parse_x509_certificate(end_entity).ok();
    let text = describe(why, parsed.as_ref().map(|(_, cert)| cert), &name.to_str());
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Worded(text)))))
}

/// What to give for a server that requires a client certificate.
const GIVE_CERT: &str = "give one with --client-cert FILE and --client-key FILE";

/// What the connection knows of a handshake, for its words.
#[derive(Debug, Clone, Copy)]
pub struct Handshake {
    /// The versions this client offered (`--tls-min`, `--tls-max`).
    pub versions: TlsVersions,
    /// Whether a client certificate was configured.
    pub client_cert: bool,
    /// Whether the server asked for a client certificate (its CertificateRequest).
    pub asked: bool,
    /// The version of the server's ServerHello, when its first record was one.
    pub server_hello: Option<u16>,
}

/// Why the handshake failed, for the call's reason.
pub fn handshake(e: &std::io::Error, h: &Handshake) -> String {
    let Some(error) = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof if h.asked && !h.client_cert => format!(
                "the server asked for a client certificate, got none and closed the connection during the \
                 handshake: it requires one; {GIVE_CERT}"
            ),
            std::io::ErrorKind::UnexpectedEof => "the server closed the connection during the handshake".into(),
            _ => e.to_string(),
        };
    };
    match error {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) if inner.is::<Worded>() => {
            inner.to_string()
        }
        Error::InvalidCertificate(why) => format!("the server's certificate is refused: {why}"),
        Error::InvalidMessage(_) => {
            "the server did not answer in TLS: does it speak plain http on this port? (then use an http:// URL)".into()
        }
        Error::AlertReceived(alert) => alert_words(*alert, h),
        Error::PeerIncompatible(rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13) => {
            let offered = h.server_hello.and_then(old_version).unwrap_or("TLS 1.0/1.1");
            format!("the server offers only {offered}; nehr-probe needs TLS 1.2 or later (the server must be upgraded)")
        }
        Error::PeerIncompatible(rustls::PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig) => {
            let chosen = match h.server_hello {
                Some(0x0303) => "TLS 1.2",
                _ => "a TLS version",
            };
            format!("the server chose {chosen}, outside {} ({})", range_flags(h.versions), h.versions.describe())
        }
        Error::PeerIncompatible(why) => {
            format!("the server has no TLS version or cipher suite in common with this client ({why:?})")
        }
        other => other.to_string(),
    }
}

/// A failure of the first exchange on a new connection that is the server's verdict on
/// the handshake: under TLS 1.3 the client's side of the handshake ends before the
/// server has checked the client's certificate, so a server that wants one it was not
/// given (or refuses the one it got) says so with an alert on the first read, or
/// closes. `None` when it is something else.
pub fn after_handshake(e: &super::h1::Error, h: &Handshake) -> Option<String> {
    use super::h1::Error as H;
    let io = match e {
        H::Write(io) | H::FailedBeforeAnswer(io) => Some(io),
        H::ClosedBeforeAnswer => None,
        _ => return None,
    };
    let alert = io.and_then(|io| io.get_ref()).and_then(|inner| inner.downcast_ref::<Error>()).and_then(|e| match e {
        Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    });
    match alert {
        Some(alert) if is_about_the_client(alert) || h.asked => Some(alert_words(alert, h)),
        Some(_) => None,
        None if h.asked && !h.client_cert => Some(format!(
            "the server asked for a client certificate, got none and closed the connection without an answer: \
             it requires one; {GIVE_CERT}"
        )),
        None => None,
    }
}

/// What an answer with `status` and `body` over a connection whose server asked for a
/// client certificate (`asked`) says about one, when none was given: nginx answers
/// `ssl_verify_client on` without a certificate with 400 "No required SSL certificate
/// was sent". `None` for an answer that says nothing of it.
pub fn answered_without_certificate(status: u16, body: &[u8], asked: bool) -> Option<String> {
    const NGINX: &[u8] = b"No required SSL certificate was sent";
    if (200..300).contains(&status) {
        return None;
    }
    // nginx's page is short, and its 400 the only answer that carries the words.
    let head = &body[..body.len().min(4096)];
    let says = status == 400 && head.windows(NGINX.len()).any(|w| w == NGINX);
    match (says, asked) {
        (true, _) => Some(format!(
            "the server says \"No required SSL certificate was sent\": it requires a client certificate; {GIVE_CERT}"
        )),
        (false, true) => Some(format!(
            "the server asked for a client certificate during the handshake and none was given; if it requires \
             one, {GIVE_CERT}"
        )),
        (false, false) => None,
    }
}

/// Alerts a server sends about the client's certificate.
fn is_about_the_client(alert: rustls::AlertDescription) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        alert,
        A::CertificateRequired
            | A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
    )
}

/// A TLS alert from the server, in words, for what this client offered and gave.
fn alert_words(alert: rustls::AlertDescription, h: &Handshake) -> String {
    use rustls::AlertDescription as A;
    let name = alert_name(alert);
    match alert {
        A::CertificateRequired if !h.client_cert => {
            format!("the server requires a client certificate and none was given (TLS alert {name}); {GIVE_CERT}")
        }
        A::HandshakeFailure if h.asked && !h.client_cert => format!(
            "the server asked for a client certificate and refused the handshake without one (TLS alert {name}): \
             it requires one; {GIVE_CERT}"
        ),
        a if h.client_cert && is_about_the_client(a) => {
            format!(
                "the server refused the client certificate (TLS alert {name}): is --client-cert issued by a CA \
                 the server trusts, for this client, and still valid?"
            )
        }
        A::ProtocolVersion if h.versions.is_default() => format!(
            "the server refused TLS 1.2 and 1.3 (TLS alert {name}): it offers only TLS 1.0/1.1 (or older); \
             nehr-probe needs TLS 1.2 or later (the server must be upgraded)"
        ),
        A::ProtocolVersion => format!(
            "the server refused {} (TLS alert {name}): it offers none of {}; widen them to reach it",
            h.versions.describe(),
            range_flags(h.versions)
        ),
        _ => format!("the server refused the handshake (TLS alert {name})"),
    }
}

/// The flags that narrowed the versions: `--tls-min 1.3`, `--tls-max 1.2`.
fn range_flags(v: TlsVersions) -> String {
    let d = TlsVersions::default();
    let mut flags = Vec::new();
    if v.min != d.min {
        flags.push(format!("--tls-min {}", v.min.number()));
    }
    if v.max != d.max {
        flags.push(format!("--tls-max {}", v.max.number()));
    }
    if flags.is_empty() { "the versions offered".to_string() } else { flags.join(" ") }
}

/// A version below TLS 1.2 by its wire number.
fn old_version(v: u16) -> Option<&'static str> {
    match v {
        0x0300 => Some("SSL 3.0"),
        0x0301 => Some("TLS 1.0"),
        0x0302 => Some("TLS 1.1"),
        _ => None,
    }
}

/// An alert by its name in the TLS specifications: `certificate_required`.
fn alert_name(alert: rustls::AlertDescription) -> String {
    let Some(camel) = alert.as_str() else { return format!("{alert:?}") };
    let mut out = String::with_capacity(camel.len() + 4);
    // UnknownCA reads unknown_ca, not unknown_c_a.
    let mut after_upper = false;
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !after_upper {
            out.push('_');
        }
        after_upper = c.is_ascii_uppercase();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `why` in words, about `cert` (when it parsed) presented for the host `name`.
fn describe(why: &CertificateError, cert: Option<&X509Certificate<'_>>, name: &str) -> String {
    let subject = cert.map_or_else(|| "?".to_string(), |c| c.subject().to_string());
    let issuer = cert.map_or_else(|| "?".to_string(), |c| c.issuer().to_string());
    let not_after = cert.map(|c| c.validity().not_after.timestamp());
    let not_before = cert.map(|c| c.validity().not_before.timestamp());
    match why {
        CertificateError::ExpiredContext { not_after, .. } => expired(Some(not_after.as_secs() as i64)),
        CertificateError::Expired => expired(not_after),
        CertificateError::NotValidYetContext { not_before, .. } => not_yet(Some(not_before.as_secs() as i64)),
        CertificateError::NotValidYet => not_yet(not_before),
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names = cert.map_or_else(|| presented.iter().map(|n| unwrapped(n)).collect(), names);
            let names = if names.is_empty() { "no host name".to_string() } else { names.join(", ") };
            format!(
                "the server's certificate is for {names}, not {name}: use a URL with one of its names \
                 (--resolve NAME:PORT:ADDR reaches this address by it)"
            )
        }
        CertificateError::NotValidForName => {
            format!("the server's certificate is not for {name}: use a URL with one of its names")
        }
        CertificateError::UnknownIssuer if cert.is_some_and(self_signed) => {
            format!("the server's certificate ({subject}) is self-signed: trust it (its PEM) {TRUST}")
        }
        CertificateError::UnknownIssuer => format!(
            "the server's certificate is issued by {issuer}, a CA this machine does not trust (or the server \
             left out an intermediate certificate): trust that CA (its certificate's PEM) {TRUST}"
        ),
        CertificateError::BadSignature => format!(
            "the server's certificate ({subject}) does not carry a valid signature of its issuer {issuer}: \
             another CA of that name signed it, or it was altered {INSECURE}"
        ),
        CertificateError::Other(_) if cert.is_some_and(|c| c.is_ca()) => format!(
            "the server presents a CA certificate ({subject}) as its own: it needs a server certificate \
             issued by that CA {INSECURE}"
        ),
        CertificateError::Revoked => format!("the server's certificate ({subject}) has been revoked"),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => format!(
            "the server's certificate ({subject}) is not for TLS servers (its extended key usage lacks \
             serverAuth) {INSECURE}"
        ),
        CertificateError::BadEncoding => format!("the server's certificate cannot be parsed {INSECURE}"),
        CertificateError::UnhandledCriticalExtension => {
            format!(
                "the server's certificate ({subject}) has a critical extension this client does not know {INSECURE}"
            )
        }
        #[allow(deprecated)]
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "the server's certificate ({subject}) is signed with an algorithm this client does not accept {INSECURE}"
        ),
        other => format!("the server's certificate ({subject}) is refused: {other}"),
    }
}

fn expired(not_after: Option<i64>) -> String {
    match not_after {
        Some(t) => format!("the server's certificate expired on {}: the server needs a new one {INSECURE}", date(t)),
        None => format!("the server's certificate has expired: the server needs a new one {INSECURE}"),
    }
}

fn not_yet(not_before: Option<i64>) -> String {
    let since = not_before.map_or_else(String::new, |t| format!(" before {}", date(t)));
    format!("the server's certificate is not valid{since}: is this machine's clock right? {INSECURE}")
}

/// The host names and addresses a certificate is for (its subjectAltName).
fn names(cert: &X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(san)) = cert.subject_alternative_name() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
                Ok(v4) => Some(std::net::Ipv4Addr::from(v4).to_string()),
                Err(_) => <[u8; 16]>::try_from(*bytes).ok().map(|v6| std::net::Ipv6Addr::from(v6).to_string()),
            },
            _ => None,
        })
        .collect()
}

/// webpki's `DnsName("a.test")` or `IpAddress(127.0.0.1)` as the bare name.
fn unwrapped(presented: &str) -> String {
    let inner = presented.split_once('(').and_then(|(_, rest)| rest.strip_suffix(')')).unwrap_or(presented);
    inner.trim_matches('"').to_string()
}

/// Issued by itself: its issuer is its subject.
fn self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

/// A Unix time as an RFC 3339 date, `2020-02-01 00:00:00 UTC`.
pub(super) fn date(unix: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string().replace('T', " ").replace('Z', " UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription as A;

    fn plain_handshake() -> Handshake {
        Handshake { versions: TlsVersions::default(), client_cert: false, asked: false, server_hello: None }
    }

    fn alert(a: A) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, Error::AlertReceived(a))
    }

    #[test]
    fn alerts_read_by_their_names() {
        assert_eq!(alert_name(A::CertificateRequired), "certificate_required");
        assert_eq!(alert_name(A::UnknownCA), "unknown_ca");
        assert_eq!(alert_name(A::ProtocolVersion), "protocol_version");
        assert_eq!(alert_name(A::HandshakeFailure), "handshake_failure");
    }

    #[test]
    fn a_wanted_client_certificate_is_named_however_the_server_says_it() {
        let h = plain_handshake();
        let required = handshake(&alert(A::CertificateRequired), &h);
        assert!(required.starts_with("the server requires a client certificate and none was given"), "{required}");
        assert!(required.contains("--client-cert FILE"), "{required}");
        // handshake_failure means it only after the server asked for one.
        let generic = handshake(&alert(A::HandshakeFailure), &h);
        assert_eq!(generic, "the server refused the handshake (TLS alert handshake_failure)");
        let asked = Handshake { asked: true, ..h };
        assert!(handshake(&alert(A::HandshakeFailure), &asked).contains("asked for a client certificate"));
        let given = Handshake { client_cert: true, asked: true, ..h };
        assert!(handshake(&alert(A::UnknownCA), &given).starts_with("the server refused the client certificate"));
        // After the handshake: the alert on the first read, or a close.
        let closed = after_handshake(&crate::call::h1::Error::ClosedBeforeAnswer, &asked).unwrap();
        assert!(closed.contains("closed the connection without an answer"), "{closed}");
        assert_eq!(after_handshake(&crate::call::h1::Error::ClosedBeforeAnswer, &h), None);
        let read = crate::call::h1::Error::FailedBeforeAnswer(alert(A::CertificateRequired));
        assert!(after_handshake(&read, &h).unwrap().contains("requires a client certificate"));
        // An answer: nginx's words, or a server that asked.
        let nginx = b"<html><head><title>400 No required SSL certificate was sent</title></head></html>";
        assert!(answered_without_certificate(400, nginx, false).unwrap().contains("No required SSL certificate"));
        assert!(answered_without_certificate(403, b"", true).unwrap().contains("asked for a client certificate"));
        assert_eq!(answered_without_certificate(403, b"", false), None);
        assert_eq!(answered_without_certificate(200, nginx, true), None);
    }

    #[test]
    fn versions_the_server_lacks_are_named() {
        let h = plain_handshake();
        let old = handshake(&alert(A::ProtocolVersion), &h);
        assert!(old.contains("offers only TLS 1.0/1.1") && old.contains("needs TLS 1.2 or later"), "{old}");
        let only13 = Handshake {
            versions: TlsVersions::new(Some(crate::call::tls_version::TlsVersion::Tls13), None).unwrap(),
            ..h
        };
        let narrowed = handshake(&alert(A::ProtocolVersion), &only13);
        assert!(narrowed.contains("refused TLS 1.3 only") && narrowed.contains("--tls-min 1.3"), "{narrowed}");
        let hello = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            Error::PeerIncompatible(rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13),
        );
        let named = handshake(&hello, &Handshake { server_hello: Some(0x0301), ..h });
        assert!(named.starts_with("the server offers only TLS 1.0; nehr-probe needs TLS 1.2 or later"), "{named}");
    }

    #[test]
    fn dates_read_as_utc() {
        assert_eq!(date(1_580_515_200), "2020-02-01 00:00:00 UTC");
    }

    #[test]
    fn errors_other_than_the_certificates_keep_their_own_words() {
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(handshake(&eof, &plain_handshake()), "the server closed the connection during the handshake");
        let plain = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        let h = plain_handshake();
        assert!(handshake(&plain, &h).contains("plain http"), "{}", handshake(&plain, &h));
        let named = describe(
            &CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("127.0.0.1").unwrap(),
                presented: vec!["DnsName(\"a.test\")".into()],
            },
            None,
            "127.0.0.1",
        );
        assert!(named.starts_with("the server's certificate is for a.test, not 127.0.0.1: "), "{named}");
        let unknown = describe(&CertificateError::UnknownIssuer, None, "h");
        assert!(unknown.contains("issued by ?") && unknown.contains("--ca-cert FILE"), "{unknown}");
    }
}
