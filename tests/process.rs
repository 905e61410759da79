//! The container process: capabilities, rlimits, user, cwd, env,
//! noNewPrivileges, sysctl, oom score, file descriptors.
#[macro_use]
mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;

fn status_of(out: &str) -> BTreeMap<String, String> {
    parse_status(out)
}

fn hex_field(st: &BTreeMap<String, String>, key: &str) -> u64 {
    let v = st
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from status: {st:?}"));
    u64::from_str_radix(v, 16).unwrap_or_else(|_| panic!("{key}: bad hex {v:?}"))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn set_caps(b: &mut Bundle, sets: &[(&str, &[&str])]) {
    b.set("/process/capabilities", json!({}));
    for (set, caps) in sets {
        b.set(&format!("/process/capabilities/{set}"), json!(caps));
    }
}

fn assert_caps(st: &BTreeMap<String, String>, want: &[(&str, u64)]) {
    for (key, mask) in want {
        let got = hex_field(st, key);
        assert_eq!(
            got, *mask,
            "{key}: got {got:016x}, want {mask:016x}; status: {st:?}"
        );
    }
}

#[test]
fn cap_mask_helper_matches_kernel_numbering() {
    // CAP_AUDIT_WRITE=29, CAP_KILL=5, CAP_NET_BIND_SERVICE=10
    assert_eq!(
        cap_mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
        0x0000_0000_2000_0420
    );
    assert_eq!(cap_mask(&["CAP_CHECKPOINT_RESTORE"]), 1 << 40);
}

#[test]
fn capabilities_as_root_match_config() {
    require_root!();
    let mut b = Bundle::new("capsroot");
    let bnd = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_AUDIT_WRITE",
        "CAP_SETUID",
    ];
    let prm = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"];
    let inh = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let amb = ["CAP_NET_BIND_SERVICE"];
    set_caps(
        &mut b,
        &[
            ("bounding", &bnd),
            ("permitted", &prm),
            ("effective", &prm),
            ("inheritable", &inh),
            ("ambient", &amb),
        ],
    );
    // With noNewPrivileges a root exec cannot gain beyond the permitted set,
    // so every set is observable exactly as configured.
    b.set("/process/noNewPrivileges", json!(true));
    let st = status_of(&b.output("cat /proc/self/status"));
    assert_caps(
        &st,
        &[
            ("CapBnd", cap_mask(&bnd)),
            ("CapPrm", cap_mask(&prm)),
            ("CapEff", cap_mask(&prm)),
            ("CapInh", cap_mask(&inh)),
            ("CapAmb", cap_mask(&amb)),
        ],
    );
}

#[test]
fn capabilities_default_spec() {
    require_root!();
    let mut b = Bundle::new("capsdefault");
    let caps = b.get("/process/capabilities").clone();
    let bnd = names(&caps["bounding"]);
    let eff = names(&caps["effective"]);
    let prm = names(&caps["permitted"]);
    assert!(!bnd.is_empty(), "default spec has no bounding set: {caps}");
    for c in ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"] {
        assert!(
            bnd.iter().any(|x| x == c),
            "default bounding set lacks {c}: {caps}"
        );
    }
    let st = status_of(&b.output("cat /proc/self/status"));
    assert_eq!(hex_field(&st, "CapBnd"), cap_mask(&bnd), "{st:?}");
    assert_eq!(hex_field(&st, "CapEff"), cap_mask(&eff), "{st:?}");
    assert_eq!(hex_field(&st, "CapPrm"), cap_mask(&prm), "{st:?}");
    assert_eq!(
        hex_field(&st, "CapInh"),
        cap_mask(&names(&caps["inheritable"])),
        "{st:?}"
    );
    assert_eq!(
        hex_field(&st, "CapAmb"),
        cap_mask(&names(&caps["ambient"])),
        "{st:?}"
    );
}

