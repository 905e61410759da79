//! Idmapped bind mounts: `mounts[].uidMappings`/`gidMappings` and the
//! `idmap`/`ridmap` options (runtime-spec 1.2).
//!
//! Meaning, as runc implements it: the mapping goes as given into the
//! `uid_map`/`gid_map` of a user namespace attached to the mount, so a file
//! the source filesystem says is owned by `containerID + n` shows as owned
//! by `hostID + n`, in the ids of ferry's caller. A container with a user
//! namespace of its own then sees that id through its own mapping: with
//! the same mapping on the mount and the container, the container sees the
//! ids stored on disk.
//!
//! Where: the kernel idmaps a mount only for a caller with `CAP_SYS_ADMIN`
//! in the user namespace that owns the source's filesystem (for a host
//! filesystem: root in the initial user namespace) and only while the mount
//! is detached. A container init in a user namespace of its own never has
//! that capability. So ferry's parent does the privileged half before the
//! clone ([`prepare`]): a detached copy of the source (`open_tree` with
//! `OPEN_TREE_CLONE`), a user namespace holding the mapping (a short-lived
//! child unshares it and the parent writes its maps), and `mount_setattr`
//! with `MOUNT_ATTR_IDMAP`. The init inherits the fds and attaches them in
//! its own mount namespace ([`attach`]) with `move_mount`, then applies the
//! usual remount flags and propagation. A rootless caller gets a clear
//! error from [`prepare`], before the container exists.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::anchors::Anchors;
use super::mountfd;
use super::mounts::{mount_err, place, propagate, set_recursive};
use super::options::MountOptions;
use super::{Plan, RootfsError};
use crate::fs::Root;
use crate::syscall::{self, Forked};

/// A detached, idmapped copy of the source of `mounts[index]`.
pub struct Detached {
    pub index: usize,
    pub fd: OwnedFd,
}

/// Whether a `mounts[]` entry asks for an idmapped mount.
pub fn wanted(m: &Mount) -> bool {
    m.uid_mappings().is_some()
        || m.gid_mappings().is_some()
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "idmap" || o == "ridmap")
}

/// The container's own user namespace maps (uid, gid), if it gets one.
pub type UsernsMaps<'a> = Option<(&'a [LinuxIdMapping], &'a [LinuxIdMapping])>;

/// Make the idmapped mounts of `spec`, detached. Runs in ferry's parent,
/// before the clone; `userns` serves `idmap` entries that bring no maps.
pub fn prepare(
    spec: &Spec,
    bundle: &Path,
    userns: UsernsMaps,
) -> Result<Vec<Detached>, RootfsError> {
    let mut out = Vec::new();
    // Entries with the same maps share one user namespace.
    let mut namespaces: Vec<(String, OwnedFd)> = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        if !wanted(m) {
            continue;
        }
        let dest = m.destination();
        let fail = |msg: String| RootfsError::Idmap {
            dest: dest.to_path_buf(),
            msg,
        };
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        if !opts.is_bind() && m.typ().as_deref() != Some("bind") {
            return Err(fail("only bind mounts can be idmapped".into()));
        }
        let (uid, gid) = maps_of(m, userns).map_err(|e| fail(e.into()))?;
        let source = source_of(m, bundle);
        let recursive_tree = opts.flags.contains(MsFlags::MS_REC);
        let fd = syscall::open_tree_clone(&source, recursive_tree).map_err(|e| {
            refused(&source, "open_tree", e)
                .unwrap_or_else(|| fail(format!("open {}: {e}", source.display())))
        })?;
        let key = format!("{}|{}", table(uid), table(gid));
        let ns = match namespaces.iter().position(|(k, _)| *k == key) {
            Some(i) => &namespaces[i].1,
            None => {
                let ns = mapping_userns(uid, gid).map_err(fail)?;
                namespaces.push((key, ns));
                &namespaces[namespaces.len() - 1].1
            }
        };
        let attr = libc::mount_attr {
            attr_set: libc::MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: ns.as_raw_fd() as u64,
        };
        syscall::mount_setattr_fd(fd.as_fd(), opts.idmap_recursive, &attr).map_err(|e| {
            refused(&source, "mount_setattr", e).unwrap_or_else(|| {
                fail(format!(
                    "mount_setattr(MOUNT_ATTR_IDMAP) on {}: {e} (does its filesystem support idmapped mounts?)",
                    source.display()
                ))
            })
        })?;
        out.push(Detached { index, fd });
    }
    Ok(out)
}

