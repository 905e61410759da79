//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup
//! is a transient scope unit, `prefix-name.scope` in `slice` (from a
//! `slice:prefix:name` cgroups path), that systemd makes over D-Bus with
//! the init in it, as runc's systemd driver does:
//!
//! * `StartTransientUnit` with `Delegate=yes` (the container may manage
//!   its own sub-cgroups), `PIDs` = the init, `Slice`, `Description`, the
//!   accounting switches, `linux.resources` translated to properties
//!   ([`props::resources`]), the device policy and the
//!   `org.systemd.property.*` annotations; then a wait for the job;
//! * then, as runc, the same resources are written to the cgroup files
//!   (what systemd has no property for, and exact values where systemd
//!   rounds, e.g. the CPU quota), with ferry's device program;
//! * `update` sends the new properties (`SetUnitProperties`) and writes
//!   the files; `delete` kills what is left and stops the unit.
//!
//! Rootless, the unit is made by the user's manager (`systemd --user`) on
//! the user bus, under `user@UID.service`, which must delegate the
//! controllers to be used (`Delegate=yes` on `user@.service`).
//! The init is cloned in the caller's cgroup and moved by systemd before
//! it runs anything (no `CLONE_INTO_CGROUP`: a scope needs a pid to exist).

mod dbus;
pub mod props;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};
use serde::{Deserialize, Serialize};

use super::devices::Rule;
use super::{CgroupError, v2};
use props::{Prop, Value};

/// The unit a container's cgroup is, as `state.json` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemdUnit {
    /// `prefix-name.scope`.
    pub unit: String,
    /// Made by the user's manager (on the user bus).
    #[serde(default)]
    pub user: bool,
}

/// A container scope planned by `create`, started once its init exists.
pub struct Scope {
    pub unit: SystemdUnit,
    slice: String,
    id: String,
    res: LinuxResources,
    /// `None` rootless (no device program: a user cannot load one).
    rules: Option<Vec<Rule>>,
    annotations: Vec<Prop>,
    /// The root of the cgroup2 hierarchy.
    mount: PathBuf,
    /// The scope's cgroup directory, once started.
    dir: OnceCell<PathBuf>,
}

impl Scope {
    /// Plan the scope of container `id`: its names checked and its
    /// annotations and resources translated once, so that a bad value
    /// fails `create` before anything exists.
    pub fn plan(
        spec: &Spec,
        id: &str,
        slice: String,
        unit: String,
        user: bool,
        mount: &Path,
    ) -> Result<Scope, CgroupError> {
        if !unit.ends_with(".scope") {
            return Err(CgroupError::InvalidPath {
                path: unit,
                reason: "the systemd driver makes scope units (give slice:prefix:name)",
            });
        }
        let res = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        props::resources(&res, u32::MAX)?;
        let annotations = props::annotations(spec.annotations().iter().flatten())?;
        let rules = if user {
            None
        } else {
            Some(super::devices::container_rules(
                res.devices().as_deref().unwrap_or_default(),
            )?)
        };
        Ok(Scope {
            unit: SystemdUnit { unit, user },
            slice,
            id: id.to_string(),
            res,
            rules,
            annotations,
            mount: mount.to_path_buf(),
            dir: OnceCell::new(),
        })
    }

    /// The scope's directory once [`Scope::start`] made it.
    pub fn dir(&self) -> Option<&PathBuf> {
        self.dir.get()
    }

    /// Have systemd make the scope with `pid` in it, then write the
    /// resources to its files.
    pub fn start(&self, pid: Pid) -> Result<(), CgroupError> {
        let bus = dbus::Bus::connect(self.unit.user)?;
        let version = bus.version();
        let mut all = self.base(pid);
        all.extend(props::resources(&self.res, version)?);
        if let Some(rules) = &self.rules {
            let text = std::fs::read_to_string("/proc/devices").unwrap_or_default();
            all.extend(props::devices(rules, |k, m| {
                props::device_group(&text, k, m)
            }));
        }
        all.extend(self.annotations.iter().cloned());
        bus.start_unit(&self.unit.unit, &all)?;
        // Ours from here: a failure below stops it again.
        let cg = bus.control_group(&self.unit.unit);
        let dir = match cg {
            Ok(cg) => self.mount.join(cg.trim_start_matches('/')),
            Err(e) => {
                let _ = bus.stop_unit(&self.unit.unit);
                return Err(e);
            }
        };
        let _ = self.dir.set(dir.clone());
        v2::apply(&dir, &self.res, self.rules.as_deref())
    }

    /// What runc sets on every container scope.
    fn base(&self, pid: Pid) -> Vec<Prop> {
        let p = |name: &str, value| Prop {
            name: name.into(),
            value,
        };
        vec![
            p("Slice", Value::Str(self.slice.clone())),
            p(
                "Description",
                Value::Str(format!("ferry container {}", self.id)),
            ),
            p("MemoryAccounting", Value::Bool(true)),
            p("CPUAccounting", Value::Bool(true)),
            p("IOAccounting", Value::Bool(true)),
            p("TasksAccounting", Value::Bool(true)),
            p("DefaultDependencies", Value::Bool(false)),
            p("Delegate", Value::Bool(true)),
            p("PIDs", Value::U32s(vec![pid.as_raw() as u32])),
        ]
    }
}

/// `ferry update`: the new resources as unit properties (devices are left
/// as they are, as for the cgroupfs driver).
pub fn update(unit: &SystemdUnit, r: &LinuxResources) -> Result<(), CgroupError> {
    let bus = dbus::Bus::connect(unit.user)?;
    let props = props::resources(r, bus.version())?;
    bus.set_properties(&unit.unit, &props)
}

/// Stop the unit (once its processes are killed) and forget it if failed.
pub fn stop(unit: &SystemdUnit) -> Result<(), CgroupError> {
    dbus::Bus::connect(unit.user)?.stop_unit(&unit.unit)
}
