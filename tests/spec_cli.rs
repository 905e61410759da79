//! `ferry spec`, global flags, logging.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

fn spec_in(dir: &std::path::Path, extra: &[&str]) -> Value {
    let o = Command::new(ferry_bin())
        .arg("spec")
        .args(extra)
        .arg("--bundle")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ferry spec failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = fs::read_to_string(dir.join("config.json")).expect("config.json written");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("config.json is not JSON: {e}\n{text}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

#[test]
fn spec_defaults_are_runc_like() {
    let b = Bundle::new_raw("specdefaults");
    let c = spec_in(&b.dir, &[]);
    assert!(
        c["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{c}"
    );
    assert_eq!(c["process"]["terminal"], true);
    assert_eq!(c["process"]["args"], json!(["sh"]));
    assert_eq!(c["process"]["cwd"], "/");
    assert_eq!(c["process"]["user"]["uid"], 0);
    assert_eq!(c["process"]["user"]["gid"], 0);
    assert!(
        strings(&c["process"]["env"])
            .iter()
            .any(|e| e.starts_with("PATH=")),
        "{c}"
    );
    assert_eq!(c["process"]["noNewPrivileges"], true);
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["root"]["readonly"], true);
    assert!(c["hostname"].as_str().is_some_and(|h| !h.is_empty()), "{c}");
    let caps = strings(&c["process"]["capabilities"]["bounding"]);
    for cap in ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"] {
        assert!(caps.iter().any(|x| x == cap), "{cap} missing: {caps:?}");
    }
    let rl = c["process"]["rlimits"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(rl.iter().any(|r| r["type"] == "RLIMIT_NOFILE"), "{c}");

    let ns: Vec<String> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = ns.clone();
    sorted.sort();
    // As runc: a cgroup namespace only on a cgroup v2 host.
    let mut want = vec!["ipc", "mount", "network", "pid", "uts"];
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        want.insert(0, "cgroup");
    }
    assert_eq!(sorted, want, "{ns:?}");
    assert!(
        c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.get("path").is_none())
    );

    let mounts: Vec<(String, String)> = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["destination"].as_str().unwrap().to_string(),
                m["type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for (dest, ty) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "cgroup"),
    ] {
        assert!(
            mounts.iter().any(|(d, t)| d == dest && t == ty),
            "mount {dest} ({ty}) missing: {mounts:?}"
        );
    }
    let masked = strings(&c["linux"]["maskedPaths"]);
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware",
    ] {
        assert!(
            masked.iter().any(|x| x == p),
            "maskedPaths lacks {p}: {masked:?}"
        );
    }
    let ro = strings(&c["linux"]["readonlyPaths"]);
    for p in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
    ] {
        assert!(ro.iter().any(|x| x == p), "readonlyPaths lacks {p}: {ro:?}");
    }
}

#[test]
fn spec_defaults_to_current_directory() {
    let b = Bundle::new_raw("speccwd");
    let o = Command::new(ferry_bin())
        .arg("spec")
        .current_dir(&b.dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value =
        serde_json::from_str(&fs::read_to_string(b.dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["root"]["path"], "rootfs");
}

#[test]
fn spec_rootless() {
    let b = Bundle::new_raw("specrootless");
    let c = spec_in(&b.dir, &["--rootless"]);
    let ns: Vec<String> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ns.iter().any(|n| n == "user"),
        "rootless spec needs a user namespace: {ns:?}"
    );
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() } as i64;
    // SAFETY: as above.
    let gid = unsafe { libc::getegid() } as i64;
    let um = &c["linux"]["uidMappings"][0];
    let gm = &c["linux"]["gidMappings"][0];
    assert_eq!(um["hostID"].as_i64(), Some(uid), "{c}");
    assert_eq!(um["containerID"].as_i64(), Some(0), "{c}");
    assert!(um["size"].as_i64().unwrap_or(0) >= 1, "{c}");
    assert_eq!(gm["hostID"].as_i64(), Some(gid), "{c}");
    // devpts gid=5 cannot be mapped in a rootless container
    let devpts = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/dev/pts")
        .expect("devpts");
    assert!(
        !strings(&devpts["options"]).iter().any(|o| o == "gid=5"),
        "{devpts}"
    );
}

