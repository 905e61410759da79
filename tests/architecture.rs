//! The layering of `src/`, checked (docs/architecture.md, "Tiers"):
//!
//! - every `use crate::…`, `super::…` and inline `crate::x::…` path is
//!   resolved to the file that defines the item (following `use`
//!   re-exports of `mod.rs` files), giving a graph of file → file edges;
//! - no edge may go from a module to one ranked above it in [`RANKS`];
//! - no cycle may join files of different top-level modules, and no cycle
//!   may join two files of one module without its `mod.rs` (a `mod.rs`
//!   that defines the module's error and calls its children is the usual
//!   Rust shape, not a cycle worth breaking).
//!
//! `#[cfg(test)] mod tests { … }` blocks are left out: a unit test may
//! reach anywhere. Runs without root and without the ferry binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its rank: a module may import
/// modules of its own rank or below, never above. Mirrors the tiers of
/// docs/architecture.md: commands → engine (build → launch → container →
/// the rest → network) → leaves.
const RANKS: &[(&str, u8)] = &[
    // commands: arguments in, one call, output out.
    ("cli", 7),
    ("commands", 7),
    ("logger", 7),
    // engine, top to bottom.
    ("build", 6),
    ("launch", 5),
    ("container", 4),
    ("process", 3),
    ("rootfs", 3),
    ("cgroups", 3),
    ("seccomp", 3),
    ("hooks", 3),
    ("image", 3),
    ("config", 3),
    ("namespaces", 3),
    ("capabilities", 3),
    ("lsm", 3),
    // user-mode networking: below container, imports only leaves.
    ("network", 2),
    // leaves: import nothing above them.
    ("syscall", 1),
    ("fs", 1),
    ("signals", 1),
    ("tty", 1),
    ("userns", 1),
    ("path_lookup", 1),
    ("timefmt", 1),
];

/// Tier names for messages.
fn tier(rank: u8) -> &'static str {
    match rank {
        7 => "commands",
        2..=6 => "engine",
        _ => "leaves",
    }
}

/// A file of `src/`: its module path (`["process", "init"]`) and text.
struct SrcFile {
    module: Vec<String>,
    text: String,
}

