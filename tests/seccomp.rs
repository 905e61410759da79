//! Seccomp on real containers: each action, argument conditions, the filter
//! count the container sees, the notify agent, podman's default profile and
//! the errors for bad profiles.
#[macro_use]
mod common;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use common::*;

/// A bundle whose process runs `script` under `seccomp`.
fn bundle(name: &str, script: &str, seccomp: Value) -> Bundle {
    let mut b = Bundle::new(name);
    b.readonly_root(false);
    b.sh(script);
    b.set("/linux/seccomp", seccomp);
    b
}

/// `/proc/self/status` lines of a process in filter mode with exactly one
/// filter; all its fields, for more checks.
fn assert_one_filter(status: &str) -> std::collections::BTreeMap<String, String> {
    let st = parse_status(status);
    assert_eq!(st.get("Seccomp").map(String::as_str), Some("2"), "{status}");
    assert_eq!(
        st.get("Seccomp_filters").map(String::as_str),
        Some("1"),
        "{status}"
    );
    st
}

fn errno_rule(names: &[&str], errno: i32) -> Value {
    json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno})
}

#[test]
fn blocked_mkdir_gets_the_asked_errno() {
    require_root!();
    for (errno, text) in [
        (libc::EPERM, "Operation not permitted"),
        (libc::EACCES, "Permission denied"),
    ] {
        let b = bundle(
            "sc-errno",
            "mkdir /tmp/d; echo rc=$?; touch /tmp/f && echo touched",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [errno_rule(&["mkdir", "mkdirat"], errno)]}),
        );
        let o = b.run(&[]);
        assert!(o.success(), "{}", o.describe());
        assert!(
            o.stdout.contains("rc=1") && o.stdout.contains("touched"),
            "{}",
            o.describe()
        );
        assert!(o.stderr.contains(text), "want {text:?}:\n{}", o.describe());
        assert!(!b.rootfs().join("tmp/d").exists());
    }
}

/// A static i386 program, `/i386probe` in `rootfs`: `mkdir("/tmp/i386-probe",
/// 0755)` through `int 0x80` (i386 number 39, x86_64's getpid), then
/// `exit(errno)`: 0 when it made the directory.
fn put_i386_probe(rootfs: &Path) {
    const BASE: u32 = 0x0804_8000;
    const CODE: u32 = 52 + 32;
    let path = b"/tmp/i386-probe\0";
    let mut code = Vec::new();
    let path_at = BASE + CODE + 28;
    code.push(0xb8); // mov eax, 39 (mkdir)
    code.extend(39u32.to_le_bytes());
    code.push(0xbb); // mov ebx, path
    code.extend(path_at.to_le_bytes());
    code.push(0xb9); // mov ecx, 0755
    code.extend(0o755u32.to_le_bytes());
    code.extend([0xcd, 0x80, 0xf7, 0xd8, 0x89, 0xc3]); // int 0x80; neg eax; mov ebx, eax
    code.push(0xb8); // mov eax, 1 (exit)
    code.extend(1u32.to_le_bytes());
    code.extend([0xcd, 0x80]);
    assert_eq!(code.len(), 28);
    code.extend(path);
    put_i386_program(rootfs, "i386probe", code);
}

