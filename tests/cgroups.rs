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
        common::skip("this test: not a cgroup v1 host");
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

// ---------------------------------------------------------------------------
// Enforcement, commands and errors.
// ---------------------------------------------------------------------------

/// A bundle placed in `/ferry-tests-ID` (removed by the test's checks).
fn cg_bundle(name: &str) -> (Bundle, String) {
    let mut b = Bundle::new(name);
    let path = format!("/ferry-tests-{}", b.id);
    b.set("/linux/cgroupsPath", json!(path));
    (b, path)
}

/// No directory of `path` is left in any v1 hierarchy.
fn assert_no_cgroup(path: &str) {
    for ctrl in [
        "memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "systemd",
    ] {
        let d = cg_dir(ctrl, path);
        assert!(
            wait_until(SHORT, || !d.exists()),
            "cgroup {} left behind",
            d.display()
        );
    }
}

fn read_cg(ctrl: &str, path: &str, file: &str) -> String {
    fs::read_to_string(cg_dir(ctrl, path).join(file))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    require_root!();
    if !v1() {
        return;
    }
    let (mut b, path) = cg_bundle("cgforkloop");
    b.set("/linux/resources/pids", json!({"limit": 8}));
    // busybox sh gives up at the first failed fork.
    b.sh("i=0; while [ $i -lt 30 ]; do sleep 30 & i=$((i+1)); echo $i; done; echo loop-done");
    let created = b.create(&[]);
    b.start();
    b.wait_status("stopped", Duration::from_secs(10));
    let out = created.stdout_now();
    let last: u32 = out
        .lines()
        .filter_map(|l| l.parse().ok())
        .next_back()
        .unwrap_or(0);
    assert!(
        !out.contains("loop-done") && (1..8).contains(&last),
        "forks went on past the limit:\n{out}"
    );
    let failed: u32 = read_cg("pids", &path, "pids.events")
        .strip_prefix("max ")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(failed > 0, "no fork was refused");
    b.run_ok(&["delete", &b.id]);
    assert_no_cgroup(&path);
}

#[test]
fn memory_limit_oom_kills_and_events_reports_it() {
    require_root!();
    if !v1() {
        return;
    }
    let (mut b, path) = cg_bundle("cgoom");
    let limit = 32 * 1024 * 1024;
    b.set(
        "/linux/resources/memory",
        json!({"limit": limit, "swap": limit}),
    );
    b.sh("sleep 1; head -c 200m /dev/zero | tail > /dev/null; echo status=$?; sleep 1");
    b.create(&[]);
    let events = b.spawn(&["events", "--interval", "500ms", &b.id]);
    std::thread::sleep(Duration::from_millis(200));
    let created = b.run_ok(&["start", &b.id]);
    let _ = created;
    b.wait_status("stopped", Duration::from_secs(20));
    let ev = events.wait(Duration::from_secs(10));
    let lines: Vec<Value> = ev
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "oom" && v["id"] == b.id.as_str()),
        "no oom event:\n{}",
        ev.describe()
    );
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "stats" && v["data"]["memory"]["usage"]["limit"] == limit),
        "no stats event with the memory limit:\n{}",
        ev.describe()
    );
    b.run_ok(&["delete", &b.id]);
    assert_no_cgroup(&path);
}

#[test]
fn oom_kill_status_is_visible_in_the_container() {
    require_root!();
    if !v1() {
        return;
    }
    let (mut b, path) = cg_bundle("cgoomrun");
    b.set(
        "/linux/resources/memory",
        json!({"limit": 16 * 1024 * 1024}),
    );
    let out = b.output("head -c 100m /dev/zero | tail > /dev/null; echo status=$?");
    assert_eq!(
        out.trim(),
        "status=137",
        "tail should be SIGKILLed by the OOM killer"
    );
    assert_no_cgroup(&path);
}

