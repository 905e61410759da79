//! `exec`: a new process inside a running container, in every namespace of
//! its init (user first), born in its pid and time namespaces.
//!
//! `setns` into a pid or time namespace only affects the caller's later
//! children, and the kernel allows it only with `CAP_SYS_ADMIN` both in the
//! namespace's owning user namespace and in the caller's own. As root, ferry
//! has both: it enters them itself and clones the process into them. A
//! rootless ferry has neither until it is inside the container's user
//! namespace, which ferry itself must never join (it would then belong to
//! the container's user namespace, and `getuid` would change under it). So
//! there, as runc's nsexec does, a short-lived intermediate child joins the
//! user namespace, then the pid and time namespaces, and clones the process
//! with `CLONE_PARENT`, so that it is still ferry's own child; the
//! intermediate reports the process's pid and exits.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{MsgFlags, recv};
use nix::unistd::{Gid, Pid, Uid, setresgid, setresuid};
use oci_spec::runtime::Process;

use super::init_error::{InitError, sys};
use super::sync::{FromInit, ToInit};
use super::{ProcessError, finalize, handshake, sync};
use crate::syscall::{self, Forked};
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
            let file = File::open(&theirs).map_err(|source| ProcessError::OpenNamespace {
                path: theirs.clone(),
                source,
            })?;
            out.push((*flag, file));
        }
    }
    Ok(out)
}

/// Start the process; returns its host pid once it has exec'd.
pub fn spawn(plan: &ExecPlan) -> Result<Pid, ProcessError> {
    let namespaces = open_namespaces(plan.init_pid)?;
    let user_first = must_join_user_first(&namespaces);
    if !user_first {
        join_for_children(&namespaces).map_err(|source| ProcessError::Sys {
            what: "join the container's pid namespace",
            source,
        })?;
    }
    let (parent_sock, child_sock) = sync::pair().map_err(|source| ProcessError::Sys {
        what: "socketpair",
        source,
    })?;
    let into = plan.cgroup.and_then(|cg| cg.v2_dir_fd());
    let into_fd = into.as_ref().map(|fd| fd.as_fd());
    let (forked, born_in_cgroup) = if user_first {
        clone_through_user_ns(&namespaces, into_fd, &parent_sock, &child_sock)?
    } else {
        super::clone_into(0, into_fd).map_err(|source| ProcessError::Sys {
            what: "clone3",
            source,
        })?
    };
    drop(into);
    let pid = match forked {
        Forked::Child => {
            drop(parent_sock);
            if let Err(e) = child(plan, &namespaces, &child_sock, user_first) {
                let _ = sync::send_error(&child_sock, &e.to_string());
            }
            syscall::exit_now(255)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_sock);
    handshake::Child::adopt(pid, parent_sock, born_in_cgroup).handshake(|child| {
        if let Some(cg) = plan.cgroup.filter(|_| !child.born_in_cgroup) {
            cg.join(child.pid.as_raw())?;
        }
        child.send(ToInit::Go)?;
        // The child's end is close-on-exec: end-of-file means it exec'd.
        let agent = plan.seccomp.and_then(|s| s.agent.as_ref());
        handshake::finish(child.recv(agent)?, &FromInit::Gone)
    })
}

/// Whether the pid or time namespace can only be entered from inside the
/// container's user namespace: there is one to join, and ferry lacks
/// `CAP_SYS_ADMIN` in its own (rootless).
fn must_join_user_first(namespaces: &[(CloneFlags, File)]) -> bool {
    let has = |kind: CloneFlags| namespaces.iter().any(|(flag, _)| *flag == kind);
    let for_children = has(CloneFlags::CLONE_NEWPID) || has(NEWTIME);
    has(CloneFlags::CLONE_NEWUSER)
        && for_children
        && !caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_ADMIN,
        )
        .unwrap_or(false)
}

/// Enter the pid and time namespaces for the caller's future children.
fn join_for_children(namespaces: &[(CloneFlags, File)]) -> nix::Result<()> {
    for (flag, file) in namespaces {
        if is_for_children(*flag) {
            setns(file, *flag)?;
        }
    }
    Ok(())
}