/// A static i386 program `/NAME` in `rootfs` whose code (loaded at
/// `0x0804_8054`, right after the headers) is `code`.
fn put_i386_program(rootfs: &Path, name: &str, code: Vec<u8>) {
    const BASE: u32 = 0x0804_8000;
    const CODE: u32 = 52 + 32; // after the ELF and program headers
    let size = CODE + code.len() as u32;
    let mut elf = b"\x7fELF\x01\x01\x01".to_vec();
    elf.resize(16, 0);
    for half in [2u16, 3] {
        elf.extend(half.to_le_bytes()); // ET_EXEC, EM_386
    }
    for word in [1, BASE + CODE, 52, 0, 0] {
        elf.extend(word.to_le_bytes()); // version, entry, phoff, shoff, flags
    }
    for half in [52u16, 32, 1, 0, 0, 0] {
        elf.extend(half.to_le_bytes()); // ehsize, phentsize, phnum, sh*
    }
    for word in [1, 0, BASE, BASE, size, size, 5, 0x1000] {
        elf.extend(word.to_le_bytes()); // PT_LOAD, R+X
    }
    elf.extend(code);
    let probe = rootfs.join(name);
    std::fs::write(&probe, elf).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// 32-bit programs are filtered by their own syscall numbers when the
/// profile lists `SCMP_ARCH_X86`, and killed when it does not.
#[test]
fn i386_programs_are_filtered_by_i386_numbers() {
    require_root!();
    let both = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    for (what, archs, denied, want) in [
        ("i386 mkdir denied", both.clone(), "mkdir", "rc=1"),
        ("x86_64's number 39 (getpid) denied", both, "getpid", "rc=0"),
        (
            "i386 not listed",
            json!(["SCMP_ARCH_X86_64"]),
            "getpid",
            "rc=159",
        ),
    ] {
        let b = bundle(
            "sc-i386",
            "/i386probe; echo rc=$?",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": archs,
                   "syscalls": [errno_rule(&[denied], libc::EPERM)]}),
        );
        put_i386_probe(&b.rootfs());
        let o = b.run(&[]);
        assert!(
            o.stdout.lines().any(|l| l == want),
            "{what}: want {want}:\n{}",
            o.describe()
        );
    }
}

#[test]
fn kill_actions_kill_with_sigsys() {
    require_root!();
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
    ] {
        let b = bundle(
            "sc-kill",
            "exec mkdir /tmp/d",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]}),
        );
        let o = b.run(&[]);
        assert_eq!(o.code(), 128 + libc::SIGSYS, "{action}: {}", o.describe());
        assert!(!b.rootfs().join("tmp/d").exists());
    }
}

#[test]
fn trap_sends_sigsys_and_errno_zero_fakes_success() {
    require_root!();
    let b = bundle(
        "sc-trap",
        "mkdir /tmp/fake; echo fake=$?; test -d /tmp/fake || echo absent; exec rmdir /tmp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            errno_rule(&["mkdir", "mkdirat"], 0),
            {"names": ["rmdir"], "action": "SCMP_ACT_TRAP"}]}),
    );
    let o = b.run(&[]);
    assert_eq!(o.code(), 128 + libc::SIGSYS, "{}", o.describe());
    assert!(
        o.stdout.contains("fake=0") && o.stdout.contains("absent"),
        "{}",
        o.describe()
    );
}

/// Lines of the kernel log that record a SECCOMP_RET_LOG of mkdir.
fn logged_mkdirs() -> Option<usize> {
    let out = std::process::Command::new("dmesg").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let n = libc::SYS_mkdir;
    Some(
        text.lines()
            .filter(|l| l.contains("code=0x7ffc0000") && l.contains(&format!("syscall={n} ")))
            .count(),
    )
}

#[test]
fn log_logs_and_the_call_still_succeeds() {
    require_root!();
    let before = logged_mkdirs();
    let b = bundle(
        "sc-log",
        "mkdir /tmp/logged && echo made",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]}),
    );
    let o = b.run(&[]);
    assert!(o.success() && o.stdout.contains("made"), "{}", o.describe());
    assert!(b.rootfs().join("tmp/logged").is_dir());
    if let Some(before) = before {
        let logged = wait_until(Duration::from_secs(5), || {
            logged_mkdirs().is_some_and(|n| n > before)
        });
        assert!(logged, "no audit line for the logged mkdir in dmesg");
    }
}

#[test]
fn argument_conditions_match_only_the_asked_values() {
    require_root!();
    let b = bundle(
        "sc-args",
        "linux32 true; echo l32=$?; linux64 true; echo l64=$?; nc 127.0.0.1 9; nc ::1 9; true",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            // personality(PER_LINUX32) only; linux64 asks PER_LINUX (0).
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            // socket(AF_INET, ...) only, not AF_INET6.
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPROTONOSUPPORT,
             "args": [{"index": 0, "value": libc::AF_INET, "op": "SCMP_CMP_EQ"}]}]}),
    );
    let o = b.run(&[]);
    assert!(o.success(), "{}", o.describe());
    assert!(
        o.stdout.contains("l32=1") && o.stdout.contains("l64=0"),
        "{}",
        o.describe()
    );
    assert!(
        o.stderr.contains("personality(0x8): Permission denied"),
        "{}",
        o.describe()
    );
    let refused: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.contains("not supported"))
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "only the AF_INET socket fails:\n{}",
        o.describe()
    );
}

