//! cgroups (v1 hybrid host): placement, resource limits, cleanup.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(5);
const CG: &str = "/sys/fs/cgroup";

fn v1() -> bool {
    Path::new(CG).join("memory/memory.limit_in_bytes").exists()
}

/// Host-side cgroup path of `pid` for a v1 controller.
fn cgroup_of(pid: i32, controller: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut p = l.splitn(3, ':');
        let _ = p.next();
        let ctrls = p.next()?;
        let path = p.next()?;
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    })
}

fn cg_dir(controller: &str, path: &str) -> PathBuf {
    Path::new(CG)
        .join(controller)
        .join(path.trim_start_matches('/'))
}

#[test]
fn cgroups_path_limits_and_cleanup() {
    require_root!();
    if !v1() {
        eprintln!("skipping: not a cgroup v1 host");
        return;
    }
    let mut b = Bundle::new("cglimits");
    let cgpath = format!("/ferry-tests-{}", b.id);
    b.set("/linux/cgroupsPath", json!(cgpath));
    b.set(
        "/linux/resources",
        json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 64 * 1024 * 1024},
            "pids": {"limit": 50},
            "cpu": {"shares": 512}
        }),
    );
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let pid = b.pid();
    for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
        assert_eq!(
            cgroup_of(pid, ctrl).as_deref(),
            Some(cgpath.as_str()),
            "{ctrl} cgroup of {pid}"
        );
    }
    let read = |ctrl: &str, file: &str| {
        fs::read_to_string(cg_dir(ctrl, &cgpath).join(file))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (64 * 1024 * 1024).to_string()
    );
    assert_eq!(read("pids", "pids.max"), "50");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    b.start();
    b.run_ok(&["delete", "--force", &b.id]);
    for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
        let d = cg_dir(ctrl, &cgpath);
        assert!(
            wait_until(SHORT, || !d.exists()),
            "cgroup {} left after delete",
            d.display()
        );
    }
}

#[test]
fn default_cgroup_is_removed_after_run() {
    require_root!();
    if !v1() {
        return;
    }
    let mut b = Bundle::new("cgdefault");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let pid = b.pid();
    let mem = cgroup_of(pid, "memory").expect("memory cgroup");
    let host_mem = cgroup_of(std::process::id() as i32, "memory").unwrap();
    assert_ne!(
        mem, host_mem,
        "container was not placed in its own memory cgroup"
    );
    assert!(
        mem.contains(&b.id),
        "default cgroup path should contain the container id: {mem}"
    );
    b.run_ok(&["delete", "--force", &b.id]);
    let d = cg_dir("memory", &mem);
    assert!(
        wait_until(SHORT, || !d.exists()),
        "cgroup {} left after delete",
        d.display()
    );
}

#[test]
fn memory_limit_visible_inside() {
    require_root!();
    if !v1() {
        return;
    }
    let mut b = Bundle::new("cginside");
    b.set(
        "/linux/cgroupsPath",
        json!(format!("/ferry-tests-{}", b.id)),
    );
    b.set(
        "/linux/resources/memory",
        json!({"limit": 32 * 1024 * 1024}),
    );
    b.set("/linux/resources/pids", json!({"limit": 40}));
    let out =
        b.output("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max");
    assert_eq!(out, format!("{}\n40\n", 32 * 1024 * 1024));
}
