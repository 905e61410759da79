//! Switching `/` to the container's rootfs.

use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir};

use super::mountfd;
use super::{RootfsError, sys};

/// `pivot_root(".", ".")` inside the rootfs, then lazily detach the old
/// root, which the pivot stacked on top of the new one.
pub fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", dir, Mode::empty()).map_err(sys("open /"))?;
    let new = open(rootfs, dir, Mode::empty()).map_err(sys("open the rootfs"))?;
    fchdir(&new).map_err(sys("enter the rootfs"))?;
    nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root"))?;
    fchdir(&old).map_err(sys("enter the old root"))?;
    // Unmounting the old root must not reach the host's mounts.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("make the old root a slave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach the old root"))?;
    chdir("/").map_err(sys("chdir /"))
}

/// The `--no-pivot` way, for roots on ramfs: move the rootfs over `/` and
/// chroot into it.
pub fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    chdir(rootfs).map_err(sys("enter the rootfs"))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(sys("move the rootfs to /"))?;
    chroot(".").map_err(sys("chroot"))?;
    chdir("/").map_err(sys("chdir /"))
}

/// `root.readonly`: make the mount at `/` read-only (just that mount, its
/// other flags kept), on an fd, so no `/proc` is needed.
pub fn remount_root_readonly() -> Result<(), RootfsError> {
    let root = open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(sys("open /"))?;
    mountfd::make_readonly(&root, false).map_err(sys("remount / read-only"))
}
