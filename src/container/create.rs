//! Creating a container: set it up and leave its init blocked before
//! exec, recording a provisional state as it goes.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Pid, mkfifo};
use oci_spec::runtime::Spec;

use super::{Container, ContainerDir, ContainerError, State, StateStore, process_start_time};
use crate::namespaces::Namespaces;
use crate::process::{self, InitPlan};
use crate::{config, timefmt};

/// A bundle: its canonical directory and its parsed `config.json` (parsed
/// once: `run` reads it before `create`).
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    /// Load the bundle at `dir` (default: the current directory).
    pub fn load(dir: Option<&Path>) -> Result<Bundle, ContainerError> {
        let dir = match dir {
            Some(b) => b.to_path_buf(),
            None => std::env::current_dir().map_err(|source| ContainerError::Setup {
                what: "current directory",
                source,
            })?,
        };
        let dir = std::fs::canonicalize(&dir)
            .map_err(|source| ContainerError::Bundle { path: dir, source })?;
        let spec = config::load(&dir)?;
        Ok(Bundle { dir, spec })
    }

    /// Whether the bundle's process asks for a terminal.
    pub fn wants_terminal(&self) -> bool {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    }
}

/// How to create a container: the command line's options, and how the
/// caller runs.
#[derive(Default)]
pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub systemd_cgroup: bool,
    /// A foreground `run` blocked the signals it forwards (the init
    /// unblocks them).
    pub forward_signals: bool,
    /// The caller's own console socket (`run` bridging a terminal).
    pub console: Option<OwnedFd>,
    /// Called with the init's pid right after the clone, while the init
    /// is still dumpable (e.g. to open its namespaces: see
    /// [`crate::network`]); an error fails the create.
    pub on_clone: Option<&'a dyn Fn(i32) -> std::io::Result<()>>,
}

impl Container {
    /// Create a container from `bundle`: its init waits for `start`.
    pub fn create(
        store: &StateStore,
        bundle: Bundle,
        o: CreateOptions,
    ) -> Result<Container, ContainerError> {
        let state = create(store, bundle, o)?;
        let path = store.container_path(&state.id);
        Ok(Container::new(state, path, None))
    }
}

