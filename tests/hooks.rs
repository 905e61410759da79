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

/// A hook running host `/bin/sh -c script` with exactly `env`.
fn sh_hook(script: &str, env: &[&str]) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": env})
}

#[test]
fn create_time_hooks_see_status_created() {
    // The runtime spec: "created" once the environment exists (step 2 of
    // the lifecycle), which is before prestart, createRuntime and
    // createContainer run; crun says so too (runc 1.1 says "creating").
    require_root!();
    let mut b = Bundle::new("hookscreated");
    let d = hook_dir(&b);
    b.set(
        "/hooks",
        json!({
            "prestart": [recording_hook(&d, "prestart")],
            "createRuntime": [recording_hook(&d, "createRuntime")],
            "createContainer": [recording_hook(&d, "createContainer")],
        }),
    );
    b.args(&["sleep", "30"]);
    b.create(&[]);
    for n in ["prestart", "createRuntime", "createContainer"] {
        assert_eq!(read_state(&d, n)["status"], "created", "{n}");
    }
}

#[test]
fn a_container_being_created_does_not_exist_for_state_and_list() {
    // As runc and crun: `state` polled while `create` runs (here from a
    // prestart hook) fails with "does not exist", and `list` leaves the
    // container out; once `create` returns, `state` says "created".
    require_root!();
    let mut b = Bundle::new("hookspoll");
    let d = hook_dir(&b);
    let ferry = format!(
        "{} --root {}",
        ferry_bin().display(),
        b.state_root.display()
    );
    let script = format!(
        "cat >/dev/null; {ferry} state {id} >{d}/state.out 2>{d}/state.err; echo $? >{d}/state.rc; \
         {ferry} list --format json >{d}/list.out 2>&1",
        id = b.id,
        d = d.display()
    );
    b.set("/hooks/prestart", json!([sh_hook(&script, &[])]));
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let read = |n: &str| fs::read_to_string(d.join(n)).unwrap_or_default();
    assert_ne!(
        read("state.rc").trim(),
        "0",
        "state.out: {}",
        read("state.out")
    );
    assert!(
        read("state.err").contains("does not exist"),
        "state during create: {:?} {:?}",
        read("state.out"),
        read("state.err")
    );
    assert!(!read("state.out").contains("creating"));
    let list: Value = serde_json::from_str(read("list.out").trim())
        .unwrap_or_else(|e| panic!("list during create ({e}): {}", read("list.out")));
    assert_eq!(list, json!([]), "list during create");
    assert_eq!(b.status(), "created");
}

#[test]
fn hooks_get_exactly_their_env_and_runcs_working_directory() {
    require_root!();
    let mut b = Bundle::new("hooksenvcwd");
    let d = hook_dir(&b);
    let rec = |n: &str| {
        sh_hook(
            &format!(
                "cat >/dev/null; env >{d}/{n}.env; pwd >{d}/{n}.cwd",
                d = d.display()
            ),
            &["ONLY=this", "AND=that=too"],
        )
    };
    b.set(
        "/hooks",
        json!({
            "prestart": [rec("prestart")],
            "createRuntime": [rec("createRuntime")],
            "createContainer": [rec("createContainer")],
            "poststart": [rec("poststart")],
            "poststop": [rec("poststop")],
        }),
    );
    b.args(&["sleep", "30"]);
    // From elsewhere, with something in ferry's own environment.
    let away = |c: &mut std::process::Command| {
        c.current_dir("/").env("FERRY_TEST_LEAK", "1");
    };
    let o = b.ferry_with(&["create", "--bundle", b.dir_str(), &b.id], away);
    assert!(o.success(), "{}", o.describe());
    assert!(b.ferry_with(&["start", &b.id], away).success());
    assert!(b.ferry_with(&["delete", "--force", &b.id], away).success());
    let bundle = fs::canonicalize(&b.dir).unwrap();
    let rootfs = bundle.join("rootfs");
    for (n, want_cwd) in [
        ("prestart", &bundle),
        ("createRuntime", &bundle),
        ("createContainer", &rootfs),
        ("poststart", &bundle),
        ("poststop", &bundle),
    ] {
        let env = fs::read_to_string(d.join(format!("{n}.env")))
            .unwrap_or_else(|e| panic!("{n} hook did not run: {e}"));
        // sh itself exports PWD; everything else must be the config's.
        let mut vars: Vec<&str> = env.lines().filter(|l| !l.starts_with("PWD=")).collect();
        vars.sort();
        assert_eq!(vars, ["AND=that=too", "ONLY=this"], "{n} env");
        let cwd = fs::read_to_string(d.join(format!("{n}.cwd"))).unwrap();
        assert_eq!(Path::new(cwd.trim()), want_cwd.as_path(), "{n} cwd");
    }
}

#[test]
fn failing_poststart_and_poststop_hooks_warn_and_the_rest_still_run() {
    // The runtime spec (and crun): a failing poststart or poststop hook is
    // logged as a warning; the remaining hooks and the lifecycle go on.
    // runc 1.1 runs poststart hooks inside `create` and fails it instead
    // (docs/engines.md).
    require_root!();
    let mut b = Bundle::new("hookspostfail");
    let d = hook_dir(&b);
    let mark = |n: &str| sh_hook(&format!("cat >/dev/null; touch {}/{n}", d.display()), &[]);
    let fail = sh_hook("cat >/dev/null; exit 3", &[]);
    b.set(
        "/hooks",
        json!({
            "poststart": [fail.clone(), mark("poststart-second")],
            "poststop": [fail, mark("poststop-second")],
        }),
    );
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let o = b.ferry(&["start", &b.id]);
    assert!(o.success(), "{}", o.describe());
    assert!(
        o.stderr.contains("warn") && o.stderr.contains("poststart"),
        "the failure must be reported as a warning:\n{}",
        o.describe()
    );
    assert!(
        d.join("poststart-second").exists(),
        "second poststart hook skipped"
    );
    assert_eq!(b.status(), "running");
    let o = b.ferry(&["delete", "--force", &b.id]);
    assert!(o.success(), "{}", o.describe());
    assert!(o.stderr.contains("poststop"), "{}", o.describe());
    assert!(
        d.join("poststop-second").exists(),
        "second poststop hook skipped"
    );
    b.assert_state_root_empty();
}

#[test]
fn exec_in_a_container_being_created_says_it_does_not_exist() {
    // As runc: until `create` is done the container does not exist for
    // exec (which reads the state without waiting for create's lock).
    require_root!();
    let mut b = Bundle::new("hooksexec");
    let d = hook_dir(&b);
    let script = format!(
        "cat >/dev/null; {ferry} --root {root} exec {id} true 2>{d}/exec.err; echo $? >{d}/exec.rc",
        ferry = ferry_bin().display(),
        root = b.state_root.display(),
        id = b.id,
        d = d.display()
    );
    b.set("/hooks/prestart", json!([sh_hook(&script, &[])]));
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let read = |n: &str| fs::read_to_string(d.join(n)).unwrap_or_default();
    assert_eq!(
        read("exec.rc").trim(),
        "255",
        "exec.err: {}",
        read("exec.err")
    );
    assert!(
        read("exec.err").contains(&format!("container {} does not exist", b.id)),
        "exec during create: {:?}",
        read("exec.err")
    );
    assert_eq!(b.status(), "created");
}
