//! The workspace's modules form no import cycles: within each library crate, no two sibling
//! modules (children of the same parent, e.g. `curate::mix` and `curate::report`, or
//! `classifiers::model` and `classifiers::fasttext`) reach each other, directly or through
//! other siblings. A child using its parent (`super::Thing`) and a parent using its child are
//! the normal shape of a module tree and do not count; test-only modules are left out.
//!
//! It reads the `crate::` and `super::` paths of every file (use lines, use groups and paths
//! written inline), so a cycle fails here with the lines that close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Library crates of the workspace: their `src/` folders.
const CRATES: &[&str] = &[
    "src",
    "stages/src",
    "classifiers/src",
    "benches/src",
    "testkit/src",
];

type ModPath = Vec<String>;

/// Where a module's file is, and whether its parent declares it test-only.
struct Module {
    file: PathBuf,
    test_only: bool,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The modules of a crate, by path, from its files (`a/b.rs` and `a/b/mod.rs` are `a::b`).
fn modules(src: &Path) -> BTreeMap<ModPath, Module> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let mut segs: ModPath = rel
                .iter()
                .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if segs
                .last()
                .is_some_and(|s| s == "mod" || s == "lib" || s == "main")
            {
                segs.pop();
            }
            if rel == Path::new("main.rs") {
                continue; // a binary root, not part of the library's tree
            }
            out.insert(
                segs,
                Module {
                    file: p,
                    test_only: false,
                },
            );
        }
    }
    // A module is test-only when its parent declares it after `#[cfg(test)]`.
    let keys: Vec<ModPath> = out.keys().cloned().collect();
    for k in keys {
        let Some((name, parent)) = k.split_last() else {
            continue;
        };
        let Some(pm) = out.get(parent) else { continue };
        let text = std::fs::read_to_string(&pm.file).unwrap_or_default();
        let decl = [format!("mod {name};"), format!("pub(crate) mod {name};")];
        let test_only = text.lines().collect::<Vec<_>>().windows(2).any(|w| {
            w[0].trim() == "#[cfg(test)]" && decl.iter().any(|d| w[1].trim().ends_with(d.as_str()))
        });
        let parent_test = out[parent].test_only;
        out.get_mut(&k).unwrap().test_only = test_only || parent_test;
    }
    // Descendants of test-only modules are test-only (parents sort before children).
    let test: Vec<ModPath> = out
        .iter()
        .filter(|(_, m)| m.test_only)
        .map(|(k, _)| k.clone())
        .collect();
    for (k, m) in out.iter_mut() {
        if test.iter().any(|t| k.starts_with(t)) {
            m.test_only = true;
        }
    }
    out
}