fn create(store: &StateStore, bundle: Bundle, o: CreateOptions) -> Result<State, ContainerError> {
    if o.systemd_cgroup && !Path::new("/run/systemd/system").exists() {
        return Err(ContainerError::SystemdNotRunning);
    }
    let Bundle {
        dir: bundle,
        mut spec,
    } = bundle;
    let listen = listen_fds();
    set_listen_env(&mut spec, listen);
    let spec = spec;
    let rootfs = config::rootfs_path(&spec, &bundle)?;
    log::debug!("create {}: bundle {}", o.id, bundle.display());
    if spec.process().is_none() {
        return Err(ContainerError::NoProcess);
    }
    let namespaces = Namespaces::plan(
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or_default(),
    )?;
    // Compiled before anything exists: a bad profile leaves nothing behind.
    let seccomp = crate::seccomp::Seccomp::for_container(&spec, o.id, &bundle)?;
    check(&spec, &namespaces, &o)?;
    let console_socket = match o.console_socket {
        Some(path) => Some(connect(path)?),
        None => o.console,
    };

    let dir = store.create(o.id)?;
    let mut guard = Cleanup {
        dir: Some(dir),
        pid: None,
    };
    let dir = guard.dir.as_ref().expect("dir");

    let fifo = make_exec_fifo(dir)?;

    // Saved twice: once provisional (`creating`), as soon as it can tell
    // `delete --force` what a `create` killed half-way left (the cgroup
    // about to be made, else the init just cloned), and once final.
    let mut state = State {
        oci_version: spec.version().clone(),
        id: o.id.to_string(),
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
    let planned = crate::cgroups::Manager::plan(
        &spec,
        &crate::cgroups::Options {
            id: o.id,
            systemd: o.systemd_cgroup,
            rootless: crate::userns::is_rootless(),
        },
    )?;
    // Dropped on any failure below: kills what is in it and removes it.
    let cgroup = match planned {
        Some(planned) => {
            // The provisional state, before the cgroup exists: the init is
            // in it before it may go on, so `delete --force` finds the
            // init of a killed `create` through the cgroup.
            dir.save(&State {
                cgroup: Some(planned.record()),
                ..state.clone()
            })?;
            planned.make()?
        }
        None => None,
    };
    state.cgroup = cgroup.as_ref().map(crate::cgroups::Manager::state);
    let plan = InitPlan {
        id: o.id,
        spec: &spec,
        bundle: &bundle,
        rootfs: &rootfs,
        namespaces,
        fifo: Some(fifo),
        console_socket,
        preserve_fds: o.preserve_fds + listen,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        sigmask_reset: o.forward_signals,
        cgroup: cgroup.as_ref(),
        seccomp,
        lock_fd: Some(dir.lock_fd()),
    };
    let init = process::clone_init(&plan)?;
    if let Some(on_clone) = o.on_clone {
        on_clone(init.pid().as_raw()).map_err(|source| ContainerError::OnClone {
            id: o.id.to_string(),
            source,
        })?;
    }
    if cgroup.is_none() {
        // No cgroup to find it by: the provisional state names the init
        // (dropping `init` on failure kills it).
        dir.save(&State {
            pid: init.pid().as_raw(),
            start_time: process_start_time(init.pid().as_raw()).map_or(0, |(_, t)| t),
            ..state.clone()
        })?;
    }
    let pid = init.finish()?;
    log::debug!("create {}: init {pid} waits for start", o.id);
    guard.pid = Some(pid);
    let (_, start_time) = process_start_time(pid.as_raw()).ok_or(ContainerError::InitGone)?;
    state.pid = pid.as_raw();
    state.start_time = start_time;
    // The systemd driver's scope exists (and has a directory) only now.
    state.cgroup = cgroup.as_ref().map(crate::cgroups::Manager::state);
    state.creating = false;
    dir.save(&state)?;
    if let Some(pid_file) = o.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    guard.pid = None;
    guard.dir = None;
    cgroup.map(crate::cgroups::Manager::keep);
    Ok(state)
}

/// What `create` refuses before it makes anything: a console socket
/// without a terminal, sysctls outside a private namespace, bad LSM labels.
fn check(spec: &Spec, namespaces: &Namespaces, o: &CreateOptions) -> Result<(), ContainerError> {
    let Some(process) = spec.process() else {
        return Err(ContainerError::NoProcess);
    };
    if o.console_socket.is_some() && process.terminal() != Some(true) {
        return Err(ContainerError::ConsoleWithoutTerminal);
    }
    config::check_sysctls(spec, |flag| namespaces.has(flag))?;
    crate::process::finalize::lsm_labels(process).check()?;
    crate::lsm::mount_label_option(
        spec.linux()
            .as_ref()
            .and_then(|l| l.mount_label().as_deref()),
    )?;
    Ok(())
}

/// The exec fifo the init blocks on until `start`; an `O_PATH` fd of it
/// for the init.
fn make_exec_fifo(dir: &ContainerDir) -> Result<OwnedFd, ContainerError> {
    let fifo_path = dir.fifo_path();
    let setup = |what| move |source| ContainerError::Setup { what, source };
    // World-writable for the write side only: the init may run as any uid.
    mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .map_err(|e| setup("create exec fifo")(e.into()))?;
    // mkfifo's mode went through our umask.
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .map_err(setup("create exec fifo"))?;
    nix::fcntl::open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| setup("open exec fifo")(e.into()))
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

/// Connect to the console socket at `path` (the pty master goes there).
pub(super) fn connect(path: &Path) -> Result<OwnedFd, ContainerError> {
    let stream = UnixStream::connect(path).map_err(|source| ContainerError::ConsoleSocket {
        path: path.to_path_buf(),
        source,
    })?;
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
pub(super) fn write_pid_file(path: &Path, pid: Pid) -> Result<(), ContainerError> {
    let tmp: PathBuf = {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        path.with_file_name(name)
    };
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContainerError::PidFile { path, source }
    };
    std::fs::write(&tmp, pid.to_string()).map_err(err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(err(path))
}
