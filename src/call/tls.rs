//! TLS for the client side of the call: the rustls configuration (system roots, an
//! extra `--ca-cert`, or `--insecure`; the TLS versions allowed; the client certificate
//! presented when the server asks), PEM parsing, and what a handshake shows about the
//! server's certificates, its version and cipher suite, and whether it asked for a
//! client certificate. It knows nothing of targets or outcomes, and no error it makes
//! holds a byte of a private key.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use super::tls_version::{TlsVersion, TlsVersions, cipher_name, version_name};

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

/// The client certificate (`--client-cert`) and its key (`--client-key`), checked to
/// belong together and be valid now. Its Debug output names the certificate only.
#[derive(Clone)]
pub struct ClientIdentity {
    key: Arc<CertifiedKey>,
    /// The certificate's subject, to name it.
    pub subject: String,
    /// When it expires, Unix seconds.
    pub not_after: i64,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity").field("subject", &self.subject).field("not_after", &self.not_after).finish()
    }
}

/// Why a client certificate or key cannot be used. The words never quote the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCertError {
    #[error("no PEM certificate in it (a file with a -----BEGIN CERTIFICATE----- block is needed)")]
    NoCertificate,
    #[error("it cannot be read as PEM certificates: {0}")]
    BadCertificate(String),
    #[error("no PEM private key in it (a -----BEGIN PRIVATE KEY----- block is needed)")]
    NoKey,
    #[error(
        "the key is encrypted, and nehr-probe does not ask for passphrases: decrypt it to a file only \
         nehr-probe's user can read (openssl pkey -in KEY -out KEY.plain)"
    )]
    EncryptedKey,
    #[error("it cannot be read as a PEM private key (malformed PEM)")]
    BadKey,
    #[error("the key is of a kind nehr-probe cannot sign with (RSA, ECDSA P-256/P-384 and Ed25519 keys are)")]
    UnsupportedKey,
    #[error("the key does not belong to the certificate ({subject}): give the key the certificate was made for")]
    Mismatch { subject: String },
    #[error("the certificate ({subject}) expired on {date}: the server would refuse it; get a new one")]
    Expired { subject: String, date: String },
    #[error("the certificate ({subject}) is not valid before {date}: is this machine's clock right?")]
    NotYetValid { subject: String, date: String },
}

impl ClientIdentity {
    /// The identity in `cert_pem` (the certificate first, then any intermediates) and
    /// `key_pem`, checked at Unix time `now`: `Err((true, _))` is about the certificate
    /// file, `Err((false, _))` about the key file.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], now: i64) -> Result<ClientIdentity, (bool, ClientCertError)> {
        let chain = parse_pem_certs(cert_pem).map_err(|why| (true, ClientCertError::BadCertificate(why)))?;
        let Some(leaf) = chain.first() else { return Err((true, ClientCertError::NoCertificate)) };
        let (subject, not_before, not_after) = match x509_parser::parse_x509_certificate(leaf) {
            Ok((_, cert)) => (
                cert.subject().to_string(),
                cert.validity().not_before.timestamp(),
                cert.validity().not_after.timestamp(),
            ),
            Err(e) => return Err((true, ClientCertError::BadCertificate(e.to_string()))),
        };
        let key = private_key(key_pem).map_err(|e| (false, e))?;
        if not_after < now {
            let date = super::tls_error::date(not_after);
            return Err((true, ClientCertError::Expired { subject, date }));
        }
        if not_before > now {
            let date = super::tls_error::date(not_before);
            return Err((true, ClientCertError::NotYetValid { subject, date }));
        }
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let key = match CertifiedKey::from_der(chain, key, &provider) {
            Ok(key) => key,
            Err(rustls::Error::InconsistentKeys(_)) => return Err((false, ClientCertError::Mismatch { subject })),
            Err(_) => return Err((false, ClientCertError::UnsupportedKey)),
        };
        Ok(ClientIdentity { key: Arc::new(key), subject, not_after })
    }
}

