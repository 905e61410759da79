//! Unit tests of [`super`].
use super::*;
use std::collections::HashMap;

fn env() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("NAME", "world"),
        ("EMPTY", ""),
        ("SPACED", "a b  c"),
        ("PATH", "/usr/bin:/bin"),
        ("FILE", "archive.tar.gz"),
    ])
}

fn ex(word: &str) -> String {
    let e = env();
    expand(word, '\\', |k| e.get(k).map(|v| v.to_string())).unwrap()
}

fn ex_err(word: &str) -> String {
    let e = env();
    expand(word, '\\', |k| e.get(k).map(|v| v.to_string()))
        .unwrap_err()
        .to_string()
}

fn words(text: &str) -> Vec<String> {
    let e = env();
    expand_words(text, '\\', |k| e.get(k).map(|v| v.to_string())).unwrap()
}

#[test]
fn plain_and_braced() {
    assert_eq!(ex("hello $NAME"), "hello world");
    assert_eq!(ex("${NAME}s"), "worlds");
    assert_eq!(ex("$NAMEs"), "");
    assert_eq!(ex("$UNSET-x"), "-x");
    assert_eq!(ex("a$"), "a$");
    assert_eq!(ex("$ x"), "$ x");
    assert_eq!(ex("$PATH:/opt"), "/usr/bin:/bin:/opt");
}

#[test]
fn default_and_alternative() {
    assert_eq!(ex("${UNSET:-def}"), "def");
    assert_eq!(ex("${EMPTY:-def}"), "def");
    assert_eq!(ex("${EMPTY-def}"), "");
    assert_eq!(ex("${UNSET-def}"), "def");
    assert_eq!(ex("${NAME:-def}"), "world");
    assert_eq!(ex("${NAME:+alt}"), "alt");
    assert_eq!(ex("${EMPTY:+alt}"), "");
    assert_eq!(ex("${EMPTY+alt}"), "alt");
    assert_eq!(ex("${UNSET+alt}"), "");
    assert_eq!(ex("${UNSET:-$NAME/x}"), "world/x");
    assert_eq!(ex("${UNSET:-${ALSO:-deep}}"), "deep");
}

#[test]
fn required() {
    assert_eq!(ex("${NAME:?oops}"), "world");
    assert_eq!(ex_err("${UNSET:?must be set}"), "UNSET: must be set");
    assert_eq!(ex_err("${EMPTY:?}"), "EMPTY: is not allowed to be empty");
    assert_eq!(ex("${EMPTY?x}"), "");
    assert_eq!(ex_err("${UNSET?}"), "UNSET: is not allowed to be unset");
}

#[test]
fn pattern_removal() {
    assert_eq!(ex("${FILE#*.}"), "tar.gz");
    assert_eq!(ex("${FILE##*.}"), "gz");
    assert_eq!(ex("${FILE%.*}"), "archive.tar");
    assert_eq!(ex("${FILE%%.*}"), "archive");
    assert_eq!(ex("${FILE#nomatch}"), "archive.tar.gz");
    assert_eq!(ex("${PATH%%:*}"), "/usr/bin");
    assert_eq!(ex("${UNSET#x}"), "");
    assert_eq!(ex("${FILE#a?c}"), "hive.tar.gz");
}

#[test]
fn pattern_escapes() {
    let e = HashMap::from([("V", "a*b}c")]);
    let lookup = |k: &str| e.get(k).map(|v| v.to_string());
    assert_eq!(expand("${V#a\\*}", '\\', lookup).unwrap(), "b}c");
    assert_eq!(expand("${V%\\}c}", '\\', lookup).unwrap(), "a*b");
}

#[test]
fn replacement() {
    assert_eq!(ex("${PATH/bin/sbin}"), "/usr/sbin:/bin");
    assert_eq!(ex("${PATH//bin/sbin}"), "/usr/sbin:/sbin");
    assert_eq!(ex("${FILE/.*/}"), "archive");
    assert_eq!(ex("${FILE//a/A}"), "Archive.tAr.gz");
    assert_eq!(ex("${FILE/zzz/y}"), "archive.tar.gz");
    assert_eq!(ex("${UNSET/a/b}"), "");
}

#[test]
fn syntax_errors() {
    assert_eq!(ex_err("${NAME"), "syntax error: missing '}'");
    assert_eq!(ex_err("${"), "syntax error: missing '}'");
    assert_eq!(ex_err("${}"), "syntax error: bad substitution");
    assert_eq!(ex_err("${:x}"), "syntax error: bad substitution");
    assert_eq!(ex_err("${NAME:-x"), "syntax error: missing '}'");
    assert_eq!(
        ex_err("${NAME:=x}"),
        "unsupported modifier (:=) in substitution"
    );
    assert_eq!(
        ex_err("${NAME^}"),
        "unsupported modifier (^) in substitution"
    );
    assert_eq!(ex_err("${NAME/a"), "syntax error: missing '/' in ${}");
    assert!(ex_err("${NAME#\\x}").contains("invalid escape"));
    assert!(ex_err("'abc").contains("single-quote"));
    assert!(ex_err("\"abc").contains("double-quote"));
}