#[test]
fn version_flag() {
    let o = Command::new(ferry_bin()).arg("--version").output().unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.to_lowercase().contains("version"), "{out}");
    assert!(
        out.contains("spec"),
        "--version should mention the OCI spec version (runc style): {out}"
    );
}

#[test]
fn json_log_file() {
    require_root!();
    let mut b = Bundle::new("jsonlog");
    let log = b.path("ferry.log");
    b.sh("true");
    b.save();
    let logs = log.to_str().unwrap();
    let o = b.ferry(&[
        "--log",
        logs,
        "--log-format",
        "json",
        "--debug",
        "run",
        "--bundle",
        b.dir_str(),
        &b.id,
    ]);
    assert!(o.success(), "{}", o.describe());
    // an error is logged too
    let o = b.ferry(&[
        "--log",
        logs,
        "--log-format",
        "json",
        "state",
        "does-not-exist-here",
    ]);
    o.assert_clean_error(Some("does not exist"));
    let text = fs::read_to_string(&log).expect("log file written");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "--debug run wrote nothing to the log");
    for l in &lines {
        let v: Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"));
        assert!(
            v["level"].is_string() && v["msg"].is_string(),
            "log line lacks level/msg: {l}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("does not exist") && l.contains("error")),
        "the error was not logged:\n{text}"
    );
}

#[test]
fn text_log_file() {
    require_root!();
    let b = Bundle::new("textlog");
    let log = b.path("ferry-text.log");
    let o = b.ferry(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "text",
        "state",
        "nope",
    ]);
    o.assert_clean_error(Some("does not exist"));
    let text = fs::read_to_string(&log).expect("log file written");
    assert!(text.contains("does not exist"), "{text}");
    assert!(
        serde_json::from_str::<Value>(text.lines().next().unwrap_or("")).is_err(),
        "text log should not be JSON: {text}"
    );
}

#[test]
fn root_dir_is_created_if_missing() {
    require_root!();
    let mut b = Bundle::new("newroot");
    let root = b.path("fresh/nested/root");
    b.args(&["sleep", "30"]);
    b.save();
    let run = |args: &[&str]| -> std::process::ExitStatus {
        let mut c = Command::new(ferry_bin())
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_timeout(&mut c, TIMEOUT).unwrap_or_else(|| {
            let _ = c.kill();
            panic!("ferry {args:?} timed out")
        })
    };
    assert!(
        run(&["create", "--bundle", b.dir_str(), &b.id]).success(),
        "create with a missing --root dir failed"
    );
    assert!(
        root.join(&b.id).exists() || fs::read_dir(&root).map(|d| d.count() > 0).unwrap_or(false),
        "no state under the new root"
    );
    let st = Command::new(ferry_bin())
        .arg("--root")
        .arg(&root)
        .args(["state", &b.id])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(run(&["delete", "--force", &b.id]).success());
}

// ---------------------------------------------------------------------------
// runc-compatible command line (issue 14), compared with runc where it runs
// ---------------------------------------------------------------------------

/// runc on the same bundle, with its own state root under the test's dir;
/// `None` when runc is not installed (the ferry half of a test still runs).
struct Runc {
    root: std::path::PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
    calls: std::cell::Cell<usize>,
}

impl Runc {
    fn new(b: &Bundle) -> Option<Runc> {
        let found = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"]
            .iter()
            .any(|p| std::path::Path::new(p).exists());
        if !found {
            eprintln!("note: runc not installed: ferry's half of the test only");
            return None;
        }
        Some(Runc {
            root: b.path("runc-state"),
            ids: Default::default(),
            calls: Default::default(),
        })
    }

    /// `runc --root R ARGS` to completion, stdio to files (a detached
    /// container keeps them open).
    fn run(&self, b: &Bundle, args: &[&str]) -> Out {
        b.save();
        if matches!(args[0], "run" | "create") {
            self.ids.borrow_mut().push(args[args.len() - 1].to_string());
        }
        let n = self.calls.get();
        self.calls.set(n + 1);
        let out = b.path(&format!("runc-{n}-{}.out", args[0]));
        let err = b.path(&format!("runc-{n}-{}.err", args[0]));
        let mut c = Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&b.dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let status = wait_timeout(&mut c, TIMEOUT).unwrap_or_else(|| {
            let _ = c.kill();
            panic!("runc {args:?} timed out")
        });
        Out {
            cmd: format!("runc {}", args.join(" ")),
            status,
            stdout: fs::read_to_string(&out).unwrap_or_default(),
            stderr: fs::read_to_string(&err).unwrap_or_default(),
            stdout_path: out,
        }
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The top-level keys of a JSON object, in the order the text gives them.
fn key_order(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text.trim());
    struct Keys<'a>(&'a mut Vec<String>);
    impl<'de> serde::de::Visitor<'de> for Keys<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                self.0.push(k);
            }
            Ok(())
        }
    }
    serde::Deserializer::deserialize_map(&mut de, Keys(&mut keys))
        .unwrap_or_else(|e| panic!("not a JSON object ({e}): {text}"));
    keys
}

