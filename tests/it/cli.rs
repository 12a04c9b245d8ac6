//! Bad command lines: each gets the documented exit code (3, UNKNOWN, for `check`; 2
//! for the other commands) and one clear line on stderr, never a panic or a backtrace.
//! Good ones: every example command of the README parses, and those on the mock run.

use std::collections::{BTreeMap, BTreeSet};

use clap::error::ErrorKind;

use crate::support::{PASSWORD, Run, USERNAME, assert_one_clear_error, assert_unknown_line, finish, nehr_probe, run};

const URL: &str = "http://127.0.0.1:9/nehrapi/login/getToken";

fn check_with(extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    run(&args, env)
}

fn assert_unknown(r: &Run, needle: &str) {
    assert_unknown_line(r);
    assert!(r.stderr.contains(needle), "want {needle:?} in: {}", r.stderr);
}

const WITH_PASSWORD: &[(&str, &str)] = &[("NEHR_PROBE_PASSWORD", PASSWORD)];

#[test]
fn check_unknown_flag_is_unknown_3() {
    let r = check_with(&["--mock", "--bogus"], &[]);
    assert_unknown(&r, "--bogus");
}

#[test]
fn check_password_flag_does_not_exist() {
    let r = check_with(&["--url", URL, "--username", USERNAME, "--password", "hunter2"], &[]);
    assert_unknown(&r, "--password");
}

#[test]
fn check_bad_duration_says_what_is_expected() {
    for flag in ["--timeout", "--warning", "--critical"] {
        let r = check_with(&["--mock", flag, "ten"], &[]);
        assert_unknown(&r, "expected e.g.");
    }
}

#[test]
fn check_bad_format_is_unknown() {
    let r = check_with(&["--mock", "--format", "xml"], &[]);
    assert_unknown(&r, "xml");
}

#[test]
fn check_bad_max_body_is_unknown() {
    let r = check_with(&["--mock", "--max-body", "lots"], &[]);
    assert_unknown(&r, "expected e.g.");
}

#[test]
fn check_missing_password_is_unknown() {
    let r = check_with(&["--url", URL, "--username", USERNAME], &[]);
    assert_unknown(&r, "missing password");
    assert!(r.stderr.contains("--password-file"), "says how to fix it: {}", r.stderr);
}

#[test]
fn check_missing_url_is_unknown_and_suggests_mock() {
    let r = check_with(&["--username", USERNAME], WITH_PASSWORD);
    assert_unknown(&r, "--mock");
}

#[test]
fn check_missing_username_is_unknown() {
    let r = check_with(&["--url", URL], WITH_PASSWORD);
    assert_unknown(&r, "--username");
}

#[test]
fn check_bad_url_scheme_is_unknown() {
    let r = check_with(&["--url", "ftp://127.0.0.1/nehrapi/login/getToken", "--username", USERNAME], WITH_PASSWORD);
    assert_unknown(&r, "only http:// and https://");
}

#[test]
fn check_url_that_is_not_a_url_is_unknown() {
    let r = check_with(&["--url", "not a url", "--username", USERNAME], WITH_PASSWORD);
    assert_unknown(&r, "expected e.g.");
}

#[test]
fn check_unreadable_password_file_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file");
    let r = check_with(&["--url", URL, "--username", USERNAME, "--password-file", missing.to_str().unwrap()], &[]);
    assert_unknown(&r, "cannot read password file");
    // The OS's reason once: it used to be printed twice, by the message and the chain.
    assert_eq!(r.stderr.matches("No such file or directory").count(), 1, "{}", r.stderr);
    // A directory cannot be read as a file either.
    let r = check_with(&["--url", URL, "--username", USERNAME, "--password-file", dir.path().to_str().unwrap()], &[]);
    assert_unknown(&r, "cannot read password file");
}

#[test]
fn check_empty_password_file_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "\n").unwrap();
    let r = check_with(&["--url", URL, "--username", USERNAME, "--password-file", file.to_str().unwrap()], &[]);
    assert_unknown(&r, "is empty");
}

#[test]
fn check_warning_above_critical_is_unknown() {
    let r = check_with(&["--mock", "-w", "3s", "-c", "1s"], &[]);
    assert_unknown(&r, "--warning");
}

#[test]
fn check_zero_timeout_is_unknown() {
    let r = check_with(&["--mock", "--timeout", "0"], &[]);
    assert_unknown(&r, "--timeout");
}

