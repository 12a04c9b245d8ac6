//! Loading `--web-config` from disk: the file, then the certificates, keys and client
//! CA it names, into a rustls server config. The grammar and its checks are
//! [`super::web_config`]'s; this file adds only what needs the file system, and its
//! errors name the line of the key that named the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::web_config::{ClientAuth, Pem, Problem, TlsSettings, TlsVersion, WebConfig, WebConfigError, parse};

/// A web config read from disk, with its TLS config built.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: WebConfig,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The files it was made from (itself, certificates, keys): a change to any of them
    /// is a reason to load it again.
    pub files: Vec<PathBuf>,
}

/// Reads and checks the file at `path` and everything it names.
pub fn load(path: &Path) -> Result<Loaded, WebConfigError> {
    let fail = |p: Problem| WebConfigError::new(path, p);
    let text = crate::util::units::read_input_file(path)
        .map_err(|e| fail(Problem { line: None, message: format!("cannot read it: {e}") }))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let config = parse(&text, base).map_err(fail)?;
    let mut files = vec![path.to_path_buf()];
    let tls = match &config.tls {
        None => None,
        Some(t) => {
            for pem in [Some(&t.cert), Some(&t.key), t.client_ca.as_ref()].into_iter().flatten() {
                if let Pem::File { path, .. } = pem {
                    files.push(path.clone());
                }
            }
            Some(Arc::new(server_config(t).map_err(fail)?))
        }
    };
    Ok(Loaded { config, tls, files })
}

/// The rustls server config for `t`: reads the certificate, key and client CA.
pub fn server_config(t: &TlsSettings) -> Result<rustls::ServerConfig, Problem> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = read_pem(&t.cert, "cert_file", pem_certs)?;
    let key = read_pem(&t.key, "key_file", |bytes| {
        PrivateKeyDer::from_pem_slice(bytes).map_err(|_| "holds no PEM private key".to_string())
    })?;
    let mut versions = Vec::new();
    if t.min_version <= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if t.max_version >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| Problem { line: None, message: format!("TLS versions: {e}") })?;
    let builder = match (&t.client_ca, t.client_auth) {
        (Some(ca), ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert) => {
            let cas = read_pem(ca, "client_ca_file", pem_certs)?;
            let mut roots = rustls::RootCertStore::empty();
            for ca_cert in cas {
                roots
                    .add(ca_cert)
                    .map_err(|e| pem_problem(ca, "client_ca_file", &format!("is not a usable CA: {e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if t.client_auth == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier =
                verifier.build().map_err(|e| pem_problem(ca, "client_ca_file", &format!("is not a usable CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| pem_problem(&t.key, "key_file", &format!("does not go with the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = t.prefer_server_order;
    Ok(config)
}

/// One or more PEM certificates.
fn pem_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = crate::call::tls::parse_pem_certs(bytes)?;
    if certs.is_empty() { Err("holds no PEM certificate".to_string()) } else { Ok(certs) }
}

fn read_pem<T>(pem: &Pem, key: &str, parse: impl Fn(&[u8]) -> Result<T, String>) -> Result<T, Problem> {
    let bytes = match pem {
        Pem::Inline { text, .. } => text.clone().into_bytes(),
        Pem::File { path, .. } => crate::util::units::read_input_file(path)
            .map_err(|e| pem_problem(pem, key, &format!("cannot be read: {e}")))?
            .into_bytes(),
    };
    parse(&bytes).map_err(|why| pem_problem(pem, key, &why))
}

fn pem_problem(pem: &Pem, key: &str, why: &str) -> Problem {
    match pem {
        Pem::File { path, line } => Problem { line: *line, message: format!("{key} {}: {why}", path.display()) },
        Pem::Inline { line, .. } => {
            let key = key.trim_end_matches("_file");
            Problem { line: *line, message: format!("the inline {key} {why}") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_bad_files_are_named_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("--web-config {}, line 2: cert_file ", path.display())), "{e}");
        assert!(e.contains("nope.crt: cannot be read"), "{e}");
        std::fs::write(dir.path().join("nope.crt"), "not pem").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("holds no PEM certificate"), "{e}");
        let e = load(&dir.path().join("absent.yml")).unwrap_err().to_string();
        assert!(e.contains("absent.yml: cannot read it"), "{e}");
    }
}
