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
mod tests;
