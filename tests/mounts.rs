//! Mounts, root filesystem, masked and read-only paths, as seen from inside.
#[macro_use]
mod common;

use common::*;
use std::fs;

/// One parsed /proc/self/mountinfo line.
#[allow(dead_code)]
#[derive(Debug, Clone)]
struct MountInfo {
    mount_point: String,
    root: String,
    opts: Vec<String>,
    fstype: String,
    source: String,
    super_opts: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountInfo {
                root: f.get(3)?.to_string(),
                mount_point: f.get(4)?.to_string(),
                opts: f.get(5)?.split(',').map(str::to_string).collect(),
                fstype: r.first()?.to_string(),
                source: r.get(1).unwrap_or(&"").to_string(),
                super_opts: r
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The top-most (last) mount at `point`.
fn mount_at<'a>(mi: &'a [MountInfo], point: &str) -> &'a MountInfo {
    mi.iter()
        .rev()
        .find(|m| m.mount_point == point)
        .unwrap_or_else(|| panic!("no mount at {point} in:\n{mi:#?}"))
}

const MARK: &str = "=====mountinfo=====";

/// Run `script`, then dump mountinfo; returns (script output, mounts).
fn run_with_mountinfo(b: &mut Bundle, script: &str) -> (String, Vec<MountInfo>) {
    let out = b.output(&format!("{script}\necho {MARK}; cat /proc/self/mountinfo"));
    let (a, m) = out
        .split_once(&format!("{MARK}\n"))
        .unwrap_or_else(|| panic!("no mountinfo in {out:?}"));
    (a.to_string(), parse_mountinfo(m))
}

#[test]
fn tmpfs_mount_with_options() {
    require_root!();
    let mut b = Bundle::new("tmpfsopts");
    b.add_mount(json!({
        "destination": "/mnt/t",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "mode=700", "size=1m"]
    }));
    let (out, mi) = run_with_mountinfo(
        &mut b,
        "stat -c %a /mnt/t; echo hi > /mnt/t/f && cat /mnt/t/f",
    );
    assert_eq!(out, "700\nhi\n");
    let m = mount_at(&mi, "/mnt/t");
    assert_eq!(m.fstype, "tmpfs", "{m:?}");
    for o in ["nosuid", "nodev", "noexec", "rw"] {
        assert!(m.opts.iter().any(|x| x == o), "missing {o} in {m:?}");
    }
    assert!(
        m.super_opts.iter().any(|x| x == "size=1024k"),
        "size not applied: {m:?}"
    );
    assert!(
        m.super_opts.iter().any(|x| x == "mode=700"),
        "mode not applied: {m:?}"
    );
}

#[test]
fn readonly_bind_mount_of_host_dir() {
    require_root!();
    let mut b = Bundle::new("robind");
    let host = b.path("hostdata");
    make_host_dir(&host, &[("hello.txt", "hello from host\n")]);
    b.bind(&host, "/data", &["ro"]);
    let (out, mi) = run_with_mountinfo(
        &mut b,
        "cat /data/hello.txt; touch /data/new 2>/dev/null && echo writable || echo readonly",
    );
    assert_eq!(out, "hello from host\nreadonly\n");
    let m = mount_at(&mi, "/data");
    assert!(
        m.opts.iter().any(|x| x == "ro"),
        "bind mount not read-only: {m:?}"
    );
    assert!(!host.join("new").exists(), "write went through to the host");
}

#[test]
fn readwrite_bind_mount_writes_reach_host() {
    require_root!();
    let mut b = Bundle::new("rwbind");
    let host = b.path("hostrw");
    make_host_dir(&host, &[]);
    b.bind(&host, "/work/out", &["rw"]);
    assert_eq!(
        b.output("echo written-inside > /work/out/result && echo ok"),
        "ok\n"
    );
    assert_eq!(
        fs::read_to_string(host.join("result")).unwrap(),
        "written-inside\n"
    );
}

#[test]
fn bind_mount_single_file() {
    require_root!();
    let mut b = Bundle::new("filebind");
    let host = b.path("injected.conf");
    fs::write(&host, "key=value\n").unwrap();
    b.bind(&host, "/etc/injected.conf", &["ro"]);
    let (out, mi) = run_with_mountinfo(
        &mut b,
        "cat /etc/injected.conf; stat -c %F /etc/injected.conf",
    );
    assert_eq!(out, "key=value\nregular file\n");
    let m = mount_at(&mi, "/etc/injected.conf");
    assert!(m.opts.iter().any(|x| x == "ro"), "{m:?}");
}