/// The first element of a JSON array, as text.
fn first_element(text: &str) -> String {
    let v: Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {text}"));
    assert_eq!(arr.len(), 1, "{text}");
    // Re-cut the element from the text to keep its key order.
    let t = text.trim();
    t[1..t.len() - 1].to_string()
}

#[test]
fn debug_lines_reach_stderr_or_the_log_file_also_for_exec() {
    require_root!();
    let mut b = Bundle::new("debuglog");
    b.args(&["sleep", "30"]);
    let o = b.ferry(&["--debug", "run", "-d", "--bundle", b.dir_str(), &b.id]);
    assert!(o.success(), "{}", o.describe());
    assert!(
        o.stderr.lines().any(|l| l.contains("level=debug")),
        "--debug without --log: debug lines on stderr:\n{}",
        o.describe()
    );
    let o = b.run_ok(&["--debug", "exec", &b.id, "true"]);
    assert!(
        o.stderr.lines().any(|l| l.contains("level=debug")),
        "exec --debug:\n{}",
        o.describe()
    );
    let text_log = b.path("debug.log");
    let o = b.run_ok(&[
        "--debug",
        "--log",
        text_log.to_str().unwrap(),
        "exec",
        &b.id,
        "true",
    ]);
    let text = fs::read_to_string(&text_log).unwrap_or_default();
    assert!(
        text.lines().any(|l| l.contains("level=debug")),
        "text log has no debug line: {text:?}\n{}",
        o.describe()
    );
    assert!(
        !o.stderr.contains("level=debug"),
        "with --log the debug lines go to the file only (as runc):\n{}",
        o.describe()
    );
    let json_log = b.path("debug.json");
    b.run_ok(&[
        "--debug",
        "--log",
        json_log.to_str().unwrap(),
        "--log-format",
        "json",
        "exec",
        &b.id,
        "true",
    ]);
    let text = fs::read_to_string(&json_log).unwrap_or_default();
    assert!(
        text.lines().any(|l| l.contains(r#""level":"debug""#)),
        "JSON log has no debug line: {text:?}"
    );
    // Without --debug: no debug lines.
    let o = b.run_ok(&["exec", &b.id, "true"]);
    assert!(!o.stderr.contains("debug"), "{}", o.describe());
}

#[test]
fn kill_signal_zero_and_kill_all_of_a_stopped_container() {
    require_root!();
    let mut b = Bundle::new("kill0");
    b.args(&["sleep", "30"]);
    let runc = Runc::new(&b);
    b.run_ok(&["run", "-d", "--bundle", b.dir_str(), &b.id]);
    b.run_ok(&["kill", &b.id, "0"]);
    assert_eq!(b.status(), "running", "signal 0 must not hurt");
    b.run_ok(&["kill", &b.id, "KILL"]);
    b.wait_status("stopped", Duration::from_secs(10));
    let o = b.ferry(&["kill", &b.id, "0"]);
    o.assert_clean_error(Some("container not running"));
    let all = b.ferry(&["kill", "-a", &b.id, "0"]);
    assert!(
        all.success(),
        "kill -a of a stopped container: {}",
        all.describe()
    );
    if let Some(r) = runc {
        let id = format!("{}-runc", b.id);
        assert!(r.run(&b, &["run", "-d", &id]).success());
        assert!(r.run(&b, &["kill", &id, "0"]).success());
        assert!(r.run(&b, &["kill", &id, "KILL"]).success());
        assert!(wait_until(Duration::from_secs(10), || r
            .run(&b, &["state", &id])
            .stdout
            .contains("stopped")));
        let ro = r.run(&b, &["kill", &id, "0"]);
        assert_eq!(ro.success(), o.success(), "{}", ro.describe());
        assert!(
            ro.stderr.contains("container not running"),
            "{}",
            ro.describe()
        );
        assert_eq!(
            r.run(&b, &["kill", "-a", &id, "0"]).success(),
            all.success()
        );
    }
}

#[test]
fn sigkill_to_a_host_pid_namespace_container_kills_all_its_processes() {
    require_root!();
    let mut b = Bundle::new("killhostpid");
    b.remove_ns("pid");
    b.args(&["sleep", "30"]);
    b.run_ok(&["run", "-d", "--bundle", b.dir_str(), &b.id]);
    let pid_file = b.path("exec.pid");
    b.run_ok(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &b.id,
        "sleep",
        "31",
    ]);
    let other: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(other));
    b.run_ok(&["kill", &b.id, "KILL"]);
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(other)),
        "an exec'd process of a host-pid-namespace container survived kill KILL"
    );
    b.wait_status("stopped", Duration::from_secs(10));
}