#[test]
fn pause_and_resume_use_the_freezer() {
    require_root!();
    if !v1() {
        return;
    }
    let (mut b, path) = cg_bundle("cgpause");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    b.run_ok(&["pause", &b.id]);
    assert_eq!(b.status(), "paused");
    assert_eq!(read_cg("freezer", &path, "freezer.state"), "FROZEN");
    let list = b.run_ok(&["list", "--format", "json"]);
    assert!(list.stdout.contains("\"paused\""), "{}", list.describe());
    b.run_fail(&["pause", &b.id])
        .assert_clean_error(Some("paused"));
    b.run_fail(&["delete", &b.id])
        .assert_clean_error(Some("paused"));
    b.run_ok(&["resume", &b.id]);
    assert_eq!(b.status(), "running");
    assert_eq!(read_cg("freezer", &path, "freezer.state"), "THAWED");
    b.run_fail(&["resume", &b.id])
        .assert_clean_error(Some("not paused"));
    // A paused container can still be force-deleted.
    b.run_ok(&["pause", &b.id]);
    b.run_ok(&["delete", "--force", &b.id]);
    assert_no_cgroup(&path);
}

#[test]
fn update_changes_live_limits() {
    require_root!();
    if !v1() {
        return;
    }
    let (mut b, path) = cg_bundle("cgupdate");
    b.set("/linux/resources/memory", json!({"limit": 64 << 20}));
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    b.run_ok(&[
        "update",
        "--memory",
        "100m",
        "--pids-limit",
        "20",
        "--cpu-share",
        "256",
        &b.id,
    ]);
    assert_eq!(
        read_cg("memory", &path, "memory.limit_in_bytes"),
        (100u64 << 20).to_string()
    );
    assert_eq!(read_cg("pids", &path, "pids.max"), "20");
    assert_eq!(read_cg("cpu", &path, "cpu.shares"), "256");
    // The engines' form: a resources document, from a file and from stdin.
    let file = b.path("res.json");
    fs::write(
        &file,
        r#"{"memory":{"limit":134217728},"cpu":{"quota":50000,"period":100000}}"#,
    )
    .unwrap();
    b.run_ok(&["update", "--resources", file.to_str().unwrap(), &b.id]);
    assert_eq!(
        read_cg("memory", &path, "memory.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(read_cg("cpu", &path, "cpu.cfs_quota_us"), "50000");
    fs::write(&file, r#"{"pids":{"limit":-1}}"#).unwrap();
    let o = b.ferry_with(&["update", "--resources", "-", &b.id], |c| {
        c.stdin(fs::File::open(&file).unwrap());
    });
    assert!(o.success(), "{}", o.describe());
    assert_eq!(read_cg("pids", &path, "pids.max"), "max");
    b.run_fail(&["update", "--memory", "-5", &b.id])
        .assert_clean_error(Some("size"));
    b.run_ok(&["delete", "--force", &b.id]);
    assert_no_cgroup(&path);
}

#[test]
fn ps_lists_the_container_processes() {
    require_root!();
    if !v1() {
        return;
    }
    let (mut b, path) = cg_bundle("cgps");
    b.sh("sleep 30 & exec sleep 31");
    b.create(&[]);
    b.start();
    let init = b.pid();
    let mut pids: Vec<i64> = Vec::new();
    assert!(
        wait_until(SHORT, || {
            let o = b.run_ok(&["ps", "--format", "json", &b.id]);
            pids = serde_json::from_str(&o.stdout).unwrap_or_default();
            pids.len() == 2
        }),
        "ps should list 2 processes, got {pids:?}"
    );
    assert!(pids.contains(&(init as i64)));
    let procs: Vec<i64> = read_cg("pids", &path, "cgroup.procs")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    for p in &pids {
        assert!(procs.contains(p), "{p} not in the cgroup {procs:?}");
    }
    let table = b.run_ok(&["ps", &b.id]);
    assert!(
        table.stdout.lines().next().unwrap_or("").contains("PID"),
        "{}",
        table.describe()
    );
    assert_eq!(table.stdout.lines().count(), 3, "{}", table.describe());
    b.run_ok(&["delete", "--force", &b.id]);
}

#[test]
fn kill_all_reaches_a_process_that_forked_away() {
    require_root!();
    if !v1() {
        return;
    }
    // No pid namespace: only the cgroup knows the daemonized child.
    let (mut b, path) = cg_bundle("cgkillall");
    b.remove_ns("pid");
    b.sh("setsid sh -c 'sleep 100 & exit 0'; exec sleep 101");
    b.create(&[]);
    b.start();
    let mut pids: Vec<i32> = Vec::new();
    assert!(wait_until(SHORT, || {
        pids = read_cg("pids", &path, "cgroup.procs")
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect();
        pids.len() == 2
    }));
    b.run_ok(&["kill", "--all", &b.id, "KILL"]);
    for p in &pids {
        assert!(
            wait_until(SHORT, || !pid_alive(*p)),
            "pid {p} survived kill --all"
        );
    }
    b.run_ok(&["delete", &b.id]);
    assert_no_cgroup(&path);
}

#[test]
fn failed_creates_leave_no_cgroup() {
    require_root!();
    if !v1() {
        return;
    }
    // Refused by the kernel after the cgroup was made.
    let (mut b, path) = cg_bundle("cgfailkernel");
    b.set("/linux/resources/cpu", json!({"shares": 1_000_000}));
    b.args(&["true"]);
    b.run_fail(&["create", "--bundle", b.dir_str(), &b.id])
        .assert_clean_error(Some("cpu.shares"));
    assert_no_cgroup(&path);
    b.assert_no_state(&b.id);
    // The init fails after it joined the cgroup.
    let (mut b, path) = cg_bundle("cgfailinit");
    b.args(&["/nonexistent/binary"]);
    b.run_fail(&["create", "--bundle", b.dir_str(), &b.id])
        .assert_clean_error(None);
    assert_no_cgroup(&path);
}

#[test]
fn bad_resource_values_are_clear_errors() {
    require_root!();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/linux/resources/memory",
            json!({"limit": -5}),
            "memory.limit",
        ),
        ("/linux/resources/pids", json!({"limit": -7}), "pids.limit"),
        (
            "/linux/resources/memory",
            json!({"swappiness": 200}),
            "swappiness",
        ),
        (
            "/linux/resources/devices",
            json!([{"allow": true, "type": "x", "access": "rwm"}]),
            "unknown variant",
        ),
        (
            "/linux/resources/devices",
            json!([{"allow": true, "type": "c", "access": "rwx"}]),
            "device access",
        ),
        (
            "/linux/resources/unified",
            json!({"foo.bar": "1"}),
            "unknown controller \"foo\"",
        ),
        (
            "/linux/resources/blockIO",
            json!({"weight": 5}),
            "blockIO.weight",
        ),
        (
            "/linux/resources/hugepageLimits",
            json!([{"pageSize": "2M", "limit": 1}]),
            "hugepage size",
        ),
    ];
    for (ptr, value, needle) in cases {
        let (mut b, path) = cg_bundle("cgbad");
        b.set(ptr, value.clone());
        b.args(&["true"]);
        b.run_fail(&["create", "--bundle", b.dir_str(), &b.id])
            .assert_one_line_error(Some(needle));
        if v1() {
            assert_no_cgroup(&path);
        }
    }
}

#[test]
fn unavailable_controllers_are_named() {
    require_root!();
    if !v1() {
        return;
    }
    let mounted = |c: &str| Path::new(CG).join(c).exists();
    let mut cases: Vec<(&str, Value, &str)> = vec![];
    if !mounted("hugetlb") {
        cases.push((
            "/linux/resources/hugepageLimits",
            json!([{"pageSize": "2MB", "limit": 0}]),
            "hugetlb",
        ));
    }
    if !mounted("net_cls") && !mounted("net_cls,net_prio") {
        cases.push(("/linux/resources/network", json!({"classID": 1}), "net_cls"));
    }
    cases.push((
        "/linux/resources/unified",
        json!({"memory.high": "1000000"}),
        "v1",
    ));
    for (ptr, value, needle) in cases {
        let (mut b, path) = cg_bundle("cgnoctl");
        b.set(ptr, value);
        b.args(&["true"]);
        b.run_fail(&["create", "--bundle", b.dir_str(), &b.id])
            .assert_one_line_error(Some(needle));
        assert_no_cgroup(&path);
    }
}

#[test]
fn systemd_driver_without_systemd_is_refused() {
    require_root!();
    if Path::new("/run/systemd/system").exists() {
        return;
    }
    let mut b = Bundle::new("cgsystemd");
    b.set("/linux/cgroupsPath", json!("system.slice:ferry:x"));
    b.args(&["true"]);
    b.run_fail(&["--systemd-cgroup", "create", "--bundle", b.dir_str(), &b.id])
        .assert_one_line_error(Some("systemd not running"));
    b.assert_no_state(&b.id);
}

#[test]
fn more_v1_limits_read_back() {
    require_root!();
    if !v1() {
        return;
    }
    let (mut b, path) = cg_bundle("cgmore");
    let dev = fs::read_to_string("/proc/partitions")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.first()?.parse::<i64>().ok()?,
                f.get(1)?.parse::<i64>().ok()?,
            ))
        });
    let mut blkio = json!({});
    if let Some((maj, min)) = dev {
        blkio = json!({"throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}]});
    }
    b.set(
        "/linux/resources",
        json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20, "swappiness": 10, "disableOOMKiller": true},
            "cpu": {"shares": 300, "quota": 20000, "period": 50000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 77},
            "blockIO": blkio
        }),
    );
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let checks = [
        ("memory", "memory.limit_in_bytes", (64u64 << 20).to_string()),
        (
            "memory",
            "memory.soft_limit_in_bytes",
            (32u64 << 20).to_string(),
        ),
        (
            "memory",
            "memory.memsw.limit_in_bytes",
            (96u64 << 20).to_string(),
        ),
        ("memory", "memory.swappiness", "10".into()),
        ("cpu", "cpu.shares", "300".into()),
        ("cpu", "cpu.cfs_quota_us", "20000".into()),
        ("cpu", "cpu.cfs_period_us", "50000".into()),
        ("cpuset", "cpuset.cpus", "0".into()),
        ("pids", "pids.max", "77".into()),
    ];
    for (ctrl, file, want) in checks {
        assert_eq!(read_cg(ctrl, &path, file), want, "{ctrl}/{file}");
    }
    assert!(read_cg("memory", &path, "memory.oom_control").contains("oom_kill_disable 1"));
    if let Some((maj, min)) = dev {
        assert_eq!(
            read_cg("blkio", &path, "blkio.throttle.read_bps_device"),
            format!("{maj}:{min} 1048576")
        );
    }
    let devices = read_cg("devices", &path, "devices.list");
    assert!(devices.contains("c 1:3 rwm"), "{devices}");
    assert!(!devices.contains("a *:* rwm"), "{devices}");
    let stats = b.run_ok(&["events", "--stats", &b.id]);
    let ev: Value = serde_json::from_str(stats.stdout.trim()).expect("stats JSON");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["limit"], 77);
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 64u64 << 20);
    b.run_ok(&["delete", "--force", &b.id]);
    assert_no_cgroup(&path);
}

