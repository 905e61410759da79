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
mod pivot;
pub mod procfs;
mod protect;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use oci_spec::runtime::{Mount, Spec};

use crate::fs::Root;
use anchors::Anchors;
use options::MountOptions;
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

/// Bind sources the parent opened, by `mounts[]` index.
pub type Opened = Vec<(usize, OwnedFd)>;

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
    /// `linux.rootfsPropagation`, applied to `/` after `pivot_root`.
    requested: Option<MsFlags>,
    /// `/dev` was asked read-only: made so at the end.
    dev_readonly: bool,
}

/// Build the rootfs: mounts and devices. Runs in the init, in its new mount
/// namespace, before `pivot_root` ([`enter`]). `idmapped` are the detached
/// idmapped mounts the parent made ([`idmap::prepare`]); they are attached
/// in their place among the mounts and closed on return. Installs the
/// process's procfs handle ([`procfs::install`]).
/// `opened` are bind sources the parent opened, by `mounts[]` index
/// ([`open_bind_sources`]); closed on return.
pub fn prepare(
    plan: &Plan,
    idmapped: Vec<idmap::Detached>,
    opened: Opened,
) -> Result<Prepared, RootfsError> {
    let requested = requested_propagation(plan)?;
    let propagation = requested.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>)
        .map_err(sys("set the propagation of /"))?;
    if !all_unshared(propagation) {
        // Keep our mounts from propagating to the host, and let pivot_root
        // (which refuses a shared parent) and the bind below work.
        make_parent_private(plan.rootfs)?;
    }
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
    let mut dev_readonly = false;
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
            None if is_readonly_dev(m) => {
                // Read-only only once its devices and /dev/pts exist
                // ([`finish`]), as runc does.
                mounts::mount_entry(&root, &mut anchors, plan, &without_ro(m), None)?;
                dev_readonly = true;
            }
            None if cgroupfs::is_cgroup(m) => cgroupfs::mount_entry(&root, &mut anchors, plan, m)?,
            None => {
                let fd = opened.iter().find(|(j, _)| *j == i).map(|(_, fd)| fd);
                mounts::mount_entry(&root, &mut anchors, plan, m, fd)?
            }
        }
        dev_bound |= m.destination() == Path::new("/dev") && mounts::is_bind(m);
    }
    if !dev_bound {
        devices::create_default(&root, plan)?;
    }
    devices::create_listed(&root, plan)?;
    install_procfs(&anchors, plan)?;
    Ok(Prepared {
        anchors,
        requested,
        dev_readonly,
    })
}

/// A new filesystem (not a bind) asked read-only at `/dev`.
fn is_readonly_dev(m: &Mount) -> bool {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    anchors::normalize(m.destination()) == Path::new("/dev")
        && opts.flags.contains(MsFlags::MS_RDONLY)
        && !mounts::is_bind(m)
}

/// The entry with its `ro` dropped.
fn without_ro(m: &Mount) -> Mount {
    let mut m = m.clone();
    let options: Vec<String> = m
        .options()
        .iter()
        .flatten()
        .filter(|o| o.as_str() != "ro")
        .cloned()
        .collect();
    m.set_options(Some(options));
    m
}

/// The sources of the bind mounts of `spec`, opened by ferry's parent in
/// the init's mount namespace (through `/proc/PID/root`, resolved inside
/// it), with the parent's credentials: a container root in a user
/// namespace may not be allowed to reach them itself, as runc opens them
/// before it enters the user namespace. The mounts the fds are on are the
/// init's own copies, so the flags the kernel locked on them stay locked.
/// Sources that cannot be opened are left to the init (and its error).
pub fn open_bind_sources(spec: &Spec, bundle: &Path, pid: i32) -> Opened {
    let Ok(root) = Root::open(Path::new(&format!("/proc/{pid}/root"))) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let fstype = m.typ().as_deref().unwrap_or("");
        if !mounts::is_bind(m) || idmap::wanted(m) || fstype.starts_with("cgroup") {
            continue;
        }
        let Some(source) = m.source().as_deref() else {
            continue;
        };
        let source = bundle.join(source);
        if !source.is_absolute() {
            continue;
        }
        if let Ok(fd) = root.resolve(&source) {
            out.push((i, fd));
        }
    }
    out
}

/// `linux.rootfsPropagation`, when one is given.
fn requested_propagation(plan: &Plan) -> Result<Option<MsFlags>, RootfsError> {
    let linux = plan.spec.linux().as_ref();
    match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => Ok(None),
        Some(p) => options::propagation_flag(p)
            .map(Some)
            .ok_or_else(|| RootfsError::Propagation(p.into())),
    }
}

/// Whether `/` changed with `propagation` leaves no mount shared and none
/// unbindable (`rslave`, `rprivate`).
fn all_unshared(propagation: MsFlags) -> bool {
    propagation.contains(MsFlags::MS_REC)
        && propagation.intersects(MsFlags::MS_SLAVE | MsFlags::MS_PRIVATE)
}

/// Make the mount the rootfs lives on (the rootfs itself when it is a
/// mount point) private in our mount namespace, as runc does: nothing
/// mounted on it then reaches the host, `pivot_root` accepts it, and an
/// unbindable one can be bound. Paths of the bundle, resolved before any
/// of the container's mounts exist.
fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    for dir in rootfs.ancestors() {
        let is_root = dir.parent().is_none();
        if is_root || crate::syscall::is_mount_root(dir).map_err(sys("statx"))? {
            return mount(
                None::<&str>,
                dir,
                None::<&str>,
                MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(sys(format!("make the mount of {} private", dir.display())));
        }
    }
    Ok(())
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
    if let Some(p) = prepared.requested {
        // On the container's own root only now: before pivot_root it
        // would have been the host's mounts' copies.
        mountfd::set_propagation(root.fd(), p).map_err(sys("set rootfsPropagation on /"))?;
    }
    let prepared_dev_readonly = prepared.dev_readonly;
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
    if prepared_dev_readonly && let Some(dev) = anchors.at(Path::new("/dev")) {
        mountfd::make_readonly(dev, false).map_err(sys("remount /dev read-only"))?;
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