/// The container init's directory in the v1 `pids` hierarchy.
fn pids_cgroup_dir(pid: i32) -> std::path::PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = text
        .lines()
        .find(|l| l.split(':').nth(1) == Some("pids"))
        .unwrap_or_else(|| panic!("no pids cgroup: {text}"));
    let rel = line.splitn(3, ':').nth(2).unwrap();
    std::path::Path::new("/sys/fs/cgroup/pids").join(rel.trim_start_matches('/'))
}

/// The `pids` line of `/proc/self/cgroup` printed by a process.
fn pids_line(out: &str) -> String {
    out.lines()
        .find(|l| l.split(':').nth(1) == Some("pids"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn exec_cgroup_puts_the_process_in_a_sub_cgroup() {
    require_root!();
    if !std::path::Path::new("/sys/fs/cgroup/pids").is_dir() {
        // The test drives the v1 pids hierarchy; make test runs on v1 hosts.
        panic!("this test needs the cgroup v1 pids hierarchy");
    }
    let mut b = Bundle::new("execcgroup");
    b.set("/linux/resources", json!({"pids": {"limit": 100}}));
    b.args(&["sleep", "30"]);
    b.run_ok(&["run", "-d", "--bundle", b.dir_str(), &b.id]);
    let dir = pids_cgroup_dir(b.pid());
    fs::create_dir(dir.join("sub")).unwrap();
    let o = b.run_ok(&[
        "exec",
        "--cgroup",
        "pids:sub",
        &b.id,
        "cat",
        "/proc/self/cgroup",
    ]);
    let line = pids_line(&o.stdout);
    assert!(
        line.ends_with("/sub"),
        "pids line {line:?}:\n{}",
        o.describe()
    );
    let o = b.ferry(&["exec", "--cgroup", "pids:missing", &b.id, "true"]);
    o.assert_clean_error(Some("does not exist"));
    let o = b.ferry(&["exec", "--cgroup", "pids:../../escape", &b.id, "true"]);
    o.assert_clean_error(Some("inside the container's cgroup"));
    let _ = b.ferry(&["delete", "--force", &b.id]);
    let _ = fs::remove_dir(dir.join("sub"));

    if let Some(r) = Runc::new(&b) {
        let id = format!("{}-runc", b.id);
        assert!(r.run(&b, &["run", "-d", &id]).success());
        let st: Value = serde_json::from_str(&r.run(&b, &["state", &id]).stdout).unwrap();
        let rdir = pids_cgroup_dir(st["pid"].as_i64().unwrap() as i32);
        fs::create_dir(rdir.join("sub")).unwrap();
        let ro = r.run(
            &b,
            &[
                "exec",
                "--cgroup",
                "pids:sub",
                &id,
                "cat",
                "/proc/self/cgroup",
            ],
        );
        assert!(pids_line(&ro.stdout).ends_with("/sub"), "{}", ro.describe());
        let _ = r.run(&b, &["delete", "--force", &id]);
        let _ = fs::remove_dir(rdir.join("sub"));
    }
}

#[test]
fn state_list_and_events_print_runcs_key_order() {
    require_root!();
    let mut b = Bundle::new("keyorder");
    b.set("/annotations", json!({"org.example": "v"}));
    b.set("/linux/resources", json!({"pids": {"limit": 100}}));
    b.args(&["sleep", "30"]);
    b.run_ok(&["run", "-d", "--bundle", b.dir_str(), &b.id]);
    let want = [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "annotations",
        "owner",
    ];
    let state = b.run_ok(&["state", &b.id]).stdout;
    assert_eq!(key_order(&state), want, "{state}");
    let list = b.run_ok(&["list", "--format", "json"]).stdout;
    assert_eq!(key_order(&first_element(&list)), want, "{list}");
    let events = b.run_ok(&["events", "--stats", &b.id]).stdout;
    assert_eq!(key_order(&events), ["type", "id", "data"], "{events}");
    assert!(events.starts_with(&format!(r#"{{"type":"stats","id":"{}","#, b.id)));

    if let Some(r) = Runc::new(&b) {
        let id = format!("{}-runc", b.id);
        assert!(r.run(&b, &["run", "-d", &id]).success());
        let rstate = r.run(&b, &["state", &id]).stdout;
        let rlist = r.run(&b, &["list", "--format", "json"]).stdout;
        let revents = r.run(&b, &["events", "--stats", &id]).stdout;
        // runc leaves out an empty owner in `state` only.
        let without_owner =
            |k: Vec<String>| -> Vec<String> { k.into_iter().filter(|k| k != "owner").collect() };
        assert_eq!(
            without_owner(key_order(&state)),
            without_owner(key_order(&rstate)),
            "{rstate}"
        );
        assert_eq!(
            key_order(&first_element(&list)),
            key_order(&first_element(&rlist))
        );
        assert_eq!(key_order(&events), key_order(&revents), "{revents}");
    }
}

#[test]
fn every_command_has_help_and_unknown_ones_say_so() {
    let ferry = |args: &[&str]| {
        Command::new(ferry_bin())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for cmd in [
        "checkpoint",
        "create",
        "delete",
        "events",
        "exec",
        "features",
        "kill",
        "list",
        "pause",
        "ps",
        "restore",
        "resume",
        "run",
        "spec",
        "start",
        "state",
        "update",
    ] {
        for args in [vec![cmd, "-h"], vec![cmd, "--help"], vec!["help", cmd]] {
            let o = ferry(&args);
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success(), "ferry {args:?}: {o:?}");
            assert!(
                out.lines().any(|l| l.contains(&format!("ferry {cmd}"))),
                "ferry {args:?} does not name the command:\n{out}"
            );
        }
    }
    for args in [&["foo", "-h"][..], &["help", "foo"], &["foo"]] {
        let o = ferry(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "ferry {args:?}");
        assert!(
            err.contains("No help topic for 'foo'"),
            "ferry {args:?}: {err}"
        );
    }
}

/// What this host's CRIU says: `None` if not installed, else whether
/// `criu check` passes.
fn criu_works() -> Option<bool> {
    Command::new("criu")
        .arg("check")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .map(|s| s.success())
}

#[test]
fn checkpoint_and_restore_say_why_they_cannot_run() {
    require_root!();
    let mut b = Bundle::new("checkpoint");
    b.args(&["sleep", "30"]);
    b.run_ok(&["run", "-d", "--bundle", b.dir_str(), &b.id]);
    let image = b.path("ckpt");
    let expected = match criu_works() {
        None => "criu is not installed",
        Some(false) => "criu cannot run here",
        Some(true) => {
            // Where CRIU works, the systemd guest's checks checkpoint and
            // restore a running counter (integration/systemd-guest/checks.sh).
            return common::skip("checkpoint_and_restore_say_why: criu works on this host");
        }
    };
    let o = b.ferry(&["checkpoint", "--image-path", image.to_str().unwrap(), &b.id]);
    o.assert_one_line_error(Some(expected));
    o.assert_one_line_error(Some("checkpoint is not supported"));
    assert_eq!(
        b.status(),
        "running",
        "a failed checkpoint leaves it running"
    );
    let o = b.ferry(&["checkpoint", "nope"]);
    o.assert_one_line_error(Some("does not exist"));
    let other = format!("{}-restored", b.id);
    let o = b.ferry(&[
        "restore",
        "--image-path",
        image.to_str().unwrap(),
        "--bundle",
        b.dir_str(),
        "-d",
        &other,
    ]);
    o.assert_one_line_error(Some(expected));
    o.assert_one_line_error(Some("restore is not supported"));
    b.assert_no_state(&other);
}