/// Everything one file declares or imports by name.
#[derive(Default)]
struct Names {
    /// Items defined here (fn, struct, enum, trait, type, const, static,
    /// macro, inline mod).
    defined: BTreeSet<String>,
    /// `use` bindings: local name → absolute path.
    imported: HashMap<String, Vec<String>>,
    /// `use path::*` targets, absolute.
    globs: Vec<Vec<String>>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/` but `main.rs` (a separate crate).
fn load_files() -> Vec<SrcFile> {
    let mut out = Vec::new();
    let mut stack = vec![src_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src_dir()).unwrap();
                if rel == Path::new("main.rs") {
                    continue;
                }
                out.push(SrcFile {
                    module: module_path(rel),
                    text: strip(&std::fs::read_to_string(&path).unwrap()),
                });
            }
        }
    }
    out.sort_by(|a, b| a.module.cmp(&b.module));
    out
}

/// `lib.rs` → `[]`, `x.rs` and `x/mod.rs` → `[x]`, `x/y.rs` → `[x, y]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The text without comments, string literals and `#[cfg(test)]` modules.
fn strip(text: &str) -> String {
    let no_tests = drop_test_modules(text);
    let mut out = String::with_capacity(no_tests.len());
    let b = no_tests.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = no_tests[i + 2..]
                    .find("*/")
                    .map_or(b.len(), |e| i + 2 + e + 2);
                i = end;
            }
            b'r' if raw_string_at(b, i).is_some() => {
                i = raw_string_at(b, i).unwrap();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') => {
                // A character literal such as '"' or '{'.
                i += 3;
                out.push_str("' '");
            }
            b'\'' if b.get(i + 1) == Some(&b'\\') => {
                // An escaped character literal such as '\'' or '\n'.
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// Where the raw string literal (`r"…"`, `r#"…"#`) starting at `i` ends,
/// if one starts there.
fn raw_string_at(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        return None;
    }
    let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
    if b.get(i + 1 + hashes) != Some(&b'"') {
        return None;
    }
    let close: Vec<u8> = std::iter::once(b'"')
        .chain(std::iter::repeat_n(b'#', hashes))
        .collect();
    let body = i + 2 + hashes;
    let end = b[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map_or(b.len(), |p| body + p + close.len());
    Some(end)
}

/// Cut `#[cfg(test)]` followed by `mod NAME {` up to its closing brace.
fn drop_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        if !(trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ")) {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let Some(open) = after.find('{').filter(|&o| !after[..o].contains(';')) else {
            // `#[cfg(test)] mod tests;`: a file of its own, kept.
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        };
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Make `path` (as written in the file of module `here`) absolute from
/// the crate root; `None` for paths outside the crate (std, nix, …). A
/// `use` path may also start with a child module of `here` (`children`).
fn absolute(here: &[String], path: &[String], children: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut base: Vec<String> = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "self" => here.to_vec(),
        "super" => here.to_vec(),
        child if children.contains(child) => {
            let mut full = here.to_vec();
            full.extend(path.iter().cloned());
            return Some(full);
        }
        _ => return None,
    };
    let mut rest = &path[1..];
    if path[0] == "super" {
        base.pop()?;
        while rest.first().is_some_and(|s| s == "super") {
            base.pop()?;
            rest = &rest[1..];
        }
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// Split a `use` tree (`a::{b, c::{d as e}, f::*}`) into full paths, each
/// with the name it binds (`None` for a glob).
fn expand_use(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, Option<String>)>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = segments(&tree[..open]);
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let mut full = prefix.to_vec();
        full.extend(head);
        for part in split_top(inner) {
            expand_use(part, &full, out);
        }
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p, Some(a.trim().to_string())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(segments(path));
    match full.last().map(String::as_str) {
        Some("*") => {
            full.pop();
            out.push((full, None));
        }
        Some("self") => {
            full.pop();
            let name = alias.or_else(|| full.last().cloned());
            out.push((full, name));
        }
        Some(last) => {
            let name = alias.unwrap_or_else(|| last.to_string());
            out.push((full, Some(name)));
        }
        None => {}
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Split on commas outside braces.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The `use` statements of `text` (their trees) and the text without them.
fn use_statements(text: &str) -> (Vec<String>, String) {
    let mut uses = Vec::new();
    let mut rest = String::new();
    let mut i = 0;
    while i < text.len() {
        let at = text[i..].find("use ").map(|o| i + o);
        let Some(at) = at else {
            rest.push_str(&text[i..]);
            break;
        };
        let before = text[..at].chars().next_back();
        if before.is_some_and(is_ident) {
            rest.push_str(&text[i..at + 4]);
            i = at + 4;
            continue;
        }
        let end = at + text[at..].find(';').unwrap_or(text.len() - at);
        rest.push_str(&text[i..at]);
        uses.push(text[at + 4..end].to_string());
        i = end + 1;
    }
    (uses, rest)
}

/// Inline paths starting with `crate::`, `super::` or `self::`.
fn inline_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(o) = text[from..].find(start) {
            let at = from + o;
            from = at + start.len();
            if text[..at].chars().next_back().is_some_and(is_ident) {
                continue;
            }
            let end = text[at..]
                .find(|c: char| !(is_ident(c) || c == ':'))
                .map_or(text.len(), |e| at + e);
            let segs = segments(&text[at..end]);
            if segs.len() > 1 {
                out.push(segs);
            }
        }
    }
    out
}

/// Names defined at any depth of `text` (close enough: a name defined in
/// a nested block is not reachable by path, and is not looked up).
fn defined_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let words: Vec<&str> = text
        .split(|c: char| !(is_ident(c) || c == '!'))
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        if matches!(
            pair[0],
            "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "mod" | "union"
        ) || pair[0] == "macro_rules!"
        {
            out.insert(pair[1].to_string());
        }
    }
    out
}

