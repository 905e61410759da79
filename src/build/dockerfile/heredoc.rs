//! Here-documents: `<<EOF` markers and their bodies.

use super::*;

/// A heredoc marker word (`<<EOF`, `<<-EOF`, `<<'EOF'`, `<<"EOF"`).
pub(super) struct Marker {
    pub(super) name: String,
    pub(super) chomp: bool,
    pub(super) expand: bool,
}

/// Parses a raw word as a heredoc marker (BuildKit's
/// `^(\d*)<<(-?)([^<]*)$`, the name unquoted).
pub(super) fn parse_heredoc_marker(word: &str) -> Option<Marker> {
    let after_fd = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let body = after_fd.strip_prefix("<<")?;
    let (chomp, raw) = match body.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, body),
    };
    if raw.is_empty() || raw.contains('<') {
        return None;
    }
    let quoted = raw.contains(['\'', '"']);
    let name: String = raw.chars().filter(|c| !matches!(c, '\'' | '"')).collect();
    if name.is_empty() {
        return None;
    }
    Some(Marker {
        name,
        chomp,
        expand: !quoted,
    })
}

/// Finds the heredoc markers in a RUN/COPY/ADD line and reads their bodies
/// from the following lines, in order.
pub(super) fn read_heredocs(rest: &str, reader: &mut Reader) -> Res<Vec<Heredoc>> {
    let markers: Vec<Marker> = parse_words(rest, reader.escape)
        .iter()
        .filter_map(|w| parse_heredoc_marker(w))
        .collect();
    markers
        .into_iter()
        .map(|m| {
            let content = reader
                .heredoc_body(&m.name, m.chomp)
                .ok_or_else(|| format!("unterminated heredoc {:?}", m.name))?;
            Ok(Heredoc {
                name: m.name,
                content,
                expand: m.expand,
            })
        })
        .collect()
}

impl Run {
    /// For `RUN <<EOF` (the command is only one heredoc): the heredoc that
    /// is the script, which BuildKit writes to a file and executes.
    pub fn heredoc_script(&self) -> Option<&Heredoc> {
        let Command::Shell(text) = &self.command else {
            return None;
        };
        let words = parse_words(text, '\\');
        match (words.as_slice(), self.heredocs.first()) {
            ([only], Some(h)) if parse_heredoc_marker(only).is_some() => Some(h),
            _ => None,
        }
    }

    /// The text for `sh -c` when heredocs are used inside a shell command
    /// (`RUN cat <<EOF > /file`): the line followed by each body and its
    /// delimiter, so the shell sees a real here-document.
    pub fn shell_with_heredocs(&self) -> Option<String> {
        let Command::Shell(text) = &self.command else {
            return None;
        };
        let mut out = text.clone();
        for h in &self.heredocs {
            out.push('\n');
            out.push_str(&h.content);
            out.push_str(&h.name);
        }
        Some(out)
    }
}
