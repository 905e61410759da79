//! Making a new container's cgroup and putting its init in it.
//!
//! On v1, moving a process by pid into a cgroup takes a global lock whose
//! first writer waits for an RCU grace period (~10 ms here), while a task
//! moving *itself* (writing "0" to a `tasks` file) skips it. So the parent
//! opens the `tasks` files and the init writes "0" to each right after the
//! GO message, before it unshares its cgroup namespace or runs anything. On
//! v2 the init is born in its cgroup (`CLONE_INTO_CGROUP`, see
//! `process::clone_into`), which takes no such lock; where the kernel
//! refuses that, the parent writes the pid to `cgroup.procs` before GO.

use std::io::Write;
use std::path::Path;

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};

use super::layout::{Layout, detect};
use super::path::{self, CgPath};
use super::systemd::Scope;
use super::{CgroupError, CgroupState, devices, fs, v1, v2};

/// How `create` was asked to handle cgroups.
pub struct Options<'a> {
    pub id: &'a str,
    pub systemd: bool,
    pub rootless: bool,
}

/// A container cgroup decided on but not made yet: its record is known
/// (`create` saves it before [`Planned::make`], so that `delete --force`
/// can remove what a `create` killed half-way made).
pub struct Planned<'a> {
    res: Option<&'a LinuxResources>,
    layout: Layout,
    path: CgPath,
    rootless: bool,
    /// The systemd driver's scope, made once the init exists.
    scope: Option<Scope>,
}

impl Planned<'_> {
    /// The record [`Planned::make`] will produce. With the systemd driver
    /// the unit is recorded only once ferry has started it
    /// ([`Manager::state`]): a unit of that name that already exists is
    /// someone else's, and removing a failed `create` must not stop it.
    pub fn record(&self) -> CgroupState {
        match &self.scope {
            Some(_) => CgroupState {
                v2: true,
                ..CgroupState::default()
            },
            None => planned(&self.layout, &self.path),
        }
    }

    /// Create the cgroup and apply its resources (rootless: `None`, with a
    /// warning, when that fails). The systemd driver makes nothing yet:
    /// [`Manager::apply`] starts the scope with the init in it.
    pub fn make(self) -> Result<Option<Manager>, CgroupError> {
        if let Some(scope) = self.scope {
            return Ok(Some(Manager {
                state: CgroupState {
                    v2: true,
                    ..CgroupState::default()
                },
                join_fds: Vec::new(),
                armed: true,
                scope: Some(scope),
            }));
        }
        let empty = LinuxResources::default();
        let res = self.res.unwrap_or(&empty);
        let made = Manager::make(res, &self.layout, &self.path, self.rootless);
        match made {
            Err(e) if self.rootless => {
                log::warn!("rootless cgroup not used: {e}");
                Ok(None)
            }
            other => other.map(Some),
        }
    }
}

/// A container cgroup being set up. Dropped without [`Manager::keep`],
/// it kills what is in it and removes it.
pub struct Manager {
    state: CgroupState,
    /// v1 `tasks` files the init writes "0" to.
    join_fds: Vec<std::fs::File>,
    armed: bool,
    /// The systemd driver's scope (`state` gets its directory once started).
    scope: Option<Scope>,
}

/// Whether `r` asks for any limit (device rules alone do not count).
pub fn has_limits(r: &LinuxResources) -> bool {
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|v| !v.is_empty())
        || r.unified().as_ref().is_some_and(|v| !v.is_empty())
}

