//! One `mounts[]` entry of the config.
//!
//! Every mount is made detached first (a new filesystem, or a copy of the
//! bind source), gets its flags while nobody can see it, and is then
//! attached on the target fd ([`super::mountfd`]); the mount fd is kept as
//! an anchor for paths below it ([`super::anchors`]). A target ferry
//! created for a mount that is then refused is removed again.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag, fstat};
use oci_spec::runtime::Mount;

use super::anchors::Anchors;
use super::mountfd;
use super::options::MountOptions;
use super::{Plan, RootfsError};
use crate::fs::{Made, Root};

pub fn is_bind(m: &Mount) -> bool {
    MountOptions::parse(m.options().as_deref().unwrap_or_default()).is_bind()
        || m.typ().as_deref() == Some("bind")
}

/// Mount one `mounts[]` entry (not a `cgroup` one: [`super::cgroupfs`]).
/// `opened` is the bind source the parent opened for the entry, if any.
pub fn mount_entry(
    root: &Root,
    anchors: &mut Anchors,
    plan: &Plan,
    m: &Mount,
    opened: Option<&OwnedFd>,
) -> Result<(), RootfsError> {
    let mut opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let fstype = m.typ().as_deref().unwrap_or("");
    if fstype == "bind" {
        opts.flags |= MsFlags::MS_BIND;
    }
    let dest = m.destination();
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(fstype));
    let mnt = if opts.is_bind() {
        let source = if source.is_absolute() {
            source
        } else {
            plan.bundle.join(source)
        };
        match opened {
            Some(fd) => bind_opened(fd, &source, &opts, plan.userns, dest)?,
            None => bind_detached(&source, &opts, plan.userns, dest)?,
        }
    } else {
        new_fs(fstype, &source, &opts, plan, dest)?
    };
    set_recursive(&mnt, &opts, dest)?;
    let check = matches!(fstype, "proc" | "sysfs");
    place(root, anchors, &mnt, dest, check)?;
    propagate(&mnt, &opts, dest)
}

/// Create the target of `mnt` at `dest` (a directory for a directory, else
/// a file), attach `mnt` there and record it as an anchor. With
/// `no_symlinks` the target must be reached without a symlink (`/proc`
/// and `/sys` must be where they are asked, not wherever a link in the
/// rootfs points). What was created for a refused mount is removed.
pub fn place(
    root: &Root,
    anchors: &mut Anchors,
    mnt: &OwnedFd,
    dest: &Path,
    no_symlinks: bool,
) -> Result<(), RootfsError> {
    let located = anchors.locate(root, dest).map_err(create(dest))?;
    let mut made = Made::default();
    let res = (|| {
        let target = create_target(located.root(), &located.rest, mnt, &mut made, dest)?;
        let target = if no_symlinks {
            not_redirected(located.root(), &located.rest, &target, dest)?
        } else {
            target
        };
        mountfd::attach(mnt, &target).map_err(|e| mount_err("attach", dest, e))
    })();
    if res.is_err() {
        made.undo();
    }
    res?;
    anchors.add(dest, mnt).map_err(create(dest))
}

fn create_target(
    root: &Root,
    rest: &Path,
    mnt: &OwnedFd,
    made: &mut Made,
    dest: &Path,
) -> Result<OwnedFd, RootfsError> {
    let st = fstat(mnt.as_fd()).map_err(|e| mount_err("stat", dest, e))?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    if is_dir {
        root.mkdir_all_tracked(rest, Mode::from_bits_truncate(0o755), made)
    } else {
        root.create_file_tracked(rest, Mode::from_bits_truncate(0o644), made)
    }
    .map_err(create(dest))
}

/// The target again, reached without following any symlink; refused if
/// that fails or names something else than `target`.
fn not_redirected(
    root: &Root,
    rest: &Path,
    target: &OwnedFd,
    dest: &Path,
) -> Result<OwnedFd, RootfsError> {
    let refuse = || RootfsError::Mount {
        what: format!("refusing: {} is reached through a symlink", dest.display()),
        dest: dest.to_path_buf(),
        source: nix::Error::ELOOP,
    };
    let direct = root.resolve_no_symlinks(rest).map_err(|_| refuse())?;
    let (a, b) = (fstat(direct.as_fd()), fstat(target.as_fd()));
    match (a, b) {
        (Ok(a), Ok(b)) if a.st_dev == b.st_dev && a.st_ino == b.st_ino => Ok(direct),
        _ => Err(refuse()),
    }
}

