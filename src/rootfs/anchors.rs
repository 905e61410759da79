//! The mounts ferry made, by destination, each with an fd on the mount
//! itself. A path below one of them is resolved from that fd, never again
//! through the names in the rootfs above it: whoever can write the rootfs
//! may swap `rootfs/proc` for a symlink at any moment, but the procfs ferry
//! mounted stays what the fd names. Inside procfs the lookup is strict (no
//! symlink, no mount crossing); elsewhere it stays inside the mount.

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

use crate::fs::Root;

/// Mounts ferry made, newest last.
#[derive(Default)]
pub struct Anchors {
    list: Vec<(PathBuf, OwnedFd)>,
}

/// Where a path lies: the root to resolve it in and the path relative to it.
pub struct Located<'a> {
    mount: Option<Root>,
    rootfs: &'a Root,
    /// The path below the root.
    pub rest: PathBuf,
}

impl Located<'_> {
    /// The root to resolve [`Located::rest`] in.
    pub fn root(&self) -> &Root {
        self.mount.as_ref().unwrap_or(self.rootfs)
    }
}

/// `path` made absolute and clean: `.` dropped, `..` taken lexically.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl Anchors {
    /// Record that `mnt` is mounted at `dest`.
    pub fn add(&mut self, dest: &Path, mnt: &OwnedFd) -> Result<(), Errno> {
        let fd = mnt
            .try_clone()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EMFILE)))?;
        self.list.push((normalize(dest), fd));
        Ok(())
    }

    /// The newest mount at exactly `dest`.
    pub fn at(&self, dest: &Path) -> Option<&OwnedFd> {
        let dest = normalize(dest);
        self.list
            .iter()
            .rev()
            .find(|(d, _)| *d == dest)
            .map(|(_, fd)| fd)
    }

    /// The deepest mount that holds `path` (the newest of equals: `max_by_key`
    /// keeps the last), or the
    /// rootfs, with the rest of the path below it.
    pub fn locate<'a>(&self, rootfs: &'a Root, path: &Path) -> Result<Located<'a>, Errno> {
        let path = normalize(path);
        let best = self
            .list
            .iter()
            .filter(|(d, _)| path.starts_with(d))
            .max_by_key(|(d, _)| d.components().count());
        let Some((dest, fd)) = best else {
            return Ok(Located {
                mount: None,
                rootfs,
                rest: path,
            });
        };
        let rest = path
            .strip_prefix(dest)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let fd = fd
            .try_clone()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EMFILE)))?;
        let is_proc = fstatfs(&fd)?.filesystem_type() == PROC_SUPER_MAGIC;
        let mount = if is_proc {
            Root::strict(fd)
        } else {
            Root::from_fd(fd)
        };
        Ok(Located {
            mount: Some(mount),
            rootfs,
            rest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(
            normalize(Path::new("proc/./sys/../kcore")),
            Path::new("/proc/kcore")
        );
        assert_eq!(normalize(Path::new("/../..")), Path::new("/"));
        assert_eq!(normalize(Path::new("/dev/")), Path::new("/dev"));
    }
}