impl Manager {
    /// Decide on the cgroup of a new container (nothing is made yet).
    /// `None`: the container runs without a cgroup of its own (rootless
    /// without a delegated v2 subtree; a warning says so if limits were
    /// asked for).
    pub fn plan<'a>(spec: &'a Spec, o: &Options) -> Result<Option<Planned<'a>>, CgroupError> {
        if o.systemd {
            return Self::plan_systemd(spec, o).map(Some);
        }
        let linux = spec.linux().as_ref();
        let empty = LinuxResources::default();
        let res = linux.and_then(|l| l.resources().as_ref()).unwrap_or(&empty);
        let cg_path = linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let skip = |why: &str| {
            if has_limits(res) {
                log::warn!("{why}: resource limits in linux.resources are not applied");
            }
            Ok(None)
        };
        let Some(path) = path::resolve(&cg_path, o.id, o.systemd, o.rootless)? else {
            return skip("rootless container without a cgroup");
        };
        let Some(layout) = detect() else {
            if o.rootless {
                return skip("no cgroup filesystem is mounted");
            }
            return if has_limits(res) {
                Err(CgroupError::NotMounted)
            } else {
                Ok(None)
            };
        };
        if o.rootless {
            let Layout::V2(h) = &layout else {
                return skip("rootless on cgroup v1");
            };
            if !delegated(&path.dir_in(h)) {
                return skip("no delegated cgroup v2 subtree");
            }
        }
        Ok(Some(Planned {
            res: linux.and_then(|l| l.resources().as_ref()),
            layout,
            path,
            rootless: o.rootless,
            scope: None,
        }))
    }

    /// The systemd driver: a scope on a cgroup v2 host run by systemd.
    fn plan_systemd<'a>(spec: &'a Spec, o: &Options) -> Result<Planned<'a>, CgroupError> {
        if !Path::new("/run/systemd/system").exists() {
            return Err(CgroupError::SystemdNotRunning);
        }
        let Some(layout @ Layout::V2(_)) = detect() else {
            return Err(CgroupError::Unsupported(
                "the systemd cgroup driver".into(),
                "v1",
            ));
        };
        let Layout::V2(h) = &layout else {
            unreachable!("matched above")
        };
        let linux = spec.linux().as_ref();
        let cg_path = linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (slice, unit) = path::systemd_unit(&cg_path, o.id, o.rootless)?;
        let scope = Scope::plan(spec, o.id, slice, unit, o.rootless, &h.mount_point)?;
        let path = path::resolve(&cg_path, o.id, true, o.rootless)?
            .unwrap_or_else(|| path::CgPath::Absolute(String::new()));
        Ok(Planned {
            res: linux.and_then(|l| l.resources().as_ref()),
            layout,
            path,
            rootless: o.rootless,
            scope: Some(scope),
        })
    }

    fn make(
        res: &LinuxResources,
        layout: &Layout,
        path: &CgPath,
        rootless: bool,
    ) -> Result<Manager, CgroupError> {
        let mut m = Manager {
            state: CgroupState::default(),
            join_fds: Vec::new(),
            armed: true,
            scope: None,
        };
        let rules = if rootless {
            None
        } else {
            Some(devices::container_rules(
                res.devices().as_deref().unwrap_or_default(),
            )?)
        };
        match layout {
            Layout::V1 {
                hierarchies,
                unified,
            } => {
                for h in hierarchies {
                    let dir = path.dir_in(h);
                    fs::mkdir_all(&dir, &mut m.state.created)?;
                    if h.has("cpuset") {
                        init_cpuset(&dir, &h.mount_point)?;
                    }
                    for c in &h.controllers {
                        m.state.paths.insert(c.clone(), dir.clone());
                    }
                    m.join_fds.push(open_tasks(&dir)?);
                }
                // Hybrid: a cgroup in the unified hierarchy too (the init is
                // born in it), so that what reads `0::` sees the container.
                if let Some(h) = unified {
                    let dir = path.dir_in(h);
                    fs::mkdir_all(&dir, &mut m.state.created)?;
                    m.state.paths.insert(String::new(), dir);
                }
                m.check_usable()?;
                v1::apply(&m.state, res, rules.as_deref(), true)?;
            }
            Layout::V2(h) => {
                let dir = path.dir_in(h);
                fs::mkdir_all(&dir, &mut m.state.created)?;
                m.state.v2 = true;
                m.state.paths.insert(String::new(), dir.clone());
                m.check_usable()?;
                v2::enable(&h.mount_point, &dir, &v2::wanted(res))?;
                v2::apply(&dir, res, rules.as_deref())?;
            }
        }
        Ok(m)
    }

    /// Put the calling process (the init, right after GO) in the cgroup.
    pub fn join_self(&self) -> Result<(), CgroupError> {
        for mut f in &self.join_fds {
            f.write_all(b"0").map_err(|source| CgroupError::Write {
                path: "tasks".into(),
                value: "0".into(),
                source,
            })?;
        }
        Ok(())
    }

    /// Parent side, before GO, for an init not born in its cgroup: on v2
    /// (or in the unified hierarchy of a hybrid host), move it in by pid;
    /// with the systemd driver, have systemd make the scope around it.
    pub fn apply(&self, pid: Pid) -> Result<(), CgroupError> {
        if let Some(scope) = &self.scope {
            return scope.start(pid);
        }
        if let Some(dir) = self.state.paths.get("") {
            fs::write(dir, "cgroup.procs", pid.to_string())?;
        }
        Ok(())
    }

    /// Whether [`Manager::apply`] talks to systemd over D-Bus (which starts
    /// threads in the calling process).
    pub fn uses_dbus(&self) -> bool {
        self.scope.is_some()
    }

    /// The cgroup2 directory the init is born in (`CLONE_INTO_CGROUP`): the
    /// container's on v2, its unified one on a hybrid host.
    pub fn birth_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        if self.scope.is_some() {
            return None;
        }
        self.state.unified_dir_fd()
    }

    /// Refuse a cgroup that would stop the init (frozen: `create` would
    /// wait for ever), and warn about one that already holds processes,
    /// as runc does.
    fn check_usable(&self) -> Result<(), CgroupError> {
        if self.state.is_frozen_any() {
            return Err(CgroupError::Frozen);
        }
        let Some(leaf) = self.state.any_dir() else {
            return Ok(());
        };
        if !self.state.created.iter().any(|c| c == leaf) {
            let n = fs::procs(leaf).len();
            if n > 0 {
                log::warn!("the container's cgroup is not empty: {n} process(es) found");
            }
        }
        Ok(())
    }

    /// The cgroup's record for state.json (with the systemd driver, the
    /// unit and its directory once ferry started it: they are then ferry's
    /// to remove).
    pub fn state(&self) -> CgroupState {
        let mut st = self.state.clone();
        if let Some(scope) = &self.scope
            && let Some(dir) = scope.dir()
        {
            st.paths.insert(String::new(), dir.clone());
            st.created.push(dir.clone());
            st.systemd = Some(scope.unit.clone());
        }
        st
    }

    /// Keep the cgroup (the container exists now); its record for state.json.
    pub fn keep(mut self) -> CgroupState {
        self.armed = false;
        self.state()
    }
}