#[test]
fn bind_mount_relative_source_is_relative_to_bundle() {
    require_root!();
    let mut b = Bundle::new("relbind");
    make_host_dir(&b.dir.join("shared"), &[("rel.txt", "relative\n")]);
    b.add_mount(json!({"destination": "/shared", "type": "bind", "source": "shared", "options": ["rbind", "ro"]}));
    assert_eq!(b.output("cat /shared/rel.txt"), "relative\n");
}

#[test]
fn readonly_rootfs() {
    require_root!();
    let mut b = Bundle::new("roroot");
    b.readonly_root(true);
    let (out, mi) = run_with_mountinfo(
        &mut b,
        "touch /x 2>/dev/null && echo writable || echo readonly; touch /etc/y 2>/dev/null && echo writable || echo readonly; echo ok > /dev/shm/z && echo shm-writable",
    );
    assert_eq!(out, "readonly\nreadonly\nshm-writable\n");
    let root = mount_at(&mi, "/");
    assert!(
        root.opts.iter().any(|x| x == "ro"),
        "/ is not read-only: {root:?}"
    );
    assert!(!b.rootfs().join("x").exists());
}

#[test]
fn writable_rootfs() {
    require_root!();
    let mut b = Bundle::new("rwroot");
    b.readonly_root(false);
    let (out, mi) = run_with_mountinfo(
        &mut b,
        "touch /x 2>/dev/null && echo writable || echo readonly",
    );
    assert_eq!(out, "writable\n");
    let root = mount_at(&mi, "/");
    assert!(root.opts.iter().any(|x| x == "rw"), "{root:?}");
    assert!(
        b.rootfs().join("x").exists(),
        "file created inside is not in the bundle rootfs"
    );
}

#[test]
fn default_mounts_present() {
    require_root!();
    let mut b = Bundle::new("defmounts");
    let (_, mi) = run_with_mountinfo(&mut b, "true");
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        let m = mount_at(&mi, point);
        assert_eq!(m.fstype, fstype, "{point}: {m:?}");
    }
    let sys = mount_at(&mi, "/sys");
    assert!(
        sys.opts.iter().any(|x| x == "ro"),
        "/sys should be read-only: {sys:?}"
    );
    for o in ["nosuid", "noexec", "nodev"] {
        assert!(sys.opts.iter().any(|x| x == o), "/sys lacks {o}: {sys:?}");
    }
    let cg = mi
        .iter()
        .filter(|m| {
            m.mount_point == "/sys/fs/cgroup" || m.mount_point.starts_with("/sys/fs/cgroup/")
        })
        .collect::<Vec<_>>();
    assert!(
        !cg.is_empty(),
        "no cgroup filesystem mounted at /sys/fs/cgroup"
    );
    assert!(
        cg.iter()
            .any(|m| m.fstype == "cgroup" || m.fstype == "cgroup2"),
        "no cgroup hierarchy under /sys/fs/cgroup: {cg:?}"
    );
    // host mounts must not be visible inside
    assert!(
        !mi.iter()
            .any(|m| m.mount_point.starts_with("/tmp/ferry-test")),
        "host mounts leaked into the container: {mi:#?}"
    );
}

#[test]
fn cgroup_mount_is_readonly_and_shows_own_cgroup() {
    require_root!();
    let mut b = Bundle::new("cgroupmount");
    let out = b.output(
        "ls /sys/fs/cgroup; touch /sys/fs/cgroup/x 2>/dev/null && echo writable || echo readonly",
    );
    assert!(out.trim_end().ends_with("readonly"), "{out}");
    // cgroup v1 hybrid host: at least the memory and pids controllers
    for c in ["memory", "pids"] {
        assert!(
            out.lines().any(|l| l == c),
            "/sys/fs/cgroup/{c} missing: {out}"
        );
    }
}

#[test]
fn masked_paths() {
    require_root!();
    let mut b = Bundle::new("masked");
    make_host_dir(
        &b.rootfs().join("etc/secretdir"),
        &[("secret.txt", "top secret")],
    );
    fs::write(b.rootfs().join("etc/secret.txt"), "also secret").unwrap();
    b.set(
        "/linux/maskedPaths",
        json!([
            "/proc/kcore",
            "/etc/secretdir",
            "/etc/secret.txt",
            "/proc/does-not-exist"
        ]),
    );
    let out = b.output(
        "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); \
         echo dir=$(ls -A /etc/secretdir | wc -l); \
         echo file=$(cat /etc/secret.txt 2>/dev/null | wc -c); \
         touch /etc/secretdir/x 2>/dev/null && echo dir-writable || echo dir-readonly",
    );
    assert_eq!(out, "kcore=0\ndir=0\nfile=0\ndir-readonly\n");
}

