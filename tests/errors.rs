//! Bad input and invalid operations: clear one-line errors, non-zero exit,
//! and nothing left behind under --root.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(5);

/// `ferry create` for this bundle, expected to fail cleanly and leave no
/// state and no process behind.
fn create_must_fail(b: &Bundle, needle: Option<&str>) -> Out {
    let o = b.ferry(&["create", "--bundle", b.dir_str(), &b.id]);
    o.assert_one_line_error(needle);
    b.assert_state_root_empty();
    assert!(
        wait_until(SHORT, || procs_with_root(&b.rootfs()).is_empty()),
        "failed create left processes: {:?}",
        procs_with_root(&b.rootfs())
    );
    b.run_fail(&["state", &b.id])
        .assert_clean_error(Some("does not exist"));
    o
}

#[test]
fn malformed_config_json() {
    require_root!();
    let mut b = Bundle::new("badjson");
    b.config = Value::Null; // don't let the harness overwrite the file
    fs::write(
        b.dir.join("config.json"),
        "{ \"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .unwrap();
    create_must_fail(&b, Some("config"));
}

#[test]
fn config_of_wrong_shape() {
    require_root!();
    let mut b = Bundle::new("wrongshape");
    b.set("/process/args", json!("sh -c true")); // must be an array
    create_must_fail(&b, None);
}

#[test]
fn missing_config_json() {
    require_root!();
    let mut b = Bundle::new("noconfig");
    b.config = Value::Null;
    fs::remove_file(b.dir.join("config.json")).unwrap();
    create_must_fail(&b, Some("config.json"));
}

#[test]
fn missing_rootfs() {
    require_root!();
    let b = Bundle::new("norootfs");
    fs::remove_dir_all(b.rootfs()).unwrap();
    create_must_fail(&b, Some("rootfs"));
}

#[test]
fn missing_bundle_dir() {
    require_root!();
    let b = Bundle::new("nobundle");
    let missing = b.path("no-such-bundle");
    let o = b.ferry(&["create", "--bundle", missing.to_str().unwrap(), &b.id]);
    o.assert_one_line_error(None);
    b.assert_state_root_empty();
}

#[test]
fn unknown_capability() {
    require_root!();
    let mut b = Bundle::new("badcap");
    b.set(
        "/process/capabilities/bounding",
        json!(["CAP_KILL", "CAP_FOO"]),
    );
    create_must_fail(&b, Some("CAP_FOO"));
}

#[test]
fn unknown_rlimit() {
    require_root!();
    let mut b = Bundle::new("badrlimit");
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
    );
    create_must_fail(&b, Some("RLIMIT_BOGUS"));
}

#[test]
fn unknown_namespace_type() {
    require_root!();
    let mut b = Bundle::new("badns");
    b.set_ns("bogus", None);
    create_must_fail(&b, None);
}

#[test]
fn missing_executable() {
    require_root!();
    let mut b = Bundle::new("noexe");
    b.args(&["/no/such/binary", "arg"]);
    let o = b.run(&[]);
    o.assert_clean_error(Some("/no/such/binary"));
    assert_ne!(o.code(), 0);
    b.assert_state_root_empty();
    assert!(wait_until(SHORT, || procs_with_root(&b.rootfs()).is_empty()));
}

#[test]
fn bad_container_ids() {
    require_root!();
    let b = Bundle::new("badids");
    let long = "x".repeat(1000);
    for id in [
        "../escape",
        "a/b",
        "",
        ".",
        "..",
        "/abs",
        "with space",
        long.as_str(),
    ] {
        let o = b.ferry(&["create", "--bundle", b.dir_str(), id]);
        o.assert_clean_error(None);
        b.assert_state_root_empty();
        assert!(
            !b.base.join("escape").exists() && !b.base.join("state").join("a").exists(),
            "id {id:?} created something outside --root"
        );
        assert!(
            wait_until(SHORT, || procs_with_root(&b.rootfs()).is_empty()),
            "id {id:?} left processes"
        );
    }
}

