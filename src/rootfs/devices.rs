//! Device nodes in the container's `/dev`: the defaults every container
//! gets, `linux.devices`, and the standard symlinks.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag, makedev, mknodat};
use nix::unistd::{Gid, Uid, fchownat, symlinkat};
use oci_spec::runtime::LinuxDeviceType;

use super::mounts::{bind, create};
use super::options::MountOptions;
use super::path::Root;
use super::{Plan, RootfsError};

/// A device node to make.
struct Node {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn default_nodes() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Node {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// The default devices (unless `linux.devices` lists the same path) and the
/// `/dev` symlinks.
pub fn create_default(root: &Root, plan: &Plan) -> Result<(), RootfsError> {
    let listed: Vec<PathBuf> = listed(plan).map(|n| n.path).collect();
    for node in default_nodes()
        .into_iter()
        .filter(|n| !listed.contains(&n.path))
    {
        make_node(root, &node, plan.userns)?;
    }
    let dev = root
        .resolve(Path::new("/dev"))
        .map_err(create(Path::new("/dev")))?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(source) => {
                return Err(RootfsError::Create {
                    path: Path::new("/dev").join(name),
                    source,
                });
            }
        }
    }
    if std::path::Path::new("/proc/kcore").exists() {
        let _ = symlinkat("/proc/kcore", dev.as_fd(), "core");
    }
    Ok(())
}

fn listed<'a>(plan: &'a Plan) -> impl Iterator<Item = Node> + 'a {
    let devices = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref());
    devices.into_iter().flatten().map(|d| Node {
        path: d.path().clone(),
        kind: match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        },
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// `linux.devices`.
pub fn create_listed(root: &Root, plan: &Plan) -> Result<(), RootfsError> {
    for node in listed(plan) {
        if !node.path.starts_with("/dev") {
            return Err(RootfsError::Device {
                path: node.path,
                msg: "devices must live under /dev".into(),
            });
        }
        make_node(root, &node, plan.userns)?;
    }
    Ok(())
}

/// mknod the node; in a user namespace (where mknod is refused) bind-mount
/// the host's node of the same path instead.
fn make_node(root: &Root, node: &Node, userns: bool) -> Result<(), RootfsError> {
    let path = &node.path;
    if userns {
        let target = root
            .create_file(path, Mode::from_bits_truncate(0o644))
            .map_err(create(path))?;
        let opts = MountOptions::parse(&["bind"]);
        return bind(path, &target, &opts, true, path).map(drop);
    }
    let name = path.file_name().ok_or_else(|| RootfsError::Device {
        path: path.clone(),
        msg: "no file name".into(),
    })?;
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let dir = root
        .mkdir_all(parent, Mode::from_bits_truncate(0o755))
        .map_err(create(parent))?;
    let dev = makedev(node.major, node.minor);
    match mknodat(
        dir.as_fd(),
        name,
        node.kind,
        Mode::from_bits_truncate(node.mode),
        dev,
    ) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // Replace whatever is there (the rootfs may ship a stale node).
            nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir)
                .map_err(create(path))?;
            mknodat(
                dir.as_fd(),
                name,
                node.kind,
                Mode::from_bits_truncate(node.mode),
                dev,
            )
            .map_err(create(path))?;
        }
        Err(source) => {
            return Err(RootfsError::Device {
                path: path.clone(),
                msg: format!("mknod: {source}"),
            });
        }
    }
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|source| RootfsError::Device {
        path: path.clone(),
        msg: format!("chown: {source}"),
    })
}
