//! The build context's `.dockerignore` as the builder uses it (the rules
//! are [`super::ignore`]'s).

use std::path::Path;

use super::BuildError;
use super::ignore::Matcher;

pub use super::ignore::glob_match;

/// The context's ignore rules (none without a `.dockerignore`).
pub struct Ignore {
    matcher: Matcher,
}

impl Ignore {
    /// Read `CONTEXT/.dockerignore`, if any.
    pub fn load(ctx: &Path) -> Result<Ignore, BuildError> {
        let text = match std::fs::read_to_string(ctx.join(".dockerignore")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(BuildError::plan(format!(".dockerignore: {e}"))),
        };
        let matcher =
            Matcher::parse(&text).map_err(|e| BuildError::plan(format!(".dockerignore: {e}")))?;
        Ok(Ignore { matcher })
    }

    /// Whether the context path `rel` (or a parent of it) is excluded.
    pub fn ignored(&self, rel: &str) -> bool {
        !rel.is_empty() && self.matcher.excluded(rel, false)
    }
}
