//! Terminals: the pty ioctls nix has no safe functions for.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

nix::ioctl_write_ptr_bad!(ioctl_set_lock, libc::TIOCSPTLCK, libc::c_int);
nix::ioctl_write_ptr_bad!(ioctl_set_winsize, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_read_bad!(ioctl_get_winsize, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_int_bad!(ioctl_set_ctty, libc::TIOCSCTTY);

/// `TIOCSPTLCK` with 0: unlock the pty whose master is `master`.
pub fn unlock_pty(master: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which is valid.
    unsafe { ioctl_set_lock(master.as_raw_fd(), &0) }.map(drop)
}

/// `TIOCGPTPEER` with `O_RDWR | O_NOCTTY`: open the slave of `master`
/// without a path lookup.
pub fn open_pty_peer(master: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: TIOCGPTPEER takes integer flags and returns a new fd or -1;
    // no pointers are involved.
    let raw = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY,
        )
    };
    let fd = Errno::result(raw)?;
    // SAFETY: the ioctl returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `TIOCSWINSZ`: set the window size of the terminal `fd`.
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one winsize through the pointer, which is
    // valid for the call.
    unsafe { ioctl_set_winsize(fd.as_raw_fd(), ws) }.map(drop)
}

/// `TIOCGWINSZ`: the window size of the terminal `fd`.
pub fn get_winsize(fd: BorrowedFd<'_>) -> Result<libc::winsize, Errno> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer, which is
    // valid for the call.
    unsafe { ioctl_get_winsize(fd.as_raw_fd(), &mut ws) }?;
    Ok(ws)
}

/// `TIOCSCTTY` with 0: make the terminal `fd` the calling session's
/// controlling terminal.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument; no pointers.
    unsafe { ioctl_set_ctty(fd.as_raw_fd(), 0) }.map(drop)
}