#[test]
fn devices_are_enforced_inside() {
    require_root!();
    if !v1() {
        return;
    }
    let (mut b, path) = cg_bundle("cgdevices");
    let caps = json!(["CAP_MKNOD", "CAP_KILL"]);
    for set in ["bounding", "effective", "permitted"] {
        b.set(&format!("/process/capabilities/{set}"), caps.clone());
    }
    // Default list: /dev/null works; mknod is allowed, but a block device
    // that is not listed cannot be opened.
    let out = b.output("echo x > /dev/null && echo null-ok; mknod /dev/blk b 7 0 && (head -c1 /dev/blk >/dev/null 2>&1 && echo blk-open || echo blk-denied)");
    assert!(out.contains("null-ok"), "{out}");
    assert!(out.contains("blk-denied"), "{out}");
    assert_no_cgroup(&path);
}

#[test]
fn features_document_is_json() {
    let b = Bundle::new_raw("cgfeatures");
    let o = b.run_ok(&["features"]);
    let v: Value = serde_json::from_str(&o.stdout).expect("features JSON");
    assert_eq!(v["ociVersionMax"], "1.2.1");
    assert_eq!(v["linux"]["cgroup"]["v1"], true);
    assert_eq!(v["linux"]["cgroup"]["v2"], true);
    assert!(
        v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "cgroup")
    );
}