/// Source text with comments, string and char literals blanked (newlines kept, so byte
/// offsets still give line numbers), and `#[cfg(test)]` items (inline test modules) removed.
fn code_only(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or(0);
        if c == b'/' && next == b'/' {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && next == b'*' {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r' && (next == b'"' || next == b'#') && !ident_byte(prev(&out)) {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            while b.get(j) == Some(&b'#') {
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            let mut end = j + 1;
            while end < b.len() {
                if b[end] == b'"'
                    && b[end + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == b'#')
                        .count()
                        == hashes
                {
                    end += 1 + hashes;
                    break;
                }
                end += 1;
            }
            for &x in &b[i..end.min(b.len())] {
                blank(&mut out, x);
            }
            i = end;
        } else if c == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(b' ');
            i += 1;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}', or one multi-byte char); else a lifetime.
            let close = if next == b'\\' {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else {
                let len = s[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 1 + len)
            };
            match close {
                Some(e) => {
                    for &x in &b[i..=e] {
                        blank(&mut out, x);
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    let mut s = String::from_utf8(out).unwrap_or_default();
    // Drop `#[cfg(test)]` items: the attribute up to the end of the item's braces or `;`.
    while let Some(at) = s.find("#[cfg(test)]") {
        let rest = &s[at..];
        let brace = rest.find('{');
        let semi = rest.find(';');
        let end = match (brace, semi) {
            (Some(b), Some(sc)) if sc < b => at + sc + 1,
            (Some(b), _) => {
                let mut depth = 0;
                let mut end = s.len();
                for (k, ch) in s[at + b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = at + b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, Some(sc)) => at + sc + 1,
            (None, None) => s.len(),
        };
        let blanked: String = s[at..end]
            .chars()
            .map(|ch| if ch == '\n' { '\n' } else { ' ' })
            .collect();
        s.replace_range(at..end, &blanked);
    }
    s
}

fn prev(out: &[u8]) -> u8 {
    out.last().copied().unwrap_or(b' ')
}

fn ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Tokens: identifiers, `::`, and single punctuation bytes, with their byte offsets.
fn tokens(s: &str) -> Vec<(usize, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if ident_byte(b[i]) {
            let st = i;
            while i < b.len() && ident_byte(b[i]) {
                i += 1;
            }
            out.push((st, &s[st..i]));
        } else if b[i] == b':' && b.get(i + 1) == Some(&b':') {
            out.push((i, "::"));
            i += 2;
        } else if b[i].is_ascii_whitespace() || !b[i].is_ascii() {
            i += 1;
        } else {
            out.push((i, &s[i..i + 1]));
            i += 1;
        }
    }
    out
}

/// Expands the path tree starting at `toks[i]` (`a::b::{c, d::e}`) into full paths, and
/// returns where it ends.
fn path_tree(
    toks: &[(usize, &str)],
    mut i: usize,
    prefix: &[String],
    out: &mut Vec<ModPath>,
) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(i).map(|t| t.1) {
            Some("{") => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| t.1) {
                        Some("}") => return i + 1,
                        Some(",") => i += 1,
                        None => return i,
                        _ => i = path_tree(toks, i, &path, out),
                    }
                }
            }
            Some(t) if ident_byte(t.as_bytes()[0]) => {
                path.push(t.to_string());
                i += 1;
                if toks.get(i).map(|t| t.1) == Some("::") {
                    i += 1;
                    continue;
                }
                out.push(path);
                return i;
            }
            _ => {
                out.push(path);
                return i;
            }
        }
    }
}

/// Edges between sibling modules: (parent, from child, to child) -> the lines that make it.
type Edges = BTreeMap<(ModPath, String, String), BTreeSet<String>>;

fn edges(krate: &str, src: &Path, mods: &BTreeMap<ModPath, Module>) -> Edges {
    let mut out = Edges::new();
    for (here, m) in mods.iter().filter(|(_, m)| !m.test_only) {
        let text = code_only(&std::fs::read_to_string(&m.file).unwrap());
        let toks = tokens(&text);
        let mut i = 0;
        while i < toks.len() {
            let t = toks[i].1;
            let starts = (t == "crate" || t == "super")
                && toks.get(i + 1).map(|t| t.1) == Some("::")
                && (i == 0 || toks[i - 1].1 != "::");
            if !starts {
                i += 1;
                continue;
            }
            let line = text[..toks[i].0].matches('\n').count() + 1;
            let mut paths = Vec::new();
            let end = path_tree(&toks, i, &[], &mut paths);
            i = end.max(i + 1);
            for p in paths {
                // Resolve `crate` / `super` to an absolute module path.
                let mut abs: ModPath = Vec::new();
                let mut segs = p.iter().peekable();
                match segs.peek().map(|s| s.as_str()) {
                    Some("crate") => {
                        segs.next();
                    }
                    Some("super") => {
                        abs = here.clone();
                        while segs.peek().is_some_and(|s| *s == "super") {
                            segs.next();
                            abs.pop();
                        }
                    }
                    _ => continue,
                }
                abs.extend(segs.cloned());
                // The longest prefix that is a module.
                while !abs.is_empty() && !mods.contains_key(&abs) {
                    abs.pop();
                }
                let common = here.iter().zip(&abs).take_while(|(a, b)| a == b).count();
                if common < here.len() && common < abs.len() {
                    out.entry((
                        here[..common].to_vec(),
                        here[common].clone(),
                        abs[common].clone(),
                    ))
                    .or_default()
                    .insert(format!(
                        "{krate}/{}:{line}",
                        m.file.strip_prefix(src).unwrap_or(&m.file).display()
                    ));
                }
            }
        }
    }
    out
}