#[test]
fn capabilities_non_root_keep_ambient() {
    require_root!();
    let mut b = Bundle::new("capsuser");
    let bnd = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
    ];
    let amb = ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"];
    let inh = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"];
    set_caps(
        &mut b,
        &[
            ("bounding", &bnd),
            ("permitted", &amb),
            ("effective", &amb),
            ("inheritable", &inh),
            ("ambient", &amb),
        ],
    );
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let st = status_of(&b.output("cat /proc/self/status"));
    assert_caps(
        &st,
        &[
            ("CapBnd", cap_mask(&bnd)),
            ("CapPrm", cap_mask(&amb)),
            ("CapEff", cap_mask(&amb)),
            ("CapInh", cap_mask(&inh)),
            ("CapAmb", cap_mask(&amb)),
        ],
    );
    assert!(st["Uid"].split_whitespace().all(|u| u == "1000"), "{st:?}");
}

#[test]
fn capabilities_empty_sets() {
    require_root!();
    let mut b = Bundle::new("capsnone");
    set_caps(
        &mut b,
        &[
            ("bounding", &[]),
            ("permitted", &[]),
            ("effective", &[]),
            ("inheritable", &[]),
            ("ambient", &[]),
        ],
    );
    let out = b.output("cat /proc/self/status; touch /dev/shm/x && chown 5 /dev/shm/x 2>/dev/null && echo chown-ok || echo chown-denied");
    let st = status_of(&out);
    assert_caps(
        &st,
        &[
            ("CapBnd", 0),
            ("CapPrm", 0),
            ("CapEff", 0),
            ("CapInh", 0),
            ("CapAmb", 0),
        ],
    );
    assert!(
        out.ends_with("chown-denied\n"),
        "root without caps could chown: {out}"
    );
}

#[test]
fn rlimits_from_config() {
    require_root!();
    let mut b = Bundle::new("rlimits");
    b.set(
        "/process/rlimits",
        json!([
            {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
            {"type": "RLIMIT_CORE", "soft": 512, "hard": 4096},
            {"type": "RLIMIT_NPROC", "soft": 30000, "hard": 40000}
        ]),
    );
    let out = b.output("ulimit -n; ulimit -Hn; cat /proc/self/limits");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1000"), "{out}");
    assert_eq!(lines.next(), Some("2000"), "{out}");
    let limits: BTreeMap<String, (String, String)> = lines
        .filter(|l| l.starts_with("Max "))
        .map(|l| {
            // "Max open files            1000                 2000                 files"
            let name = l[..26].trim().to_string();
            let rest: Vec<&str> = l[26..].split_whitespace().collect();
            (name, (rest[0].to_string(), rest[1].to_string()))
        })
        .collect();
    assert_eq!(
        limits["Max open files"],
        ("1000".into(), "2000".into()),
        "{out}"
    );
    assert_eq!(
        limits["Max core file size"],
        ("512".into(), "4096".into()),
        "{out}"
    );
    assert_eq!(
        limits["Max processes"],
        ("30000".into(), "40000".into()),
        "{out}"
    );
}

#[test]
fn user_groups_umask() {
    require_root!();
    let mut b = Bundle::new("user");
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 25], "umask": 0o027}),
    );
    let out = b.output("cat /proc/self/status; echo ===; echo umask=$(umask); id -u; id -g; touch /dev/shm/f; stat -c '%a %u:%g' /dev/shm/f");
    let (status, rest) = out.split_once("===\n").unwrap();
    let st = status_of(status);
    let uids: Vec<&str> = st["Uid"].split_whitespace().collect();
    let gids: Vec<&str> = st["Gid"].split_whitespace().collect();
    let groups: BTreeSet<&str> = st["Groups"].split_whitespace().collect();
    assert_eq!(uids, vec!["1000"; 4], "{out}");
    assert_eq!(gids, vec!["1001"; 4], "{out}");
    assert_eq!(groups, BTreeSet::from(["10", "25"]), "{out}");
    let tail: Vec<&str> = rest.lines().collect();
    assert_eq!(
        tail,
        vec!["umask=0027", "1000", "1001", "640 1000:1001"],
        "{out}"
    );
}