#[test]
fn duplicate_id() {
    require_root!();
    let mut b = Bundle::new("dupid");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let pid = b.pid();
    let o = b.ferry(&["create", "--bundle", b.dir_str(), &b.id]);
    o.assert_one_line_error(Some("already exists"));
    // the original is untouched
    let st = b.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid as i64));
    assert!(pid_alive(pid));
    assert_eq!(
        procs_with_root(&b.rootfs()),
        vec![pid],
        "the failed create left a process"
    );
    b.start();
    assert_eq!(b.status(), "running");
}

#[test]
fn duplicate_id_with_run() {
    require_root!();
    let mut b = Bundle::new("dupidrun");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.sh("echo must-not-run");
    let o = b.run(&[]);
    o.assert_one_line_error(Some("already exists"));
    assert!(!o.stdout.contains("must-not-run"));
    assert_eq!(b.status(), "created");
}

#[test]
fn start_twice_fails() {
    require_root!();
    let mut b = Bundle::new("starttwice");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    let pid = b.pid();
    let o = b.ferry(&["start", &b.id]);
    o.assert_one_line_error(None);
    assert_eq!(b.status(), "running");
    assert_eq!(b.pid(), pid);
}

#[test]
fn delete_running_without_force_fails() {
    require_root!();
    let mut b = Bundle::new("delrunning");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    let pid = b.pid();
    let o = b.ferry(&["delete", &b.id]);
    o.assert_one_line_error(None);
    assert_eq!(b.status(), "running");
    assert!(
        pid_alive(pid),
        "delete without --force killed the container"
    );
}

#[test]
fn unknown_signal() {
    require_root!();
    let mut b = Bundle::new("badsignal");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    for sig in ["SIGFOO", "FOO", "99999", "9x"] {
        let o = b.ferry(&["kill", &b.id, sig]);
        o.assert_one_line_error(Some(sig.trim_start_matches("SIG")));
    }
    assert_eq!(b.status(), "running");
    assert!(pid_alive(b.pid()));
}

#[test]
fn operations_on_missing_container() {
    require_root!();
    let b = Bundle::new("missing");
    let id = "no-such-container";
    for args in [
        vec!["state", id],
        vec!["kill", id, "KILL"],
        vec!["delete", id],
        vec!["start", id],
    ] {
        let o = b.ferry(&args);
        o.assert_one_line_error(Some("does not exist"));
    }
    let o = b.ferry(&["delete", "--force", id]);
    assert!(
        o.success(),
        "delete --force of a missing container must succeed:\n{}",
        o.describe()
    );
    b.assert_state_root_empty();
}

#[test]
fn kill_stopped_container_fails() {
    require_root!();
    let mut b = Bundle::new("killstopped");
    b.args(&["true"]);
    b.create(&[]);
    b.start();
    b.wait_status("stopped", SHORT);
    b.ferry(&["kill", &b.id, "KILL"])
        .assert_one_line_error(None);
    assert_eq!(b.status(), "stopped");
}

#[test]
fn bad_mount_fails_cleanly() {
    require_root!();
    let mut b = Bundle::new("badmount");
    b.add_mount(json!({"destination": "/data", "type": "bind", "source": "/no/such/source/dir", "options": ["rbind"]}));
    create_must_fail(&b, None);
}

#[test]
fn unknown_filesystem_type_fails_cleanly() {
    require_root!();
    let mut b = Bundle::new("badfstype");
    b.add_mount(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}));
    create_must_fail(&b, None);
}

#[test]
fn failed_create_does_not_leak_mounts() {
    require_root!();
    let mut b = Bundle::new("failmounts");
    b.add_mount(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}));
    let _ = b.ferry(&["create", "--bundle", b.dir_str(), &b.id]);
    let leaked = host_mounts_mentioning(&b.dir);
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));
}

#[test]
fn unknown_subcommand_and_flag() {
    let b = Bundle::new_raw("badcli");
    b.ferry(&["frobnicate"]).assert_clean_error(None);
    b.ferry(&["create", "--no-such-flag", "x"])
        .assert_clean_error(None);
}
