//! Control groups: where a container's processes are accounted and limited.
//!
//! ferry writes the cgroup filesystem directly instead of using the
//! cgroups-rs crate: cgroups-rs 0.5 always pulls in zbus (an async D-Bus
//! stack), a second nix and thiserror 1, and its v1 `Cgroup::new` creates
//! the group in every hierarchy it knows and reads many files on the way,
//! while `create` is on the hot path and a v1-hybrid host (this one) needs
//! care it does not take (a cgroup2 mount that holds no controllers).
//!
//! * [`layout`] finds the hierarchies (v1, v2 or hybrid) and our own cgroup;
//! * [`path`] turns `linux.cgroupsPath` into one directory per hierarchy;
//! * [`Manager`] creates the directories, applies `linux.resources` through
//!   [`v1`] or [`v2`], and puts the init in them before it runs anything;
//! * [`CgroupState`] is what `state.json` keeps to find the cgroup again
//!   for `delete`, `kill --all`, `ps`, `pause`, `update` and `events`;
//! * [`systemd`] is the systemd driver (`--systemd-cgroup`): a transient
//!   scope made over D-Bus (zbus) instead of directories made by ferry.

mod bpf;
mod convert;
mod devices;
mod fs;
mod layout;
mod manager;
pub mod oom;
mod path;
mod record;
pub mod stats;
mod systemd;
mod v1;
mod v2;

use std::path::PathBuf;

pub use convert::{blkio_weight_to_io_weight, parse_size, shares_to_weight, swap_to_v2};
pub use layout::{Layout, detect, own_dirs};
pub use manager::{Manager, Options, Planned, has_limits, update};
pub use record::CgroupState;

/// Errors managing a container's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("systemd not running: cannot use the systemd cgroup driver")]
    SystemdNotRunning,
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("cgroup controller {0} is not available on this host")]
    NoController(String),
    #[error("cgroup file {0} is not available on this host")]
    NoFile(String),
    #[error("{0} is not supported on cgroup {1}")]
    Unsupported(String, &'static str),
    #[error("invalid {field} {value}: {reason}")]
    InvalidValue {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("invalid configuration: linux.resources.unified cannot be used on cgroup v1")]
    UnifiedOnV1,
    #[error("the container's cgroup is frozen: thaw it first or use another cgroupsPath")]
    Frozen,
    #[error("container has no cgroup")]
    NoCgroup,
    #[error("cgroups are not mounted on this host")]
    NotMounted,
    #[error("cannot {0} the cgroup: it did not settle in time")]
    Timeout(&'static str),
    #[error("device cgroup program: {0}")]
    Bpf(String),
    #[error("systemd: {0}")]
    Systemd(String),
}

impl CgroupError {
    pub(crate) fn invalid(
        field: &'static str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        CgroupError::InvalidValue {
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