#[test]
fn root_user_has_no_supplementary_groups_by_default() {
    require_root!();
    let mut b = Bundle::new("rootgroups");
    b.set("/process/user", json!({"uid": 0, "gid": 0}));
    let st = status_of(&b.output("cat /proc/self/status"));
    assert_eq!(st["Groups"], "", "{st:?}");
    assert!(st["Uid"].split_whitespace().all(|u| u == "0"));
}

#[test]
fn cwd_from_config() {
    require_root!();
    let mut b = Bundle::new("cwd");
    b.set("/process/cwd", json!("/etc"));
    assert_eq!(b.output("pwd; ls passwd"), "/etc\npasswd\n");
}

#[test]
fn env_from_config_and_no_host_leak() {
    require_root!();
    let mut b = Bundle::new("env");
    b.env("FOO", "bar baz");
    b.env("EMPTY", "");
    b.env("WITH_EQ", "a=b");
    b.sh("echo \"FOO=$FOO\"; echo \"WITH_EQ=$WITH_EQ\"; echo \"EMPTY=[${EMPTY-unset}]\"; echo \"leak=${FERRY_TEST_LEAK:-none}\"; echo \"PATH=$PATH\"");
    let o = b.ferry_with(&["run", "--bundle", b.dir_str(), &b.id], |c| {
        c.env("FERRY_TEST_LEAK", "leaked");
    });
    assert!(o.success(), "{}", o.describe());
    let path = b
        .get("/process/env")
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| {
            e.as_str()
                .unwrap()
                .strip_prefix("PATH=")
                .map(str::to_string)
        })
        .expect("PATH in default spec");
    assert_eq!(
        o.stdout,
        format!("FOO=bar baz\nWITH_EQ=a=b\nEMPTY=[]\nleak=none\nPATH={path}\n"),
        "{}",
        o.describe()
    );
}

#[test]
fn args_resolved_through_container_path() {
    require_root!();
    let mut b = Bundle::new("pathlookup");
    b.args(&["echo", "found-via-PATH"]);
    let o = b.run(&[]);
    assert!(o.success(), "{}", o.describe());
    assert_eq!(o.stdout, "found-via-PATH\n");
}

#[test]
fn no_new_privileges() {
    require_root!();
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = Bundle::new("nnp");
        b.set("/process/noNewPrivileges", json!(nnp));
        let st = status_of(&b.output("cat /proc/self/status"));
        assert_eq!(st["NoNewPrivs"], want, "noNewPrivileges={nnp}");
    }
}

#[test]
fn oom_score_adj() {
    require_root!();
    let mut b = Bundle::new("oomscore");
    b.set("/process/oomScoreAdj", json!(500));
    assert_eq!(b.output("cat /proc/self/oom_score_adj"), "500\n");
}

#[test]
fn sysctl_applied_inside_only() {
    require_root!();
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_msgmax = fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    let mut b = Bundle::new("sysctl");
    b.set(
        "/linux/sysctl",
        json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}),
    );
    assert_eq!(
        b.output("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"),
        "1\n12345\n"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd,
        "host sysctl changed"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/msgmax").unwrap(),
        host_msgmax,
        "host sysctl changed"
    );
}

#[test]
fn sysctl_for_shared_namespace_is_rejected() {
    // runc refuses net.* sysctls when the container shares the host netns.
    require_root!();
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    // if ferry wrongly applies it to the host, put the host value back
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = fs::write("/proc/sys/net/ipv4/ip_forward", &self.0);
        }
    }
    let _restore = Restore(host_fwd.clone());
    let mut b = Bundle::new("sysctlhost");
    b.remove_ns("network");
    let flip = if host_fwd.trim() == "1" { "0" } else { "1" };
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": flip}));
    b.sh("true");
    let o = b.run(&[]);
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd,
        "host sysctl changed!"
    );
    o.assert_clean_error(Some("net.ipv4.ip_forward"));
    b.assert_state_root_empty();
}

