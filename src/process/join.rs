//! `exec`: a new process inside a running container, in every namespace of
//! its init (user first), with the pid and time namespaces entered by the
//! parent so that the cloned child is born in them.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use nix::sched::{CloneFlags, setns};
use nix::unistd::{Gid, Pid, Uid, setresgid, setresuid};
use oci_spec::runtime::Process;

use super::init::{InitError, sys};
use super::sync::{FromInit, ToInit};
use super::{ProcessError, finalize, handshake, sync};
use crate::syscall;
use crate::tty::{self, TtyError};

/// What `exec` runs and where.
pub struct ExecPlan<'a> {
    pub process: &'a Process,
    pub init_pid: Pid,
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub sigmask_reset: bool,
    /// The container's cgroup: the process is born in it (v2) or moved
    /// there before it may go on.
    pub cgroup: Option<&'a crate::cgroups::CgroupState>,
    /// The container's seccomp filter (and agent), loaded by the child.
    pub seccomp: Option<&'a crate::seccomp::Seccomp>,
}

/// nix has no constant for the time namespace.
const NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

/// Namespace kinds in join order: user first, so the rest are permitted.
const KINDS: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("time", NEWTIME),
];

/// The init's namespaces that differ from ours, opened.
fn open_namespaces(init: Pid) -> Result<Vec<(CloneFlags, File)>, ProcessError> {
    let mut out = Vec::new();
    for (name, flag) in KINDS {
        let theirs = format!("/proc/{init}/ns/{name}");
        let Ok(meta) = std::fs::metadata(&theirs) else {
            continue;
        };
        let same = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev());
        if !same {
            let file = File::open(&theirs)
                .map_err(|e| ProcessError::Init(format!("open {theirs}: {e}")))?;
            out.push((*flag, file));
        }
    }
    Ok(out)
}

/// Start the process; returns its host pid once it has exec'd.
pub fn spawn(plan: &ExecPlan) -> Result<Pid, ProcessError> {
    let namespaces = open_namespaces(plan.init_pid)?;
    for (flag, file) in &namespaces {
        if matches!(*flag, CloneFlags::CLONE_NEWPID | NEWTIME) {
            setns(file, *flag).map_err(|source| ProcessError::Sys {
                what: "join the container's pid namespace",
                source,
            })?;
        }
    }
    let into = plan.cgroup.and_then(|cg| cg.v2_dir_fd());
    let cloned = handshake::clone_child(0, into, |sock| {
        if let Err(e) = child(plan, &namespaces, &sock) {
            let _ = sync::send_error(&sock, &e.to_string());
        }
        syscall::exit_now(255)
    })?;
    cloned.handshake(|child| {
        if let Some(cg) = plan.cgroup.filter(|_| !child.born_in_cgroup) {
            cg.join(child.pid.as_raw())?;
        }
        child.send(ToInit::Go)?;
        // The child's end is close-on-exec: end-of-file means it exec'd.
        let agent = plan.seccomp.and_then(|s| s.agent.as_ref());
        handshake::finish(child.recv(agent)?, &FromInit::Gone)
    })
}

fn child(
    plan: &ExecPlan,
    namespaces: &[(CloneFlags, File)],
    sock: &OwnedFd,
) -> Result<(), InitError> {
    if sync::recv_to_init(sock).map_err(sys("wait for parent"))? != Some(ToInit::Go) {
        syscall::exit_now(255);
    }
    super::init::protect_binary()?;
    // /proc is read through the host's procfs, before the container's
    // mount namespace (and its /proc) is joined.
    let proc = crate::rootfs::procfs::ProcFs::host().map_err(sys("open the host's /proc"))?;
    crate::rootfs::procfs::install(proc, 3 + plan.preserve_fds as i32)
        .map_err(sys("keep a procfs handle"))?;
    for (flag, file) in namespaces {
        if matches!(*flag, CloneFlags::CLONE_NEWPID | NEWTIME) {
            continue;
        }
        setns(file, *flag).map_err(sys(format!("join the container's {flag:?} namespace")))?;
        if *flag == CloneFlags::CLONE_NEWUSER {
            setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
                .map_err(sys("become root in the user namespace"))?;
            setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
                .map_err(sys("become root in the user namespace"))?;
        }
    }
    if plan.process.terminal().unwrap_or(false) {
        let socket = plan
            .console_socket
            .as_ref()
            .ok_or(TtyError::NoConsoleSocket)?;
        let size = finalize::console_size(plan.process);
        tty::setup_terminal(socket, size, false)?;
        tty::give_to(plan.process.user().uid())?;
    }
    let mut ours: Vec<RawFd> = vec![sock.as_raw_fd()];
    ours.extend(plan.console_socket.as_ref().map(|s| s.as_raw_fd()));
    ours.extend(namespaces.iter().map(|(_, f)| f.as_raw_fd()));
    let send_listener = |fd: OwnedFd| {
        crate::seccomp::agent::send_fd(sock, &FromInit::Seccomp.encode(), fd.as_fd())
            .map_err(sys("send the seccomp listener fd"))
    };
    let seccomp = plan.seccomp.map(|s| finalize::SeccompStep {
        filter: &s.filter,
        send_listener: &send_listener,
    });
    let target = finalize::prepare(
        plan.process,
        plan.preserve_fds,
        &ours,
        plan.sigmask_reset,
        seccomp.as_ref(),
    )?;
    finalize::reset_signals()?;
    finalize::exec(&target)
}
