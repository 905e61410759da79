//! Seccomp actions and filter flags: from the runtime spec's names to the
//! kernel's values.

use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompFilterFlag};

use super::SeccompError;

/// What the kernel does with a matching syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    /// Fail the call with this errno (0 fakes success).
    Errno(u16),
    KillThread,
    KillProcess,
    /// Send SIGSYS.
    Trap,
    /// Stop for a ptrace tracer, passing it this value.
    Trace(u16),
    /// Allow, and log the call.
    Log,
    /// Ask the seccomp agent on the listener fd.
    Notify,
}

/// errno for `SCMP_ACT_ERRNO`/`SCMP_ACT_TRACE` without `errnoRet`, as runc.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

impl Action {
    /// Translate a spec action and its `errnoRet`.
    pub fn from_spec(
        action: LinuxSeccompAction,
        errno_ret: Option<u32>,
    ) -> Result<Self, SeccompError> {
        use LinuxSeccompAction::*;
        let data = || {
            let v = errno_ret.unwrap_or(DEFAULT_ERRNO);
            u16::try_from(v).map_err(|_| SeccompError::ErrnoRet(v))
        };
        Ok(match action {
            ScmpActAllow => Action::Allow,
            ScmpActErrno => Action::Errno(data()?),
            // SCMP_ACT_KILL is libseccomp's old name for KILL_THREAD.
            ScmpActKill | ScmpActKillThread => Action::KillThread,
            ScmpActKillProcess => Action::KillProcess,
            ScmpActTrap => Action::Trap,
            ScmpActTrace => Action::Trace(data()?),
            ScmpActLog => Action::Log,
            ScmpActNotify => Action::Notify,
        })
    }

    /// The filter's return value (`SECCOMP_RET_*` | data).
    pub fn ret(self) -> u32 {
        match self {
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Trace(d) => libc::SECCOMP_RET_TRACE | u32::from(d),
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
        }
    }

    /// Whether the action lets the call run (possibly after logging it).
    pub fn permits(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }
}

/// The `seccomp(2)` flag for a spec flag.
pub fn flag_bits(flag: LinuxSeccompFilterFlag) -> libc::c_ulong {
    use LinuxSeccompFilterFlag::*;
    match flag {
        SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
        SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
        SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        SeccompFilterFlagWaitKillableRecv => libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxSeccompAction::*;

    #[test]
    fn actions_map_to_kernel_values() {
        let a = |act, e| Action::from_spec(act, e).unwrap().ret();
        assert_eq!(a(ScmpActAllow, None), 0x7fff_0000);
        assert_eq!(a(ScmpActErrno, None), 0x0005_0001);
        assert_eq!(a(ScmpActErrno, Some(13)), 0x0005_000d);
        assert_eq!(a(ScmpActKill, None), 0);
        assert_eq!(a(ScmpActKillThread, None), 0);
        assert_eq!(a(ScmpActKillProcess, None), 0x8000_0000);
        assert_eq!(a(ScmpActTrap, None), 0x0003_0000);
        assert_eq!(a(ScmpActTrace, Some(7)), 0x7ff0_0007);
        assert_eq!(a(ScmpActLog, None), 0x7ffc_0000);
        assert_eq!(a(ScmpActNotify, None), 0x7fc0_0000);
        assert!(matches!(
            Action::from_spec(ScmpActErrno, Some(70000)),
            Err(SeccompError::ErrnoRet(70000))
        ));
    }
}
