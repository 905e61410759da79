//! The container's init, from the clone to `execve`.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, openat};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, setresgid, setresuid};
use oci_spec::runtime::{PosixRlimitType, Process};

use super::{InitPlan, exec, sync};
use crate::capabilities::{CapSets, CapsError};
use crate::namespaces::{NamespaceError, Namespaces};
use crate::rootfs::{self, RootfsError, path::Root};
use crate::syscall;
use crate::tty::{self, TtyError};

/// Errors inside the init; the parent prints them.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error(transparent)]
    Tty(#[from] TtyError),
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("{0}")]
    Exec(String),
    #[error("config.json has no process")]
    NoProcess,
    #[error("cannot set hostname without a UTS namespace")]
    HostnameWithoutUts,
    #[error("cwd {0:?} is not a directory inside the container")]
    Cwd(String),
    #[error("rlimit {0}: {1}")]
    Rlimit(String, nix::Error),
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> InitError {
    let what = what.into();
    move |source| InitError::Sys { what, source }
}

/// Run the init; never returns.
pub fn run(plan: &InitPlan, sock: OwnedFd) -> ! {
    if let Err(e) = setup_and_exec(plan, &sock) {
        sync::send_error(&sock, &e.to_string());
    }
    syscall::exit_now(1)
}

fn setup_and_exec(plan: &InitPlan, sock: &OwnedFd) -> Result<(), InitError> {
    let spec = plan.spec;
    let process = spec.process().as_ref().ok_or(InitError::NoProcess)?;
    let ns = &plan.namespaces;

    // Wait until the parent has mapped our ids.
    if sync::recv_msg(sock).map_err(sys("wait for parent"))? != sync::GO {
        syscall::exit_now(1);
    }
    if ns.new_user() {
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(sys("become root in the user namespace"))?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(sys("become root in the user namespace"))?;
    }
    Namespaces::enter(&ns.joins)?;
    if ns.new_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(sys("unshare the cgroup namespace"))?;
    }
    if !plan.no_new_keyring {
        // Best effort, like runc: some kernels and user namespaces refuse it.
        let _ = syscall::join_new_session_keyring();
    }
    set_names(plan)?;
    syscall::umask(0);

    // The exec fifo is reopened through our own /proc fd table after pivot_root.
    let fd_dir = nix::fcntl::open(
        "/proc/self/fd",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open /proc/self/fd"))?;
    let rplan = rootfs::Plan {
        spec,
        rootfs: plan.rootfs,
        bundle: plan.bundle,
        userns: ns.any_user() || crate::user::in_user_namespace(),
        no_pivot: plan.no_pivot,
    };
    rootfs::setup(&rplan)?;
    if process.terminal().unwrap_or(false) {
        let socket = plan
            .console_socket
            .as_ref()
            .ok_or(TtyError::NoConsoleSocket)?;
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        tty::setup_console(socket, size)?;
    }
    rootfs::finish(&rplan)?;
    set_rlimits(process)?;

    let caps = CapSets::from_spec(process.capabilities().as_ref())?;
    let cwd = open_cwd(process)?;
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
    let (c_path, c_args, c_env) = (
        exec::cpath(&path).map_err(InitError::Exec)?,
        exec::cstrings(&args).map_err(InitError::Exec)?,
        exec::cstrings(&env).map_err(InitError::Exec)?,
    );
    syscall::umask(process.user().umask().unwrap_or(0o022));
    if process.no_new_privileges().unwrap_or(false) {
        syscall::set_no_new_privs().map_err(sys("set no_new_privs"))?;
    }
    pass_preserved_fds(plan.preserve_fds)?;
    if plan.sigmask_reset {
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .map_err(sys("reset signal mask"))?;
    }

    sync::send_msg(sock, sync::READY).map_err(sys("report ready"))?;
    if let Some(fifo) = &plan.fifo {
        wait_for_start(&fd_dir, fifo)?;
    }
    drop(fd_dir);
    let err = nix::unistd::execve(&c_path, &c_args, &c_env).unwrap_err();
    // The parent is gone by now: say it on the container's stderr.
    let _ = writeln!(std::io::stderr(), "ferry: exec {}: {err}", path.display());
    syscall::exit_now(if err == nix::Error::ENOENT { 127 } else { 126 })
}

fn set_names(plan: &InitPlan) -> Result<(), InitError> {
    let spec = plan.spec;
    let uts = plan.namespaces.has(CloneFlags::CLONE_NEWUTS);
    if let Some(name) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        if !uts {
            return Err(InitError::HostnameWithoutUts);
        }
        nix::unistd::sethostname(name).map_err(sys("set hostname"))?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        if !uts {
            return Err(InitError::HostnameWithoutUts);
        }
        // SAFETY: the pointer and length describe `name`'s bytes for the call.
        let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        nix::errno::Errno::result(ret).map_err(sys("set domainname"))?;
    }
    Ok(())
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

/// Close everything of ferry's on exec; fds 3..3+N pass through.
fn pass_preserved_fds(n: u32) -> Result<(), InitError> {
    syscall::cloexec_from(3 + n).map_err(sys("mark fds close-on-exec"))?;
    for fd in 3..3 + n as i32 {
        // SAFETY: F_SETFD on an fd number changes only its flags; an fd that
        // is not open just returns EBADF.
        let _ = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    Ok(())
}

/// Block until `start` opens the exec fifo for reading.
fn wait_for_start(fd_dir: &OwnedFd, fifo: &OwnedFd) -> Result<(), InitError> {
    let name = fifo.as_raw_fd().to_string();
    let fd = loop {
        match openat(
            fd_dir.as_fd(),
            name.as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Err(nix::Error::EINTR) => continue,
            other => break other.map_err(sys("open exec fifo"))?,
        }
    };
    nix::unistd::write(&fd, b"0").map_err(sys("write exec fifo"))?;
    Ok(())
}