/// EPERM from the kernel: the caller lacks CAP_SYS_ADMIN over the source's
/// filesystem (always so for a rootless caller on a host filesystem).
fn refused(source: &Path, step: &str, e: Errno) -> Option<RootfsError> {
    (e == Errno::EPERM).then(|| {
        RootfsError::IdmapNotAllowed(format!(
            "{step} {}: {e}: the kernel idmaps a mount only for a caller with CAP_SYS_ADMIN \
             in the user namespace that owns its filesystem{}",
            source.display(),
            if crate::userns::is_rootless() {
                " (a rootless caller has it only for filesystems mounted in its own user namespace)"
            } else {
                ""
            }
        ))
    })
}

/// The entry's maps, or the container's for `idmap` without maps.
fn maps_of<'a>(
    m: &'a Mount,
    userns: UsernsMaps<'a>,
) -> Result<(&'a [LinuxIdMapping], &'a [LinuxIdMapping]), &'static str> {
    let uid = m.uid_mappings().as_deref().unwrap_or_default();
    let gid = m.gid_mappings().as_deref().unwrap_or_default();
    match (uid.is_empty(), gid.is_empty()) {
        (false, false) => Ok((uid, gid)),
        (true, true) => userns.ok_or(
            "idmap without uidMappings and gidMappings needs a container user namespace to take them from",
        ),
        _ => Err("uidMappings and gidMappings must be given together"),
    }
}

fn table(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace holding the maps, as an fd: a child unshares it (by
/// cloning into it) and waits on a pipe while we write its maps and open
/// its `ns/user`; closing the pipe lets it exit.
fn mapping_userns(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd, String> {
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let flags = libc::CLONE_NEWUSER as u64;
    let pid = match syscall::clone3_fork(flags, None)
        .map_err(|e| format!("clone a user namespace: {e}"))?
    {
        Forked::Child => {
            drop(wr);
            let mut b = [0u8; 1];
            // EOF when the parent closes its end (or dies).
            while nix::unistd::read(&rd, &mut b) == Err(Errno::EINTR) {}
            syscall::exit_now(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop(rd);
    let res = (|| {
        write_map(pid, "uid_map", uid)?;
        write_map(pid, "gid_map", gid)?;
        File::open(format!("/proc/{pid}/ns/user"))
            .map(OwnedFd::from)
            .map_err(|e| format!("open the user namespace of the mapping: {e}"))
    })();
    drop(wr);
    if res.is_err() {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let _ = waitpid(pid, None);
    res
}

fn write_map(pid: Pid, file: &str, maps: &[LinuxIdMapping]) -> Result<(), String> {
    std::fs::write(format!("/proc/{pid}/{file}"), table(maps)).map_err(|e| {
        format!(
            "write {file} {:?} of the mapping's user namespace: {e}",
            table(maps).trim_end()
        )
    })
}

/// Attach the idmapped copy `fd` of mount entry `m` in the container's
/// rootfs, its remount flags set before, its propagation after. Runs in
/// the init.
pub fn attach(
    root: &Root,
    anchors: &mut Anchors,
    plan: &Plan,
    m: &Mount,
    fd: &OwnedFd,
) -> Result<(), RootfsError> {
    let dest = m.destination();
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let what = m
        .source()
        .as_deref()
        .unwrap_or(Path::new(""))
        .display()
        .to_string();
    let extra = opts.remount_flags();
    if !extra.is_empty() {
        mountfd::set_attr(fd, &mountfd::remount_attr(extra, plan.userns), false)
            .map_err(|e| mount_err(&format!("remount idmapped {what}"), dest, e))?;
    }
    set_recursive(fd, &opts, dest)?;
    place(root, anchors, fd, dest, false)?;
    propagate(fd, &opts, dest)
}

/// The source path of an entry: relative ones are in the bundle.
fn source_of(m: &Mount, bundle: &Path) -> PathBuf {
    let s = m.source().clone().unwrap_or_default();
    if s.is_absolute() { s } else { bundle.join(s) }
}