// ---------------------------------------------------------------------------
// v1 and hybrid behaviour that engines and conformance suites expect.
// ---------------------------------------------------------------------------

/// Whether this host also mounts the (unified) cgroup2 hierarchy.
fn hybrid() -> bool {
    v1() && Path::new(CG).join("unified/cgroup.procs").exists()
}

/// Remove a cgroup directory made by the test itself (thawed first).
fn rm_cg(dir: &Path) {
    let _ = fs::write(dir.join("freezer.state"), "THAWED");
    let _ = fs::remove_dir(dir);
}

#[test]
fn own_cgroup_is_mounted_without_a_cgroup_namespace() {
    require_root!();
    if !v1() {
        common::skip("this test: not a cgroup v1 host");
        return;
    }
    let (mut b, _path) = cg_bundle("cgownmount");
    b.remove_ns("cgroup");
    b.set(
        "/linux/resources",
        json!({"pids": {"limit": 42}, "memory": {"limit": 48 << 20}}),
    );
    let out = b.output(
        "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         cat /sys/fs/cgroup/pids/cgroup.procs | wc -l",
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[..2], ["42", &(48u64 << 20).to_string()], "{out}");
    // Only the container's own processes (sh and wc), not the host's.
    let procs: usize = lines[2].parse().unwrap();
    assert!(procs <= 3, "the container sees {procs} processes: {out}");
}

