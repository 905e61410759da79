//! Malformed configs, each with the exact error `ferry create` must print
//! (one line, `ferry: ` and one sentence), leaving nothing behind.
//!
//! Every case starts from the same small config (below), written compactly
//! so that serde's positions ("line 1 column N") are stable, and changes
//! one thing. In the expected messages `{config}` stands for the bundle's
//! config.json and `{bundle}` for the bundle.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::time::Duration;

fn base() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sleep", "10"],
            "env": ["PATH=/bin:/usr/bin"],
            "cwd": "/"
        },
        "root": {"path": "rootfs"},
        "hostname": "ferry",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ]
        }
    })
}

/// What a case does to the base config.
enum Edit {
    /// Set the value at a JSON pointer (`null` removes it).
    Set(&'static str, Value),
    /// Several edits.
    All(Vec<Edit>),
    /// Replace config.json with this text.
    Raw(&'static str),
    /// No config.json at all.
    NoFile,
}

use Edit::*;

fn set(p: &'static str, v: Value) -> Edit {
    Set(p, v)
}

fn apply(config: &mut Value, edit: &Edit) {
    match edit {
        Set(pointer, v) => {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let parent = config.pointer_mut(parent).expect(pointer);
            match parent {
                Value::Object(m) if v.is_null() => {
                    m.remove(key);
                }
                Value::Object(m) => {
                    m.insert(key.to_string(), v.clone());
                }
                Value::Array(a) => {
                    let i: usize = key.parse().unwrap();
                    if i == a.len() {
                        a.push(v.clone());
                    } else {
                        a[i] = v.clone();
                    }
                }
                _ => panic!("{pointer}"),
            }
        }
        All(edits) => edits.iter().for_each(|e| apply(config, e)),
        Raw(_) | NoFile => {}
    }
}

/// The cases: name, edit, exact message after `ferry: `.
fn cases() -> Vec<(&'static str, Edit, &'static str)> {
    let ns = |list: &[&str]| {
        json!(
            list.iter()
                .map(|t| json!({ "type": t }))
                .collect::<Vec<_>>()
        )
    };
    vec![
        // --- the file itself ---
        (
            "no config.json",
            NoFile,
            "cannot read {config}: No such file or directory (os error 2)",
        ),
        (
            "empty file",
            Raw(""),
            "invalid {config}: EOF while parsing a value at line 1 column 0",
        ),
        (
            "not JSON",
            Raw("not json"),
            "invalid {config}: expected ident at line 1 column 2",
        ),
        (
            "truncated JSON",
            Raw(r#"{"ociVersion": "1.0.2", "process": "#),
            "invalid {config}: EOF while parsing a value at line 1 column 35",
        ),
        (
            "top level is an array",
            Raw("[]"),
            "invalid {config}: the top level is not a JSON object",
        ),
        // --- shape (serde, with the position) ---
        (
            "process.args is a string",
            set("/process/args", json!("sleep 10")),
            "invalid {config}: invalid type: string \"sleep 10\", expected a sequence at line 1 column 355",
        ),
        (
            "user.uid is a name",
            set("/process/user/uid", json!("root")),
            "invalid {config}: invalid type: string \"root\", expected u32 at line 1 column 444",
        ),
        (
            "unknown namespace type",
            set("/linux/namespaces/5", json!({"type": "foo"})),
            "invalid {config}: unknown variant `foo`, expected one of `mount`, `cgroup`, `uts`, `ipc`, `user`, `pid`, `network`, `time` at line 1 column 137",
        ),
        (
            "unknown rlimit",
            set(
                "/process/rlimits",
                json!([{"type": "RLIMIT_FOO", "hard": 1, "soft": 1}]),
            ),
            "invalid {config}: unknown variant `RLIMIT_FOO`, expected one of `RLIMIT_CPU`, `RLIMIT_FSIZE`, `RLIMIT_DATA`, `RLIMIT_STACK`, `RLIMIT_CORE`, `RLIMIT_RSS`, `RLIMIT_NPROC`, `RLIMIT_NOFILE`, `RLIMIT_MEMLOCK`, `RLIMIT_AS`, `RLIMIT_LOCKS`, `RLIMIT_SIGPENDING`, `RLIMIT_MSGQUEUE`, `RLIMIT_NICE`, `RLIMIT_RTPRIO`, `RLIMIT_RTTIME` at line 1 column 448",
        ),
        (
            "unknown device type",
            set(
                "/linux/devices",
                json!([{"path": "/dev/foo", "type": "x", "major": 1, "minor": 3}]),
            ),
            "invalid {config}: unknown variant `x`, expected one of `a`, `b`, `c`, `u`, `p` at line 1 column 89",
        ),
        // --- missing parts ---
        (
            "no process",
            set("/process", Value::Null),
            "config.json has no process",
        ),
        (
            "no root",
            set("/root", Value::Null),
            "config.json has no root",
        ),
        (
            "empty process.args",
            set("/process/args", json!([])),
            "process.args must not be empty",
        ),
        (
            "rootfs missing",
            set("/root/path", json!("nope")),
            "rootfs {bundle}/nope: No such file or directory (os error 2)",
        ),
        (
            "rootfs is a file",
            set("/root/path", json!("config.json")),
            "rootfs {bundle}/config.json: not a directory",
        ),
        // --- process ---
        (
            "unknown capability",
            set(
                "/process/capabilities",
                json!({"bounding": ["CAP_KILL", "CAP_FOO"]}),
            ),
            "unknown capability \"CAP_FOO\"",
        ),
        (
            "rlimit soft above hard",
            set(
                "/process/rlimits",
                json!([{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 100}]),
            ),
            "rlimit RLIMIT_NOFILE: the soft limit 100 is above the hard limit 10",
        ),
        (
            "oomScoreAdj out of range",
            set("/process/oomScoreAdj", json!(5000)),
            "process.oomScoreAdj 5000 is out of range (-1000 to 1000)",
        ),
        (
            "relative cwd",
            set("/process/cwd", json!("tmp")),
            "process.cwd \"tmp\" is not an absolute path",
        ),
        (
            // A missing cwd is created (as runc does); a file is no cwd.
            "cwd is a file in the rootfs",
            set("/process/cwd", json!("/etc/passwd")),
            "cwd \"/etc/passwd\" is not a directory inside the container",
        ),
        (
            "program missing",
            set("/process/args", json!(["/nonexistent"])),
            "exec: \"/nonexistent\": no such file or directory",
        ),
        (
            "terminal without console socket",
            set("/process/terminal", json!(true)),
            "process.terminal is set but no --console-socket was given",
        ),
        // --- namespaces ---
        (
            "namespace listed twice",
            set("/linux/namespaces/5", json!({"type": "pid"})),
            "namespace pid is listed twice",
        ),
        (
            // Neither is accepted (crun's rule: the caller becomes root).
            "user namespace with uidMappings only",
            All(vec![
                set("/linux/namespaces/5", json!({"type": "user"})),
                set(
                    "/linux/uidMappings",
                    json!([{"containerID": 0, "hostID": 0, "size": 1}]),
                ),
            ]),
            "a user namespace needs uidMappings and gidMappings",
        ),
        (
            "namespace path missing",
            set(
                "/linux/namespaces/1",
                json!({"type": "network", "path": "/nonexistent/ns"}),
            ),
            "cannot open network namespace /nonexistent/ns: No such file or directory (os error 2)",
        ),
        (
            "hostname without a UTS namespace",
            set("/linux/namespaces", ns(&["pid", "network", "ipc", "mount"])),
            "cannot set hostname without a UTS namespace",
        ),
        (
            "unknown clock in timeOffsets",
            All(vec![
                set("/linux/namespaces/5", json!({"type": "time"})),
                set("/linux/timeOffsets", json!({"foo": {"secs": 1}})),
            ]),
            "unknown clock \"foo\" in timeOffsets",
        ),
        // --- sysctl ---
        (
            "sysctl not namespaced",
            set("/linux/sysctl", json!({"kernel.foo": "1"})),
            "sysctl \"kernel.foo\" is not namespaced and cannot be set for a container",
        ),
        (
            "net sysctl without a network namespace",
            All(vec![
                set("/linux/namespaces", ns(&["pid", "ipc", "uts", "mount"])),
                set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1"})),
            ]),
            "sysctl \"net.ipv4.ip_forward\" is not in a separate kernel namespace of the container",
        ),
        // --- seccomp ---
        (
            "unknown seccomp action",
            set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_FOO"})),
            "unknown seccomp action \"SCMP_ACT_FOO\"",
        ),
        (
            "unknown seccomp architecture",
            set(
                "/linux/seccomp",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_FOO"]}),
            ),
            "unknown seccomp architecture \"SCMP_ARCH_FOO\"",
        ),
        (
            "unknown seccomp operator",
            set(
                "/linux/seccomp",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                    "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]}),
            ),
            "unknown seccomp operator \"SCMP_CMP_FOO\"",
        ),
        (
            "seccomp argument index out of range",
            set(
                "/linux/seccomp",
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                    "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            ),
            "seccomp argument index 9 is out of range (0 to 5)",
        ),
        // --- mounts and devices ---
        (
            "bind mount source missing",
            set(
                "/mounts/2",
                json!({"destination": "/x", "type": "bind", "source": "/nonexistent/src", "options": ["rbind"]}),
            ),
            "mount /nonexistent/src on /x: ENOENT: No such file or directory",
        ),
        (
            "unknown filesystem type",
            set(
                "/mounts/2",
                json!({"destination": "/x", "type": "nosuchfs", "source": "x"}),
            ),
            "mount nosuchfs on /x: ENODEV: No such device",
        ),
        (
            "unknown rootfsPropagation",
            set("/linux/rootfsPropagation", json!("weird")),
            "unknown rootfsPropagation \"weird\"",
        ),
        (
            "relative device path",
            set(
                "/linux/devices",
                json!([{"path": "foo", "type": "c", "major": 1, "minor": 3}]),
            ),
            "device foo: the path must be absolute",
        ),
        // --- cgroups ---
        (
            "cgroupsPath names the root",
            set("/linux/cgroupsPath", json!("/")),
            "invalid cgroupsPath \"/\": it names the root cgroup",
        ),
        (
            "negative memory limit",
            set("/linux/resources", json!({"memory": {"limit": -5}})),
            "invalid memory.limit -5: must be -1 (unlimited) or at least 0",
        ),
        // --- hooks ---
        (
            "hook binary missing",
            set(
                "/hooks",
                json!({"prestart": [{"path": "/nonexistent/hook"}]}),
            ),
            "error running prestart hook /nonexistent/hook: No such file or directory (os error 2)",
        ),
    ]
}

#[test]
fn malformed_configs_give_exact_errors() {
    require_root!();
    let b = Bundle::new_raw("malformed");
    let config_path = b.dir.join("config.json");
    let mut failures = Vec::new();
    for (i, (name, edit, want)) in cases().into_iter().enumerate() {
        match &edit {
            NoFile => {
                let _ = fs::remove_file(&config_path);
            }
            Raw(text) => fs::write(&config_path, text).unwrap(),
            _ => {
                let mut config = base();
                apply(&mut config, &edit);
                fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
            }
        }
        let id = format!("{}-{i}", b.id);
        let o = b.ferry(&["create", "--bundle", b.dir_str(), &id]);
        let want = format!(
            "ferry: {}",
            want.replace("{config}", config_path.to_str().unwrap())
                .replace("{bundle}", b.dir_str())
        );
        if o.success() {
            failures.push(format!("{name}: create succeeded, expected {want:?}"));
            b.ferry(&["delete", "--force", &id]);
            continue;
        }
        let got = o.stderr.trim();
        if got != want {
            failures.push(format!("{name}:\n  want {want:?}\n  got  {got:?}"));
        }
        let left = b.state_entries();
        if !left.is_empty() {
            failures.push(format!("{name}: left state {left:?}"));
            b.ferry(&["delete", "--force", &id]);
        }
        if !wait_until(Duration::from_secs(5), || {
            procs_with_root(&b.rootfs()).is_empty()
        }) {
            failures.push(format!("{name}: left processes"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} malformed configs gave the wrong error:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
