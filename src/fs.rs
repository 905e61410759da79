//! Paths inside the container's root, resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: a symlink (absolute,
//! relative or `..`) can never lead out of the root, and the result is an
//! `O_PATH` fd, so what gets mounted on is what was checked.
//!
//! A strict root ([`Root::strict`]) is for kernel filesystems (procfs):
//! there every component must be a plain entry of the same mount
//! (`RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS`).

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// An open directory that paths are resolved in, as if it were `/`.
pub struct Root {
    fd: OwnedFd,
    strict: bool,
}

/// What a `*_tracked` call created, so that it can be removed again when
/// the mount it was made for is refused: (parent directory, name, is a
/// directory), in creation order.
#[derive(Default)]
pub struct Made(Vec<(OwnedFd, OsString, bool)>);

impl Made {
    /// Remove what was created, newest first. Directories are removed only
    /// while empty.
    pub fn undo(self) {
        for (parent, name, dir) in self.0.into_iter().rev() {
            let how = if dir {
                UnlinkatFlags::RemoveDir
            } else {
                UnlinkatFlags::NoRemoveDir
            };
            let _ = unlinkat(parent.as_fd(), name.as_os_str(), how);
        }
    }

    fn push(&mut self, parent: &OwnedFd, name: &std::ffi::OsStr, dir: bool) {
        if let Ok(parent) = parent.try_clone() {
            self.0.push((parent, name.to_owned(), dir));
        }
    }
}