/// The one private key of a PEM file, refused when encrypted.
fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, ClientCertError> {
    let text = String::from_utf8_lossy(pem);
    // PKCS#8's encrypted form, and the legacy form's OpenSSL header.
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(ClientCertError::EncryptedKey);
    }
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(ClientCertError::NoKey),
        // Its words could quote a line of the file: none of them.
        Err(_) => Err(ClientCertError::BadKey),
    }
}

/// What the handshake's client needs besides the server's name.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientTls<'a> {
    pub ca_cert: Option<&'a [u8]>,
    pub insecure: bool,
    /// With `false` no TLS session is resumed.
    pub resume: bool,
    pub versions: TlsVersions,
    pub identity: Option<&'a ClientIdentity>,
    /// Offer HTTP/2 by ALPN (`h2` first, then `http/1.1`); without it only `http/1.1`.
    pub http2: bool,
}

/// The connector for https targets: system roots plus `ca_cert`, or no checks at all
/// with `insecure`; the versions allowed; the client certificate presented when the
/// server asks for one. With `resume` false no TLS session is resumed: every handshake
/// is a full one, as a distinct user's client makes it (one that shared our session
/// cache would spare the server its most expensive work).
pub fn connector(options: ClientTls<'_>) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let ClientTls { ca_cert, insecure, resume, versions, identity, http2 } = options;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions.rustls())
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
    let client = Arc::new(ClientAuth { key: identity.map(|i| Arc::clone(&i.key)) });
    let mut config = builder.dangerous().with_custom_certificate_verifier(verifier).with_client_cert_resolver(client);
    config.alpn_protocols = if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The certificates in a PEM file (`--ca-cert`), or why it cannot be read as one.
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| e.to_string())
}

thread_local! {
    /// Set by [`ClientAuth`] when a server asks for a client certificate, inside the
    /// poll of the handshake [`Watched`] wraps (a handshake's poll runs on one thread).
    static ASKED: Cell<bool> = const { Cell::new(false) };
}

/// The client certificate, if any, handed to a server that asks (noting that it asked).
#[derive(Debug)]
struct ClientAuth {
    key: Option<Arc<CertifiedKey>>,
}

impl rustls::client::ResolvesClientCert for ClientAuth {
    fn resolve(&self, _issuers: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        ASKED.set(true);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// A handshake, and whether the server asked for a client certificate during it (its
/// CertificateRequest): a server that then refuses the handshake, closes, or answers
/// 400 did so for want of one.
pub struct Watched<F> {
    handshake: F,
    asked: bool,
}

/// Watches `handshake` for the server's CertificateRequest.
pub fn watch<F: Future + Unpin>(handshake: F) -> Watched<F> {
    Watched { handshake, asked: false }
}

impl<F: Future + Unpin> Future for Watched<F> {
    type Output = (F::Output, bool);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outer = ASKED.replace(false);
        let polled = Pin::new(&mut self.handshake).poll(cx);
        let asked = ASKED.replace(outer);
        self.asked |= asked;
        let asked = self.asked;
        polled.map(|out| (out, asked))
    }
}

/// The first bytes the server sent: the record and handshake headers of its hello.
const HEAD: usize = 11;

/// The TCP stream under TLS, keeping the first bytes the server sent: a ServerHello for
/// TLS 1.0 says so there, and rustls' error does not say which version it was.
pub struct Peeked<S> {
    inner: S,
    head: [u8; HEAD],
    seen: usize,
}

impl<S> Peeked<S> {
    pub fn new(inner: S) -> Peeked<S> {
        Peeked { inner, head: [0; HEAD], seen: 0 }
    }

    /// The version in the server's ServerHello, when its first record was one.
    pub fn server_hello_version(&self) -> Option<u16> {
        // A handshake record (22) whose message is a ServerHello (2): the version
        // follows the record's 5-byte header and the message's 4-byte one.
        (self.seen == HEAD && self.head[0] == 22 && self.head[5] == 2)
            .then(|| u16::from_be_bytes([self.head[9], self.head[10]]))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Peeked<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.seen < HEAD && polled.is_ready() {
            let new = &buf.filled()[before..];
            let n = new.len().min(HEAD - this.seen);
            this.head[this.seen..this.seen + n].copy_from_slice(&new[..n]);
            this.seen += n;
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Peeked<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
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
