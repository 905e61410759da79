//! The container's terminal: a pty made inside the container's devpts,
//! its master sent over `--console-socket`, its slave the init's stdio.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::stat::Mode;

use crate::fs::Root;
use crate::syscall;

/// Errors setting up the terminal.
#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    #[error("terminal: {what}: {source}")]
    Sys { what: &'static str, source: Errno },
    #[error("process.terminal is set but no --console-socket was given")]
    NoConsoleSocket,
    #[error("/dev/console in the container is {0}: refusing to mount the terminal on it")]
    ConsoleTarget(&'static str),
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> TtyError {
    move |source| TtyError::Sys { what, source }
}

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
    syscall::unlock_pty(master.as_fd()).map_err(sys("unlock pty"))?;
    let slave = syscall::open_pty_peer(master.as_fd()).map_err(sys("open pty slave"))?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        syscall::set_winsize(master.as_fd(), &ws).map_err(sys("set window size"))?;
    }
    // /dev/console: bind the slave there, as runc does.
    if console {
        // By fds, with the new mount API: no path through the container's
        // /proc (which its rootfs could have redirected) is involved.
        let target = console_target()?;
        let mnt = crate::syscall::open_tree_clone_fd(slave.as_fd(), false)
            .map_err(sys("bind /dev/console"))?;
        crate::syscall::move_mount_fd(mnt.as_fd(), target.as_fd())
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
    syscall::set_controlling_tty(slave.as_fd()).map_err(sys("set controlling terminal"))?;
    nix::unistd::dup2_stdin(&slave).map_err(sys("dup pty to stdin"))?;
    nix::unistd::dup2_stdout(&slave).map_err(sys("dup pty to stdout"))?;
    nix::unistd::dup2_stderr(&slave).map_err(sys("dup pty to stderr"))?;
    Ok(())
}

/// The mount target for the terminal: `/dev/console` of the container
/// (after `pivot_root`, `/` is its root), made as an empty file when
/// missing. The rootfs is the attacker's: a symlink there (say to
/// `/proc/sys/kernel/core_pattern`) would put the pty over its target, so
/// the last component is never followed, and only a regular file or a
/// character device (the host's /dev bound in) is accepted, as runc 1.2.8
/// does. The returned `O_PATH` fd is the inode that was checked.
fn console_target() -> Result<OwnedFd, TtyError> {
    use nix::sys::stat::{SFlag, fstat};
    let root = Root::open(Path::new("/")).map_err(sys("open /"))?;
    let dev = root
        .resolve(Path::new("/dev"))
        .map_err(sys("open /dev in the container"))?;
    let create = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_RDONLY;
    match openat(
        &dev,
        "console",
        create | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(source) => {
            return Err(TtyError::Sys {
                what: "create /dev/console",
                source,
            });
        }
    }
    let target = openat(
        &dev,
        "console",
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open /dev/console"))?;
    let kind = fstat(&target).map_err(sys("stat /dev/console"))?.st_mode & SFlag::S_IFMT.bits();
    match SFlag::from_bits_truncate(kind) {
        SFlag::S_IFREG | SFlag::S_IFCHR => Ok(target),
        SFlag::S_IFLNK => Err(TtyError::ConsoleTarget("a symlink")),
        SFlag::S_IFDIR => Err(TtyError::ConsoleTarget("a directory")),
        _ => Err(TtyError::ConsoleTarget("not a regular file")),
    }
}

/// Give the pty on stdin (the slave [`setup_terminal`] made) to the process
/// user `uid`, keeping its group (devpts' `gid=5`, tty), as runc does: a
/// non-root process could not otherwise use its own terminal.
pub fn give_to(uid: u32) -> Result<(), TtyError> {
    if uid == 0 {
        // Made by the container's root: already its owner.
        return Ok(());
    }
    let stdin = std::io::stdin();
    nix::unistd::fchown(
        std::os::fd::AsFd::as_fd(&stdin),
        Some(nix::unistd::Uid::from_raw(uid)),
        None,
    )
    .map_err(sys("give the pty to the process user"))
}

/// A connected socket pair standing in for `--console-socket` when ferry
/// bridges the terminal itself: (our end, the init's end).
pub fn console_pair() -> Result<(OwnedFd, OwnedFd), TtyError> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("console socketpair"))
}

/// Receive the pty master sent by [`setup_terminal`].
pub fn recv_master(sock: &OwnedFd) -> Result<OwnedFd, TtyError> {
    let mut buf = [0u8; 64];
    let (_, fd) =
        syscall::recv_with_fd(sock.as_fd(), &mut buf).map_err(sys("receive pty master"))?;
    fd.ok_or(TtyError::Sys {
        what: "receive pty master",
        source: Errno::EBADMSG,
    })
}

/// Copy between the user's terminal and the pty `master` until `pid`
/// exits: stdin in raw mode (restored on return), window size on SIGWINCH,
/// other signals forwarded. Returns the exit code (128+N if killed).
pub fn bridge(
    master: &OwnedFd,
    set: &nix::sys::signal::SigSet,
    pid: nix::unistd::Pid,
) -> Result<i32, TtyError> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::Signal;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::termios;
    use std::os::fd::AsFd;

    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        copy_winsize(master);
    }
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC).map_err(sys("signalfd"))?;
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    let code = 'outer: loop {
        let mut fds = vec![
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => {
                break Err(TtyError::Sys {
                    what: "poll",
                    source: e,
                });
            }
            Ok(_) => {}
        }
        let ready = |i: usize, fds: &[PollFd]| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, master_ready, stdin_ready) =
            (ready(0, &fds), ready(1, &fds), ready(2, &fds));
        drop(fds);
        if master_ready {
            match nix::unistd::read(master, &mut buf) {
                Ok(n) if n > 0 => write_all(std::io::stdout().as_fd(), &buf[..n]),
                // EIO: every slave fd is closed; the exit follows as SIGCHLD.
                _ => {}
            }
        }
        if stdin_ready {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(n) if n > 0 => write_all(master.as_fd(), &buf[..n]),
                _ => stdin_open = false,
            }
        }
        if sig_ready && let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {
                    if let Some(code) = crate::signals::reap(pid) {
                        // Drain what the container printed last.
                        while let Ok(n) = nix::unistd::read(master, &mut buf) {
                            if n == 0 || !poll_now(master) {
                                break;
                            }
                            write_all(std::io::stdout().as_fd(), &buf[..n]);
                        }
                        break 'outer Ok(code);
                    }
                }
                Ok(Signal::SIGWINCH) => copy_winsize(master),
                Ok(sig) => {
                    let _ = nix::sys::signal::kill(pid, sig);
                }
                Err(_) => {}
            }
        }
    };
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, t);
    }
    code
}

fn poll_now(fd: &OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

/// Give the pty the size of the user's terminal.
fn copy_winsize(master: &OwnedFd) {
    if let Ok(ws) = syscall::get_winsize(std::io::stdin().as_fd()) {
        let _ = syscall::set_winsize(master.as_fd(), &ws);
    }
}
