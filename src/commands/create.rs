//! `ferry create`: set a container up and leave its init blocked before exec.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Pid, mkfifo};

use crate::cli::{CreateOpts, GlobalOpts};
use crate::container::{ContainerDir, State, process_start_time};
use crate::namespaces::Namespaces;
use crate::process::{self, InitPlan};
use crate::{config, timefmt};

/// A created container: its init's pid.
pub struct Created {
    pub pid: Pid,
}

/// How the caller of [`create`] runs: `ferry create`, or a foreground
/// `ferry run` that blocked the signals it forwards (the init unblocks
/// them) and may bring its own console socket to bridge a terminal.
#[derive(Default)]
pub struct Caller {
    pub forward_signals: bool,
    pub console: Option<OwnedFd>,
}

/// Create the container.
pub fn create(g: &GlobalOpts, o: &CreateOpts, caller: Caller) -> Result<Created> {
    if g.systemd_cgroup && !Path::new("/run/systemd/system").exists() {
        bail!("systemd cgroup driver requested but systemd not running");
    }
    let bundle = match &o.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir().context("current directory")?,
    };
    let bundle =
        std::fs::canonicalize(&bundle).with_context(|| format!("bundle {}", bundle.display()))?;
    let mut spec = config::load(&bundle)?;
    let listen = listen_fds();
    set_listen_env(&mut spec, listen);
    let spec = spec;
    let rootfs = config::rootfs_path(&spec, &bundle)?;
    log::debug!("create {}: bundle {}", o.id, bundle.display());
    if spec.process().is_none() {
        bail!("config.json has no process");
    }
    let namespaces = Namespaces::plan(
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or_default(),
    )?;
    // Compiled before anything exists: a bad profile leaves nothing behind.
    let seccomp = crate::seccomp::Seccomp::for_container(&spec, &o.id, &bundle)?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if o.console_socket.is_some() && !terminal {
        bail!("--console-socket was given but process.terminal is false");
    }
    config::check_sysctls(&spec, |flag| namespaces.has(flag))?;
    if let Some(process) = spec.process() {
        crate::process::finalize::lsm_labels(process).check()?;
    }
    crate::lsm::mount_label_option(
        spec.linux()
            .as_ref()
            .and_then(|l| l.mount_label().as_deref()),
    )?;
    let console_socket = match &o.console_socket {
        Some(path) => Some(connect(path)?),
        None => caller.console,
    };

    let store = super::store(g)?;
    let dir = store.create(&o.id)?;
    let mut guard = Cleanup {
        dir: Some(dir),
        pid: None,
    };
    let dir = guard.dir.as_ref().expect("dir");

    let fifo_path = dir.fifo_path();
    // World-writable for the write side only: the init may run as any uid.
    mkfifo(&fifo_path, Mode::from_bits_truncate(0o622)).context("create exec fifo")?;
    // mkfifo's mode went through our umask.
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .context("create exec fifo")?;
    let fifo = nix::fcntl::open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .context("open exec fifo")?;

    // Recorded before anything else is made (the cgroup, then the init):
    // a `create` killed half-way leaves a provisional state.json that tells
    // `delete --force` what to remove.
    let mut state = State {
        oci_version: spec.version().clone(),
        id: o.id.clone(),
        pid: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: timefmt::now_rfc3339(),
        owner: nix::unistd::geteuid().as_raw(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        start_time: 0,
        own_pid_ns: namespaces.new_pid(),
        hooks: spec.hooks().clone(),
        cgroup: None,
        creating: true,
    };
    let record_cgroup = |cg: &crate::cgroups::CgroupState| {
        let provisional = State {
            cgroup: Some(cg.clone()),
            ..state.clone()
        };
        dir.save(&provisional)
            .map_err(|e| crate::cgroups::CgroupError::Record(e.to_string()))
    };
    // Dropped on any failure below: kills what is in it and removes it.
    let cgroup = crate::cgroups::Manager::create(
        &spec,
        &crate::cgroups::Options {
            id: &o.id,
            systemd: g.systemd_cgroup,
            rootless: crate::user::is_rootless(),
            record: Some(&record_cgroup),
        },
    )?;
    state.cgroup = cgroup.as_ref().map(|c| c.state().clone());
    let base = state.clone();
    let record_init = |pid: Pid| {
        let start_time = process_start_time(pid.as_raw()).map_or(0, |(_, t)| t);
        let provisional = State {
            pid: pid.as_raw(),
            start_time,
            ..base.clone()
        };
        dir.save(&provisional)
            .map_err(|e| process::ProcessError::Init(e.to_string()))
    };
    let plan = InitPlan {
        id: &o.id,
        spec: &spec,
        bundle: &bundle,
        rootfs: &rootfs,
        namespaces,
        fifo: Some(fifo),
        console_socket,
        preserve_fds: o.preserve_fds + listen,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        sigmask_reset: caller.forward_signals,
        cgroup: cgroup.as_ref(),
        seccomp,
        lock_fd: Some(dir.lock_fd()),
        on_clone: Some(&record_init),
    };
    let pid = process::spawn(&plan)?;
    log::debug!("create {}: init {pid} waits for start", o.id);
    guard.pid = Some(pid);
    let (_, start_time) =
        process_start_time(pid.as_raw()).context("container init exited during create")?;
    state.pid = pid.as_raw();
    state.start_time = start_time;
    state.creating = false;
    dir.save(&state)?;
    if let Some(pid_file) = &o.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    guard.pid = None;
    guard.dir = None;
    cgroup.map(crate::cgroups::Manager::keep);
    Ok(Created { pid })
}

/// Undo a failed create: kill the init, remove the state dir.
struct Cleanup {
    dir: Option<ContainerDir>,
    pid: Option<Pid>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            crate::process::kill_and_reap(pid);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

pub(super) fn connect(path: &Path) -> Result<OwnedFd> {
    let stream = UnixStream::connect(path)
        .with_context(|| format!("connect to console socket {}", path.display()))?;
    Ok(OwnedFd::from(stream))
}

/// systemd socket activation: `LISTEN_FDS=N` passes fds 3..3+N through,
/// but only when `LISTEN_PID` is ferry's own pid (systemd's rule, as runc
/// via go-systemd): variables inherited from some other process (an
/// activated service that started ferry) name fds that are not meant for
/// the container, and passing them would hand it arbitrary host files.
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    if !ours {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// With `n` activation fds passed, the container's process is told so:
/// `LISTEN_FDS=n` and `LISTEN_PID=1`, its pid as the container's pid 1
/// (runc does the same); earlier entries of either are replaced.
fn set_listen_env(spec: &mut oci_spec::runtime::Spec, n: u32) {
    if n == 0 {
        return;
    }
    let Some(process) = spec.process_mut() else {
        return;
    };
    let mut env = process.env().clone().unwrap_or_default();
    env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
    env.push(format!("LISTEN_FDS={n}"));
    env.push("LISTEN_PID=1".to_string());
    process.set_env(Some(env));
}

/// The host pid in decimal, no newline (containerd parses the whole file),
/// written atomically.
pub fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let tmp: PathBuf = {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        path.with_file_name(name)
    };
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("write pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write pid file {}", path.display()))
}
