//! The busybox rootfs template every bundle copies: built once per test
//! binary, or `$FERRY_TEST_ROOTFS`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::*;

static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
static OWNED_ROOTFS: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_owned_rootfs() {
    if let Some(p) = OWNED_ROOTFS.get()
        && std::env::var_os("FERRY_KEEP_TEST_DIRS").is_none()
    {
        let _ = fs::remove_dir_all(p);
    }
}

/// The shared read-only busybox rootfs template (bundles copy it).
pub fn rootfs_template() -> &'static Path {
    ROOTFS.get_or_init(|| {
        if let Some(p) = std::env::var_os("FERRY_TEST_ROOTFS") {
            let p = PathBuf::from(p);
            assert!(
                p.join("bin/sh").exists(),
                "FERRY_TEST_ROOTFS={} has no bin/sh",
                p.display()
            );
            return p;
        }
        remove_stale_templates();
        let dir = PathBuf::from(format!("/tmp/ferry-tests-rootfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mkrootfs.sh");
        let mut ok = false;
        if script.exists() {
            let st = Command::new("bash")
                .arg(&script)
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            ok = matches!(st, Ok(s) if s.success()) && rootfs_looks_ok(&dir);
            if !ok {
                eprintln!("note: scripts/mkrootfs.sh failed; building the rootfs in the harness");
                let _ = fs::remove_dir_all(&dir);
            }
        }
        if !ok {
            build_rootfs(&dir);
        }
        // The harness always adds its own fixed files (users, groups).
        write_passwd(&dir);
        assert!(
            rootfs_looks_ok(&dir),
            "rootfs at {} is incomplete",
            dir.display()
        );
        let _ = OWNED_ROOTFS.set(dir.clone());
        // SAFETY: registers a plain `extern "C" fn()` that lives for the
        // whole program.
        unsafe {
            libc::atexit(remove_owned_rootfs);
        }
        dir
    })
}

fn rootfs_looks_ok(dir: &Path) -> bool {
    ["bin/sh", "bin/cat", "bin/ls", "bin/sleep"]
        .iter()
        .all(|p| dir.join(p).exists())
}

fn remove_stale_templates() {
    let Ok(rd) = fs::read_dir("/tmp") else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("ferry-tests-rootfs-")
            && let Ok(pid) = pid.parse::<i32>()
            && !pid_alive(pid)
        {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn find_static_busybox() -> PathBuf {
    for p in [
        "/bin/busybox",
        "/usr/bin/busybox",
        "/usr/lib/initramfs-tools/bin/busybox",
    ] {
        let p = Path::new(p);
        if p.exists() {
            return p.to_path_buf();
        }
    }
    panic!("busybox not found (apt-get install busybox-static)");
}

/// Build a minimal busybox rootfs at `dir`.
pub fn build_rootfs(dir: &Path) {
    let bb = find_static_busybox();
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var",
        "run", "home",
    ] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(dir.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::copy(&bb, dir.join("bin/busybox")).unwrap();
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    let list = Command::new(&bb).arg("--list-full").output().unwrap();
    assert!(list.status.success(), "busybox --list-full failed");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let link = dir.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let _ = std::os::unix::fs::symlink("/bin/busybox", &link);
    }
    // Make sure the essentials exist in /bin whatever --list-full said.
    for a in [
        "sh", "cat", "ls", "sleep", "echo", "touch", "stat", "id", "readlink", "mount",
    ] {
        let link = dir.join("bin").join(a);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("busybox", &link).unwrap();
        }
    }
}

fn write_passwd(dir: &Path) {
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         tester:x:1000:1000:tester:/home/tester:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\nwheel:x:10:\nfloppy:x:25:\ntester:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
}
