//! `checkpoint` and `restore` of a whole container through CRIU (see
//! [`super::criu`]): the container's side (its state, its bundle, the
//! new record a restore makes).

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::criu::{self, CriuFlags, DumpRequest, ImageDirs, RestoreRequest};
use super::rules::Op;
use super::{Bundle, Container, ContainerDir, ContainerError, State, StateStore, StoreError};
use crate::cgroups::CgroupState;

/// `ferry checkpoint`'s options.
#[derive(Default)]
pub struct CheckpointOptions<'a> {
    pub image_path: Option<&'a Path>,
    pub work_path: Option<&'a Path>,
    pub leave_running: bool,
    pub flags: CriuFlags,
}

/// `ferry restore`'s options.
#[derive(Default)]
pub struct RestoreOptions<'a> {
    pub id: &'a str,
    pub bundle: Option<&'a Path>,
    pub image_path: Option<&'a Path>,
    pub work_path: Option<&'a Path>,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub flags: CriuFlags,
}

/// The restored init's pid file inside the container dir.
const CRIU_PIDFILE: &str = "criu.pid";
/// The rootfs bind mount CRIU restores the mount namespace onto.
const CRIU_ROOT: &str = "criu-root";

impl Container {
    /// `checkpoint`: dump the running container's processes into the
    /// images dir; they stop (the state then says stopped) unless
    /// `leave_running`.
    pub fn checkpoint(&self, o: &CheckpointOptions) -> Result<(), ContainerError> {
        self.require(Op::Checkpoint)?;
        let criu = criu::criu_binary("checkpoint")?;
        let bundle = Bundle::load(Some(&self.state.bundle))?;
        let dirs = ImageDirs::new(o.image_path, o.work_path)?;
        let mut flags = o.flags;
        flags.shell_job |= bundle.wants_terminal();
        let req = DumpRequest {
            pid: self.state.pid,
            rootfs: &self.state.rootfs,
            spec: &bundle.spec,
            dirs: &dirs,
            opts: &flags,
            leave_running: o.leave_running,
        };
        Ok(criu::dump(&criu, &req)?)
    }

    /// `restore ID`: a new container `id` from the images, running; with
    /// `detach` false, wait for its init and return its exit status.
    pub fn restore(store: &StateStore, o: &RestoreOptions) -> Result<i32, ContainerError> {
        if store.container_path(o.id).exists() {
            return Err(StoreError::Exists(o.id.into()).into());
        }
        let criu = criu::criu_binary("restore")?;
        let bundle = Bundle::load(o.bundle)?;
        let rootfs = rootfs_of(&bundle)?;
        let dir = store.create(o.id)?;
        let state = match restore_into(&criu, &dir, &bundle, &rootfs, o) {
            Ok(state) => state,
            Err(e) => {
                let _ = dir.remove();
                return Err(e);
            }
        };
        drop(dir);
        if o.detach {
            return Ok(0);
        }
        Ok(wait_for(state.pid))
    }
}

/// Restore into the new container dir `dir` and record the container.
fn restore_into(
    criu: &Path,
    dir: &ContainerDir,
    bundle: &Bundle,
    rootfs: &Path,
    o: &RestoreOptions,
) -> Result<State, ContainerError> {
    let dirs = ImageDirs::new(o.image_path, o.work_path)?;
    let mut flags = o.flags;
    flags.shell_job |= bundle.wants_terminal();
    if !o.detach {
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| setup("subreaper", e))?;
    }
    let root = dir.path().join(CRIU_ROOT);
    mount_root(rootfs, &root)?;
    let req = RestoreRequest {
        root: &root,
        bundle: &bundle.dir,
        spec: &bundle.spec,
        dirs: &dirs,
        opts: &flags,
        pidfile: &dir.path().join(CRIU_PIDFILE),
    };
    let pid = criu::restore(criu, &req);
    unmount_root(&root);
    let pid = pid?;
    let state = restored_state(o.id, pid, bundle, rootfs);
    dir.save(&state)?;
    if let Some(f) = o.pid_file {
        std::fs::write(f, pid.to_string()).map_err(|source| ContainerError::Setup {
            what: "pid file",
            source,
        })?;
    }
    Ok(state)
}

fn setup(what: &'static str, e: nix::Error) -> ContainerError {
    ContainerError::Setup {
        what,
        source: e.into(),
    }
}

/// The bundle's rootfs, absolute and resolved.
fn rootfs_of(bundle: &Bundle) -> Result<PathBuf, ContainerError> {
    let root = bundle
        .spec
        .root()
        .as_ref()
        .map_or_else(|| PathBuf::from("rootfs"), |r| r.path().clone());
    let path = bundle.dir.join(root);
    std::fs::canonicalize(&path).map_err(|source| ContainerError::Bundle { path, source })
}

/// Bind-mount the rootfs at `root` (CRIU's `--root` must be a mount).
fn mount_root(rootfs: &Path, root: &Path) -> Result<(), ContainerError> {
    std::fs::create_dir(root).map_err(|source| ContainerError::Setup {
        what: "criu root dir",
        source,
    })?;
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    nix::mount::mount(Some(rootfs), root, None::<&str>, flags, None::<&str>)
        .map_err(|e| setup("bind mount of the rootfs for criu", e))?;
    nix::mount::mount(
        None::<&str>,
        root,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| setup("make the criu root private", e))
}

fn unmount_root(root: &Path) {
    let _ = nix::mount::umount2(root, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(root);
}

/// The record of the restored container: running, with the restored
/// init's pid and the cgroup CRIU put it in.
fn restored_state(id: &str, pid: i32, bundle: &Bundle, rootfs: &Path) -> State {
    State {
        oci_version: bundle.spec.version().clone(),
        id: id.to_string(),
        pid,
        bundle: bundle.dir.clone(),
        rootfs: rootfs.to_path_buf(),
        created: crate::timefmt::now_rfc3339(),
        owner: nix::unistd::geteuid().as_raw(),
        annotations: bundle
            .spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        start_time: super::process_start_time(pid).map_or(0, |(_, t)| t),
        own_pid_ns: own_pid_ns(pid),
        hooks: bundle.spec.hooks().clone(),
        cgroup: v2_cgroup_of(pid),
        creating: false,
    }
}

/// Whether `pid` is in another pid namespace than ferry.
fn own_pid_ns(pid: i32) -> bool {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    ns(&pid.to_string()) != ns("self")
}

/// The cgroup v2 directory of `pid` (not the root), which `delete`
/// removes.
fn v2_cgroup_of(pid: i32) -> Option<CgroupState> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut lines = text.lines();
    let rel = lines.next()?.strip_prefix("0::/")?;
    if lines.next().is_some() || rel.is_empty() {
        return None;
    }
    let dir = Path::new("/sys/fs/cgroup").join(rel);
    Some(CgroupState {
        v2: true,
        paths: [(String::new(), dir.clone())].into(),
        created: vec![dir],
        systemd: None,
    })
}

/// Wait (as the subreaper the restored init was reparented to) for
/// `pid` to exit: its exit code, or 128 + the signal that killed it.
fn wait_for(pid: i32) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    let target = nix::unistd::Pid::from_raw(pid);
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == target => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p == target => return 128 + sig as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 255,
        }
    }
}
