//! A certificate the probe refuses is told in words, with what would fix it: rustls
//! printed some as Debug text ("invalid peer certificate: Other(OtherError(
//! CaUsedAsEndEntity))") and dates in UNIX seconds. Each class gets a certificate made
//! here with the openssl command line (a test CA, leaves it issues with chosen dates,
//! names and keys), served by tls.rs's TLS server on 127.0.0.1, and the reason is
//! checked where a user reads it: `check`'s Nagios line and the call's observation,
//! which `load`'s and `serve`'s reports are built from.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nehr_probe::call::Outcome;

use crate::support::{call_target, check, target};
use crate::tls::tls_server;

/// Runs openssl in `dir`; false (with a note) when there is none, never under CI.
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> bool {
    match Command::new("openssl").current_dir(dir).args(args).stdout(Stdio::null()).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) if std::env::var_os("CI").is_some() => panic!("openssl is needed to make test certificates"),
        Err(_) => false,
    }
}

pub(crate) const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// A self-signed CA certificate named `name`: `NAME.pem` and `NAME.key` in `dir`.
pub(crate) fn make_ca(dir: &Path, name: &str) -> bool {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let args = [&["req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=nehr-probe test CA"][..], &EC[..]].concat();
    let ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"];
    openssl(dir, &[&args[..], &ext, &["-keyout", &key, "-out", &pem]].concat())
}

/// A leaf `NAME.pem`/`NAME.key` for `san`, valid from `start` to `end` (openssl's
/// `YYYYMMDDHHMMSSZ`), issued by the CA `ca` (its `.pem` and `.key`).
pub(crate) fn make_leaf(dir: &Path, name: &str, ca: &str, san: &str, (start, end): (&str, &str)) -> bool {
    let (pem, key, csr) = (format!("{name}.pem"), format!("{name}.key"), format!("{name}.csr"));
    let request =
        [&["req", "-new", "-nodes", "-subj", "/CN=nehr-probe test leaf", "-keyout", &key, "-out", &csr][..], &EC]
            .concat();
    if !openssl(dir, &request) {
        return false;
    }
    let db = dir.join(format!("{name}.db"));
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("index.txt"), "").unwrap();
    let config = format!(
        "[ca]\ndefault_ca = test\n[test]\ndatabase = {db}/index.txt\nnew_certs_dir = {db}\nrand_serial = yes\n\
         default_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n\
         [leaf]\nbasicConstraints = critical,CA:FALSE\nsubjectAltName = {san}\n",
        db = db.display()
    );
    std::fs::write(dir.join(format!("{name}.cnf")), config).unwrap();
    let (ca_pem, ca_key, cnf) = (format!("{ca}.pem"), format!("{ca}.key"), format!("{name}.cnf"));
    openssl(
        dir,
        &["ca", "-batch", "-notext", "-config", &cnf, "-extensions", "leaf", "-cert", &ca_pem, "-keyfile", &ca_key]
            .iter()
            .chain(&["-in", &csr, "-out", &pem, "-startdate", start, "-enddate", end])
            .copied()
            .collect::<Vec<_>>(),
    )
}

/// Now to two days from now, in openssl's form.
pub(crate) fn valid_now() -> (String, String) {
    let stamp = |t: std::time::SystemTime| {
        let s = humantime::format_rfc3339_seconds(t).to_string();
        s.replace(['-', ':', 'T'], "")
    };
    let now = std::time::SystemTime::now();
    (stamp(now - Duration::from_secs(3600)), stamp(now + Duration::from_secs(2 * 86_400)))
}