#[test]
fn hybrid_host_puts_the_container_in_the_unified_hierarchy() {
    require_root!();
    if !hybrid() {
        common::skip("this test: not a hybrid cgroup host");
        return;
    }
    let (mut b, path) = cg_bundle("cgunified");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let text = fs::read_to_string(format!("/proc/{}/cgroup", b.pid())).unwrap();
    assert!(
        text.lines().any(|l| l == format!("0::{path}")),
        "init is not in {path} of the unified hierarchy:\n{text}"
    );
    let exec = b.run_ok(&["exec", &b.id, "cat", "/proc/self/cgroup"]);
    assert!(
        exec.stdout.lines().any(|l| l == format!("0::{path}")),
        "exec'd process is not in the unified cgroup:\n{}",
        exec.stdout
    );
    b.run_ok(&["delete", "--force", &b.id]);
    let dir = cg_dir("unified", &path);
    assert!(
        wait_until(SHORT, || !dir.exists()),
        "{} left",
        dir.display()
    );
}

#[test]
fn realtime_runtime_fits_under_new_parents() {
    require_root!();
    if !v1() || !Path::new(CG).join("cpu/cpu.rt_runtime_us").exists() {
        common::skip("this test: no cgroup v1 real-time group scheduling");
        return;
    }
    let mut b = Bundle::new("cgrt");
    let parent = format!("/ferry-tests-{}", b.id);
    let path = format!("{parent}/child");
    b.set("/linux/cgroupsPath", json!(path));
    b.set(
        "/linux/resources/cpu",
        json!({"realtimePeriod": 1_000_000, "realtimeRuntime": 20_000}),
    );
    b.remove_ns("cgroup");
    let out =
        b.output("cat /sys/fs/cgroup/cpu/cpu.rt_period_us /sys/fs/cgroup/cpu/cpu.rt_runtime_us");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1000000", "20000"]
    );
    assert_no_cgroup(&parent);
}

#[test]
fn cpuset_of_an_uninitialised_parent_is_filled_in() {
    require_root!();
    if !v1() {
        common::skip("this test: not a cgroup v1 host");
        return;
    }
    let mut b = Bundle::new("cgcpuset");
    let parent = format!("/ferry-tests-{}", b.id);
    // A parent made by someone else, without cpus or memory nodes.
    let pdir = cg_dir("cpuset", &parent);
    fs::create_dir(&pdir).unwrap();
    assert_eq!(read_cg("cpuset", &parent, "cpuset.cpus"), "");
    b.set("/linux/cgroupsPath", json!(format!("{parent}/child")));
    b.remove_ns("cgroup");
    let o = b.run(&[]);
    let root_cpus = read_cg("cpuset", "/", "cpuset.cpus");
    let parent_cpus = read_cg("cpuset", &parent, "cpuset.cpus");
    rm_cg(&pdir);
    assert!(o.success(), "{}", o.describe());
    assert_eq!(parent_cpus, root_cpus);
    b.sh("cat /sys/fs/cgroup/cpuset/cpuset.cpus");
    let o = b.run(&[]);
    rm_cg(&pdir);
    assert!(o.success(), "{}", o.describe());
    assert_eq!(o.stdout.trim(), root_cpus);
}

