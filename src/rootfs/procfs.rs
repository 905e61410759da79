//! A procfs handle that the container cannot redirect.
//!
//! After `pivot_root`, `/proc` is a name in the container's rootfs, and
//! anything with write access to the rootfs (a shared volume, a second
//! container) can swap it for a symlink to a decoy tree while the container
//! starts (CVE-2025-52881). So ferry never resolves `/proc` by name during
//! set-up: it keeps an fd on a mount it proved to be procfs (`fstatfs`
//! magic, root inode) and opens everything below it with
//! `RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS`, so no symlink
//! and no mount on the way can bend the lookup. The container's init uses
//! the procfs it mounted itself (or a private detached one when the config
//! mounts none); `exec` uses the host's `/proc`, opened before it joins the
//! container's mount namespace.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{OFlag, readlinkat};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, fstat};
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

use super::mountfd;
use crate::fs::Root;

/// The inode number of procfs's root directory.
const PROC_ROOT_INO: u64 = 1;

/// The root of a procfs mount, proven to be one.
pub struct ProcFs {
    root: Root,
    fd: RawFd,
}

impl ProcFs {
    /// Take `fd` as procfs after checking that it is the root of a procfs.
    pub fn verify(fd: OwnedFd) -> Result<ProcFs, Errno> {
        let is_proc = fstatfs(&fd)?.filesystem_type() == PROC_SUPER_MAGIC;
        if !is_proc || fstat(&fd)?.st_ino != PROC_ROOT_INO {
            return Err(Errno::EXDEV);
        }
        let raw = fd.as_raw_fd();
        Ok(ProcFs {
            root: Root::strict(fd),
            fd: raw,
        })
    }

    /// A private procfs of our pid namespace, detached (never visible in
    /// any mount namespace).
    pub fn private() -> Result<ProcFs, Errno> {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        ProcFs::verify(mountfd::new_fs("proc", "proc", flags, &[])?)
    }

    /// The caller's `/proc`: only while the caller's root is the host's.
    pub fn host() -> Result<ProcFs, Errno> {
        let fd = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        ProcFs::verify(fd)
    }

    /// Open `rel` below the procfs root, with no symlink and no mount
    /// crossing on the way.
    pub fn open(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        self.root.open_in(rel, flags)
    }

    /// `thread-self` as this procfs names the calling thread
    /// (`PID/task/TID`), read from the link, never followed.
    fn thread_self(&self) -> Result<PathBuf, Errno> {
        let link = readlinkat(self.root.fd().as_fd(), "thread-self")?;
        let link = PathBuf::from(link);
        let plain = link.components().count() == 3
            && link.components().all(|c| match c {
                std::path::Component::Normal(n) => n
                    .to_str()
                    .is_some_and(|s| s == "task" || s.bytes().all(|b| b.is_ascii_digit())),
                _ => false,
            });
        if !plain {
            return Err(Errno::EXDEV);
        }
        Ok(link)
    }

    /// Open `rel` in the calling thread's directory (`/proc/thread-self/REL`).
    pub fn open_thread_self(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        self.open(&self.thread_self()?.join(rel), flags)
    }

    /// Whether `/proc/thread-self/REL` exists.
    pub fn thread_self_has(&self, rel: &Path) -> bool {
        self.open_thread_self(rel, OFlag::O_PATH).is_ok()
    }

    /// Read `/proc/thread-self/REL`.
    pub fn read_thread_self(&self, rel: &Path) -> Result<String, Errno> {
        let fd = self.open_thread_self(rel, OFlag::O_RDONLY)?;
        let mut out = String::new();
        std::fs::File::from(fd)
            .read_to_string(&mut out)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(out)
    }

    /// Write `value` to `/proc/thread-self/REL` in one write.
    pub fn write_thread_self(&self, rel: &Path, value: &[u8]) -> std::io::Result<()> {
        let fd = self.open_thread_self(rel, OFlag::O_WRONLY)?;
        std::fs::File::from(fd).write_all(value)
    }

    /// The raw fd of the handle (for the list of ferry's own fds).
    pub fn raw_fd(&self) -> RawFd {
        self.fd
    }

    /// The same handle on an fd numbered at least `min` (above the fds
    /// the container inherits, so it can never be passed on).
    fn moved_above(self, min: RawFd) -> Result<ProcFs, Errno> {
        if self.fd >= min {
            return Ok(self);
        }
        ProcFs::verify(crate::syscall::dup_above(self.root.fd().as_fd(), min)?)
    }
}

static TRUSTED: OnceLock<ProcFs> = OnceLock::new();

/// Make `proc` the procfs handle of this process (the init or an `exec`
/// child), on an fd numbered at least `min`. Only the first call counts.
pub fn install(proc: ProcFs, min: RawFd) -> Result<(), Errno> {
    let proc = proc.moved_above(min)?;
    let _ = TRUSTED.set(proc);
    Ok(())
}

/// This process's procfs handle, once installed.
pub fn trusted() -> Result<&'static ProcFs, Errno> {
    TRUSTED.get().ok_or(Errno::ENOENT)
}

/// The trusted procfs handle's raw fd, if any (ferry's own, never passed).
pub fn trusted_fd() -> Option<RawFd> {
    TRUSTED.get().map(ProcFs::raw_fd)
}
