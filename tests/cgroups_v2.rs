//! cgroups: the v2 code paths (devices program, cgroup.freeze, cgroup.procs)
//! on this v1-hybrid host, through its controller-less cgroup2 hierarchy.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(5);
const CG: &str = "/sys/fs/cgroup";

// ---------------------------------------------------------------------------
// The v2 code paths on a hybrid host: each ferry call runs in a private
// mount namespace whose /sys/fs/cgroup is the (controller-less) cgroup2
// hierarchy, so ferry sees a pure v2 layout.
// ---------------------------------------------------------------------------

fn hybrid() -> bool {
    Path::new(CG).join("unified/cgroup.procs").exists()
}

fn as_v2(c: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only raw syscalls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let none = c"none".as_ptr();
            let cg = c"/sys/fs/cgroup".as_ptr();
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    none,
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::umount2(cg, libc::MNT_DETACH) != 0
                || libc::mount(none, cg, c"cgroup2".as_ptr(), 0, std::ptr::null()) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn v2_layout_lifecycle_freezer_devices_and_cleanup() {
    require_root!();
    if !hybrid() {
        return;
    }
    let mut b = Bundle::new("cgv2");
    let rel = format!("ferry-tests-{}", b.id);
    b.set("/linux/cgroupsPath", json!(format!("/{rel}/c")));
    b.sh("echo x > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null && echo zero-ok; sleep 30");
    let dir = Path::new(CG).join("unified").join(&rel).join("c");
    let create = b.ferry_with(&["create", "--bundle", b.dir_str(), &b.id], as_v2);
    assert!(create.success(), "{}", create.describe());
    let v2 = |args: &[&str]| {
        let o = b.ferry_with(args, as_v2);
        assert!(o.success(), "{}", o.describe());
        o
    };
    v2(&["start", &b.id]);
    let init = b.pid();
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    assert!(
        procs.lines().any(|l| l == init.to_string()),
        "init not in {}: {procs}",
        dir.display()
    );
    assert!(
        wait_until(SHORT, || create.stdout_now().contains("null-ok")),
        "{}",
        create.stdout_now()
    );
    let ps = v2(&["ps", "--format", "json", &b.id]);
    assert_eq!(ps.stdout.trim(), format!("[{init}]"));
    v2(&["pause", &b.id]);
    assert!(
        b.ferry_with(&["state", &b.id], as_v2)
            .stdout
            .contains("\"paused\"")
    );
    assert!(
        fs::read_to_string(dir.join("cgroup.events"))
            .unwrap_or_default()
            .contains("frozen 1")
    );
    v2(&["resume", &b.id]);
    assert!(
        fs::read_to_string(dir.join("cgroup.events"))
            .unwrap_or_default()
            .contains("frozen 0")
    );
    let stats = v2(&["events", "--stats", &b.id]);
    assert!(
        stats.stdout.contains("\"type\":\"stats\""),
        "{}",
        stats.describe()
    );
    v2(&["delete", "--force", &b.id]);
    let parent = Path::new(CG).join("unified").join(&rel);
    assert!(
        wait_until(SHORT, || !parent.exists()),
        "{} left behind",
        parent.display()
    );
}

#[test]
fn v2_devices_program_denies_unlisted_devices() {
    require_root!();
    if !hybrid() {
        return;
    }
    let mut b = Bundle::new("cgv2dev");
    let rel = format!("ferry-tests-{}", b.id);
    b.set("/linux/cgroupsPath", json!(format!("/{rel}")));
    // Deny everything: runc's defaults (null, zero...) stay allowed.
    b.set(
        "/linux/resources/devices",
        json!([{"allow": false, "access": "rwm"}]),
    );
    b.set("/linux/devices", json!([]));
    b.sh("echo x > /dev/null && echo null-ok; (head -c1 /dev/zero > /dev/null 2>&1 && echo zero-ok) ; true");
    b.save();
    let o = b.ferry_with(&["run", "--bundle", b.dir_str(), &b.id], as_v2);
    assert!(o.success(), "{}", o.describe());
    assert!(
        o.stdout.contains("null-ok") && o.stdout.contains("zero-ok"),
        "{}",
        o.describe()
    );
    // A device outside the defaults is denied (mknod itself is allowed).
    let mut b = Bundle::new("cgv2dev2");
    let rel2 = format!("ferry-tests-{}", b.id);
    b.set("/linux/cgroupsPath", json!(format!("/{rel2}")));
    b.set(
        "/linux/resources/devices",
        json!([{"allow": false, "access": "rwm"}]),
    );
    b.sh("mknod /dev/blk b 7 0 2>/dev/null; head -c1 /dev/blk >/dev/null 2>&1 && echo blk-open || echo blk-denied");
    let caps = json!(["CAP_MKNOD"]);
    for set in ["bounding", "effective", "permitted"] {
        b.set(&format!("/process/capabilities/{set}"), caps.clone());
    }
    let o = b.ferry_with(&["run", "--bundle", b.dir_str(), &b.id], as_v2);
    assert!(o.stdout.contains("blk-denied"), "{}", o.describe());
    for r in [rel, rel2] {
        let d = Path::new(CG).join("unified").join(r);
        assert!(
            wait_until(SHORT, || !d.exists()),
            "{} left behind",
            d.display()
        );
    }
}

#[test]
fn v2_limits_without_the_controller_are_refused() {
    require_root!();
    if !hybrid() {
        return;
    }
    let mut b = Bundle::new("cgv2noctl");
    let rel = format!("ferry-tests-{}", b.id);
    b.set("/linux/cgroupsPath", json!(format!("/{rel}")));
    b.set("/linux/resources/memory", json!({"limit": 1 << 26}));
    b.args(&["true"]);
    let o = b.ferry_with(&["create", "--bundle", b.dir_str(), &b.id], as_v2);
    o.assert_one_line_error(Some("memory"));
    let d = Path::new(CG).join("unified").join(&rel);
    assert!(!d.exists(), "{} left behind", d.display());
    b.set("/linux/resources", json!({"unified": {"foo.max": "1"}}));
    let o = b.ferry_with(&["create", "--bundle", b.dir_str(), &b.id], as_v2);
    o.assert_one_line_error(Some("unknown controller"));
}
