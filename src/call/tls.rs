//! TLS for the client side of the call: the rustls configuration (system roots, an
//! extra `--ca-cert`, or `--insecure`), PEM parsing, and what a handshake shows about
//! the server's certificates. It knows nothing of targets or outcomes.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    CaCert(String),
    #[error("{0}")]
    Setup(String),
}

/// The earliest `notAfter` among these certificates, in Unix seconds. A certificate
/// that does not parse is left out (the handshake, not this, judges certificates).
pub fn earliest_not_after(certs: &[CertificateDer<'_>]) -> Option<i64> {
    certs
        .iter()
        .filter_map(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .min()
}

/// A TLS version as blackbox_exporter's `probe_tls_version_info` names it.
pub fn version_name(v: rustls::ProtocolVersion) -> &'static str {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2",
        rustls::ProtocolVersion::TLSv1_1 => "TLS 1.1",
        rustls::ProtocolVersion::TLSv1_0 => "TLS 1.0",
        _ => "unknown",
    }
}

/// The connector for https targets: system roots plus `ca_cert`, or no checks at all
/// with `insecure`. With `resume` false no TLS session is resumed: every handshake is a
/// full one, as a distinct user's client makes it (one that shared our session cache
/// would spare the server its most expensive work).
pub fn connector(ca_cert: Option<&[u8]>, insecure: bool, resume: bool) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let check = if insecure {
        Check::Any
    } else {
        let mut roots = rustls::RootCertStore::empty();
        // A broken system store is not fatal when --ca-cert gives the root we need.
        let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(pem) = ca_cert {
            let bad = TlsError::CaCert;
            for cert in parse_pem_certs(pem).map_err(bad)? {
                roots.add(cert).map_err(|e| TlsError::CaCert(e.to_string()))?;
            }
        }
        // No root at all (a container without CA certificates): every certificate is
        // of an unknown issuer, which the verifier says in words.
        let webpki = (!roots.is_empty())
            .then(|| {
                rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| TlsError::Setup(e.to_string()))
            })
            .transpose()?;
        Check::Roots(webpki)
    };
    let verifier = Arc::new(Verifier { check, provider });
    let mut config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The certificates in a PEM file (`--ca-cert`), or why it cannot be read as one.
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// How the server's certificate is checked.
#[derive(Debug)]
enum Check {
    /// `--insecure`: any certificate.
    Any,
    /// Against the system's roots and `--ca-cert` (`None`: there is no root at all).
    Roots(Option<Arc<rustls::client::WebPkiServerVerifier>>),
}

/// rustls' own verification (or, with `--insecure`, none), its failures put in words
/// by [`super::tls_error`]; the handshake signatures are checked either way.
#[derive(Debug)]
struct Verifier {
    check: Check,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verified = match &self.check {
            Check::Any => return Ok(rustls::client::danger::ServerCertVerified::assertion()),
            Check::Roots(Some(webpki)) => webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            Check::Roots(None) => Err(rustls::CertificateError::UnknownIssuer.into()),
        };
        verified.map_err(|e| super::tls_error::certificate(e, end_entity, server_name))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
