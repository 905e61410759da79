//! `.dockerignore` with Docker's rules (moby `patternmatcher` and
//! BuildKit's `dockerignore.ReadAll`), the build-context walk it filters,
//! and Go's `filepath.Match` for `COPY` source globs.
//!
//! A line starting with `#` is a comment; the others are trimmed, cleaned
//! like Go's `filepath.Clean` and a leading `/` is dropped. `*` is any run
//! of characters but `/`, `?` one character but `/`, `[...]` a class
//! (`[^...]` negated), `\` escapes, `**` any number of directories
//! (`**/x`, `a/**/b`, `a/**`). A pattern excludes the paths it matches and
//! everything under them; `!pattern` re-includes, and the last pattern
//! that applies wins. Docker excludes `.dockerignore` and the Dockerfile
//! like any file when a pattern says so; the builder reads them from the
//! context directory regardless.

use std::path::{Path, PathBuf};

/// A bad pattern or a context that cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("bad .dockerignore pattern {0:?}")]
    BadPattern(String),
    #[error("illegal exclusion pattern: \"!\"")]
    EmptyExclusion,
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("file name {0:?} in the build context is not valid UTF-8")]
    NotUtf8(PathBuf),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern text (without `!`).
    text: String,
    tokens: Vec<Token>,
    /// A string test instead of the tokens, when the pattern allows.
    fast: Fast,
    /// `!pattern`: re-includes.
    exclusion: bool,
}

/// A piece of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    /// `?`: one character but `/`.
    One,
    /// `*`: any run of characters but `/`.
    Star,
    /// `**/` (or `**` inside): nothing, or anything ending with `/`.
    AnyDirs,
    /// `**` at the end: anything.
    AnyAll,
    /// `[...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// The patterns of a `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Matcher, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if exclusion && body.is_empty() {
                return Err(IgnoreError::EmptyExclusion);
            }
            let mut text = clean(body);
            if text.len() > 1 && text.starts_with('/') {
                text.remove(0);
            }
            let tokens =
                compile(&text, true).ok_or_else(|| IgnoreError::BadPattern(line.into()))?;
            patterns.push(Pattern {
                fast: Fast::of(&text, &tokens),
                text,
                tokens,
                exclusion,
            });
        }
        Ok(Matcher { patterns })
    }

    /// Whether `rel_path` (relative to the context, `/`-separated) is
    /// excluded: the last pattern matching it or one of its parent
    /// directories decides (Docker's `MatchesOrParentMatches`). Docker's
    /// rules treat files and directories alike; `_is_dir` is for callers'
    /// clarity.
    pub fn excluded(&self, rel_path: &str, _is_dir: bool) -> bool {
        let path = clean(rel_path);
        let path = path.trim_start_matches('/');
        let mut ancestors = vec![false; self.patterns.len()];
        for (i, _) in path.match_indices('/') {
            ancestors = self.ancestors(&path[..i], &ancestors);
        }
        self.excluded_below(path, &ancestors)
    }

    /// [`Matcher::excluded`] given, per pattern, whether it matches one of
    /// the path's parent directories (the walk computes that once per
    /// directory).
    fn excluded_below(&self, path: &str, ancestors: &[bool]) -> bool {
        let mut matched = false;
        for (p, &parent_hit) in self.patterns.iter().zip(ancestors) {
            if p.exclusion != matched {
                continue;
            }
            if parent_hit || p.matches(path) {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Per pattern: whether it matches `dir` or one of its parents (whose
    /// answers are `parent`).
    fn ancestors(&self, dir: &str, parent: &[bool]) -> Vec<bool> {
        self.patterns
            .iter()
            .zip(parent)
            .map(|(p, &hit)| hit || p.matches(dir))
            .collect()
    }

    /// Whether an excluded directory must still be walked because an
    /// exclusion (`!`) pattern may re-include something under it.
    fn may_include_under(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            let prefix: String = p
                .tokens
                .iter()
                .map_while(|t| match t {
                    Token::Literal(c) => Some(*c),
                    _ => None,
                })
                .collect();
            let all_literal = prefix.chars().count() == p.tokens.len();
            if all_literal {
                // `!dir/child` re-includes under dir; `!parent` re-includes
                // all of parent
                let prefix_slash = format!("{prefix}/");
                prefix_slash.starts_with(&dir_slash) || dir_slash.starts_with(&prefix_slash)
            } else {
                prefix.starts_with(&dir_slash) || dir_slash.starts_with(&prefix)
            }
        })
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The cleaned patterns (with `!` for exclusions), for diagnostics.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| format!("{}{}", if p.exclusion { "!" } else { "" }, p.text))
            .collect()
    }
}

