//! The build context's `.dockerignore` as the builder uses it: whether a
//! context path is excluded, and glob matching for `COPY` sources.

use std::path::Path;

use super::BuildError;

/// The context's ignore rules (none without a `.dockerignore`).
pub struct Ignore {
    /// Patterns in order, `!` exceptions flagged: the last match wins.
    rules: Vec<(bool, String)>,
}

impl Ignore {
    /// Read `CONTEXT/.dockerignore`, if any.
    pub fn load(ctx: &Path) -> Result<Ignore, BuildError> {
        let text = match std::fs::read_to_string(ctx.join(".dockerignore")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(BuildError::plan(format!(".dockerignore: {e}"))),
        };
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| match l.strip_prefix('!') {
                Some(p) => (false, clean(p)),
                None => (true, clean(l)),
            })
            .collect();
        Ok(Ignore { rules })
    }

    /// Whether the context path `rel` (or a parent of it) is excluded.
    pub fn ignored(&self, rel: &str) -> bool {
        let rel = clean(rel);
        let mut out = false;
        for (exclude, pat) in &self.rules {
            let hit = path_match(pat, &rel)
                || rel
                    .match_indices('/')
                    .any(|(i, _)| path_match(pat, &rel[..i]));
            if hit {
                out = *exclude;
            }
        }
        out
    }
}

fn clean(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_matches('/')
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// `pattern` against a whole path, component by component; `**` matches
/// any number of components.
fn path_match(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    comps(&p, &s)
}

fn comps(p: &[&str], s: &[&str]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(&"**") => (0..=s.len()).any(|i| comps(&p[1..], &s[i..])),
        Some(first) => !s.is_empty() && glob_match(first, s[0]) && comps(&p[1..], &s[1..]),
    }
}

/// One path component against a glob: `*`, `?`, `[set]`, `\x`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

fn matches(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| matches(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && matches(&p[1..], &n[1..]),
        Some('[') => {
            let Some(end) = p.iter().position(|&c| c == ']') else {
                return n.first() == Some(&'[') && matches(&p[1..], &n[1..]);
            };
            let Some(&c) = n.first() else { return false };
            let set = &p[1..end];
            let (neg, set) = match set.first() {
                Some('^') | Some('!') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != neg && matches(&p[end + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && matches(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && matches(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_rules_with_exceptions() {
        let i = Ignore {
            rules: vec![
                (true, "node_modules".into()),
                (true, "*.md".into()),
                (false, "README.md".into()),
                (true, "**/*.log".into()),
            ],
        };
        assert!(i.ignored("node_modules/x/y.js"));
        assert!(i.ignored("CHANGES.md"));
        assert!(!i.ignored("README.md"));
        assert!(i.ignored("a/b/c.log"));
        assert!(!i.ignored("src/app.js"));
        assert!(glob_match("*.js", "app.js"));
        assert!(glob_match("file[0-9].txt", "file3.txt"));
        assert!(!glob_match("*.js", "app.ts"));
    }
}
