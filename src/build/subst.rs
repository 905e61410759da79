//! Docker's variable substitution (BuildKit's `shell.Lex`): `$V`, `${V}`,
//! `${V:-word}`, `${V-word}`, `${V:+word}`, `${V+word}`, `${V:?msg}`,
//! `${V?msg}`, `${V#pat}`, `${V##pat}`, `${V%pat}`, `${V%%pat}`; the
//! escape character (`\` or `` ` ``) makes the next character literal,
//! single quotes suppress expansion, double quotes don't, and the quotes
//! themselves are removed.
//!
//! [`expand`] is one word (ENV/LABEL keys and values, WORKDIR, USER, a
//! COPY source...); [`expand_words`] also splits on unquoted whitespace,
//! including whitespace a variable's value brings (for word lists).
//! [`referenced_vars`] lists the names a word uses, for cache keys.

/// A word that cannot be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstError {
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(char),
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    /// `${V:?message}` with `V` unset or empty, `${V?message}` with `V` unset.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
}

/// Substitutes variables in one word, removing quotes and escapes; the
/// whitespace in it is kept (Docker's `ProcessWord`).
pub fn expand(
    word: &str,
    escape: char,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, SubstError> {
    let mut lexer = Lexer::new(word, escape, &lookup, false);
    Ok(lexer.process(None)?.0)
}

/// Substitutes variables and splits the result into words on unquoted
/// whitespace (Docker's `ProcessWords`): `a "b c" $V` with `V="d e"` is
/// `["a", "b c", "d", "e"]`.
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, SubstError> {
    let mut lexer = Lexer::new(text, escape, &lookup, false);
    Ok(lexer.process(None)?.1)
}

/// The variable names `text` refers to (sorted, each once), in every
/// branch of `${V:-...}`/`${V:+...}`: what a step's cache key depends on.
/// Names in single quotes or escaped `\$` are not references.
pub fn referenced_vars(text: &str, escape: char) -> Vec<String> {
    let none = |_: &str| None;
    let mut lexer = Lexer::new(text, escape, &none, true);
    let _ = lexer.process(None);
    let mut names = lexer.seen;
    names.sort();
    names.dedup();
    names
}

/// The word-splitting state (BuildKit's `wordsStruct`).
#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    /// An unquoted character: whitespace ends the word.
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    /// A quoted or escaped character: always part of the word.
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

/// The scanner over one word.
struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Only collecting names: evaluate every branch, never fail on `?`.
    dry: bool,
    seen: Vec<String>,
}

impl<'a> Lexer<'a> {
    fn new(
        text: &str,
        escape: char,
        lookup: &'a dyn Fn(&str) -> Option<String>,
        dry: bool,
    ) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            lookup,
            dry,
            seen: Vec::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// A variable's value (recording the name).
    fn get(&mut self, name: &str) -> Option<String> {
        self.seen.push(name.to_string());
        (self.lookup)(name)
    }

