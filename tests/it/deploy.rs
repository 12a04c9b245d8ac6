//! The deployment artifacts as their own tools read them: the Kubernetes base in
//! `deploy/kubernetes/` rendered by `kubectl kustomize` and validated strictly against
//! Kubernetes' schemas by `kubernetes-validate` (PyPI), every pod restricted and sized;
//! and the container image built by `buildah` from the binary under test, with `check
//! --mock` run inside its root filesystem.
//!
//! `.ci/run` installs the tools (kubectl from Debian's `kubernetes-client` where there is
//! none, `kubernetes-validate` into a virtualenv on PATH, `buildah`). Without them, or
//! (for the image) without root, a test prints a note and passes, unless `CI` is set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_yaml::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A tool on PATH, or `None` with a note; a failure under CI. `how` says how to get it.
fn tool(name: &str, how: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{name} is not installed; CI needs it ({how})");
        eprintln!("note: skipping: {name} is not installed ({how})");
    }
    found
}

fn ran(what: &str, out: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    text
}

/// The two bases: monitoring, and the distributed load test.
const BASES: [&str; 2] = ["deploy/kubernetes", "deploy/kubernetes/load"];

/// A base as `kubectl kustomize` renders it: the YAML text and its objects.
fn render(base: &str) -> Option<(String, Vec<Value>)> {
    let kubectl = tool("kubectl", "apt-get install kubernetes-client")?;
    let out = Command::new(kubectl).args(["kustomize", &format!("{REPO}/{base}")]).output().unwrap();
    let text = ran(&format!("kubectl kustomize {base}"), &out);
    let objects = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("kustomize renders YAML"))
        .filter(|v| !v.is_null())
        .collect();
    Some((String::from_utf8(out.stdout).unwrap(), objects))
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

/// The pod template's spec of a workload, if it is one.
fn pod_spec(v: &Value) -> Option<&Value> {
    let spec = match kind(v) {
        "Deployment" | "Job" | "StatefulSet" | "DaemonSet" => &v["spec"]["template"]["spec"],
        "CronJob" => &v["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => return None,
    };
    Some(spec)
}

fn seq(v: &Value) -> &[Value] {
    v.as_sequence().map_or(&[], Vec::as_slice)
}

#[test]
fn the_kubernetes_bases_render_and_validate_strictly() {
    let Some(validate) = tool("kubernetes-validate", "pip install kubernetes-validate; .ci/run puts it on PATH") else {
        return;
    };
    let mut kinds = BTreeSet::new();
    for base in BASES {
        let Some((text, objects)) = render(base) else { return };
        validate_strictly(&validate, &text);
        kinds.extend(objects.iter().map(|o| format!("{}/{}", kind(o), name(o))));
    }
    for want in ["Deployment/nehr-probe", "Service/nehr-probe", "CronJob/nehr-probe-check", "Job/nehr-probe-load"] {
        assert!(kinds.contains(want), "{want} is not in {kinds:?}");
    }
}

fn validate_strictly(validate: &Path, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, text).unwrap();
    // The newest Kubernetes the validator knows, and an older one still in wide use.
    for version in [None, Some("1.29.0")] {
        let mut cmd = Command::new(validate);
        cmd.args(["--strict", "--quiet"]);
        if let Some(v) = version {
            cmd.args(["--kubernetes-version", v]);
        }
        let out = cmd.arg(&file).output().unwrap();
        let said = ran(&format!("kubernetes-validate --strict (Kubernetes {version:?})"), &out);
        assert!(!said.contains("did not validate") && !said.contains("ERROR"), "{said}");
    }
}

