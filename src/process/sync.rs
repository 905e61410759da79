//! The parent ⇄ child channel: a `SOCK_SEQPACKET` socketpair, one message
//! per step, so a message is never split or merged. The messages are
//! [`ToInit`] (parent to child) and [`FromInit`] (child to parent), each
//! a one-byte tag and an optional payload.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, recv, send, socketpair};

/// Tags on the wire.
const GO: u8 = b'G';
const HOOKS: u8 = b'H';
const READY: u8 = b'R';
const SECCOMP: u8 = b'S';
const ERROR: u8 = b'E';
const CLONED: u8 = b'P';
const SOURCE: u8 = b'M';

/// Longest error text sent, in bytes.
const MAX_ERROR: usize = 4000;

/// Parent to child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToInit {
    /// The user namespace is mapped and the cgroup joined: go on. Carries
    /// the child's pid as the host sees it (`G<pid>`), which a container's
    /// init needs and cannot learn itself.
    Mapped { host_pid: i32 },
    /// Go on (`G`): after the runtime hooks, or to an exec'd process.
    Go,
    /// Before [`ToInit::Mapped`]: the source of bind mount `mounts[index]`
    /// (`M<index>`), opened by the parent in its own mount namespace and
    /// attached (`SCM_RIGHTS`). No reply.
    Source { index: usize },
}

impl ToInit {
    fn encode(self) -> Vec<u8> {
        match self {
            ToInit::Mapped { host_pid } => format!("G{host_pid}").into_bytes(),
            ToInit::Go => vec![GO],
            ToInit::Source { index } => format!("M{index}").into_bytes(),
        }
    }

    fn decode(msg: &[u8]) -> Option<Self> {
        match msg.split_first()? {
            (&GO, []) => Some(ToInit::Go),
            (&SOURCE, index) => std::str::from_utf8(index)
                .ok()?
                .parse()
                .ok()
                .map(|index| ToInit::Source { index }),
            (&GO, pid) => std::str::from_utf8(pid)
                .ok()?
                .parse()
                .ok()
                .map(|host_pid| ToInit::Mapped { host_pid }),
            _ => None,
        }
    }
}

/// Child to parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromInit {
    /// Mounts are made: run the prestart and createRuntime hooks, then
    /// send [`ToInit::Go`].
    Hooks,
    /// Set up and waiting for `start`.
    Ready,
    /// The seccomp listener fd is attached (`SCM_RIGHTS`): hand it to the
    /// seccomp agent. No reply.
    Seccomp,
    /// Set-up failed; the text says why.
    Error(String),
    /// From the intermediate of a rootless `exec`: the process it cloned
    /// (a child of ferry), and whether it was born in the cgroup.
    Cloned { pid: i32, born_in_cgroup: bool },
    /// End of file: the child exited, or exec'd (its end is close-on-exec).
    Gone,
}

impl FromInit {
    /// The message's bytes (an error's text cut to [`MAX_ERROR`] bytes).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            FromInit::Hooks => vec![HOOKS],
            FromInit::Ready => vec![READY],
            FromInit::Seccomp => vec![SECCOMP],
            FromInit::Error(text) => {
                let text = &text.as_bytes()[..text.len().min(MAX_ERROR)];
                [&[ERROR][..], text].concat()
            }
            FromInit::Cloned {
                pid,
                born_in_cgroup,
            } => format!("{}{pid} {}", CLONED as char, u8::from(*born_in_cgroup)).into_bytes(),
            FromInit::Gone => Vec::new(),
        }
    }

    /// The message `msg` is, or the error naming it.
    pub fn decode(msg: &[u8]) -> Result<Self, UnexpectedMessage> {
        match msg.split_first() {
            None => Ok(FromInit::Gone),
            Some((&HOOKS, [])) => Ok(FromInit::Hooks),
            Some((&READY, [])) => Ok(FromInit::Ready),
            Some((&SECCOMP, [])) => Ok(FromInit::Seccomp),
            Some((&ERROR, text)) => Ok(FromInit::Error(String::from_utf8_lossy(text).into_owned())),
            Some((&CLONED, text)) => decode_cloned(text).ok_or_else(|| UnexpectedMessage::new(msg)),
            Some(_) => Err(UnexpectedMessage::new(msg)),
        }
    }
}