/// The crate's files and their names, keyed by module path.
struct Crate {
    files: BTreeMap<Vec<String>, Names>,
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

impl Crate {
    fn load() -> Crate {
        let files = load_files();
        let mut names = BTreeMap::new();
        let mut raw_paths = BTreeMap::new();
        let children = |m: &[String]| -> BTreeSet<String> {
            files
                .iter()
                .filter(|f| f.module.len() == m.len() + 1 && f.module.starts_with(m))
                .map(|f| f.module[m.len()].clone())
                .collect()
        };
        for f in &files {
            let kids = children(&f.module);
            let (uses, rest) = use_statements(&f.text);
            let mut n = Names {
                defined: defined_names(&f.text),
                ..Names::default()
            };
            let mut paths = Vec::new();
            for tree in uses {
                let tree = tree.trim();
                let mut expanded = Vec::new();
                expand_use(tree, &[], &mut expanded);
                for (path, name) in expanded {
                    let Some(abs) = absolute(&f.module, &path, &kids) else {
                        continue;
                    };
                    match name {
                        Some(name) => {
                            n.imported.insert(name, abs.clone());
                        }
                        None => n.globs.push(abs.clone()),
                    }
                    paths.push(abs);
                }
            }
            for p in inline_paths(&rest) {
                if let Some(abs) = absolute(&f.module, &p, &BTreeSet::new()) {
                    paths.push(abs);
                }
            }
            names.insert(f.module.clone(), n);
            raw_paths.insert(f.module.clone(), paths);
        }
        let mut krate = Crate {
            files: names,
            edges: BTreeMap::new(),
        };
        for (from, paths) in raw_paths {
            let targets: BTreeSet<Vec<String>> = paths
                .iter()
                .filter_map(|p| krate.resolve(p, 0))
                .filter(|to| *to != from)
                .collect();
            krate.edges.insert(from, targets);
        }
        krate
    }

    /// The file that defines what `path` names.
    fn resolve(&self, path: &[String], depth: u8) -> Option<Vec<String>> {
        if depth > 8 {
            return None;
        }
        let mut file = (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| self.files.contains_key(p))?;
        let Some(next) = path.get(file.len()) else {
            return Some(file);
        };
        let names = &self.files[&file];
        if names.defined.contains(next) {
            return Some(file);
        }
        if let Some(target) = names.imported.get(next) {
            let mut full = target.clone();
            full.extend(path[file.len() + 1..].iter().cloned());
            if let Some(found) = self.resolve(&full, depth + 1) {
                return Some(found);
            }
        }
        for glob in &names.globs {
            let mut full = glob.clone();
            full.extend(path[file.len()..].iter().cloned());
            if let Some(found) = self.resolve(&full, depth + 1)
                && found != file
                && self.files[&found].defined.contains(next)
            {
                file = found;
                return Some(file);
            }
        }
        Some(file)
    }
}

fn rank_of(module: &[String]) -> Option<u8> {
    let top = module.first()?;
    RANKS.iter().find(|(m, _)| m == top).map(|&(_, r)| r)
}

fn show(module: &[String]) -> String {
    if module.is_empty() {
        "lib".into()
    } else {
        module.join("::")
    }
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    keep: impl Fn(&Vec<String>) -> bool,
) -> Vec<Vec<Vec<String>>> {
    let nodes: Vec<&Vec<String>> = edges.keys().filter(|n| keep(n)).collect();
    let index_of: HashMap<&Vec<String>, usize> =
        nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let succ: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            edges[*n]
                .iter()
                .filter_map(|t| index_of.get(t).copied())
                .collect()
        })
        .collect();
    struct Tarjan<'a> {
        succ: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in &self.succ[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    self.out.push(scc);
                }
            }
        }
    }
    let n = nodes.len();
    let mut t = Tarjan {
        succ: &succ,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.out
        .into_iter()
        .map(|scc| scc.into_iter().map(|i| nodes[i].clone()).collect())
        .collect()
}

#[test]
fn every_module_has_a_rank() {
    let krate = Crate::load();
    let missing: BTreeSet<String> = krate
        .files
        .keys()
        .filter(|m| !m.is_empty() && rank_of(m).is_none())
        .map(|m| m[0].clone())
        .collect();
    assert!(
        missing.is_empty(),
        "modules missing from RANKS in tests/architecture.rs (and from docs/architecture.md): {missing:?}"
    );
}

#[test]
fn no_module_imports_a_module_above_it() {
    let krate = Crate::load();
    let bad = upward(&krate.edges);
    assert!(bad.is_empty(), "upward imports:\n{}", bad.join("\n"));
}