/// The magic-link path of an fd, usable as a `mount(2)` target or source.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl Root {
    /// Open `path` (a host path) as a root.
    pub fn open(path: &Path) -> Result<Root, Errno> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd, strict: false })
    }

    /// A root at the directory `fd` (a mount ferry made).
    pub fn from_fd(fd: OwnedFd) -> Root {
        Root { fd, strict: false }
    }

    /// A root at `fd` in which no symlink is followed and no mount crossed:
    /// for procfs, whose layout the container must not be able to bend.
    pub fn strict(fd: OwnedFd) -> Root {
        Root { fd, strict: true }
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Resolve `path` inside the root to an `O_PATH` fd.
    pub fn resolve(&self, path: &Path) -> Result<OwnedFd, Errno> {
        self.open_in(path, OFlag::O_PATH)
    }

    /// Resolve `path` inside the root to an `O_PATH` fd without following
    /// any symlink (`ELOOP` if there is one on the way).
    pub fn resolve_no_symlinks(&self, path: &Path) -> Result<OwnedFd, Errno> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let rel = relative(path);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel.as_path()
        };
        openat2(self.fd.as_fd(), rel, how)
    }

    /// Open `path` inside the root with `flags` (plus `O_CLOEXEC`).
    pub fn open_in(&self, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        let resolve = if self.strict {
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
        } else {
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(resolve);
        let rel = relative(path);
        if rel.as_os_str().is_empty() && flags == OFlag::O_PATH {
            // The root itself, which may be a file (a file bind mount).
            return self
                .fd
                .try_clone()
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EMFILE)));
        }
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel.as_path()
        };
        openat2(self.fd.as_fd(), rel, how)
    }

    /// Resolve `path`, creating missing directories (mode `mode`) on the way.
    /// A dangling symlink on the way is followed (inside the root) and its
    /// target created, as `mkdir -p` would.
    pub fn mkdir_all(&self, path: &Path, mode: Mode) -> Result<OwnedFd, Errno> {
        self.mkdir_all_depth(path, mode, 0, &mut Made::default())
    }

    /// [`Root::mkdir_all`], recording what it created in `made`.
    pub fn mkdir_all_tracked(
        &self,
        path: &Path,
        mode: Mode,
        made: &mut Made,
    ) -> Result<OwnedFd, Errno> {
        self.mkdir_all_depth(path, mode, 0, made)
    }

    /// `path` resolved when it exists (or the error other than `ENOENT`);
    /// `None` when it is missing and may be created. `ELOOP` once more than
    /// 40 dangling links have been followed on the way.
    fn existing(&self, path: &Path, depth: u32) -> Option<Result<OwnedFd, Errno>> {
        match self.resolve(path) {
            Err(Errno::ENOENT) if depth > 40 => Some(Err(Errno::ELOOP)),
            Err(Errno::ENOENT) => None,
            other => Some(other),
        }
    }

    fn mkdir_all_depth(
        &self,
        path: &Path,
        mode: Mode,
        depth: u32,
        made: &mut Made,
    ) -> Result<OwnedFd, Errno> {
        if let Some(found) = self.existing(path, depth) {
            return found;
        }
        let mut cur = self.resolve(Path::new("/"))?;
        let mut sofar = PathBuf::new();
        for comp in relative(path).components() {
            let parent = sofar.clone();
            sofar.push(comp);
            let Component::Normal(name) = comp else {
                cur = self.resolve(&sofar)?;
                continue;
            };
            cur = match self.resolve(&sofar) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(cur.as_fd(), name, mode) {
                        Ok(()) => {
                            made.push(&cur, name, true);
                            self.resolve(&sofar)?
                        }
                        Err(Errno::EEXIST) => {
                            // A dangling symlink: create what it points to.
                            let full = link_target(&cur, name, &parent)?;
                            self.mkdir_all_depth(&full, mode, depth + 1, made)?;
                            self.resolve(&sofar)?
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
        }
        Ok(cur)
    }

    /// Resolve `path`, creating it as an empty regular file (and its parent
    /// directories) when missing: the target of a file bind mount.
    pub fn create_file(&self, path: &Path, mode: Mode) -> Result<OwnedFd, Errno> {
        self.create_file_tracked(path, mode, &mut Made::default())
    }

    /// [`Root::create_file`], recording what it created in `made`.
    pub fn create_file_tracked(
        &self,
        path: &Path,
        mode: Mode,
        made: &mut Made,
    ) -> Result<OwnedFd, Errno> {
        self.create_file_depth(path, mode, 0, made)
    }

    fn create_file_depth(
        &self,
        path: &Path,
        mode: Mode,
        depth: u32,
        made: &mut Made,
    ) -> Result<OwnedFd, Errno> {
        if let Some(found) = self.existing(path, depth) {
            return found;
        }
        let rel = relative(path);
        let name = rel.file_name().ok_or(Errno::EINVAL)?;
        let parent = self.mkdir_all_tracked(
            rel.parent().unwrap_or(Path::new("")),
            Mode::from_bits_truncate(0o755),
            made,
        )?;
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        match openat(parent.as_fd(), name, flags, mode) {
            Ok(_) => made.push(&parent, name, false),
            Err(Errno::EEXIST) => {
                // A dangling symlink: create what it points to (inside the
                // root), as runc does.
                if let Ok(full) = link_target(&parent, name, rel.parent().unwrap_or(Path::new("")))
                {
                    self.create_file_depth(&full, mode, depth + 1, made)?;
                }
            }
            Err(e) => return Err(e),
        }
        self.resolve(path)
    }
}

/// Where the symlink `name` in `dir` (which is `at` inside the root) points,
/// as a path inside the root: an absolute target replaces `at`.
fn link_target(dir: &OwnedFd, name: &std::ffi::OsStr, at: &Path) -> Result<PathBuf, Errno> {
    let target = nix::fcntl::readlinkat(dir.as_fd(), name)?;
    Ok(at.join(target))
}

/// `path` made relative (a leading `/` dropped, `.` components removed).
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferry-path-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let d = tempdir("escape");
        std::fs::create_dir_all(d.join("root/etc")).unwrap();
        symlink("/etc", d.join("root/abs")).unwrap();
        symlink("../../../../etc", d.join("root/rel")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        assert_eq!(
            real(&root.resolve(Path::new("/abs")).unwrap()),
            d.join("root/etc")
        );
        assert_eq!(
            real(&root.resolve(Path::new("rel")).unwrap()),
            d.join("root/etc")
        );
        assert_eq!(
            real(&root.resolve(Path::new("/../../")).unwrap()),
            d.join("root")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn mkdir_all_creates_through_inner_symlinks() {
        let d = tempdir("mkdir");
        std::fs::create_dir_all(d.join("root")).unwrap();
        symlink("/elsewhere", d.join("root/link")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        let fd = root
            .mkdir_all(Path::new("/link/a/b"), Mode::from_bits_truncate(0o755))
            .unwrap();
        assert_eq!(real(&fd), d.join("root/elsewhere/a/b"));
        let f = root
            .create_file(Path::new("/link/file"), Mode::from_bits_truncate(0o644))
            .unwrap();
        assert_eq!(real(&f), d.join("root/elsewhere/file"));
        assert!(!Path::new("/elsewhere").exists());
        // A dangling link as the file itself, absolute and relative.
        symlink("/etc/target", d.join("root/dangling")).unwrap();
        symlink("sub/t2", d.join("root/dangling2")).unwrap();
        let f = root
            .create_file(Path::new("/dangling"), Mode::from_bits_truncate(0o644))
            .unwrap();
        assert_eq!(real(&f), d.join("root/etc/target"));
        let f = root
            .create_file(Path::new("/dangling2"), Mode::from_bits_truncate(0o644))
            .unwrap();
        assert_eq!(real(&f), d.join("root/sub/t2"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn magic_links_are_refused() {
        let d = tempdir("magic");
        std::fs::create_dir_all(d.join("root")).unwrap();
        symlink("/proc/self/root", d.join("root/me")).unwrap();
        let root = Root::open(&d.join("root")).unwrap();
        // Inside the root, /proc does not exist, so the link dangles.
        assert!(root.resolve(Path::new("/me/etc")).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
