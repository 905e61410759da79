//! The last steps before `execve`, shared by a container's init and by
//! `exec`: rlimits, user and capabilities, cwd, umask, no_new_privs, fds.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::unistd::{Gid, Uid, setresgid, setresuid};
use oci_spec::runtime::{PosixRlimitType, Process};

use super::exec;
use super::init::{InitError, sys};
use super::trampoline::Trampoline;
use crate::capabilities::CapSets;
use crate::rootfs::path::Root;
use crate::syscall;

/// A resolved program, ready for `execve` through the trampoline.
pub struct Target {
    pub path: PathBuf,
    c_path: CString,
    c_args: Vec<CString>,
    c_env: Vec<CString>,
    trampoline: Trampoline,
}

/// The seccomp filter to load, and who takes its listener fd.
pub struct SeccompStep<'a> {
    pub filter: &'a crate::seccomp::Filter,
    /// Called right after the load with the listener fd of a notifying
    /// filter, before any further syscall could wait for the agent.
    pub send_listener: &'a dyn Fn(OwnedFd) -> Result<(), InitError>,
}

/// Apply `process` to the calling process, up to (not including) execve.
/// `ours` are ferry's fds that must not pass even inside the preserved range.
///
/// Seccomp goes as runc does it: with no_new_privs as the very last step;
/// without it while we still have CAP_SYS_ADMIN, before the user switch
/// and the capability drop (loading needs one or the other).
pub fn prepare(
    process: &Process,
    preserve_fds: u32,
    ours: &[RawFd],
    sigmask_reset: bool,
    seccomp: Option<&SeccompStep>,
) -> Result<Target, InitError> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    // First: rlimits (RLIMIT_FSIZE) and seccomp may refuse what it needs.
    let trampoline = Trampoline::new()?;
    set_rlimits(process)?;
    let caps = CapSets::from_spec(process.capabilities().as_ref())?;
    let cwd = open_cwd(process)?;
    lsm_labels(process).apply_on_exec()?;
    if !nnp && let Some(step) = seccomp {
        load_seccomp(step)?;
    }
    caps.drop_bounding()?;
    switch_user(process)?;
    caps.apply()?;
    nix::unistd::fchdir(&cwd).map_err(sys(format!("chdir to {}", process.cwd().display())))?;
    drop(cwd);
    // The cwd must be reachable from the container's root (CVE-2024-21626).
    nix::unistd::getcwd().map_err(|_| InitError::Cwd(process.cwd().display().to_string()))?;

    let env = process.env().clone().unwrap_or_default();
    let args = process.args().clone().unwrap_or_default();
    let path = exec::lookup(args.first().map(String::as_str).unwrap_or(""), &env)
        .map_err(InitError::Exec)?;
    let target = Target {
        c_path: exec::cpath(&path).map_err(InitError::Exec)?,
        c_args: exec::cstrings(&args).map_err(InitError::Exec)?,
        c_env: exec::cstrings(&env).map_err(InitError::Exec)?,
        path,
        trampoline,
    };
    syscall::umask(process.user().umask().unwrap_or(0o022));
    if nnp {
        syscall::set_no_new_privs().map_err(sys("set no_new_privs"))?;
    }
    let mut ours = ours.to_vec();
    ours.push(target.trampoline.raw_fd());
    pass_preserved_fds(preserve_fds, &ours)?;
    if sigmask_reset {
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .map_err(sys("reset signal mask"))?;
    }
    if nnp && let Some(step) = seccomp {
        load_seccomp(step)?;
    }
    Ok(target)
}

/// Load the filter; hand a listener fd on at once (it is close-on-exec).
fn load_seccomp(step: &SeccompStep) -> Result<(), InitError> {
    if let Some(listener) = step.filter.load()? {
        (step.send_listener)(listener)?;
    }
    Ok(())
}

/// `execve` the target through the trampoline (see `trampoline.rs`, which
/// reports the target's own exec errors); if even the trampoline cannot be
/// started, say why on stderr and exit 126.
pub fn exec(target: &Target) -> ! {
    let why = target
        .trampoline
        .exec(&target.c_path, &target.c_args, &target.c_env);
    let _ = writeln!(
        std::io::stderr(),
        "ferry: exec {}: {why}",
        target.path.display()
    );
    syscall::exit_now(126)
}

fn set_rlimits(process: &Process) -> Result<(), InitError> {
    for rl in process.rlimits().iter().flatten() {
        let name = serde_json::to_value(rl.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let resource = rlimit_resource(rl.typ());
        syscall::setrlimit(resource, rl.soft(), rl.hard())
            .map_err(|e| InitError::Rlimit(name, e))?;
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    use PosixRlimitType::*;
    (match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

/// Open the cwd inside the container's root, refusing paths that lead out
/// of it (symlinks, `/proc/self/fd/N`).
fn open_cwd(process: &Process) -> Result<OwnedFd, InitError> {
    let cwd = process.cwd();
    let bad = || InitError::Cwd(cwd.display().to_string());
    if !cwd.is_absolute() {
        return Err(bad());
    }
    let root = Root::open(Path::new("/")).map_err(sys("open /"))?;
    root.open_in(cwd, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|_| bad())
}

/// setgroups, setresgid, setresuid, keeping the permitted capabilities.
fn switch_user(process: &Process) -> Result<(), InitError> {
    let user = process.user();
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    let setgroups_denied =
        std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !(setgroups_denied && groups.is_empty()) {
        nix::unistd::setgroups(&groups).map_err(sys("setgroups"))?;
    }
    syscall::set_keepcaps(true).map_err(sys("keep capabilities"))?;
    setresgid(gid, gid, gid).map_err(sys(format!("setgid {gid}")))?;
    setresuid(uid, uid, uid).map_err(sys(format!("setuid {uid}")))?;
    syscall::set_keepcaps(false).map_err(sys("keep capabilities"))
}

/// Close everything of ferry's on exec; fds 3..3+N pass through, except
/// `ours` (ferry's own fds that happen to sit in that range).
fn pass_preserved_fds(n: u32, ours: &[RawFd]) -> Result<(), InitError> {
    syscall::cloexec_from(3 + n).map_err(sys("mark fds close-on-exec"))?;
    for fd in (3..3 + n as i32).filter(|fd| !ours.contains(fd)) {
        // SAFETY: F_SETFD on an fd number changes only its flags; an fd that
        // is not open just returns EBADF.
        let _ = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    Ok(())
}

/// The process's AppArmor profile and SELinux label.
pub fn lsm_labels(process: &Process) -> crate::lsm::Labels<'_> {
    crate::lsm::Labels::new(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )
}