/// moby's shortcuts for patterns that need no regular expression.
#[derive(Debug, Clone, PartialEq)]
enum Fast {
    /// Only literal characters: the path is the pattern.
    Exact(String),
    /// Literal characters then a final `**` (`build/**`): a prefix test.
    Prefix(String),
    /// `**` then plain characters: a suffix test (`**.log` matches
    /// `a/b.log`; `**/foo` matches `foo` and `a/foo`), moby's
    /// `suffixMatch`.
    Suffix(String),
    /// Match the tokens.
    None,
}

impl Fast {
    fn of(text: &str, tokens: &[Token]) -> Fast {
        let literal = |ts: &[Token]| -> Option<String> {
            ts.iter()
                .map(|t| match t {
                    Token::Literal(c) => Some(*c),
                    _ => None,
                })
                .collect()
        };
        if let Some(rest) = text.strip_prefix("**")
            && !rest.is_empty()
            && !rest.contains(['*', '?', '\\', '[', ']'])
        {
            return Fast::Suffix(rest.to_string());
        }
        if let Some(lit) = literal(tokens) {
            return Fast::Exact(lit);
        }
        match tokens.split_last() {
            Some((Token::AnyAll, head)) => literal(head).map_or(Fast::None, Fast::Prefix),
            _ => Fast::None,
        }
    }
}

impl Pattern {
    /// Whether the pattern matches `path` itself.
    fn matches(&self, path: &str) -> bool {
        match &self.fast {
            Fast::Exact(lit) => path == lit,
            Fast::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Fast::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Fast::None => tokens_match(&self.tokens, path),
        }
    }
}

/// What a context entry is (symbolic links are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A fifo, socket or device node.
    Other,
}

/// One included path of the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Relative to the context, `/`-separated, no leading `./`.
    pub path: String,
    pub kind: EntryKind,
    /// Bytes, for regular files (0 otherwise).
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

/// Lists the files, directories and symlinks of `context_dir` that
/// `matcher` does not exclude, sorted by path. Symbolic links are listed,
/// never followed, so nothing outside the context is read. A directory
/// that is excluded is still listed when something under it is
/// re-included by a `!` pattern (its contents need a parent).
pub fn walk(context_dir: &Path, matcher: &Matcher) -> Result<Vec<ContextEntry>, IgnoreError> {
    let mut out = Vec::new();
    let ancestors = vec![false; matcher.patterns.len()];
    walk_dir(context_dir, "", matcher, &ancestors, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Walks one directory (`rel` is its path in the context, "" for the
/// root; `ancestors` says which patterns match it or a parent), appending
/// included entries; returns whether any was added.
fn walk_dir(
    dir: &Path,
    rel: &str,
    matcher: &Matcher,
    ancestors: &[bool],
    out: &mut Vec<ContextEntry>,
) -> Result<bool, IgnoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IgnoreError::Io { path, source }
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        // DirEntry::metadata is an fstatat on the directory, without
        // following a symbolic link.
        let meta = entry.metadata().map_err(io(&entry.path()))?;
        entries.push((entry.file_name(), meta));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut added = false;
    for (name, meta) in entries {
        let full = dir.join(&name);
        let name = name
            .to_str()
            .ok_or_else(|| IgnoreError::NotUtf8(full.clone()))?;
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let entry = context_entry(path, &meta);
        let excluded = matcher.excluded_below(&entry.path, ancestors);
        if entry.kind == EntryKind::Dir {
            if excluded && !matcher.may_include_under(&entry.path) {
                continue;
            }
            let at = out.len();
            let below = matcher.ancestors(&entry.path, ancestors);
            let child_added = walk_dir(&full, &entry.path, matcher, &below, out)?;
            if !excluded || child_added {
                out.insert(at, entry);
                added = true;
            }
        } else if !excluded {
            out.push(entry);
            added = true;
        }
    }
    Ok(added)
}

/// The entry for `path` from its `lstat`.
fn context_entry(path: String, meta: &std::fs::Metadata) -> ContextEntry {
    use std::os::unix::fs::PermissionsExt;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    };
    ContextEntry {
        path,
        kind,
        size: if kind == EntryKind::File {
            meta.len()
        } else {
            0
        },
        mode: meta.permissions().mode() & 0o7777,
    }
}

/// Go's `filepath.Match` for `/`-separated paths: `*` and `?` never match
/// `/`, `[...]`/`[^...]` classes, `\` escapes. A malformed pattern
/// matches nothing.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    compile(pattern, false).is_some_and(|t| tokens_match(&t, path))
}

