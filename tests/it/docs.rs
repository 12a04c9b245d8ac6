//! The pages in `docs/` against the code they describe: every flag (with its default,
//! environment variable, short form and values), metric (with its type and labels), JSON
//! key, schema field, outcome and exit code that the code has is written there, and
//! every flag and metric the pages name exists. The facts come from the real code paths:
//! clap's command tree, the exporter's endpoints, the metrics of observed calls, a load
//! run and a check in-process, and the binary's exit codes; so a change on either side
//! that the other misses fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::CommandFactory;
use nehr_probe::call::validate::{ERROR_SCHEMA, TOKEN_SCHEMA, TokenFacts, Violation};
use nehr_probe::call::{Observation, Outcome, Prober};
use nehr_probe::check::{Limits, Status, Verdict, probe_once};
use nehr_probe::cli::{Cli, Command as Sub};
use nehr_probe::metrics::{Metrics, encode, register_build_info, unix_now};
use nehr_probe::mock::{MockArgs, MockServer};
use nehr_probe::serve::Exporter;
use nehr_probe::util::shutdown::Signal;
use serde_json::Value;

use crate::support::{load_against, run, target};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn page(name: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join("docs").join(name)).unwrap_or_else(|e| panic!("docs/{name}: {e}"))
}

/// The text under the `## ` heading that starts with `heading`, up to the next `## `.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .match_indices("\n## ")
        .map(|(i, _)| i + 1)
        .find(|&i| text[i + 3..].starts_with(heading))
        .unwrap_or_else(|| panic!("no section \"## {heading}\""));
    let body = &text[start..];
    let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 4);
    &body[..end]
}

/// The cells of each table row (a line starting with `|`), trimmed; `\|` stays in its cell.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| {
            let l = l.replace("\\|", "\u{0}");
            l.trim().trim_matches('|').split('|').map(|c| c.trim().replace('\u{0}', "\\|")).collect()
        })
        .collect()
}

/// The row whose first cell is exactly `` `name` ``.
fn named_row(text: &str, name: &str) -> Option<Vec<String>> {
    let want = format!("`{name}`");
    rows(text).into_iter().find(|r| r[0] == want)
}

/// The row whose first cell names `--long` (followed by a space, a comma or a backtick).
fn flag_row(text: &str, long: &str) -> Option<String> {
    let flag = format!("--{long}");
    rows(text)
        .into_iter()
        .find(|r| r[0].match_indices(&flag).any(|(i, _)| r[0][i + flag.len()..].starts_with([' ', ',', '`'])))
        .map(|r| r.join(" | "))
}

/// `word` in `text`, not as part of a longer word.
fn has_word(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| !text[..i].ends_with(part) && !text[i + word.len()..].starts_with(part))
}

#[test]
fn commands_md_has_every_flag_with_its_default_environment_and_values() {
    let text = page("commands.md");
    let shared = section(&text, "Target options");
    let mut wrong = Vec::new();
    for command in Cli::command().get_subcommands() {
        let name = command.get_name();
        let own = section(&text, &format!("`{name}`"));
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            let is_target = arg.get_help_heading() == Some("Target");
            let Some(row) = flag_row(own, long).or_else(|| is_target.then(|| flag_row(shared, long)).flatten()) else {
                wrong.push(format!("{name} --{long}: no row"));
                continue;
            };
            let mut want: Vec<String> = Vec::new();
            if let Some(short) = arg.get_short() {
                want.push(format!("`-{short}, --{long}"));
            }
            if let Some(env) = arg.get_env() {
                want.push(format!("`{}`", env.to_string_lossy()));
            }
            if arg.get_action().takes_values() {
                want.extend(arg.get_default_values().iter().map(|d| format!("`{}`", d.to_string_lossy())));
            }
            for w in want {
                if !row.contains(&w) {
                    wrong.push(format!("{name} --{long}: no {w} in {row:?}"));
                }
            }
            for value in arg.get_possible_values().iter().filter(|v| !v.is_hide_set()) {
                if arg.get_action().takes_values() && !has_word(&row, value.get_name()) {
                    wrong.push(format!("{name} --{long}: value {} not in {row:?}", value.get_name()));
                }
            }
        }
        // And no flag documented for this command that it does not have.
        for row in rows(own).iter().chain(if name == "check" { rows(shared) } else { Vec::new() }.iter()) {
            let Some(i) = row[0].find("--") else { continue };
            let long: String = row[0][i + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            if !row[0].starts_with('`') || long.is_empty() {
                continue;
            }
            if !command.get_arguments().any(|a| a.get_long() == Some(long.as_str())) {
                wrong.push(format!("{name}: docs name --{long}, which it does not have"));
            }
        }
    }
    assert!(wrong.is_empty(), "docs/commands.md is out of step with the code:\n{}", wrong.join("\n"));
}

