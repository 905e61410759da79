//! OCI lifecycle hooks.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A hook running host `/bin/sh` that saves its stdin (the state JSON) to
/// `dir/<name>.json` and appends `<name>` to `dir/order`.
fn recording_hook(dir: &Path, name: &str) -> Value {
    let d = dir.display();
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {d}/{name}.json; echo \"{name} $HOOK_VAR\" >> {d}/order")],
        "env": ["HOOK_VAR=hv"],
    })
}

fn read_state(dir: &Path, name: &str) -> Value {
    let p = dir.join(format!("{name}.json"));
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{name} hook did not run ({e})"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{name} hook got invalid state JSON ({e}): {text:?}"))
}

fn hook_dir(b: &Bundle) -> PathBuf {
    let d = b.path("hooks");
    fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn all_hooks_run_in_order_with_state() {
    require_root!();
    let mut b = Bundle::new("hooksall");
    let d = hook_dir(&b);
    // the container sees the same dir at /hooks (startContainer runs in
    // the container and resolves its path there)
    b.bind(&d, "/hooks", &["rw"]);
    let inside = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", "cat > /hooks/startContainer.json; echo \"startContainer $HOOK_VAR\" >> /hooks/order"],
        "env": ["HOOK_VAR=hv"],
    });
    b.set(
        "/hooks",
        json!({
            "prestart": [recording_hook(&d, "prestart")],
            "createRuntime": [recording_hook(&d, "createRuntime")],
            "createContainer": [recording_hook(&d, "createContainer")],
            "startContainer": [inside],
            "poststart": [recording_hook(&d, "poststart")],
            "poststop": [recording_hook(&d, "poststop")],
        }),
    );
    b.args(&["true"]);
    let o = b.run(&[]);
    assert!(o.success(), "{}", o.describe());

    let order = fs::read_to_string(d.join("order")).unwrap_or_default();
    let names: Vec<&str> = order
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    for l in order.lines() {
        assert!(l.ends_with(" hv"), "hook env not passed: {l:?}");
    }
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("{n} hook did not run; order: {names:?}"))
    };
    for (a, b_) in [
        ("prestart", "createRuntime"),
        ("createRuntime", "createContainer"),
        ("createContainer", "startContainer"),
        ("createContainer", "poststart"),
        ("startContainer", "poststop"),
        ("poststart", "poststop"),
    ] {
        assert!(pos(a) < pos(b_), "{a} must run before {b_}: {names:?}");
    }
    assert_eq!(names.len(), 6, "each hook exactly once: {names:?}");

    let canon = fs::canonicalize(&b.dir).unwrap();
    for n in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let st = read_state(&d, n);
        assert_eq!(st["id"], b.id.as_str(), "{n}: {st}");
        assert_eq!(
            st["bundle"].as_str().map(Path::new),
            Some(canon.as_path()),
            "{n}: {st}"
        );
        assert!(st["ociVersion"].is_string(), "{n}: {st}");
    }
    for n in ["prestart", "createRuntime", "createContainer", "poststart"] {
        let st = read_state(&d, n);
        assert!(
            st["pid"].as_i64().unwrap_or(0) > 0,
            "{n} state must carry the init pid: {st}"
        );
    }
    assert_eq!(read_state(&d, "poststart")["status"], "running");
    assert_eq!(read_state(&d, "poststop")["status"], "stopped");
}

#[test]
fn create_runtime_hook_sees_init_pid_namespaces() {
    // createRuntime runs in the runtime namespace after the container's
    // namespaces exist: /proc/<pid>/ns/net of the state pid is the
    // container's, not the host's (e.g. for network setup).
    require_root!();
    let mut b = Bundle::new("hooksns");
    let d = hook_dir(&b);
    let hook = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("pid=$(sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); readlink /proc/$pid/ns/net > {}/netns; readlink /proc/self/ns/net > {}/hookns", d.display(), d.display())],
    });
    b.set("/hooks", json!({"createRuntime": [hook]}));
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let pid = b.pid();
    let container_ns = fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        fs::read_to_string(d.join("netns")).unwrap().trim(),
        container_ns
    );
    assert_eq!(
        fs::read_to_string(d.join("hookns")).unwrap().trim(),
        host_ns("net"),
        "createRuntime must run in the runtime namespace"
    );
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    require_root!();
    let mut b = Bundle::new("hooksfail");
    b.set(
        "/hooks/createRuntime",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]),
    );
    b.args(&["sleep", "30"]);
    let o = b.ferry(&["create", "--bundle", b.dir_str(), &b.id]);
    o.assert_clean_error(Some("createRuntime"));
    b.assert_state_root_empty();
    assert!(wait_until(Duration::from_secs(5), || procs_with_root(
        &b.rootfs()
    )
    .is_empty()));
}

#[test]
fn hook_timeout() {
    require_root!();
    let mut b = Bundle::new("hookstimeout");
    b.set(
        "/hooks/prestart",
        json!([{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]),
    );
    b.args(&["sleep", "30"]);
    let t = Instant::now();
    let o = b.ferry(&["create", "--bundle", b.dir_str(), &b.id]);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "hook timeout ignored ({:?})",
        t.elapsed()
    );
    o.assert_clean_error(None);
    b.assert_state_root_empty();
}

#[test]
fn failing_poststart_hook_is_not_fatal() {
    require_root!();
    let mut b = Bundle::new("hookspoststart");
    b.set("/hooks/poststart", json!([{"path": "/bin/false"}]));
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let o = b.ferry(&["start", &b.id]);
    assert!(
        o.success(),
        "a failing poststart hook must only warn:\n{}",
        o.describe()
    );
    assert_eq!(b.status(), "running");
}

#[test]
fn poststop_runs_on_delete() {
    require_root!();
    let mut b = Bundle::new("hookspoststop");
    let d = hook_dir(&b);
    b.set("/hooks/poststop", json!([recording_hook(&d, "poststop")]));
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    assert!(!d.join("poststop.json").exists(), "poststop ran too early");
    b.run_ok(&["delete", "--force", &b.id]);
    let st = read_state(&d, "poststop");
    assert_eq!(st["id"], b.id.as_str());
}