/// Whether a COPY source has glob characters (`*`, `?`, `[`).
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Go's `filepath.Clean` on a `/`-separated path.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Compiles a pattern; `double_star` enables `**` (dockerignore), else it
/// is two `*` (`filepath.Match`). `None` for a malformed pattern.
fn compile(pattern: &str, double_star: bool) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if double_star && chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i == chars.len() {
                    Token::AnyAll
                } else {
                    Token::AnyDirs
                });
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            // a trailing escape is malformed, as in `filepath.Match`
            '\\' => tokens.push(Token::Literal(*chars.get(i)?)),
            '[' => {
                let (token, next) = compile_class(&chars, i)?;
                tokens.push(token);
                i = next;
                continue;
            }
            _ => tokens.push(Token::Literal(c)),
        }
        if c == '\\' && i < chars.len() {
            i += 1;
        }
    }
    Some(tokens)
}

/// A `[...]` class starting after `[` at `start`; the token and the index
/// after `]`.
fn compile_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        let lo = class_char(chars, &mut i)?;
        let hi = if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']') {
            i += 1;
            class_char(chars, &mut i)?
        } else {
            lo
        };
        if lo > hi {
            return None;
        }
        ranges.push((lo, hi));
    }
}

/// One (possibly escaped) character of a class.
fn class_char(chars: &[char], i: &mut usize) -> Option<char> {
    let mut c = *chars.get(*i)?;
    if c == '\\' {
        *i += 1;
        c = *chars.get(*i)?;
    }
    *i += 1;
    Some(c)
}

