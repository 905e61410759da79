//! `ferry build`: a Dockerfile to a layered image in ferry's store.
//!
//! `ast` is the parsed Dockerfile, `dockerfile` parses it, `subst` is
//! Docker's `$VAR` substitution, `ignore` is `.dockerignore` and the
//! context walk, `secrets` spots files that look like secrets.

pub mod ast;
pub mod dockerfile;
pub mod ignore;
pub mod secrets;
pub mod subst;
