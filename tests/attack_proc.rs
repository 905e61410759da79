//! Writes to /proc redirected by a racing rootfs (CVE-2025-52881 class),
//! and the mount hygiene around masked and read-only paths.
//!
//! The attack: something with write access to the rootfs (a shared volume,
//! a second container) swaps `rootfs/proc` with a symlink to a decoy tree
//! (`renameat2(RENAME_EXCHANGE)`) while containers start. If ferry resolves
//! `/proc/...` by name after `pivot_root`, its sysctl writes and its masks
//! and read-only binds land on the decoy, and the real procfs stays
//! writable and unmasked.
#[macro_use]
mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// How many containers the racing test starts.
const RUNS: usize = 40;

/// The decoy's regular files and directories, at the paths ferry writes
/// or mounts on below `/proc`.
const DECOY_FILES: &[&str] = &[
    "sys/net/ipv4/ip_forward",
    "keys",
    "timer_list",
    "sched_debug",
];
const DECOY_DIRS: &[&str] = &["bus", "fs", "irq", "acpi", "scsi"];
const DECOY_CONTENT: &str = "decoy\n";

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Swap `a` and `b` until `stop`; returns how many swaps succeeded.
fn race(a: PathBuf, b: PathBuf, stop: Arc<AtomicBool>) -> u64 {
    let (a, b) = (c_path(&a), c_path(&b));
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: both paths are NUL-terminated and live through the call.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r == 0 {
            n += 1;
        }
    }
    n
}

/// A bundle whose rootfs holds `decoy/` and a symlink `plink -> /decoy`.
fn racing_bundle() -> Bundle {
    let mut b = Bundle::new("proc-race");
    let root = b.rootfs();
    for f in DECOY_FILES {
        let p = root.join("decoy").join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, DECOY_CONTENT).unwrap();
    }
    for d in DECOY_DIRS {
        fs::create_dir_all(root.join("decoy").join(d)).unwrap();
    }
    std::os::unix::fs::symlink("/decoy", root.join("plink")).unwrap();
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1"}));
    b.set(
        "/linux/maskedPaths",
        json!([
            "/proc/keys",
            "/proc/timer_list",
            "/proc/sched_debug",
            "/proc/acpi",
            "/proc/scsi"
        ]),
    );
    b.set(
        "/linux/readonlyPaths",
        json!(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"]),
    );
    // Whichever name holds the real procfs right now.
    b.sh("for i in 1 2 3 4 5 6 7 8; do \
            cat /proc/self/mountinfo 2>/dev/null && exit 0; \
            cat /plink/self/mountinfo 2>/dev/null && exit 0; \
          done; exit 3");
    b
}

/// Mount points on the decoy in a container's mountinfo.
fn decoy_mounts(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| mp.starts_with("/decoy"))
        .map(str::to_string)
        .collect()
}

/// Decoy files whose content changed.
fn decoy_writes(root: &Path) -> Vec<String> {
    DECOY_FILES
        .iter()
        .filter(|f| {
            fs::read_to_string(root.join("decoy").join(f))
                .ok()
                .as_deref()
                != Some(DECOY_CONTENT)
        })
        .map(|f| f.to_string())
        .collect()
}

