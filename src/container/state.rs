use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A container's status, as the runtime spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What ferry records about a container in `ROOT/ID/state.json`.
///
/// The status is not stored: it is derived from the init process (alive,
/// and the same process, by its start time) and the exec fifo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: u32,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Start time of the init (field 22 of /proc/PID/stat), to tell it
    /// from a later process that reuses its pid.
    pub start_time: u64,
    /// Whether the init has its own pid namespace (then killing it kills
    /// the whole container).
    #[serde(default)]
    pub own_pid_ns: bool,
    /// The config's hooks, kept for `start` (poststart) and `delete`
    /// (poststop) so they need not re-read config.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The container's cgroup, if it has one of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroups::CgroupState>,
    /// A provisional record, written once by `create` (right before it
    /// makes the cgroup, or with no cgroup right after the clone, with the
    /// init's pid), so that `delete --force` finds what a `create` killed
    /// half-way left behind.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub creating: bool,
}

/// The exec fifo's name inside the container dir: it exists from `create`
/// until `start` has released the init.
pub const EXEC_FIFO: &str = "exec.fifo";

impl State {
    /// The live status of the container whose dir is `dir`.
    pub fn status(&self, dir: &Path) -> Status {
        if self.creating && self.pid == 0 {
            return Status::Creating;
        }
        if !self.init_alive() {
            return Status::Stopped;
        }
        if self.creating {
            return Status::Creating;
        }
        if self.cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
            return Status::Paused;
        }
        if dir.join(EXEC_FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// Whether the recorded init still runs (not a zombie, not a reused pid).
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && matches!(process_start_time(self.pid), Some((state, t)) if t == self.start_time && state != 'Z' && state != 'X')
    }

    /// The runtime spec's state document, with runc's extra fields, in
    /// runc's key order.
    pub fn document(&self, status: Status) -> StateDocument<'_> {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        StateDocument {
            oci_version: &self.oci_version,
            id: &self.id,
            pid,
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: owner_name(self.owner),
        }
    }
}

/// What `state` and `list --format json` print for a container: the
/// fields and their order are runc's (`ociVersion`, `id`, `pid`, `status`,
/// `bundle`, `rootfs`, `created`, `annotations` when there are any,
/// `owner`).
#[derive(Debug, Serialize)]
pub struct StateDocument<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
    pub owner: String,
}

/// The process state letter and start time of `pid`, from /proc/PID/stat.
pub fn process_start_time(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

fn owner_name(uid: u32) -> String {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

impl State {
    /// The state document hooks receive, with `status`.
    pub fn hook_json(&self, status: Status) -> serde_json::Value {
        crate::hooks::state_json(
            &self.id,
            &status.to_string(),
            self.pid,
            &self.bundle,
            &self.annotations,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_start_time() {
        let me = std::process::id() as i32;
        let (state, start) = process_start_time(me).unwrap();
        assert!(state != 'Z' && state != 'X', "{state}");
        assert!(start > 0);
        assert_eq!(process_start_time(me).unwrap().1, start);
    }

    #[test]
    fn reused_pid_reads_as_stopped() {
        let me = std::process::id() as i32;
        let (_, start) = process_start_time(me).unwrap();
        let mut st = State {
            oci_version: "1.2.0".into(),
            id: "x".into(),
            pid: me,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: String::new(),
            owner: 0,
            annotations: BTreeMap::new(),
            start_time: start,
            own_pid_ns: true,
            hooks: None,
            cgroup: None,
            creating: false,
        };
        assert!(st.init_alive());
        st.start_time += 1;
        assert!(!st.init_alive());
        assert_eq!(st.status(Path::new("/nonexistent")), Status::Stopped);
    }

    #[test]
    fn state_document_has_runcs_key_order() {
        let mut st = State {
            oci_version: "1.2.0".into(),
            id: "x".into(),
            pid: 7,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "t".into(),
            owner: 0,
            annotations: BTreeMap::new(),
            start_time: 0,
            own_pid_ns: true,
            hooks: None,
            cgroup: None,
            creating: false,
        };
        let text = serde_json::to_string(&st.document(Status::Running)).unwrap();
        assert_eq!(
            text,
            r#"{"ociVersion":"1.2.0","id":"x","pid":7,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"t","owner":"root"}"#
        );
        st.annotations.insert("k".into(), "v".into());
        let text = serde_json::to_string(&st.document(Status::Stopped)).unwrap();
        assert!(
            text.contains(r#""pid":0,"status":"stopped","#)
                && text.contains(r#""created":"t","annotations":{"k":"v"},"owner":"root"}"#),
            "{text}"
        );
    }

    #[test]
    fn provisional_state_reads_as_creating_until_its_init_dies() {
        let me = std::process::id() as i32;
        let (_, start) = process_start_time(me).unwrap();
        let mut st = State {
            oci_version: "1.2.0".into(),
            id: "x".into(),
            pid: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: String::new(),
            owner: 0,
            annotations: BTreeMap::new(),
            start_time: 0,
            own_pid_ns: true,
            hooks: None,
            cgroup: None,
            creating: true,
        };
        let dir = Path::new("/nonexistent");
        assert_eq!(
            st.status(dir),
            Status::Creating,
            "cgroup recorded, no init yet"
        );
        st.pid = me;
        st.start_time = start;
        assert_eq!(st.status(dir), Status::Creating, "init recorded");
        st.start_time += 1;
        assert_eq!(st.status(dir), Status::Stopped, "init gone");
        // The flag is left out of a complete state.json.
        st.creating = false;
        let json = serde_json::to_value(&st).unwrap();
        assert!(json.get("creating").is_none(), "{json}");
    }
}
