//! The errors of a child's set-up (the container's init or an exec'd
//! process): the child sends their text to the parent, which prints it.

use crate::capabilities::CapsError;
use crate::namespaces::NamespaceError;
use crate::rootfs::RootfsError;
use crate::tty::TtyError;

/// Errors inside the init; the parent prints them.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Tty(#[from] TtyError),
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error("{0}")]
    Exec(String),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    Trampoline(#[from] super::trampoline::TrampolineError),
    #[error("config.json has no process")]
    NoProcess,
    #[error("cannot set hostname without a UTS namespace")]
    HostnameWithoutUts,
    #[error("cwd {0:?} is not a directory inside the container")]
    Cwd(String),
    #[error("rlimit {0}: {1}")]
    Rlimit(String, nix::Error),
}

/// Turn a failed call `what` into an [`InitError`].
pub(super) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> InitError {
    let what = what.into();
    move |source| InitError::Sys { what, source }
}
