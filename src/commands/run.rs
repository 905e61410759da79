//! `ferry run`: create and start; in the foreground, forward signals to the
//! container and exit with its status.

use anyhow::Result;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::cli::{GlobalOpts, RunOpts};

use super::{create, delete, start, store};

pub fn run(g: &GlobalOpts, o: &RunOpts) -> Result<i32> {
    if o.detach {
        create::create(g, &o.create, false)?;
        return start_or_remove(g, &o.create.id).map(|()| 0);
    }
    // Block every signal we forward (and SIGCHLD, to learn of the exit);
    // the init unblocks them before exec.
    let set = block_signals()?;
    let created = create::create(g, &o.create, true)?;
    start_or_remove(g, &o.create.id)?;
    let code = forward_until_exit(&set, created.pid)?;
    if !o.keep {
        delete::delete(&store(g)?, &o.create.id, true)?;
    }
    Ok(code)
}

fn start_or_remove(g: &GlobalOpts, id: &str) -> Result<()> {
    let store = store(g)?;
    if let Err(e) = start::start(&store, id) {
        let _ = delete::delete(&store, id, true);
        return Err(e);
    }
    Ok(())
}

/// Relay signals to the init until it exits; its exit code, or 128+N.
pub(super) fn forward_until_exit(set: &SigSet, pid: Pid) -> Result<i32> {
    loop {
        let sig = set.wait()?;
        if sig != Signal::SIGCHLD {
            let _ = kill(pid, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
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
