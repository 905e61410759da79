//! Handing the seccomp listener fd to the agent at `listenerPath`.
//!
//! As runc does: one connection, one message whose payload is the runtime
//! spec's `ContainerProcessState` JSON (`fds: ["seccompFd"]`, the host pid,
//! `listenerMetadata` as `metadata`, and the container's state with status
//! `creating`), and the listener fd in an `SCM_RIGHTS` control message.
//! The same fd-passing helpers carry the fd from the init to the parent.

use std::collections::BTreeMap;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use serde_json::{Value, json};

use super::SeccompError;

/// Who receives the listener fd, and what it is told about the container.
#[derive(Debug, Clone)]
pub struct Agent {
    pub path: PathBuf,
    pub metadata: Option<String>,
    /// The container's OCI state, without the pid (not known before the clone).
    pub state: Value,
    /// The container's init, for an `exec`'d process (runc puts the init's
    /// pid in the state and the new process's at the top).
    pub init_pid: Option<i32>,
}

impl Agent {
    /// The agent for a container; `listener_path` comes from the profile.
    pub fn new(
        listener_path: &Path,
        metadata: Option<&str>,
        id: &str,
        bundle: &Path,
        oci_version: &str,
        annotations: &BTreeMap<String, String>,
    ) -> Agent {
        Agent {
            path: listener_path.to_path_buf(),
            metadata: metadata.filter(|m| !m.is_empty()).map(str::to_owned),
            state: json!({
                "ociVersion": oci_version,
                "id": id,
                "status": "creating",
                "bundle": bundle,
                "annotations": annotations,
            }),
            init_pid: None,
        }
    }

    /// The same agent for a process `exec`'d into the running container
    /// whose init is `init_pid`.
    pub fn for_exec(mut self, init_pid: i32) -> Agent {
        self.state["status"] = json!("running");
        self.init_pid = Some(init_pid);
        self
    }

    /// The `ContainerProcessState` payload for the init with host pid `pid`.
    pub fn payload(&self, pid: i32) -> Vec<u8> {
        let mut state = self.state.clone();
        state["pid"] = json!(self.init_pid.unwrap_or(pid));
        let mut msg = json!({
            "ociVersion": state["ociVersion"],
            "fds": ["seccompFd"],
            "pid": pid,
            "state": state,
        });
        if let Some(m) = &self.metadata {
            msg["metadata"] = json!(m);
        }
        serde_json::to_vec(&msg).expect("JSON values serialize")
    }

    /// Connect to the agent and send it the listener fd.
    pub fn send(&self, pid: i32, listener: BorrowedFd<'_>) -> Result<(), SeccompError> {
        let err = |error| SeccompError::Agent {
            path: self.path.display().to_string(),
            error,
        };
        let stream =
            UnixStream::connect(&self.path).map_err(|e| SeccompError::AgentUnreachable {
                path: self.path.display().to_string(),
                error: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })?;
        send_fd(&stream, &self.payload(pid), listener).map_err(|e| err(e.into()))
    }
}

/// Send `payload` with `fd` attached (`SCM_RIGHTS`), as one message.
pub fn send_fd(sock: &impl AsRawFd, payload: &[u8], fd: BorrowedFd<'_>) -> nix::Result<()> {
    let fds = [fd.as_raw_fd()];
    let iov = [IoSlice::new(payload)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let n = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    if n != payload.len() {
        return Err(nix::Error::EMSGSIZE);
    }
    Ok(())
}

/// Receive one message (up to 64 KiB) and the fd attached to it, if any.
pub fn recv_fd(sock: &impl AsFd) -> std::io::Result<(Vec<u8>, Option<OwnedFd>)> {
    let mut buf = vec![0u8; 65536];
    let (n, fd) = loop {
        match crate::syscall::recv_with_fd(sock.as_fd(), &mut buf) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(got) => break got,
        }
    };
    buf.truncate(n);
    Ok((buf, fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn payload_is_container_process_state() {
        let mut ann = BTreeMap::new();
        ann.insert("a".to_string(), "b".to_string());
        let agent = Agent::new(
            Path::new("/run/agent.sock"),
            Some("meta"),
            "c1",
            Path::new("/b"),
            "1.2.1",
            &ann,
        );
        let v: Value = serde_json::from_slice(&agent.payload(42)).unwrap();
        assert_eq!(v["fds"], json!(["seccompFd"]));
        assert_eq!(v["pid"], 42);
        assert_eq!(v["metadata"], "meta");
        assert_eq!(v["ociVersion"], "1.2.1");
        assert_eq!(v["state"]["id"], "c1");
        assert_eq!(v["state"]["pid"], 42);
        assert_eq!(v["state"]["status"], "creating");
        assert_eq!(v["state"]["bundle"], "/b");
        assert_eq!(v["state"]["annotations"]["a"], "b");
        let none = Agent::new(Path::new("/x"), Some(""), "c", Path::new("/"), "1", &ann);
        let v: Value = serde_json::from_slice(&none.payload(1)).unwrap();
        assert!(v.get("metadata").is_none());
        let v: Value = serde_json::from_slice(&none.for_exec(7).payload(9)).unwrap();
        assert_eq!((&v["pid"], &v["state"]["pid"]), (&json!(9), &json!(7)));
        assert_eq!(v["state"]["status"], "running");
    }

    #[test]
    fn fd_passes_with_its_message() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = std::fs::File::open("/proc/self/status").unwrap();
        send_fd(&a, b"hello", file.as_fd()).unwrap();
        let (msg, fd) = recv_fd(&b).unwrap();
        assert_eq!(msg, b"hello");
        let fd = fd.expect("an fd");
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(
            link,
            Path::new("/proc")
                .join(std::process::id().to_string())
                .join("status")
        );
    }
}
