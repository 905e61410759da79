//! `ferry image run`: podman's flags and the private network (pasta), as
//! root and as the test user: a web server published with `-p` and
//! fetched from the host, loopback, outbound access and DNS inside,
//! volumes and their owners, the process flags seen from inside, and bad
//! inputs that must leave nothing behind (bundle, state, pasta).

mod common;
mod imagekit;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::sync::RwLock;
use std::time::Duration;

use common::{host_address, pastas_under};
use imagekit::*;

/// Held (shared) by the tests that need /dev/net/tun rootless, and
/// exclusively by the one that makes it unusable for a moment.
static TUN: RwLock<()> = RwLock::new(());

/// `ferry --root S/state image --store S/store ARGS...`
fn image(s: &Scratch, rootless: bool, args: &[&str]) -> Run {
    let state = s.path("state").display().to_string();
    let store = s.path("store").display().to_string();
    let mut all = vec!["--root", &state, "image", "--store", &store];
    all.extend(args);
    ferry(rootless, &all, &[])
}

/// `ferry --root S/state ARGS...`
fn runtime(s: &Scratch, rootless: bool, args: &[&str]) -> Run {
    let state = s.path("state").display().to_string();
    let mut all = vec!["--root", &state];
    all.extend(args);
    ferry(rootless, &all, &[])
}

/// A scratch dir with the busybox test image imported as `bb` (owned by
/// the test user when rootless).
fn setup(name: &str, rootless: bool) -> Scratch {
    let s = Scratch::new(name);
    let layout = s.path("layout");
    oci_layout(&layout, &busybox_image(common::rootfs_template()), "v1");
    fs::create_dir_all(s.path("www")).unwrap();
    fs::write(s.path("www/index.html"), "hello from the container\n").unwrap();
    if rootless {
        s.give_to_ferrytest();
    }
    let r = format!("oci:{}:v1", layout.display());
    image(&s, rootless, &["import", "--name", "bb", &r]).ok();
    s
}

/// Whether this test can run rootless here (skips, or fails under
/// FERRY_NO_SKIP, when not).
fn rootless_ok() -> bool {
    if have_ferrytest() {
        return true;
    }
    common::skip("rootless image run: needs root and the user ferrytest");
    false
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-m", "2", url])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("0.0.0.0", port)).is_ok()
}

/// A detached busybox httpd with `-p PORT:8080`, fetched from the host on
/// 127.0.0.1 and on the host's address; after `kill KILL` the ports are
/// free and no pasta remains, and delete works.
fn web_server(rootless: bool) {
    let _tun = TUN.read().unwrap_or_else(|e| e.into_inner());
    let s = setup(if rootless { "web-rl" } else { "web" }, rootless);
    let port = free_port();
    let www = s.path("www").display().to_string();
    let publish = format!("{port}:8080");
    let port2 = free_port();
    let publish2 = format!("127.0.0.1:{port2}:8080");
    let volume = format!("{www}:/www:ro");
    let id = "web";
    let run = image(
        &s,
        rootless,
        &[
            "run", "-d", "--name", id, "-p", &publish, "-p", &publish2, "-v", &volume, "bb",
            "httpd", "-f", "-p", "8080", "-h", "/www",
        ],
    );
    let run = run.ok();
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(pastas_under(&s.dir).len(), 1, "one pasta for the container");
    let local = format!("http://127.0.0.1:{port}/");
    let mut page = None;
    common::wait_until(Duration::from_secs(5), || {
        page = curl(&local);
        page.is_some()
    });
    assert_eq!(page.as_deref(), Some("hello from the container\n"));
    let external = format!("http://{}:{port}/", host_address());
    assert_eq!(
        curl(&external).as_deref(),
        Some("hello from the container\n"),
        "published on the host's address too"
    );
    let only_local = format!("http://127.0.0.1:{port2}/");
    assert_eq!(
        curl(&only_local).as_deref(),
        Some("hello from the container\n")
    );
    let not_external = format!("http://{}:{port2}/", host_address());
    assert!(
        curl(&not_external).is_none(),
        "-p 127.0.0.1:... binds loopback only"
    );
    runtime(&s, rootless, &["kill", id, "KILL"]).ok();
    common::wait_until(Duration::from_secs(5), || {
        runtime(&s, rootless, &["state", id])
            .stdout
            .contains("\"stopped\"")
    });
    assert!(port_is_free(port), "port {port} is free after kill");
    assert!(port_is_free(port2), "port {port2} is free after kill");
    assert_eq!(
        pastas_under(&s.dir),
        Vec::<i32>::new(),
        "no pasta after kill"
    );
    runtime(&s, rootless, &["delete", id]).ok();
    assert!(curl(&local).is_none());
    assert_eq!(pastas_under(&s.dir), Vec::<i32>::new(), "no pasta left");
}

root_and_rootless!(
    published_port_serves_the_host_as_root,
    published_port_serves_the_host_rootless,
    web_server
);