#[test]
fn check_unreadable_ca_cert_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let r = check_with(&["--mock", "--ca-cert", not_pem.to_str().unwrap()], &[]);
    assert_unknown(&r, "--ca-cert");
}

#[test]
fn mock_unknown_flag_exits_2() {
    let r = run(&["mock", "--bogus"], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_one_clear_error(&r);
}

#[test]
fn mock_bad_latency_exits_2() {
    let r = run(&["mock", "--latency", "fast"], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_one_clear_error(&r);
    assert!(r.stderr.contains("expected 20ms"), "{}", r.stderr);
}

#[test]
fn unknown_command_exits_2() {
    let r = run(&["frobnicate"], &[]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert_one_clear_error(&r);
}

#[test]
fn help_and_version_exit_0() {
    let r = run(&["check", "--help"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("--password-file") && !r.stdout.contains("--password "), "{}", r.stdout);
    let r = run(&["--version"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.starts_with("nehr-probe "), "{}", r.stdout);
}

#[test]
fn schema_prints_the_shipped_schema() {
    let r = run(&["schema"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let schema: serde_json::Value = serde_json::from_str(&r.stdout).expect("schema is JSON");
    assert_eq!(schema["title"], "NEHR getToken answer (HTTP 200)");
}

/// The README's example commands: each line of a ```sh or ```console block that runs
/// `nehr-probe` or `cargo run … --` (in a console block, what follows the `$ ` prompt;
/// continued lines joined), as the words of nehr-probe's command line, with the number
/// of the block it is in, whether the shell would run it in the background (`&`) and
/// whether a `wait` comes before it.
fn readme_examples() -> Vec<Example> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut examples = Vec::new();
    let (mut block, mut kind, mut pending, mut waited) = (0, None, String::new(), false);
    for line in readme.lines() {
        if let Some(info) = line.strip_prefix("```") {
            kind = if kind.is_some() { None } else { Some(info.trim().to_string()) };
            block += 1;
            waited = false;
            continue;
        }
        let line = match kind.as_deref() {
            Some("sh") => line,
            Some("console") => match line.strip_prefix("$ ") {
                Some(command) => command,
                None => continue,
            },
            _ => continue,
        };
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        let line = std::mem::take(&mut pending) + line;
        let words = shell_words(&line);
        let args = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["nehr-probe", ..] => words[1..].to_vec(),
            ["cargo", "run", ..] => match words.iter().position(|w| w == "--") {
                Some(at) => words[at + 1..].to_vec(),
                None => panic!("README: `cargo run` without `--` before nehr-probe's arguments: {line}"),
            },
            ["wait"] => {
                waited = true;
                continue;
            }
            _ => continue,
        };
        let background = line.trim_end().ends_with('&') && !line.trim_end().ends_with("&&");
        let after_wait = std::mem::take(&mut waited);
        examples.push(Example { line, block, args, background, after_wait });
    }
    examples
}

#[derive(Debug)]
struct Example {
    line: String,
    block: usize,
    args: Vec<String>,
    background: bool,
    after_wait: bool,
}

/// The words of one shell command, split as sh splits them: single and double quotes
/// and backslashes honoured, up to a comment or whatever ends a simple command (`|`,
/// `&`, `;`, a redirection).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_default();
                w.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_default();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_default().extend(chars.next()),
            '#' if word.is_none() => break,
            '|' | '&' | ';' | '<' | '>' => {
                // `2>file`: the digits name a descriptor, not a word.
                word = word.filter(|w| !(c == '>' && w.chars().all(|d| d.is_ascii_digit())));
                break;
            }
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

#[test]
fn shell_words_split_as_sh_does() {
    assert_eq!(shell_words("nehr-probe load --mock # a comment"), ["nehr-probe", "load", "--mock"]);
    assert_eq!(
        shell_words("a --threshold 'p99<5ms' \"x y\" b\\ c | jq ."),
        ["a", "--threshold", "p99<5ms", "x y", "b c"]
    );
    assert_eq!(shell_words("a --out x.json & wait"), ["a", "--out", "x.json"]);
    assert_eq!(shell_words("a > out.json"), ["a"]);
    assert_eq!(shell_words("a 2>/dev/null"), ["a"]);
    assert_eq!(shell_words("a#b"), ["a#b"]);
}

/// Every example command of the README parses as written, so a renamed flag or a
/// changed value syntax cannot leave the tour behind. The README's examples run as
/// written: none holds a placeholder or a shell variable.
#[test]
fn every_example_command_of_the_readme_parses() {
    use clap::Parser;
    let examples = readme_examples();
    assert!(examples.len() >= 10, "too few examples found; is the README's layout as this test expects? {examples:#?}");
    let commands: BTreeSet<&str> = examples.iter().filter_map(|e| e.args.first().map(String::as_str)).collect();
    for command in ["load", "report", "check", "serve", "mock", "schema"] {
        assert!(commands.contains(command), "the README's tour has no example of `{command}`");
    }
    let mut wrong = Vec::new();
    for e in &examples {
        if e.args.iter().any(|w| w.contains('$')) {
            wrong.push(format!("{}\n  a placeholder or shell variable: examples must run as written", e.line));
            continue;
        }
        let argv = std::iter::once("nehr-probe").chain(e.args.iter().map(String::as_str));
        match nehr_probe::cli::Cli::try_parse_from(argv) {
            Ok(_) => {}
            Err(err) if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {}
            Err(err) => wrong.push(format!("{}\n  {}", e.line, err.to_string().lines().next().unwrap_or(""))),
        }
    }
    assert!(wrong.is_empty(), "README examples that do not parse:\n{}", wrong.join("\n"));
}

/// The README's `load`, `check`, `report` and `schema` examples that need nothing but
/// the embedded mock run for real, each block in a directory of its own and its lines in
/// order (`&` in the background, until a `wait`), as a reader would paste them: `load` shortened to
/// half a second (`--duration`, each of `--stages`, `--requests` at most 500), so the
/// test takes a few seconds. Thresholds may fail on a crowded machine (exit 1); what
/// must never happen is a usage or start-up error (2, or 3 for `check`) or a panic.
#[test]
fn the_readme_examples_on_the_mock_run_shortened() {
    let examples = readme_examples();
    let mut blocks: BTreeMap<usize, Vec<&Example>> = BTreeMap::new();
    for e in &examples {
        let runs = match e.args.first().map(String::as_str) {
            Some("load" | "check") => e.args.iter().any(|a| a == "--mock"),
            Some("report" | "schema") => true,
            _ => false,
        };
        if runs {
            blocks.entry(e.block).or_default().push(e);
        }
    }
    assert!(blocks.values().flatten().filter(|e| e.args[0] == "load").count() >= 3, "{blocks:#?}");
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = blocks.values().map(|block| scope.spawn(|| run_block(block))).collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "README examples that failed:\n{}", failures.join("\n"));
}

/// Runs one block's examples in a fresh directory; what went wrong, if anything.
fn run_block(block: &[&Example]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut background = Vec::new();
    let mut failures = Vec::new();
    let mut judge = |e: &Example, r: Run| {
        let usage = if e.args[0] == "check" { 3 } else { 2 };
        if r.code.is_none_or(|c| c >= usage) || r.stderr.contains("panicked") {
            failures.push(format!("{}\n  {r:?}", e.line));
        }
    };
    for e in block {
        if e.after_wait {
            for (e, child) in background.drain(..) {
                judge(e, finish(child));
            }
        }
        let args = shortened(&e.args);
        let child = nehr_probe().current_dir(dir.path()).args(&args).spawn().expect("spawn nehr-probe");
        if e.background {
            background.push((e, child));
        } else {
            judge(e, finish(child));
        }
    }
    for (e, child) in background {
        judge(e, finish(child));
    }
    failures
}

/// A `load` example's arguments with its run cut to about half a second.
fn shortened(args: &[String]) -> Vec<String> {
    let mut out = args.to_vec();
    for i in 1..out.len() {
        let value = &out[i];
        out[i] = match out[i - 1].as_str() {
            "-d" | "--duration" => "500ms".to_string(),
            "-n" | "--requests" => value.parse::<u64>().map_or(value.clone(), |n| n.min(500).to_string()),
            "--stages" => value
                .split(',')
                .map(|s| format!("200ms:{}", s.split_once(':').map_or(s, |(_, r)| r)))
                .collect::<Vec<_>>()
                .join(","),
            "--warmup" => "0".to_string(),
            _ => continue,
        };
    }
    out
}