#[test]
fn only_stdio_fds_are_inherited() {
    require_root!();
    let mut b = Bundle::new("fdhygiene");
    b.sh("ls /proc/self/fd");
    let f7 = fs::File::open("/etc/passwd").unwrap();
    let f9 = fs::File::open("/etc/passwd").unwrap();
    let o = b.ferry_with(&["run", "--bundle", b.dir_str(), &b.id], |c| {
        with_inherited_fds(c, vec![(f7, 7), (f9, 9)]);
    });
    assert!(o.success(), "{}", o.describe());
    // 0 1 2 and the directory fd ls itself uses
    assert_eq!(
        Bundle::fd_set(&o.stdout),
        BTreeSet::from([0, 1, 2, 3]),
        "leaked fds: {}",
        o.stdout
    );
}

#[test]
fn create_start_fd_hygiene() {
    require_root!();
    let mut b = Bundle::new("fdhygiene2");
    b.sh("ls /proc/self/fd");
    let f7 = fs::File::open("/etc/passwd").unwrap();
    let created = b.ferry_with(&["create", "--bundle", b.dir_str(), &b.id], |c| {
        with_inherited_fds(c, vec![(f7, 7)]);
    });
    assert!(created.success(), "{}", created.describe());
    b.start();
    b.wait_status("stopped", std::time::Duration::from_secs(5));
    assert_eq!(
        Bundle::fd_set(&created.stdout_now()),
        BTreeSet::from([0, 1, 2, 3]),
        "leaked fds: {}",
        created.stdout_now()
    );
}

#[test]
fn preserve_fds() {
    require_root!();
    let mut b = Bundle::new("preservefds");
    let p3 = b.path("three.txt");
    let p4 = b.path("four.txt");
    fs::write(&p3, "preserved-three\n").unwrap();
    fs::write(&p4, "preserved-four\n").unwrap();
    let f5 = fs::File::open("/etc/passwd").unwrap();
    b.sh("cat <&3; cat <&4; echo ===; ls /proc/self/fd");
    let o = b.ferry_with(
        &["run", "--bundle", b.dir_str(), "--preserve-fds", "2", &b.id],
        |c| {
            with_inherited_fds(
                c,
                vec![
                    (fs::File::open(&p3).unwrap(), 3),
                    (fs::File::open(&p4).unwrap(), 4),
                    (f5, 5),
                ],
            );
        },
    );
    assert!(o.success(), "{}", o.describe());
    let (texts, fds) = o.stdout.split_once("===\n").unwrap_or(("", ""));
    assert_eq!(texts, "preserved-three\npreserved-four\n", "{}", o.stdout);
    // 3 and 4 preserved, 5 (not covered by --preserve-fds 2) closed; ls uses 5
    assert_eq!(
        Bundle::fd_set(fds),
        BTreeSet::from([0, 1, 2, 3, 4, 5]),
        "{}",
        o.stdout
    );
}

#[test]
fn preserve_fds_zero_closes_extra() {
    require_root!();
    let mut b = Bundle::new("preservefds0");
    b.sh("cat <&3 2>/dev/null && echo has-3 || echo no-3");
    let o = b.ferry_with(
        &["run", "--bundle", b.dir_str(), "--preserve-fds", "0", &b.id],
        |c| {
            with_inherited_fds(c, vec![(fs::File::open("/etc/passwd").unwrap(), 3)]);
        },
    );
    assert!(o.success(), "{}", o.describe());
    assert_eq!(o.stdout, "no-3\n");
}

#[test]
fn stdin_is_passed_through() {
    require_root!();
    let mut b = Bundle::new("stdin");
    let input = b.path("input.txt");
    fs::write(&input, "line from stdin\n").unwrap();
    b.sh("read x; echo \"got: $x\"");
    let o = b.ferry_with(&["run", "--bundle", b.dir_str(), &b.id], |c| {
        c.stdin(fs::File::open(&input).unwrap());
    });
    assert!(o.success(), "{}", o.describe());
    assert_eq!(o.stdout, "got: line from stdin\n");
}

/// Spawn-time setup of a caller that ignores SIGPIPE and SIGHUP (as
/// `nohup` and service managers do) and blocks SIGUSR1: all three survive
/// `execve` into ferry.
fn ignoring_caller(cmd: &mut std::process::Command) {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    use std::os::unix::process::CommandExt;
    // SAFETY: (test) runs in the forked child before exec; only changes
    // signal dispositions and the mask, both async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            signal(Signal::SIGPIPE, SigHandler::SigIgn)?;
            signal(Signal::SIGHUP, SigHandler::SigIgn)?;
            let mut set = SigSet::empty();
            set.add(Signal::SIGUSR1);
            sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
            Ok(())
        });
    }
}

