//! Rootless containers: ferry run by an ordinary user, checked from inside;
//! the podman-style case (ferry as root of a user namespace, with a config
//! without one); and idmapped mounts.
//!
//! The tests run as root and run every ferry command as the test user
//! (`ferrytest`, or `$FERRY_TEST_USER`; scripts/deps.sh creates it with
//! ranges in /etc/subuid and /etc/subgid) through `setpriv`, on a bundle and
//! a state root that the user owns. Without root or without that user they
//! skip with a note, unless `FERRY_REQUIRE_ROOTLESS=1` makes that a failure.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `=====name=====` separated sections of a script's output.
fn sections(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("=====")
            .and_then(|l| l.strip_suffix("====="))
        {
            if let Some((k, v)) = cur.take() {
                out.insert(k, v);
            }
            cur = Some((name.to_string(), String::new()));
        } else if let Some((_, v)) = cur.as_mut() {
            v.push_str(line);
            v.push('\n');
        }
    }
    if let Some((k, v)) = cur {
        out.insert(k, v);
    }
    out
}

/// A script printing each `(name, command)` under its section header.
fn script(parts: &[(&str, &str)]) -> String {
    parts
        .iter()
        .map(|(name, cmd)| format!("echo ====={name}=====; {cmd}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An id map file's lines with the columns' padding squeezed.
fn map_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

fn config_map_lines(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{} {} {}", m["containerID"], m["hostID"], m["size"]))
        .collect()
}

/// (mount point, per-mount options, fs type) of mountinfo text.
fn mounts(text: &str) -> Vec<(String, Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            Some((
                f.get(4)?.to_string(),
                f.get(5)?.split(',').map(str::to_string).collect(),
                right.split(' ').next()?.to_string(),
            ))
        })
        .collect()
}

/// The top-most mount at `point`.
fn mount_at(mi: &[(String, Vec<String>, String)], point: &str) -> (Vec<String>, String) {
    mi.iter()
        .rev()
        .find(|m| m.0 == point)
        .map(|m| (m.1.clone(), m.2.clone()))
        .unwrap_or_else(|| panic!("no mount at {point} in {mi:#?}"))
}

fn caps_of(config: &Value, set: &str) -> u64 {
    let names: Vec<String> = config["process"]["capabilities"][set]
        .as_array()
        .map(|a| a.iter().map(|c| c.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    cap_mask(&names)
}

fn hex_caps(status: &std::collections::BTreeMap<String, String>, key: &str) -> u64 {
    u64::from_str_radix(&status[key], 16).unwrap()
}

fn overflow_id(kind: &str) -> u32 {
    fs::read_to_string(format!("/proc/sys/kernel/overflow{kind}"))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(65534)
}

const DEV_NULL: (&str, &str) = ("devnull", "stat -c '%F %t,%T' /dev/null");

// ---------------------------------------------------------------------------
// a user's own id
// ---------------------------------------------------------------------------

/// The config `ferry spec --rootless` writes runs as is (only args changed):
/// ids, file owners, capabilities and mounts as seen from inside.
#[test]
fn spec_rootless_config_runs_as_is() {
    let user = require_user!();
    let mut b = UserBundle::new("rl-spec", &user);
    // A file the user does not own shows as the overflow id.
    let host_owned = b.rootfs().join("etc/host-root-file");
    fs::write(&host_owned, "x").unwrap();
    lchown(&host_owned, 0, 0);
    let out = b.output(&script(&[
        ("uid_map", "cat /proc/self/uid_map"),
        ("gid_map", "cat /proc/self/gid_map"),
        ("id", "id"),
        (
            "owners",
            "stat -c %u:%g /bin/busybox /etc/passwd /etc/host-root-file",
        ),
        ("status", "cat /proc/self/status"),
        ("mountinfo", "cat /proc/self/mountinfo"),
        DEV_NULL,
        ("hostname", "hostname"),
        ("userns", "readlink /proc/self/ns/user"),
    ]));
    let s = sections(&out);
    let own = vec![format!("0 {} 1", user.uid)];
    assert_eq!(map_lines(&s["uid_map"]), own, "{out}");
    assert_eq!(map_lines(&s["gid_map"]), vec![format!("0 {} 1", user.gid)]);
    assert_eq!(
        map_lines(&s["uid_map"]),
        config_map_lines(b.get("/linux/uidMappings"))
    );
    assert!(
        s["id"].starts_with("uid=0(root) gid=0(root)"),
        "{}",
        s["id"]
    );
    let (ou, og) = (overflow_id("uid"), overflow_id("gid"));
    assert_eq!(
        s["owners"].lines().collect::<Vec<_>>(),
        ["0:0", "0:0", &format!("{ou}:{og}")],
        "files of the user show as root, others as the overflow id"
    );
    let status = parse_status(&s["status"]);
    let cfg = &b.config;
    assert_eq!(hex_caps(&status, "CapEff"), caps_of(cfg, "effective"));
    assert_eq!(hex_caps(&status, "CapPrm"), caps_of(cfg, "permitted"));
    assert_eq!(hex_caps(&status, "CapBnd"), caps_of(cfg, "bounding"));
    assert_eq!(hex_caps(&status, "CapInh"), caps_of(cfg, "inheritable"));
    assert_eq!(hex_caps(&status, "CapAmb"), caps_of(cfg, "ambient"));
    assert_ne!(s["userns"].trim(), host_ns("user"));
    assert_eq!(s["hostname"].trim(), "ferry");

    let mi = mounts(&s["mountinfo"]);
    let (root_opts, _) = mount_at(&mi, "/");
    assert!(
        root_opts.contains(&"ro".into()),
        "root.readonly: {root_opts:?}"
    );
    assert_eq!(mount_at(&mi, "/proc").1, "proc");
    assert_eq!(mount_at(&mi, "/dev/pts").1, "devpts");
    assert_eq!(mount_at(&mi, "/dev").1, "tmpfs");
    // No network namespace of its own: the host's /sys, bound read-only.
    let (sys_opts, sys_type) = mount_at(&mi, "/sys");
    assert_eq!(sys_type, "sysfs");
    assert!(sys_opts.contains(&"ro".into()), "/sys: {sys_opts:?}");
    // Devices are bind mounts of the host's nodes (mknod is not allowed).
    assert_eq!(s["devnull"].trim(), "character special file 1,3");
    assert_eq!(mount_at(&mi, "/dev/null").1, "devtmpfs");
    b.assert_nothing_left();
}

/// A user namespace with the user's subordinate range: the config's maps,
/// a non-root process user with groups, file owners across the range, and
/// ambient capabilities.
#[test]
fn multi_range_map_and_non_root_user() {
    let user = require_user!();
    let mut b = UserBundle::new("rl-multi", &user);
    b.multi_range_maps();
    b.readonly_root(false);
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1000, "additionalGids": [10]}),
    );
    let nbs = ["CAP_NET_BIND_SERVICE"];
    b.set(
        "/process/capabilities",
        json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": nbs, "permitted": nbs, "inheritable": nbs, "ambient": nbs,
        }),
    );
    // Container id n >= 1 is host id subuid + n - 1.
    let host = |n: u32| user.subuid.0 + n - 1;
    let hostg = |n: u32| user.subgid.0 + n - 1;
    let rootfs = b.rootfs();
    fs::create_dir_all(rootfs.join("home/tester")).unwrap();
    lchown(&rootfs.join("home/tester"), host(1000), hostg(1000));
    fs::write(rootfs.join("etc/last-id"), "").unwrap();
    lchown(
        &rootfs.join("etc/last-id"),
        host(user.subuid.1),
        hostg(user.subgid.1),
    );
    fs::write(rootfs.join("etc/unmapped"), "").unwrap();
    lchown(&rootfs.join("etc/unmapped"), host(user.subuid.1) + 1, 0);

    let out = b.output(&script(&[
        ("uid_map", "cat /proc/self/uid_map"),
        ("gid_map", "cat /proc/self/gid_map"),
        ("id", "id"),
        ("status", "cat /proc/self/status"),
        (
            "owners",
            "stat -c %u:%g /home/tester /etc/last-id /etc/unmapped /bin/busybox",
        ),
        ("write", "touch /home/tester/made-inside && echo ok"),
    ]));
    let s = sections(&out);
    assert_eq!(
        map_lines(&s["uid_map"]),
        config_map_lines(b.get("/linux/uidMappings")),
        "{out}"
    );
    assert_eq!(
        map_lines(&s["gid_map"]),
        config_map_lines(b.get("/linux/gidMappings"))
    );
    let id = s["id"].trim();
    assert!(id.starts_with("uid=1000(tester) gid=1000(tester)"), "{id}");
    assert!(id.contains("10(wheel)"), "additionalGids: {id}");
    let status = parse_status(&s["status"]);
    assert_eq!(
        status["Uid"].split_whitespace().collect::<Vec<_>>(),
        ["1000"; 4]
    );
    assert!(
        status["Groups"].split_whitespace().any(|g| g == "10"),
        "{status:?}"
    );
    let nbs_mask = cap_mask(&nbs);
    assert_eq!(hex_caps(&status, "CapAmb"), nbs_mask);
    assert_eq!(hex_caps(&status, "CapEff"), nbs_mask);
    assert_eq!(hex_caps(&status, "CapPrm"), nbs_mask);
    assert_eq!(hex_caps(&status, "CapInh"), nbs_mask);
    assert_eq!(hex_caps(&status, "CapBnd"), caps_of(&b.config, "bounding"));
    let last = user.subuid.1;
    let lastg = user.subgid.1;
    assert_eq!(
        s["owners"].lines().collect::<Vec<_>>(),
        [
            "1000:1000".to_string(),
            format!("{last}:{lastg}"),
            format!("{}:{}", overflow_id("uid"), overflow_id("gid")),
            "0:0".to_string()
        ]
    );
    assert_eq!(s["write"].trim(), "ok");
    let made = fs::metadata(rootfs.join("home/tester/made-inside")).unwrap();
    assert_eq!((made.uid(), made.gid()), (host(1000), hostg(1000)));
    b.assert_nothing_left();
}