/// The namespaces whose `setns` only affects the caller's children.
fn is_for_children(flag: CloneFlags) -> bool {
    matches!(flag, CloneFlags::CLONE_NEWPID | NEWTIME)
}

/// Clone the process from an intermediate child inside the container's
/// user namespace (see the module doc). In the process itself returns
/// `Forked::Child` (already in the user, pid and time namespaces, as root
/// of the user namespace); in ferry, its pid and whether it was born in
/// the cgroup `into`. The intermediate never returns.
fn clone_through_user_ns(
    namespaces: &[(CloneFlags, File)],
    into: Option<BorrowedFd<'_>>,
    parent_sock: &OwnedFd,
    child_sock: &OwnedFd,
) -> Result<(Forked, bool), ProcessError> {
    let sys_err = |what| move |source| ProcessError::Sys { what, source };
    let (forked, _) = super::clone_into(0, None).map_err(sys_err("clone3"))?;
    let Forked::Parent(middle) = forked else {
        match enter_and_clone(namespaces, into) {
            Ok((Forked::Child, born)) => return Ok((Forked::Child, born)),
            Ok((Forked::Parent(pid), born_in_cgroup)) => {
                let report = FromInit::Cloned {
                    pid: pid.as_raw(),
                    born_in_cgroup,
                };
                let ok = sync::send_from_init(child_sock, &report).is_ok();
                syscall::exit_now(if ok { 0 } else { 1 })
            }
            Err(e) => {
                let _ = sync::send_error(child_sock, &e.to_string());
                syscall::exit_now(1)
            }
        }
    };
    // The intermediate exits right after its report: read it without
    // blocking, so that a killed intermediate cannot hang ferry.
    let _ = nix::sys::wait::waitpid(middle, None);
    let mut buf = [0u8; 4096];
    let n = recv(parent_sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT)
        .map_err(|_| ProcessError::InitDied)?;
    match FromInit::decode(&buf[..n]) {
        Ok(FromInit::Cloned {
            pid,
            born_in_cgroup,
        }) if pid > 0 => Ok((Forked::Parent(Pid::from_raw(pid)), born_in_cgroup)),
        Ok(FromInit::Error(text)) => Err(ProcessError::Init(text)),
        _ => Err(ProcessError::InitDied),
    }
}

/// In the intermediate: become root of the container's user namespace,
/// enter its pid and time namespaces for our children, and clone the
/// process as a sibling (a child of ferry).
fn enter_and_clone(
    namespaces: &[(CloneFlags, File)],
    into: Option<BorrowedFd<'_>>,
) -> Result<(Forked, bool), InitError> {
    // Not reachable through /proc/PID/exe from inside, as the process.
    super::init::protect_binary()?;
    for (flag, file) in namespaces {
        if *flag == CloneFlags::CLONE_NEWUSER {
            setns(file, *flag).map_err(sys("join the container's user namespace"))?;
            become_root()?;
        }
    }
    join_for_children(namespaces).map_err(sys("join the container's pid namespace"))?;
    super::clone_into(libc::CLONE_PARENT as u64, into).map_err(sys("clone3"))
}

/// uid and gid 0 of the user namespace just joined.
fn become_root() -> Result<(), InitError> {
    setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(sys("become root in the user namespace"))?;
    setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(sys("become root in the user namespace"))
}

/// The process, from the clone to `execve`. `user_joined`: it was cloned
/// inside the container's user namespace already (as its root).
fn child(
    plan: &ExecPlan,
    namespaces: &[(CloneFlags, File)],
    sock: &OwnedFd,
    user_joined: bool,
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
        let user = *flag == CloneFlags::CLONE_NEWUSER;
        if is_for_children(*flag) || (user && user_joined) {
            continue;
        }
        setns(file, *flag).map_err(sys(format!("join the container's {flag:?} namespace")))?;
        if user {
            become_root()?;
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
