//! seccomp(2): installing a BPF filter.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`: install a BPF filter on
/// the calling thread. With `SECCOMP_FILTER_FLAG_NEW_LISTENER` the kernel
/// returns the (close-on-exec) listener fd.
pub fn seccomp_set_filter(
    prog: &[libc::sock_filter],
    flags: libc::c_ulong,
) -> Result<Option<OwnedFd>, Errno> {
    let len = u16::try_from(prog.len()).map_err(|_| Errno::EINVAL)?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` initialised instructions that outlive
    // the call; the kernel copies them and never writes through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    let ret = Errno::result(ret)?;
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER a successful call returns a fresh fd
        // that nothing else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
    } else {
        Ok(None)
    }
}
