//! Who may talk to the exporter, under the `--web-config` in force: the TLS config for
//! new connections, basic auth on every request, the headers added to every answer,
//! and the refusal of request bodies (no endpoint takes one). The file is read again
//! when it or a certificate it names changes, as exporter-toolkit does; a bad new file
//! keeps the config in force and says why in the log.
//!
//! It must never turn TLS on or off while running (that takes a restart), never run
//! more than one bcrypt check at a time (a flood of wrong passwords would take every
//! core), and never log a password or a hash.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::Log;
use super::web_config::WebConfigError;
use super::web_load::{Loaded, load};

/// How often the files are looked at for a change, at most.
const RECHECK: Duration = Duration::from_secs(1);
/// Credentials that passed bcrypt are remembered (as a SHA-256) so each scrape does not
/// pay a bcrypt check; the set is emptied when it reaches this size.
const MAX_REMEMBERED: usize = 1024;

/// The web config in force and what it takes to check requests against it.
pub struct Access {
    path: Option<PathBuf>,
    log: Log,
    current: RwLock<Arc<Loaded>>,
    /// When the files were last looked at, and what they looked like then.
    seen: Mutex<(Instant, Vec<Stamp>)>,
    remembered: Mutex<HashSet<[u8; 32]>>,
    bcrypt: Semaphore,
}

/// What a file looked like: its length and modification time, or absent.
type Stamp = Option<(u64, SystemTime)>;

fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).ok().map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH))))
        .collect()
}

impl Access {
    /// Loads `--web-config` (none: plain http, no authentication) and logs its notes.
    pub fn load(path: Option<&Path>, log: Log) -> Result<Arc<Access>, WebConfigError> {
        let loaded = match path {
            Some(p) => load(p)?,
            None => Loaded { config: Default::default(), tls: None, files: Vec::new() },
        };
        for note in &loaded.config.notes {
            log(&format!("--web-config: {note}"));
        }
        let seen = (Instant::now(), stamps(&loaded.files));
        Ok(Arc::new(Access {
            path: path.map(Path::to_path_buf),
            log,
            current: RwLock::new(Arc::new(loaded)),
            seen: Mutex::new(seen),
            remembered: Mutex::new(HashSet::new()),
            bcrypt: Semaphore::new(1),
        }))
    }

    /// The config in force, read again first if a file changed since the last look
    /// (looked at no more than once a second).
    pub fn current(&self) -> Arc<Loaded> {
        self.refresh(false);
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reads the files again now if they changed (SIGHUP).
    pub fn reload_now(&self) {
        self.refresh(true);
    }

    /// True when connections are TLS: decided at start, for the life of the process.
    pub fn tls_on(&self) -> bool {
        self.current.read().unwrap_or_else(|p| p.into_inner()).tls.is_some()
    }

    fn refresh(&self, now: bool) {
        let Some(path) = &self.path else { return };
        let files = self.current.read().unwrap_or_else(|p| p.into_inner()).files.clone();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if !now && seen.0.elapsed() < RECHECK {
                return;
            }
            seen.0 = Instant::now();
            let fresh = stamps(&files);
            if fresh == seen.1 {
                return;
            }
            // Remember the new look even if the file is bad: one log line per change.
            seen.1 = fresh;
        }
        let was_tls = self.tls_on();
        match load(path) {
            Ok(loaded) if loaded.tls.is_some() != was_tls => {
                (self.log)(&format!(
                    "--web-config {} changed: it turns TLS {}, which takes a restart; keeping the config in force",
                    path.display(),
                    if was_tls { "off" } else { "on" }
                ));
            }
            Ok(loaded) => {
                for note in &loaded.config.notes {
                    (self.log)(&format!("--web-config: {note}"));
                }
                let stamped = stamps(&loaded.files);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
                self.seen.lock().unwrap_or_else(|p| p.into_inner()).1 = stamped;
                self.remembered.lock().unwrap_or_else(|p| p.into_inner()).clear();
                (self.log)(&format!("--web-config {} read again", path.display()));
            }
            Err(e) => (self.log)(&format!("{e:#}; keeping the config in force")),
        }
    }

