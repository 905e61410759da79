//! `ferry kill`: signal a container's init, or every process in it.

use std::os::fd::AsFd;

use anyhow::{Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;

use crate::container::{State, Status, Store};
use crate::{signals, syscall};

/// `ferry kill [--all] ID [SIGNAL]`, with runc's rules: signal 0 only
/// asks whether the init is alive; `--all` of a stopped container signals
/// what is left in its cgroup and succeeds; SIGKILL to a container that
/// shares the host's pid namespace kills every process of its cgroup
/// (killing its init would not take the others with it), even once the
/// init is gone.
pub fn kill(store: &Store, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let dir = store.open_container(id)?;
    let Some(state) = dir.load()? else {
        bail!("container {id} is still being created")
    };
    let status = state.status(dir.path());
    log::debug!("kill {id} ({status}): signal {sig}, all: {all}");
    let kill_cgroup = sig == libc::SIGKILL && !state.own_pid_ns && state.cgroup.is_some();
    match status {
        // What containerd relies on: a plain kill of a stopped container
        // fails with the phrase engines read as "already gone".
        Status::Stopped if all || kill_cgroup => {
            if let Some(cg) = state.cgroup.as_ref().filter(|_| sig != 0) {
                let _ = cg.signal_all(sig);
            }
            return Ok(());
        }
        Status::Stopped => bail!("cannot kill container {id}: container not running"),
        Status::Creating => bail!("container {id} is still being created"),
        _ => {}
    }
    signal_container(&state, sig, all || kill_cgroup)
}

/// A signal name or number as [`signals::parse`] takes it, or `0` (no
/// signal: only check that the process exists, as kill(1) does).
fn parse_signal(signal: &str) -> Result<i32> {
    if signal == "0" {
        return Ok(0);
    }
    Ok(signals::parse(signal)?)
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
    // Signal 0 delivers nothing: the init's liveness answers the question.
    if all && sig != 0 {
        signal_others(state, sig)?;
    }
    match syscall::pidfd_send_signal(pidfd.as_fd(), sig) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(e) => bail!("kill container {}: {e}", state.id),
    }
}

/// Send `sig` to every process of the container but (maybe) its init: by
/// its cgroup, else by its own pid namespace.
fn signal_others(state: &State, sig: i32) -> Result<()> {
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
        let others = super::ps::pid_ns_members(state.pid);
        for pid in others.into_iter().filter(|&p| p != state.pid) {
            let _ = nix::sys::signal::kill(
                Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(sig).ok(),
            );
        }
    }
    Ok(())
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