/// Inside a private network: loopback works, a server on the host's own
/// (non-loopback) address is reachable, and resolv.conf names pasta's DNS
/// forwarder, which answers.
fn inside_network(rootless: bool) {
    let _tun = TUN.read().unwrap_or_else(|e| e.into_inner());
    let s = setup(if rootless { "net-rl" } else { "net" }, rootless);
    let addr = host_address();
    let port = free_port();
    let mut server = Command::new("busybox")
        .args(["httpd", "-f", "-p", &format!("{addr}:{port}"), "-h"])
        .arg(s.path("www"))
        .spawn()
        .unwrap();
    let script = format!(
        "httpd -p 127.0.0.1:81 -h /etc && wget -q -O- http://127.0.0.1:81/hostname; \
         wget -q -O- http://{addr}:{port}/; cat /etc/resolv.conf; \
         nslookup ferry-test.invalid 2>&1; hostname"
    );
    let out = image(
        &s,
        rootless,
        &[
            "run",
            "--rm",
            "--hostname",
            "inner",
            "bb",
            "sh",
            "-c",
            &script,
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    let out = out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"inner"), "loopback: {}", out.stdout);
    assert!(
        out.stdout.contains("hello from the container\n"),
        "the host server at {addr}: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("nameserver 10.0.2.3\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Server:") && !out.stdout.contains("timed out"),
        "the DNS forwarder answers: {}",
        out.stdout
    );
    assert_eq!(lines.last(), Some(&"inner"));
    assert_eq!(pastas_under(&s.dir), Vec::<i32>::new(), "no pasta left");
    assert_eq!(fs::read_dir(s.path("store/bundles")).unwrap().count(), 0);
}

root_and_rootless!(
    loopback_outbound_and_dns_work_inside_as_root,
    loopback_outbound_and_dns_work_inside_rootless,
    inside_network
);

/// `-v` writes land on the host as the caller expects (rootless: the
/// caller owns what container root writes); `:ro` refuses writes.
fn volumes(rootless: bool) {
    let s = setup(if rootless { "vol-rl" } else { "vol" }, rootless);
    let (out_dir, ro_dir) = (s.path("out"), s.path("ro"));
    for d in [&out_dir, &ro_dir] {
        fs::create_dir_all(d).unwrap();
        if rootless {
            Command::new("chown")
                .args(["ferrytest:ferrytest"])
                .arg(d)
                .status()
                .unwrap();
        }
    }
    let v1 = format!("{}:/out", out_dir.display());
    let v2 = format!("{}:/ro:ro", ro_dir.display());
    let out = image(
        &s,
        rootless,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &v1,
            "-v",
            &v2,
            "bb",
            "sh",
            "-c",
            "echo hi > /out/f && touch /ro/x; echo rc=$?",
        ],
    )
    .ok();
    assert!(out.stdout.contains("rc=1"), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read_to_string(out_dir.join("f")).unwrap(), "hi\n");
    assert!(!ro_dir.join("x").exists());
    let want = if rootless {
        nix::unistd::User::from_name("ferrytest")
            .unwrap()
            .unwrap()
            .uid
            .as_raw()
    } else {
        0
    };
    assert_eq!(fs::metadata(out_dir.join("f")).unwrap().uid(), want);
}

root_and_rootless!(
    volumes_land_with_the_callers_owner_as_root,
    volumes_land_with_the_callers_owner_rootless,
    volumes
);

/// `-e`, `--env-file`, `-w`, `-u`, `--entrypoint`, `--hostname`,
/// `--read-only`, `--cap-add`/`--cap-drop`, seen from inside.
fn process_flags(rootless: bool) {
    let s = setup(if rootless { "flags-rl" } else { "flags" }, rootless);
    let env_file = s.path("env");
    fs::write(&env_file, "# comment\nFROM_FILE=yes\n\nFOO=from-file\n").unwrap();
    let env_file = env_file.display().to_string();
    let script = "echo env=$FOO,$FROM_FILE,$SPACED; id -u; id -g; pwd; hostname; \
                  touch /x 2>/dev/null && echo root-writable; touch /tmp/y && echo tmp-writable; \
                  grep CapBnd /proc/self/status";
    let out = image(
        &s,
        rootless,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--env-file",
            &env_file,
            "-e",
            "FOO=bar",
            "-e",
            "SPACED=a b",
            "-w",
            "/tmp",
            "-u",
            "1000:1001",
            "--hostname",
            "box",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_RAW",
            "--entrypoint",
            "/bin/sh",
            "bb",
            "-c",
            script,
        ],
    )
    .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "env=bar,yes,a b",
            "1000",
            "1001",
            "/tmp",
            "box",
            "tmp-writable",
            "CapBnd:\t0000000000002000"
        ],
        "{}",
        out.stderr
    );
}

root_and_rootless!(
    process_flags_apply_inside_as_root,
    process_flags_apply_inside_rootless,
    process_flags
);

