//! Physical lines to logical ones: parser directives, comments, line
//! continuations (with comments and empty lines inside), as BuildKit reads
//! them.

use super::*;

/// Reads physical lines: directives, comments, continuations, heredocs.
pub(super) struct Reader<'a> {
    pub(super) lines: Vec<&'a str>,
    /// Index of the next line to read.
    pub(super) pos: usize,
    pub(super) escape: char,
    /// Directives are only read before the first other line.
    pub(super) directives_done: bool,
    pub(super) seen_directives: Vec<String>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let mut lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        if text.ends_with('\n') {
            lines.pop();
        }
        Reader {
            lines,
            pos: 0,
            escape: '\\',
            directives_done: false,
            seen_directives: Vec::new(),
        }
    }

    /// The next instruction line, or `None` at the end of the file.
    pub(super) fn next_logical(&mut self) -> Result<Option<Logical>, (usize, String)> {
        while self.pos < self.lines.len() {
            let raw = self.lines[self.pos];
            self.pos += 1;
            let start = self.pos;
            let trimmed = raw.trim_start();
            self.directive(trimmed).map_err(|m| (start, m))?;
            if trimmed.starts_with('#') || trimmed.is_empty() {
                continue;
            }
            let (mut line, mut more) = trim_continuation(trimmed, self.escape);
            while more && self.pos < self.lines.len() {
                let raw = self.lines[self.pos];
                self.pos += 1;
                let t = raw.trim_start();
                if t.starts_with('#') || t.is_empty() {
                    continue;
                }
                let (part, again) = trim_continuation(raw, self.escape);
                line.push_str(&part);
                more = again;
            }
            let text = line.trim().to_string();
            let (keyword, rest) = split_first_word(&text);
            return Ok(Some(Logical {
                line: start,
                keyword: keyword.to_string(),
                rest: rest.to_string(),
                text,
            }));
        }
        Ok(None)
    }

    /// Handles a `# key=value` parser directive while they are allowed.
    pub(super) fn directive(&mut self, trimmed: &str) -> Res<()> {
        if self.directives_done {
            return Ok(());
        }
        let Some((key, value)) = parse_directive(trimmed) else {
            self.directives_done = true;
            return Ok(());
        };
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.directives_done = true;
            return Ok(());
        }
        if self.seen_directives.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        if key == "escape" {
            self.escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(format!(
                        "invalid escape token {value:?} does not match ` or \\"
                    ));
                }
            };
        }
        self.seen_directives.push(key);
        Ok(())
    }

    /// Reads a heredoc body up to its terminator line.
    pub(super) fn heredoc_body(&mut self, name: &str, chomp: bool) -> Option<String> {
        let mut content = String::new();
        while self.pos < self.lines.len() {
            let raw = self.lines[self.pos];
            self.pos += 1;
            let line = if chomp {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if line == name {
                return Some(content);
            }
            content.push_str(line);
            content.push('\n');
        }
        None
    }
}

/// `# key = value` at the top of the file (key lower-cased).
pub(super) fn parse_directive(trimmed: &str) -> Option<(String, String)> {
    let body = trimmed.strip_prefix('#')?.trim_start();
    let (key, value) = body.split_once('=')?;
    let key = key.trim_end();
    let mut chars = key.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.to_string()))
}

/// Strips a trailing escape character (and blanks after it): `(line, true)`
/// when the instruction continues on the next line. As in BuildKit, an
/// escape preceded by another escape is not a continuation (`RUN echo \\`).
pub(super) fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let stripped = line.trim_end_matches([' ', '\t']);
    match stripped.strip_suffix(escape) {
        Some(before) if !before.ends_with(escape) => (before.to_string(), true),
        _ => (line.to_string(), false),
    }
}

/// Splits off the first whitespace-delimited word.
pub(super) fn split_first_word(text: &str) -> (&str, &str) {
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}