#[test]
fn the_process_sees_exactly_one_filter_with_and_without_nnp() {
    require_root!();
    for nnp in [true, false] {
        let mut b = bundle(
            "sc-status",
            "grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs):' /proc/self/status",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [errno_rule(&["kexec_load"], libc::EPERM)]}),
        );
        b.set("/process/noNewPrivileges", json!(nnp));
        let o = b.run(&[]);
        assert!(o.success(), "{}", o.describe());
        let st = assert_one_filter(&o.stdout);
        let want_nnp = if nnp { "1" } else { "0" };
        assert_eq!(
            st.get("NoNewPrivs").map(String::as_str),
            Some(want_nnp),
            "{}",
            o.stdout
        );
    }
}

#[test]
fn without_seccomp_there_is_no_filter() {
    require_root!();
    let mut b = Bundle::new("sc-none");
    let out = b.output("grep -E '^Seccomp' /proc/self/status");
    assert_eq!(
        parse_status(&out).get("Seccomp").map(String::as_str),
        Some("0")
    );
}

/// Podman's profile for the bundle's capabilities, as podman converts it.
fn podman_profile(b: &Bundle) -> Option<Value> {
    let path = Path::new("/usr/share/containers/seccomp.json");
    let p: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let caps: Vec<String> = b
        .get("/process/capabilities/bounding")
        .as_array()?
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut syscalls = Vec::new();
    for s in p["syscalls"].as_array()? {
        let arches = list(&s["includes"]["arches"]);
        if list(&s["includes"]["caps"])
            .iter()
            .any(|c| !caps.contains(c))
            || list(&s["excludes"]["caps"])
                .iter()
                .any(|c| caps.contains(c))
            || (!arches.is_empty() && !arches.iter().any(|a| a == "amd64"))
            || list(&s["excludes"]["arches"]).iter().any(|a| a == "amd64")
        {
            continue;
        }
        let mut s = s.clone();
        for k in ["includes", "excludes", "comment"] {
            s.as_object_mut()?.remove(k);
        }
        syscalls.push(s);
    }
    Some(json!({
        "defaultAction": p["defaultAction"],
        "defaultErrnoRet": p["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    }))
}

#[test]
fn podmans_default_profile_loads_and_busybox_runs() {
    require_root!();
    for nnp in [true, false] {
        let mut b = bundle("sc-podman", "", json!(null));
        let Some(profile) = podman_profile(&b) else {
            common::skip("this test: /usr/share/containers/seccomp.json missing");
            return;
        };
        b.set("/linux/seccomp", profile);
        b.set("/process/noNewPrivileges", json!(nnp));
        b.sh(
            "ls / >/dev/null && mkdir /tmp/d && echo hi > /tmp/d/f && cat /tmp/d/f \
              && grep '^Seccomp' /proc/self/status && linux32 true && echo ok",
        );
        let o = b.run(&[]);
        assert!(o.success(), "{}", o.describe());
        assert!(
            o.stdout
                .contains("hi\nSeccomp:\t2\nSeccomp_filters:\t1\nok"),
            "{}",
            o.describe()
        );
    }
}

#[test]
fn bad_profiles_fail_create_cleanly_and_leave_nothing() {
    require_root!();
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_BOGUS"}),
            "unknown seccomp action \"SCMP_ACT_BOGUS\"",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                   "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XOR"}]}]}),
            "unknown seccomp operator \"SCMP_CMP_XOR\"",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/nonexistent"}),
            "SCMP_ACT_NOTIFY cannot be the default seccomp action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "SCMP_ACT_NOTIFY rules need linux.seccomp.listenerPath",
        ),
    ];
    for (profile, msg) in cases {
        let b = bundle("sc-bad", "true", profile);
        let o = b.ferry(&["create", "--bundle", b.dir_str(), &b.id]);
        o.assert_one_line_error(Some(msg));
        b.assert_state_root_empty();
    }
}

