//! Substitution as the builder applies it: [`super::subst`] with the
//! variables in scope at a step.

use std::collections::BTreeMap;

use super::BuildError;
use super::subst;

/// `word` with its variables replaced from `vars` (quotes and escapes,
/// with the Dockerfile's escape character, removed as Docker does).
pub fn expand(
    word: &str,
    vars: &BTreeMap<String, String>,
    escape: char,
) -> Result<String, BuildError> {
    subst::expand(word, escape, |n| vars.get(n).cloned())
        .map_err(|e| BuildError::plan(format!("{word}: {e}")))
}
