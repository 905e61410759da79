//! The parent ⇄ init channel: a `SOCK_SEQPACKET` socketpair, one message
//! per step, so a message is never split or merged.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};

/// Parent to init: the user namespace is mapped, the cgroup joined: go on.
pub const GO: &[u8] = b"G";
/// Init to parent: mounts are made; run the prestart and createRuntime
/// hooks, then send GO.
pub const HOOKS: &[u8] = b"H";
/// Init to parent: set up and waiting for `start`.
pub const READY: &[u8] = b"R";
/// Init to parent: the seccomp listener fd is attached (`SCM_RIGHTS`);
/// hand it to the seccomp agent. No reply.
pub const SECCOMP: &[u8] = b"S";
/// Parent to init, before GO: the source of bind mount `mounts[N]` (the
/// rest of the message is N), opened by the parent, attached
/// (`SCM_RIGHTS`). No reply.
pub const SOURCE: u8 = b'M';
/// Init to parent: set up failed; the rest of the message says why.
pub const ERROR: u8 = b'E';

pub fn pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

pub fn send_msg(fd: &OwnedFd, msg: &[u8]) -> nix::Result<()> {
    send(fd.as_raw_fd(), msg, MsgFlags::MSG_NOSIGNAL).map(drop)
}

/// Receive one message; an empty one means the peer is gone.
pub fn recv_msg(fd: &OwnedFd) -> nix::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    loop {
        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Send an error report; false when nobody is listening any more.
pub fn send_error(fd: &OwnedFd, msg: &str) -> bool {
    let mut m = Vec::with_capacity(msg.len() + 1);
    m.push(ERROR);
    m.extend_from_slice(&msg.as_bytes()[..msg.len().min(4000)]);
    send_msg(fd, &m).is_ok()
}