/// Every certificate of the tests, made in `dir`; false where there is no openssl.
fn make_all(dir: &Path) -> bool {
    let (start, end) = valid_now();
    let ip = "IP:127.0.0.1";
    make_ca(dir, "ca")
        && make_ca(dir, "impostor")
        && make_leaf(dir, "good", "ca", ip, (&start, &end))
        && make_leaf(dir, "expired", "ca", ip, ("20200101000000Z", "20200201000000Z"))
        && make_leaf(dir, "future", "ca", ip, ("20990101000000Z", "20990201000000Z"))
        && make_leaf(dir, "elsewhere", "ca", "DNS:other.test,DNS:www.other.test", (&start, &end))
        // Issued under the trusted CA's name by another key.
        && make_leaf(dir, "forged", "impostor", ip, (&start, &end))
        && openssl(
            dir,
            &[&["req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=nehr-probe self-signed"][..], &EC[..]]
                .concat()
                .iter()
                .chain(&["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
                .chain(&["-keyout", "self.key", "-out", "self.pem"])
                .copied()
                .collect::<Vec<_>>(),
        )
}

/// What a call and a `check` say of the server presenting certificate `name`, with
/// the test CA trusted or not.
async fn refused(dir: &Path, name: &str, trust_ca: bool) -> (String, String) {
    let read = |file: String| std::fs::read(dir.join(file)).unwrap();
    let server = tls_server(&read(format!("{name}.pem")), &read(format!("{name}.key"))).await;
    let url = format!("https://{}/nehrapi/login/getToken", server.addr);
    let ca: PathBuf = dir.join("ca.pem");
    let mut t = target(&url, Duration::from_secs(5));
    if trust_ca {
        t.ca_cert = Some(std::fs::read(&ca).unwrap());
    }
    let obs = call_target(&t).await;
    assert_eq!(obs.outcome, Outcome::ConnectError, "{name}: {obs:?}");
    let detail = obs.detail.expect("a connect error has a reason");
    let flags: Vec<String> = if trust_ca { vec!["--ca-cert".into(), ca.display().to_string()] } else { Vec::new() };
    let run = tokio::task::spawn_blocking(move || check(&url, &flags.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap();
    assert_eq!(run.code, Some(2), "{name}: {run:?}");
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    (detail, run.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_certificate_is_told_in_words_with_what_would_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    if !make_all(dir.path()) {
        eprintln!("skipped: no openssl to make test certificates");
        return;
    }
    let trust = "with --ca-cert FILE, or skip the check with --insecure (test systems only)";
    let cases: [(&str, bool, &[&str]); 7] = [
        (
            "self",
            false,
            &["the server's certificate (CN=nehr-probe self-signed) is self-signed: trust it (its PEM) ", trust],
        ),
        (
            "good",
            false,
            &["is issued by CN=nehr-probe test CA, a CA this machine does not trust", "trust that CA", trust],
        ),
        (
            "expired",
            true,
            &[
                "the server's certificate expired on 2020-02-01 00:00:00 UTC: the server needs a new one",
                "--insecure skips",
            ],
        ),
        ("future", true, &["is not valid before 2099-01-01 00:00:00 UTC: is this machine's clock right?"]),
        (
            "elsewhere",
            true,
            &["the server's certificate is for other.test, www.other.test, not 127.0.0.1", "--resolve NAME:PORT:ADDR"],
        ),
        ("ca", true, &["the server presents a CA certificate (CN=nehr-probe test CA) as its own"]),
        ("forged", true, &["does not carry a valid signature of its issuer CN=nehr-probe test CA"]),
    ];
    for (name, trust_ca, words) in cases {
        let (detail, line) = refused(dir.path(), name, trust_ca).await;
        for want in words {
            assert!(detail.contains(want), "{name}: want {want:?} in {detail}");
            assert!(line.contains(want), "{name}: want {want:?} in the Nagios line {line}");
        }
        assert!(detail.starts_with("TLS handshake with 127.0.0.1 failed: the server"), "{name}: {detail}");
        assert!(!detail.contains("Other(") && !detail.contains("(UNIX)"), "{name}: Debug text: {detail}");
        assert!(
            line.starts_with("NEHR-TOKEN CRITICAL - connect_error: TLS handshake with 127.0.0.1 failed: "),
            "{line}"
        );
    }
    // The good leaf, its CA trusted, is fine: the words above are the certificates'.
    let read = |file: &str| std::fs::read(dir.path().join(file)).unwrap();
    let server = tls_server(&read("good.pem"), &read("good.key")).await;
    let mut t = target(&format!("https://{}/nehrapi/login/getToken", server.addr), Duration::from_secs(5));
    t.ca_cert = Some(read("ca.pem"));
    assert_eq!(call_target(&t).await.outcome, Outcome::Ok);
}

/// An https URL for a server speaking plain http (which answers a ClientHello with a
/// 400, as nginx does): say so, not "received corrupt message of type InvalidContentType".
#[tokio::test]
async fn https_to_a_plain_http_server_says_it_does_not_speak_tls() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let Ok((mut stream, _)) = listener.accept() else { return };
        let _ = stream.read(&mut [0u8; 4096]);
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    let obs = call_target(&target(&format!("https://{addr}/nehrapi/login/getToken"), Duration::from_secs(5))).await;
    assert_eq!(obs.outcome, Outcome::ConnectError, "{obs:?}");
    let detail = obs.detail.unwrap();
    let want = "the server did not answer in TLS: does it speak plain http on this port? (then use an http:// URL)";
    assert!(detail.ends_with(want), "{detail}");
}