#[test]
fn unreachable_agent_fails_create_and_leaves_nothing() {
    require_root!();
    let b = bundle(
        "sc-noagent",
        "true",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let o = b.ferry(&["create", "--bundle", b.dir_str(), &b.id]);
    o.assert_clean_error(Some(
        "failed to connect with seccomp agent at /nonexistent/agent.sock",
    ));
    b.assert_state_root_empty();
}

// ---------------------------------------------------------------------------
// A tiny seccomp agent
// ---------------------------------------------------------------------------

/// What the agent saw.
struct AgentLog {
    payload: Value,
    /// Syscall numbers it was asked about, in order.
    calls: Vec<i32>,
}

/// Accept one connection on `listener`, take the fd, and answer
/// notifications: the first with `-EXDEV`, later ones with success (the
/// call is not run), until the container is gone.
fn run_agent(listener: UnixListener) -> AgentLog {
    let (conn, _) = listener.accept().expect("accept");
    let mut buf = vec![0u8; 65536];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::empty(),
    )
    .expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed these fds for us.
            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
        }
    }
    let n = msg.bytes;
    let payload: Value = serde_json::from_slice(&buf[..n]).expect("payload is JSON");
    let fd = fd.expect("an fd with the payload");
    let mut calls = Vec::new();
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 15_000) };
        if r <= 0 || pfd.revents & libc::POLLIN == 0 {
            break; // timeout, or POLLHUP: no process uses the filter any more
        }
        // SAFETY: zeroed plain-data structs the kernel fills or reads.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV writes one seccomp_notif into `req`.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
            continue; // the caller went away
        }
        calls.push(req.data.nr);
        // SAFETY: seccomp_notif_resp is plain old data; all zeroes is valid.
        let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        resp.id = req.id;
        resp.error = if calls.len() == 1 { -libc::EXDEV } else { 0 };
        // SAFETY: SEND reads one seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    }
    AgentLog { payload, calls }
}

#[test]
fn notify_reaches_the_agent_which_answers_the_calls() {
    require_root!();
    for nnp in [true, false] {
        let mut b = bundle(
            "sc-notify",
            "mkdir /tmp/a; echo a=$?; mkdir /tmp/b; echo b=$?; test -d /tmp/b || echo b-absent; \
             echo done",
            json!(null),
        );
        let sock = b.path("agent.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        b.set("/process/noNewPrivileges", json!(nnp));
        b.set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock,
                "listenerMetadata": "from-the-test",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
            }),
        );
        b.set("/annotations", json!({"org.example.k": "v"}));
        let agent = std::thread::spawn(move || run_agent(listener));
        let o = b.run(&[]);
        let log = agent.join().expect("agent thread");
        assert!(o.success(), "{}", o.describe());
        assert!(
            o.stderr.contains("Invalid cross-device link"),
            "{}",
            o.describe()
        );
        assert!(
            o.stdout.contains("a=1\nb=0\nb-absent\ndone"),
            "{}",
            o.describe()
        );
        assert!(log.calls.len() >= 2, "agent saw {:?}", log.calls);
        let mkdirs = [libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32];
        assert!(
            log.calls.iter().all(|nr| mkdirs.contains(nr)),
            "{:?}",
            log.calls
        );
        let p = &log.payload;
        assert_eq!(p["fds"], json!(["seccompFd"]), "{p}");
        assert_eq!(p["metadata"], "from-the-test", "{p}");
        assert!(p["pid"].as_i64().unwrap_or(0) > 0, "{p}");
        assert_eq!(p["state"]["id"], b.id.as_str(), "{p}");
        assert_eq!(p["state"]["pid"], p["pid"], "{p}");
        assert_eq!(p["state"]["status"], "creating", "{p}");
        assert_eq!(p["state"]["bundle"], b.dir_str(), "{p}");
        assert_eq!(p["state"]["annotations"]["org.example.k"], "v", "{p}");
        assert_eq!(p["ociVersion"], b.get("/ociVersion").clone(), "{p}");
    }
}