/// Maps the user may not use are refused before anything exists.
#[test]
fn maps_outside_the_allowance_are_refused() {
    let user = require_user!();
    let mut b = UserBundle::new("rl-refuse", &user);
    b.args(&["true"]);
    let own_uid = json!([{"containerID": 0, "hostID": user.uid, "size": 1}]);
    let own_gid = json!([{"containerID": 0, "hostID": user.gid, "size": 1}]);
    let cases = [
        // host root
        (
            json!([{"containerID": 0, "hostID": 0, "size": 1}]),
            own_gid.clone(),
            "uid",
        ),
        // someone else's uid
        (
            json!([{"containerID": 0, "hostID": user.uid + 1, "size": 1}]),
            own_gid.clone(),
            "uid",
        ),
        // one id past the subordinate range
        (
            json!([
                {"containerID": 0, "hostID": user.uid, "size": 1},
                {"containerID": 1, "hostID": user.subuid.0, "size": user.subuid.1 + 1},
            ]),
            own_gid.clone(),
            "uid",
        ),
        // the user's own id, but more than one
        (
            json!([{"containerID": 0, "hostID": user.uid, "size": 2}]),
            own_gid.clone(),
            "uid",
        ),
        // gid of host root
        (
            own_uid.clone(),
            json!([{"containerID": 0, "hostID": 0, "size": 1}]),
            "gid",
        ),
    ];
    let dir = b.dir_str().to_string();
    for (uid_map, gid_map, kind) in cases {
        b.set("/linux/uidMappings", uid_map.clone());
        b.set("/linux/gidMappings", gid_map.clone());
        for cmd in ["run", "create"] {
            let id = format!("{}-{cmd}", b.id);
            let o = b.ferry(&[cmd, "--bundle", &dir, &id]);
            o.assert_one_line_error(Some("not allowed"));
            assert!(
                o.stderr.contains(&format!("{kind} mapping")),
                "the message names the {kind} mapping:\n{}",
                o.describe()
            );
            b.assert_nothing_left();
        }
    }
}

