//! The errors of a container's lifecycle: one type for every operation,
//! wrapping the typed errors of the modules below.

use std::path::PathBuf;

use super::criu::CheckpointError;
use super::rules::Op;
use super::{Status, StoreError};
use crate::cgroups::CgroupError;
use crate::config::ConfigError;
use crate::process::ProcessError;

/// Errors of a container's lifecycle.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operation is not allowed in the container's status.
    #[error("{}", .op.refusal(.id, *.status))]
    Refused { id: String, op: Op, status: Status },
    #[error("cannot start container {0}: its init exited before start")]
    InitExited(String),
    #[error("container {id}: {what}: {source}")]
    Io {
        id: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("kill container {id}: {source}")]
    Signal { id: String, source: nix::Error },
    #[error("container {id}: init {pid} did not exit after SIGKILL")]
    Unkillable { id: String, pid: i32 },
    #[error("container {id} has no cgroup of its own: {consequence}")]
    NoCgroup {
        id: String,
        consequence: &'static str,
    },
    #[error("container {0}: the freezer cgroup controller is not available")]
    NoFreezer(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    Tty(#[from] crate::tty::TtyError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    #[error("systemd cgroup driver requested but systemd not running")]
    SystemdNotRunning,
    #[error("config.json has no process")]
    NoProcess,
    #[error("--console-socket was given but process.terminal is false")]
    ConsoleWithoutTerminal,
    #[error("connect to console socket {}: {source}", path.display())]
    ConsoleSocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bundle {}: {source}", path.display())]
    Bundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write pid file {}: {source}", path.display())]
    PidFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Setup {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("container init exited during create")]
    InitGone,
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// What `CreateOptions::on_clone` failed to do with the new init.
    #[error("container {id}: after clone: {source}")]
    OnClone { id: String, source: std::io::Error },
    /// A bad `exec --cgroup` argument, or one the container cannot honour.
    #[error("{0}")]
    ExecCgroup(String),
}