#[test]
fn exec_processes_get_the_containers_filter() {
    require_root!();
    let b = bundle(
        "sc-exec",
        "exec sleep 30",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [errno_rule(&["mkdir", "mkdirat"], libc::EACCES)]}),
    );
    b.create(&[]);
    b.start();
    let o = b.ferry(&["exec", &b.id, "mkdir", "/tmp/x"]);
    assert!(!o.success(), "{}", o.describe());
    assert!(o.stderr.contains("Permission denied"), "{}", o.describe());
    let o = b.run_ok(&["exec", &b.id, "grep", "^Seccomp", "/proc/self/status"]);
    assert_one_filter(&o.stdout);
    b.run_ok(&["kill", &b.id, "KILL"]);
}

// ---------------------------------------------------------------------------
// Old profiles: newer syscalls fail with ENOSYS, as under runc
// ---------------------------------------------------------------------------

/// Calls each syscall with garbage arguments and prints `name=ERRNO`; then
/// `pthread_create` (glibc tries clone3 first and falls back to clone only
/// on ENOSYS).
const NEW_CALLS_PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *thread(void *arg) { return arg; }

static void try(const char *name, long nr) {
    errno = 0;
    long r = syscall(nr, -1L, 0L, 0L, 0L, 0L, 0L);
    printf("%s=%s\n", name, r == -1 ? strerrorname_np(errno) : "ok");
}

int main(void) {
    try("s1000", 1000);
    try("clone3", SYS_clone3);
    try("close_range", SYS_close_range);
    try("openat2", SYS_openat2);
    try("faccessat2", SYS_faccessat2);
    try("add_key", SYS_add_key);
    pthread_t t;
    int e = pthread_create(&t, NULL, thread, NULL);
    if (e == 0)
        e = pthread_join(t, NULL);
    printf("pthread=%s\n", e ? strerrorname_np(e) : "ok");
    return 0;
}
"#;

/// What [`NEW_CALLS_PROBE`] prints under an old profile: ENOSYS for what
/// is newer than the profile, EPERM (the default) for an older call it does
/// not name (`add_key`), and threads work.
const OLD_PROFILE_ANSWERS: &str = "s1000=ENOSYS\nclone3=ENOSYS\nclose_range=ENOSYS\n\
    openat2=ENOSYS\nfaccessat2=ENOSYS\nadd_key=EPERM\npthread=ok\n";