/// `run --detach`, `state`, `kill`, `delete` as the user.
#[test]
fn detach_kill_delete_as_user() {
    let user = require_user!();
    let mut b = UserBundle::new("rl-detach", &user);
    b.sh("trap 'exit 7' TERM; while :; do sleep 0.1; done");
    let (id, dir) = (b.id.clone(), b.dir_str().to_string());
    let o = b.ferry(&["run", "--detach", "--bundle", &dir, &id]);
    assert!(o.success(), "{}", o.describe());
    let state = |b: &UserBundle| -> Value {
        let o = b.ferry(&["state", &id]);
        assert!(o.success(), "{}", o.describe());
        serde_json::from_str(&o.stdout).unwrap()
    };
    let st = state(&b);
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(pid));
    let host_status = parse_status(&fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    assert_eq!(
        host_status["Uid"].split_whitespace().next(),
        Some(user.uid.to_string().as_str()),
        "the container runs as the user on the host"
    );
    let list = b.ferry(&["list", "--quiet"]);
    assert!(list.stdout.lines().any(|l| l == id), "{}", list.describe());
    let o = b.ferry(&["kill", &id, "TERM"]);
    assert!(o.success(), "{}", o.describe());
    assert!(
        wait_until(TIMEOUT, || state(&b)["status"] == "stopped"),
        "container did not stop after TERM"
    );
    let o = b.ferry(&["delete", &id]);
    assert!(o.success(), "{}", o.describe());
    assert!(wait_until(TIMEOUT, || !pid_alive(pid)));
    b.assert_nothing_left();
}

