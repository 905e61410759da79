//! Docker's variable substitution (BuildKit's `shell.Lex`): `$V`, `${V}`,
//! `${V:-word}`, `${V-word}`, `${V:+word}`, `${V+word}`, `${V:?msg}`,
//! `${V?msg}`, `${V#pat}`, `${V##pat}`, `${V%pat}`, `${V%%pat}`,
//! `${V/pat/repl}`, `${V//pat/repl}`; the
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
    UnsupportedModifier(String),
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("invalid escape '\\{0}' in a substitution pattern")]
    InvalidEscape(char),
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
    Ok(lexer.process(None, false)?.0)
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
    Ok(lexer.process(None, false)?.1)
}

/// The variable names `text` refers to (sorted, each once), in every
/// branch of `${V:-...}`/`${V:+...}`: what a step's cache key depends on.
/// Names in single quotes or escaped `\$` are not references.
pub fn referenced_vars(text: &str, escape: char) -> Vec<String> {
    let none = |_: &str| None;
    let mut lexer = Lexer::new(text, escape, &none, true);
    let _ = lexer.process(None, false);
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
    /// Keep escape characters (inside `${V#pattern}`).
    raw_escapes: bool,
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
            raw_escapes: false,
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
    /// the split words. With `raw_escapes` the escape characters are kept
    /// (for `${V#pattern}`, where the pattern reads them).
    fn process(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), SubstError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.process_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), SubstError> {
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
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
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
                        if self.raw_escapes {
                            s.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                s.push(n);
                            }
                            Some(_) if self.raw_escapes => {}
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
        let first = self.next().ok_or(SubstError::MissingBrace)?;
        let (colon, op) = if first == ':' {
            (true, self.next().ok_or(SubstError::MissingBrace)?)
        } else {
            (false, first)
        };
        let modifier = if colon {
            format!(":{op}")
        } else {
            op.to_string()
        };
        match op {
            '}' if !colon => Ok(value.unwrap_or_default()),
            '-' | '+' | '?' => {
                let word = self.process(Some('}'), false)?.0;
                let value = if colon {
                    value.filter(|v| !v.is_empty())
                } else {
                    value
                };
                self.modifier(&name, value, op, word, colon)
            }
            '#' | '%' => {
                let word = self.process(Some('}'), true)?.0;
                let (longest, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let pattern = compile_pattern(pattern)?;
                let value = value.unwrap_or_default();
                Ok(if op == '#' {
                    remove_prefix(&value, &pattern, longest)
                } else {
                    remove_suffix(&value, &pattern, longest)
                })
            }
            '/' if !colon => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = match self.process(Some('/'), true) {
                    Err(SubstError::MissingBrace) => return Err(SubstError::MissingSlash),
                    other => other?.0,
                };
                let replacement = self.process(Some('}'), true)?.0;
                let pattern = compile_pattern(&pattern)?;
                Ok(replace(
                    &value.unwrap_or_default(),
                    &pattern,
                    &replacement,
                    all,
                ))
            }
            _ => Err(SubstError::UnsupportedModifier(modifier)),
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
            (c, _) => Err(SubstError::UnsupportedModifier(c.to_string())),
        }
    }
}

/// A piece of a `${V#pattern}` pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum PatToken {
    Literal(char),
    /// `?`
    One,
    /// `*`
    Any,
}

/// Compiles a shell pattern as BuildKit does: `*`, `?`, `\*`, `\?`, `\\`,
/// and `\}`/`\/` (the escape only protects the `${}` syntax); other
/// escapes are errors.
fn compile_pattern(pattern: &str) -> Result<Vec<PatToken>, SubstError> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => PatToken::Any,
            '?' => PatToken::One,
            '\\' => match chars.next() {
                Some(n @ ('*' | '?' | '\\' | '}' | '/')) => PatToken::Literal(n),
                Some(n) => return Err(SubstError::InvalidEscape(n)),
                None => return Err(SubstError::InvalidEscape(' ')),
            },
            _ => PatToken::Literal(c),
        });
    }
    Ok(out)
}

/// Whether `pattern` matches all of `text` (positions simulation).
fn pattern_match(pattern: &[PatToken], text: &[char]) -> bool {
    let n = text.len();
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    for tok in pattern {
        let mut next = vec![false; n + 1];
        match tok {
            PatToken::Any => {
                if let Some(first) = reach.iter().position(|&r| r) {
                    next[first..].iter_mut().for_each(|r| *r = true);
                }
            }
            PatToken::One => (0..n)
                .filter(|&i| reach[i])
                .for_each(|i| next[i + 1] = true),
            PatToken::Literal(c) => (0..n)
                .filter(|&i| reach[i] && text[i] == *c)
                .for_each(|i| next[i + 1] = true),
        }
        reach = next;
    }
    reach[n]
}

/// `${V#pat}` / `${V##pat}`: drops the shortest / longest matching prefix.
fn remove_prefix(value: &str, pattern: &[PatToken], longest: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut ends: Box<dyn Iterator<Item = usize>> = if longest {
        Box::new((0..=chars.len()).rev())
    } else {
        Box::new(0..=chars.len())
    };
    match ends.find(|&end| pattern_match(pattern, &chars[..end])) {
        Some(end) => chars[end..].iter().collect(),
        None => value.to_string(),
    }
}

/// `${V%pat}` / `${V%%pat}`: drops the shortest / longest matching suffix.
fn remove_suffix(value: &str, pattern: &[PatToken], longest: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut starts: Box<dyn Iterator<Item = usize>> = if longest {
        Box::new(0..=chars.len())
    } else {
        Box::new((0..=chars.len()).rev())
    };
    match starts.find(|&start| pattern_match(pattern, &chars[start..])) {
        Some(start) => chars[..start].iter().collect(),
        None => value.to_string(),
    }
}

/// `${V/pat/repl}` (first match) and `${V//pat/repl}` (all): leftmost
/// matches, each as long as possible; an empty match is not replaced.
fn replace(value: &str, pattern: &[PatToken], replacement: &str, all: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i < chars.len() {
        let end = if replaced && !all {
            None
        } else {
            (i + 1..=chars.len())
                .rev()
                .find(|&end| pattern_match(pattern, &chars[i..end]))
        };
        match end {
            Some(end) => {
                out.push_str(replacement);
                i = end;
                replaced = true;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
