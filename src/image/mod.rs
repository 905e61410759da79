//! Container images: import (OCI layouts, OCI and docker archives) into a
//! content-addressed store, one extracted directory per layer, and bundles
//! whose rootfs is the layer stack (mounted with overlayfs by the runtime,
//! see `rootfs::overlay`) or a flattened copy of it.
//!
//! Store layout (`Store::default_root`):
//!
//! | path | what |
//! |---|---|
//! | `blobs/sha256/HEX` | manifests, configs and layer blobs as shipped, by digest |
//! | `layers/HEX/root` | a layer extracted in overlay's format, by diff_id |
//! | `layers/HEX/layer.json` | its size and entry count |
//! | `images/NAME.json` | an image: manifest, config and layer digests |
//! | `refs/HASH.json` | a bundle that uses layers (kept while it exists) |
//! | `bundles/ID` | bundles made by `ferry image run` |
//! | `tmp/` | extractions in progress, renamed into `layers/` when done |
//! | `pushed/HEX.json` | where an image (by config) was pushed: mount sources |
//!
//! Layer directories are in overlay's own format: a whiteout `.wh.NAME` is a
//! 0:0 character device `NAME`, and `.wh..wh..opq` sets the xattr
//! `user.overlay.opaque=y` on its directory. ferry always writes `user.*`
//! overlay xattrs (root included) and always mounts with `userxattr`, so the
//! same layer directory serves root and rootless containers.

pub mod archive;
pub mod bundle;
pub mod digest;
pub mod export;
pub mod extract;
mod flatten;
pub mod history;
mod http;
pub mod import;
pub mod pack;
pub mod progress;
pub mod push;
pub mod registry;
mod source;
pub mod store;
pub mod tar;
mod tls;
mod xattr;

use std::path::PathBuf;

use crate::userns;

pub use digest::Digest;
pub use store::{ImageRecord, Store};

/// The annotation that lists a bundle's layer directories (a JSON array of
/// absolute paths, top-most layer first, as overlay's `lowerdir`).
pub use crate::rootfs::overlay::LAYERS_ANNOTATION;

/// Errors handling images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("invalid digest {0:?}")]
    BadDigest(String),
    #[error("digest algorithm {0:?} is not supported (only sha256)")]
    Algorithm(String),
    #[error("{what}: digest is {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size is {actual} bytes, expected {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("bad tar stream: {0}")]
    Tar(String),
    #[error(
        "bad image reference {0:?}: use oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG] or [docker://]HOST[:PORT]/NAME[:TAG]"
    )]
    Reference(String),
    #[error("{what}: {msg}")]
    Format { what: String, msg: String },
    #[error("{0}")]
    Select(String),
    #[error("no image {0:?}")]
    NotFound(String),
    #[error("invalid image name {0:?}")]
    Name(String),
    #[error("layer media type {0:?} is not supported")]
    MediaType(String),
    #[error("{0}")]
    Bundle(String),
    #[error(transparent)]
    Userns(#[from] userns::UsernsError),
    #[error("{path} belongs to uid {owner}, not to you: pick a directory of your own")]
    NotOwned { path: String, owner: u32 },
}

impl ImageError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let what = what.into();
        move |source| ImageError::Io { what, source }
    }

    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ImageError {
        let what = what.into();
        move |source| ImageError::Sys { what, source }
    }

    pub(crate) fn format(what: impl Into<String>, msg: impl Into<String>) -> ImageError {
        ImageError::Format {
            what: what.into(),
            msg: msg.into(),
        }
    }
}

/// What extraction can keep here: everything as real root (every id
/// exists); owners and setuid bits, not devices or `trusted.*` xattrs, as
/// root of a user namespace with more ids than one
/// ([`userns::run_mapped`]); neither for a caller with only its own id.
/// Read from this process's id maps each time: the forked child of
/// `run_mapped` is root of a namespace its parent was not.
pub fn extract_options() -> extract::Options {
    let all = u64::from(u32::MAX);
    let ids = if nix::unistd::geteuid().is_root() {
        userns::mapped_ids().min(all)
    } else {
        1
    };
    extract::Options {
        privileged: ids == all,
        ids,
    }
}

/// A path for messages.
pub(crate) fn show(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// A unique name for a temporary file or directory.
pub(crate) fn temp_name(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    PathBuf::from(format!("{prefix}.{}.{n}.{t:x}", std::process::id()))
}
