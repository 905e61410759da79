//! `ferry build`: a Dockerfile to a layered image in ferry's store.
//!
//! `ast` is the parsed Dockerfile.

pub mod ast;
pub mod dockerfile;
