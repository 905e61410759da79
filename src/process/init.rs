//! The container's init, from the clone to `execve`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::fcntl::{OFlag, openat};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, setresgid, setresuid};

use super::init_error::{InitError, sys};
use super::sync::{FromInit, ToInit};
use super::trampoline::Trampoline;
use super::{InitPlan, finalize, sync};
use crate::namespaces::Namespaces;
use crate::rootfs;
use crate::syscall;
use crate::tty::{self, TtyError};

/// Run the init; never returns.
/// `idmapped` are the detached idmapped mounts the parent made.
pub fn run(plan: &InitPlan, sock: OwnedFd, idmapped: Vec<rootfs::idmap::Detached>) -> ! {
    if let Err(e) = setup_and_exec(plan, &sock, idmapped) {
        // After READY the parent no longer listens: stderr is all we have.
        if !sync::send_error(&sock, &e.to_string()) {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("ferry: {e}\n").as_bytes(),
            );
        }
    }
    syscall::exit_now(1)
}

fn setup_and_exec(
    plan: &InitPlan,
    sock: &OwnedFd,
    idmapped: Vec<rootfs::idmap::Detached>,
) -> Result<(), InitError> {
    let spec = plan.spec;
    let process = spec.process().as_ref().ok_or(InitError::NoProcess)?;
    let ns = &plan.namespaces;

    // Wait until the parent has mapped our ids; it sends our host pid,
    // after the bind sources it opened for us.
    let (go, opened) = recv_go(sock)?;
    let Some(ToInit::Mapped { host_pid }) = go else {
        syscall::exit_now(1);
    };
    protect_binary()?;
    // Join the cgroup before anything else, and before the cgroup namespace
    // is unshared so that its root is the container's cgroup.
    if let Some(cg) = plan.cgroup {
        cg.join_self()?;
    }
    ns.set_up_network()?;
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
        userns: ns.any_user() || crate::userns::in_user_namespace(),
        no_pivot: plan.no_pivot,
        own_fd_floor: 3 + plan.preserve_fds as i32,
    };
    let prepared = rootfs::prepare(&rplan, idmapped, opened)?;
    let hooks = spec.hooks().as_ref();
    if hooks.is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some()) {
        sync::send_from_init(sock, &FromInit::Hooks).map_err(sys("ask for runtime hooks"))?;
        if sync::recv_to_init(sock).map_err(sys("wait for runtime hooks"))? != Some(ToInit::Go) {
            syscall::exit_now(1);
        }
    }
    let annotations = spec.annotations().clone().unwrap_or_default();
    let hook_state =
        |status| crate::hooks::state_json(plan.id, status, host_pid, plan.bundle, &annotations);
    // Hooks inside the container are started through a trampoline of their
    // own (CVE-2019-5736, see hooks.rs), made only when there are some.
    let hook_trampoline = has_container_hooks(spec)
        .then(Trampoline::new)
        .transpose()?;
    // "created", as crun and the runtime spec (runc 1.1 says "creating");
    // run in the rootfs, as runc.
    if let Some(t) = &hook_trampoline {
        crate::hooks::run_in_container(
            "createContainer",
            hooks.and_then(|h| h.create_container().as_ref()),
            &hook_state("created"),
            Some(plan.rootfs),
            t,
        )?;
    }
    rootfs::enter(&rplan)?;
    finalize::create_cwd(process)?;
    if process.terminal().unwrap_or(false) {
        let socket = plan
            .console_socket
            .as_ref()
            .ok_or(TtyError::NoConsoleSocket)?;
        let size = finalize::console_size(process);
        tty::setup_terminal(socket, size, true)?;
        tty::give_to(process.user().uid())?;
    } else {
        // Its own session, as runc's init (nsexec) always makes: CRIU
        // cannot checkpoint a tree whose session leader is outside it. A
        // fresh clone leads no process group, so this cannot fail.
        let _ = nix::unistd::setsid();
    }
    rootfs::finish(&rplan, prepared)?;
    let ours: Vec<RawFd> = [
        Some(sock),
        Some(&fd_dir),
        plan.fifo.as_ref(),
        plan.console_socket.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|fd| fd.as_raw_fd())
    .chain(hook_trampoline.as_ref().map(Trampoline::raw_fd))
    .collect();
    let send_listener = |fd: OwnedFd| {
        crate::seccomp::agent::send_fd(sock, &FromInit::Seccomp.encode(), fd.as_fd())
            .map_err(sys("send the seccomp listener fd"))
    };
    let seccomp = plan.seccomp.as_ref().map(|s| finalize::SeccompStep {
        filter: &s.filter,
        send_listener: &send_listener,
    });
    let target = finalize::prepare(
        process,
        plan.preserve_fds,
        &ours,
        plan.sigmask_reset,
        seccomp.as_ref(),
    )?;

    sync::send_from_init(sock, &FromInit::Ready).map_err(sys("report ready"))?;
    if let Some(fifo) = &plan.fifo {
        wait_for_start(&fd_dir, fifo)?;
    }
    // In the process's own cwd (the init is there already), as runc.
    if let Some(t) = &hook_trampoline
        && let Err(e) = crate::hooks::run_in_container(
            "startContainer",
            hooks.and_then(|h| h.start_container().as_ref()),
            &hook_state("created"),
            None,
            t,
        )
    {
        // Nobody waits on the sync socket any more: say it on stderr.
        let _ =
            std::io::Write::write_all(&mut std::io::stderr(), format!("ferry: {e}\n").as_bytes());
        syscall::exit_now(1);
    }
    drop(hook_trampoline);
    drop(fd_dir);
    finalize::reset_signals()?;
    finalize::exec(&target)
}

/// The parent's `Mapped` message, and the bind sources it sent before it.
fn recv_go(sock: &OwnedFd) -> Result<(Option<ToInit>, rootfs::Opened), InitError> {
    let mut opened = Vec::new();
    loop {
        let (msg, fd) = sync::recv_to_init_with_fd(sock).map_err(|e| InitError::Sys {
            what: "wait for parent".into(),
            source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        match (msg, fd) {
            (Some(ToInit::Source { index }), Some(fd)) => opened.push((index, fd)),
            (msg, _) => return Ok((msg, opened)),
        }
    }
}

/// Whether the config has hooks that run inside the container
/// (`createContainer`, `startContainer`).
fn has_container_hooks(spec: &oci_spec::runtime::Spec) -> bool {
    let Some(hooks) = spec.hooks() else {
        return false;
    };
    [hooks.create_container(), hooks.start_container()]
        .into_iter()
        .any(|list| list.as_ref().is_some_and(|l| !l.is_empty()))
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
        syscall::set_domainname(name).map_err(sys("set domainname"))?;
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

/// CVE-2019-5736: until execve, this process runs ferry's binary, and a
/// container process could open it through `/proc/PID/exe` and later
/// rewrite it. A non-dumpable process's /proc entries need CAP_SYS_PTRACE
/// in the initial user namespace (our mm's), which no container has. It
/// costs one prctl; execve makes the container's program dumpable again.
/// Set only after GO: a non-dumpable child's /proc/PID/uid_map would no
/// longer be writable by a rootless parent.
pub(super) fn protect_binary() -> Result<(), InitError> {
    syscall::set_dumpable(false).map_err(sys("make the init non-dumpable"))
}