#[test]
fn quotes() {
    assert_eq!(ex("'$NAME'"), "$NAME");
    assert_eq!(ex("\"$NAME\""), "world");
    assert_eq!(ex("\"a 'b' $NAME\""), "a 'b' world");
    assert_eq!(ex("'a \"b\"'"), "a \"b\"");
    assert_eq!(ex("\"v 2\""), "v 2");
    assert_eq!(ex("pre\"mid\"post"), "premidpost");
    assert_eq!(ex("''"), "");
}

#[test]
fn escapes() {
    assert_eq!(ex("\\$NAME"), "$NAME");
    assert_eq!(ex("x\\ y"), "x y");
    assert_eq!(ex("\\\\"), "\\");
    assert_eq!(ex("\"\\$NAME \\\" \\\\ \\n\""), "$NAME \" \\ \\n");
    assert_eq!(ex("'\\$NAME'"), "\\$NAME");
    assert_eq!(ex("trailing\\"), "trailing");
}

#[test]
fn backtick_escape() {
    let e = env();
    let lookup = |k: &str| e.get(k).map(|v| v.to_string());
    assert_eq!(expand("`$NAME", '`', lookup).unwrap(), "$NAME");
    assert_eq!(
        expand("c:\\dir\\$NAME", '`', lookup).unwrap(),
        "c:\\dir\\world"
    );
    assert_eq!(expand("\"a`\"b\"", '`', lookup).unwrap(), "a\"b");
}

#[test]
fn word_splitting() {
    assert_eq!(words("a  b\tc"), vec!["a", "b", "c"]);
    assert_eq!(words("a \"b c\" 'd e'"), vec!["a", "b c", "d e"]);
    assert_eq!(words("$SPACED"), vec!["a", "b", "c"]);
    assert_eq!(words("\"$SPACED\""), vec!["a b  c"]);
    assert_eq!(words("x\\ y z"), vec!["x y", "z"]);
    assert_eq!(words("80 ${PORT:-8080}/tcp"), vec!["80", "8080/tcp"]);
    assert_eq!(words("\"\" a"), vec!["a"]);
    assert_eq!(words(""), Vec::<String>::new());
}

#[test]
fn expand_keeps_whitespace() {
    assert_eq!(ex("a  b"), "a  b");
    assert_eq!(ex("$SPACED"), "a b  c");
}

#[test]
fn referenced() {
    assert_eq!(
        referenced_vars("$A ${B:-$C} ${D:+${E}} '$F' \\$G \"$H\" ${I:?x}", '\\'),
        vec!["A", "B", "C", "D", "E", "H", "I"]
    );
    assert_eq!(referenced_vars("no vars", '\\'), Vec::<String>::new());
    assert_eq!(referenced_vars("$A $A", '\\'), vec!["A"]);
    // a broken word still reports what it saw
    assert_eq!(referenced_vars("$A ${B", '\\'), vec!["A", "B"]);
}

#[test]
fn special_params_and_digits() {
    assert_eq!(ex("$1x"), "x");
    assert_eq!(ex("$@"), "");
    assert_eq!(ex("a$$b"), "ab");
}

#[test]
fn shell_patterns() {
    let m = |p: &str, t: &str| {
        let chars: Vec<char> = t.chars().collect();
        pattern_match(&compile_pattern(p).unwrap(), &chars)
    };
    assert!(m("*", ""));
    assert!(m("a*c", "abbc"));
    assert!(m("a?c", "abc"));
    assert!(!m("a?c", "ac"));
    assert!(!m("*.gz", "x.tar"));
    assert!(m("a\\*", "a*"));
    assert!(!m("a\\*", "ab"));
}

#[test]
fn fuzz_never_panics() {
    let alphabet = [
        "$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "'", "\"", "a", "NAME", " ", "*",
        "µ", "`",
    ];
    let mut state: u64 = 42;
    let e = env();
    for _ in 0..5000 {
        let mut word = String::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut r = state;
        for _ in 0..(r % 24) {
            word.push_str(alphabet[(r % alphabet.len() as u64) as usize]);
            r = r
                .rotate_left(7)
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1);
        }
        for escape in ['\\', '`'] {
            let lookup = |k: &str| e.get(k).map(|v| v.to_string());
            let one = expand(&word, escape, lookup);
            let many = expand_words(&word, escape, lookup);
            assert_eq!(one.is_ok(), many.is_ok(), "{word:?}");
            let _ = referenced_vars(&word, escape);
        }
    }
}
