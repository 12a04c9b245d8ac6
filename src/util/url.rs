//! The rules every URL given to nehr-probe meets, whatever it names (the login, the
//! Pushgateway): http or https, a host, and no credentials, which would end up in
//! errors, logs and process lists. The raw text is echoed only when it holds no `@`.

use url::Url;

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// `user:pass@host`: said without echoing the URL.
    Credentials,
    /// Anything else, in words.
    Bad(String),
}

/// `raw` parsed, when it meets the rules.
pub fn http_url(raw: &str) -> Result<Url, UrlError> {
    let url = Url::parse(raw)
        .map_err(|e| if raw.contains('@') { UrlError::Credentials } else { UrlError::Bad(e.to_string()) })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(UrlError::Bad("only http:// and https:// URLs are supported".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::Bad("no host".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_schemes_and_hosts() {
        assert!(http_url("https://127.0.0.1:8443/nehrapi/login/getToken").is_ok());
        assert_eq!(http_url("http://u:hunter2@127.0.0.1/"), Err(UrlError::Credentials));
        assert_eq!(http_url("http://u:hunter2@[bad/"), Err(UrlError::Credentials));
        assert!(matches!(http_url("ftp://127.0.0.1/"), Err(UrlError::Bad(w)) if w.contains("only http")));
        assert!(matches!(http_url("127.0.0.1:9091"), Err(UrlError::Bad(_))));
    }
}