/// The default state root of a user without XDG_RUNTIME_DIR: a private dir
/// of the user's (/run/user/UID/ferry when that exists, else /tmp/ferry-UID);
/// with XDG_RUNTIME_DIR: $XDG_RUNTIME_DIR/ferry.
#[test]
fn default_state_root_of_a_user() {
    let user = require_user!();
    let mut b = UserBundle::new("rl-root", &user);
    b.args(&["sleep", "100"]);
    let run_user = PathBuf::from(format!("/run/user/{}", user.uid));
    let default = if fs::metadata(&run_user).is_ok_and(|m| m.uid() == user.uid) {
        run_user.join("ferry")
    } else {
        PathBuf::from(format!("/tmp/ferry-{}", user.uid))
    };
    let xdg = b.base.join("xdg");
    fs::create_dir(&xdg).unwrap();
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
    lchown(&xdg, user.uid, user.gid);
    let xdg_s = xdg.display().to_string();
    let (id, dir) = (b.id.clone(), b.dir_str().to_string());
    for (env, root) in [
        (vec![], default),
        (vec![("XDG_RUNTIME_DIR", xdg_s.as_str())], xdg.join("ferry")),
    ] {
        let how = How {
            env: &env,
            default_root: true,
            ..b.how()
        };
        // Deletes the container whatever happens below.
        struct Guard<'a>(&'a UserBundle, How<'a>, String);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                let _ = self.0.ferry_how(&self.1, &["delete", "--force", &self.2]);
            }
        }
        let _guard = Guard(&b, how.clone(), id.clone());
        let o = b.ferry_how(&how, &["run", "--detach", "--bundle", &dir, &id]);
        assert!(o.success(), "{}", o.describe());
        let meta = fs::symlink_metadata(&root)
            .unwrap_or_else(|e| panic!("state root {} was not made: {e}", root.display()));
        assert!(meta.is_dir());
        assert_eq!(meta.uid(), user.uid, "{} is the user's", root.display());
        assert_eq!(meta.mode() & 0o777, 0o700, "{} is private", root.display());
        assert!(root.join(&id).is_dir(), "no {id} in {}", root.display());
        let list = b.ferry_how(&how, &["list", "--quiet"]);
        assert!(list.stdout.lines().any(|l| l == id), "{}", list.describe());
        let o = b.ferry_how(&how, &["delete", "--force", &id]);
        assert!(o.success(), "{}", o.describe());
        assert!(!root.join(&id).exists());
    }
    b.assert_nothing_left();
}

// ---------------------------------------------------------------------------
// podman-style: ferry as root of an outer user namespace
// ---------------------------------------------------------------------------

/// The config of `spec --rootless` without the user namespace, as rootless
/// podman hands it to the runtime.
fn without_userns(b: &mut UserBundle) {
    b.remove_ns("user")
        .unset("/linux/uidMappings")
        .unset("/linux/gidMappings");
}

