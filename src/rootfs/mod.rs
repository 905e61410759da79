//! The container's filesystem view: mounts, devices, `pivot_root`, and the
//! masked and read-only paths, all made inside the container's own mount
//! namespace, so nothing here is visible on (or left behind on) the host.

mod anchors;
mod cgroupfs;
mod devices;
pub mod idmap;
pub mod mountfd;
mod mounts;
pub mod options;
pub mod overlay;
pub mod path;
mod pivot;
pub mod procfs;
mod protect;

use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use oci_spec::runtime::Spec;

use anchors::Anchors;
use path::Root;
use procfs::ProcFs;

/// Errors building the root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mount {what} on {dest}: {source}")]
    Mount {
        what: String,
        dest: PathBuf,
        source: nix::Error,
    },
    #[error("cannot create {path} in the rootfs: {source}")]
    Create { path: PathBuf, source: nix::Error },
    #[error("device {path}: {msg}")]
    Device { path: PathBuf, msg: String },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("unknown rootfsPropagation {0:?}")]
    Propagation(String),
    #[error("sysctl {key}: {msg}")]
    Sysctl { key: String, msg: String },
    #[error("image layers: {0}")]
    Layers(String),
    #[error("idmapped mount on {dest}: {msg}")]
    Idmap { dest: PathBuf, msg: String },
    #[error("idmapped mounts are not allowed here: {0}")]
    IdmapNotAllowed(String),
}

pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> RootfsError {
    let what = what.into();
    move |source| RootfsError::Sys { what, source }
}

/// What the rootfs set-up needs to know beyond the spec.
pub struct Plan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// The container runs in a user namespace: devices are bind-mounted
    /// (mknod is not allowed) and locked mount flags are kept on remounts.
    pub userns: bool,
    pub no_pivot: bool,
    /// ferry's own fds made here are numbered at least this (above the
    /// fds the container inherits).
    pub own_fd_floor: i32,
}

/// What [`prepare`] hands on to [`finish`]: the mounts it made.
pub struct Prepared {
    anchors: Anchors,
}

/// Build the rootfs: mounts and devices. Runs in the init, in its new mount
/// namespace, before `pivot_root` ([`enter`]). `idmapped` are the detached
/// idmapped mounts the parent made ([`idmap::prepare`]); they are attached
/// in their place among the mounts and closed on return. Installs the
/// process's procfs handle ([`procfs::install`]).
pub fn prepare(plan: &Plan, idmapped: Vec<idmap::Detached>) -> Result<Prepared, RootfsError> {
    let linux = plan.spec.linux().as_ref();
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => {
            options::propagation_flag(p).ok_or_else(|| RootfsError::Propagation(p.into()))?
        }
    };
    // Keep our mounts from propagating to the host.
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
        .map_err(sys("make / a slave mount"))?;
    // An image bundle's layer stack becomes the rootfs (before the bind:
    // pivot_root then sees the overlay).
    overlay::mount_layers(plan)?;
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(plan.rootfs),
        plan.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys(format!("bind the rootfs {}", plan.rootfs.display())))?;

    let root = Root::open(plan.rootfs).map_err(sys("open the rootfs"))?;
    let mut anchors = Anchors::default();
    let mut dev_bound = false;
    for (i, m) in plan.spec.mounts().iter().flatten().enumerate() {
        match idmapped.iter().find(|d| d.index == i) {
            Some(d) => idmap::attach(&root, &mut anchors, plan, m, &d.fd)?,
            // Never a plain bind in its place: the mapping must not be lost.
            None if idmap::wanted(m) => {
                return Err(RootfsError::Idmap {
                    dest: m.destination().clone(),
                    msg: "not prepared by the parent".into(),
                });
            }
            None => mounts::mount_entry(&root, &mut anchors, plan, m)?,
        }
        dev_bound |= m.destination() == Path::new("/dev") && mounts::is_bind(m);
    }
    if !dev_bound {
        devices::create_default(&root, plan)?;
    }
    devices::create_listed(&root, plan)?;
    install_procfs(&anchors, plan)?;
    Ok(Prepared { anchors })
}

/// The procfs ferry mounted at `/proc`, proven to be one; without one, a
/// private detached procfs (made now, while the host's `/proc` is still
/// visible, as the kernel wants for a procfs in a user namespace). When
/// neither can be had, nothing is installed and the steps that need procfs
/// say so.
fn install_procfs(anchors: &Anchors, plan: &Plan) -> Result<(), RootfsError> {
    let mounted = anchors
        .at(Path::new("/proc"))
        .and_then(|fd| fd.try_clone().ok())
        .and_then(|fd| ProcFs::verify(fd).ok());
    let Some(proc) = mounted.or_else(|| ProcFs::private().ok()) else {
        return Ok(());
    };
    procfs::install(proc, plan.own_fd_floor).map_err(sys("keep a procfs handle"))
}

/// Make the prepared rootfs `/`.
pub fn enter(plan: &Plan) -> Result<(), RootfsError> {
    if plan.no_pivot {
        pivot::move_root(plan.rootfs)?;
    } else {
        pivot::pivot_root(plan.rootfs)?;
    }
    Ok(())
}

/// The steps after `pivot_root`: sysctls, masked and read-only paths, and a
/// read-only `/` when asked.
pub fn finish(plan: &Plan, prepared: Prepared) -> Result<(), RootfsError> {
    let root = Root::open(Path::new("/")).map_err(sys("open /"))?;
    let mut anchors = prepared.anchors;
    if let Some(linux) = plan.spec.linux() {
        for (key, value) in linux.sysctl().iter().flatten() {
            let proc = procfs::trusted().map_err(|_| RootfsError::Sysctl {
                key: key.clone(),
                msg: "no procfs to write it through".into(),
            })?;
            protect::write_sysctl(proc, key, value)?;
        }
        for p in linux.readonly_paths().iter().flatten() {
            protect::make_readonly(&root, &mut anchors, Path::new(p))?;
        }
        for p in linux.masked_paths().iter().flatten() {
            protect::mask(&root, &mut anchors, Path::new(p))?;
        }
    }
    if plan
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        pivot::remount_root_readonly()?;
    }
    Ok(())
}
