//! Container lifecycle: create / start / state / kill / delete / list / run.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(5);

fn exe_of(pid: i32) -> String {
    fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Is `pid` executing `file` (compared by inode)?
fn runs(pid: i32, file: &Path) -> bool {
    same_file(Path::new(&format!("/proc/{pid}/exe")), file)
}

/// Is `pid`'s root directory `dir` (compared by inode)?
fn rooted_at(pid: i32, dir: &Path) -> bool {
    same_file(Path::new(&format!("/proc/{pid}/root")), dir)
}

#[test]
fn create_start_kill_delete_transitions() {
    require_root!();
    let mut b = Bundle::new("transitions");
    b.args(&["sleep", "30"]);
    b.create(&[]);

    // created: pid of the (blocked) init, alive, already inside the rootfs
    let st = b.state();
    assert_eq!(st["id"], b.id.as_str(), "state: {st}");
    assert_eq!(st["status"], "created", "state: {st}");
    assert!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "ociVersion missing: {st}"
    );
    let canon = fs::canonicalize(&b.dir).unwrap();
    assert_eq!(
        st["bundle"].as_str().map(Path::new),
        Some(canon.as_path()),
        "bundle must be the absolute bundle path: {st}"
    );
    let pid = st["pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0, "created container must report its init pid: {st}");
    assert!(pid_alive(pid), "init pid {pid} is not alive after create");
    assert!(
        rooted_at(pid, &b.rootfs()),
        "after create the init should already be inside the container rootfs"
    );
    let busybox = b.rootfs().join("bin/busybox");
    assert!(
        !runs(pid, &busybox),
        "created container must not have exec'd the user process yet (exe {})",
        exe_of(pid)
    );

    // start: running, same pid, now executing the user program
    b.start();
    let st = b.state();
    assert_eq!(st["status"], "running", "state: {st}");
    assert_eq!(
        st["pid"].as_i64(),
        Some(pid as i64),
        "pid changed across start: {st}"
    );
    assert!(
        wait_until(SHORT, || runs(pid, &busybox)),
        "after start pid {pid} should exec the container's sleep, exe is {:?}",
        exe_of(pid)
    );

    // kill: stopped, pid 0
    b.run_ok(&["kill", &b.id, "KILL"]);
    let st = b.wait_status("stopped", SHORT);
    assert_eq!(
        st["pid"].as_i64(),
        Some(0),
        "stopped container must report pid 0: {st}"
    );
    assert!(
        wait_until(SHORT, || !pid_alive(pid)),
        "pid {pid} survived SIGKILL"
    );

    // delete: state gone
    b.run_ok(&["delete", &b.id]);
    b.assert_no_state(&b.id);
    let o = b.run_fail(&["state", &b.id]);
    o.assert_clean_error(Some("does not exist"));
}

#[test]
fn output_appears_only_after_start() {
    require_root!();
    let mut b = Bundle::new("outafterstart");
    b.sh("echo hello-from-container");
    let created = b.create(&[]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(created.stdout_now(), "", "user process ran before start");
    assert_eq!(b.status(), "created");
    b.start();
    b.wait_status("stopped", SHORT);
    assert!(
        wait_until(SHORT, || created.stdout_now() == "hello-from-container\n"),
        "container output (stdio inherited from create) was {:?}",
        created.stdout_now()
    );
    // a stopped container can be deleted without --force
    b.run_ok(&["delete", &b.id]);
    b.assert_state_root_empty();
}

#[test]
fn annotations_round_trip_into_state() {
    require_root!();
    let mut b = Bundle::new("annotations");
    b.args(&["sleep", "30"]);
    let ann = json!({"org.example.key": "value", "com.example/other": "a b=c"});
    b.set("/annotations", ann.clone());
    b.create(&[]);
    let st = b.state();
    assert_eq!(st["annotations"], ann, "state: {st}");
}

#[test]
fn pid_file_contains_host_pid_without_newline() {
    require_root!();
    let mut b = Bundle::new("pidfile");
    b.args(&["sleep", "30"]);
    let pf = b.path("container.pid");
    b.create(&["--pid-file", pf.to_str().unwrap()]);
    let text = fs::read_to_string(&pf).expect("pid file not written");
    assert!(
        !text.ends_with('\n'),
        "pid file must not end with a newline: {text:?}"
    );
    let pid: i32 = text
        .parse()
        .unwrap_or_else(|_| panic!("pid file is not a decimal pid: {text:?}"));
    assert_eq!(pid, b.pid(), "pid file and state disagree");
    assert!(pid_alive(pid));
    assert!(rooted_at(pid, &b.rootfs()));
}

#[test]
fn pid_file_with_run_detach() {
    require_root!();
    let mut b = Bundle::new("pidfiledetach");
    b.args(&["sleep", "30"]);
    let pf = b.path("detached.pid");
    let o = b.run(&["--detach", "--pid-file", pf.to_str().unwrap()]);
    assert!(o.success(), "{}", o.describe());
    let text = fs::read_to_string(&pf).expect("pid file not written");
    assert_eq!(text.parse::<i32>().ok(), Some(b.pid()), "pid file {text:?}");
}

#[test]
fn kill_signal_forms() {
    require_root!();
    for sig in ["9", "KILL", "SIGKILL"] {
        let mut b = Bundle::new("killforms");
        b.args(&["sleep", "30"]);
        b.create(&[]);
        b.start();
        let pid = b.pid();
        b.run_ok(&["kill", &b.id, sig]);
        b.wait_status("stopped", SHORT);
        assert!(
            wait_until(SHORT, || !pid_alive(pid)),
            "signal {sig} did not kill {pid}"
        );
    }
}

#[test]
fn kill_default_signal_is_sigterm() {
    require_root!();
    let mut b = Bundle::new("killterm");
    // pid 1 of a pid namespace only gets signals it has a handler for
    b.sh("trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.05; done");
    let created = b.create(&[]);
    b.start();
    assert!(wait_until(SHORT, || created.stdout_now().contains("ready")));
    b.run_ok(&["kill", &b.id]);
    b.wait_status("stopped", SHORT);
    assert!(
        wait_until(SHORT, || created.stdout_now().contains("got-term")),
        "TERM handler did not run; output {:?}",
        created.stdout_now()
    );
}

#[test]
fn kill_created_container() {
    require_root!();
    let mut b = Bundle::new("killcreated");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let pid = b.pid();
    b.run_ok(&["kill", &b.id, "KILL"]);
    b.wait_status("stopped", SHORT);
    assert!(wait_until(SHORT, || !pid_alive(pid)));
    b.run_ok(&["delete", &b.id]);
    b.assert_state_root_empty();
}

#[test]
fn delete_created_container_without_force() {
    // runc semantics: a container that was created but never started can be
    // deleted; its init is killed.
    require_root!();
    let mut b = Bundle::new("delcreated");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let pid = b.pid();
    b.run_ok(&["delete", &b.id]);
    b.assert_state_root_empty();
    assert!(
        wait_until(SHORT, || !pid_alive(pid)),
        "init {pid} left running"
    );
}

#[test]
fn delete_force_running_container_cleans_everything() {
    require_root!();
    let mut b = Bundle::new("delforce");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    let pid = b.pid();
    assert!(pid_alive(pid));
    b.run_ok(&["delete", "--force", &b.id]);
    b.assert_state_root_empty();
    assert!(
        wait_until(SHORT, || !pid_alive(pid)),
        "init {pid} survived delete --force"
    );
    assert!(
        wait_until(SHORT, || procs_with_root(&b.rootfs()).is_empty()),
        "processes left in the container rootfs: {:?}",
        procs_with_root(&b.rootfs())
    );
    let leaked = host_mounts_mentioning(&b.dir);
    assert!(
        leaked.is_empty(),
        "mounts mentioning the bundle left on the host:\n{}",
        leaked.join("\n")
    );
    b.run_fail(&["state", &b.id])
        .assert_clean_error(Some("does not exist"));
}

#[test]
fn delete_force_kills_all_container_processes() {
    require_root!();
    let mut b = Bundle::new("delforceall");
    // background children that ignore nothing: they must die with the container
    b.sh("sleep 30 & sleep 30 & echo started; wait");
    let created = b.create(&[]);
    b.start();
    assert!(wait_until(SHORT, || created
        .stdout_now()
        .contains("started")));
    assert!(wait_until(SHORT, || procs_with_root(&b.rootfs()).len() >= 3));
    b.run_ok(&["delete", "--force", &b.id]);
    assert!(
        wait_until(SHORT, || procs_with_root(&b.rootfs()).is_empty()),
        "processes left: {:?}",
        procs_with_root(&b.rootfs())
    );
}

#[test]
fn no_host_mounts_leak_after_run() {
    require_root!();
    let mut b = Bundle::new("noleak");
    let host = b.path("hostdir");
    make_host_dir(&host, &[("f", "x")]);
    b.bind(&host, "/data", &[]);
    b.add_mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    assert_eq!(b.output("cat /data/f"), "x");
    let leaked = host_mounts_mentioning(&b.dir);
    assert!(
        leaked.is_empty(),
        "mounts mentioning the bundle left on the host:\n{}",
        leaked.join("\n")
    );
    b.assert_state_root_empty();
}

#[test]
fn list_formats() {
    require_root!();
    let mut b = Bundle::new("list");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    let second = format!("{}-second", b.id);
    b.run_ok(&["create", "--bundle", b.dir_str(), &second]);
    b.start();

    // json
    let o = b.run_ok(&["list", "--format", "json"]);
    let v: Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("list json: {e}\n{}", o.describe()));
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("list json must be an array: {v}"));
    assert_eq!(arr.len(), 2, "{v}");
    let find = |id: &str| {
        arr.iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {v}"))
            .clone()
    };
    let c1 = find(&b.id);
    let c2 = find(&second);
    assert_eq!(c1["status"], "running", "{c1}");
    assert_eq!(c2["status"], "created", "{c2}");
    assert_eq!(c1["pid"].as_i64(), Some(b.pid() as i64), "{c1}");
    assert!(c2["pid"].as_i64().unwrap_or(0) > 0, "{c2}");
    let canon = fs::canonicalize(&b.dir).unwrap();
    assert_eq!(
        c1["bundle"].as_str().map(Path::new),
        Some(canon.as_path()),
        "{c1}"
    );

    // table (default)
    let o = b.run_ok(&["list"]);
    let mut lines = o.stdout.lines();
    let header = lines.next().unwrap_or("");
    assert!(
        header.contains("ID") && header.contains("STATUS") && header.contains("PID"),
        "header: {header:?}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{}", o.stdout);
    let row1 = rows
        .iter()
        .find(|r| r.split_whitespace().next() == Some(b.id.as_str()))
        .expect("row for first id");
    assert!(row1.split_whitespace().any(|w| w == "running"), "{row1}");
    let row2 = rows
        .iter()
        .find(|r| r.split_whitespace().next() == Some(second.as_str()))
        .expect("row for second id");
    assert!(row2.split_whitespace().any(|w| w == "created"), "{row2}");
    let o2 = b.run_ok(&["list", "--format", "table"]);
    assert_eq!(o2.stdout.lines().count(), 3, "{}", o2.stdout);

    // quiet: ids only
    let o = b.run_ok(&["list", "--quiet"]);
    let mut ids: Vec<&str> = o.stdout.lines().collect();
    ids.sort();
    let mut want = vec![b.id.as_str(), second.as_str()];
    want.sort();
    assert_eq!(ids, want, "{}", o.describe());
}

