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
use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};

use crate::process::idmap::{self, Maps};
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
    Map(#[from] idmap::IdMapError),
    /// The work itself failed; its message.
    #[error("{0}")]
    Failed(String),
}

/// One subordinate range: first host id and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub len: u32,
}

/// The caller's own ids and first subordinate ranges.
#[derive(Debug, Clone, Copy)]
pub struct SubIds {
    pub uid: u32,
    pub gid: u32,
    pub subuid: Range,
    pub subgid: Range,
}

/// The unprivileged caller's subordinate ids, if it has both kinds. `None`
/// for root, and for a caller that already is root in a user namespace (as
/// under `podman unshare`): that one works with the ids it has.
pub fn subordinate_ids() -> Option<SubIds> {
    let (uid, gid) = idmap::own_ids();
    if uid == 0 {
        return None;
    }
    let first = |file: &str, own: u32| {
        idmap::subordinate_ranges(std::path::Path::new(file), own)
            .into_iter()
            .find_map(|(start, len)| {
                Some(Range {
                    start: u32::try_from(start).ok()?,
                    len: u32::try_from(len).ok().filter(|&n| n > 0)?,
                })
            })
    };
    Some(SubIds {
        uid,
        gid,
        subuid: first("/etc/subuid", uid)?,
        subgid: first("/etc/subgid", gid)?,
    })
}

fn mapping(container: u32, host: u32, size: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(container)
        .host_id(host)
        .size(size)
        .build()
        .expect("all fields set")
}

/// The uid and gid maps: 0 is the caller, 1..=N its subordinate range.
pub fn mappings(s: &SubIds) -> (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>) {
    (
        vec![
            mapping(0, s.uid, 1),
            mapping(1, s.subuid.start, s.subuid.len),
        ],
        vec![
            mapping(0, s.gid, 1),
            mapping(1, s.subgid.start, s.subgid.len),
        ],
    )
}

/// How many ids, counting up from 0, exist in this process's user namespace
/// (the smaller of uids and gids): all of them outside any user namespace.
pub fn mapped_ids() -> u64 {
    let contiguous = |file: &str| -> u64 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut lines: Vec<(u64, u64)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                (f.len() == 3).then(|| (f[0], f[2]))
            })
            .collect();
        lines.sort_unstable();
        let mut next = 0;
        for (inside, count) in lines {
            if inside == next {
                next += count;
            }
        }
        next
    };
    contiguous("/proc/self/uid_map").min(contiguous("/proc/self/gid_map"))
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
        .any(|t| crate::process::exec::lookup(t, &env).is_err())
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
    idmap::write(pid, &uid, &gid)?;
    sock.write_all(b"G").map_err(io("user namespace sync"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_put_the_caller_at_zero_and_its_range_after() {
        let s = SubIds {
            uid: 1000,
            gid: 1001,
            subuid: Range {
                start: 100_000,
                len: 65_536,
            },
            subgid: Range {
                start: 200_000,
                len: 1000,
            },
        };
        let (u, g) = mappings(&s);
        let t = |m: &[LinuxIdMapping]| -> Vec<(u32, u32, u32)> {
            m.iter()
                .map(|m| (m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        assert_eq!(t(&u), [(0, 1000, 1), (1, 100_000, 65_536)]);
        assert_eq!(t(&g), [(0, 1001, 1), (1, 200_000, 1000)]);
    }

    #[test]
    fn every_id_exists_only_outside_a_user_namespace() {
        let n = mapped_ids();
        if crate::user::in_user_namespace() {
            assert!((1..4_294_967_295).contains(&n), "{n}");
        } else {
            assert_eq!(n, 4_294_967_295);
        }
    }
}