/// Kubernetes' "restricted" pod security, a named port for every probe, and resource
/// requests, in every workload of the base; the image is this crate's version.
#[test]
fn every_pod_of_the_bases_is_restricted_and_sized() {
    let mut objects = Vec::new();
    for base in BASES {
        let Some((_, found)) = render(base) else { return };
        objects.extend(found);
    }
    let image = format!("nehr-probe:{}", env!("CARGO_PKG_VERSION"));
    let mut pods = 0;
    for o in &objects {
        let Some(pod) = pod_spec(o) else { continue };
        pods += 1;
        let at = format!("{}/{}", kind(o), name(o));
        let sc = &pod["securityContext"];
        assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true), "{at}: runAsNonRoot");
        assert!(sc["runAsUser"].as_u64().is_some_and(|u| u > 0), "{at}: runAsUser");
        assert_eq!(sc["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"), "{at}: seccomp");
        assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false), "{at}: service account token");
        assert!(!seq(&pod["containers"]).is_empty(), "{at}: no container");
        for c in seq(&pod["containers"]) {
            let at = format!("{at} container {}", c["name"].as_str().unwrap_or("?"));
            assert_eq!(c["image"].as_str(), Some(image.as_str()), "{at}: image");
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false), "{at}: privilege escalation");
            assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{at}: read-only root");
            let drop: Vec<&str> = seq(&sc["capabilities"]["drop"]).iter().filter_map(Value::as_str).collect();
            assert_eq!(drop, ["ALL"], "{at}: capabilities");
            assert!(sc["capabilities"]["add"].is_null(), "{at}: adds capabilities");
            let res = &c["resources"];
            for key in ["cpu", "memory"] {
                assert!(res["requests"][key].as_str().is_some(), "{at}: no {key} request");
            }
            assert!(res["limits"]["memory"].as_str().is_some(), "{at}: no memory limit");
            // Every probe names a port the container declares, on /healthz.
            let ports: Vec<&str> = seq(&c["ports"]).iter().filter_map(|p| p["name"].as_str()).collect();
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                let get = &c[probe]["httpGet"];
                if get.is_null() {
                    continue;
                }
                assert_eq!(get["path"].as_str(), Some("/healthz"), "{at}: {probe} path");
                let port = get["port"].as_str().unwrap_or_default();
                assert!(ports.contains(&port), "{at}: {probe} port {port:?} not in {ports:?}");
            }
            // The password comes from a file, never an environment value or an argument.
            for e in seq(&c["env"]) {
                assert_ne!(e["name"].as_str(), Some("NEHR_PROBE_PASSWORD"), "{at}: password in the environment");
            }
        }
    }
    assert!(pods >= 3, "found {pods} workloads");
    let serve = objects.iter().find(|o| kind(o) == "Deployment").expect("the serve Deployment");
    let c = &seq(&pod_spec(serve).unwrap()["containers"])[0];
    assert!(!c["livenessProbe"].is_null() && !c["readinessProbe"].is_null(), "serve has no probes");
}

/// Whether this process runs as root (buildah's vfs storage and chroot need it).
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next()) == Some("0")
}