#[test]
fn exit_codes_md_says_what_the_binary_does() {
    let text = page("exit-codes.md");
    let mut wrong = Vec::new();
    for command in Cli::command().get_subcommands() {
        let name = command.get_name();
        let Some(row) = named_row(&text, name) else {
            wrong.push(format!("no row for {name}"));
            continue;
        };
        let r = run(&[name, "--no-such-flag"], &[]);
        let code = r.code.expect("exits with a code") as usize;
        if !row.get(code + 1).is_some_and(|cell| cell.contains("usage")) {
            wrong.push(format!("{name} exits {code} on a usage error; its row says {row:?}"));
        }
    }
    let check = named_row(&text, "check").expect("a row for check");
    for status in [Status::Ok, Status::Warning, Status::Critical, Status::Unknown] {
        let cell = &check[status as usize + 1];
        if !cell.starts_with(status.as_str()) {
            wrong.push(format!("check exits {} for {}; the row says {cell:?}", status as u8, status.as_str()));
        }
    }
    // The codes of a cut-short load (the signal test in load.rs runs the binary).
    let header = &rows(&text)[0];
    let load = named_row(&text, "load").expect("a row for load");
    for (signal, name) in [(Signal::Interrupt, "SIGINT"), (Signal::Terminate, "SIGTERM")] {
        let column = header.iter().position(|h| h == &signal.exit_code().to_string());
        if !column.is_some_and(|c| load[c].contains(name)) {
            wrong.push(format!("load exits {} after {name}; its row says {load:?}", signal.exit_code()));
        }
    }
    assert!(wrong.is_empty(), "docs/exit-codes.md is out of step with the code:\n{}", wrong.join("\n"));
}

#[test]
fn outcomes_md_lists_the_ten_once_and_in_report_order() {
    let text = page("outcomes.md");
    let decided = section(&text, "Decided in this order");
    let listed: Vec<String> = rows(decided).into_iter().skip(1).map(|r| r[1].trim_matches('`').to_string()).collect();
    let mut names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    names.sort();
    assert_eq!(sorted, names, "the decision table of docs/outcomes.md");
    let report_order: Vec<String> = Outcome::ALL.iter().map(|o| format!("`{o}`")).collect();
    assert!(text.contains(&report_order.join(", ")), "docs/outcomes.md should list {report_order:?} in report order");
}

/// Every property of a schema as a JSON Pointer, with whether it is required.
fn pointers(schema: &Value, at: &str, out: &mut Vec<(String, bool)>) {
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for (name, sub) in schema["properties"].as_object().into_iter().flatten() {
        let pointer = format!("{at}/{name}");
        out.push((pointer.clone(), required.contains(&name.as_str())));
        pointers(sub, &pointer, out);
    }
}

#[test]
fn validation_md_states_every_field_of_the_shipped_schemas() {
    let text = page("validation.md");
    let rules = section(&text, "The rules of the built-in schema");
    let mut token = Vec::new();
    pointers(&serde_json::from_str(TOKEN_SCHEMA).unwrap(), "", &mut token);
    let mut wrong = Vec::new();
    for (pointer, required) in &token {
        match named_row(rules, pointer) {
            None => wrong.push(format!("no row for {pointer}")),
            Some(row) if row[1].starts_with(if *required { "required" } else { "optional" }) => {}
            Some(row) => wrong.push(format!("{pointer} is required: {required}; its row says {row:?}")),
        }
    }
    for row in rows(rules).iter().filter(|r| r[0].starts_with("`/")) {
        if !token.iter().any(|(p, _)| row[0] == format!("`{p}`")) {
            wrong.push(format!("{} is not in the schema", row[0]));
        }
    }
    let mut error = Vec::new();
    pointers(&serde_json::from_str(ERROR_SCHEMA).unwrap(), "", &mut error);
    for (pointer, _) in &error {
        if !text.contains(&format!("`{pointer}`")) {
            wrong.push(format!("the error schema's {pointer} is not named"));
        }
    }
    assert!(wrong.is_empty(), "docs/validation.md is out of step with the schemas:\n{}", wrong.join("\n"));
}

