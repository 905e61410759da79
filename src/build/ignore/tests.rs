//! Unit tests of [`super`].
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
        let p = std::env::temp_dir().join(format!("ferry-ignore-{name}-{}", std::process::id()));
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
