//! File descriptors: close-on-exec sweeps and duplication.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// Mark every fd from `first` up close-on-exec, so nothing of ferry's
/// reaches the container: `close_range` with `CLOSE_RANGE_CLOEXEC`, or where
/// that fails (a kernel before 5.11, a seccomp filter without it), `F_SETFD`
/// on each open fd ([`cloexec_each_from`]).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only changes fd flags in our own table.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    match Errno::result(ret) {
        Ok(_) => Ok(()),
        Err(_) => cloexec_each_from(first),
    }
}

/// fd numbers [`cloexec_each_from`] asks `poll` about per call.
const POLL_CHUNK: i32 = 1024;

/// The fallback of [`cloexec_from`]: `F_SETFD` on each open fd from `first`
/// below the `RLIMIT_NOFILE` soft limit. `poll` finds the open ones
/// (`POLLNVAL` marks a number with no fd), [`POLL_CHUNK`] numbers a call,
/// several times faster than an `fcntl` per number; `/proc` is not used, as
/// the container's may be absent or hostile. An fd above the soft limit,
/// which exists only when the limit was lowered after it was opened, is not
/// reached.
fn cloexec_each_from(first: u32) -> Result<(), Errno> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`, which outlives the call.
    Errno::result(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    let end = i32::try_from(lim.rlim_cur).unwrap_or(i32::MAX);
    // poll refuses more entries than the soft limit.
    let chunk = POLL_CHUNK.min(end.max(1));
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(chunk as usize);
    let mut start = i32::try_from(first).unwrap_or(i32::MAX);
    while start < end {
        let stop = start.saturating_add(chunk).min(end);
        fds.clear();
        fds.extend((start..stop).map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        }));
        // SAFETY: `fds` holds `fds.len()` initialised pollfds that outlive
        // the call; poll only writes their `revents`; a zero timeout never
        // blocks.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        Errno::result(ret)?;
        for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL == 0) {
            // SAFETY: F_SETFD changes only the flags of an fd in our own
            // table; one closed since the poll just returns EBADF.
            let _ = unsafe { libc::fcntl(p.fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        start = stop;
    }
    Ok(())
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a close-on-exec copy of `fd` on the
/// lowest free number at least `min`.
pub fn dup_above(fd: BorrowedFd<'_>, min: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer argument and returns a new fd
    // or -1; `fd` is open for the duration of the call.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    let fd = Errno::result(ret)?;
    // SAFETY: on success the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `recvmsg(2)` with `MSG_CMSG_CLOEXEC`: one message into `buf` and the
/// first fd attached to it (`SCM_RIGHTS`), if any; further fds are closed.
/// Returns the message's length.
pub fn recv_with_fd(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<(usize, Option<OwnedFd>), Errno> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut first = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for raw in fds {
                // SAFETY: the kernel just installed this fd in our table
                // for us; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                first.get_or_insert(owned);
            }
        }
    }
    Ok((msg.bytes, first))
}

/// `fcntl(fd, F_SETFD, 0)`: let the fd numbered `fd` (if open) survive
/// `execve`. For the fds a container inherits by number
/// (`--preserve-fds`), which nothing in ferry owns.
pub fn clear_cloexec(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: F_SETFD changes only the flags of an fd number in our own
    // table; a number with no fd just returns EBADF.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// `close(2)` on the fd number `fd` in a child that is about to become
/// another program: a copy of a parent's fd that the child must not keep
/// (its `OwnedFd`, if any, is never dropped in this process).
pub fn close_inherited(fd: RawFd) {
    // SAFETY: closing an fd number changes only our own fd table; the
    // caller guarantees nothing in this process uses the number again.
    unsafe { libc::close(fd) };
}

/// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`.
pub fn eventfd_nonblocking() -> Result<OwnedFd, Errno> {
    // SAFETY: eventfd takes an initial count and flags and returns a new fd
    // or -1; it touches no memory of ours.
    let raw = Errno::result(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Whether `path` (not followed if a symlink) is the root of a mount
/// (`statx` with `STATX_ATTR_MOUNT_ROOT`, Linux 5.8).
pub fn is_mount_root(path: &std::path::Path) -> Result<bool, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: an all-zero statx is a valid value of the plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `stx` is writable for the
    // call; the kernel reads the one and fills the other.
    let ret = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            0,
            &mut stx,
        )
    };
    Errno::result(ret)?;
    if stx.stx_attributes_mask & libc::STATX_ATTR_MOUNT_ROOT as u64 == 0 {
        return Err(Errno::ENOSYS);
    }
    Ok(stx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `F_GETFD` of `fd`, or the error.
    fn fd_flags(fd: RawFd) -> Result<i32, Errno> {
        // SAFETY: F_GETFD only reads the flags of an fd in our table.
        Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })
    }

    /// A non-close-on-exec copy of `src` at number `at`.
    fn inheritable_copy(src: &std::fs::File, at: RawFd) -> OwnedFd {
        // SAFETY: dup2 onto a number this test owns; on success `at` is a
        // fresh fd (dup2 leaves FD_CLOEXEC clear) that nothing else owns.
        Errno::result(unsafe { libc::dup2(src.as_raw_fd(), at) }).expect("dup2");
        // SAFETY: see above.
        unsafe { OwnedFd::from_raw_fd(at) }
    }

    #[test]
    fn the_fallback_marks_open_fds_from_first_only() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let below = inheritable_copy(&file, 700);
        let at = inheritable_copy(&file, 701);
        let above = inheritable_copy(&file, 1000);
        assert_eq!(fd_flags(701), Ok(0));
        cloexec_each_from(701).unwrap();
        assert_eq!(fd_flags(700), Ok(0), "below `first` must stay inheritable");
        assert_eq!(fd_flags(701), Ok(libc::FD_CLOEXEC));
        assert_eq!(fd_flags(1000), Ok(libc::FD_CLOEXEC));
        drop((below, at, above));
    }
}