/// Each bad input: one clear line on stderr, a non-zero exit, and no
/// bundle, container state or pasta left.
#[test]
fn bad_inputs_leave_nothing_behind() {
    require_root!();
    let s = setup("bad", false);
    let busy = TcpListener::bind("0.0.0.0:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let in_use = format!("{busy_port}:80");

    let missing = format!("{}:/x", s.path("nope").display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-p", &in_use], "already in use"),
        (vec!["-p", "80"], "malformed -p"),
        (vec!["-p", "1.2.3:8080:80"], "malformed -p"),
        (vec!["-v", &missing], "No such file"),
        (vec!["-u", "nosuch"], "not in the image's /etc/passwd"),
        (vec!["--network", "bridge"], "unknown network"),
        (vec!["--cap-add", "CAP_FLY"], "unknown capability"),
        (vec!["--rm", "-d"], "cannot be combined"),
        (vec!["--hostname", "a_b"], "not a valid host name"),
        (vec!["--bogus"], "--bogus"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["run", "--name", "bad"];
        args.extend(&flags);
        args.extend(["bb", "true"]);
        let out = image(&s, false, &args);
        assert_ne!(out.code, 0, "{flags:?} succeeded");
        assert!(out.stderr.contains(needle), "{flags:?}: {}", out.stderr);
        if needle != "--bogus" {
            assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        }
        assert!(out.stdout.is_empty(), "{flags:?}: {}", out.stdout);
        let bundles = fs::read_dir(s.path("store/bundles"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(bundles, 0, "{flags:?} left a bundle");
        let states = fs::read_dir(s.path("state"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(states, 0, "{flags:?} left container state");
        assert_eq!(pastas_under(&s.dir), Vec::<i32>::new(), "{flags:?}");
    }
    drop(busy);
}

/// pasta failing after the container was created (here a stand-in that
/// fails as pasta does on a busy port): one error, and the container, its
/// state and the bundle are gone.
#[test]
fn pasta_failure_after_create_cleans_up() {
    require_root!();
    let s = setup("late", false);
    let bin = s.path("fakebin");
    fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("pasta");
    fs::write(
        &fake,
        "#!/bin/sh\necho 'Failed to bind any port for -t 8080:80, exiting' >&2\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let state = s.path("state").display().to_string();
    let store = s.path("store").display().to_string();
    let out = ferry(
        false,
        &[
            "--root", &state, "image", "--store", &store, "run", "--name", "late", "bb", "true",
        ],
        &[("PATH", &path)],
    );
    assert_ne!(out.code, 0);
    assert_eq!(
        out.stderr.trim(),
        "ferry: pasta failed: Failed to bind any port for -t 8080:80, exiting",
        "{}",
        out.stderr
    );
    assert_eq!(fs::read_dir(s.path("store/bundles")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(s.path("state")).unwrap().count(), 0);
    assert!(common::procs_with_root(&s.dir).is_empty());
}

/// Rootless, an unusable /dev/net/tun is named in the error, and nothing
/// is left behind.
#[test]
fn unusable_tun_is_named_in_the_error() {
    if !rootless_ok() {
        return;
    }
    let s = setup("tun", true);
    let mode = fs::metadata("/dev/net/tun").unwrap().mode() & 0o7777;
    let set = |m: u32| {
        Command::new("chmod")
            .arg(format!("{m:o}"))
            .arg("/dev/net/tun")
            .status()
            .unwrap()
    };
    let _tun = TUN.write().unwrap_or_else(|e| e.into_inner());
    set(0o600);
    let out = image(&s, true, &["run", "--rm", "bb", "true"]);
    set(mode);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("/dev/net/tun") && out.stderr.contains("0666"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read_dir(s.path("store/bundles")).unwrap().count(), 0);
}

/// `--network host` shares the host's interfaces and hostname; `none`
/// has loopback only (and no pasta).
#[test]
fn host_and_none_networks() {
    require_root!();
    let s = setup("modes", false);
    let script = "grep -c : /proc/net/dev; hostname";
    let host = image(
        &s,
        false,
        &["run", "--rm", "--network", "host", "bb", "sh", "-c", script],
    )
    .ok();
    let host_ifaces = fs::read_to_string("/proc/net/dev")
        .unwrap()
        .matches(':')
        .count();
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        host.stdout,
        format!("{host_ifaces}\n{host_name}"),
        "{}",
        host.stderr
    );
    let none = image(
        &s,
        false,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            "quiet",
            "bb",
            "sh",
            "-c",
            script,
        ],
    )
    .ok();
    assert_eq!(none.stdout, "1\nquiet\n", "{}", none.stderr);
}

/// Without `-i` the container reads an empty standard input; with it,
/// the caller's.
#[test]
fn interactive_keeps_stdin_open() {
    require_root!();
    let s = setup("stdin", false);
    let state = s.path("state").display().to_string();
    let store = s.path("store").display().to_string();
    let cat = |extra: &[&str]| {
        let mut child = Command::new(common::ferry_bin())
            .args([
                "--root",
                &state,
                "image",
                "--store",
                &store,
                "run",
                "--rm",
                "--network",
                "none",
            ])
            .args(extra)
            .args(["bb", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(b"typed\n");
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(cat(&["-i"]), "typed\n");
    assert_eq!(cat(&[]), "");
}
