//! `ferry spec`, global flags, logging.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::process::{Command, Stdio};

fn spec_in(dir: &std::path::Path, extra: &[&str]) -> Value {
    let o = Command::new(ferry_bin())
        .arg("spec")
        .args(extra)
        .arg("--bundle")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ferry spec failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = fs::read_to_string(dir.join("config.json")).expect("config.json written");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("config.json is not JSON: {e}\n{text}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

#[test]
fn spec_defaults_are_runc_like() {
    let b = Bundle::new_raw("specdefaults");
    let c = spec_in(&b.dir, &[]);
    assert!(
        c["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{c}"
    );
    assert_eq!(c["process"]["terminal"], true);
    assert_eq!(c["process"]["args"], json!(["sh"]));
    assert_eq!(c["process"]["cwd"], "/");
    assert_eq!(c["process"]["user"]["uid"], 0);
    assert_eq!(c["process"]["user"]["gid"], 0);
    assert!(
        strings(&c["process"]["env"])
            .iter()
            .any(|e| e.starts_with("PATH=")),
        "{c}"
    );
    assert_eq!(c["process"]["noNewPrivileges"], true);
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["root"]["readonly"], true);
    assert!(c["hostname"].as_str().is_some_and(|h| !h.is_empty()), "{c}");
    let caps = strings(&c["process"]["capabilities"]["bounding"]);
    for cap in ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"] {
        assert!(caps.iter().any(|x| x == cap), "{cap} missing: {caps:?}");
    }
    let rl = c["process"]["rlimits"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(rl.iter().any(|r| r["type"] == "RLIMIT_NOFILE"), "{c}");

    let ns: Vec<String> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = ns.clone();
    sorted.sort();
    // As runc: a cgroup namespace only on a cgroup v2 host.
    let mut want = vec!["ipc", "mount", "network", "pid", "uts"];
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        want.insert(0, "cgroup");
    }
    assert_eq!(sorted, want, "{ns:?}");
    assert!(
        c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.get("path").is_none())
    );

    let mounts: Vec<(String, String)> = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["destination"].as_str().unwrap().to_string(),
                m["type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for (dest, ty) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "cgroup"),
    ] {
        assert!(
            mounts.iter().any(|(d, t)| d == dest && t == ty),
            "mount {dest} ({ty}) missing: {mounts:?}"
        );
    }
    let masked = strings(&c["linux"]["maskedPaths"]);
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware",
    ] {
        assert!(
            masked.iter().any(|x| x == p),
            "maskedPaths lacks {p}: {masked:?}"
        );
    }
    let ro = strings(&c["linux"]["readonlyPaths"]);
    for p in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
    ] {
        assert!(ro.iter().any(|x| x == p), "readonlyPaths lacks {p}: {ro:?}");
    }
}

#[test]
fn spec_defaults_to_current_directory() {
    let b = Bundle::new_raw("speccwd");
    let o = Command::new(ferry_bin())
        .arg("spec")
        .current_dir(&b.dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value =
        serde_json::from_str(&fs::read_to_string(b.dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["root"]["path"], "rootfs");
}

#[test]
fn spec_rootless() {
    let b = Bundle::new_raw("specrootless");
    let c = spec_in(&b.dir, &["--rootless"]);
    let ns: Vec<String> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ns.iter().any(|n| n == "user"),
        "rootless spec needs a user namespace: {ns:?}"
    );
    let uid = unsafe { libc::geteuid() } as i64;
    let gid = unsafe { libc::getegid() } as i64;
    let um = &c["linux"]["uidMappings"][0];
    let gm = &c["linux"]["gidMappings"][0];
    assert_eq!(um["hostID"].as_i64(), Some(uid), "{c}");
    assert_eq!(um["containerID"].as_i64(), Some(0), "{c}");
    assert!(um["size"].as_i64().unwrap_or(0) >= 1, "{c}");
    assert_eq!(gm["hostID"].as_i64(), Some(gid), "{c}");
    // devpts gid=5 cannot be mapped in a rootless container
    let devpts = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/dev/pts")
        .expect("devpts");
    assert!(
        !strings(&devpts["options"]).iter().any(|o| o == "gid=5"),
        "{devpts}"
    );
}

#[test]
fn version_flag() {
    let o = Command::new(ferry_bin()).arg("--version").output().unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.to_lowercase().contains("version"), "{out}");
    assert!(
        out.contains("spec"),
        "--version should mention the OCI spec version (runc style): {out}"
    );
}

#[test]
fn json_log_file() {
    require_root!();
    let mut b = Bundle::new("jsonlog");
    let log = b.path("ferry.log");
    b.sh("true");
    b.save();
    let logs = log.to_str().unwrap();
    let o = b.ferry(&[
        "--log",
        logs,
        "--log-format",
        "json",
        "--debug",
        "run",
        "--bundle",
        b.dir_str(),
        &b.id,
    ]);
    assert!(o.success(), "{}", o.describe());
    // an error is logged too
    let o = b.ferry(&[
        "--log",
        logs,
        "--log-format",
        "json",
        "state",
        "does-not-exist-here",
    ]);
    o.assert_clean_error(Some("does not exist"));
    let text = fs::read_to_string(&log).expect("log file written");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "--debug run wrote nothing to the log");
    for l in &lines {
        let v: Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"));
        assert!(
            v["level"].is_string() && v["msg"].is_string(),
            "log line lacks level/msg: {l}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("does not exist") && l.contains("error")),
        "the error was not logged:\n{text}"
    );
}

#[test]
fn text_log_file() {
    require_root!();
    let b = Bundle::new("textlog");
    let log = b.path("ferry-text.log");
    let o = b.ferry(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "text",
        "state",
        "nope",
    ]);
    o.assert_clean_error(Some("does not exist"));
    let text = fs::read_to_string(&log).expect("log file written");
    assert!(text.contains("does not exist"), "{text}");
    assert!(
        serde_json::from_str::<Value>(text.lines().next().unwrap_or("")).is_err(),
        "text log should not be JSON: {text}"
    );
}

#[test]
fn root_dir_is_created_if_missing() {
    require_root!();
    let mut b = Bundle::new("newroot");
    let root = b.path("fresh/nested/root");
    b.args(&["sleep", "30"]);
    b.save();
    let run = |args: &[&str]| -> std::process::ExitStatus {
        let mut c = Command::new(ferry_bin())
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_timeout(&mut c, TIMEOUT).unwrap_or_else(|| {
            let _ = c.kill();
            panic!("ferry {args:?} timed out")
        })
    };
    assert!(
        run(&["create", "--bundle", b.dir_str(), &b.id]).success(),
        "create with a missing --root dir failed"
    );
    assert!(
        root.join(&b.id).exists() || fs::read_dir(&root).map(|d| d.count() > 0).unwrap_or(false),
        "no state under the new root"
    );
    let st = Command::new(ferry_bin())
        .arg("--root")
        .arg(&root)
        .args(["state", &b.id])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(run(&["delete", "--force", &b.id]).success());
}
