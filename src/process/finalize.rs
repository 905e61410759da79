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

use super::init_error::{InitError, sys};
use super::trampoline::Trampoline;
use crate::capabilities::CapSets;
use crate::fs::Root;
use crate::path_lookup;
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
    set_scheduler(process)?;
    let caps = CapSets::from_spec(process.capabilities().as_ref())?;
    let cwd = open_cwd(process)?;
    // As runc: enter the cwd while still root with every capability; a
    // directory only the process user may enter is entered after the switch.
    let cwd_later = enter_cwd(&cwd, process, true)?;
    let env = with_home(
        process.env().clone().unwrap_or_default(),
        process.user().uid(),
    );
    lsm_labels(process).apply_on_exec()?;
    // Before any filter, so that this never depends on the profile; the
    // trampoline's memfd never passes, even inside the preserved range.
    let mut ours = ours.to_vec();
    ours.push(trampoline.raw_fd());
    pass_preserved_fds(preserve_fds, &ours)?;
    if !nnp && let Some(step) = seccomp {
        load_seccomp(step)?;
    }
    caps.drop_bounding()?;
    switch_user(process)?;
    caps.apply()?;
    if cwd_later {
        enter_cwd(&cwd, process, false)?;
    }
    drop(cwd);
    // The cwd must be reachable from the container's root (CVE-2024-21626).
    nix::unistd::getcwd().map_err(|_| InitError::Cwd(process.cwd().display().to_string()))?;

    let args = process.args().clone().unwrap_or_default();
    let path = path_lookup::lookup(args.first().map(String::as_str).unwrap_or(""), &env)
        .map_err(InitError::Exec)?;
    let target = Target {
        c_path: path_lookup::cpath(&path).map_err(InitError::Exec)?,
        c_args: path_lookup::cstrings(&args).map_err(InitError::Exec)?,
        c_env: path_lookup::cstrings(&env).map_err(InitError::Exec)?,
        path,
        trampoline,
    };
    syscall::umask(process.user().umask().unwrap_or(0o022));
    if nnp {
        syscall::set_no_new_privs().map_err(sys("set no_new_privs"))?;
    }
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

/// `fchdir` to the opened cwd. On the `first` try, a permission error is
/// not final: returns true when it must be tried again after the user
/// switch (the process user may enter what root without
/// CAP_DAC_OVERRIDE, or root in a user namespace, may not).
fn enter_cwd(cwd: &OwnedFd, process: &Process, first: bool) -> Result<bool, InitError> {
    match nix::unistd::fchdir(cwd) {
        Ok(()) => Ok(false),
        Err(nix::Error::EACCES | nix::Error::EPERM) if first => Ok(true),
        Err(e) => Err(sys(format!("chdir to {}", process.cwd().display()))(e)),
    }
}

/// Create a missing cwd (and its parents) inside the container's root,
/// mode 0755 owned by the container's root, as runc and crun do. Called by
/// the init after `pivot_root` and before `/` may become read-only.
pub fn create_cwd(process: &Process) -> Result<(), InitError> {
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(InitError::Cwd(cwd.display().to_string()));
    }
    let root = Root::open(Path::new("/")).map_err(sys("open /"))?;
    root.mkdir_all(cwd, nix::sys::stat::Mode::from_bits_truncate(0o755))
        .map_err(sys(format!("create cwd {}", cwd.display())))?;
    Ok(())
}

/// `env` with `HOME` set as runc sets it when the config gives none (or an
/// empty one): the home of `uid` in the container's `/etc/passwd`, else `/`.
fn with_home(mut env: Vec<String>, uid: u32) -> Vec<String> {
    let has_home = env
        .iter()
        .any(|e| e.strip_prefix("HOME=").is_some_and(|h| !h.is_empty()));
    if has_home {
        return env;
    }
    env.retain(|e| !e.starts_with("HOME="));
    let home = read_passwd()
        .and_then(|text| home_of(&text, uid))
        .unwrap_or_else(|| "/".to_string());
    env.push(format!("HOME={home}"));
    env
}