#[test]
fn readonly_paths() {
    require_root!();
    let mut b = Bundle::new("ropaths");
    b.readonly_root(false);
    make_host_dir(&b.rootfs().join("etc/rodir"), &[("f", "data")]);
    b.set(
        "/linux/readonlyPaths",
        json!(["/proc/sys", "/etc/rodir", "/does/not/exist"]),
    );
    let out = b.output(
        "echo x > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-readonly; \
         cat /etc/rodir/f; echo; \
         touch /etc/rodir/new 2>/dev/null && echo rodir-writable || echo rodir-readonly; \
         touch /etc/elsewhere 2>/dev/null && echo other-writable || echo other-readonly",
    );
    assert_eq!(out, "sys-readonly\ndata\nrodir-readonly\nother-writable\n");
}

#[test]
fn default_spec_masks_and_readonly_paths_apply() {
    require_root!();
    let mut b = Bundle::new("defmask");
    let masked: Vec<String> = b
        .get("/linux/maskedPaths")
        .as_array()
        .expect("maskedPaths")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(masked.iter().any(|p| p == "/proc/kcore"), "{masked:?}");
    let ro: Vec<String> = b
        .get("/linux/readonlyPaths")
        .as_array()
        .expect("readonlyPaths")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(ro.iter().any(|p| p == "/proc/sys"), "{ro:?}");
    let out = b.output(
        "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-readonly",
    );
    assert_eq!(out, "kcore=0\nsys-readonly\n");
}

#[test]
fn mount_destination_with_symlink_stays_in_rootfs() {
    // A symlink in the rootfs pointing outside must not let a mount escape
    // onto the host: the mount must land inside the container.
    require_root!();
    let mut b = Bundle::new("symlinkescape");
    let outside = b.path("outside");
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, b.rootfs().join("escape")).unwrap();
    b.add_mount(json!({"destination": "/escape/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    let o = {
        b.sh("echo inside > /escape/t/f 2>/dev/null; echo done");
        b.run(&[])
    };
    // Whether ferry refuses or confines the mount, the host dir must be untouched.
    assert!(
        !outside.join("t").exists(),
        "mount destination was created outside the rootfs: {}",
        o.describe()
    );
    assert!(
        host_mounts_mentioning(&outside).is_empty(),
        "mount escaped onto the host"
    );
}

/// `dir` bound on itself and made a shared mount (as Kubernetes' volumes
/// and the rootfs of engines on systemd hosts are).
fn make_shared_mount(dir: &std::path::Path) {
    fs::create_dir_all(dir).unwrap();
    for args in [&["--bind", "", ""][..], &["--make-shared", ""][..]] {
        let mut cmd = std::process::Command::new("mount");
        for a in args {
            cmd.arg(if a.is_empty() {
                dir.as_os_str()
            } else {
                a.as_ref()
            });
        }
        let st = cmd.status().unwrap();
        assert!(st.success(), "mount {args:?} {}", dir.display());
    }
}

/// A volume at `/vol` from a shared host mount with `propagation` (as the
/// CRI sets it: `rootfsPropagation` the same). The container mounts a tmpfs
/// on `/vol/in`, says so in `/vol/ready`, and waits for a host mount on
/// `/vol/host`. Returns (host saw the container's mount, container output).
fn volume_propagation(name: &str, propagation: &str) -> (bool, Out) {
    let mut b = Bundle::new(name);
    let vol = b.base.join("vol");
    make_shared_mount(&vol);
    fs::create_dir_all(vol.join("in")).unwrap();
    fs::create_dir_all(vol.join("host")).unwrap();
    b.set("/linux/rootfsPropagation", json!(propagation));
    b.bind(&vol, "/vol", &["rbind", propagation]);
    add_caps(&mut b, &["CAP_SYS_ADMIN"]);
    b.sh(
        "mount -t tmpfs none /vol/in || exit 4; touch /vol/in/c /vol/ready; \
         i=0; while [ ! -e /vol/host/marker ]; do sleep 0.05; i=$((i+1)); \
         [ $i -gt 200 ] && exit 3; done; echo saw",
    );
    let proc = b.spawn(&["run", "--bundle", b.dir_str(), &b.id]);
    let ready = wait_until(std::time::Duration::from_secs(20), || {
        vol.join("ready").exists()
    });
    let host_saw = vol.join("in/c").exists();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "none"])
        .arg(vol.join("host"))
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(vol.join("host/marker"), "").unwrap();
    let out = proc.wait(std::time::Duration::from_secs(30));
    assert!(ready, "the container never got ready:\n{}", out.describe());
    (host_saw, out)
}

