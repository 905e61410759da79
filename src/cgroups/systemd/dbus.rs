//! systemd's manager API over D-Bus, with zbus.
//!
//! Why zbus and not cgroups-rs: the project's first crate list named
//! cgroups-rs, whose systemd manager is itself built on zbus. ferry keeps
//! its own cgroupfs code (see the note in `cgroups/mod.rs`: cgroups-rs
//! creates and reads far more than `create` needs and mishandles a v1
//! hybrid host), and its systemd manager would add that whole crate (its
//! v1 code, a second nix, thiserror 1) for the handful of calls below.
//! zbus is the maintained pure-Rust D-Bus implementation; its blocking API
//! is used with its small async-io executor (no tokio). It starts threads:
//! a connection is made only after the init is cloned (`Manager::apply`)
//! or in commands that never clone (`update`, `delete`).

use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value as ZValue};

use super::super::CgroupError;
use super::props::{Prop, Value};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// How long a unit's start or stop job may take (runc waits 30 s).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a systemd manager: the system's, or the calling
/// user's (`systemd --user`, on the user bus).
pub struct Bus {
    conn: Connection,
}

fn err(what: &str, e: impl std::fmt::Display) -> CgroupError {
    CgroupError::Systemd(format!("{what}: {e}"))
}

/// The D-Bus error name of a failed call, if it is one.
fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

impl Bus {
    /// Connect to the system bus, or (`user`) to the user bus of the
    /// caller's host uid: `DBUS_SESSION_BUS_ADDRESS`, else
    /// `$XDG_RUNTIME_DIR/bus`, else `/run/user/UID/bus`. In a user
    /// namespace (rootless podman runs its runtime in one) the EXTERNAL
    /// authentication names the host uid the bus sees on the socket.
    pub fn connect(user: bool) -> Result<Bus, CgroupError> {
        let builder = if user {
            let uid = host_uid();
            let address = std::env::var("DBUS_SESSION_BUS_ADDRESS")
                .ok()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| {
                    let dir = std::env::var("XDG_RUNTIME_DIR")
                        .ok()
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(|| format!("/run/user/{uid}"));
                    format!("unix:path={dir}/bus")
                });
            zbus::blocking::connection::Builder::address(address.as_str())
                .map_err(|e| err("user bus address", e))?
                .user_id(uid)
        } else {
            zbus::blocking::connection::Builder::system().map_err(|e| err("system bus", e))?
        };
        let conn = builder.build().map_err(|e| {
            let bus = if user {
                "the user bus"
            } else {
                "the system bus"
            };
            err(&format!("cannot connect to {bus}"), e)
        })?;
        Ok(Bus { conn })
    }

    fn call<B, R>(&self, path: &str, iface: &str, method: &str, body: &B) -> zbus::Result<R>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
    {
        let reply = self
            .conn
            .call_method(Some(DEST), path, Some(iface), method, body)?;
        reply.body().deserialize::<R>()
    }

    fn property(&self, path: &str, iface: &str, name: &str) -> zbus::Result<OwnedValue> {
        self.call(path, PROPERTIES, "Get", &(iface, name))
    }

    /// The manager's major version (`252` of `252.39-1~deb12u1`); 0 if
    /// unknown (then only properties every version has are sent).
    pub fn version(&self) -> u32 {
        let Ok(v) = self.property(PATH, MANAGER, "Version") else {
            return 0;
        };
        let s: String = v.try_into().unwrap_or_default();
        let digits: String = s
            .trim_start_matches('v')
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap_or(0)
    }

    /// `StartTransientUnit(unit, "replace", props)`, then wait for its job.
    /// A unit of that name left failed (an OOM-killed container not
    /// deleted through ferry) is reset and the start tried once more.
    pub fn start_unit(&self, unit: &str, props: &[Prop]) -> Result<(), CgroupError> {
        let body = (
            unit,
            "replace",
            encode(props),
            Vec::<(&str, Vec<(&str, ZValue)>)>::new(),
        );
        let mut tried_reset = false;
        let job: OwnedObjectPath = loop {
            match self.call(PATH, MANAGER, "StartTransientUnit", &body) {
                Ok(job) => break job,
                Err(e)
                    if error_name(&e) == Some("org.freedesktop.systemd1.UnitExists")
                        && !tried_reset =>
                {
                    tried_reset = true;
                    self.reset_failed(unit);
                }
                Err(e) => return Err(err(&format!("cannot start unit {unit}"), e)),
            }
        };
        self.wait_job(job.as_str())?;
        match self.active_state(unit).as_deref() {
            Some("active") => Ok(()),
            state => Err(CgroupError::Systemd(format!(
                "unit {unit} did not start (state {})",
                state.unwrap_or("unknown")
            ))),
        }
    }

    /// Poll until the job object is gone (its result is the unit's state).
    fn wait_job(&self, job: &str) -> Result<(), CgroupError> {
        let deadline = Instant::now() + JOB_TIMEOUT;
        let mut delay = Duration::from_micros(200);
        while self
            .property(job, "org.freedesktop.systemd1.Job", "State")
            .is_ok()
        {
            if Instant::now() >= deadline {
                return Err(CgroupError::Systemd(format!("job {job} did not finish")));
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(20));
        }
        Ok(())
    }

    fn unit_path(&self, unit: &str) -> zbus::Result<OwnedObjectPath> {
        self.call(PATH, MANAGER, "GetUnit", &(unit,))
    }

    /// The unit's `ActiveState`, `None` when it is not loaded.
    pub fn active_state(&self, unit: &str) -> Option<String> {
        let path = self.unit_path(unit).ok()?;
        let v = self
            .property(
                path.as_str(),
                "org.freedesktop.systemd1.Unit",
                "ActiveState",
            )
            .ok()?;
        v.try_into().ok()
    }

    /// The unit's cgroup, from the root of the hierarchy
    /// (`/system.slice/ferry-ID.scope`).
    pub fn control_group(&self, unit: &str) -> Result<String, CgroupError> {
        let path = self
            .unit_path(unit)
            .map_err(|e| err(&format!("unit {unit}"), e))?;
        let v = self
            .property(
                path.as_str(),
                "org.freedesktop.systemd1.Scope",
                "ControlGroup",
            )
            .map_err(|e| err(&format!("the cgroup of unit {unit}"), e))?;
        let cg: String = v
            .try_into()
            .map_err(|e| err(&format!("the cgroup of unit {unit}"), e))?;
        if cg.is_empty() {
            return Err(CgroupError::Systemd(format!("unit {unit} has no cgroup")));
        }
        Ok(cg)
    }

    /// `SetUnitProperties(unit, runtime, props)` (`ferry update`).
    pub fn set_properties(&self, unit: &str, props: &[Prop]) -> Result<(), CgroupError> {
        if props.is_empty() {
            return Ok(());
        }
        self.call::<_, ()>(
            PATH,
            MANAGER,
            "SetUnitProperties",
            &(unit, true, encode(props)),
        )
        .map_err(|e| err(&format!("cannot set the properties of unit {unit}"), e))
    }

    /// Stop the unit and forget a failed one; a unit that is already gone
    /// is fine.
    pub fn stop_unit(&self, unit: &str) -> Result<(), CgroupError> {
        match self.call::<_, OwnedObjectPath>(PATH, MANAGER, "StopUnit", &(unit, "replace")) {
            Ok(job) => self.wait_job(job.as_str())?,
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => {}
            Err(e) => return Err(err(&format!("cannot stop unit {unit}"), e)),
        }
        self.reset_failed(unit);
        Ok(())
    }

    /// `ResetFailedUnit`, errors ignored (not failed, or not loaded).
    fn reset_failed(&self, unit: &str) {
        let _ = self.call::<_, ()>(PATH, MANAGER, "ResetFailedUnit", &(unit,));
    }
}