/// The attack, end to end: the racer swaps `rootfs/proc` and a symlink to
/// the decoy while RUNS containers start with a sysctl, masked paths and
/// read-only paths. No sysctl write and no mount may land on the decoy; a
/// container may fail to start with a clear error (counted).
#[test]
fn racing_proc_swap_never_redirects_sysctls_or_masks() {
    require_root!();
    let b = racing_bundle();
    let root = b.rootfs();
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let (a, c, s) = (root.join("proc"), root.join("plink"), stop.clone());
        std::thread::spawn(move || race(a, c, s))
    };
    let started = Instant::now();
    let (mut ok, mut failed, mut redirected) = (0, 0, Vec::new());
    let mut errors = Vec::new();
    for i in 0..RUNS {
        if started.elapsed() > Duration::from_secs(50) {
            break;
        }
        let out = b.run(&[]);
        if out.success() {
            ok += 1;
            let on_decoy = decoy_mounts(&out.stdout);
            if !on_decoy.is_empty() {
                redirected.push(format!("run {i}: mounts on the decoy: {on_decoy:?}"));
            }
        } else {
            failed += 1;
            let err = out.stderr.trim();
            assert!(
                !err.is_empty() && !err.contains("panicked"),
                "a failed start must say why:\n{}",
                out.describe()
            );
            errors.push(err.to_string());
        }
        let writes = decoy_writes(&root);
        if !writes.is_empty() {
            redirected.push(format!("run {i}: writes to the decoy: {writes:?}"));
            for f in DECOY_FILES {
                let _ = fs::write(root.join("decoy").join(f), DECOY_CONTENT);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().unwrap();
    // Put the real directory back under its name for the cleanup.
    if fs::symlink_metadata(root.join("proc")).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(root.join("proc")).unwrap();
        fs::rename(root.join("plink"), root.join("proc")).unwrap();
    }
    errors.sort();
    errors.dedup();
    eprintln!(
        "{ok} started, {failed} refused, {} redirected, {swaps} swaps; errors: {errors:#?}",
        redirected.len()
    );
    assert!(swaps > 0, "the racer never swapped");
    assert!(ok > 0, "no container started at all: {errors:#?}");
    assert!(
        redirected.is_empty(),
        "the racing rootfs redirected ferry's /proc writes or mounts:\n{}",
        redirected.join("\n")
    );
    b.assert_state_root_empty();
}

/// A masked file is a read-only bind of /dev/null: the container cannot
/// change the node behind it (chmod on a writable bind changes /dev/null).
#[test]
fn masked_file_is_read_only() {
    require_root!();
    let mut b = Bundle::new("mask-ro");
    b.set("/linux/maskedPaths", json!(["/proc/keys"]));
    let out = b.output("chmod 600 /proc/keys 2>&1; echo rc=$?; cat /proc/keys; echo end");
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "chmod of a masked file must fail with EROFS:\n{out}"
    );
    assert!(out.ends_with("end\n"), "the mask must read empty:\n{out}");
}

/// A read-only path keeps its other flags: a binary below it still runs
/// (with noexec added, a read-only `/bin` makes the container unable to
/// exec anything).
#[test]
fn readonly_path_keeps_exec() {
    require_root!();
    let mut b = Bundle::new("ro-exec");
    b.set("/linux/readonlyPaths", json!(["/bin"]));
    let out = b.output("/bin/echo ran; touch /bin/x 2>&1; echo rc=$?");
    assert!(
        out.starts_with("ran\n"),
        "a binary in a read-only path must run:\n{out}"
    );
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "the path must still be read-only:\n{out}"
    );
}

/// Without /proc in the mounts the container starts, with a read-only
/// root and masked and read-only paths below the absent /proc.
#[test]
fn no_proc_mount_works() {
    require_root!();
    let mut b = Bundle::new("no-proc");
    let mounts: Vec<serde_json::Value> = b.get("/mounts").as_array().unwrap().clone();
    let kept: Vec<_> = mounts
        .into_iter()
        .filter(|m| m["destination"] != "/proc")
        .collect();
    b.set("/mounts", json!(kept));
    b.readonly_root(true);
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1"}));
    let out = b.output("touch /x 2>&1; echo rc=$?; ls /proc | wc -l");
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "the root must be read-only:\n{out}"
    );
    assert_eq!(out.lines().last(), Some("0"), "/proc must be empty:\n{out}");
}

/// A mount target that ferry created for a mount it then refused is
/// removed again: `/proc` is a dangling symlink in the rootfs, ferry
/// creates its target and refuses to mount procfs through the symlink.
#[test]
fn refused_mount_target_is_removed() {
    require_root!();
    let mut b = Bundle::new("refused-target");
    let root = b.rootfs();
    fs::remove_dir_all(root.join("proc")).unwrap();
    std::os::unix::fs::symlink("/made-by-ferry/proc", root.join("proc")).unwrap();
    b.args(&["true"]);
    let out = b.run(&[]);
    out.assert_clean_error(Some("symlink"));
    assert!(
        !root.join("made-by-ferry").exists(),
        "the directories made for the refused mount stayed in the rootfs"
    );
    b.assert_state_root_empty();
}

/// `rro` makes the bind and every mount below it read-only.
#[test]
fn rro_reaches_submounts() {
    require_root!();
    let mut b = Bundle::new("rro");
    let data = b.rootfs().join("data");
    fs::create_dir_all(&data).unwrap();
    b.add_mount(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs"}));
    b.add_mount(json!({"destination": "/data/sub", "type": "tmpfs", "source": "tmpfs"}));
    b.add_mount(json!({
        "destination": "/view",
        "type": "bind",
        "source": data.to_str().unwrap(),
        "options": ["rbind", "rro"]
    }));
    let out = b.output("touch /view/sub/f 2>&1; echo rc=$?; touch /data/sub/g; echo rw=$?");
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "a submount of an rro bind must be read-only:\n{out}"
    );
    assert!(out.contains("rw=0"), "the original stays writable:\n{out}");
}
