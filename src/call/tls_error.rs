//! What a failed TLS handshake means, in words a person can act on. rustls prints some
//! certificate errors as Debug text (`Other(OtherError(CaUsedAsEndEntity))`) and others
//! in UNIX seconds; the verifier of `tls.rs` hands its failures here with the
//! certificate the server presented, and `conn.rs` the handshake's error. Each reason
//! says what is wrong and what would fix it (`--ca-cert`, `--insecure`, a URL with the
//! certificate's name). It knows nothing of targets or outcomes, and never fails.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, Error, OtherError};
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

/// Why the handshake failed, for the call's reason.
pub fn handshake(e: &std::io::Error) -> String {
    let Some(error) = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) else {
        return match e.kind() {
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
        Error::AlertReceived(alert) => format!("the server refused the handshake (TLS alert {alert:?})"),
        Error::PeerIncompatible(why) => {
            format!("the server has no TLS version or cipher suite in common with this client ({why:?})")
        }
        other => other.to_string(),
    }
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
fn date(unix: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string().replace('T', " ").replace('Z', " UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_utc() {
        assert_eq!(date(1_580_515_200), "2020-02-01 00:00:00 UTC");
    }

    #[test]
    fn errors_other_than_the_certificates_keep_their_own_words() {
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(handshake(&eof), "the server closed the connection during the handshake");
        let plain = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert!(handshake(&plain).contains("plain http"), "{}", handshake(&plain));
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
