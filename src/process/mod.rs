//! Turning a config into a container init blocked before `execve`.
//!
//! ferry is single-threaded here, so like crun it needs no re-exec: one
//! `clone3` makes the init directly in its new namespaces. The parent then
//! writes the id maps, tells the init to go on over a socketpair, and waits
//! until the init reports that it is set up (or why it failed). The init
//! then blocks opening the exec fifo until `start`.

pub mod exec_process;
pub mod finalize;
mod handshake;
mod init;
mod init_error;
mod sync;
pub mod trampoline;

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::namespaces::{NamespaceError, Namespaces};
use crate::syscall::{self, Forked};
use crate::userns::{self, IdMapError};
pub use handshake::kill_and_reap;
use sync::{FromInit, ToInit};

pub use init_error::InitError;

/// Errors starting a container's init.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    IdMap(#[from] IdMapError),
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: nix::Error,
    },
    /// The child (init or exec'd process) reported a failure: its own
    /// message, as it came over the sync channel (another process's error,
    /// so text, not a local error value).
    #[error("{0}")]
    Init(String),
    #[error("set oom_score_adj {score}: {source}")]
    OomScoreAdj { score: i32, source: std::io::Error },
    #[error("unknown clock {0:?} in timeOffsets")]
    UnknownClock(String),
    #[error("set time offsets: {0}")]
    TimeOffsets(#[source] std::io::Error),
    #[error("open {path}: {source}")]
    OpenNamespace {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error("container init exited during set-up")]
    InitDied,
    #[error(transparent)]
    Protocol(#[from] sync::UnexpectedMessage),
}

/// Everything the init needs, prepared by the parent before the clone.
pub struct InitPlan<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub namespaces: Namespaces,
    /// `O_PATH` fd of the exec fifo the init opens for writing before exec.
    pub fifo: Option<OwnedFd>,
    /// Connected console socket that receives the pty master.
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Unblock these signals in the init (the parent blocked them to forward).
    pub sigmask_reset: bool,
    /// The compiled seccomp filter (and its agent), loaded by the init.
    pub seccomp: Option<crate::seccomp::Seccomp>,
    /// The container's cgroup: joined before GO (v2 by the parent, v1 by
    /// the init itself right after GO), so before its cgroup namespace.
    pub cgroup: Option<&'a crate::cgroups::Manager>,
    /// The state dir's lock: closed by the init at once, so that a killed
    /// `create` does not leave the container locked by its init.
    pub lock_fd: Option<std::os::fd::RawFd>,
}

