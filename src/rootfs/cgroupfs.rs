//! The `cgroup` mount: `/sys/fs/cgroup` inside the container, for any host
//! layout (v1, v2 or hybrid).
//!
//! On v1 (and hybrid) a container without a cgroup namespace gets its own
//! cgroup of each hierarchy bind-mounted there, as runc does: a fresh mount
//! would show it the hierarchy's root, the host's and every other
//! container's limits instead of its own. With a cgroup namespace a fresh
//! mount shows the namespace's root, which is the container's cgroup.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;

use super::mounts::{bind, create, mount_err, remount, resolve};
use super::options::MountOptions;
use super::path::{Root, fd_path};
use super::{Plan, RootfsError};

/// A cgroup hierarchy mounted on the host.
struct Hierarchy {
    /// Where the host mounts it, e.g. `/sys/fs/cgroup/cpu`.
    mount_point: String,
    /// `cgroup` or `cgroup2`.
    fstype: String,
    /// Its controllers as mount data, e.g. `cpu,cpuacct` or `name=systemd`.
    controllers: String,
    /// The host directory of the cgroup this process (the init, already in
    /// the container's cgroup) sits in, if known.
    own: Option<PathBuf>,
}

fn host_hierarchies() -> Vec<Hierarchy> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own_dirs = crate::cgroups::own_dirs(&info, &proc_cgroup);
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = pre.split(' ').nth(4).unwrap_or_default();
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or_default();
        let super_opts = post.nth(1).unwrap_or_default();
        if !mount_point.starts_with("/sys/fs/cgroup") || !fstype.starts_with("cgroup") {
            continue;
        }
        let controllers = super_opts
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && (!o.contains('=') || o.starts_with("name=")))
            .collect::<Vec<_>>()
            .join(",");
        let own = own_dirs
            .iter()
            .find(|(mp, _)| mp.as_os_str() == mount_point)
            .map(|(_, dir)| dir.clone());
        out.push(Hierarchy {
            mount_point: mount_point.into(),
            fstype: fstype.into(),
            controllers,
            own,
        });
    }
    out
}

/// Mount the cgroup filesystems at `dest` with the entry's flags. Where the
/// kernel refuses a fresh mount (cgroup v1 in a user namespace), bind the
/// host's hierarchy instead.
pub fn mount_cgroups(
    root: &Root,
    plan: &Plan,
    dest: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let hierarchies = host_hierarchies();
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    let target = root
        .mkdir_all(dest, Mode::from_bits_truncate(0o755))
        .map_err(create(dest))?;
    // Pure v2: one cgroup2 mount.
    if let [h] = hierarchies.as_slice()
        && h.fstype == "cgroup2"
        && h.mount_point == "/sys/fs/cgroup"
    {
        return mount_one(root, &target, "cgroup2", "", flags, h, plan, dest);
    }
    // v1 or hybrid: a tmpfs holding one directory per hierarchy.
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .map_err(|e| mount_err("tmpfs", dest, e))?;
    let base = resolve(root, dest)?;
    let cgroupns = has_cgroup_namespace(plan.spec);
    for h in &hierarchies {
        let Some(name) = h.mount_point.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        let sub = dest.join(name);
        let fd = root
            .mkdir_all(&sub, Mode::from_bits_truncate(0o755))
            .map_err(create(&sub))?;
        match h.own.as_deref().filter(|_| !cgroupns) {
            Some(own) => bind_own(root, &fd, own, flags, plan, &sub)?,
            None => mount_one(root, &fd, &h.fstype, &h.controllers, flags, h, plan, &sub)?,
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount(&base, tmpfs_flags | MsFlags::MS_RDONLY, plan.userns)
            .map_err(|e| mount_err("remount cgroup tmpfs", dest, e))?;
    }
    Ok(())
}

/// Whether the container has a cgroup namespace (new or joined).
fn has_cgroup_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|list| list.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup))
}

/// Bind the host directory `own` (a cgroup) on `target`.
fn bind_own(
    root: &Root,
    target: &std::os::fd::OwnedFd,
    own: &Path,
    flags: MsFlags,
    plan: &Plan,
    dest: &Path,
) -> Result<(), RootfsError> {
    let mut o = MountOptions::parse(&["bind"]);
    o.flags |= flags;
    bind(root, own, target, &o, plan.userns, dest)
}

#[allow(clippy::too_many_arguments)]
fn mount_one(
    root: &Root,
    target: &std::os::fd::OwnedFd,
    fstype: &str,
    data: &str,
    flags: MsFlags,
    h: &Hierarchy,
    plan: &Plan,
    dest: &Path,
) -> Result<(), RootfsError> {
    let data = (!data.is_empty()).then_some(data);
    match mount(Some(fstype), &fd_path(target), Some(fstype), flags, data) {
        Ok(()) => Ok(()),
        // A user namespace without its own cgroup namespace cannot mount
        // a cgroup filesystem: bind our cgroup (or the hierarchy) instead.
        Err(nix::Error::EPERM | nix::Error::EBUSY) => {
            let mut o = MountOptions::parse(&["rbind"]);
            o.flags |= flags;
            let source = h.own.as_deref().unwrap_or(Path::new(&h.mount_point));
            bind(root, source, target, &o, plan.userns, dest)
        }
        Err(e) => Err(mount_err(fstype, dest, e)),
    }
}
