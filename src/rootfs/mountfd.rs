//! Mounts made on file descriptors with the new mount API, so that no
//! mount source or target is ever named by a path that could be resolved
//! again (`/proc/self/fd/N` goes through whatever `/proc` is at the time):
//! a new filesystem is `fsopen` + `fsconfig` + `fsmount`, a bind is
//! `open_tree(OPEN_TREE_CLONE)`, both are detached mounts whose flags are
//! set with `mount_setattr` before `move_mount` attaches them on the
//! target fd. The mount fd then names the attached mount itself, for its
//! propagation and as an anchor for paths below it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::statvfs::{FsFlags, fstatvfs};

use crate::syscall;

/// Superblock flags of `mount(2)` and their `fsconfig` names.
const SB_FLAGS: &[(MsFlags, &str)] = &[
    (MsFlags::MS_RDONLY, "ro"),
    (MsFlags::MS_SYNCHRONOUS, "sync"),
    (MsFlags::MS_DIRSYNC, "dirsync"),
    (MsFlags::MS_LAZYTIME, "lazytime"),
    (MsFlags::MS_MANDLOCK, "mand"),
];

/// Per-mount flags of `mount(2)` and their `MOUNT_ATTR_*` bits.
const MNT_FLAGS: &[(MsFlags, u64)] = &[
    (MsFlags::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
    (MsFlags::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
    (MsFlags::MS_NODEV, libc::MOUNT_ATTR_NODEV),
    (MsFlags::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    (MsFlags::MS_NODIRATIME, libc::MOUNT_ATTR_NODIRATIME),
    (
        MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
        libc::MOUNT_ATTR_NOSYMFOLLOW,
    ),
];

/// Every attribute a bind remount replaces (the atime is handled apart).
const REPLACED: u64 = libc::MOUNT_ATTR_RDONLY
    | libc::MOUNT_ATTR_NOSUID
    | libc::MOUNT_ATTR_NODEV
    | libc::MOUNT_ATTR_NOEXEC
    | libc::MOUNT_ATTR_NOSYMFOLLOW;

/// The `MOUNT_ATTR_*` bits of `flags` (per-mount flags and atime mode).
pub fn attr_bits(flags: MsFlags) -> u64 {
    let mut out = MNT_FLAGS
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .fold(0, |acc, (_, a)| acc | a);
    if flags.contains(MsFlags::MS_NOATIME) {
        out |= libc::MOUNT_ATTR_NOATIME;
    } else if flags.contains(MsFlags::MS_STRICTATIME) {
        out |= libc::MOUNT_ATTR_STRICTATIME;
    }
    out
}

fn asks_atime(flags: MsFlags) -> bool {
    flags.intersects(
        MsFlags::MS_NOATIME
            | MsFlags::MS_STRICTATIME
            | MsFlags::MS_RELATIME
            | MsFlags::MS_NODIRATIME,
    )
}

/// An attribute change: bits to set and bits to clear.
pub fn attr(set: u64, clr: u64) -> libc::mount_attr {
    libc::mount_attr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    }
}

/// The change `mount(MS_BIND | MS_REMOUNT | flags)` makes: the asked
/// per-mount flags set, the others cleared, the atime kept unless one is
/// asked. With `keep` (a user namespace, where the kernel locks the flags
/// the mount came with) nothing is cleared.
pub fn remount_attr(flags: MsFlags, keep: bool) -> libc::mount_attr {
    let set = attr_bits(flags);
    let mut clr = if keep { 0 } else { REPLACED & !set };
    if asks_atime(flags) {
        clr |= libc::MOUNT_ATTR__ATIME;
        if !keep || flags.contains(MsFlags::MS_NODIRATIME) {
            clr |= libc::MOUNT_ATTR_NODIRATIME & !set;
        }
    }
    attr(set, clr)
}

/// Split `key=value` filesystem data into its `fsconfig` call; a quoted
/// value (SELinux `context="..."`) loses its quotes, as `mount(2)` does.
fn config_one(ctx: &OwnedFd, opt: &str) -> Result<(), Errno> {
    match opt.split_once('=') {
        Some((key, value)) => {
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            syscall::fsconfig_set_string(ctx.as_fd(), key, value)
        }
        None => syscall::fsconfig_set_flag(ctx.as_fd(), opt),
    }
}

/// A new, detached filesystem of `fstype`, as `mount(2)` would make it from
/// `source`, `flags` and `data`, not attached anywhere yet.
pub fn new_fs(
    fstype: &str,
    source: &str,
    flags: MsFlags,
    data: &[String],
) -> Result<OwnedFd, Errno> {
    let ctx = syscall::fsopen(fstype)?;
    if !source.is_empty() {
        syscall::fsconfig_set_string(ctx.as_fd(), "source", source)?;
    }
    for (_, name) in SB_FLAGS.iter().filter(|(f, _)| flags.contains(*f)) {
        syscall::fsconfig_set_flag(ctx.as_fd(), name)?;
    }
    for opt in data.iter().filter(|o| !o.is_empty()) {
        config_one(&ctx, opt)?;
    }
    syscall::fsconfig_create(ctx.as_fd())?;
    syscall::fsmount(ctx.as_fd(), attr_bits(flags))
}

/// A detached copy of the mount tree at the host path `source` (just its
/// top mount unless `recursive`).
pub fn clone_path(source: &Path, recursive: bool) -> Result<OwnedFd, Errno> {
    syscall::open_tree_clone(source, recursive)
}

/// A detached copy of the mount tree at what `fd` refers to.
pub fn clone_fd(fd: &OwnedFd, recursive: bool) -> Result<OwnedFd, Errno> {
    syscall::open_tree_clone_fd(fd.as_fd(), recursive)
}

/// Change the attributes of the mount `mnt` (and its submounts).
pub fn set_attr(mnt: &OwnedFd, a: &libc::mount_attr, recursive: bool) -> Result<(), Errno> {
    if a.attr_set == 0 && a.attr_clr == 0 {
        return Ok(());
    }
    syscall::mount_setattr_fd(mnt.as_fd(), recursive, a)
}

/// Attach the detached mount `mnt` on `target`.
pub fn attach(mnt: &OwnedFd, target: &OwnedFd) -> Result<(), Errno> {
    syscall::move_mount_fd(mnt.as_fd(), target.as_fd())
}

/// Apply a propagation change (`MS_SHARED`, ... with `MS_REC`) to `mnt`.
pub fn set_propagation(mnt: &OwnedFd, p: MsFlags) -> Result<(), Errno> {
    let kind =
        p & (MsFlags::MS_SHARED | MsFlags::MS_SLAVE | MsFlags::MS_PRIVATE | MsFlags::MS_UNBINDABLE);
    let a = libc::mount_attr {
        attr_set: 0,
        attr_clr: 0,
        propagation: kind.bits(),
        userns_fd: 0,
    };
    syscall::mount_setattr_fd(mnt.as_fd(), p.contains(MsFlags::MS_REC), &a)
}

/// Make the mount `mnt` read-only, every other flag kept.
pub fn make_readonly(mnt: &OwnedFd, recursive: bool) -> Result<(), Errno> {
    set_attr(mnt, &attr(libc::MOUNT_ATTR_RDONLY, 0), recursive)
}

/// Whether the mount at `fd` is read-only.
pub fn is_readonly(fd: &OwnedFd) -> bool {
    fstatvfs(fd).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remount_replaces_flags_and_keeps_atime() {
        let a = remount_attr(MsFlags::MS_RDONLY, false);
        assert_eq!(a.attr_set, libc::MOUNT_ATTR_RDONLY);
        assert_eq!(
            a.attr_clr & libc::MOUNT_ATTR_NOSUID,
            libc::MOUNT_ATTR_NOSUID
        );
        assert_eq!(a.attr_clr & libc::MOUNT_ATTR__ATIME, 0);
        let a = remount_attr(MsFlags::MS_RDONLY | MsFlags::MS_NOATIME, true);
        assert_eq!(
            a.attr_set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(a.attr_clr, libc::MOUNT_ATTR__ATIME);
    }
}
