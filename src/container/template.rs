//! runc's default `config.json` (what `spec` writes and an image's bundle
//! starts from).

use serde_json::{Value, json};

/// The default spec for this host: without a cgroup namespace on a
/// cgroup v1 host, and with `rootless`, mapping the caller to root.
pub fn for_host(rootless: bool) -> Value {
    let mut spec = default_spec();
    if !unified_host() {
        drop_cgroup_namespace(&mut spec);
    }
    if rootless {
        let (uid, gid) = crate::userns::own_ids();
        make_rootless(&mut spec, uid, gid);
    }
    spec
}

/// runc's default spec (an interactive `sh` in a read-only rootfs).
pub fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.2.1",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "ferry",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [{ "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/sys/devices/virtual/powercap"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Whether the host mounts cgroup v2 alone at /sys/fs/cgroup.
fn unified_host() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// runc asks for a cgroup namespace only on a cgroup v2 host: on v1 it
/// cannot hide the other hierarchies' paths, and tools that add one to the
/// runtime's own default config (which may not list a namespace twice)
/// expect it absent there.
fn drop_cgroup_namespace(spec: &mut Value) {
    if let Some(list) = spec["linux"]["namespaces"].as_array_mut() {
        list.retain(|n| n["type"] != "cgroup");
    }
}

/// runc's rootless changes: a user namespace mapping the caller to root, no
/// network namespace, /sys bound from the host, no uid=/gid= mount options,
/// no cgroup resources.
pub fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];
    if let Some(list) = linux["namespaces"].as_array_mut() {
        list.retain(|n| !matches!(n["type"].as_str(), Some("network" | "user")));
        list.push(json!({ "type": "user" }));
    }
    linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
    linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
    if let Some(obj) = linux.as_object_mut() {
        obj.remove("resources");
    }
    for m in spec["mounts"].as_array_mut().into_iter().flatten() {
        if m["destination"] == "/sys" {
            *m = json!({ "destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] });
            continue;
        }
        if let Some(opts) = m["options"].as_array_mut() {
            opts.retain(|o| {
                !o.as_str()
                    .is_some_and(|s| s.starts_with("uid=") || s.starts_with("gid="))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_as_a_config() {
        let data = serde_json::to_vec(&default_spec()).unwrap();
        crate::config::parse(&data).unwrap();
    }

    #[test]
    fn cgroup_namespace_can_be_dropped() {
        let mut s = default_spec();
        drop_cgroup_namespace(&mut s);
        let list = s["linux"]["namespaces"].as_array().unwrap();
        assert_eq!(list.len(), 5);
        assert!(list.iter().all(|n| n["type"] != "cgroup"));
    }

    #[test]
    fn rootless_spec_maps_the_caller() {
        let mut s = default_spec();
        make_rootless(&mut s, 1000, 1001);
        let types: Vec<&str> = s["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(types.contains(&"user") && !types.contains(&"network"));
        assert_eq!(s["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(s["linux"]["gidMappings"][0]["hostID"], 1001);
        assert!(s["linux"].get("resources").is_none());
        let devpts = s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/pts")
            .unwrap();
        assert!(
            !devpts["options"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == "gid=5")
        );
        crate::config::parse(&serde_json::to_vec(&s).unwrap()).unwrap();
    }
}