#[test]
fn rshared_volume_propagates_both_ways() {
    require_root!();
    let (host_saw, out) = volume_propagation("mntrshared", "rshared");
    assert!(out.success(), "{}", out.describe());
    assert!(out.stdout.contains("saw"), "host mount not seen inside");
    assert!(host_saw, "the container's mount did not reach the host");
}

#[test]
fn rslave_volume_gets_host_mounts_only() {
    require_root!();
    let (host_saw, out) = volume_propagation("mntrslave", "rslave");
    assert!(out.success(), "{}", out.describe());
    assert!(out.stdout.contains("saw"), "host mount not seen inside");
    assert!(!host_saw, "a container mount reached the host");
}

/// The caller's mounts that mention the bundle, while a container made
/// with `rootfsPropagation: rshared` on a shared rootfs exists and after it
/// failed: nothing ferry mounts may ever appear there.
#[test]
fn shared_rootfs_leaks_no_mount_to_the_caller() {
    require_root!();
    let mut b = Bundle::new("mntleak");
    make_shared_mount(&b.rootfs());
    b.set("/linux/rootfsPropagation", json!("rshared"));
    b.args(&["sleep", "30"]);
    let before = host_mounts_mentioning(&b.base);
    assert_eq!(before.len(), 1, "{before:?}");
    b.create(&[]);
    assert_eq!(host_mounts_mentioning(&b.base), before, "while created");
    b.run_ok(&["delete", "--force", &b.id]);
    assert_eq!(host_mounts_mentioning(&b.base), before, "after delete");
    // A failure after the default mounts are made.
    b.bind(std::path::Path::new("/nonexistent-src"), "/late", &["bind"]);
    b.run_fail(&["run", "--bundle", b.dir_str(), &b.id]);
    assert_eq!(host_mounts_mentioning(&b.base), before, "after a failure");
}

/// Every `rootfsPropagation` works on a rootfs that is a shared mount,
/// and `/` inside has it (as crun; runc 1.1 leaves `/` private).
/// `runbindable` is left out: it makes the cgroup binds fail, in runc and
/// crun as in ferry.
#[test]
fn rootfs_propagation_on_a_shared_rootfs() {
    require_root!();
    let mut b = Bundle::new("mntrootprop");
    make_shared_mount(&b.rootfs());
    let cases = [
        ("shared", Some("shared:")),
        ("rshared", Some("shared:")),
        ("slave", None),
        ("private", None),
        ("unbindable", Some("unbindable")),
        ("rslave", None),
        ("rprivate", None),
    ];
    for (p, tag) in cases {
        b.set("/linux/rootfsPropagation", json!(p));
        b.sh("grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo");
        let out = b.run(&[]);
        assert!(out.success(), "{p}: {}", out.describe());
        if let Some(tag) = tag {
            assert!(out.stdout.contains(tag), "{p}: {}", out.stdout);
        } else {
            assert!(!out.stdout.contains("shared:"), "{p}: {}", out.stdout);
        }
    }
    assert_eq!(host_mounts_mentioning(&b.base).len(), 1);
}

/// Adds `caps` to every capability set of the process.
fn add_caps(b: &mut Bundle, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        let p = format!("/process/capabilities/{set}");
        let mut have = b.get(&p).as_array().cloned().unwrap_or_default();
        have.extend(caps.iter().map(|c| json!(c)));
        b.set(&p, json!(have));
    }
}

