//! Signal names and numbers as `kill` accepts them, and the signal
//! forwarding and reaping of a foreground `run` or `exec`.

/// Errors parsing a signal.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("unknown signal {0:?}")]
    Unknown(String),
}

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parse `9`, `KILL`, `SIGKILL`, `sigkill`, `RTMIN+3` or `SIGRTMAX-1`.
pub fn parse(s: &str) -> Result<i32, SignalError> {
    let unknown = || SignalError::Unknown(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(unknown())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(n);
    }
    let rt = |base: i32, off: &str, sign: i32| -> Option<i32> {
        let off: i32 = if off.is_empty() { 0 } else { off.parse().ok()? };
        let n = base + sign * off;
        (libc::SIGRTMIN()..=libc::SIGRTMAX())
            .contains(&n)
            .then_some(n)
    };
    let parsed = if let Some(rest) = name.strip_prefix("RTMIN") {
        rest.strip_prefix('+').map_or_else(
            || {
                rest.is_empty()
                    .then(|| rt(libc::SIGRTMIN(), "", 1))
                    .flatten()
            },
            |o| rt(libc::SIGRTMIN(), o, 1),
        )
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rest.strip_prefix('-').map_or_else(
            || {
                rest.is_empty()
                    .then(|| rt(libc::SIGRTMAX(), "", 1))
                    .flatten()
            },
            |o| rt(libc::SIGRTMAX(), o, -1),
        )
    } else {
        None
    };
    parsed.ok_or_else(unknown)
}

/// Block every signal a foreground `run` or `exec` forwards (and SIGCHLD,
/// to learn of the exit); the child unblocks them before exec.
pub fn block_forwarded() -> nix::Result<nix::sys::signal::SigSet> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(set)
}

/// Relay the signals of `set` (blocked by [`block_forwarded`]) to `pid`
/// until it exits; its exit code, or 128+N.
pub fn forward_until_exit(
    set: &nix::sys::signal::SigSet,
    pid: nix::unistd::Pid,
) -> nix::Result<i32> {
    use nix::sys::signal::Signal;
    loop {
        let sig = set.wait()?;
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(pid, sig);
            continue;
        }
        if let Some(code) = reap(pid) {
            return Ok(code);
        }
    }
}

/// Reap exited children; `pid`'s exit code (128+N if killed) once it is gone.
pub fn reap(pid: nix::unistd::Pid) -> Option<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("sigterm").unwrap(), 15);
        assert_eq!(parse("USR1").unwrap(), 10);
        assert_eq!(parse("RTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse("SIGRTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
    }

    #[test]
    fn rejects_nonsense() {
        for s in ["0", "65", "-1", "FOO", "SIG", "RTMIN+99", ""] {
            assert!(parse(s).is_err(), "{s} accepted");
        }
    }
}