/// Every object key in `v`, not descending into `data_keyed` objects (keyed by data,
/// such as status codes), and the keys of those missing from `text` in backticks.
fn missing_keys(text: &str, v: &Value, data_keyed: &[&str]) -> Vec<String> {
    fn walk(v: &Value, data_keyed: &[&str], out: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, sub) in map {
                    out.insert(k.clone());
                    if !data_keyed.contains(&k.as_str()) {
                        walk(sub, data_keyed, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, data_keyed, out)),
            _ => {}
        }
    }
    let mut all = BTreeSet::new();
    walk(v, data_keyed, &mut all);
    all.into_iter().filter(|k| !text.contains(&format!("`{k}`"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_md_names_every_key_of_a_load_report_and_a_check() {
    let text = page("json.md");
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start(&MockArgs::default()).await.unwrap();

    let load = load_against(&server, dir.path(), &["--rps", "100", "-n", "20", "--threshold", "p99<10s"]).await;
    let report: Value = serde_json::from_str(&load.report.json()).unwrap();
    let section_text = section(&text, "Load report");
    let mut missing = missing_keys(section_text, &report, &["http_status", "violations"]);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(REPO).join("schemas/load-report.schema.json")).unwrap(),
    )
    .unwrap();
    let fields = schema["properties"].as_object().unwrap().keys();
    missing.extend(fields.filter(|k| !section_text.contains(&format!("`{k}`"))).map(|k| format!("{k} (schema)")));

    let mut t = target(&server.url(), Duration::from_secs(5));
    t.credentials = vec![nehr_probe::call::target::example_credential()];
    let limits = Limits::latency(Duration::from_millis(500), Duration::from_secs(2), Duration::from_secs(5));
    let verdict = probe_once(&Prober::new(&t).unwrap(), limits).await;
    assert_eq!(verdict.observation.outcome, Outcome::Ok, "{:?}", verdict.observation);
    // Over https the certificate's time left is added; a violation shows its fields.
    let mut obs = verdict.observation;
    obs.cert_not_after = Some(unix_now() as i64 + 86_400);
    (obs.tls_version, obs.tls_cipher) = (Some("TLS 1.3"), Some("TLS_AES_256_GCM_SHA384"));
    obs.violations.push(Violation { path: "/code".into(), message: "expected integer".into() });
    let check = Verdict::judge(obs, limits).json();
    missing.extend(missing_keys(section(&text, "`check --format json`"), &check, &[]));

    let stats = serde_json::to_value(server.stats()).unwrap();
    missing.extend(missing_keys(section(&text, "Mock"), &stats, &[]));
    assert!(missing.is_empty(), "not in docs/json.md: {missing:?}");
}

/// The families of an exposition: name -> (type, label names but `le`).
fn families(exposition: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            out.insert(name.to_string(), (kind.to_string(), BTreeSet::new()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let sample = line.split([' ', '{']).next().unwrap();
            let family = ["", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| sample.strip_suffix(suffix).filter(|f| out.contains_key(*f)))
                .unwrap_or_else(|| panic!("sample {sample} of no family"));
            let labels = line.split_once('{').map_or("", |(_, l)| l.split('}').next().unwrap());
            let names = labels.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, _)| k.trim().to_string());
            out.get_mut(family).unwrap().1.extend(names.filter(|k| k != "le"));
        }
    }
    out
}

