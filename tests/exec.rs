//! `ferry exec` and `kill --all`.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(5);

fn running(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.set("/hostname", json!("exec-host"));
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    b
}

fn ns_of(pid: i32, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn exec_joins_the_container() {
    require_root!();
    let b = running("execjoin");
    let init = b.pid();
    let o = b.ferry(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "echo pid=$$; hostname; cat /proc/1/comm; for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done",
    ]);
    assert!(o.success(), "{}", o.describe());
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_ne!(
        lines[0], "pid=1",
        "exec'd process must not be pid 1: {}",
        o.stdout
    );
    assert_eq!(lines[1], "exec-host");
    assert_eq!(lines[2], "sleep");
    for (i, k) in ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            lines[3 + i],
            ns_of(init, k),
            "{k} namespace differs from the init's"
        );
    }
    assert_eq!(b.status(), "running");
}

#[test]
fn exec_exit_code_and_options() {
    require_root!();
    let b = running("execopts");
    let o = b.ferry(&["exec", &b.id, "sh", "-c", "exit 7"]);
    assert_eq!(o.code(), 7, "{}", o.describe());
    let o = b.ferry(&[
        "exec",
        "--user",
        "1000:1001",
        "--cwd",
        "/etc",
        "--env",
        "FOO=bar",
        &b.id,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FOO",
    ]);
    assert!(o.success(), "{}", o.describe());
    assert_eq!(o.stdout, "1000\n1001\n/etc\nbar\n");
}

#[test]
fn exec_gets_the_container_capabilities() {
    require_root!();
    let b = running("execcaps");
    let init_status =
        parse_status(&fs::read_to_string(format!("/proc/{}/status", b.pid())).unwrap());
    let o = b.ferry(&["exec", &b.id, "cat", "/proc/self/status"]);
    assert!(o.success(), "{}", o.describe());
    let st = parse_status(&o.stdout);
    for k in ["CapBnd", "CapEff", "CapPrm", "NoNewPrivs"] {
        assert_eq!(st[k], init_status[k], "{k}");
    }
}

#[test]
fn exec_process_json() {
    require_root!();
    let b = running("execprocjson");
    let p = b.path("process.json");
    let mut process = b.get("/process").clone();
    process["args"] = json!(["sh", "-c", "echo from-process-json $BAR"]);
    process["env"] = json!(["PATH=/bin:/usr/bin", "BAR=baz"]);
    process["terminal"] = json!(false);
    fs::write(&p, serde_json::to_vec(&process).unwrap()).unwrap();
    let o = b.ferry(&["exec", "--process", p.to_str().unwrap(), &b.id]);
    assert!(o.success(), "{}", o.describe());
    assert_eq!(o.stdout, "from-process-json baz\n");
}

#[test]
fn exec_detach_pid_file() {
    require_root!();
    let b = running("execdetach");
    let pf = b.path("exec.pid");
    let o = b.ferry(&[
        "exec",
        "--detach",
        "--pid-file",
        pf.to_str().unwrap(),
        &b.id,
        "sleep",
        "30",
    ]);
    assert!(o.success(), "{}", o.describe());
    let pid: i32 = fs::read_to_string(&pf).unwrap().parse().unwrap();
    assert!(pid_alive(pid));
    assert_eq!(ns_of(pid, "pid"), ns_of(b.pid(), "pid"));
    b.run_ok(&["delete", "--force", &b.id]);
    assert!(
        wait_until(SHORT, || !pid_alive(pid)),
        "exec'd process survived delete --force"
    );
}

#[test]
fn exec_into_stopped_or_missing_container_fails() {
    require_root!();
    let mut b = Bundle::new("execstopped");
    b.args(&["true"]);
    b.create(&[]);
    b.start();
    b.wait_status("stopped", SHORT);
    b.ferry(&["exec", &b.id, "true"]).assert_clean_error(None);
    b.ferry(&["exec", "no-such-container", "true"])
        .assert_clean_error(Some("does not exist"));
}

#[test]
fn kill_all_reaches_every_process() {
    // Without a pid namespace, killing the init leaves its children
    // running; --all must signal every process of the container.
    require_root!();
    let mut b = Bundle::new("killall");
    b.remove_ns("pid");
    b.sh("sleep 30 & sleep 30 & echo started; wait");
    let created = b.create(&[]);
    b.start();
    assert!(wait_until(SHORT, || created
        .stdout_now()
        .contains("started")));
    assert!(
        wait_until(SHORT, || procs_with_root(&b.rootfs()).len() == 3),
        "{:?}",
        procs_with_root(&b.rootfs())
    );
    b.run_ok(&["kill", "--all", &b.id, "KILL"]);
    assert!(
        wait_until(SHORT, || procs_with_root(&b.rootfs()).is_empty()),
        "kill --all left {:?}",
        procs_with_root(&b.rootfs())
    );
    b.wait_status("stopped", SHORT);
}

#[test]
fn delete_force_without_pid_namespace_kills_children() {
    require_root!();
    let mut b = Bundle::new("delnopidns");
    b.remove_ns("pid");
    b.sh("sleep 30 & sleep 30 & echo started; wait");
    let created = b.create(&[]);
    b.start();
    assert!(wait_until(SHORT, || created
        .stdout_now()
        .contains("started")));
    assert!(wait_until(SHORT, || procs_with_root(&b.rootfs()).len() == 3));
    b.run_ok(&["delete", "--force", &b.id]);
    assert!(
        wait_until(SHORT, || procs_with_root(&b.rootfs()).is_empty()),
        "delete --force left {:?}",
        procs_with_root(&b.rootfs())
    );
}
