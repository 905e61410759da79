//! `ferry build`: a Dockerfile to a layered image in ferry's store.
//!
//! `ast` is the parsed Dockerfile. The builder runs each stage's steps in
//! order over a [`stage::Stage`] (the layers so far, the image config, the
//! cache key of the chain): metadata steps change the config, `RUN` runs a
//! ferry container over the layer stack with a fresh upper directory
//! (`step_run`), `COPY`/`ADD` write a fresh directory (`copy`); both become
//! a layer by `commit` (the directory is already in the store's layer
//! format: it is packed into the layer tar for its diff_id and renamed into
//! `layers/`). Every layer step is looked up in the cache first (`cache`).
//! At the end the image record is saved and `report` warns about deleted
//! and secret-looking files.
//!
//! The Dockerfile side: `dockerfile` parses, `subst` is Docker's `$VAR`
//! substitution, `ignore` is `.dockerignore` and the context walk,
//! `secrets` spots files that look like secrets.

pub mod ast;
mod builder;
mod cache;
mod commit;
mod context;
mod copy;
pub mod dockerfile;
pub mod ignore;
mod merged;
mod meta;
pub mod secrets;
mod stage;
mod step_run;
pub mod subst;
mod vars;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::image::{ImageError, ImageRecord, Store};

pub use stage::Stage;

/// `--network`: the network of `RUN` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// A new network namespace with only `lo`.
    None,
    /// The host's network (no network namespace).
    Host,
    /// Its own network namespace with outbound access through pasta, as
    /// `ferry image run`'s private network ([`crate::network`]).
    #[default]
    Private,
}

/// What to build.
pub struct BuildOptions {
    /// `-t NAME`.
    pub tag: String,
    /// The build context directory.
    pub context: PathBuf,
    /// `-f FILE` (default `CONTEXT/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE`.
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--secret id=ID,src=PATH`.
    pub secrets: BTreeMap<String, PathBuf>,
    pub network: Network,
    /// The container state root (`--root`) for `RUN` containers.
    pub containers: PathBuf,
    pub systemd_cgroup: bool,
}

/// A finished build.
pub struct Built {
    pub record: ImageRecord,
    /// Bytes of regular files in the image's layers.
    pub size: u64,
    pub elapsed: Duration,
    /// Steps run and steps taken from the cache.
    pub ran: usize,
    pub cached: usize,
}

/// Errors of a build: one sentence, naming the step when there is one.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("build context {0}: not a directory")]
    Context(String),
    #[error("read the Dockerfile {path}: {source}")]
    Dockerfile {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] ast::ParseError),
    #[error("{0}")]
    Plan(String),
    /// A step failed: its `[n/N] INSTRUCTION` and why.
    #[error("step {step}: {msg}")]
    Step { step: String, msg: String },
    #[error("step {step}: the command exited with status {code}")]
    RunFailed { step: String, code: i32 },
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl BuildError {
    pub(crate) fn plan(msg: impl Into<String>) -> BuildError {
        BuildError::Plan(msg.into())
    }
}

/// Build the Dockerfile of `opts`.
pub fn build(store: &Store, opts: &BuildOptions) -> Result<Built, BuildError> {
    if !opts.context.is_dir() {
        return Err(BuildError::Context(opts.context.display().to_string()));
    }
    let file = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = std::fs::read_to_string(&file).map_err(|source| BuildError::Dockerfile {
        path: file.display().to_string(),
        source,
    })?;
    let df = parse_dockerfile(&text, &file)?;
    build_parsed(store, opts, &df)
}

/// The parser's entry point (another file's: `dockerfile.rs`).
fn parse_dockerfile(text: &str, file: &Path) -> Result<ast::Dockerfile, BuildError> {
    Ok(dockerfile::parse(text, &file.display().to_string())?)
}

/// Build an already parsed Dockerfile.
pub fn build_parsed(
    store: &Store,
    opts: &BuildOptions,
    df: &ast::Dockerfile,
) -> Result<Built, BuildError> {
    let start = Instant::now();
    let _lock = store.lock(false)?;
    let mut b = builder::Builder::new(store, opts, df)?;
    let last = b.run_all()?;
    let record = commit::save_image(store, &opts.tag, &last)?;
    let size = commit::image_size(store, &record)?;
    let ran = b.ran;
    let cached = b.cached;
    drop(b);
    report::warn_about_files(store, &record, &last);
    Ok(Built {
        record,
        size,
        elapsed: start.elapsed(),
        ran,
        cached,
    })
}

mod report;
