//! The container's terminal: a pty made inside the container's devpts,
//! its master sent over `--console-socket`, its slave the init's stdio.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::stat::Mode;

use crate::rootfs::path::{Root, fd_path};

/// Errors setting up the terminal.
#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    #[error("terminal: {what}: {source}")]
    Sys { what: &'static str, source: Errno },
    #[error("process.terminal is set but no --console-socket was given")]
    NoConsoleSocket,
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> TtyError {
    move |source| TtyError::Sys { what, source }
}

nix::ioctl_write_ptr_bad!(set_lock, libc::TIOCSPTLCK, libc::c_int);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_write_int_bad!(set_ctty, libc::TIOCSCTTY);

/// Make a pty in the container, send its master over `socket`, make the
/// slave the controlling terminal and stdio, and (for a container's init,
/// `console`) bind it on /dev/console.
pub fn setup_terminal(
    socket: &OwnedFd,
    size: Option<(u16, u16)>,
    console: bool,
) -> Result<(), TtyError> {
    let master = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open /dev/ptmx"))?;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which is valid.
    unsafe { set_lock(master.as_raw_fd(), &0) }.map_err(sys("unlock pty"))?;
    // SAFETY: TIOCGPTPEER returns a new fd for the slave or -1; no pointers.
    let raw = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY,
        )
    };
    let slave_raw = Errno::result(raw).map_err(sys("open pty slave"))?;
    // SAFETY: the ioctl returned a fresh fd that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(slave_raw) };
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize through the pointer, which is valid.
        unsafe { set_winsize(master.as_raw_fd(), &ws) }.map_err(sys("set window size"))?;
    }
    // /dev/console: bind the slave there, as runc does.
    if console
        && let Ok(root) = Root::open(Path::new("/"))
        && let Ok(target) =
            root.create_file(Path::new("/dev/console"), Mode::from_bits_truncate(0o600))
    {
        mount(
            Some(&fd_path(&slave)),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys("bind /dev/console"))?;
    }
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let name = b"/dev/ptmx";
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .map_err(sys("send pty master"))?;
    drop(master);
    nix::unistd::setsid().map_err(sys("setsid"))?;
    // SAFETY: TIOCSCTTY takes an integer argument; the fd is our pty slave.
    unsafe { set_ctty(slave.as_raw_fd(), 0) }.map_err(sys("set controlling terminal"))?;
    nix::unistd::dup2_stdin(&slave).map_err(sys("dup pty to stdin"))?;
    nix::unistd::dup2_stdout(&slave).map_err(sys("dup pty to stdout"))?;
    nix::unistd::dup2_stderr(&slave).map_err(sys("dup pty to stderr"))?;
    Ok(())
}
