//! Which namespaces a container gets: new ones (created by `clone3`) and
//! joined ones (opened before the clone, entered with `setns`).

use std::fs::File;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// Errors in `linux.namespaces`.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("namespace {0} is listed twice")]
    Duplicate(&'static str),
    #[error("cannot open {kind} namespace {path}: {source}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot join {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("the container needs a mount namespace")]
    NoMountNamespace,
    #[error("cannot bring up the loopback interface: {0}")]
    Loopback(nix::Error),
}

/// A namespace to enter by path.
pub struct Join {
    pub flag: CloneFlags,
    pub kind: &'static str,
    pub path: PathBuf,
    pub file: File,
}

/// The namespace half of a container's plan.
pub struct Namespaces {
    /// New namespaces made by the clone itself (cgroup excluded).
    pub clone_flags: CloneFlags,
    /// A new cgroup namespace, unshared by the init once it sits in its cgroup.
    pub new_cgroup: bool,
    /// Namespaces the init enters with setns (user first).
    pub joins: Vec<Join>,
    /// Pid and time namespaces are entered by the parent before the clone
    /// (setns on them only affects children).
    pub parent_joins: Vec<Join>,
}

fn kind_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

fn flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(t as i32)
}

impl Namespaces {
    /// Plan the namespaces of `list`, opening the ones to join.
    pub fn plan(list: &[LinuxNamespace]) -> Result<Namespaces, NamespaceError> {
        let mut ns = Namespaces {
            clone_flags: CloneFlags::empty(),
            new_cgroup: false,
            joins: Vec::new(),
            parent_joins: Vec::new(),
        };
        let mut seen = CloneFlags::empty();
        // Join the user namespace first: the others are owned by it.
        let mut sorted: Vec<&LinuxNamespace> = list.iter().collect();
        sorted.sort_by_key(|n| n.typ() != LinuxNamespaceType::User);
        for n in sorted {
            let (t, kind) = (n.typ(), kind_name(n.typ()));
            if seen.contains(flag(t)) {
                return Err(NamespaceError::Duplicate(kind));
            }
            seen |= flag(t);
            match n.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    let file = File::open(path).map_err(|source| NamespaceError::Open {
                        kind,
                        path: path.clone(),
                        source,
                    })?;
                    let join = Join {
                        flag: flag(t),
                        kind,
                        path: path.clone(),
                        file,
                    };
                    if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                        ns.parent_joins.push(join);
                    } else {
                        ns.joins.push(join);
                    }
                }
                _ if t == LinuxNamespaceType::Cgroup => ns.new_cgroup = true,
                _ => ns.clone_flags |= flag(t),
            }
        }
        if !seen.contains(CloneFlags::CLONE_NEWNS) {
            return Err(NamespaceError::NoMountNamespace);
        }
        Ok(ns)
    }

    /// Whether the container gets a user namespace of its own.
    pub fn new_user(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// Whether the container runs in a user namespace (new or joined).
    pub fn any_user(&self) -> bool {
        self.new_user()
            || self
                .joins
                .iter()
                .any(|j| j.flag == CloneFlags::CLONE_NEWUSER)
    }

    pub fn new_pid(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWPID)
    }

    pub fn has(&self, flag: CloneFlags) -> bool {
        self.clone_flags.contains(flag)
            || self
                .joins
                .iter()
                .chain(&self.parent_joins)
                .any(|j| j.flag == flag)
    }

    /// In a new network namespace, bring `lo` up as runc and crun do (a
    /// joined one is left as it is). Called in the init while it still has
    /// its capabilities over the namespace, before it joins any other.
    pub fn set_up_network(&self) -> Result<(), NamespaceError> {
        if self.clone_flags.contains(CloneFlags::CLONE_NEWNET) {
            crate::syscall::loopback_up().map_err(NamespaceError::Loopback)?;
        }
        Ok(())
    }

    /// Enter `joins` (called in the parent for pid/time, in the init for the rest).
    pub fn enter(joins: &[Join]) -> Result<(), NamespaceError> {
        for j in joins {
            nix::sched::setns(&j.file, j.flag).map_err(|source| NamespaceError::Join {
                kind: j.kind,
                path: j.path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// The caller's own pid and time namespaces, opened before it enters
/// others for its children (`Namespaces::enter` of the parent's joins, or
/// a time namespace unshared for the offsets), to return to after the
/// clone: while a process's namespace for children differs from its own,
/// the kernel refuses it new threads (`CLONE_THREAD`), and the systemd
/// cgroup driver's D-Bus connection starts some.
pub struct OwnForChildren(Vec<(File, CloneFlags, &'static str)>);

impl OwnForChildren {
    /// Open the caller's namespaces of the kinds in `flags` (pid, time).
    pub fn open(flags: CloneFlags) -> Result<OwnForChildren, NamespaceError> {
        let time = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
        let mut own = Vec::new();
        for (flag, kind) in [(CloneFlags::CLONE_NEWPID, "pid"), (time, "time")] {
            if !flags.contains(flag) {
                continue;
            }
            let path = PathBuf::from(format!("/proc/self/ns/{kind}"));
            let file =
                File::open(&path).map_err(|source| NamespaceError::Open { kind, path, source })?;
            own.push((file, flag, kind));
        }
        Ok(OwnForChildren(own))
    }

    /// Make them the namespaces of the caller's children again.
    pub fn restore(&self) -> Result<(), NamespaceError> {
        for (file, flag, kind) in &self.0 {
            nix::sched::setns(file, *flag).map_err(|source| NamespaceError::Join {
                kind,
                path: format!("/proc/self/ns/{kind}").into(),
                source,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let b = LinuxNamespaceBuilder::default().typ(t);
        match path {
            Some(p) => b.path(p).build().unwrap(),
            None => b.build().unwrap(),
        }
    }

    #[test]
    fn new_namespaces_become_clone_flags() {
        let plan = Namespaces::plan(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Mount, None),
            ns(LinuxNamespaceType::Cgroup, None),
            ns(LinuxNamespaceType::Network, Some("/proc/self/ns/net")),
        ])
        .unwrap();
        assert_eq!(
            plan.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert!(plan.new_cgroup);
        assert_eq!(plan.joins.len(), 1);
        assert!(plan.has(CloneFlags::CLONE_NEWNET));
    }

    #[test]
    fn duplicates_and_missing_mount_are_refused() {
        let dup = Namespaces::plan(&[
            ns(LinuxNamespaceType::Mount, None),
            ns(LinuxNamespaceType::Mount, None),
        ]);
        assert!(matches!(dup, Err(NamespaceError::Duplicate("mount"))));
        let none = Namespaces::plan(&[ns(LinuxNamespaceType::Pid, None)]);
        assert!(matches!(none, Err(NamespaceError::NoMountNamespace)));
    }
}