/// `P<pid> <0|1>`.
fn decode_cloned(text: &[u8]) -> Option<FromInit> {
    let (pid, born) = std::str::from_utf8(text).ok()?.split_once(' ')?;
    Some(FromInit::Cloned {
        pid: pid.parse().ok()?,
        born_in_cgroup: born == "1",
    })
}

/// A message the protocol does not have, or not at this step.
#[derive(Debug, thiserror::Error)]
#[error("unexpected message from the container's process: {0:?}")]
pub struct UnexpectedMessage(String);

impl UnexpectedMessage {
    /// The message `msg` (its first 64 bytes, lossily as text).
    pub fn new(msg: &[u8]) -> Self {
        UnexpectedMessage(String::from_utf8_lossy(&msg[..msg.len().min(64)]).into_owned())
    }

    /// For a well-formed message that is out of place.
    pub fn out_of_place(msg: &FromInit) -> Self {
        UnexpectedMessage::new(&msg.encode())
    }
}

/// Send [`ToInit::Source`] with the opened `source` attached.
pub fn send_source(fd: &OwnedFd, index: usize, source: BorrowedFd<'_>) -> nix::Result<()> {
    crate::seccomp::agent::send_fd(fd, &ToInit::Source { index }.encode(), source)
}

/// The next message to the init, with the fd attached to it, if any.
pub fn recv_to_init_with_fd(fd: &OwnedFd) -> std::io::Result<(Option<ToInit>, Option<OwnedFd>)> {
    let (msg, attached) = crate::seccomp::agent::recv_fd(fd)?;
    Ok((ToInit::decode(&msg), attached))
}

pub fn pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

fn send_msg(fd: &OwnedFd, msg: &[u8]) -> nix::Result<()> {
    send(fd.as_raw_fd(), msg, MsgFlags::MSG_NOSIGNAL).map(drop)
}

/// Receive one message; an empty one means the peer is gone.
fn recv_msg(fd: &OwnedFd) -> nix::Result<Vec<u8>> {
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

/// Parent: send `msg` to the child.
pub fn send_to_init(fd: &OwnedFd, msg: ToInit) -> nix::Result<()> {
    send_msg(fd, &msg.encode())
}

/// Child: the parent's next message; `None` for one that is not a
/// [`ToInit`] (or end of file).
pub fn recv_to_init(fd: &OwnedFd) -> nix::Result<Option<ToInit>> {
    recv_msg(fd).map(|m| ToInit::decode(&m))
}

/// Child: send `msg` to the parent (not [`FromInit::Seccomp`], which
/// carries an fd: `seccomp::agent::send_fd`).
pub fn send_from_init(fd: &OwnedFd, msg: &FromInit) -> nix::Result<()> {
    send_msg(fd, &msg.encode())
}

/// Send an error report; false when nobody is listening any more.
pub fn send_error(fd: &OwnedFd, msg: &str) -> bool {
    send_from_init(fd, &FromInit::Error(msg.to_owned())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_bytes_on_the_wire() {
        assert_eq!(ToInit::Go.encode(), b"G");
        assert_eq!(ToInit::Mapped { host_pid: 42 }.encode(), b"G42");
        assert_eq!(
            ToInit::decode(b"G42"),
            Some(ToInit::Mapped { host_pid: 42 })
        );
        assert_eq!(ToInit::decode(b"G"), Some(ToInit::Go));
        assert_eq!(ToInit::decode(b"Gx"), None);
        assert_eq!(ToInit::decode(b""), None);
        for (msg, bytes) in [
            (FromInit::Hooks, &b"H"[..]),
            (FromInit::Ready, b"R"),
            (FromInit::Seccomp, b"S"),
            (FromInit::Error("no".into()), b"Eno"),
            (FromInit::Gone, b""),
        ] {
            assert_eq!(msg.encode(), bytes);
            assert_eq!(FromInit::decode(bytes).unwrap(), msg);
        }
    }

    #[test]
    fn an_unknown_message_is_named_in_the_error() {
        let e = FromInit::decode(b"Xyz").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unexpected message from the container's process: \"Xyz\""
        );
    }
}
