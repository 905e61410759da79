//! `ferry run`: create and start; in the foreground, forward signals to the
//! container and exit with its status; with `process.terminal` and no
//! console socket, bridge the user's terminal to the container's pty.

use std::os::fd::OwnedFd;

use anyhow::Result;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::cli::{GlobalOpts, RunOpts};
use crate::config;

use super::create::{self, Caller};
use super::{delete, start, store};

pub fn run(g: &GlobalOpts, o: &RunOpts) -> Result<i32> {
    if o.detach {
        create::create(g, &o.create, Caller::default())?;
        return start_or_remove(g, &o.create.id).map(|()| 0);
    }
    let set = block_signals()?;
    let mut caller = Caller {
        forward_signals: true,
        console: None,
    };
    let mut bridge_end: Option<OwnedFd> = None;
    if o.create.console_socket.is_none() && wants_terminal(o) {
        let (ours, theirs) = crate::tty::console_pair()?;
        caller.console = Some(theirs);
        bridge_end = Some(ours);
    }
    let created = create::create(g, &o.create, caller)?;
    let master = match bridge_end {
        Some(sock) => match crate::tty::recv_master(&sock) {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = delete::delete(&store(g)?, &o.create.id, true);
                return Err(e.into());
            }
        },
        None => None,
    };
    start_or_remove(g, &o.create.id)?;
    let code = match master {
        Some(master) => crate::tty::bridge(&master, &set, created.pid)?,
        None => forward_until_exit(&set, created.pid)?,
    };
    if !o.keep {
        delete::delete(&store(g)?, &o.create.id, true)?;
    }
    Ok(code)
}

/// Whether the bundle's process asks for a terminal.
fn wants_terminal(o: &RunOpts) -> bool {
    let bundle = o.create.bundle.clone().unwrap_or_else(|| ".".into());
    config::load(&bundle)
        .ok()
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

fn start_or_remove(g: &GlobalOpts, id: &str) -> Result<()> {
    let store = store(g)?;
    if let Err(e) = start::start(&store, id) {
        let _ = delete::delete(&store, id, true);
        return Err(e);
    }
    Ok(())
}

/// Relay signals to the process until it exits; its exit code, or 128+N.
pub(super) fn forward_until_exit(set: &SigSet, pid: Pid) -> Result<i32> {
    loop {
        let sig = set.wait()?;
        if sig != Signal::SIGCHLD {
            let _ = kill(pid, sig);
            continue;
        }
        if let Some(code) = reap(pid) {
            return Ok(code);
        }
    }
}

/// Reap exited children; `pid`'s exit code (128+N if killed) once it is gone.
pub fn reap(pid: Pid) -> Option<i32> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Block every signal we forward (and SIGCHLD, to learn of the exit); the
/// child unblocks them before exec.
pub(super) fn block_signals() -> Result<SigSet> {
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(set)
}
