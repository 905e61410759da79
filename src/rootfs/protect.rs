//! `maskedPaths`, `readonlyPaths` and `sysctl`, applied after `pivot_root`.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{SFlag, fstat};

use super::RootfsError;
use super::mounts::{mount_err, remount};
use super::path::{Root, fd_path};

fn resolve_existing(root: &Root, path: &Path) -> Result<Option<OwnedFd>, RootfsError> {
    match root.resolve(path) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(source) => Err(RootfsError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Hide `path`: a read-only empty tmpfs over a directory, `/dev/null` over
/// anything else. Missing paths are skipped, as runc does.
pub fn mask(root: &Root, path: &Path) -> Result<(), RootfsError> {
    let Some(fd) = resolve_existing(root, path)? else {
        return Ok(());
    };
    let st = fstat(&fd).map_err(|e| mount_err("stat", path, e))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(
            Some("tmpfs"),
            &fd_path(&fd),
            Some("tmpfs"),
            flags,
            Some("size=0,mode=0555"),
        )
        .map_err(|e| mount_err("tmpfs mask", path, e))
    } else {
        let null = root
            .resolve(Path::new("/dev/null"))
            .map_err(|e| mount_err("/dev/null", path, e))?;
        let st = fstat(&null).map_err(|e| mount_err("stat /dev/null", path, e))?;
        // Only a real /dev/null may mask: a file swapped in its place would
        // leak its content instead of hiding the masked path.
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
            || st.st_rdev != nix::sys::stat::makedev(1, 3)
        {
            return Err(mount_err(
                "/dev/null (not the null device)",
                path,
                Errno::EINVAL,
            ));
        }
        mount(
            Some(&fd_path(&null)),
            &fd_path(&fd),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| mount_err("/dev/null", path, e))
    }
}

/// Make `path` read-only with a bind mount onto itself.
pub fn make_readonly(root: &Root, path: &Path, userns: bool) -> Result<(), RootfsError> {
    let Some(fd) = resolve_existing(root, path)? else {
        return Ok(());
    };
    let p = fd_path(&fd);
    mount(
        Some(&p),
        &p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| mount_err("read-only bind", path, e))?;
    let top = root
        .resolve(path)
        .map_err(|e| mount_err("read-only bind", path, e))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    remount(&top, flags, userns).map_err(|e| mount_err("read-only remount", path, e))
}

/// Write `value` to `/proc/sys/KEY` (dots become slashes).
pub fn write_sysctl(root: &Root, key: &str, value: &str) -> Result<(), RootfsError> {
    let err = |msg: String| RootfsError::Sysctl {
        key: key.into(),
        msg,
    };
    if key.is_empty() || key.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
        return Err(err("invalid key".into()));
    }
    let path = Path::new("/proc/sys").join(key.replace('.', "/"));
    let fd = root
        .open_in(&path, OFlag::O_WRONLY | OFlag::O_TRUNC)
        .map_err(|e| err(e.desc().into()))?;
    std::fs::File::from(fd)
        .write_all(value.as_bytes())
        .map_err(|e| err(e.to_string()))
}