/// `clone3`, the child born in the v2 cgroup `into` when given: unlike a
/// move by pid afterwards, `CLONE_INTO_CGROUP` takes no global write lock,
/// whose RCU wait costs 10 to 14 ms on an idle host. Falls back to a plain
/// clone where the kernel refuses it. Returns whether the child was born
/// in the cgroup. Single-threaded callers only, as `clone3_fork`.
pub(crate) fn clone_into(
    flags: u64,
    into: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<(Forked, bool), nix::Error> {
    if into.is_some() {
        match syscall::clone3_fork(flags, into) {
            Ok(forked) => return Ok((forked, true)),
            Err(e) => log::debug!("CLONE_INTO_CGROUP refused ({e}): moving the process after"),
        }
    }
    Ok((syscall::clone3_fork(flags, None)?, false))
}

/// Clone the init, map its ids and wait until it is set up. Returns its pid.
pub fn spawn(plan: &InitPlan) -> Result<Pid, ProcessError> {
    clone_init(plan)?.finish()
}

/// An init cloned by [`clone_init`]: it waits for its id maps until
/// [`Cloned::finish`] runs the rest of the parent's side. Dropped
/// unfinished (the caller failed in between), it is killed and reaped.
pub struct Cloned<'p, 'a> {
    plan: &'p InitPlan<'a>,
    child: Option<handshake::Child>,
    uid_maps: Vec<LinuxIdMapping>,
    gid_maps: Vec<LinuxIdMapping>,
}

/// The first half of [`spawn`]: plan the id maps (checking that the caller
/// may use them), make the idmapped mounts, enter the namespaces to join
/// and clone the init. The caller may record the init's pid
/// ([`Cloned::pid`]) before [`Cloned::finish`] lets it go on.
pub fn clone_init<'p, 'a>(plan: &'p InitPlan<'a>) -> Result<Cloned<'p, 'a>, ProcessError> {
    let spec = plan.spec;
    let linux = spec.linux().as_ref();
    let (uid_maps, gid_maps) = id_maps(plan);
    if plan.namespaces.new_user() {
        userns::check_allowed(&maps("uid", &uid_maps), &maps("gid", &gid_maps))?;
    }
    // Idmapped mounts need privileges the init may not have: made here,
    // detached, and inherited by the init, which attaches them.
    let idmapped = crate::rootfs::idmap::prepare(
        spec,
        plan.bundle,
        plan.namespaces
            .new_user()
            .then_some((&uid_maps[..], &gid_maps[..])),
    )?;
    // The systemd cgroup driver connects to D-Bus after the clone, which
    // starts threads: the parent returns to its own pid and time
    // namespaces for children first (only then, to keep the clone fast).
    let own = match plan.cgroup.filter(|c| c.uses_dbus()) {
        Some(_) => {
            let mut flags = nix::sched::CloneFlags::from_bits_retain(
                plan.namespaces.clone_flags.bits() & libc::CLONE_NEWTIME,
            );
            for j in &plan.namespaces.parent_joins {
                flags |= j.flag;
            }
            Some(crate::namespaces::OwnForChildren::open(flags)?)
        }
        None => None,
    };
    Namespaces::enter(&plan.namespaces.parent_joins)?;

    let mut flags = plan.namespaces.clone_flags.bits() as u64;
    if flags & libc::CLONE_NEWTIME as u64 != 0
        && let Some(offsets) = linux
            .and_then(|l| l.time_offsets().as_ref())
            .filter(|o| !o.is_empty())
    {
        // Offsets can only be set before a process lives in the namespace,
        // and clone3 would put the init there at once: unshare it for our
        // children instead, set the offsets, and clone without the flag.
        set_time_offsets(offsets)?;
        flags &= !(libc::CLONE_NEWTIME as u64);
    }
    let into = plan.cgroup.and_then(|cg| cg.birth_dir_fd());
    let child = handshake::clone_child(flags, into, move |sock| {
        if let Some(fd) = plan.lock_fd {
            // Our copy of the parent's lock fd, not used here.
            syscall::close_inherited(fd);
        }
        init::run(plan, sock, idmapped)
    })?;
    if let Some(own) = &own {
        own.restore()?;
    }
    Ok(Cloned {
        plan,
        child: Some(child),
        uid_maps,
        gid_maps,
    })
}

/// The uid and gid maps of the init's user namespace. Without any, the
/// container's root is the caller, as crun does (the spec makes the maps
/// optional; runc refuses).
fn id_maps(plan: &InitPlan) -> (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>) {
    let linux = plan.spec.linux().as_ref();
    let uid_given = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gid_given = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    if uid_given.is_empty() && gid_given.is_empty() {
        let (uid, gid) = userns::own_ids();
        return (vec![userns::own_map(uid)], vec![userns::own_map(gid)]);
    }
    (uid_given, gid_given)
}

/// The caller's maps of one kind, for [`userns::maps`].
fn maps<'m>(kind: &'static str, maps: &'m [LinuxIdMapping]) -> userns::Maps<'m> {
    let (uid, gid) = userns::own_ids();
    userns::Maps {
        kind,
        maps,
        own: if kind == "uid" { uid } else { gid },
    }
}

impl Cloned<'_, '_> {
    /// The init's pid (as the host sees it).
    pub fn pid(&self) -> Pid {
        self.child.as_ref().expect("not finished").pid
    }

    /// The second half of [`spawn`]: map the init's ids, put it in its
    /// cgroup, pass it what it needs, run the runtime hooks when it asks,
    /// and wait until it is set up. On failure the init is killed and
    /// reaped. Returns its pid.
    pub fn finish(mut self) -> Result<Pid, ProcessError> {
        let child = self.child.take().expect("finished once");
        child.handshake(|child| self.parent_side(child))
    }

    fn parent_side(&self, child: &handshake::Child) -> Result<(), ProcessError> {
        let plan = self.plan;
        let spec = plan.spec;
        let pid = child.pid;
        if plan.namespaces.new_user() {
            userns::maps::write(
                pid,
                &maps("uid", &self.uid_maps),
                &maps("gid", &self.gid_maps),
            )?;
        }
        if let Some(score) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
            std::fs::write(format!("/proc/{pid}/oom_score_adj"), score.to_string())
                .map_err(|source| ProcessError::OomScoreAdj { score, source })?;
        }
        if let Some(cg) = plan.cgroup.filter(|_| !child.born_in_cgroup) {
            cg.apply(pid)?;
        }
        if plan.namespaces.new_user() && !userns::is_rootless() {
            for (index, fd) in
                crate::rootfs::open_bind_sources(plan.spec, plan.bundle, pid.as_raw())
            {
                child.send_source(index, std::os::fd::AsFd::as_fd(&fd))?;
            }
        }
        child.send(ToInit::Mapped {
            host_pid: pid.as_raw(),
        })?;
        let agent = plan.seccomp.as_ref().and_then(|s| s.agent.as_ref());
        let mut msg = child.recv(agent)?;
        if msg == FromInit::Hooks {
            run_runtime_hooks(plan, pid)?;
            child.send(ToInit::Go)?;
            msg = child.recv(agent)?;
        }
        handshake::finish(msg, &FromInit::Ready)
    }
}

impl Drop for Cloned<'_, '_> {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            kill_and_reap(child.pid);
        }
    }
}

/// The `prestart` and `createRuntime` hooks, run when the init has made
/// its mounts and before it pivots.
fn run_runtime_hooks(plan: &InitPlan, pid: Pid) -> Result<(), ProcessError> {
    let spec = plan.spec;
    let hooks = spec.hooks().as_ref();
    let annotations = spec.annotations().clone().unwrap_or_default();
    // "created": the runtime spec's status once the environment exists
    // (step 2 of the lifecycle), as crun (runc 1.1 says "creating").
    let state =
        crate::hooks::state_json(plan.id, "created", pid.as_raw(), plan.bundle, &annotations);
    crate::hooks::run(
        "prestart",
        hooks.and_then(|h| h.prestart().as_ref()),
        &state,
    )?;
    crate::hooks::run(
        "createRuntime",
        hooks.and_then(|h| h.create_runtime().as_ref()),
        &state,
    )?;
    Ok(())
}

/// Make a time namespace for our children with `offsets` (clock name to
/// seconds and nanoseconds, e.g. `monotonic`, `boottime`).
fn set_time_offsets(
    offsets: &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
) -> Result<(), ProcessError> {
    let sys = |what| move |source| ProcessError::Sys { what, source };
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
        libc::CLONE_NEWTIME,
    ))
    .map_err(sys("unshare the time namespace"))?;
    let mut text = String::new();
    for (clock, off) in offsets {
        if !matches!(clock.as_str(), "monotonic" | "boottime") {
            return Err(ProcessError::UnknownClock(clock.clone()));
        }
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).map_err(ProcessError::TimeOffsets)
}