/// Whether the tokens match the whole text (a set-of-positions
/// simulation: no exponential backtracking).
fn tokens_match(tokens: &[Token], text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let n = t.len();
    let mut reach = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    reach[0] = true;
    for token in tokens {
        next.iter_mut().for_each(|r| *r = false);
        for i in (0..=n).filter(|&i| reach[i]) {
            match token {
                Token::Literal(c) => {
                    if i < n && t[i] == *c {
                        next[i + 1] = true;
                    }
                }
                Token::One => {
                    if i < n && t[i] != '/' {
                        next[i + 1] = true;
                    }
                }
                Token::Class { negated, ranges } => {
                    if i < n && ranges.iter().any(|&(lo, hi)| lo <= t[i] && t[i] <= hi) != *negated
                    {
                        next[i + 1] = true;
                    }
                }
                Token::Star => {
                    next[i] = true;
                    for j in i..n {
                        if t[j] == '/' {
                            break;
                        }
                        next[j + 1] = true;
                    }
                }
                Token::AnyDirs => {
                    next[i] = true;
                    for j in i..n {
                        if t[j] == '/' {
                            next[j + 1] = true;
                        }
                    }
                }
                Token::AnyAll => next[i..].iter_mut().for_each(|r| *r = true),
            }
        }
        std::mem::swap(&mut reach, &mut next);
        if !reach.contains(&true) {
            return false;
        }
    }
    reach[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    fn ex(matcher: &Matcher, path: &str) -> bool {
        matcher.excluded(path, false)
    }

    #[test]
    fn simple_names_and_dirs() {
        let mt = m("node_modules\n*.log\n");
        assert!(ex(&mt, "node_modules"));
        assert!(ex(&mt, "node_modules/a/b.js"));
        assert!(ex(&mt, "x.log"));
        assert!(!ex(&mt, "sub/x.log"), "* does not cross /");
        assert!(
            !ex(&mt, "src/node_modules"),
            "patterns are anchored at the root"
        );
        assert!(!ex(&mt, "main.rs"));
    }

    #[test]
    fn double_star() {
        let mt = m("**/*.log\n");
        assert!(ex(&mt, "a.log"));
        assert!(ex(&mt, "a/b/c.log"));
        assert!(!ex(&mt, "a/b/c.txt"));
        let mt = m("a/**/b\n");
        assert!(ex(&mt, "a/b"));
        assert!(ex(&mt, "a/x/y/b"));
        assert!(ex(&mt, "a/x/b/file"), "under a matched dir");
        assert!(!ex(&mt, "a/xb"));
        let mt = m("build/**\n");
        assert!(ex(&mt, "build/x"));
        assert!(ex(&mt, "build/x/y"));
        let mt = m("**/foo\n");
        assert!(ex(&mt, "foo"));
        assert!(ex(&mt, "a/foo"));
        assert!(!ex(&mt, "barfoo"));
        let mt = m("**\n");
        assert!(ex(&mt, "anything/at/all"));
    }

    #[test]
    fn leading_double_star_suffix() {
        // moby's suffix match: `**.log` is "ends with .log"
        let mt = m("**.log\n");
        assert!(ex(&mt, "a.log"));
        assert!(ex(&mt, "deep/dir/b.log"));
        assert!(!ex(&mt, "a.txt"));
        let mt = m("**/node_modules\n");
        assert!(ex(&mt, "node_modules/x"));
        assert!(ex(&mt, "web/node_modules/y"));
        assert!(!ex(&mt, "web/my_node_modules"));
    }

    #[test]
    fn exception_reincludes_file_in_excluded_dir() {
        let mt = m("docs\n!docs/README.md\n");
        assert!(!ex(&mt, "docs/README.md"));
        assert!(ex(&mt, "docs/other.md"));
        assert!(ex(&mt, "docs"));
    }

    #[test]
    fn last_match_wins() {
        let mt = m("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(ex(&mt, "CHANGES.md"));
        assert!(!ex(&mt, "README.md"));
        assert!(ex(&mt, "README-secret.md"));
        let mt = m("!keep\nkeep\n");
        assert!(ex(&mt, "keep"));
    }

    #[test]
    fn exclude_all_but() {
        let mt = m("*\n!src\n!package.json\n");
        assert!(ex(&mt, "Dockerfile"));
        assert!(ex(&mt, ".git/config"));
        assert!(!ex(&mt, "src/main.js"));
        assert!(!ex(&mt, "package.json"));
    }

    #[test]
    fn cleaning_comments_and_blanks() {
        let mt = m("# comment\n  \n/abs/path\n./rel/../other/\n  spaced  \n #notcomment\n");
        assert_eq!(
            mt.patterns(),
            vec!["abs/path", "other", "spaced", "#notcomment"]
        );
        assert!(ex(&mt, "abs/path/x"));
        assert!(ex(&mt, "other"));
        assert!(ex(&mt, "spaced"));
        let mt = m("! /x/\n");
        assert_eq!(mt.patterns(), vec!["!x"]);
    }

    #[test]
    fn question_and_classes() {
        let mt = m("file?.txt\n[abc].bin\n[^x]y\n[a-c]z\n");
        assert!(ex(&mt, "file1.txt"));
        assert!(!ex(&mt, "file10.txt"));
        assert!(ex(&mt, "b.bin"));
        assert!(!ex(&mt, "d.bin"));
        assert!(ex(&mt, "ay"));
        assert!(!ex(&mt, "xy"));
        assert!(ex(&mt, "cz"));
        assert!(!ex(&mt, "dz"));
    }

    #[test]
    fn escapes_in_patterns() {
        let mt = m("a\\*b\n");
        assert!(ex(&mt, "a*b"));
        assert!(!ex(&mt, "axb"));
    }

    #[test]
    fn bad_patterns() {
        assert!(matches!(
            Matcher::parse("[abc\n"),
            Err(IgnoreError::BadPattern(_))
        ));
        assert!(matches!(
            Matcher::parse("!\n"),
            Err(IgnoreError::EmptyExclusion)
        ));
        assert!(matches!(
            Matcher::parse("[z-a]\n"),
            Err(IgnoreError::BadPattern(_))
        ));
        assert!(matches!(
            Matcher::parse("a\\\n"),
            Err(IgnoreError::BadPattern(_))
        ));
    }

    #[test]
    fn path_argument_is_cleaned() {
        let mt = m("a/b\n");
        assert!(ex(&mt, "./a/b"));
        assert!(ex(&mt, "a//b/"));
    }

    #[test]
    fn empty_matcher_excludes_nothing() {
        let mt = m("");
        assert!(mt.is_empty());
        assert!(!ex(&mt, "x"));
    }

    #[test]
    fn go_clean() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("./"), ".");
        assert_eq!(clean("a/./b/../c/"), "a/c");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("//a//b"), "/a/b");
        assert_eq!(clean("a/.."), ".");
    }

    #[test]
    fn glob() {
        assert!(glob_match("*.json", "package.json"));
        assert!(!glob_match("*.json", "dir/package.json"));
        assert!(glob_match("src/*/x", "src/a/x"));
        assert!(!glob_match("src/*/x", "src/a/b/x"));
        assert!(glob_match("file?", "file1"));
        assert!(glob_match("[a-z]*", "abc"));
        assert!(!glob_match("[^a-z]*", "abc"));
        assert!(glob_match("a\\*", "a*"));
        assert!(!glob_match("[", "["));
        assert!(glob_match("**", "ab"), "** is just * in filepath.Match");
        assert!(!glob_match("**", "a/b"));
        assert!(is_glob("*.json") && is_glob("a?") && is_glob("[ab]") && !is_glob("a/b"));
    }

    #[test]
    fn no_exponential_blowup() {
        let pat = "*a*a*a*a*a*a*a*a*a*a*b";
        let text = "a".repeat(200);
        assert!(!glob_match(pat, &text));
    }

    /// A scratch context directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let p =
                std::env::temp_dir().join(format!("ferry-ignore-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        fn file(&self, rel: &str) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, rel).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn paths(entries: &[ContextEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn walk_filters_and_sorts() {
        let d = TempDir::new("walk");
        for f in [
            "Dockerfile",
            "package.json",
            "src/index.js",
            "src/lib/util.js",
            "node_modules/dep/index.js",
            "logs/a.log",
            "src/debug.log",
            "docs/README.md",
            "docs/internal.md",
        ] {
            d.file(f);
        }
        std::os::unix::fs::symlink("/etc/passwd", d.0.join("link")).unwrap();
        let mt = m("node_modules\n**/*.log\ndocs\n!docs/README.md\n");
        let entries = walk(&d.0, &mt).unwrap();
        assert_eq!(
            paths(&entries),
            vec![
                "Dockerfile",
                "docs",
                "docs/README.md",
                "link",
                "logs",
                "package.json",
                "src",
                "src/index.js",
                "src/lib",
                "src/lib/util.js",
            ]
        );
        let link = entries.iter().find(|e| e.path == "link").unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
        let pkg = entries.iter().find(|e| e.path == "package.json").unwrap();
        assert_eq!(
            (pkg.kind, pkg.size),
            (EntryKind::File, "package.json".len() as u64)
        );
        assert_eq!(
            entries.iter().find(|e| e.path == "src").unwrap().kind,
            EntryKind::Dir
        );
    }

    #[test]
    fn walk_does_not_follow_symlinked_dirs() {
        let d = TempDir::new("symdir");
        d.file("a/x");
        std::os::unix::fs::symlink("/etc", d.0.join("etc")).unwrap();
        let entries = walk(&d.0, &m("")).unwrap();
        assert_eq!(paths(&entries), vec!["a", "a/x", "etc"]);
    }

    #[test]
    fn walk_skips_excluded_dir_without_exceptions() {
        let d = TempDir::new("skip");
        d.file("big/a");
        d.file("keep");
        let entries = walk(&d.0, &m("big\n")).unwrap();
        assert_eq!(paths(&entries), vec!["keep"]);
        assert!(!m("big\n").may_include_under("big"));
        assert!(m("big\n!big/a\n").may_include_under("big"));
        assert!(!m("big\n!other/a\n").may_include_under("big"));
        assert!(m("big\n!**/a\n").may_include_under("big"));
        assert!(m("a/b\n!a\n").may_include_under("a/b"));
    }

    #[test]
    fn walk_agrees_with_excluded() {
        let d = TempDir::new("agree");
        for f in [
            "a/b/c.log",
            "a/b/keep.md",
            "a/x.md",
            "README.md",
            "t/test/u",
            "build/o",
            "z",
        ] {
            d.file(f);
        }
        let mt = m("**/*.log\n*.md\n!README.md\n**/test/**\nbuild/**\na/b\n!a/b/keep.md\n");
        let listed: Vec<String> = walk(&d.0, &mt)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        for f in [
            "a/b/c.log",
            "a/b/keep.md",
            "a/x.md",
            "README.md",
            "t/test/u",
            "build/o",
            "z",
        ] {
            assert_eq!(
                listed.contains(&f.to_string()),
                !mt.excluded(f, false),
                "{f}"
            );
        }
        assert!(
            listed.contains(&"a/b".to_string()),
            "parent of a re-included file"
        );
        assert!(listed.contains(&"a/b/keep.md".to_string()));
        assert!(!listed.contains(&"a/b/c.log".to_string()));
    }

    #[test]
    fn fast_paths() {
        let f = |p: &str| Matcher::parse(p).unwrap().patterns[0].fast.clone();
        assert_eq!(f("a/b"), Fast::Exact("a/b".into()));
        assert_eq!(f("a\\*"), Fast::Exact("a*".into()));
        assert_eq!(f("build/**"), Fast::Prefix("build/".into()));
        assert_eq!(f("**/x"), Fast::Suffix("/x".into()));
        assert_eq!(f("**/*.x"), Fast::None);
        assert_eq!(f("a/*"), Fast::None);
    }

    #[test]
    fn walk_missing_context_is_an_error() {
        let err = walk(Path::new("/nonexistent/ferry-ctx"), &m("")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/ferry-ctx")
        );
    }

    #[test]
    fn fuzz_never_panics() {
        let alphabet = [
            "*", "**", "?", "[", "]", "^", "-", "\\", "/", "!", "a", "b", ".", "..", "µ", "\n",
        ];
        let paths = ["a", "a/b", "b/a/a", ".a", "µ/a.b", "a/b/c/d"];
        let mut state: u64 = 7;
        for _ in 0..5000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut r = state;
            for _ in 0..(r % 16) {
                text.push_str(alphabet[(r % alphabet.len() as u64) as usize]);
                r = r
                    .rotate_left(5)
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(3);
            }
            if let Ok(m) = Matcher::parse(&text) {
                for p in paths {
                    let _ = m.excluded(p, false);
                }
            }
            for p in paths {
                let _ = glob_match(&text, p);
            }
        }
    }
}