/// ferry as uid 0 of `unshare --user --map-root-user`, config without a
/// user namespace: it must not try mknod, setgroups or cgroup writes.
#[test]
fn podman_style_map_root_user() {
    let user = require_user!();
    let mut b = UserBundle::new("rl-podman", &user);
    without_userns(&mut b);
    let wrap = ["unshare", "--user", "--map-root-user"];
    let out = b.output_wrapped(
        &wrap,
        &script(&[
            ("uid_map", "cat /proc/self/uid_map"),
            ("id", "id"),
            ("status", "cat /proc/self/status"),
            ("mountinfo", "cat /proc/self/mountinfo"),
            DEV_NULL,
            ("owners", "stat -c %u:%g /bin/busybox"),
        ]),
    );
    let s = sections(&out);
    assert_eq!(map_lines(&s["uid_map"]), vec![format!("0 {} 1", user.uid)]);
    assert!(
        s["id"].starts_with("uid=0(root) gid=0(root)"),
        "{}",
        s["id"]
    );
    let status = parse_status(&s["status"]);
    assert_eq!(hex_caps(&status, "CapEff"), caps_of(&b.config, "effective"));
    assert_eq!(hex_caps(&status, "CapBnd"), caps_of(&b.config, "bounding"));
    assert_eq!(s["devnull"].trim(), "character special file 1,3");
    let mi = mounts(&s["mountinfo"]);
    assert_eq!(
        mount_at(&mi, "/dev/null").1,
        "devtmpfs",
        "a bind of the host's node"
    );
    assert_eq!(mount_at(&mi, "/proc").1, "proc");
    assert_eq!(s["owners"].trim(), "0:0");

    // The same, detached, with each command in its own outer namespace.
    b.sh("trap 'exit 0' TERM; while :; do sleep 0.1; done");
    let how = How {
        wrap: &wrap,
        ..b.how()
    };
    let (id, dir) = (b.id.clone(), b.dir_str().to_string());
    let o = b.ferry_how(&how, &["run", "--detach", "--bundle", &dir, &id]);
    assert!(o.success(), "{}", o.describe());
    let state = |b: &UserBundle| -> Value {
        serde_json::from_str(&b.ferry_how(&how, &["state", &id]).stdout).unwrap_or(Value::Null)
    };
    assert_eq!(state(&b)["status"], "running");
    let o = b.ferry_how(&how, &["kill", &id, "TERM"]);
    assert!(o.success(), "{}", o.describe());
    assert!(wait_until(TIMEOUT, || state(&b)["status"] == "stopped"));
    let o = b.ferry_how(&how, &["delete", &id]);
    assert!(o.success(), "{}", o.describe());
    b.assert_nothing_left();
}

/// Rootless podman proper: the outer namespace maps the subordinate range
/// too (through newuidmap), and the process runs as a non-root user.
#[test]
fn podman_style_with_subordinate_range() {
    let user = require_user!();
    let mut b = UserBundle::new("rl-podman-range", &user);
    without_userns(&mut b);
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let home = b.rootfs().join("home/tester");
    fs::create_dir_all(&home).unwrap();
    lchown(&home, user.subuid.0 + 999, user.subgid.0 + 999);
    let users = format!("--map-users={},1,{}", user.subuid.0, user.subuid.1);
    let groups = format!("--map-groups={},1,{}", user.subgid.0, user.subgid.1);
    let wrap = ["unshare", "--user", "--map-root-user", &users, &groups];
    let out = b.output_wrapped(
        &wrap,
        &script(&[
            ("uid_map", "cat /proc/self/uid_map"),
            ("id", "id"),
            ("owners", "stat -c %u:%g /home/tester /bin/busybox"),
            DEV_NULL,
        ]),
    );
    let s = sections(&out);
    assert_eq!(
        map_lines(&s["uid_map"]),
        vec![
            format!("0 {} 1", user.uid),
            format!("1 {} {}", user.subuid.0, user.subuid.1)
        ]
    );
    assert!(
        s["id"].starts_with("uid=1000(tester) gid=1000(tester)"),
        "{}",
        s["id"]
    );
    assert_eq!(
        s["owners"].lines().collect::<Vec<_>>(),
        ["1000:1000", "0:0"]
    );
    assert_eq!(s["devnull"].trim(), "character special file 1,3");
    b.assert_nothing_left();
}

