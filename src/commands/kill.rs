//! `ferry kill`: signal a container's init, or every process in it.

use std::os::fd::AsFd;

use anyhow::{Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;

use crate::container::{State, Status, Store};
use crate::{signals, syscall};

pub fn kill(store: &Store, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = signals::parse(signal)?;
    let dir = store.open_container(id)?;
    let Some(state) = dir.load()? else {
        bail!("container {id} is still being created")
    };
    match state.status(dir.path()) {
        // runc's behaviour, which containerd relies on: `kill --all` of a
        // stopped container signals what is left in its cgroup and succeeds;
        // a plain kill fails with the phrase engines read as "already gone".
        Status::Stopped if all => {
            if let Some(cg) = &state.cgroup {
                let _ = cg.signal_all(sig);
            }
            return Ok(());
        }
        Status::Stopped => bail!("cannot kill container {id}: container not running"),
        Status::Creating => bail!("container {id} is still being created"),
        _ => {}
    }
    signal_container(&state, sig, all)
}

/// Send `sig` to the init (checked by start time, through a pidfd, so a
/// reused pid is never hit) and, with `all`, to every process of its
/// cgroup (without one: of its pid namespace).
pub fn signal_container(state: &State, sig: i32, all: bool) -> Result<()> {
    let Some(pidfd) = open_init(state) else {
        bail!("cannot kill container {}: container not running", state.id)
    };
    signal_init(state, &pidfd, sig, all)
}

/// [`signal_container`] with the init's pidfd already open (an init that
/// has exited since is no error).
pub fn signal_init(state: &State, pidfd: &std::os::fd::OwnedFd, sig: i32, all: bool) -> Result<()> {
    if all && let Some(cg) = &state.cgroup {
        // SIGKILL to the init of a pid namespace kills the rest: no need
        // to freeze and list the cgroup (delete's hot path).
        let frozen = cg.is_frozen();
        if frozen || !state.own_pid_ns || sig != libc::SIGKILL {
            cg.signal_all(sig)?;
        }
        if frozen && sig == libc::SIGKILL {
            cg.thaw()?;
        }
    } else if all && state.own_pid_ns {
        let others = super::ps::pid_ns_members(state.pid);
        for pid in others.into_iter().filter(|&p| p != state.pid) {
            let _ = nix::sys::signal::kill(
                Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(sig).ok(),
            );
        }
    }
    match syscall::pidfd_send_signal(pidfd.as_fd(), sig) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(e) => bail!("kill container {}: {e}", state.id),
    }
}

/// A pidfd of the init if it is still the recorded process.
pub fn open_init(state: &State) -> Option<std::os::fd::OwnedFd> {
    let pidfd = syscall::pidfd_open(Pid::from_raw(state.pid)).ok()?;
    // Checked after opening: the pidfd now pins this very process.
    state.init_alive().then_some(pidfd)
}

/// Wait until the init has exited (its pidfd turns readable), up to `ms`.
pub fn wait_exit(pidfd: &std::os::fd::OwnedFd, ms: u16) -> bool {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}
