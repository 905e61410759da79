//! Rootless image work with the caller's subordinate ids, as podman does.
//!
//! A layer's files belong to many owners (root, `daemon`, an app user). An
//! unprivileged caller can only own files itself, so [`run_mapped`] runs
//! the work (extracting, copying, removing layer files) in a forked child
//! inside a new user namespace that maps 0 to the caller and 1..=N to its
//! first `/etc/subuid` and `/etc/subgid` ranges (written by `newuidmap` and
//! `newgidmap`). There the child is root over N+1 ids, so owner 1000 of a
//! layer becomes host id `subuid start + 999` on disk, and the bundles
//! ferry makes map the same ids ([`mappings`]) so the container sees 1000
//! again. Without ranges (or without `newuidmap`) the work runs in place
//! and every owner becomes the caller (the extraction says so).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;

use super::maps::{self, IdMapError, Maps};
use super::subids::{SubIds, mappings, subordinate_ids};
use crate::syscall::Forked;

/// Errors entering the mapped user namespace.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: nix::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Map(#[from] IdMapError),
    /// The work itself failed; its message.
    #[error("{0}")]
    Failed(String),
}

/// Run `work` with the caller's subordinate ids: in a child in a mapped user
/// namespace when the caller is unprivileged and has ranges, else here.
/// The child's stdio is ours; its failure comes back as
/// [`UsernsError::Failed`] with the work's message.
pub fn run_mapped(work: impl FnOnce() -> Result<(), String>) -> Result<(), UsernsError> {
    let Some(ids) = subordinate_ids() else {
        return work().map_err(UsernsError::Failed);
    };
    let env: Vec<String> = std::env::var("PATH")
        .map(|p| vec![format!("PATH={p}")])
        .unwrap_or_default();
    if ["newuidmap", "newgidmap"]
        .iter()
        .any(|t| crate::path_lookup::lookup(t, &env).is_err())
    {
        log::warn!(
            "newuidmap and newgidmap (package uidmap) are needed to use your subordinate ids: \
             files of the image's other users become yours"
        );
        return work().map_err(UsernsError::Failed);
    }
    let (uid, gid) = mappings(&ids);
    let io = |what| move |source| UsernsError::Io { what, source };
    let (mut parent, mut child) = UnixStream::pair().map_err(io("socketpair"))?;
    // The image commands are single-threaded until here (import starts its
    // extraction threads inside `work`, in the child), so the child may go
    // on running ordinary Rust code.
    match crate::syscall::fork().map_err(|source| UsernsError::Sys {
        what: "fork",
        source,
    })? {
        Forked::Child => {
            drop(parent);
            let code = match child_side(&mut child, work) {
                Ok(()) => 0,
                Err(msg) => {
                    let _ = child.write_all(msg.as_bytes());
                    1
                }
            };
            let _ = std::io::stdout().flush();
            std::process::exit(code);
        }
        Forked::Parent(pid) => {
            drop(child);
            let res = parent_side(&mut parent, pid, &uid, &gid, &ids);
            if res.is_err() {
                let _ = kill(pid, Signal::SIGKILL);
            }
            let status = waitpid(pid, None).map_err(|source| UsernsError::Sys {
                what: "wait for the user namespace child",
                source,
            });
            res?;
            let mut msg = String::new();
            let _ = parent.read_to_string(&mut msg);
            match status? {
                WaitStatus::Exited(_, 0) => Ok(()),
                WaitStatus::Exited(..) if !msg.is_empty() => Err(UsernsError::Failed(msg)),
                WaitStatus::Signaled(_, sig, _) => Err(UsernsError::Failed(format!(
                    "the work in the user namespace was killed by {sig}"
                ))),
                other => Err(UsernsError::Failed(format!(
                    "the work in the user namespace ended: {other:?}"
                ))),
            }
        }
    }
}

/// In the child: a new user namespace, mapped by the parent, then `work`.
fn child_side(
    sock: &mut UnixStream,
    work: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("new user namespace: {e}"))?;
    sock.write_all(b"U")
        .map_err(|e| format!("user namespace sync: {e}"))?;
    let mut go = [0u8; 1];
    sock.read_exact(&mut go)
        .map_err(|e| format!("user namespace sync: {e}"))?;
    work()
}

/// In the parent: map the child's ids once it has its namespace.
fn parent_side(
    sock: &mut UnixStream,
    pid: Pid,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
    ids: &SubIds,
) -> Result<(), UsernsError> {
    let io = |what| move |source| UsernsError::Io { what, source };
    let mut ready = [0u8; 1];
    sock.read_exact(&mut ready)
        .map_err(io("wait for the user namespace"))?;
    let uid = Maps {
        kind: "uid",
        maps: uid,
        own: ids.uid,
    };
    let gid = Maps {
        kind: "gid",
        maps: gid,
        own: ids.gid,
    };
    maps::write(pid, &uid, &gid)?;
    sock.write_all(b"G").map_err(io("user namespace sync"))
}
