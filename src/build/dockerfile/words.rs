//! Words, JSON exec form and `--flag`s of an instruction's arguments.

use super::*;

/// `["a", "b"]` as a list of strings, or `None` (the shell form). As
/// Docker's `parseJSON`: the first JSON value is decoded (text after it is
/// ignored), invalid JSON falls back to the shell form, but an array of
/// anything else than strings is an error.
pub(super) fn json_array(rest: &str) -> Res<Option<Vec<String>>> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    let Some(Ok(serde_json::Value::Array(items))) = values.next() else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(
                "when using JSON array syntax, arrays must be comprised of strings only"
                    .to_string(),
            ),
        })
        .collect::<Res<Vec<_>>>()
        .map(Some)
}

/// [`json_array`] where an error means "not the exec form" (for deciding
/// whether to look for heredocs; the instruction's own parse reports it).
pub(super) fn exec_form(rest: &str) -> Option<Vec<String>> {
    json_array(rest).ok().flatten()
}

/// The exec form if `rest` is a JSON string array, else the shell form.
pub(super) fn command(rest: &str) -> Res<Command> {
    Ok(match json_array(rest)? {
        Some(list) => Command::Exec(list),
        None => Command::Shell(rest.to_string()),
    })
}

/// Splits on whitespace, quotes not special (Docker's
/// `parseStringsWhitespaceDelimited`).
pub(super) fn split_whitespace(rest: &str) -> Vec<String> {
    rest.split_whitespace().map(str::to_string).collect()
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words
/// (Docker's `parseWords`).
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            } else if ch == escape && q != '\'' {
                match chars.next() {
                    Some(next) => {
                        word.push(ch);
                        word.push(next);
                    }
                    None => break,
                }
                continue;
            }
            word.push(ch);
            continue;
        }
        if ch.is_whitespace() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
        } else if ch == escape {
            match chars.next() {
                Some(next) => {
                    word.push(ch);
                    word.push(next);
                }
                None => break,
            }
            continue;
        }
        word.push(ch);
    }
    // quotes are kept, so only a lone trailing escape makes an empty word
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Splits the leading `--flag[=value]` words off an instruction's
/// arguments (quotes removed, `--` ends them), as BuildKit's
/// `extractBuilderFlags`.
pub(super) fn extract_flags(rest: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        let after = &rest[pos..];
        let skipped = after.len() - after.trim_start().len();
        pos += skipped;
        let after = &rest[pos..];
        if !after.starts_with("--") {
            return (flags, after);
        }
        let (word, len) = flag_word(after);
        pos += len;
        if word == "--" {
            return (flags, rest[pos..].trim_start());
        }
        flags.push(word);
    }
}

/// One flag word (up to unquoted whitespace), unquoted; and its length in
/// bytes.
pub(super) fn flag_word(text: &str) -> (String, usize) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, ch)) = iter.next() {
        match quote {
            Some(q) if ch == q => quote = None,
            None if ch.is_whitespace() => return (word, i),
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            _ if ch == '\\' => {
                if let Some((_, next)) = iter.next() {
                    word.push(next);
                }
            }
            _ => word.push(ch),
        }
    }
    (word, text.len())
}

/// Parsed `--name[=value]` flags of one instruction.
pub(super) struct Flags {
    pub(super) items: Vec<(String, Option<String>)>,
}

impl Flags {
    pub(super) fn parse(words: &[String]) -> Res<Flags> {
        let mut items = Vec::new();
        for w in words {
            let body = w.strip_prefix("--").unwrap_or(w);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if name.is_empty() {
                return Err(format!("invalid flag {w:?}"));
            }
            items.push((name.to_ascii_lowercase(), value));
        }
        Ok(Flags { items })
    }

    /// Refuses flags not in `allowed`.
    pub(super) fn allow(&self, allowed: &[&str]) -> Res<()> {
        match self
            .items
            .iter()
            .find(|(n, _)| !allowed.contains(&n.as_str()))
        {
            Some((name, _)) => Err(format!("unknown flag: --{name}")),
            None => Ok(()),
        }
    }

    /// A flag given at most once, with a value.
    pub(super) fn string(&self, name: &str) -> Res<Option<String>> {
        let mut found = self.items.iter().filter(|(n, _)| n == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(format!("duplicate flag specified: --{name}"));
        }
        match first {
            None => Ok(None),
            Some((_, Some(v))) => Ok(Some(v.clone())),
            Some((_, None)) => Err(format!("missing a value on flag: --{name}")),
        }
    }

    /// A flag that may be repeated.
    pub(super) fn strings(&self, name: &str) -> Res<Vec<String>> {
        self.items
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| {
                v.clone()
                    .ok_or_else(|| format!("missing a value on flag: --{name}"))
            })
            .collect()
    }

    /// A boolean flag: `--link`, `--link=true|false`.
    pub(super) fn bool(&self, name: &str) -> Res<bool> {
        let mut found = self.items.iter().filter(|(n, _)| n == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(format!("duplicate flag specified: --{name}"));
        }
        match first {
            None => Ok(false),
            Some((_, v)) => parse_bool(&format!("--{name}"), v.as_deref()),
        }
    }
}