/// Real root, but inside `unshare --user --map-user=0 --map-group=0`: ferry
/// treats that as rootless (devices bound, no mknod, no setgroups games).
#[test]
fn root_inside_a_user_namespace() {
    require_root!();
    let mut b = Bundle::new("rl-root-userns");
    b.sh(&script(&[
        ("uid_map", "cat /proc/self/uid_map"),
        ("id", "id"),
        ("mountinfo", "cat /proc/self/mountinfo"),
        DEV_NULL,
    ]));
    b.save();
    let how = How {
        wrap: &["unshare", "--user", "--map-user=0", "--map-group=0"],
        ..How::default()
    };
    let (id, dir) = (b.id.clone(), b.dir_str().to_string());
    let o = ferry_as(&b, &ferry_bin(), &how, &["run", "--bundle", &dir, &id]);
    assert!(o.success(), "{}", o.describe());
    let s = sections(&o.stdout);
    assert_eq!(map_lines(&s["uid_map"]), ["0 0 1"]);
    assert!(
        s["id"].starts_with("uid=0(root) gid=0(root)"),
        "{}",
        s["id"]
    );
    assert_eq!(s["devnull"].trim(), "character special file 1,3");
    let mi = mounts(&s["mountinfo"]);
    assert_eq!(
        mount_at(&mi, "/dev/null").1,
        "devtmpfs",
        "a bind of the host's node"
    );
    b.assert_state_root_empty();
}

// ---------------------------------------------------------------------------
// idmapped mounts
// ---------------------------------------------------------------------------

/// An idmapped bind mount entry (runc's reading: `containerID` is the id on
/// the source filesystem, `hostID` what it shows as).
fn idmap_mount(source: &Path, dest: &str, options: &[&str], uid: Value, gid: Value) -> Value {
    let mut m = json!({
        "destination": dest,
        "type": "bind",
        "source": source.to_str().unwrap(),
        "options": options,
    });
    if !uid.is_null() {
        m["uidMappings"] = uid;
        m["gidMappings"] = gid;
    }
    m
}

fn one(container: u32, host: u32, size: u32) -> Value {
    json!([{"containerID": container, "hostID": host, "size": size}])
}

/// As root: a host dir owned by 1000 shows as owned by 0 through a mount
/// mapping 1000 to 0; new files get the on-disk id back; a mapping of 0 to
/// 100000 shows 100000 (runc's "simple idmap mount [no userns]").
#[test]
fn idmapped_mount_as_root() {
    require_root!();
    let mut b = Bundle::new("idmap-root");
    let src = b.path("src1000");
    make_host_dir(&src, &[("f", "x")]);
    chown_r(&src, 1000, 1000);
    let src0 = b.path("src0");
    make_host_dir(&src0, &[("f", "x")]);
    b.readonly_root(false);
    b.add_mount(idmap_mount(
        &src,
        "/idm",
        &["bind", "idmap"],
        one(1000, 0, 1),
        one(1000, 0, 1),
    ));
    b.add_mount(idmap_mount(
        &src0,
        "/idm0",
        &["rbind", "idmap", "ro"],
        one(0, 100000, 65536),
        one(0, 100000, 65536),
    ));
    b.bind(&src, "/plain", &[]);
    let out = b.output(&script(&[
        ("idm", "stat -c %u:%g /idm /idm/f"),
        ("idm0", "stat -c %u:%g /idm0/f"),
        ("plain", "stat -c %u:%g /plain/f"),
        ("write", "touch /idm/new && echo ok"),
        ("ro", "touch /idm0/new 2>&1 || echo refused"),
        ("mountinfo", "cat /proc/self/mountinfo"),
    ]));
    let s = sections(&out);
    assert_eq!(
        s["idm"].lines().collect::<Vec<_>>(),
        ["0:0", "0:0"],
        "{out}"
    );
    assert_eq!(s["idm0"].trim(), "100000:100000");
    assert_eq!(s["plain"].trim(), "1000:1000", "a plain bind keeps the ids");
    assert_eq!(s["write"].trim(), "ok");
    assert!(s["ro"].contains("refused"), "ro applies: {}", s["ro"]);
    let meta = fs::metadata(src.join("new")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (1000, 1000),
        "stored as the on-disk id"
    );
    let mi = mounts(&s["mountinfo"]);
    assert!(
        mount_at(&mi, "/idm").0.contains(&"idmapped".into()),
        "{mi:?}"
    );
    assert!(mount_at(&mi, "/idm0").0.contains(&"ro".into()));
    b.assert_state_root_empty();
    assert!(host_mounts_mentioning(&b.base).is_empty());
}