    /// Processes up to `stop` (consumed) or the end: the joined result and
    /// the split words.
    fn process(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), SubstError> {
        let mut result = String::new();
        let mut words = Words::default();
        loop {
            let Some(ch) = self.peek() else {
                if stop.is_some() {
                    return Err(SubstError::MissingBrace);
                }
                break;
            };
            if Some(ch) == stop {
                self.pos += 1;
                break;
            }
            match ch {
                '\'' => {
                    let s = self.single_quote()?;
                    words.add_raw_string(&s);
                    result.push_str(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    words.add_raw_string(&s);
                    result.push_str(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    words.add_string(&s);
                    result.push_str(&s);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        let Some(next) = self.next() else { break };
                        words.add_raw_char(next);
                        result.push(next);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        Ok((result, words.finish()))
    }

    /// `'...'`: literal.
    fn single_quote(&mut self) -> Result<String, SubstError> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.next() {
                None => return Err(SubstError::Unterminated("single-quote")),
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    /// `"..."`: variables expand; the escape character only escapes `"`,
    /// `$` and itself.
    fn double_quote(&mut self) -> Result<String, SubstError> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(SubstError::Unterminated("double-quote")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some('$') => s.push_str(&self.dollar()?),
                Some(ch) => {
                    self.pos += 1;
                    if ch == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                s.push(n);
                            }
                            Some(_) => s.push(ch),
                        }
                    } else {
                        s.push(ch);
                    }
                }
            }
        }
    }

    /// A name after `$`: letters, digits and `_`; or digits only; or one
    /// special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.pos += 1;
                return c.to_string();
            }
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// `$NAME` or `${...}`.
    fn dollar(&mut self) -> Result<String, SubstError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.get(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(SubstError::MissingBrace),
            Some('{' | '}' | ':') => return Err(SubstError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let value = self.get(&name);
        match self.next() {
            None => Err(SubstError::MissingBrace),
            Some('}') => Ok(value.unwrap_or_default()),
            Some(':') => {
                let modifier = self.next().ok_or(SubstError::MissingBrace)?;
                let word = self.process(Some('}'))?.0;
                self.modifier(&name, value.filter(|v| !v.is_empty()), modifier, word, true)
            }
            Some(m @ ('-' | '+' | '?')) => {
                let word = self.process(Some('}'))?.0;
                self.modifier(&name, value, m, word, false)
            }
            Some(m @ ('#' | '%')) => {
                let longest = self.peek() == Some(m);
                if longest {
                    self.pos += 1;
                }
                let pattern = self.process(Some('}'))?.0;
                let value = value.unwrap_or_default();
                Ok(if m == '#' {
                    remove_prefix(&value, &pattern, longest)
                } else {
                    remove_suffix(&value, &pattern, longest)
                })
            }
            Some(c) => Err(SubstError::UnsupportedModifier(c)),
        }
    }

    /// `-`, `+` and `?` given `value` (for the `:` forms, `None` when
    /// empty).
    fn modifier(
        &self,
        name: &str,
        value: Option<String>,
        modifier: char,
        word: String,
        colon: bool,
    ) -> Result<String, SubstError> {
        match (modifier, value) {
            ('-', Some(v)) => Ok(v),
            ('-', None) => Ok(word),
            ('+', Some(_)) => Ok(word),
            ('+', None) => Ok(String::new()),
            ('?', Some(v)) => Ok(v),
            ('?', None) if self.dry => Ok(String::new()),
            ('?', None) => {
                let message = match (word.is_empty(), colon) {
                    (false, _) => word,
                    (true, true) => "is not allowed to be empty".into(),
                    (true, false) => "is not allowed to be unset".into(),
                };
                Err(SubstError::Required {
                    name: name.to_string(),
                    message,
                })
            }
            (c, _) => Err(SubstError::UnsupportedModifier(c)),
        }
    }
}

/// `${V#pat}` / `${V##pat}`.
fn remove_prefix(value: &str, pattern: &str, longest: bool) -> String {
    let cuts: Vec<usize> = value
        .char_indices()
        .map(|(i, _)| i)
        .chain([value.len()])
        .collect();
    let mut found = None;
    for &i in &cuts {
        if shell_match(pattern, &value[..i]) {
            found = Some(i);
            if !longest {
                break;
            }
        }
    }
    found.map_or_else(|| value.to_string(), |i| value[i..].to_string())
}

/// `${V%pat}` / `${V%%pat}`.
fn remove_suffix(value: &str, pattern: &str, longest: bool) -> String {
    let cuts: Vec<usize> = value
        .char_indices()
        .map(|(i, _)| i)
        .chain([value.len()])
        .collect();
    let mut found = None;
    for &i in cuts.iter().rev() {
        if shell_match(pattern, &value[i..]) {
            found = Some(i);
            if !longest {
                break;
            }
        }
    }
    found.map_or_else(|| value.to_string(), |i| value[..i].to_string())
}

/// A shell pattern (`*` any string, `?` any character) against a whole
/// string.
fn shell_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
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
            "unsupported modifier (=) in substitution"
        );
        assert_eq!(
            ex_err("${NAME/a/b}"),
            "unsupported modifier (/) in substitution"
        );
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
        assert!(shell_match("*", ""));
        assert!(shell_match("a*c", "abbc"));
        assert!(shell_match("a?c", "abc"));
        assert!(!shell_match("a?c", "ac"));
        assert!(!shell_match("*.gz", "x.tar"));
    }
}
