//! Device nodes in the container's `/dev`: the defaults every container
//! gets, `linux.devices`, and the standard symlinks.

use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag, fstat, makedev, mknodat};
use nix::unistd::{Gid, Uid, fchownat, symlinkat};
use oci_spec::runtime::LinuxDeviceType;

use nix::mount::MsFlags;

use super::mountfd;
use super::mounts::{create, mount_err};
use super::{Plan, RootfsError};
use crate::fs::Root;

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
    let listed: Vec<PathBuf> = listed(plan)?.into_iter().map(|n| n.path).collect();
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

/// The nodes `linux.devices` lists, their paths normalised
/// ([`normalise`]).
fn listed(plan: &Plan) -> Result<Vec<Node>, RootfsError> {
    let devices = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref());
    devices
        .into_iter()
        .flatten()
        .map(|d| {
            Ok(Node {
                path: normalise(d.path())?,
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
        })
        .collect()
}

/// A device path made canonical without touching the filesystem: absolute
/// (the spec's "full path"), `.` and trailing slashes dropped, `..` applied
/// lexically (never above `/`). `/dev/../etc/x` becomes `/etc/x`: like runc
/// and crun, a device may live anywhere inside the root, and the node is
/// always made inside it.
fn normalise(path: &Path) -> Result<PathBuf, RootfsError> {
    let refuse = |msg: &str| RootfsError::Device {
        path: path.to_path_buf(),
        msg: msg.into(),
    };
    if !path.has_root() {
        return Err(refuse("the path must be absolute"));
    }
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if out.file_name().is_none() {
        return Err(refuse("the path names the root directory"));
    }
    Ok(out)
}

/// `linux.devices`.
pub fn create_listed(root: &Root, plan: &Plan) -> Result<(), RootfsError> {
    for node in listed(plan)? {
        make_node(root, &node, plan.userns)?;
    }
    Ok(())
}

/// mknod the node; in a user namespace (where mknod of a device is
/// refused) bind the host's node instead ([`bind_host_node`]).
fn make_node(root: &Root, node: &Node, userns: bool) -> Result<(), RootfsError> {
    let path = &node.path;
    if userns && node.kind != SFlag::S_IFIFO {
        return bind_host_node(root, node);
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

/// Bind the host's node at the node's path, `nosuid,noexec` as crun does.
/// Only a node of the listed type and number is used: a device entry never
/// brings a host file (`/dev/../etc/x`) or another device in.
fn bind_host_node(root: &Root, node: &Node) -> Result<(), RootfsError> {
    let path = &node.path;
    let refuse = |msg: String| RootfsError::Device {
        path: path.clone(),
        msg,
    };
    let host = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| refuse(format!("no host node to bind in a user namespace: {e}")))?;
    let st = fstat(&host).map_err(|e| refuse(format!("stat the host node: {e}")))?;
    let want = makedev(node.major, node.minor);
    if st.st_mode & SFlag::S_IFMT.bits() != node.kind.bits() || st.st_rdev != want {
        return Err(refuse(format!(
            "the host node is not the device {}:{} of the listed type",
            node.major, node.minor
        )));
    }
    let target = root
        .create_file(path, Mode::from_bits_truncate(0o644))
        .map_err(create(path))?;
    // The node already checked is the one bound: by its fd, never its name.
    let what = path.display().to_string();
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let mnt = mountfd::clone_fd(&host, false).map_err(|e| mount_err(&what, path, e))?;
    mountfd::set_attr(&mnt, &mountfd::remount_attr(flags, true), false)
        .map_err(|e| mount_err(&what, path, e))?;
    mountfd::attach(&mnt, &target).map_err(|e| mount_err(&what, path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, String> {
        normalise(Path::new(p))
            .map(|p| p.display().to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn device_paths_are_normalised_inside_the_root() {
        assert_eq!(norm("/dev/foo/").unwrap(), "/dev/foo");
        assert_eq!(norm("/dev/./null").unwrap(), "/dev/null");
        assert_eq!(norm("/dev/../etc/x").unwrap(), "/etc/x");
        assert_eq!(norm("/../../../dev/x").unwrap(), "/dev/x");
        assert_eq!(norm("//dev//sub/../y").unwrap(), "/dev/y");
        assert_eq!(norm("/foo-dev").unwrap(), "/foo-dev");
    }

    #[test]
    fn relative_and_root_device_paths_are_refused() {
        assert_eq!(
            norm("dev/foo").unwrap_err(),
            "device dev/foo: the path must be absolute"
        );
        assert_eq!(
            norm("/dev/..").unwrap_err(),
            "device /dev/..: the path names the root directory"
        );
        assert!(norm("/").is_err());
        assert!(norm("").is_err());
    }
}
