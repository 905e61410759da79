//! Extended attributes (nix has no wrappers).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// `fsetxattr(fd, name, value, 0)`.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: the fd is open, name is NUL-terminated and value is a valid
    // slice for its length; the kernel only reads them.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// `lgetxattr(path, name, buf)`: the value's length, written into `buf`.
pub fn lgetxattr(path: &CStr, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: path and name are NUL-terminated; buf is writable for its
    // length, which is what we pass.
    let r = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    Errno::result(r).map(|n| n as usize)
}

/// `llistxattr(path, buf)`: the length of the NUL-separated name list
/// written into `buf`.
pub fn llistxattr(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: path is NUL-terminated; buf is writable for its length, which
    // is what we pass.
    let r = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    Errno::result(r).map(|n| n as usize)
}