/// Strongly connected components of more than one node (Tarjan).
fn cycles(nodes: &BTreeSet<String>, adj: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        adj: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T, v: &str) {
        let n = t.index.len();
        t.index.insert(v.to_string(), n);
        t.low.insert(v.to_string(), n);
        t.stack.push(v.to_string());
        t.on.insert(v.to_string());
        for w in t.adj.get(v).cloned().unwrap_or_default() {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        adj,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in nodes {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// All sibling-module cycles of the workspace, described with the lines that make them.
fn workspace_cycles() -> Vec<String> {
    let mut found = Vec::new();
    for krate in CRATES {
        let src = workspace().join(krate);
        let mods = modules(&src);
        let e = edges(krate, &src, &mods);
        let parents: BTreeSet<&ModPath> = e.keys().map(|k| &k.0).collect();
        for parent in parents {
            let mut adj: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut nodes = BTreeSet::new();
            for (p, a, b) in e.keys().filter(|k| &k.0 == parent) {
                adj.entry(a.clone()).or_default().insert(b.clone());
                nodes.insert(a.clone());
                nodes.insert(b.clone());
                let _ = p;
            }
            for comp in cycles(&nodes, &adj) {
                let mut msg = format!(
                    "{krate}: cycle among {}::{{{}}}:",
                    parent.join("::"),
                    comp.join(", ")
                );
                for ((p, a, b), lines) in &e {
                    if p == parent && comp.contains(a) && comp.contains(b) {
                        let l: Vec<&String> = lines.iter().take(3).collect();
                        msg.push_str(&format!("\n  {a} -> {b}: {l:?}"));
                    }
                }
                found.push(msg);
            }
        }
    }
    found
}

#[test]
fn no_sibling_modules_import_each_other() {
    let found = workspace_cycles();
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

/// The checker itself sees a cycle written the three ways paths appear (a use group, a
/// `super::` path, an inline `crate::` path) and ignores test code and comments.
#[test]
fn the_checker_finds_a_planted_cycle() {
    let dir = std::env::temp_dir().join(format!("curate-cycles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).unwrap();
    let w = |p: &str, s: &str| std::fs::write(dir.join(p), s).unwrap();
    w("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    w(
        "a/mod.rs",
        "pub mod x;\nuse crate::{b::{self, B}, c};\n// crate::c::C in a comment\n",
    );
    w(
        "a/x.rs",
        "use super::super::c::C; fn f() { let s = \"crate::b\"; }\n",
    );
    w("b.rs", "fn f() -> crate::c::C { todo!() }\n");
    w(
        "c.rs",
        "pub struct C;\n#[cfg(test)]\nmod tests { use crate::a::x; }\n",
    );
    let mods = modules(&dir);
    let e = edges("t", &dir, &mods);
    let pairs: BTreeSet<(String, String)> =
        e.keys().map(|(_, a, b)| (a.clone(), b.clone())).collect();
    let want: BTreeSet<(String, String)> = [("a", "b"), ("a", "c"), ("b", "c")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(pairs, want);
    let nodes = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let mut adj: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in &pairs {
        adj.entry(a.clone()).or_default().insert(b.clone());
    }
    assert!(cycles(&nodes, &adj).is_empty());
    adj.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycles(&nodes, &adj), vec![vec!["a", "b", "c"]]);
    let _ = std::fs::remove_dir_all(&dir);
}