/// The script that reports what a container process got: ignored and
/// blocked signals, and how `yes` ends when its reader goes away (killed
/// by SIGPIPE: 141; SIGPIPE ignored: an EPIPE error exit).
const SIGNAL_REPORT: &str = "grep -E '^Sig(Ign|Blk)' /proc/self/status; \
    { { yes; echo yes-exit=$? >&3; } | head -1 >/dev/null; } 3>&1";

fn assert_default_signals(what: &str, report: &str) {
    let st = parse_status(report);
    assert_eq!(hex_field(&st, "SigIgn"), 0, "{what}: {report}");
    assert_eq!(hex_field(&st, "SigBlk"), 0, "{what}: {report}");
    assert!(
        report.contains("yes-exit=141"),
        "{what}: yes was not killed by SIGPIPE: {report}"
    );
}

#[test]
fn run_resets_signals_a_caller_ignored() {
    require_root!();
    let mut b = Bundle::new("sigreset-run");
    b.sh(SIGNAL_REPORT);
    let args = ["run", "--bundle", b.dir_str(), &b.id];
    let out = b.spawn_with(&args, ignoring_caller).wait(TIMEOUT);
    assert!(out.success(), "{}", out.describe());
    assert_default_signals("run", &out.stdout);
}

#[test]
fn create_and_exec_reset_signals_a_caller_ignored() {
    require_root!();
    let mut b = Bundle::new("sigreset-exec");
    b.sh(&format!("{SIGNAL_REPORT}; echo report-done; sleep 30"));
    let args = ["create", "--bundle", b.dir_str(), &b.id];
    let create = b.spawn_with(&args, ignoring_caller).wait(TIMEOUT);
    assert!(create.success(), "{}", create.describe());
    b.start();
    let mut report = String::new();
    wait_until(TIMEOUT, || {
        report = create.stdout_now();
        report.contains("report-done")
    });
    assert!(report.contains("report-done"), "no report: {report:?}");
    assert_default_signals("create", &report);
    let exec = b
        .spawn_with(&["exec", &b.id, "sh", "-c", SIGNAL_REPORT], ignoring_caller)
        .wait(TIMEOUT);
    assert!(exec.success(), "{}", exec.describe());
    assert_default_signals("exec", &exec.stdout);
}

#[test]
fn home_comes_from_the_container_passwd() {
    require_root!();
    let mut b = Bundle::new("home");
    fs::write(
        b.rootfs().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n",
    )
    .unwrap();
    b.set("/process/env", json!(["PATH=/bin:/usr/bin"]));
    b.set("/process/user", json!({"uid": 33, "gid": 33}));
    b.args(&["sh", "-c", "echo HOME=$HOME; sleep 30"]);
    let create = b.create(&[]);
    b.start();
    assert!(
        wait_until(TIMEOUT, || create.stdout_now().contains("HOME=")),
        "no output: {}",
        create.stdout_now()
    );
    assert_eq!(create.stdout_now(), "HOME=/var/www\n");
    // exec: the exec'd user's home; a uid without an entry gets /.
    for (user, want) in [("0", "HOME=/root\n"), ("1234", "HOME=/\n")] {
        let o = b.ferry(&["exec", "--user", user, &b.id, "sh", "-c", "echo HOME=$HOME"]);
        assert!(o.success(), "{}", o.describe());
        assert_eq!(o.stdout, want, "--user {user}");
    }
    // A HOME the config (or exec --env) gives is kept.
    let o = b.ferry(&[
        "exec",
        "--env",
        "HOME=/x",
        &b.id,
        "sh",
        "-c",
        "echo HOME=$HOME",
    ]);
    assert_eq!(o.stdout, "HOME=/x\n", "{}", o.describe());
}

