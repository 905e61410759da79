//! One `mounts[]` entry of the config.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{FsFlags, fstatvfs};
use oci_spec::runtime::Mount;

use super::options::MountOptions;
use super::path::{Root, fd_path};
use super::{Plan, RootfsError, cgroupfs};

pub fn is_bind(m: &Mount) -> bool {
    MountOptions::parse(m.options().as_deref().unwrap_or_default()).is_bind()
        || m.typ().as_deref() == Some("bind")
}

pub fn mount_entry(root: &Root, plan: &Plan, m: &Mount) -> Result<(), RootfsError> {
    let mut opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let fstype = m.typ().as_deref().unwrap_or("");
    if fstype == "bind" {
        opts.flags |= MsFlags::MS_BIND;
    }
    let dest = m.destination();
    if fstype == "cgroup" || fstype == "cgroup2" {
        return cgroupfs::mount_cgroups(root, plan, dest, &opts);
    }
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(fstype));
    if opts.is_bind() {
        let source = if source.is_absolute() {
            source
        } else {
            plan.bundle.join(source)
        };
        let target = bind_target(root, &source, dest)?;
        bind(root, &source, &target, &opts, plan.userns, dest)?;
        let target = resolve(root, dest)?;
        return propagate(&target, &opts, dest);
    }
    let target = root
        .mkdir_all(dest, Mode::from_bits_truncate(0o755))
        .map_err(create(dest))?;
    if matches!(fstype, "proc" | "sysfs") {
        check_not_redirected(plan, &target, dest)?;
    }
    let data = opts.data_string();
    let res = mount(
        Some(&source),
        &fd_path(&target),
        Some(fstype),
        opts.flags,
        data.as_deref(),
    );
    match res {
        Ok(()) => {}
        // sysfs needs a network namespace of our own in a user namespace:
        // bind the host's read-only instead, as runc does.
        Err(nix::Error::EPERM) if fstype == "sysfs" && plan.userns => {
            let ro = MountOptions::parse(&["rbind", "nosuid", "noexec", "nodev", "ro"]);
            bind(root, Path::new("/sys"), &target, &ro, true, dest)?;
        }
        // devpts refuses a gid=/uid= that the user namespace does not map
        // (runc's default gid=5 under a podman-style single-id map): mount
        // it without, as crun does.
        Err(nix::Error::EINVAL) if fstype == "devpts" && plan.userns && has_owner_data(&opts) => {
            let data: Vec<&str> = opts
                .data
                .iter()
                .map(String::as_str)
                .filter(|o| !o.starts_with("gid=") && !o.starts_with("uid="))
                .collect();
            mount(
                Some(&source),
                &fd_path(&target),
                Some(fstype),
                opts.flags,
                Some(data.join(",").as_str()),
            )
            .map_err(|e| mount_err(fstype, dest, e))?;
        }
        Err(source) => return Err(mount_err(fstype, dest, source)),
    }
    let target = resolve(root, dest)?;
    propagate(&target, &opts, dest)
}

fn has_owner_data(opts: &MountOptions) -> bool {
    opts.data
        .iter()
        .any(|o| o.starts_with("gid=") || o.starts_with("uid="))
}

/// The target of a bind mount: a directory for a directory, else a file.
fn bind_target(root: &Root, source: &Path, dest: &Path) -> Result<OwnedFd, RootfsError> {
    let is_dir = std::fs::metadata(source).map_err(|e| RootfsError::Mount {
        what: source.display().to_string(),
        dest: dest.to_path_buf(),
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    if is_dir.is_dir() {
        root.mkdir_all(dest, Mode::from_bits_truncate(0o755))
            .map_err(create(dest))
    } else {
        root.create_file(dest, Mode::from_bits_truncate(0o644))
            .map_err(create(dest))
    }
}

/// Bind `source` on `target`, then remount it with the asked flags.
pub fn bind(
    root: &Root,
    source: &Path,
    target: &OwnedFd,
    opts: &MountOptions,
    userns: bool,
    dest: &Path,
) -> Result<(), RootfsError> {
    let what = source.display().to_string();
    let target_path = fd_path(target);
    let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mount(
        Some(source),
        &target_path,
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(|e| mount_err(&what, dest, e))?;
    let extra = opts.remount_flags();
    if extra.is_empty() {
        return Ok(());
    }
    // The fd names the mount point beneath the new mount: resolve the path
    // again to reach the new mount on top of it.
    let top = resolve(root, dest)?;
    remount(&top, extra, userns).map_err(|e| mount_err(&format!("remount {what}"), dest, e))
}

/// Remount the bind mount at `fd` with `flags`, keeping the flags the
/// kernel locks in a user namespace (nosuid, nodev, noexec, atime).
pub fn remount(fd: &OwnedFd, flags: MsFlags, userns: bool) -> nix::Result<()> {
    let mut flags = flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    if userns {
        flags |= locked_flags(fd)?;
    }
    mount(
        None::<&str>,
        &fd_path(fd),
        None::<&str>,
        flags,
        None::<&str>,
    )
}

fn locked_flags(fd: &OwnedFd) -> nix::Result<MsFlags> {
    let st = fstatvfs(fd)?.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.contains(fs) {
            out |= ms;
        }
    }
    Ok(out)
}

pub(super) fn propagate(
    target: &OwnedFd,
    opts: &MountOptions,
    dest: &Path,
) -> Result<(), RootfsError> {
    for p in &opts.propagation {
        mount(
            None::<&str>,
            &fd_path(target),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .map_err(|e| mount_err("propagation", dest, e))?;
    }
    Ok(())
}

pub fn resolve(root: &Root, dest: &Path) -> Result<OwnedFd, RootfsError> {
    root.resolve(dest).map_err(create(dest))
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

/// `/proc` and `/sys` must be mounted where they are asked, not wherever a
/// symlink in the rootfs points (which would leave the real path unmasked
/// and, e.g., put a fresh procfs over `/etc`).
fn check_not_redirected(plan: &Plan, target: &OwnedFd, dest: &Path) -> Result<(), RootfsError> {
    let resolved = std::fs::read_link(fd_path(target)).unwrap_or_default();
    let wanted: PathBuf = plan
        .rootfs
        .components()
        .chain(
            dest.components()
                .filter(|c| matches!(c, std::path::Component::Normal(_))),
        )
        .collect();
    if resolved != wanted {
        return Err(RootfsError::Mount {
            what: format!(
                "refusing: {} resolves to {} through a symlink",
                dest.display(),
                resolved.display()
            ),
            dest: dest.to_path_buf(),
            source: nix::Error::ELOOP,
        });
    }
    Ok(())
}