/// A new filesystem for the entry, detached. sysfs needs a network
/// namespace of its own in a user namespace: bind the host's read-only
/// instead, as runc does. devpts refuses a gid=/uid= the user namespace
/// does not map (runc's default gid=5 under a single-id map): retry
/// without, as crun does.
fn new_fs(
    fstype: &str,
    source: &Path,
    opts: &MountOptions,
    plan: &Plan,
    dest: &Path,
) -> Result<OwnedFd, RootfsError> {
    let src = source.to_string_lossy();
    match mountfd::new_fs(fstype, &src, opts.flags, &opts.data) {
        Ok(mnt) => Ok(mnt),
        Err(nix::Error::EPERM) if fstype == "sysfs" && plan.userns => {
            let ro = MountOptions::parse(&["rbind", "nosuid", "noexec", "nodev", "ro"]);
            bind_detached(Path::new("/sys"), &ro, true, dest)
        }
        Err(nix::Error::EINVAL) if fstype == "devpts" && plan.userns && has_owner_data(opts) => {
            let data: Vec<String> = opts
                .data
                .iter()
                .filter(|o| !o.starts_with("gid=") && !o.starts_with("uid="))
                .cloned()
                .collect();
            mountfd::new_fs(fstype, &src, opts.flags, &data).map_err(|e| mount_err(fstype, dest, e))
        }
        Err(e) => Err(mount_err(fstype, dest, e)),
    }
}

fn has_owner_data(opts: &MountOptions) -> bool {
    opts.data
        .iter()
        .any(|o| o.starts_with("gid=") || o.starts_with("uid="))
}

/// A detached copy of `source` (a host path) with the asked flags already
/// set, as `mount(MS_BIND)` and then `mount(MS_BIND | MS_REMOUNT)` would
/// leave it; in a user namespace (`userns`) the flags the mount came with
/// are kept, as the kernel locks them.
pub fn bind_detached(
    source: &Path,
    opts: &MountOptions,
    userns: bool,
    dest: &Path,
) -> Result<OwnedFd, RootfsError> {
    let recursive = opts.flags.contains(MsFlags::MS_REC);
    let mnt = mountfd::clone_path(source, recursive)
        .map_err(|e| mount_err(&source.display().to_string(), dest, e))?;
    with_bind_flags(mnt, source, opts, userns, dest)
}

/// [`bind_detached`] of a source the parent opened (one the container's
/// root may not be allowed to reach in its user namespace).
fn bind_opened(
    fd: &OwnedFd,
    source: &Path,
    opts: &MountOptions,
    userns: bool,
    dest: &Path,
) -> Result<OwnedFd, RootfsError> {
    let recursive = opts.flags.contains(MsFlags::MS_REC);
    let mnt = mountfd::clone_fd(fd, recursive)
        .map_err(|e| mount_err(&source.display().to_string(), dest, e))?;
    with_bind_flags(mnt, source, opts, userns, dest)
}

/// The detached bind `mnt` of `source` with the asked per-mount flags set,
/// as `mount(MS_BIND | MS_REMOUNT)` would (kept as locked in a user
/// namespace).
fn with_bind_flags(
    mnt: OwnedFd,
    source: &Path,
    opts: &MountOptions,
    userns: bool,
    dest: &Path,
) -> Result<OwnedFd, RootfsError> {
    let extra = opts.remount_flags();
    if !extra.is_empty() {
        mountfd::set_attr(&mnt, &mountfd::remount_attr(extra, userns), false)
            .map_err(|e| mount_err(&format!("remount {}", source.display()), dest, e))?;
    }
    Ok(mnt)
}

/// The recursive attributes (`rro`, ...) on the whole detached tree.
pub fn set_recursive(mnt: &OwnedFd, opts: &MountOptions, dest: &Path) -> Result<(), RootfsError> {
    let a = mountfd::attr(opts.rec_set, opts.rec_clr);
    mountfd::set_attr(mnt, &a, true).map_err(|e| mount_err("recursive mount attributes", dest, e))
}

/// The entry's propagation changes, on the attached mount.
pub(super) fn propagate(
    mnt: &OwnedFd,
    opts: &MountOptions,
    dest: &Path,
) -> Result<(), RootfsError> {
    for p in &opts.propagation {
        mountfd::set_propagation(mnt, *p).map_err(|e| mount_err("propagation", dest, e))?;
    }
    Ok(())
}

pub fn create(dest: &Path) -> impl FnOnce(nix::Error) -> RootfsError + '_ {
    move |source| RootfsError::Create {
        path: dest.to_path_buf(),
        source,
    }
}

pub fn mount_err(what: &str, dest: &Path, source: nix::Error) -> RootfsError {
    RootfsError::Mount {
        what: what.to_string(),
        dest: dest.to_path_buf(),
        source,
    }
}