#[test]
fn home_from_a_passwd_that_is_a_fifo_does_not_hang() {
    require_root!();
    let mut b = Bundle::new("homefifo");
    let passwd = b.rootfs().join("etc/passwd");
    fs::remove_file(&passwd).unwrap();
    nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    b.set("/process/env", json!(["PATH=/bin:/usr/bin"]));
    assert_eq!(b.output("echo HOME=$HOME"), "HOME=/\n");
}

#[test]
fn missing_cwd_is_created_like_runc() {
    require_root!();
    let mut b = Bundle::new("mkcwd");
    b.readonly_root(true);
    b.set("/process/cwd", json!("/work/a/b"));
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1000, "umask": 63}),
    );
    let out = b.output("pwd; stat -c '%a %u %g' /work /work/a /work/a/b");
    // runc: MkdirAll(cwd, 0755) as the container's root, before / is read-only.
    assert_eq!(out, "/work/a/b\n755 0 0\n755 0 0\n755 0 0\n");
}

#[test]
fn exec_into_a_cwd_only_the_process_user_may_enter() {
    require_root!();
    // runc's "exec --user with no access to cwd": /root belongs to the
    // container's user 42, mode 0700; root without CAP_DAC_OVERRIDE can
    // enter it only while ferry still holds every capability.
    let mut b = Bundle::new("cwdperm");
    let root_dir = b.rootfs().join("root");
    fs::create_dir_all(&root_dir).unwrap();
    std::os::unix::fs::chown(&root_dir, Some(42), Some(42)).unwrap();
    fs::set_permissions(
        &root_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    b.set("/process/cwd", json!("/root"));
    b.set("/process/user", json!({"uid": 42, "gid": 42}));
    b.args(&["sleep", "30"]);
    b.create(&[]);
    b.start();
    let o = b.ferry(&["exec", "--user", "0", &b.id, "sh", "-c", "pwd; id -u"]);
    assert!(o.success(), "{}", o.describe());
    assert_eq!(o.stdout, "/root\n0\n");
    let o = b.ferry(&["exec", &b.id, "pwd"]);
    assert_eq!(o.stdout, "/root\n", "{}", o.describe());
}

/// The policy (field 41) and nice value (field 19) in a /proc/PID/stat line.
fn policy_and_nice(stat: &str) -> (String, String) {
    let after_comm = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields after the comm start at 3 (state).
    (fields[41 - 3].to_string(), fields[19 - 3].to_string())
}

#[test]
fn scheduler_is_applied_with_the_spec_flag_names() {
    require_root!();
    let mut b = Bundle::new("sched");
    b.set(
        "/process/scheduler",
        json!({"policy": "SCHED_BATCH", "nice": 7,
               "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
    );
    b.args(&["sh", "-c", "cat /proc/$$/stat; sleep 30"]);
    let create = b.create(&[]);
    b.start();
    assert!(wait_until(TIMEOUT, || create.stdout_now().contains(')')));
    // SCHED_BATCH is 3.
    assert_eq!(
        policy_and_nice(&create.stdout_now()),
        ("3".to_string(), "7".to_string()),
        "{}",
        create.stdout_now()
    );
    // exec --process: a process file without `user` or `cwd` (runc's
    // defaults: uid 0, gid 0, /), SCHED_IDLE (5), a spec flag name.
    let p = b.path("process.json");
    let process = json!({
        "args": ["sh", "-c", "id -u; id -g; pwd; cat /proc/$$/stat"],
        "env": ["PATH=/bin:/usr/bin"],
        "scheduler": {"policy": "SCHED_IDLE", "flags": ["SCHED_FLAG_DL_OVERRUN"]}
    });
    fs::write(&p, serde_json::to_vec(&process).unwrap()).unwrap();
    let o = b.ferry(&["exec", "--process", p.to_str().unwrap(), &b.id]);
    assert!(o.success(), "{}", o.describe());
    let mut lines = o.stdout.lines();
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(lines.next(), Some("/"));
    assert_eq!(
        policy_and_nice(lines.next().unwrap()).0,
        "5",
        "{}",
        o.describe()
    );
}