#[test]
fn list_empty_root() {
    require_root!();
    let b = Bundle::new("listempty");
    let o = b.run_ok(&["list", "--quiet"]);
    assert_eq!(o.stdout.trim(), "");
    let o = b.run_ok(&["list", "--format", "json"]);
    let v: Value =
        serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", o.describe()));
    assert!(
        v.as_array().is_some_and(|a| a.is_empty()) || v.is_null(),
        "{v}"
    );
}

#[test]
fn run_exit_codes() {
    require_root!();
    for code in [0, 3, 42] {
        let mut b = Bundle::new("runexit");
        b.sh(&format!("echo out; echo err >&2; exit {code}"));
        let o = b.run(&[]);
        assert_eq!(o.code(), code, "{}", o.describe());
        assert_eq!(o.stdout, "out\n");
        assert!(o.stderr.contains("err"), "{}", o.describe());
        // run removes the container afterwards
        b.assert_state_root_empty();
        b.run_fail(&["state", &b.id])
            .assert_clean_error(Some("does not exist"));
    }
}

#[test]
fn run_keep_leaves_stopped_container() {
    require_root!();
    let mut b = Bundle::new("runkeep");
    b.sh("exit 5");
    let o = b.run(&["--keep"]);
    assert_eq!(o.code(), 5, "{}", o.describe());
    let st = b.state();
    assert_eq!(st["status"], "stopped", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(0), "{st}");
    b.run_ok(&["delete", &b.id]);
    b.assert_state_root_empty();
}