/// As root with a user namespace: `idmap` without maps takes the
/// container's, so the container sees the ids stored on disk.
#[test]
fn idmapped_mount_in_a_user_namespace() {
    require_root!();
    let mut b = Bundle::new("idmap-userns");
    b.set_ns("user", None)
        .set("/linux/uidMappings", one(0, 100000, 65536))
        .set("/linux/gidMappings", one(0, 100000, 65536));
    chown_r(&b.rootfs(), 100000, 100000);
    let src = b.path("src");
    make_host_dir(&src, &[("f", "x"), ("g", "y")]);
    lchown(&src.join("g"), 1, 2);
    b.add_mount(idmap_mount(
        &src,
        "/idm",
        &["bind", "idmap"],
        Value::Null,
        Value::Null,
    ));
    b.bind(&src, "/plain", &[]);
    let out = b.output(&script(&[
        ("idm", "stat -c %u:%g /idm/f /idm/g"),
        ("plain", "stat -c %u:%g /plain/f"),
    ]));
    let s = sections(&out);
    assert_eq!(
        s["idm"].lines().collect::<Vec<_>>(),
        ["0:0", "1:2"],
        "{out}"
    );
    let (ou, og) = (overflow_id("uid"), overflow_id("gid"));
    assert_eq!(s["plain"].trim(), format!("{ou}:{og}"));
    b.assert_state_root_empty();
}

/// `idmap` maps the top mount only; `ridmap` the submounts too.
#[test]
fn ridmap_maps_submounts() {
    require_root!();
    let mut b = Bundle::new("idmap-rec");
    let src = b.path("src");
    make_host_dir(&src, &[("f", "x")]);
    fs::create_dir(src.join("sub")).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=755", "tmpfs"])
        .arg(src.join("sub"))
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(src.join("sub/g"), "y").unwrap();
    let map = || one(0, 3000, 10);
    b.add_mount(idmap_mount(&src, "/top", &["rbind", "idmap"], map(), map()));
    b.add_mount(idmap_mount(
        &src,
        "/rec",
        &["rbind", "ridmap"],
        map(),
        map(),
    ));
    let out = b.output(&script(&[
        ("top", "stat -c %u /top/f /top/sub/g"),
        ("rec", "stat -c %u /rec/f /rec/sub/g"),
    ]));
    let s = sections(&out);
    assert_eq!(s["top"].lines().collect::<Vec<_>>(), ["3000", "0"], "{out}");
    assert_eq!(
        s["rec"].lines().collect::<Vec<_>>(),
        ["3000", "3000"],
        "{out}"
    );
}

/// Configurations that cannot be idmapped fail with a message saying why.
#[test]
fn idmapped_mount_config_errors() {
    require_root!();
    let mut b = Bundle::new("idmap-bad");
    let src = b.path("src");
    make_host_dir(&src, &[("f", "x")]);
    b.args(&["true"]);
    let cases = [
        // idmap without maps and without a user namespace
        (
            idmap_mount(&src, "/x", &["bind", "idmap"], Value::Null, Value::Null),
            "user namespace",
        ),
        // uid maps without gid maps
        (
            json!({"destination": "/x", "type": "bind", "source": src, "options": ["bind"],
                   "uidMappings": one(0, 1000, 1)}),
            "together",
        ),
        // not a bind mount
        (
            json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                   "uidMappings": one(0, 1000, 1), "gidMappings": one(0, 1000, 1)}),
            "only bind mounts",
        ),
    ];
    let base = b.config["mounts"].clone();
    for (m, needle) in cases {
        b.set("/mounts", base.clone());
        b.add_mount(m);
        let o = b.run(&[]);
        o.assert_one_line_error(Some(needle));
        b.assert_state_root_empty();
    }
}

/// Rootless on a host filesystem the kernel refuses: a clear error, and
/// nothing left behind.
#[test]
fn idmapped_mount_refused_for_a_user() {
    let user = require_user!();
    let mut b = UserBundle::new("idmap-rl", &user);
    let src = b.path("src");
    make_host_dir(&src, &[("f", "x")]);
    chown_r(&src, user.uid, user.gid);
    b.args(&["true"]);
    let map = one(0, user.uid, 1);
    let gmap = one(0, user.gid, 1);
    b.add_mount(idmap_mount(&src, "/idm", &["bind", "idmap"], map, gmap));
    let (id, dir) = (b.id.clone(), b.dir_str().to_string());
    for cmd in ["run", "create"] {
        let o = b.ferry(&[cmd, "--bundle", &dir, &id]);
        o.assert_one_line_error(Some("idmapped mounts are not allowed here"));
        b.assert_nothing_left();
    }
}

