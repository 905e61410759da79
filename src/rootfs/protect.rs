//! `maskedPaths`, `readonlyPaths` and `sysctl`, applied after `pivot_root`.
//!
//! Paths are found from the mounts ferry made ([`Anchors`]), never by
//! walking the rootfs's names again (a `proc` swapped for a symlink would
//! otherwise take the masks to a decoy); sysctls are written through the
//! proven procfs handle ([`ProcFs`]). Every mount here is made detached,
//! flagged, then attached on the target fd.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{SFlag, fstat};

use super::RootfsError;
use super::anchors::Anchors;
use super::mountfd;
use super::mounts::mount_err;
use super::procfs::ProcFs;
use crate::fs::Root;

fn resolve_existing(
    root: &Root,
    anchors: &Anchors,
    path: &Path,
) -> Result<Option<OwnedFd>, RootfsError> {
    let create_err = |source| RootfsError::Create {
        path: path.to_path_buf(),
        source,
    };
    let located = anchors.locate(root, path).map_err(create_err)?;
    match located.root().resolve(&located.rest) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(source) => Err(create_err(source)),
    }
}

fn is_dir(fd: &OwnedFd, path: &Path) -> Result<bool, RootfsError> {
    let st = fstat(fd).map_err(|e| mount_err("stat", path, e))?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// Hide `path`: a read-only empty tmpfs over a directory, a read-only bind
/// of `/dev/null` over anything else (as runc). Missing paths are skipped,
/// as runc does.
pub fn mask(root: &Root, anchors: &mut Anchors, path: &Path) -> Result<(), RootfsError> {
    let Some(target) = resolve_existing(root, anchors, path)? else {
        return Ok(());
    };
    let mnt = if is_dir(&target, path)? {
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let data = ["size=0".to_string(), "mode=0555".to_string()];
        mountfd::new_fs("tmpfs", "tmpfs", flags, &data)
            .map_err(|e| mount_err("tmpfs mask", path, e))?
    } else {
        let null = dev_null(root, anchors, path)?;
        let mnt = mountfd::clone_fd(&null, false).map_err(|e| mount_err("/dev/null", path, e))?;
        mountfd::make_readonly(&mnt, false).map_err(|e| mount_err("/dev/null", path, e))?;
        mnt
    };
    mountfd::attach(&mnt, &target).map_err(|e| mount_err("mask", path, e))?;
    anchors
        .add(path, &mnt)
        .map_err(|e| mount_err("mask", path, e))
}

/// The container's `/dev/null`, checked to be the null device: a file
/// swapped in its place would leak its content instead of hiding the
/// masked path.
fn dev_null(root: &Root, anchors: &Anchors, path: &Path) -> Result<OwnedFd, RootfsError> {
    let null = resolve_existing(root, anchors, Path::new("/dev/null"))?
        .ok_or_else(|| mount_err("/dev/null", path, Errno::ENOENT))?;
    let st = fstat(&null).map_err(|e| mount_err("stat /dev/null", path, e))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
        || st.st_rdev != nix::sys::stat::makedev(1, 3)
    {
        return Err(mount_err(
            "/dev/null (not the null device)",
            path,
            Errno::EINVAL,
        ));
    }
    Ok(null)
}

/// Make `path` read-only with a recursive bind onto itself whose top mount
/// is then made read-only; every other flag (`noexec`, `nosuid`, ...) stays
/// as it was, as runc does.
pub fn make_readonly(root: &Root, anchors: &mut Anchors, path: &Path) -> Result<(), RootfsError> {
    let Some(target) = resolve_existing(root, anchors, path)? else {
        return Ok(());
    };
    let mnt = mountfd::clone_fd(&target, true).map_err(|e| mount_err("read-only bind", path, e))?;
    mountfd::make_readonly(&mnt, false).map_err(|e| mount_err("read-only remount", path, e))?;
    mountfd::attach(&mnt, &target).map_err(|e| mount_err("read-only bind", path, e))?;
    anchors
        .add(path, &mnt)
        .map_err(|e| mount_err("read-only bind", path, e))
}

/// Write `value` to `sys/KEY` (dots become slashes) of the procfs `proc`.
pub fn write_sysctl(proc: &ProcFs, key: &str, value: &str) -> Result<(), RootfsError> {
    let err = |msg: String| RootfsError::Sysctl {
        key: key.into(),
        msg,
    };
    if key.is_empty() || key.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
        return Err(err("invalid key".into()));
    }
    let path = Path::new("sys").join(key.replace('.', "/"));
    let fd = proc
        .open(&path, OFlag::O_WRONLY | OFlag::O_TRUNC)
        .map_err(|e| err(e.desc().into()))?;
    std::fs::File::from(fd)
        .write_all(value.as_bytes())
        .map_err(|e| err(e.to_string()))
}