#[test]
fn run_killed_from_outside_exits_128_plus_signal() {
    require_root!();
    let mut b = Bundle::new("runsig9");
    b.args(&["sleep", "100"]);
    let run = b.spawn(&["run", "--bundle", b.dir_str(), &b.id]);
    b.wait_status("running", Duration::from_secs(10));
    b.run_ok(&["kill", &b.id, "9"]);
    let o = run.wait(Duration::from_secs(10));
    assert_eq!(o.code(), 137, "{}", o.describe());
    assert!(
        o.status.code().is_some(),
        "ferry itself must exit (not die by signal): {:?}",
        o.status
    );
    b.assert_state_root_empty();
}

#[test]
fn run_sigterm_without_pid_namespace_exits_143() {
    require_root!();
    let mut b = Bundle::new("runsig15");
    b.remove_ns("pid");
    b.args(&["sleep", "100"]);
    let run = b.spawn(&["run", "--bundle", b.dir_str(), &b.id]);
    b.wait_status("running", Duration::from_secs(10));
    let pid = b.pid();
    assert!(wait_until(SHORT, || runs(
        pid,
        &b.rootfs().join("bin/busybox")
    )));
    b.run_ok(&["kill", &b.id, "TERM"]);
    let o = run.wait(Duration::from_secs(10));
    assert_eq!(o.code(), 143, "{}", o.describe());
}