/// Podman-style in a mount namespace of the user's own: on a tmpfs mounted
/// there (its superblock belongs to the user's namespace) the kernel allows
/// an idmapped mount, and ferry makes it.
#[test]
fn idmapped_mount_podman_style_on_tmpfs() {
    let user = require_user!();
    let mut b = UserBundle::new("idmap-podman", &user);
    without_userns(&mut b);
    let src = b.path("src");
    fs::create_dir(&src).unwrap();
    let map = one(0, 1000, 1);
    b.add_mount(idmap_mount(
        &src,
        "/idm",
        &["bind", "idmap"],
        map.clone(),
        map,
    ));
    let users = format!("--map-users={},1,{}", user.subuid.0, user.subuid.1);
    let groups = format!("--map-groups={},1,{}", user.subgid.0, user.subgid.1);
    let setup = format!(
        "mount -t tmpfs tmpfs {0} && touch {0}/f && exec \"$0\" \"$@\"",
        src.display()
    );
    let wrap = [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        &users,
        &groups,
        "sh",
        "-c",
        &setup,
    ];
    let out = b.output_wrapped(&wrap, "stat -c %u:%g /idm/f");
    assert_eq!(out.trim(), "1000:1000");
    b.assert_nothing_left();
}

/// `ferry features` announces idmapped mounts and their options.
#[test]
fn features_announce_idmap() {
    let b = Bundle::new_raw("idmap-features");
    let o = b.run_ok(&["features"]);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    let opts = v["mountOptions"].as_array().unwrap();
    for name in ["idmap", "ridmap"] {
        assert!(opts.iter().any(|o| o == name), "{name} missing: {opts:?}");
    }
}

/// `exec` as the user into the user's container, as runc does it: the
/// process is in every namespace of the init (its pid and user namespace
/// too), root of the user namespace and the user on the host, with its exit
/// status passed on; `--detach` and `--pid-file` name a live process.
#[test]
fn exec_as_user() {
    let user = require_user!();
    let mut b = UserBundle::new("rl-exec", &user);
    b.args(&["sleep", "100"]);
    let (id, dir) = (b.id.clone(), b.dir_str().to_string());
    let o = b.ferry(&["run", "--detach", "--bundle", &dir, &id]);
    assert!(o.success(), "{}", o.describe());
    let st: Value = serde_json::from_str(&b.ferry(&["state", &id]).stdout).unwrap();
    let init = st["pid"].as_i64().unwrap();
    let kinds = ["pid", "user", "mnt", "net", "ipc", "uts", "cgroup"];
    let script = "for n in pid user mnt net ipc uts cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; \
                  echo uid=$(id -u); echo self=$$";
    let o = b.ferry(&["exec", &id, "sh", "-c", script]);
    assert!(o.success(), "rootless exec failed:\n{}", o.describe());
    let seen: std::collections::BTreeMap<&str, &str> =
        o.stdout.lines().filter_map(|l| l.split_once('=')).collect();
    for kind in kinds {
        let want = fs::read_link(format!("/proc/{init}/ns/{kind}")).unwrap();
        assert_eq!(
            seen.get(kind).copied(),
            Some(want.to_str().unwrap()),
            "{kind} namespace of the exec'd process:\n{}",
            o.describe()
        );
    }
    assert_eq!(seen.get("uid"), Some(&"0"), "{}", o.describe());
    let own_pid: i64 = seen["self"].parse().unwrap();
    assert!(
        own_pid > 1,
        "pid {own_pid} in the container's pid namespace"
    );

    let o = b.ferry(&["exec", &id, "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", o.describe());

    let pid_file = b.base.join("exec.pid");
    let pid_arg = pid_file.display().to_string();
    let o = b.ferry(&[
        "exec",
        "--detach",
        "--pid-file",
        &pid_arg,
        &id,
        "sleep",
        "100",
    ]);
    assert!(o.success(), "{}", o.describe());
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let status = parse_status(&fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    assert_eq!(
        status["Uid"].split_whitespace().next(),
        Some(user.uid.to_string().as_str()),
        "the exec'd process runs as the user on the host"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        fs::read_link(format!("/proc/{init}/ns/pid")).unwrap()
    );
    let o = b.ferry(&["delete", "--force", &id]);
    assert!(o.success(), "{}", o.describe());
    assert!(
        wait_until(TIMEOUT, || !pid_alive(pid)),
        "exec'd process left"
    );
    b.assert_nothing_left();
}
