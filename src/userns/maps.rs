//! uid/gid maps of a new user namespace: written directly by root or for a
//! user's own id, through `newuidmap`/`newgidmap` for subordinate ranges.

use std::path::Path;
use std::process::Command;

use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;

use super::ids::is_rootless;
use super::subids::subordinate_ranges;

/// Errors mapping ids.
#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    #[error("a user namespace needs uidMappings and gidMappings")]
    Missing,
    #[error(
        "{kind} mapping {host}..{end} is not allowed for this user: map your own id or ranges of /etc/sub{kind}"
    )]
    NotAllowed {
        kind: &'static str,
        host: u32,
        end: u64,
    },
    #[error("write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{tool} failed: {msg}")]
    Tool { tool: &'static str, msg: String },
}

/// The maps of one kind (uid or gid).
pub struct Maps<'a> {
    pub kind: &'static str,
    pub maps: &'a [LinuxIdMapping],
    /// The caller's own id of that kind.
    pub own: u32,
}

impl Maps<'_> {
    fn only_own(&self) -> bool {
        matches!(self.maps, [m] if m.host_id() == self.own && m.size() == 1)
    }

    fn table(&self) -> String {
        self.maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    }
}

/// Check, before anything is created, that a rootless caller may use the maps.
pub fn check_allowed(uid: &Maps, gid: &Maps) -> Result<(), IdMapError> {
    if uid.maps.is_empty() || gid.maps.is_empty() {
        return Err(IdMapError::Missing);
    }
    if !is_rootless() {
        return Ok(());
    }
    for (maps, file) in [(uid, "/etc/subuid"), (gid, "/etc/subgid")] {
        let ranges = subordinate_ranges(Path::new(file), maps.own);
        for m in maps.maps {
            let (host, end) = (m.host_id(), u64::from(m.host_id()) + u64::from(m.size()));
            let own = host == maps.own && m.size() == 1;
            let sub = ranges
                .iter()
                .any(|&(start, len)| u64::from(host) >= start && end <= start + len);
            if !own && !sub {
                return Err(IdMapError::NotAllowed {
                    kind: maps.kind,
                    host,
                    end,
                });
            }
        }
    }
    Ok(())
}

/// Write the maps of `pid`'s new user namespace.
pub fn write(pid: Pid, uid: &Maps, gid: &Maps) -> Result<(), IdMapError> {
    let direct = !is_rootless() || (uid.only_own() && gid.only_own());
    if direct {
        if is_rootless() {
            // An unprivileged writer of gid_map must give up setgroups first.
            write_proc(pid, "setgroups", "deny")?;
        }
        write_proc(pid, "uid_map", &uid.table())?;
        write_proc(pid, "gid_map", &gid.table())?;
        return Ok(());
    }
    run_tool("newuidmap", pid, uid)?;
    run_tool("newgidmap", pid, gid)
}

fn write_proc(pid: Pid, file: &str, content: &str) -> Result<(), IdMapError> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, content).map_err(|source| IdMapError::Write { path, source })
}

fn run_tool(tool: &'static str, pid: Pid, maps: &Maps) -> Result<(), IdMapError> {
    let mut cmd = Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps.maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd.output().map_err(|e| IdMapError::Tool {
        tool,
        msg: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(IdMapError::Tool {
        tool,
        msg: if msg.is_empty() {
            out.status.to_string()
        } else {
            msg
        },
    })
}

/// `0 OWN 1`: the container's root is the caller's id `own`.
pub fn own_map(own: u32) -> LinuxIdMapping {
    oci_spec::runtime::LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(own)
        .size(1u32)
        .build()
        .unwrap_or_default()
}
