//! Attacks on the host through ferry's image store, inherited fds and
//! out-of-range ids (issue 13, parts 3 to 5), each run end to end:
//!
//! * another host user runs a setuid binary (and opens a 0666 block device)
//!   straight from an extracted layer, a flattened bundle or a bundle's
//!   overlay upper directory, after a root or a rootless import;
//! * `LISTEN_FDS`/`LISTEN_PID` not meant for ferry hand the container a
//!   directory fd of the host's /etc;
//! * uid or gid 4294967295 (-1, "unchanged" to setresuid) runs as root.

#[macro_use]
mod common;
mod imagekit;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Bundle, Out, with_inherited_fds};
use imagekit::*;
use serde_json::{Value, json};

/// The second unprivileged host user: the attacker (scripts/deps.sh).
const OTHER: &str = "ferrytest2";

/// A static program that reports its effective uid and the first line of
/// the file it is given: what a setuid copy of it gains.
const PROBE_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char buf[256];
    printf("euid=%d\n", (int)geteuid());
    int fd = open(argc > 1 ? argv[1] : "/etc/shadow", O_RDONLY);
    if (fd < 0) { printf("read: denied\n"); return 1; }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("read: %s\n", buf);
    return 0;
}
"#;

/// Compile [`PROBE_C`] statically into `dir/probe`.
fn build_probe(dir: &Path) -> Vec<u8> {
    let src = dir.join("probe.c");
    let bin = dir.join("probe");
    fs::write(&src, PROBE_C).unwrap();
    let st = Command::new("cc")
        .args(["-static", "-O", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("run cc");
    assert!(st.success(), "cc -static failed");
    fs::read(&bin).unwrap()
}

fn have_user(name: &str) -> bool {
    fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with(&format!("{name}:")))
}

/// Both test users exist and we can switch to them; else skip (a failure
/// under `make test`).
fn have_both_users() -> bool {
    if common::is_root() && have_ferrytest() && have_user(OTHER) {
        return true;
    }
    common::skip("this test: needs root, ferrytest and ferrytest2 (scripts/deps.sh)");
    false
}

/// Run `args` as the attacker `OTHER`; its stdout and stderr together.
fn as_other(args: &[&str]) -> (bool, String) {
    let out = Command::new("runuser")
        .args(["-u", OTHER, "--"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run runuser");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `ferry [--root S/state] image --store S/store ARGS...`
fn image(s: &Scratch, rootless: bool, args: &[&str]) -> Run {
    let state = s.path("state").display().to_string();
    let store = s.path("store").display().to_string();
    let mut all = vec!["--root", &state, "image", "--store", &store];
    all.extend_from_slice(args);
    ferry(rootless, &all, &[])
}

/// The device numbers of a block device root can open here: the disk of
/// the host's root filesystem, or `loop0` where a sandbox refuses the
/// disk (a device cgroup or BPF filter answers EPERM even to root).
fn openable_block_device(dir: &Path) -> (u32, u32) {
    let dev = fs::metadata("/").unwrap().dev();
    let disk = (libc::major(dev), libc::minor(dev));
    let node = dir.join("disk-node");
    let st = Command::new("mknod")
        .arg(&node)
        .args(["b", &disk.0.to_string(), &disk.1.to_string()])
        .status()
        .unwrap();
    let opens = st.success() && fs::File::open(&node).is_ok();
    let _ = fs::remove_file(&node);
    if opens { disk } else { (7, 0) }
}

/// An image: the busybox rootfs, then a layer with `attack/suid` (the
/// probe, setuid root) and, if `device` is given, `attack/blk` (a 0666
/// block device). Its command plants a setuid copy of the probe in the
/// container's own writable layer.
fn attack_image(probe: &[u8], device: Option<(u32, u32)>) -> Image {
    let base = Tar::default().tree(common::rootfs_template()).finish();
    let mut top = Tar::default();
    top.dir("attack/");
    top.add(Member {
        name: "attack/suid",
        data: probe,
        mode: 0o4755,
        ..Member::default()
    });
    if let Some(dev) = device {
        top.add(Member {
            name: "attack/blk",
            flag: b'4',
            mode: 0o666,
            dev,
            ..Member::default()
        });
    }
    Image::new(
        vec![base, top.finish()],
        json!({ "Cmd": ["sh", "-c", "cp /attack/suid /planted && chmod 4755 /planted && echo planted"],
                "Env": ["PATH=/bin:/usr/bin:/sbin"] }),
    )
}

/// The extracted directory of the image's top layer, from `image inspect`.
fn top_layer(s: &Scratch, rootless: bool) -> PathBuf {
    let v: Value =
        serde_json::from_str(&image(s, rootless, &["inspect", "img"]).ok().stdout).unwrap();
    PathBuf::from(v["layers"][1]["path"].as_str().unwrap())
}

/// Import the image, bundle it (overlay and flattened) and run the overlay
/// bundle (which must still work); the setuid files an attacker would run:
/// in the layer, in the flattened rootfs, in the overlay's upper directory.
fn import_bundle_run(s: &Scratch, rootless: bool, probe: &[u8]) -> Vec<PathBuf> {
    let device = (!rootless).then(|| openable_block_device(&s.dir));
    oci_layout(&s.path("layout"), &attack_image(probe, device), "v1");
    if rootless {
        s.give_to_ferrytest();
    }
    let r = format!("oci:{}:v1", s.path("layout").display());
    image(s, rootless, &["import", "--name", "img", &r]).ok();
    let bundle = s.path("bundle");
    image(s, rootless, &["bundle", "img", bundle.to_str().unwrap()]).ok();
    let run = run_bundle(
        s,
        rootless,
        &bundle,
        &format!("attack-{}", std::process::id()),
    )
    .ok();
    assert_eq!(run.stdout.trim(), "planted", "{}", run.stderr);
    let flat = s.path("flat");
    image(
        s,
        rootless,
        &["bundle", "--flatten", "img", flat.to_str().unwrap()],
    )
    .ok();
    vec![
        top_layer(s, rootless).join("attack/suid"),
        flat.join("rootfs/attack/suid"),
        bundle.join("upper/planted"),
    ]
}

/// The attack is real: each target is a setuid binary of `owner`.
fn assert_setuid_of(targets: &[PathBuf], owner: u32) {
    for t in targets {
        let m = fs::metadata(t).unwrap_or_else(|e| panic!("{}: {e}", t.display()));
        assert!(
            m.mode() & 0o4000 != 0 && m.uid() == owner,
            "{} is not setuid uid {owner}: {:o} uid {}",
            t.display(),
            m.mode(),
            m.uid()
        );
    }
}

/// The attacker runs each target on `secret`: each one that runs with the
/// owner's uid or reads the secret is a breach, described.
fn escalations(targets: &[PathBuf], owner: u32, secret: &Path, content: &str) -> Vec<String> {
    let mut breaches = Vec::new();
    for t in targets {
        let (_, out) = as_other(&[t.to_str().unwrap(), secret.to_str().unwrap()]);
        if out.contains(&format!("euid={owner}\n")) || out.contains(content) {
            breaches.push(format!("{OTHER} ran {} as uid {owner}: {out}", t.display()));
        }
    }
    breaches
}

/// Root imports an image with a setuid-root binary and a 0666 block
/// device: another host user can neither run the binary (from the layer,
/// a flattened bundle or the upper directory a container wrote) nor open
/// the device.
#[test]
fn other_users_cannot_use_setuid_files_or_devices_of_a_root_store() {
    if !have_both_users() {
        return;
    }
    let s = Scratch::new("attack-root");
    let probe = build_probe(&s.dir);
    let targets = import_bundle_run(&s, false, &probe);
    assert_setuid_of(&targets, 0);
    let shadow = fs::read_to_string("/etc/shadow").unwrap();
    let first = shadow.lines().next().unwrap();
    let mut breaches = escalations(&targets, 0, Path::new("/etc/shadow"), first);

    for dev in [
        top_layer(&s, false).join("attack/blk"),
        s.path("flat/rootfs/attack/blk"),
    ] {
        let m = fs::symlink_metadata(&dev).unwrap();
        assert_eq!(
            m.mode() & 0o777,
            0o666,
            "{} is a 0666 device",
            dev.display()
        );
        fs::File::open(&dev).unwrap_or_else(|e| panic!("root opens {}: {e}", dev.display()));
        let (opened, out) = as_other(&["head", "-c", "1", dev.to_str().unwrap()]);
        if opened {
            breaches.push(format!(
                "{OTHER} opened the device {}: {out}",
                dev.display()
            ));
        }
    }
    // Nor can it read what the store keeps (blobs, image records).
    let (listed, out) = as_other(&["ls", s.path("store/blobs/sha256").to_str().unwrap()]);
    if listed {
        breaches.push(format!("{OTHER} lists the store's blobs: {out}"));
    }
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

/// After a rootless import by ferrytest, the setuid files carry ferrytest's
/// uid: ferrytest2 must not gain it (and read ferrytest's private file).
/// The rootless bundle still runs.
#[test]
fn other_users_cannot_become_the_rootless_importer() {
    if !have_both_users() {
        return;
    }
    let s = Scratch::new("attack-rootless");
    let probe = build_probe(&s.dir);
    let targets = import_bundle_run(&s, true, &probe);
    let owner = fs::metadata(&s.dir).unwrap().uid();
    assert_setuid_of(&targets, owner);
    let secret = s.path("secret");
    fs::write(&secret, "ferrytest's secret\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&secret, Some(owner), Some(owner)).unwrap();
    let breaches = escalations(&targets, owner, &secret, "ferrytest's secret");
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

/// `LISTEN_FDS`/`LISTEN_PID` inherited from another process (here
/// `LISTEN_PID=1`) name no fd meant for ferry: fd 4 (the host's /etc) must
/// not reach the container.
#[test]
fn listen_fds_for_another_pid_are_not_passed() {
    require_root!();
    let mut b = Bundle::new("listen-other");
    b.args(&[
        "sh",
        "-c",
        "cat /proc/self/fd/4/shadow; echo fd3=$(cat <&3); echo env=$LISTEN_FDS/$LISTEN_PID",
    ]);
    let args = ["run", "--bundle", b.dir_str(), &b.id];
    let o: Out = b.ferry_with(&args, |cmd| {
        cmd.env("LISTEN_FDS", "2").env("LISTEN_PID", "1");
        with_inherited_fds(
            cmd,
            vec![
                (fs::File::open("/etc/hostname").unwrap(), 3),
                (fs::File::open("/etc").unwrap(), 4),
            ],
        );
    });
    let shadow = fs::read_to_string("/etc/shadow").unwrap();
    let first = shadow.lines().next().unwrap();
    assert!(
        !o.stdout.contains(first),
        "the container read the host's /etc/shadow:\n{}",
        o.describe()
    );
    let hostname = fs::read_to_string("/etc/hostname").unwrap();
    assert!(
        o.stdout.contains("fd3=\n") && !o.stdout.contains(hostname.trim()),
        "fd 3 reached the container:\n{}",
        o.describe()
    );
    assert!(o.stdout.contains("env=/\n"), "{}", o.describe());
}

/// With `LISTEN_PID` = ferry's own pid (systemd's rule), the fds are passed
/// and the container is told so: `LISTEN_FDS=1`, `LISTEN_PID=1`.
#[test]
fn listen_fds_for_ferry_are_passed_with_the_containers_pid() {
    require_root!();
    let mut b = Bundle::new("listen-own");
    b.args(&[
        "sh",
        "-c",
        "echo fd3=$(cat <&3); echo env=$LISTEN_FDS/$LISTEN_PID; if [ -e /proc/self/fd/4 ]; then echo fd4; fi",
    ]);
    b.save();
    let passed = b.path("passed");
    fs::write(&passed, "activation\n").unwrap();
    let bin = common::ferry_bin();
    let out = Command::new("sh")
        .args([
            "-c",
            "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$@\"",
            "sh",
            bin.to_str().unwrap(),
            "--root",
            b.state_root.to_str().unwrap(),
            "run",
            "--bundle",
            b.dir_str(),
            &b.id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .pre_exec_fds(vec![
            (fs::File::open(&passed).unwrap(), 3),
            (fs::File::open("/etc").unwrap(), 4),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["fd3=activation", "env=1/1"],
        "{stderr}"
    );
}

/// `Command` with fds at fixed numbers (see [`with_inherited_fds`]).
trait PreExecFds {
    fn pre_exec_fds(&mut self, files: Vec<(fs::File, i32)>) -> &mut Self;
}

impl PreExecFds for Command {
    fn pre_exec_fds(&mut self, files: Vec<(fs::File, i32)>) -> &mut Self {
        with_inherited_fds(self, files);
        self
    }
}

/// The ids that mean -1 (or are negative) to the kernel, in each field.
fn bad_users() -> Vec<Value> {
    vec![
        json!({ "uid": 4294967295u32, "gid": 0 }),
        json!({ "uid": 2147483648u32, "gid": 0 }),
        json!({ "uid": 65534, "gid": 4294967295u32 }),
        json!({ "uid": 65534, "gid": 65534, "additionalGids": [4294967295u32] }),
    ]
}

/// `process.user` with uid or gid 4294967295 (or above 2147483647) is
/// refused with one sentence before anything exists, for run and create;
/// the container never runs (as root).
#[test]
fn out_of_range_ids_are_refused_by_create_and_run() {
    require_root!();
    for user in bad_users() {
        let mut b = Bundle::new("idrange");
        b.args(&["id"]);
        b.set("/process/user", user.clone());
        let o = b.run(&[]);
        assert!(
            !o.stdout.contains("uid="),
            "the container ran with {user}:\n{}",
            o.describe()
        );
        o.assert_one_line_error(Some("out of range"));
        b.assert_state_root_empty();
        b.save();
        let c = b.ferry(&["create", "--bundle", b.dir_str(), &b.id]);
        c.assert_one_line_error(Some("out of range"));
        b.assert_state_root_empty();
    }
}

/// `exec --user 4294967295`, `--user 65534:4294967295`,
/// `--additional-gids 4294967295` and a process file with such ids are
/// refused: the exec'd process never runs as root.
#[test]
fn out_of_range_ids_are_refused_by_exec() {
    require_root!();
    let mut b = Bundle::new("idrange-exec");
    b.args(&["sleep", "30"]);
    b.set("/process/user", json!({ "uid": 65534, "gid": 65534 }));
    b.create(&[]);
    b.start();
    let probe = ["sh", "-c", "echo ids=$(id -u):$(id -g):$(id -G)"];
    let mut cases: Vec<Vec<String>> = vec![
        vec!["--user".into(), "4294967295".into()],
        vec!["--user".into(), "65534:4294967295".into()],
        vec!["--user".into(), "2147483648:65534".into()],
        vec![
            "--user".into(),
            "65534:65534".into(),
            "--additional-gids".into(),
            "4294967295".into(),
        ],
    ];
    for (i, user) in bad_users().into_iter().enumerate() {
        let mut process = b.get("/process").clone();
        process["user"] = user;
        process["args"] = json!(probe);
        let p = b.path(&format!("process-{i}.json"));
        fs::write(&p, serde_json::to_vec(&process).unwrap()).unwrap();
        cases.push(vec!["--process".into(), p.display().to_string()]);
    }
    for opts in cases {
        let mut args: Vec<&str> = vec!["exec"];
        args.extend(opts.iter().map(String::as_str));
        args.push(&b.id);
        if !opts.contains(&"--process".to_string()) {
            args.extend(probe);
        }
        let o = b.ferry(&args);
        assert!(
            !o.stdout.contains("ids="),
            "exec {opts:?} ran:\n{}",
            o.describe()
        );
        o.assert_one_line_error(Some("out of range"));
    }
    // A valid id still works: the refusals were about the range only.
    let ok = b.run_ok(&["exec", "--user", "2147483647:65534", &b.id, "id", "-u"]);
    assert_eq!(ok.stdout.trim(), "2147483647");
}