/// buildah with its own storage under `root`, so the test leaves nothing behind.
fn buildah(bin: &Path, root: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(root.join("storage")).arg("--runroot").arg(root.join("run"));
    cmd.args(["--storage-driver", "vfs"]).args(args);
    let out = cmd.output().unwrap();
    ran(&format!("buildah {}", args.join(" ")), &out).trim().to_string()
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.insert(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found
}

/// The image as CI builds it: `deploy/container/context.sh` from the binary this test
/// suite built, `buildah bud` of the Containerfile, then the image's root filesystem
/// mounted and `check --mock` run in it by chroot as the image's user: the binary, its
/// libraries and the user are all there, and nothing else is.
#[test]
fn the_image_builds_from_the_binary_and_checks_the_mock_inside() {
    let Some(bin) = tool("buildah", "apt-get install buildah") else { return };
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root; the image test needs it");
        eprintln!("note: skipping: building the image with buildah's vfs storage and chroot need root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("context");
    let out = Command::new(format!("{REPO}/deploy/container/context.sh"))
        .arg(env!("CARGO_BIN_EXE_nehr-probe"))
        .arg(&context)
        .output()
        .unwrap();
    ran("deploy/container/context.sh", &out);

    let root = dir.path();
    let tag = "localhost/nehr-probe:under-test";
    buildah(&bin, root, &["bud", "--quiet", "--tag", tag, context.to_str().unwrap()]);
    let container = buildah(&bin, root, &["from", tag]);
    let mounted = PathBuf::from(buildah(&bin, root, &["mount", &container]));
    let config =
        buildah(&bin, root, &["inspect", "--format", "{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}}", tag]);
    let size = buildah(&bin, root, &["images", "--format", "{{.Size}}", tag]);
    eprintln!("image {tag}: {size} (from {})", env!("CARGO_BIN_EXE_nehr-probe"));

    let files = files_under(&mounted);
    let libraries: Vec<&String> = files.iter().filter(|f| f.starts_with("lib") || f.starts_with("usr/lib")).collect();
    let others: BTreeSet<&str> = files.iter().filter(|f| !libraries.contains(f)).map(String::as_str).collect();
    assert_eq!(
        others,
        BTreeSet::from([
            "usr/local/bin/nehr-probe",
            "etc/passwd",
            "etc/group",
            "etc/nsswitch.conf",
            "etc/ssl/certs/ca-certificates.crt"
        ]),
        "the image holds more (or less) than the binary, its libraries, the CA bundle and the user"
    );
    assert!(libraries.iter().any(|l| l.contains("libc.so")), "no libc in {libraries:?}");
    assert!(libraries.iter().all(|l| l.contains(".so")), "not a library: {libraries:?}");
    let bundle = std::fs::read_to_string(mounted.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(bundle.matches("BEGIN CERTIFICATE").count() > 10, "the CA bundle is nearly empty");
    assert!(std::fs::read_to_string(mounted.join("etc/passwd")).unwrap().contains(":65532:65532:"));
    assert_eq!(config, "65532:65532 [/usr/local/bin/nehr-probe]");

    // The image's own binary, libraries and user, started as the image starts it.
    // coreutils' chroot lives in sbin, which a root PATH may lack.
    let chroot =
        ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"].map(PathBuf::from).into_iter().find(|p| p.is_file());
    let chroot = chroot.expect("chroot (coreutils) is installed");
    let out = Command::new(chroot)
        .arg("--userspec=65532:65532")
        .arg(&mounted)
        .args(["/usr/local/bin/nehr-probe", "check", "--mock"])
        .env_clear()
        .output()
        .unwrap();
    let said = ran("check --mock inside the image", &out);
    assert!(said.starts_with("NEHR-TOKEN OK - valid bearer token"), "{said}");

    buildah(&bin, root, &["umount", &container]);
    buildah(&bin, root, &["rm", &container]);
    buildah(&bin, root, &["rmi", tag]);
}

/// The Indexed Job's own arguments, run as its pods would run them but as local
/// processes against the mock: each gets its `JOB_COMPLETION_INDEX` and the
/// environment the manifest gives it (ConfigMap values as rendered), with the target
/// moved to the mock, the start a moment ahead, a short duration, and the metrics on a
/// loopback port. The pods' outputs, one stream as `kubectl logs` prints them, merge
/// into the whole schedule with no segment missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_jobs_arguments_run_as_its_pods_against_the_mock() {
    let Some((_, objects)) = render("deploy/kubernetes/load") else { return };
    let job = objects.iter().find(|o| kind(o) == "Job").expect("the load Job");
    let spec = &job["spec"];
    let n = spec["completions"].as_u64().expect("completions");
    assert_eq!(spec["parallelism"].as_u64(), Some(n), "parallelism = completions: every pod starts together");
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let container = &seq(&spec["template"]["spec"]["containers"])[0];
    let args: Vec<String> = seq(&container["args"]).iter().map(|a| a.as_str().unwrap().to_string()).collect();
    assert!(args.contains(&format!("--segment=$(JOB_COMPLETION_INDEX)/{n}")), "--segment /N must be {n}: {args:?}");

    // The environment as the pod gets it.
    let data = |map: &str, key: &str| -> String {
        let cm = objects.iter().find(|o| kind(o) == "ConfigMap" && name(o) == map).expect("the ConfigMap");
        cm["data"][key].as_str().unwrap_or_else(|| panic!("{map} has no {key}")).to_string()
    };
    let server = nehr_probe::mock::MockServer::start(&nehr_probe::mock::MockArgs::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{}\n", nehr_probe::call::target::EXAMPLE_PASSWORD)).unwrap();
    let start = crate::support::start_in(std::time::Duration::from_millis(1500));
    let mut env: Vec<(String, String)> = Vec::new();
    for e in seq(&container["env"]) {
        let key = e["name"].as_str().unwrap().to_string();
        let value = match (&e["value"], &e["valueFrom"]["configMapKeyRef"]) {
            (Value::String(v), _) => v.clone(),
            (_, r) if !r.is_null() => data(r["name"].as_str().unwrap(), r["key"].as_str().unwrap()),
            _ => String::new(), // fieldRef: set below
        };
        let value = match key.as_str() {
            "NEHR_PROBE_URL" => server.url(),
            "NEHR_PROBE_PASSWORD_FILE" => password.to_str().unwrap().to_string(),
            "NEHR_PROBE_START_AT" => start.clone(),
            "NEHR_PROBE_DURATION" => "2s".to_string(),
            _ => value,
        };
        env.push((key, value));
    }
    let rps: f64 = env.iter().find(|(k, _)| k == "NEHR_PROBE_RPS").expect("a rate").1.parse().unwrap();

    let pods: Vec<std::process::Child> = (0..n)
        .map(|i| {
            let mut env = env.clone();
            env.retain(|(k, _)| k != "JOB_COMPLETION_INDEX");
            env.push(("JOB_COMPLETION_INDEX".into(), i.to_string()));
            let expand = |arg: &str| {
                let mut arg = arg.to_string();
                for (k, v) in &env {
                    arg = arg.replace(&format!("$({k})"), v);
                }
                // Three local processes cannot share the pod's port; tests bind loopback.
                if arg.starts_with("--metrics-listen=") { "--metrics-listen=127.0.0.1:0".to_string() } else { arg }
            };
            let mut cmd = crate::support::nehr_probe();
            cmd.args(args.iter().map(|a| expand(a))).envs(env.iter().map(|(k, v)| (k, v)));
            cmd.spawn().expect("spawn a pod's command")
        })
        .collect();
    let runs: Vec<crate::support::Run> =
        tokio::task::spawn_blocking(move || pods.into_iter().map(crate::support::finish).collect()).await.unwrap();
    let mut logs = String::new();
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.code, Some(0), "pod {i}: {}", r.stderr);
        logs.push_str(&r.stderr);
        logs.push_str(&r.stdout);
    }
    let merged = crate::support::report_stdin(&logs, &["--format", "json"]);
    assert!(merged.stderr.is_empty(), "{}", merged.stderr);
    let merged = crate::support::json_of(&merged);
    assert_eq!(merged["requests"].as_f64(), Some(rps * 2.0), "{merged}");
    assert_eq!(merged["outcomes"]["ok"], merged["requests"]);
}