/// Properties as D-Bus `a(sv)`.
fn encode(props: &[Prop]) -> Vec<(&str, ZValue<'_>)> {
    props
        .iter()
        .map(|p| {
            let v = match &p.value {
                Value::Bool(b) => ZValue::from(*b),
                Value::U64(n) => ZValue::from(*n),
                Value::U32(n) => ZValue::from(*n),
                Value::I64(n) => ZValue::from(*n),
                Value::I32(n) => ZValue::from(*n),
                Value::F64(n) => ZValue::from(*n),
                Value::Str(s) => ZValue::from(s.as_str()),
                Value::Bytes(b) => ZValue::from(b.clone()),
                Value::U32s(v) => ZValue::from(v.clone()),
                Value::Pairs(v) => ZValue::from(v.clone()),
            };
            (p.name.as_str(), v)
        })
        .collect()
}

/// The caller's uid as the host sees it: through `/proc/self/uid_map`
/// when in a user namespace (the parent namespace's id of our euid).
pub fn host_uid() -> u32 {
    let euid = nix::unistd::geteuid().as_raw();
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    for line in map.lines() {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [inside, outside, count] = f[..]
            && (inside..inside + count).contains(&u64::from(euid))
        {
            return u32::try_from(outside + (u64::from(euid) - inside)).unwrap_or(euid);
        }
    }
    euid
}
