//! Variable substitution as the builder applies it (`$VAR`, `${VAR}`,
//! `${VAR:-word}`, `${VAR:+word}`, `\$` for a literal dollar).

use std::collections::BTreeMap;

/// `word` with its variables replaced from `vars` (unset: empty).
pub fn expand(word: &str, vars: &BTreeMap<String, String>) -> String {
    let b: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            '\\' if b.get(i + 1) == Some(&'$') => {
                out.push('$');
                i += 2;
            }
            '$' if b.get(i + 1) == Some(&'{') => {
                let Some(end) = b[i + 2..].iter().position(|&c| c == '}') else {
                    out.extend(&b[i..]);
                    break;
                };
                let inner: String = b[i + 2..i + 2 + end].iter().collect();
                out.push_str(&braced(&inner, vars));
                i += end + 3;
            }
            '$' if b
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_') =>
            {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == '_') {
                    j += 1;
                }
                let name: String = b[i + 1..j].iter().collect();
                out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
                i = j;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `NAME`, `NAME:-word` or `NAME:+word`.
fn braced(inner: &str, vars: &BTreeMap<String, String>) -> String {
    let val = |n: &str| vars.get(n).filter(|v| !v.is_empty()).cloned();
    if let Some((n, w)) = inner.split_once(":-") {
        return val(n).unwrap_or_else(|| expand(w, vars));
    }
    if let Some((n, w)) = inner.split_once(":+") {
        return val(n).map(|_| expand(w, vars)).unwrap_or_default();
    }
    vars.get(inner).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_docker_forms() {
        let v: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
        assert_eq!(
            expand("$A/${A}/${B:-x}/${A:+y}/\\$A/$B.", &v),
            "1/1/x/y/$A/."
        );
    }
}
