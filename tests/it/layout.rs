//! The source tree keeps the shape ARCHITECTURE.md describes: dependencies point down
//! its code map (a room may use the rooms below it, never one above or beside it), no
//! two source files import each other, directly or in a circle, and no file grows past
//! 700 lines.
//! The graph is read from the `crate::` and `super::` paths of each file's code, its
//! tests included; a path names the deepest file its leading segments reach.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 700;

/// ARCHITECTURE.md's code map, top down: the rooms (a top-level file or folder of
/// `src/`) of each floor. The crate root is a room of the top floor like any other, so
/// a command that calls back up into `lib.rs` is an arrow running up.
const FLOORS: &[&[&str]] = &[
    &["lib.rs", "main.rs", "cli.rs"],
    &["load", "check", "serve"],
    &["report"],
    &["mock"],
    &["metrics.rs"],
    &["call"],
    &["util", "testing.rs"],
];

/// The room a file of `src/` is in and the floor of that room.
fn room_of(src: &Path, file: &Path) -> (String, usize) {
    let rel = file.strip_prefix(src).unwrap();
    let room = rel.iter().next().unwrap().to_string_lossy().into_owned();
    let floor = FLOORS
        .iter()
        .position(|rooms| rooms.contains(&room.as_str()))
        .unwrap_or_else(|| panic!("src/{room} is on no floor of FLOORS: add it where ARCHITECTURE.md puts it"));
    (room, floor)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/call/probe.rs` is `["call", "probe"]`,
/// `src/call/mod.rs` and `src/lib.rs` end at their folder.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The code of a file without its comments (a doc link is not an import). Test modules
/// count: a test that reaches up ties the file to the room above as much as its code.
fn code(text: &str) -> String {
    let strip = |t: &str| t.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    // Inside a file's own `mod tests`, `super` is the file itself, not its parent.
    match ["#[cfg(test)]\nmod tests", "#[cfg(test)]\npub(crate) mod tests"].iter().filter_map(|m| text.find(m)).min() {
        Some(end) => strip(&text[..end]) + "\n" + &strip(&text[end..]).replace("super::", "self::"),
        None => strip(text),
    }
}

/// The paths a piece of code names: `crate::a::b`, `super::c`, and the names inside
/// `use crate::a::{b, c::d}` groups, each as module segments.
fn named_paths(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let text = code;
    for (start, prefix) in text
        .match_indices("crate::")
        .map(|(i, _)| (i, "crate"))
        .chain(text.match_indices("super::").map(|(i, _)| (i, "super")))
    {
        // Not part of a longer word (e.g. `nehr_probe::`).
        if start > 0 && text[..start].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let base: Vec<String> =
            if prefix == "crate" { Vec::new() } else { here[..here.len().saturating_sub(1)].to_vec() };
        let rest = &text[start + prefix.len() + 2..];
        let tail: String = rest
            .chars()
            .take_while(|c| {
                c.is_alphanumeric()
                    || *c == '_'
                    || *c == ':'
                    || *c == '{'
                    || *c == '}'
                    || *c == ','
                    || c.is_whitespace()
            })
            .collect();
        expand(&base, &tail, &mut out);
    }
    out
}

/// `a::b::{c, d::e}` from `base` into full paths.
fn expand(base: &[String], tail: &str, out: &mut Vec<Vec<String>>) {
    let tail = tail.trim();
    let (head, group) = match tail.find('{') {
        Some(i) => (&tail[..i], Some(&tail[i + 1..])),
        None => (tail, None),
    };
    let mut path = base.to_vec();
    for seg in head.split("::").map(str::trim).filter(|s| !s.is_empty()) {
        let word: String = seg.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if word.is_empty() {
            break;
        }
        path.push(word);
    }
    out.push(path.clone());
    if let Some(group) = group {
        // Split the group at top-level commas, up to its closing brace.
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&path, &item, out);
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        if !item.trim().is_empty() {
            expand(&path, &item, out);
        }
    }
}

/// The file a module path lands in: the deepest of its prefixes that is a file.
fn file_of(files: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<PathBuf> {
    (0..=path.len()).rev().find_map(|n| files.get(&path[..n]).cloned())
}

#[test]
fn no_source_file_imports_itself_through_others_and_none_is_too_long() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    sources(&src, &mut all);
    let files: BTreeMap<Vec<String>, PathBuf> =
        all.iter().filter(|f| !f.ends_with("main.rs")).map(|f| (module_of(&src, f), f.clone())).collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut long = Vec::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).unwrap();
        if text.lines().count() > MAX_LINES {
            long.push(format!("{} ({} lines)", file.display(), text.lines().count()));
        }
        let deps = edges.entry(file.clone()).or_default();
        let here = if file.ends_with("mod.rs") || file.ends_with("lib.rs") {
            // In a folder's mod.rs, `super` is the parent folder: treat it as a child.
            let mut m = module.clone();
            m.push("mod".into());
            m
        } else {
            module.clone()
        };
        for path in named_paths(&code(&text), &here) {
            if let Some(to) = file_of(&files, &path)
                && &to != file
            {
                deps.insert(to);
            }
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines: split them by concern: {long:?}");

    let mut upward = Vec::new();
    for (from, tos) in &edges {
        let (from_room, from_floor) = room_of(&src, from);
        for to in tos {
            let (to_room, to_floor) = room_of(&src, to);
            if to_room != from_room && to_floor <= from_floor {
                let name = |p: &Path| p.strip_prefix(&src).unwrap().display().to_string();
                upward.push(format!("{} -> {}", name(from), name(to)));
            }
        }
    }
    assert!(upward.is_empty(), "imports that run up or sideways in ARCHITECTURE.md's code map: {upward:?}");

    // Depth-first search for a cycle.
    fn visit(
        node: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            let names: Vec<String> =
                cycle.iter().map(|p| p.strip_prefix(&src).unwrap().display().to_string()).collect();
            panic!("import cycle: {}", names.join(" -> "));
        }
    }
    // The graph was read at all: the call path is known to depend on validation.
    let probe = &edges[&src.join("call/probe.rs")];
    assert!(probe.contains(&src.join("call/validate.rs")), "{probe:?}");
}