#[test]
fn run_self_kill_without_pid_namespace() {
    require_root!();
    let mut b = Bundle::new("runselfkill");
    b.remove_ns("pid");
    b.sh("kill -KILL $$");
    let o = b.run(&[]);
    assert_eq!(o.code(), 137, "{}", o.describe());
}

#[test]
fn run_detach_returns_immediately() {
    require_root!();
    let mut b = Bundle::new("rundetach");
    b.sh("echo detached-output; exec sleep 30");
    let start = std::time::Instant::now();
    let o = b.run(&["--detach"]);
    assert!(o.success(), "{}", o.describe());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "run --detach took {:?}",
        start.elapsed()
    );
    let st = b.state();
    assert_eq!(st["status"], "running", "{st}");
    assert!(pid_alive(b.pid()));
    assert!(
        wait_until(SHORT, || o.stdout_now().contains("detached-output")),
        "detached container output: {:?}",
        o.stdout_now()
    );
    b.run_fail(&["delete", &b.id]);
    b.run_ok(&["delete", "--force", &b.id]);
    b.assert_state_root_empty();
}

#[test]
fn stopped_after_process_exits() {
    require_root!();
    let mut b = Bundle::new("exits");
    b.args(&["true"]);
    b.create(&[]);
    b.start();
    let st = b.wait_status("stopped", SHORT);
    assert_eq!(st["pid"].as_i64(), Some(0), "{st}");
    b.run_ok(&["delete", &b.id]);
    b.assert_state_root_empty();
}

#[test]
fn start_after_stop_fails() {
    require_root!();
    let mut b = Bundle::new("startstopped");
    b.args(&["true"]);
    b.create(&[]);
    b.start();
    b.wait_status("stopped", SHORT);
    b.run_fail(&["start", &b.id]).assert_clean_error(None);
    assert_eq!(b.status(), "stopped");
}

#[test]
fn no_pivot_runs() {
    require_root!();
    let mut b = Bundle::new("nopivot");
    b.readonly_root(true);
    b.sh("echo $$; touch /x 2>/dev/null && echo writable || echo readonly; cat /etc/passwd | head -n1");
    let o = b.run(&["--no-pivot"]);
    assert!(o.success(), "{}", o.describe());
    assert_eq!(
        o.stdout,
        "1\nreadonly\nroot:x:0:0:root:/root:/bin/sh\n",
        "{}",
        o.describe()
    );
}

#[test]
fn no_new_keyring_runs() {
    require_root!();
    let mut b = Bundle::new("nokeyring");
    b.sh("echo ok");
    let o = b.run(&["--no-new-keyring"]);
    assert!(o.success(), "{}", o.describe());
    assert_eq!(o.stdout, "ok\n");
}

#[test]
fn init_killed_behind_ferrys_back_is_stopped() {
    // The init is not ferry's child once `create` returns; on this kind of
    // host nobody may reap it, so a zombie init must count as stopped.
    require_root!();
    let mut b = Bundle::new("externalkill");
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    let pid = b.pid();
    // SAFETY: kill takes a pid and a signal; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let st = b.wait_status("stopped", SHORT);
    assert_eq!(st["pid"].as_i64(), Some(0), "{st}");
    b.run_ok(&["delete", &b.id]);
    b.assert_state_root_empty();
}