/// The container's `/etc/passwd`, resolved inside its root (no symlink
/// leads out of it, no magic link), only if it is a regular file (a FIFO
/// would block, a device might never end), at most 4 MiB of it.
fn read_passwd() -> Option<String> {
    use std::io::Read;
    let root = Root::open(Path::new("/")).ok()?;
    let fd = root
        .open_in(
            Path::new("/etc/passwd"),
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        )
        .ok()?;
    let file = std::fs::File::from(fd);
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = Vec::new();
    file.take(4 << 20).read_to_end(&mut text).ok()?;
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// The home directory of the first passwd entry with `uid` (non-empty).
fn home_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let (Some(id), Some(home)) = (fields.get(2), fields.get(5)) else {
            return None;
        };
        (id.parse::<u32>().ok() == Some(uid) && !home.is_empty()).then(|| home.to_string())
    })
}

/// Apply `process.scheduler` with `sched_setattr`, as runc does.
fn set_scheduler(process: &Process) -> Result<(), InitError> {
    let Some(sched) = process.scheduler() else {
        return Ok(());
    };
    let attr = sched_attr(sched);
    syscall::sched_setattr(&attr).map_err(sys(format!("set scheduler {}", sched.policy())))
}

/// The kernel's `sched_attr` for a spec scheduler.
fn sched_attr(sched: &oci_spec::runtime::Scheduler) -> syscall::SchedAttr {
    use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
    let policy = match sched.policy() {
        P::SchedOther => libc::SCHED_OTHER,
        P::SchedFifo => libc::SCHED_FIFO,
        P::SchedRr => libc::SCHED_RR,
        P::SchedBatch => libc::SCHED_BATCH,
        // Never implemented by Linux: the kernel refuses it with EINVAL.
        P::SchedIso => 4,
        P::SchedIdle => libc::SCHED_IDLE,
        P::SchedDeadline => 6,
    };
    let flags = sched.flags().iter().flatten().fold(0u64, |acc, f| {
        acc | match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        }
    });
    syscall::SchedAttr {
        policy: policy as u32,
        flags,
        nice: sched.nice().unwrap_or(0),
        // A negative priority becomes one the kernel refuses (EINVAL).
        priority: sched.priority().unwrap_or(0) as u32,
        runtime: sched.runtime().unwrap_or(0),
        deadline: sched.deadline().unwrap_or(0),
        period: sched.period().unwrap_or(0),
        ..Default::default()
    }
}

/// `process.consoleSize` as the kernel's (rows, columns); sizes beyond
/// what a winsize holds become its largest (not truncated to a small one).
pub fn console_size(process: &Process) -> Option<(u16, u16)> {
    let clamp = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
    process
        .console_size()
        .as_ref()
        .map(|b| (clamp(b.height()), clamp(b.width())))
}

/// Right before `execve`: every signal back to its default disposition and
/// none blocked, whatever ferry or its caller ignored or blocked.
pub fn reset_signals() -> Result<(), InitError> {
    syscall::reset_signal_dispositions().map_err(sys("reset signal dispositions"))?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(sys("reset signal mask"))
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
    let setgroups_denied = crate::rootfs::procfs::trusted()
        .and_then(|p| p.read_thread_self(Path::new("setgroups")))
        .is_ok_and(|s| s.trim() == "deny");
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
        let _ = syscall::clear_cloexec(fd);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_the_first_entry_of_the_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nbad line\nweb::33:33::/var/www:\n\
                      dup:x:33:33::/other:\nnohome:x:7:7:::\n";
        assert_eq!(home_of(passwd, 0).as_deref(), Some("/root"));
        assert_eq!(home_of(passwd, 33).as_deref(), Some("/var/www"));
        assert_eq!(home_of(passwd, 7), None);
        assert_eq!(home_of(passwd, 99), None);
    }

    #[test]
    fn a_given_home_is_kept() {
        let env = vec!["HOME=/x".to_string(), "A=b".to_string()];
        assert_eq!(with_home(env.clone(), 0), env);
    }

    #[test]
    fn scheduler_flags_become_kernel_bits() {
        let sched: oci_spec::runtime::Scheduler = serde_json::from_value(serde_json::json!({
            "policy": "SCHED_BATCH", "nice": 5,
            "flags": ["SCHED_RESET_ON_FORK", "SCHED_FLAG_UTIL_CLAMP_MAX"]
        }))
        .unwrap();
        let attr = sched_attr(&sched);
        assert_eq!(attr.policy, libc::SCHED_BATCH as u32);
        assert_eq!(attr.flags, 0x41);
        assert_eq!(attr.nice, 5);
    }
}
