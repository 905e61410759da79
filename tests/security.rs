//! Hardening regressions: each test fails when its protection is removed.
#[macro_use]
mod common;

use common::*;
use serde_json::json;

/// CVE-2019-5736: while the init waits for `start` it still runs ferry's
/// binary. A process in the container must not reach that binary through
/// /proc/1/exe (without the non-dumpable init, this read succeeds: the
/// init has already dropped to the same capabilities and user).
#[test]
fn container_cannot_open_the_runtime_binary_of_a_waiting_init() {
    require_root!();
    let mut b = Bundle::new("cve-2019-5736");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let out = b.run_ok(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "if cat /proc/1/exe > /dev/null 2>&1; then echo reachable; else echo denied; fi; \
         if [ -w /proc/1/exe ]; then echo writable; fi",
    ]);
    assert_eq!(out.stdout.trim(), "denied", "{}", out.describe());
    b.run_ok(&["delete", "--force", &b.id]);
}

/// CVE-2024-21626: a cwd through a /proc/self/fd magic link would land on a
/// host directory that ferry had open; it must be refused.
#[test]
fn cwd_through_proc_fd_is_refused() {
    require_root!();
    for fd in 3..8 {
        let mut b = Bundle::new("cve-2024-21626");
        b.set("/process/cwd", json!(format!("/proc/self/fd/{fd}")));
        b.args(&["sh", "-c", "pwd; ls"]);
        let out = b.run(&[]);
        assert!(
            !out.success(),
            "cwd /proc/self/fd/{fd} was accepted:\n{}",
            out.describe()
        );
        assert!(
            out.stderr.contains("cwd"),
            "error must name the cwd:\n{}",
            out.describe()
        );
        b.assert_state_root_empty();
    }
}

/// A cwd that is a symlink pointing out of the rootfs resolves inside it.
#[test]
fn cwd_symlink_stays_inside_the_rootfs() {
    require_root!();
    let mut b = Bundle::new("cwd-symlink");
    std::fs::create_dir_all(b.rootfs().join("inner")).unwrap();
    std::os::unix::fs::symlink("../../../../../../inner", b.rootfs().join("escape")).unwrap();
    b.set("/process/cwd", json!("/escape"));
    let out = b.output("pwd -P; ls /");
    assert!(out.starts_with("/inner\n"), "cwd left the rootfs: {out}");
}

/// This kernel runs neither AppArmor nor SELinux: a requested label is a
/// clear error, never silently dropped, and nothing is left behind.
#[test]
fn lsm_labels_without_the_lsm_are_refused() {
    require_root!();
    let cases = [
        ("/process/apparmorProfile", "ferry-test-profile", "AppArmor"),
        (
            "/process/selinuxLabel",
            "system_u:system_r:container_t:s0",
            "SELinux",
        ),
        (
            "/linux/mountLabel",
            "system_u:object_r:container_file_t:s0",
            "SELinux",
        ),
    ];
    for (pointer, label, lsm) in cases {
        if std::path::Path::new("/sys/fs/selinux/enforce").exists()
            || std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .is_ok_and(|s| s.trim() == "Y")
        {
            return;
        }
        let mut b = Bundle::new("lsm");
        b.set(pointer, json!(label));
        b.sh("true");
        let out = b.run(&[]);
        assert!(
            !out.success(),
            "{pointer} accepted without {lsm}:\n{}",
            out.describe()
        );
        assert!(
            out.stderr.contains(&format!("{lsm} is not enabled")),
            "{}",
            out.describe()
        );
        b.assert_state_root_empty();
    }
}

/// A rootfs whose /proc is a symlink must not get procfs mounted wherever
/// the link points.
#[test]
fn proc_symlink_in_rootfs_is_refused() {
    require_root!();
    let mut b = Bundle::new("proc-symlink");
    let proc_dir = b.rootfs().join("proc");
    let _ = std::fs::remove_dir_all(&proc_dir);
    std::os::unix::fs::symlink("/etc", &proc_dir).unwrap();
    b.sh("ls /etc");
    let out = b.run(&[]);
    assert!(
        !out.success(),
        "procfs was mounted through a symlink:\n{}",
        out.describe()
    );
    assert!(out.stderr.contains("/proc"), "{}", out.describe());
    b.assert_state_root_empty();
}
