//! Attacks through devices and the console, run end to end: a node listed
//! in `linux.devices` used past a deny-all device cgroup, a `/dev/console`
//! symlink in the rootfs redirecting the pty mount, and a device path with
//! `..` that brings a host file into a user-namespaced container.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

/// runc's own test: `linux.resources.devices` denies everything, and
/// `/dev/kmsg` is listed in `linux.devices`. The node exists, but the
/// container must not be able to write the host's kernel log through it.
#[test]
fn listed_kmsg_is_not_writable_under_deny_all() {
    require_root!();
    let mut b = Bundle::new("atk-kmsg");
    b.set(
        "/linux/resources/devices",
        json!([{"allow": false, "access": "rwm"}]),
    );
    b.set(
        "/linux/devices",
        json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11,
                "fileMode": 0o666, "uid": 0, "gid": 0}]),
    );
    let out = b.output(
        "[ -c /dev/kmsg ] && echo node-present; \
         (echo ferry-attack-devices-test > /dev/kmsg) 2>/dev/null && echo WROTE || echo write-denied; \
         (exec 3</dev/kmsg) 2>/dev/null && echo OPENED-FOR-READ || echo read-denied",
    );
    assert_eq!(out, "node-present\nwrite-denied\nread-denied\n");
}

/// A bundle whose config mounts nothing on `/dev` (the rootfs's own `/dev`
/// is used) and whose rootfs holds `/dev/console -> target`; the process
/// runs on a terminal and writes `verdict_script`'s output to `/verdict`.
fn console_symlink_bundle(name: &str, target: &str, verdict_script: &str) -> Bundle {
    let mut b = Bundle::new(name);
    let mounts: Vec<serde_json::Value> = b.get("/mounts").as_array().unwrap().clone();
    let kept: Vec<serde_json::Value> = mounts
        .into_iter()
        .filter(|m| m["destination"] != "/dev")
        .collect();
    b.set("/mounts", json!(kept));
    let dev = b.rootfs().join("dev");
    fs::create_dir_all(&dev).unwrap();
    let _ = fs::remove_file(dev.join("console"));
    std::os::unix::fs::symlink(target, dev.join("console")).unwrap();
    b.set("/process/terminal", json!(true));
    b.readonly_root(false);
    b.sh(&format!("({verdict_script}) > /verdict 2>&1"));
    b
}

/// Create and start the console bundle. Returns the verdict the container
/// wrote, or `None` when ferry refused to create it (after checking the
/// refusal is one clean line about /dev/console and left nothing behind).
fn run_console_attack(b: &Bundle) -> Option<String> {
    let sock = b.path("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver =
        std::thread::spawn(move || receive_console_fd(listener, Duration::from_secs(15)));
    let mut args = vec!["create", "--bundle", b.dir_str()];
    args.extend(["--console-socket", sock.to_str().unwrap(), &b.id]);
    let created = b.ferry(&args);
    if !created.success() {
        created.assert_one_line_error(Some("/dev/console"));
        let left = b.state_entries();
        assert!(
            left.is_empty(),
            "a refused container left state behind: {left:?}"
        );
        return None;
    }
    let _master = receiver.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    b.start();
    b.wait_status("stopped", Duration::from_secs(10));
    Some(fs::read_to_string(b.rootfs().join("verdict")).unwrap_or_default())
}

/// `/dev/console` in the rootfs is a symlink to a file of the rootfs: the
/// pty must not be mounted over that file (runc 1.2.8 refuses the
/// container; so does ferry).
#[test]
fn console_symlink_does_not_redirect_the_pty_mount() {
    require_root!();
    let b = console_symlink_bundle(
        "atk-console",
        "/etc/precious",
        "stat -c %F /etc/precious; grep -c ' /etc/precious ' /proc/self/mountinfo",
    );
    let precious = b.rootfs().join("etc/precious");
    fs::write(&precious, "keep me\n").unwrap();
    if let Some(verdict) = run_console_attack(&b) {
        assert_eq!(
            verdict, "regular file\n0\n",
            "the pty was mounted over the symlink's target"
        );
    }
    assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me\n");
}

/// The same through `/proc/sys/kernel/core_pattern` (the CVE-2025-52565
/// target). Only read here: nothing in this test writes the host's value.
#[test]
fn console_symlink_to_core_pattern_is_refused() {
    require_root!();
    let before = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let b = console_symlink_bundle(
        "atk-console-core",
        "/proc/sys/kernel/core_pattern",
        "stat -c %F /proc/sys/kernel/core_pattern; grep -c core_pattern /proc/self/mountinfo",
    );
    if let Some(verdict) = run_console_attack(&b) {
        assert_eq!(
            verdict, "regular file\n0\n",
            "the pty was mounted over /proc/sys/kernel/core_pattern"
        );
    }
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
}

/// In a user namespace devices are bind-mounted from the host. A device
/// path with `..` (`/dev/../tmp/…`) must not bring a host file in: the
/// container must not read the host's secret through its "device".
#[test]
fn dotdot_device_path_does_not_bind_a_host_file() {
    require_root!();
    let host_dir = Path::new("/tmp").join(format!("ferry-atk-dev-{}", std::process::id()));
    fs::create_dir_all(&host_dir).unwrap();
    let secret = host_dir.join("secret");
    fs::write(&secret, "HOST-SECRET\n").unwrap();
    let mut b = Bundle::new("atk-dotdot");
    b.set_ns("user", None);
    for key in ["uidMappings", "gidMappings"] {
        b.set(
            &format!("/linux/{key}"),
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        );
    }
    let inside = format!("/dev/..{}", secret.display());
    b.set(
        "/linux/devices",
        json!([{"path": inside, "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}]),
    );
    b.sh(&format!("cat {} 2>&1; true", secret.display()));
    let out = b.run(&[]);
    let _ = fs::remove_dir_all(&host_dir);
    assert!(
        !out.stdout.contains("HOST-SECRET"),
        "the container read a host file through a device entry:\n{}",
        out.describe()
    );
    if !out.success() {
        out.assert_one_line_error(Some("device"));
    }
}

/// The control case: a regular file at `/dev/console` in the rootfs is a
/// fine mount target, and the container's `/dev/console` is its pty.
#[test]
fn console_regular_file_gets_the_pty() {
    require_root!();
    let b = console_symlink_bundle("console-regular", "/unused", "stat -c %F /dev/console; tty");
    let console = b.rootfs().join("dev/console");
    fs::remove_file(&console).unwrap();
    fs::write(&console, "").unwrap();
    let verdict = run_console_attack(&b).expect("a regular /dev/console was refused");
    assert_eq!(verdict, "character special file\n/dev/pts/0\n");
}