/// With `--no-pivot` the host's procfs stays in the container's mount
/// namespace below the chroot; a process that makes a user namespace must
/// still not be able to mount a fresh, unmasked procfs (runc's
/// "--no-pivot must not expose bare /proc").
#[test]
fn no_pivot_does_not_let_the_container_mount_proc() {
    require_root!();
    let mut b = Bundle::new("mntnopivot");
    add_caps(
        &mut b,
        &["CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETFCAP"],
    );
    b.args(&[
        "unshare",
        "-mrpf",
        "sh",
        "-c",
        "mount -t proc none /proc && echo MOUNTED",
    ]);
    let out = b.run(&["--no-pivot"]);
    assert!(!out.stdout.contains("MOUNTED"), "{}", out.describe());
    assert!(
        out.stderr.contains("permission denied"),
        "the attempt did not run as meant:\n{}",
        out.describe()
    );
}

/// A read-only `/dev` from the config: its devices and `/dev/pts` are
/// made first, then it is read-only (as runc).
#[test]
fn readonly_dev_mount_from_the_config() {
    require_root!();
    let mut b = Bundle::new("mntrodev");
    let mounts = b.get("/mounts").as_array().cloned().unwrap();
    let mounts: Vec<_> = mounts
        .into_iter()
        .map(|mut m| {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
            m
        })
        .collect();
    b.set("/mounts", json!(mounts));
    let out = b.output("ls /dev/pts /dev/null; touch /dev/x 2>&1 || echo refused");
    assert!(out.contains("ptmx"), "{out}");
    assert!(out.contains("refused"), "/dev is writable: {out}");
}

/// tmpfs `mode=` sets the mode of its root.
#[test]
fn tmpfs_mode_is_applied() {
    require_root!();
    let mut b = Bundle::new("mnttmpmode");
    b.add_mount(
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                       "options": ["mode=712"]}),
    );
    assert_eq!(b.output("stat -c %a /t").trim(), "712");
}

/// A mount destination that is a dangling symlink in the rootfs: its
/// target is created inside the rootfs (as runc), for a file and for a
/// directory, and nothing is made outside.
#[test]
fn dangling_symlink_destination_is_created_inside() {
    require_root!();
    let mut b = Bundle::new("mntdangling");
    let src = b.base.join("srcfile");
    fs::write(&src, "hello\n").unwrap();
    let dir = b.base.join("srcdir");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f"), "indir\n").unwrap();
    let root = b.rootfs();
    std::os::unix::fs::symlink("/etc/ferry-file-target", root.join("etc/not-existing")).unwrap();
    std::os::unix::fs::symlink("../ferry-dir-target", root.join("etc/not-existing-dir")).unwrap();
    b.bind(&src, "/etc/not-existing", &["bind"]);
    b.bind(&dir, "/etc/not-existing-dir", &["rbind"]);
    let out = b.output("cat /etc/not-existing /etc/not-existing-dir/f");
    assert_eq!(out, "hello\nindir\n");
    assert!(root.join("etc/ferry-file-target").is_file());
    assert!(root.join("ferry-dir-target").is_dir());
    assert!(!std::path::Path::new("/etc/ferry-file-target").exists());
}

/// A bind source below a directory that only the host's root may enter:
/// the container's root in a user namespace cannot reach it, ferry's
/// parent opens it for the init (as runc does before it enters the user
/// namespace).
#[test]
fn bind_source_the_userns_root_cannot_reach() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let mut b = Bundle::new("mntunreach");
    let private = b.base.join("private");
    let vol = private.join("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("file"), "reached\n").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&vol, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(vol.join("file"), fs::Permissions::from_mode(0o644)).unwrap();
    b.set_ns("user", None);
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.set("/linux/uidMappings", map.clone());
    b.set("/linux/gidMappings", map);
    // An existing target: the rootfs stays owned by the host's root.
    b.bind(&vol, "/tmp", &["rbind", "ro"]);
    assert_eq!(b.output("cat /tmp/file"), "reached\n");
}

/// An idmapped bind mount whose source is a symlink to the directory, in a
/// container with a user namespace: the link is followed on the host.
#[test]
fn idmapped_mount_on_a_symlinked_source() {
    require_root!();
    let mut b = Bundle::new("mntidlink");
    let dir = b.base.join("idsrc");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f"), "hi\n").unwrap();
    let link = b.base.join("idlink");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.set_ns("user", None);
    b.set("/linux/uidMappings", map.clone());
    b.set("/linux/gidMappings", map.clone());
    b.add_mount(json!({"destination": "/tmp", "type": "bind",
        "source": link, "options": ["rbind", "idmap"],
        "uidMappings": map, "gidMappings": map}));
    // Host root's file shows as the container's root's.
    assert_eq!(b.output("stat -c %u /tmp/f; cat /tmp/f"), "0\nhi\n");
}
