//! Switching `/` to the container's rootfs.

use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir};

use super::{RootfsError, sys};
use super::{mountfd, procfs};

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
    hide_outside_proc_and_sys(rootfs)?;
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

/// Without `pivot_root` the host's mounts stay in our mount namespace,
/// below the chroot: a whole procfs or sysfs there would let the container
/// mount a fresh, unmasked one in a user namespace of its own (the kernel
/// allows that when one is already fully visible in the namespace). So,
/// as runc does, detach every procfs and sysfs outside the rootfs, or
/// cover it with a tmpfs where it cannot be detached.
fn hide_outside_proc_and_sys(rootfs: &Path) -> Result<(), RootfsError> {
    let proc = match procfs::trusted() {
        Ok(p) => p,
        Err(_) => &procfs::ProcFs::host().map_err(sys("open /proc"))?,
    };
    let text = proc
        .read_thread_self(Path::new("mountinfo"))
        .map_err(sys("read mountinfo"))?;
    for point in proc_and_sys_outside(&text, rootfs) {
        hide(&point)?;
    }
    Ok(())
}

/// The mount points of procfs and sysfs in `mountinfo` outside `rootfs`.
fn proc_and_sys_outside(mountinfo: &str, rootfs: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = PathBuf::from(unescape(left.split(' ').nth(4)?));
            let fstype = right.split(' ').next()?;
            let outside = !point.starts_with(rootfs);
            (outside && matches!(fstype, "proc" | "sysfs")).then_some(point)
        })
        .collect()
}

/// mountinfo's `\NNN` octal escapes undone.
fn unescape(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

/// Detach the mount at `point` (its removal kept from the host), or cover
/// it with an empty tmpfs.
fn hide(point: &Path) -> Result<(), RootfsError> {
    let slave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
    match mount(None::<&str>, point, None::<&str>, slave, None::<&str>) {
        // Gone with a parent detached before.
        Err(nix::Error::ENOENT) => return Ok(()),
        r => r.map_err(sys(format!("make {} a slave", point.display())))?,
    }
    match umount2(point, MntFlags::MNT_DETACH) {
        Err(nix::Error::EINVAL | nix::Error::EPERM) => mount(
            Some("tmpfs"),
            point,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(sys(format!("cover {}", point.display()))),
        r => r.map_err(sys(format!("detach {}", point.display()))),
    }
}

/// `root.readonly`: make the mount at `/` read-only (just that mount, its
/// other flags kept), on an fd, so no `/proc` is needed.
pub fn remount_root_readonly() -> Result<(), RootfsError> {
    let root = open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(sys("open /"))?;
    mountfd::make_readonly(&root, false).map_err(sys("remount / read-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_proc_and_sys_outside_the_rootfs() {
        let mi = "22 1 0:5 / /proc rw - proc proc rw\n\
                  23 1 0:6 / /sys rw - sysfs sysfs rw\n\
                  24 1 0:7 / /a\\040b rw - proc proc rw\n\
                  25 1 0:8 / /r/proc rw - proc proc rw\n\
                  26 1 0:9 / /tmp rw - tmpfs tmpfs rw\n";
        let got = proc_and_sys_outside(mi, Path::new("/r"));
        let want: Vec<PathBuf> = ["/proc", "/sys", "/a b"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(got, want);
    }
}