/// [`NEW_CALLS_PROBE`], built once with `cc -static`.
fn new_calls_probe() -> &'static Path {
    static PROBE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferry-sc-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("probe.c");
        std::fs::write(&src, NEW_CALLS_PROBE).unwrap();
        let bin = dir.join("probe");
        let out = std::process::Command::new("cc")
            .args(["-static", "-O2", "-pthread", "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("run cc (the Rust toolchain needs it)");
        assert!(
            out.status.success(),
            "cc -static failed (libc6-dev has libc.a):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// Podman's profile made old: EPERM by default (no `defaultErrnoRet`) and
/// no syscall newer than `rseq` (x86_64 334), like the Docker and
/// Kubernetes profiles of 2019 to 2021.
fn old_profile(b: &Bundle) -> Option<Value> {
    let mut p = podman_profile(b)?;
    p.as_object_mut()?.remove("defaultErrnoRet");
    let old = |name: &Value| {
        name.as_str()
            .and_then(ferry::seccomp::syscalls::number)
            .is_none_or(|nr| nr <= 334)
    };
    let entries = p["syscalls"].as_array_mut()?;
    for entry in entries.iter_mut() {
        entry["names"].as_array_mut()?.retain(old);
    }
    entries.retain(|e| e["names"].as_array().is_some_and(|n| !n.is_empty()));
    Some(p)
}

/// A container under an old profile starts with and without
/// `noNewPrivileges` (ferry's own fd clean-up no longer runs under the
/// filter), keeps none of ferry's fds, and its process sees ENOSYS for
/// syscalls newer than the profile, so glibc's fallbacks work.
#[test]
fn old_profiles_give_enosys_for_newer_calls_and_containers_start() {
    require_root!();
    for nnp in [false, true] {
        let mut b = bundle("sc-oldprof", "/probe && ls /proc/self/fd", json!(null));
        let Some(profile) = old_profile(&b) else {
            common::skip("this test: /usr/share/containers/seccomp.json missing");
            return;
        };
        b.set("/linux/seccomp", profile);
        b.set("/process/noNewPrivileges", json!(nnp));
        std::fs::copy(new_calls_probe(), b.rootfs().join("probe")).unwrap();
        let f7 = std::fs::File::open("/etc/passwd").unwrap();
        let o = b.ferry_with(&["run", "--bundle", b.dir_str(), &b.id], |c| {
            with_inherited_fds(c, vec![(f7, 7)]);
        });
        assert!(o.success(), "noNewPrivileges {nnp}:\n{}", o.describe());
        let (answers, fds) = o
            .stdout
            .split_at_checked(OLD_PROFILE_ANSWERS.len())
            .unwrap_or((&o.stdout, ""));
        assert_eq!(answers, OLD_PROFILE_ANSWERS, "noNewPrivileges {nnp}");
        assert_eq!(
            Bundle::fd_set(fds),
            std::collections::BTreeSet::from([0, 1, 2, 3]),
            "leaked fds: {}",
            o.stdout
        );
    }
}

/// `int 0x80` with number `nr` (no arguments), then `exit(-result)`: the
/// exit status is the errno.
fn put_i386_call(rootfs: &Path, name: &str, nr: u32) {
    let mut code = vec![0xb8]; // mov eax, nr
    code.extend(nr.to_le_bytes());
    code.extend([0x31, 0xdb, 0x31, 0xc9, 0x31, 0xd2]); // xor ebx/ecx/edx
    code.extend([0xcd, 0x80, 0xf7, 0xd8, 0x89, 0xc3]); // int 0x80; neg eax; mov ebx, eax
    code.push(0xb8); // mov eax, 1 (exit)
    code.extend(1u32.to_le_bytes());
    code.extend([0xcd, 0x80]);
    put_i386_program(rootfs, name, code);
}

/// 32-bit programs get the same rule by i386 numbers: above the newest
/// i386 call the profile names, ENOSYS; below it, the default errno.
#[test]
fn old_profiles_give_enosys_to_i386_calls_too() {
    require_root!();
    let mut b = bundle(
        "sc-oldi386",
        "for p in s1000 clone3 add_key; do /$p; echo $p=$?; done",
        json!(null),
    );
    let Some(profile) = old_profile(&b) else {
        common::skip("this test: /usr/share/containers/seccomp.json missing");
        return;
    };
    b.set("/linux/seccomp", profile);
    for (name, nr) in [("s1000", 1000), ("clone3", 435), ("add_key", 286)] {
        put_i386_call(&b.rootfs(), name, nr);
    }
    let o = b.run(&[]);
    assert!(o.success(), "{}", o.describe());
    assert_eq!(
        o.stdout,
        format!(
            "s1000={e}\nclone3={e}\nadd_key={p}\n",
            e = libc::ENOSYS,
            p = libc::EPERM
        ),
        "{}",
        o.describe()
    );
}

/// A startContainer hook runs under the container's filter; killed by it,
/// the error says so in runc's words.
#[test]
fn start_container_hook_killed_by_seccomp_is_a_hook_error() {
    require_root!();
    let mut b = bundle(
        "sc-hook",
        "echo not-reached",
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]}),
    );
    b.set(
        "/hooks/startContainer",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/foo"]}]),
    );
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]),
    );
    let o = b.run(&[]);
    assert!(!o.success(), "{}", o.describe());
    assert!(!o.stdout.contains("not-reached"), "{}", o.describe());
    for words in [
        "error running startContainer hook",
        "error running hook",
        "bad system call",
    ] {
        assert!(
            o.stderr.contains(words),
            "want {words:?}:\n{}",
            o.describe()
        );
    }
    assert!(!b.rootfs().join("tmp/foo").exists());
}
