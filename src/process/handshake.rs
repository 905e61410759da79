//! What the container's init and an exec'd process share: clone a child
//! with a sync channel, talk the [`sync`] protocol with it, and kill and
//! reap it when the parent's side fails.

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::sync::{self, FromInit, ToInit, UnexpectedMessage};
use super::{ProcessError, clone_into};
use crate::syscall::Forked;

/// A child cloned by [`clone_child`], seen from the parent.
pub(crate) struct Child {
    pub pid: Pid,
    /// The parent's end of the channel.
    sock: OwnedFd,
    /// Whether the child was born in the cgroup it was cloned into.
    pub born_in_cgroup: bool,
}

/// Make the channel and clone with `flags` (born in the v2 cgroup `into`
/// where the kernel allows): the child runs `child` on its end of the
/// channel, which never returns (it execs or exits; `Infallible` stands
/// for `!`). Single-threaded callers only.
pub(crate) fn clone_child(
    flags: u64,
    into: Option<OwnedFd>,
    child: impl FnOnce(OwnedFd) -> Infallible,
) -> Result<Child, ProcessError> {
    let (parent_sock, child_sock) = sync::pair().map_err(|source| ProcessError::Sys {
        what: "socketpair",
        source,
    })?;
    let (forked, born_in_cgroup) =
        clone_into(flags, into.as_ref().map(|fd| fd.as_fd())).map_err(|source| {
            ProcessError::Sys {
                what: "clone3",
                source,
            }
        })?;
    drop(into);
    match forked {
        Forked::Child => {
            drop(parent_sock);
            // `child` returns `Infallible`, so rustc already knows the call
            // never returns; the empty match says so to the type checker.
            #[allow(unreachable_code)]
            match child(child_sock) {}
        }
        Forked::Parent(pid) => Ok(Child {
            pid,
            sock: parent_sock,
            born_in_cgroup,
        }),
    }
}

impl Child {
    /// A child cloned some other way (a rootless `exec`'s intermediate
    /// clones it), with the parent's end of its channel.
    pub(crate) fn adopt(pid: Pid, sock: OwnedFd, born_in_cgroup: bool) -> Child {
        Child {
            pid,
            sock,
            born_in_cgroup,
        }
    }

    /// Run the parent's side of the set-up, `steps`; when it fails, kill
    /// and reap the child. Returns the child's pid.
    pub(crate) fn handshake(
        self,
        steps: impl FnOnce(&Child) -> Result<(), ProcessError>,
    ) -> Result<Pid, ProcessError> {
        match steps(&self) {
            Ok(()) => Ok(self.pid),
            Err(e) => {
                kill_and_reap(self.pid);
                Err(e)
            }
        }
    }

    /// Send [`ToInit::Source`] with `fd` attached; failing means the child
    /// is gone.
    pub(crate) fn send_source(
        &self,
        index: usize,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), ProcessError> {
        sync::send_source(&self.sock, index, fd).map_err(|_| ProcessError::InitDied)
    }

    /// Send `msg`; failing means the child is gone.
    pub(crate) fn send(&self, msg: ToInit) -> Result<(), ProcessError> {
        sync::send_to_init(&self.sock, msg).map_err(|_| ProcessError::InitDied)
    }

    /// The child's next message; a seccomp listener fd it sends on the way
    /// is handed to the seccomp `agent` here.
    pub(crate) fn recv(
        &self,
        agent: Option<&crate::seccomp::Agent>,
    ) -> Result<FromInit, ProcessError> {
        loop {
            let (msg, fd) =
                crate::seccomp::agent::recv_fd(&self.sock).map_err(|_| ProcessError::InitDied)?;
            match FromInit::decode(&msg)? {
                FromInit::Seccomp => {
                    let (Some(fd), Some(agent)) = (fd, agent) else {
                        return Err(ProcessError::InitDied);
                    };
                    agent.send(self.pid.as_raw(), fd.as_fd())?;
                }
                other => return Ok(other),
            }
        }
    }
}

/// What a message that ends the set-up means: `Ok` for `done`, the
/// child's own error text, [`ProcessError::InitDied`] at end of file, or
/// an error naming a message out of place.
pub(crate) fn finish(msg: FromInit, done: &FromInit) -> Result<(), ProcessError> {
    match msg {
        m if &m == done => Ok(()),
        FromInit::Error(text) => Err(ProcessError::Init(text)),
        FromInit::Gone => Err(ProcessError::InitDied),
        other => Err(UnexpectedMessage::out_of_place(&other).into()),
    }
}

/// SIGKILL `pid` and wait for it: how ferry ends a child of its own that
/// it gave up on.
pub fn kill_and_reap(pid: Pid) {
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
}