/// The metric names the source registers: string literals, outside unit tests, that are
/// exactly a `nehr_probe_…` or `probe_…` name. Finds the series only some answers make
/// (over https, for instance), which the runs above may not show.
fn names_in_source(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            names_in_source(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let code = source.split("#[cfg(test)]").next().unwrap();
        for prefix in ["\"nehr_probe_", "\"probe_"] {
            for (i, _) in code.match_indices(prefix) {
                let name: String = code[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if code[i + 1 + name.len()..].starts_with('"') {
                    out.insert(name);
                }
            }
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> String {
    let r = client.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_md_names_every_series_with_its_type_and_labels_and_no_other() {
    let text = page("metrics.md");
    let argv = ["nehr-probe", "serve", "--mock", "--listen", "127.0.0.1:0", "--interval", "1h"];
    let Sub::Serve(args) = <Cli as clap::Parser>::try_parse_from(argv).unwrap().command else { unreachable!() };
    let exporter = Exporter::start(&args, Arc::new(|_: &str| {})).await.unwrap();
    let base = format!("http://{}", exporter.addr());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let probe = get(&client, &format!("{base}/probe")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut served = get(&client, &format!("{base}/metrics")).await;
    while !served.contains("nehr_probe_success{target=\"default\"} 1") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        served = get(&client, &format!("{base}/metrics")).await;
    }
    exporter.stop().await;

    // The series of one target after calls of every kind that makes a series appear: a
    // valid token over https, and an invalid body.
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry, "default").unwrap();
    register_build_info(&registry).unwrap();
    let t = Instant::now();
    let mut ok = Observation::new(0, t, t, t + Duration::from_millis(3), Some(200), Outcome::Ok);
    ok.token = Some(TokenFacts { token_type: Some("bearer".into()), expires_in: Some(86399), scope: None });
    ok.cert_not_after = Some(unix_now() as i64 + 86_400);
    (ok.tls_version, ok.tls_cipher) = (Some("TLS 1.3"), Some("TLS_AES_256_GCM_SHA384"));
    let mut bad = Observation::new(1, t, t, t + Duration::from_millis(3), Some(200), Outcome::InvalidBody);
    bad.violations.push(Violation { path: "/result/expires_in".into(), message: "must be > 0".into() });
    metrics.observe(&ok);
    metrics.observe(&bad);
    let observed = encode(&registry);
    // `load`'s own series beside them.
    let load_registry = prometheus::Registry::new();
    nehr_probe::load::live::register_dropped(&load_registry, "default").unwrap();
    nehr_probe::load::live::register_late_starts(&load_registry, "default").unwrap();
    let load_series = encode(&load_registry);

    let (process, mut target_series): (Vec<_>, Vec<_>) =
        families(&served).into_iter().partition(|(name, _)| name.starts_with("process_"));
    target_series.extend(families(&observed));
    target_series.extend(families(&load_series));
    let mut wrong = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (heading, series) in [
        ("Target series", target_series),
        ("Process series", process),
        ("`/probe`", families(&probe).into_iter().collect()),
    ] {
        let table = section(&text, heading);
        for (name, (kind, labels)) in series {
            seen.insert(name.clone());
            let Some(row) = named_row(table, &name) else {
                wrong.insert(format!("{heading}: no row for {name}"));
                continue;
            };
            if row[1] != kind {
                wrong.insert(format!("{name} is a {kind}; its row says {}", row[1]));
            }
            let documented: BTreeSet<String> =
                row[2].split(',').map(|l| l.trim().trim_matches('`').to_string()).filter(|l| !l.is_empty()).collect();
            if documented != labels {
                wrong.insert(format!("{name} has labels {labels:?}; its row says {documented:?}"));
            }
        }
    }
    let mut registered = BTreeSet::new();
    names_in_source(&Path::new(REPO).join("src"), &mut registered);
    assert!(registered.contains("probe_ssl_earliest_cert_expiry"), "the source scan finds names: {registered:?}");
    for name in &registered {
        if !text.contains(&format!("| `{name}` |")) {
            wrong.insert(format!("{name} is registered in src/ but has no row"));
        }
    }
    for row in rows(&text).iter().filter(|r| r.len() == 4 && r[0].starts_with('`') && r[1] != "type") {
        let name = row[0].trim_matches('`');
        let elsewhere = name.starts_with("process_") && !cfg!(target_os = "linux");
        if !seen.contains(name) && !registered.contains(name) && !elsewhere {
            wrong.insert(format!("{name} is documented but nothing exposes it"));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/metrics.md is out of step with the code:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// The README and every page of `docs/`, with their paths relative to the repository.
fn markdown_files() -> Vec<String> {
    let mut files = vec!["README.md".to_string()];
    let mut pages: Vec<String> = std::fs::read_dir(Path::new(REPO).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
}

/// The lines of a markdown text outside fenced code blocks, numbered from 1, inline code
/// spans emptied (so a `[x](y)` shown as code is not taken for a link, while a link
/// whose text is code still is one).
fn prose(text: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            let mut kept = String::new();
            for (i, part) in line.split('`').enumerate() {
                if i % 2 == 0 {
                    kept.push_str(part);
                }
            }
            lines.push((n + 1, kept));
        }
    }
    lines
}

/// The anchors GitHub gives the headings of a markdown text: each heading lowercased,
/// every character but letters, digits, spaces, `-` and `_` dropped, spaces made `-`;
/// a heading seen before gets `-1`, `-2`, ….
fn heading_slugs(text: &str) -> BTreeSet<String> {
    let mut slugs = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let Some(title) = line.strip_prefix('#').filter(|_| !fenced) else { continue };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        for n in 1.. {
            if !slugs.contains(&unique) {
                break;
            }
            unique = format!("{slug}-{n}");
        }
        slugs.insert(unique);
    }
    slugs
}

/// The targets of the inline links and images (`[text](target)`) of a line.
fn link_targets(line: &str) -> Vec<String> {
    line.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &line[i + 2..];
            let end = rest.find(')')?;
            Some(rest[..end].split_whitespace().next().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn heading_slugs_follow_github() {
    let slugs = heading_slugs(
        "# A\n## `check --format json`\n### Cron: `--textfile` and `--push`\n## A\n```\n# not a heading\n```\n#nope\n",
    );
    let want = ["a", "a-1", "check---format-json", "cron---textfile-and---push"];
    assert_eq!(slugs, want.iter().map(|s| s.to_string()).collect());
}

/// Every relative link of the README and of `docs/` leads to a file that exists, and
/// one into a markdown file with `#anchor` to a heading of it: pages moved or headings
/// renamed cannot leave a dead link behind.
#[test]
fn every_relative_link_of_the_readme_and_the_docs_resolves() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(Path::new(REPO).join(&file)).unwrap();
        let dir = Path::new(&file).parent().unwrap();
        for (n, line) in prose(&text) {
            for target in link_targets(&line) {
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = target.split_once('#').map_or((target.as_str(), None), |(p, a)| (p, Some(a)));
                let linked = if path.is_empty() { Path::new(&file).to_path_buf() } else { dir.join(path) };
                let on_disk = Path::new(REPO).join(&linked);
                if !on_disk.exists() {
                    wrong.push(format!("{file}:{n}: `{target}`: no file {}", linked.display()));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                if on_disk.extension().is_some_and(|e| e == "md") {
                    let slugs = heading_slugs(&std::fs::read_to_string(&on_disk).unwrap());
                    if !slugs.contains(anchor) {
                        wrong.push(format!("{file}:{n}: `{target}`: no heading #{anchor} in {}", linked.display()));
                    }
                } else {
                    wrong.push(format!("{file}:{n}: `{target}`: an anchor into a file that is not markdown"));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} links found: does the link scan still work?");
    assert!(wrong.is_empty(), "dead links:\n{}", wrong.join("\n"));
}

/// The README is the guide, not the manual: what it once repeated lives in `docs/`.
#[test]
fn the_readme_is_a_guide_of_at_most_250_lines() {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines; move reference material to docs/");
}

/// The README's first code block is the first screen: the load on the embedded mock,
/// and the test command, the very one `.ci/run` runs (with `--locked`).
#[test]
fn the_readme_opens_with_the_mock_load_and_the_test_command_ci_runs() {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let start = readme.find("```sh\n").expect("a sh block") + 6;
    let first: Vec<&str> = readme[start..][..readme[start..].find("```").unwrap()]
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert!(readme[..start].lines().count() <= 20, "the first commands are not on the first screen");
    assert!(first.iter().any(|l| l.starts_with("cargo run --release -- load --mock ")), "{first:?}");
    let ci = std::fs::read_to_string(Path::new(REPO).join(".ci/run")).unwrap();
    let after = ci.split_once("# The README's test command:\n").expect(".ci/run names the README's test command").1;
    let ci_command = after.lines().next().unwrap().replace(" --locked", "");
    assert!(first.contains(&ci_command.as_str()), "`.ci/run` runs `{ci_command}`, the README says {first:?}");
}