/// The edges of `edges` that point up a tier or rank.
fn upward(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<String> {
    let mut bad = Vec::new();
    for (from, targets) in edges {
        let Some(rf) = rank_of(from) else { continue };
        for to in targets {
            let Some(rt) = rank_of(to) else { continue };
            if rt > rf {
                bad.push(format!(
                    "{} ({}, rank {rf}) imports {} ({}, rank {rt})",
                    show(from),
                    tier(rf),
                    show(to),
                    tier(rt)
                ));
            }
        }
    }
    bad
}

/// Comments and string literals (raw ones too) hide no code and make none.
#[test]
fn strip_drops_comments_and_strings() {
    let text = "let a = r#\"use crate::x; \"q\"\"#; /* crate::y */ use crate::z; // crate::w\n";
    let (uses, rest) = use_statements(&strip(text));
    assert_eq!(uses, ["crate::z"]);
    assert!(inline_paths(&rest).is_empty(), "{rest}");
}

/// The checks fail where they must: an edge up a tier, and a cycle.
#[test]
fn checks_catch_an_upward_edge_and_a_cycle() {
    let mut edges = BTreeMap::new();
    let (fs, rootfs, container) = (
        segments("fs"),
        segments("rootfs::mounts"),
        segments("container"),
    );
    edges.insert(fs.clone(), BTreeSet::from([rootfs.clone()]));
    edges.insert(rootfs.clone(), BTreeSet::from([fs.clone()]));
    edges.insert(container.clone(), BTreeSet::from([rootfs.clone()]));
    assert_eq!(
        upward(&edges),
        ["fs (leaves, rank 1) imports rootfs::mounts (engine, rank 3)"]
    );
    assert_eq!(cycles(&edges, |_| true), [vec![fs, rootfs]]);
}

#[test]
fn network_imports_only_leaves() {
    let krate = Crate::load();
    let bad: Vec<String> = krate
        .edges
        .iter()
        .filter(|(from, _)| from.first().is_some_and(|m| m == "network"))
        .flat_map(|(from, targets)| {
            targets
                .iter()
                .filter(|to| to.first() != from.first() && rank_of(to).is_some_and(|r| r > 1))
                .map(move |to| format!("{} imports {}", show(from), show(to)))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "network imports the engine:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_cycle_joins_two_modules() {
    let krate = Crate::load();
    let bad: Vec<String> = cycles(&krate.edges, |m| !m.is_empty())
        .into_iter()
        .filter(|scc| scc.iter().map(|m| &m[0]).collect::<BTreeSet<_>>().len() > 1)
        .map(|scc| scc.iter().map(|m| show(m)).collect::<Vec<_>>().join(" ↔ "))
        .collect();
    assert!(
        bad.is_empty(),
        "import cycles across modules:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_cycle_between_sibling_files() {
    let krate = Crate::load();
    // Leave out lib.rs and every module's root file (`mod.rs` or a
    // top-level `x.rs`): what remains are the files inside a folder.
    let bad: Vec<String> = cycles(&krate.edges, |m| m.len() > 1 && !is_folder_root(&krate, m))
        .into_iter()
        .map(|scc| scc.iter().map(|m| show(m)).collect::<Vec<_>>().join(" ↔ "))
        .collect();
    assert!(
        bad.is_empty(),
        "import cycles between files:\n{}",
        bad.join("\n")
    );
}

/// Whether `m` is a folder's `mod.rs` (some other file lies below it).
fn is_folder_root(krate: &Crate, m: &[String]) -> bool {
    krate
        .files
        .keys()
        .any(|other| other.len() > m.len() && other.starts_with(m))
}

/// The checker itself finds what it must: a `use` tree, a re-export and an
/// inline path, each resolved to the defining file.
#[test]
fn resolver_follows_use_trees_and_reexports() {
    let mut out = Vec::new();
    expand_use(
        "super::{sync::{self, FromInit}, ProcessError as E, x::*}",
        &[],
        &mut out,
    );
    let show_all: Vec<String> = out
        .iter()
        .map(|(p, n)| format!("{}={}", p.join("::"), n.clone().unwrap_or("*".into())))
        .collect();
    assert_eq!(
        show_all,
        [
            "super::sync=sync",
            "super::sync::FromInit=FromInit",
            "super::ProcessError=E",
            "super::x=*"
        ]
    );
    let here = vec!["process".to_string(), "init".to_string()];
    assert_eq!(
        absolute(&here, &segments("super::sync::FromInit"), &BTreeSet::new()).unwrap(),
        segments("process::sync::FromInit")
    );
    let krate = Crate::load();
    // `process::kill_and_reap` is re-exported from `process/handshake.rs`.
    assert_eq!(
        krate.resolve(&segments("process::kill_and_reap"), 0),
        Some(segments("process::handshake"))
    );
    assert!(
        krate.edges[&segments("container::create")].contains(&segments("process")),
        "container/create.rs uses process::InitPlan"
    );
    let n: usize = krate.edges.values().map(BTreeSet::len).sum();
    eprintln!("{} files, {n} file-to-file edges", krate.edges.len());
    assert!(n > 300, "only {n} edges found: the resolver misses paths");
}