/// The record [`Manager::make`] will produce, before anything is made: the
/// same directories, and as made by ferry those that do not exist yet.
fn planned(layout: &Layout, path: &CgPath) -> CgroupState {
    let mut st = CgroupState::default();
    let leaf = |dir: &Path, st: &mut CgroupState| {
        let mut missing: Vec<&Path> = Vec::new();
        let mut d = Some(dir);
        while let Some(p) = d.filter(|p| !p.exists()) {
            missing.push(p);
            d = p.parent();
        }
        for p in missing.into_iter().rev() {
            if !st.created.iter().any(|c| c == p) {
                st.created.push(p.to_path_buf());
            }
        }
    };
    match layout {
        Layout::V1 {
            hierarchies,
            unified,
        } => {
            for h in hierarchies {
                let dir = path.dir_in(h);
                leaf(&dir, &mut st);
                for c in &h.controllers {
                    st.paths.insert(c.clone(), dir.clone());
                }
            }
            if let Some(h) = unified {
                let dir = path.dir_in(h);
                leaf(&dir, &mut st);
                st.paths.insert(String::new(), dir);
            }
        }
        Layout::V2(h) => {
            let dir = path.dir_in(h);
            leaf(&dir, &mut st);
            st.v2 = true;
            st.paths.insert(String::new(), dir);
        }
    }
    st
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.join_fds.clear();
        if self.armed
            && let Err(e) = self.state().discard()
        {
            log::warn!("cannot remove the cgroup of a failed container: {e}");
        }
    }
}

/// Apply new resources to a live container's cgroup (`ferry update`).
/// Device rules are left as they are, as runc's `update` does: engines
/// pass the container's whole `linux.resources`, and rewriting a live v1
/// list starts with denying everything.
pub fn update(state: &CgroupState, r: &LinuxResources) -> Result<(), CgroupError> {
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        log::debug!("update: linux.resources.devices is not applied to a running container");
    }
    if let Some(unit) = &state.systemd {
        super::systemd::update(unit, r)?;
    }
    if state.v2 {
        let dir = state.dir("").ok_or(CgroupError::NoCgroup)?;
        if let Some(Layout::V2(h)) = detect() {
            v2::enable(&h.mount_point, dir, &v2::wanted(r))?;
        }
        return v2::apply(dir, r, None);
    }
    v1::apply(state, r, None, false)
}

/// A new cpuset cgroup starts with no cpus or memory nodes unless its
/// parent has `cgroup.clone_children`, and a task cannot join one that is
/// empty: from the top of the hierarchy down to `leaf`, copy the parent's
/// values into every empty one (also those ferry did not make, as runc does).
fn init_cpuset(leaf: &Path, mount_point: &Path) -> Result<(), CgroupError> {
    let mut chain: Vec<&Path> = leaf
        .ancestors()
        .take_while(|d| *d != mount_point && d.starts_with(mount_point))
        .collect();
    chain.reverse();
    for dir in chain {
        let parent = dir.parent().unwrap_or(dir);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read(dir, file)?.trim().is_empty() {
                let v = fs::read(parent, file)?;
                fs::write(dir, file, v.trim())?;
            }
        }
    }
    Ok(())
}

fn open_tasks(dir: &Path) -> Result<std::fs::File, CgroupError> {
    let path = dir.join("tasks");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| fs::io_err("open", &path, e))
}

/// Whether the caller may manage `dir` on v2: its nearest existing
/// ancestor is owned by us and its `cgroup.procs` writable.
fn delegated(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let uid = nix::unistd::geteuid().as_raw();
    let Some(base) = dir.ancestors().find(|a| a.exists()) else {
        return false;
    };
    std::fs::metadata(base).is_ok_and(|m| m.uid() == uid)
        && nix::unistd::access(&base.join("cgroup.procs"), nix::unistd::AccessFlags::W_OK).is_ok()
}
