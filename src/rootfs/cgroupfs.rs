//! The `cgroup` mount: `/sys/fs/cgroup` inside the container, for any host
//! layout (v1, v2 or hybrid).
//!
//! On v1 (and hybrid) a container without a cgroup namespace gets its own
//! cgroup of each hierarchy bind-mounted there, as runc does: a fresh mount
//! would show it the hierarchy's root, the host's and every other
//! container's limits instead of its own. With a cgroup namespace a fresh
//! mount shows the namespace's root, which is the container's cgroup.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::anchors::Anchors;
use super::mountfd;
use super::mounts::{bind_detached, mount_err, place};
use super::options::MountOptions;
use super::{Plan, RootfsError};
use crate::fs::Root;

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

/// Whether `m` is a `cgroup` or `cgroup2` mount (made here, not by
/// `mounts`).
pub fn is_cgroup(m: &Mount) -> bool {
    matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))
}

/// Mount the `cgroup` entry `m`.
pub fn mount_entry(
    root: &Root,
    anchors: &mut Anchors,
    plan: &Plan,
    m: &Mount,
) -> Result<(), RootfsError> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    mount_cgroups(root, anchors, plan, m.destination(), &opts)
}

/// Mount the cgroup filesystems at `dest` with the entry's flags. Where the
/// kernel refuses a fresh mount (cgroup v1 in a user namespace), bind the
/// host's hierarchy instead.
fn mount_cgroups(
    root: &Root,
    anchors: &mut Anchors,
    plan: &Plan,
    dest: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    let hierarchies = host_hierarchies();
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    // Pure v2: one cgroup2 mount.
    if let [h] = hierarchies.as_slice()
        && h.fstype == "cgroup2"
        && h.mount_point == "/sys/fs/cgroup"
    {
        let mnt = mount_one("cgroup2", "", flags, h, plan, dest)?;
        return place(root, anchors, &mnt, dest, false);
    }
    // v1 or hybrid: a tmpfs holding one directory per hierarchy.
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let base = mountfd::new_fs("tmpfs", "tmpfs", tmpfs_flags, &["mode=755".to_string()])
        .map_err(|e| mount_err("tmpfs", dest, e))?;
    place(root, anchors, &base, dest, false)?;
    let cgroupns = has_cgroup_namespace(plan.spec);
    for h in &hierarchies {
        let Some(name) = h.mount_point.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        let sub = dest.join(name);
        let mnt = match h.own.as_deref().filter(|_| !cgroupns) {
            Some(own) => bind_own(own, flags, plan, &sub)?,
            None => mount_one(&h.fstype, &h.controllers, flags, h, plan, &sub)?,
        };
        place(root, anchors, &mnt, &sub, false)?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        mountfd::make_readonly(&base, false)
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

/// A detached bind of the host directory `own` (the container's cgroup).
fn bind_own(own: &Path, flags: MsFlags, plan: &Plan, dest: &Path) -> Result<OwnedFd, RootfsError> {
    let mut o = MountOptions::parse(&["bind"]);
    o.flags |= flags;
    bind_detached(own, &o, plan.userns, dest)
}

/// One hierarchy, detached: a fresh mount, or a bind of the host's (of our
/// own cgroup where known: a user namespace without its own cgroup
/// namespace cannot mount a cgroup filesystem).
fn mount_one(
    fstype: &str,
    data: &str,
    flags: MsFlags,
    h: &Hierarchy,
    plan: &Plan,
    dest: &Path,
) -> Result<OwnedFd, RootfsError> {
    let data: Vec<String> = data
        .split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    match mountfd::new_fs(fstype, fstype, flags, &data) {
        Ok(mnt) => Ok(mnt),
        Err(nix::Error::EPERM | nix::Error::EBUSY) => {
            let mut o = MountOptions::parse(&["rbind"]);
            o.flags |= flags;
            let source = h.own.as_deref().unwrap_or(Path::new(&h.mount_point));
            bind_detached(source, &o, plan.userns, dest)
        }
        Err(e) => Err(mount_err(fstype, dest, e)),
    }
}