#[test]
fn frozen_cgroup_is_refused_not_waited_on() {
    require_root!();
    if !v1() {
        common::skip("this test: not a cgroup v1 host");
        return;
    }
    let (mut b, path) = cg_bundle("cgfrozen");
    let fdir = cg_dir("freezer", &path);
    fs::create_dir(&fdir).unwrap();
    fs::write(fdir.join("freezer.state"), "FROZEN").unwrap();
    b.args(&["true"]);
    let o = b.ferry(&["run", "-d", "--bundle", b.dir_str(), &b.id]);
    let left_frozen = read_cg("freezer", &path, "freezer.state");
    rm_cg(&fdir);
    o.assert_clean_error(Some("frozen"));
    assert_eq!(left_frozen, "FROZEN", "the cgroup that was there must stay");
    b.assert_no_state(&b.id);
    assert_no_cgroup(&path);
}

#[test]
fn non_empty_cgroup_is_used_with_a_warning() {
    require_root!();
    if !v1() {
        common::skip("this test: not a cgroup v1 host");
        return;
    }
    let (mut b, path) = cg_bundle("cgnonempty");
    let pdir = cg_dir("pids", &path);
    fs::create_dir(&pdir).unwrap();
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    fs::write(pdir.join("cgroup.procs"), other.id().to_string()).unwrap();
    b.args(&["true"]);
    let o = b.run(&[]);
    let _ = other.kill();
    let _ = other.wait();
    assert!(wait_until(SHORT, || fs::remove_dir(&pdir).is_ok() || !pdir.exists()));
    assert!(o.success(), "{}", o.describe());
    assert!(o.stderr.contains("not empty"), "{}", o.describe());
    assert_no_cgroup(&path);
}

#[test]
fn delete_force_removes_sub_cgroups() {
    require_root!();
    if !v1() {
        common::skip("this test: not a cgroup v1 host");
        return;
    }
    let (mut b, path) = cg_bundle("cgsubs");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let pid = b.pid();
    let mut ctrls = vec!["pids", "memory", "freezer", "cpu"];
    if hybrid() {
        ctrls.push("unified");
    }
    for c in &ctrls {
        fs::create_dir_all(cg_dir(c, &path).join("a/b")).unwrap();
    }
    fs::write(
        cg_dir("pids", &path).join("a/b/cgroup.procs"),
        pid.to_string(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    b.run_ok(&["delete", "--force", &b.id]);
    assert!(
        started.elapsed() < SHORT,
        "delete took {:?}",
        started.elapsed()
    );
    assert!(wait_until(SHORT, || !pid_alive(pid)), "init {pid} survived");
    for c in &ctrls {
        let d = cg_dir(c, &path);
        assert!(!d.exists(), "{} left behind", d.display());
    }
    b.assert_no_state(&b.id);
}

#[test]
fn unified_resources_on_v1_are_an_invalid_configuration() {
    require_root!();
    if !v1() {
        common::skip("this test: not a cgroup v1 host");
        return;
    }
    let (mut b, path) = cg_bundle("cgunifiedv1");
    b.set(
        "/linux/resources/unified",
        json!({"memory.high": "1000000"}),
    );
    b.args(&["true"]);
    b.run_fail(&["run", "--bundle", b.dir_str(), &b.id])
        .assert_one_line_error(Some("invalid configuration"));
    assert_no_cgroup(&path);
    b.assert_no_state(&b.id);
}

#[test]
fn update_accepts_any_device_rules_like_runc() {
    require_root!();
    if !v1() {
        common::skip("this test: not a cgroup v1 host");
        return;
    }
    let (mut b, path) = cg_bundle("cgupdev");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let before = read_cg("devices", &path, "devices.list");
    let file = b.path("resources.json");
    for access in ["", "rwm", "mrw", "x"] {
        let doc = json!({
            "devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": access}],
            "pids": {"limit": 33}
        });
        fs::write(&file, doc.to_string()).unwrap();
        b.run_ok(&["update", "--resources", file.to_str().unwrap(), &b.id]);
        assert_eq!(read_cg("pids", &path, "pids.max"), "33");
        assert_eq!(read_cg("devices", &path, "devices.list"), before);
    }
    b.run_ok(&["delete", "--force", &b.id]);
    assert_no_cgroup(&path);
}
