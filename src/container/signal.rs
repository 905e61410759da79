//! Signalling a container's processes and listing them, by pidfd (a
//! reused pid is never hit), by cgroup, or by pid namespace.

use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;

use super::{ContainerError, State};
use crate::syscall;

/// A pidfd of the init if it is still the recorded process.
pub fn open_init(state: &State) -> Option<OwnedFd> {
    let pidfd = syscall::pidfd_open(Pid::from_raw(state.pid)).ok()?;
    // Checked after opening: the pidfd now pins this very process.
    state.init_alive().then_some(pidfd)
}

/// Send `sig` to the init through its open pidfd (an init that has exited
/// since is no error) and, with `all`, to every process of its cgroup
/// (without one: of its pid namespace).
pub fn signal_init(
    state: &State,
    pidfd: &OwnedFd,
    sig: i32,
    all: bool,
) -> Result<(), ContainerError> {
    // Signal 0 delivers nothing: the init's liveness answers the question.
    if all && sig != 0 {
        signal_others(state, sig)?;
    }
    match syscall::pidfd_send_signal(pidfd.as_fd(), sig) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(source) => Err(ContainerError::Signal {
            id: state.id.clone(),
            source,
        }),
    }
}

/// Send `sig` to every process of the container but (maybe) its init: by
/// its cgroup, else by its own pid namespace.
fn signal_others(state: &State, sig: i32) -> Result<(), ContainerError> {
    if let Some(cg) = &state.cgroup {
        // SIGKILL to the init of a pid namespace kills the rest: no need
        // to freeze and list the cgroup (delete's hot path).
        let frozen = cg.is_frozen();
        if frozen || !state.own_pid_ns || sig != libc::SIGKILL {
            cg.signal_all(sig)?;
        }
        if frozen && sig == libc::SIGKILL {
            cg.thaw()?;
        }
    } else if state.own_pid_ns {
        let others = pid_ns_members(state.pid);
        for pid in others.into_iter().filter(|&p| p != state.pid) {
            let _ = nix::sys::signal::kill(
                Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(sig).ok(),
            );
        }
    }
    Ok(())
}

/// SIGKILL everything in the container and wait for the init to exit.
pub fn stop(state: &State) -> Result<(), ContainerError> {
    let Some(pidfd) = open_init(state) else {
        return Ok(());
    };
    // The pidfd opened above: the init exiting on its own meanwhile is fine.
    signal_init(state, &pidfd, libc::SIGKILL, true)?;
    if !wait_exit(&pidfd, 10_000) {
        return Err(ContainerError::Unkillable {
            id: state.id.clone(),
            pid: state.pid,
        });
    }
    Ok(())
}

/// Wait until the init has exited (its pidfd turns readable), up to `ms`.
pub fn wait_exit(pidfd: &OwnedFd, ms: u16) -> bool {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Every process of the container: its cgroup, else its pid namespace.
pub fn container_pids(state: &State) -> Vec<i32> {
    let mut pids = match &state.cgroup {
        Some(cg) => cg.pids(),
        None => pid_ns_members(state.pid),
    };
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The init and every process sharing its pid namespace.
fn pid_ns_members(init: i32) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let ino = |pid: &str| {
        std::fs::metadata(format!("/proc/{pid}/ns/pid"))
            .map(|m| m.ino())
            .ok()
    };
    let Some(target) = ino(&init.to_string()) else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && ino(n) == Some(target))
        .filter_map(|n| n.parse().ok())
        .collect()
}