    /// Whether the request's credentials are those of a configured user (always, when
    /// no users are configured).
    pub async fn allows(&self, headers: &HeaderMap) -> bool {
        let loaded = self.current();
        let users = &loaded.config.users;
        if users.is_empty() {
            return true;
        }
        let Some((user, password)) = basic_credentials(headers) else { return false };
        let hash = users.get(&user).map(|h| h.as_str().to_string());
        let key = {
            let mut h = Sha256::new();
            for part in [user.as_bytes(), password.as_bytes(), hash.as_deref().unwrap_or("").as_bytes()] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part);
            }
            <[u8; 32]>::from(h.finalize())
        };
        if hash.is_some() && self.remembered.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            return true;
        }
        let Ok(_permit) = self.bcrypt.acquire().await else { return false };
        // An unknown user costs one check too, so timing does not tell which users exist.
        let known = hash.is_some();
        let check = move || bcrypt::verify(password, hash.as_deref().unwrap_or_else(|| dummy_hash())).unwrap_or(false);
        let ok = tokio::task::spawn_blocking(check).await.unwrap_or(false) && known;
        if ok {
            let mut remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
            if remembered.len() >= MAX_REMEMBERED {
                remembered.clear();
            }
            remembered.insert(key);
        }
        ok
    }
}

/// A hash of cost 10 that no password is checked against for real.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash("nehr-probe: no such user", 10).unwrap_or_default())
}

/// `Authorization: Basic base64(user:password)`, split at the first colon (RFC 7617).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The middleware in front of every route: no request bodies, basic auth, the
/// configured headers on every answer (refusals included).
pub async fn guard(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    let loaded = access.current();
    let mut response = if has_body(request.headers()) {
        let mut r = (StatusCode::PAYLOAD_TOO_LARGE, "no endpoint here takes a request body\n").into_response();
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    } else if !access.allows(request.headers()).await {
        let mut r = (StatusCode::UNAUTHORIZED, "401 Unauthorized: give a user and password of the web config\n")
            .into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"nehr-probe\""));
        r
    } else {
        next.run(request).await
    };
    for (name, value) in &loaded.config.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).map(str::trim);
    headers.contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|l| l != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn basic(user_pass: &str) -> HeaderMap {
        auth(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass)))
    }

    #[test]
    fn credentials_are_split_at_the_first_colon() {
        assert_eq!(basic_credentials(&basic("alice:pa:ss")), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(basic_credentials(&basic("alice:")), Some(("alice".into(), String::new())));
        assert_eq!(basic_credentials(&basic("nocolon")), None);
        assert_eq!(basic_credentials(&auth("Bearer abc")), None);
        assert_eq!(basic_credentials(&auth("Basic !!!")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn bodies_are_spotted() {
        let mut h = HeaderMap::new();
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        assert!(!has_body(&h));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert!(has_body(&h));
        let mut h = HeaderMap::new();
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert!(has_body(&h));
    }

    #[tokio::test]
    async fn users_and_passwords_are_checked_and_a_change_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        let hash = bcrypt::hash("secret", 4).unwrap();
        std::fs::write(&path, format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&lines);
        let log: Log = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
        let access = Access::load(Some(&path), log).unwrap();
        assert!(access.allows(&basic("alice:secret")).await);
        assert!(access.allows(&basic("alice:secret")).await, "remembered");
        assert!(!access.allows(&basic("alice:wrong")).await);
        assert!(!access.allows(&basic("bob:secret")).await);
        assert!(!access.allows(&HeaderMap::new()).await);

        let hash = bcrypt::hash("other", 4).unwrap();
        std::fs::write(&path, format!("basic_auth_users:\n  alice: '{hash}'\n  bob: '{hash}'\n")).unwrap();
        access.reload_now();
        assert!(!access.allows(&basic("alice:secret")).await, "the old password no longer works");
        assert!(access.allows(&basic("bob:other")).await);

        std::fs::write(&path, "basic_auth_users:\n  bob: plain-password\n").unwrap();
        access.reload_now();
        assert!(access.allows(&basic("bob:other")).await, "a bad file keeps the config in force");
        let text = lines.lock().unwrap().join("\n");
        assert!(text.contains("read again") && text.contains("not a bcrypt hash; make one"), "{text}");
        assert!(text.contains("keeping the config in force"), "{text}");
        assert!(!text.contains("plain-password") && !text.contains("$2b$"), "{text}");
    }
}
