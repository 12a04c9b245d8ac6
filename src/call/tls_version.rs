//! The TLS versions nehr-probe speaks and how versions and cipher suites are named in
//! every output: `TLS 1.3` as blackbox_exporter's `probe_tls_version_info` has it,
//! cipher suites by their IANA names as its `probe_tls_cipher_info` does. The range a
//! handshake may use (`--tls-min`, `--tls-max`) is checked here.

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

/// A cipher suite by its IANA name, as blackbox_exporter's `probe_tls_cipher_info`
/// has it (Go's names): `TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
pub fn cipher_name(suite: rustls::CipherSuite) -> &'static str {
    use rustls::CipherSuite as S;
    match suite {
        // rustls names the TLS 1.3 suites TLS13_…; IANA (and Go, and OpenSSL) TLS_….
        S::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        S::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        S::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        other => other.as_str().unwrap_or("unknown"),
    }
}

/// A TLS version nehr-probe can speak: `--tls-min` and `--tls-max`, `tls_min` and
/// `tls_max` in `serve --config`. rustls has no TLS 1.0 or 1.1, nor should a client
/// of health records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// `1.2` or `1.3` (also `TLS1.3`, `tls 1.3`, `TLSv1.3`); TLS 1.0 and 1.1 are refused
    /// with the reason.
    pub fn parse(s: &str) -> Result<TlsVersion, String> {
        let bare = s.trim().to_ascii_lowercase().replace(' ', "");
        let bare = bare.strip_prefix("tlsv").or_else(|| bare.strip_prefix("tls")).unwrap_or(&bare);
        match bare {
            "1.2" | "12" => Ok(TlsVersion::Tls12),
            "1.3" | "13" => Ok(TlsVersion::Tls13),
            "1.0" | "1" | "10" | "1.1" | "11" => {
                Err("TLS 1.0 and 1.1 are deprecated (RFC 8996) and nehr-probe does not speak them; expected 1.2 or 1.3"
                    .to_string())
            }
            _ => Err("expected 1.2 or 1.3".to_string()),
        }
    }

    /// `TLS 1.2`, as the version is shown everywhere else.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        }
    }

    /// `1.2`: the flag's value.
    pub fn number(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }

    pub(super) fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }
}

/// The TLS versions a handshake may use, `min` to `max`; 1.2 to 1.3 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersions {
    pub min: TlsVersion,
    pub max: TlsVersion,
}

impl Default for TlsVersions {
    fn default() -> Self {
        TlsVersions { min: TlsVersion::Tls12, max: TlsVersion::Tls13 }
    }
}

impl TlsVersions {
    /// The range `min` to `max` (each the default's when `None`), or why it is empty.
    pub fn new(min: Option<TlsVersion>, max: Option<TlsVersion>) -> Result<TlsVersions, String> {
        let d = TlsVersions::default();
        let v = TlsVersions { min: min.unwrap_or(d.min), max: max.unwrap_or(d.max) };
        if v.min > v.max {
            return Err(format!("tls-min {} is above tls-max {}: no version is left", v.min.number(), v.max.number()));
        }
        Ok(v)
    }

    /// Whether this is narrower than what nehr-probe speaks by default.
    pub fn is_default(self) -> bool {
        self == TlsVersions::default()
    }

    /// `TLS 1.2 or 1.3`, `TLS 1.3 only`.
    pub fn describe(self) -> String {
        if self.min == self.max { format!("{} only", self.min.name()) } else { "TLS 1.2 or 1.3".to_string() }
    }

    pub(super) fn rustls(self) -> Vec<&'static rustls::SupportedProtocolVersion> {
        [TlsVersion::Tls12, TlsVersion::Tls13]
            .into_iter()
            .filter(|v| (self.min..=self.max).contains(v))
            .map(TlsVersion::rustls)
            .collect()
    }
}
