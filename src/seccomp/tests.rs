//! Translation tests: compile profiles and run the programs on made-up
//! syscalls with the BPF interpreter in `bpf_eval`.

use serde_json::{Value, json};

use super::bpf_eval::{Data, run};
use super::*;

const ALLOW: u32 = 0x7fff_0000;
const LOG: u32 = 0x7ffc_0000;
const TRAP: u32 = 0x0003_0000;
const KILL_THREAD: u32 = 0;
const KILL_PROCESS: u32 = 0x8000_0000;
const NOTIF: u32 = 0x7fc0_0000;
const fn errno(e: i32) -> u32 {
    0x0005_0000 | e as u32
}

fn nr(name: &str) -> u32 {
    syscalls::number(name).unwrap()
}

fn filter(profile: Value) -> Filter {
    Filter::compile(&serde_json::from_value(profile).unwrap()).unwrap()
}

fn error(profile: Value) -> SeccompError {
    Filter::compile(&serde_json::from_value(profile).unwrap()).unwrap_err()
}

fn call(f: &Filter, name: &str, args: &[u64]) -> u32 {
    run(&f.program, &Data::call(nr(name), args))
}

#[test]
fn actions_apply_to_named_syscalls_only() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["chdir"], "action": "SCMP_ACT_KILL"},
        {"names": ["fchdir"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["sync"], "action": "SCMP_ACT_TRAP"},
        {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
        {"names": ["no_such_syscall", "umask"], "action": "SCMP_ACT_KILL_THREAD"}
    ]}));
    assert_eq!(call(&f, "mkdir", &[]), errno(libc::EACCES));
    assert_eq!(call(&f, "mkdirat", &[]), errno(libc::EACCES));
    assert_eq!(call(&f, "rmdir", &[]), errno(libc::EPERM));
    assert_eq!(call(&f, "chdir", &[]), KILL_THREAD);
    assert_eq!(call(&f, "fchdir", &[]), KILL_PROCESS);
    assert_eq!(call(&f, "sync", &[]), TRAP);
    assert_eq!(call(&f, "getppid", &[]), LOG);
    assert_eq!(call(&f, "umask", &[]), KILL_THREAD);
    for other in ["read", "write", "execve", "openat", "file_setattr"] {
        assert_eq!(call(&f, other, &[]), ALLOW, "{other}");
    }
    assert!(!f.notify());
}

#[test]
fn default_errno_and_allow_list() {
    let f = filter(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}),
    );
    assert_eq!(call(&f, "read", &[]), ALLOW);
    assert_eq!(call(&f, "mkdir", &[]), errno(libc::ENOSYS));
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO"}));
    assert_eq!(call(&f, "read", &[]), errno(libc::EPERM));
}

#[test]
fn argument_conditions_match_only_their_values() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
         "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}
    ]}));
    assert_eq!(call(&f, "personality", &[0xffff_ffff]), errno(libc::EPERM));
    assert_eq!(call(&f, "personality", &[0]), ALLOW);
    assert_eq!(call(&f, "personality", &[0x1_ffff_ffff]), ALLOW);
    assert_eq!(call(&f, "socket", &[2, 1]), errno(97));
    assert_eq!(call(&f, "socket", &[2, 2]), ALLOW);
    assert_eq!(call(&f, "socket", &[1, 1]), ALLOW);
}

#[test]
fn every_operator_compares_64_bit_values() {
    let hi = 0x1_0000_0005u64;
    let ops = [
        ("SCMP_CMP_NE", [false, true, true, true]),
        ("SCMP_CMP_LT", [false, true, false, true]),
        ("SCMP_CMP_LE", [true, true, false, true]),
        ("SCMP_CMP_EQ", [true, false, false, false]),
        ("SCMP_CMP_GE", [true, false, true, false]),
        ("SCMP_CMP_GT", [false, false, true, false]),
    ];
    // args: equal, lower half bigger but high word smaller, bigger, small
    let probes = [hi, 0xffff_ffff, 0x2_0000_0000, 4];
    for (op, want) in ops {
        let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["ioctl"], "action": "SCMP_ACT_TRAP",
             "args": [{"index": 1, "value": hi, "op": op}]}]}));
        for (probe, hit) in probes.iter().zip(want) {
            let got = call(&f, "ioctl", &[0, *probe]);
            assert_eq!(got == TRAP, hit, "{op} with {probe:#x}");
        }
    }
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0x7e02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["unshare"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0xf0, "valueTwo": 0x100, "op": "SCMP_CMP_MASKED_EQ"}]}
    ]}));
    assert_eq!(call(&f, "clone", &[0x11]), errno(1));
    assert_eq!(call(&f, "clone", &[0x1000_0011]), ALLOW);
    // valueTwo outside the mask: never matches.
    assert_eq!(call(&f, "unshare", &[0x100]), ALLOW);
    assert_eq!(call(&f, "unshare", &[0]), ALLOW);
}

#[test]
fn specific_rules_win_over_unconditional_ones_and_order_holds() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_KILL_PROCESS",
         "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_LOG",
         "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_GE"}]},
        {"names": ["socket"], "action": "SCMP_ACT_TRAP"},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}
    ]}));
    assert_eq!(call(&f, "socket", &[16]), errno(22));
    assert_eq!(call(&f, "socket", &[40]), KILL_PROCESS);
    assert_eq!(call(&f, "socket", &[41]), LOG);
    assert_eq!(call(&f, "socket", &[1]), ALLOW);
    assert_eq!(call(&f, "read", &[]), ALLOW);
    assert_eq!(call(&f, "write", &[]), errno(1));
}

#[test]
fn rules_with_the_default_action_are_dropped_like_runc() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW"}
    ]}));
    assert_eq!(call(&f, "socket", &[2]), ALLOW);
}

#[test]
fn conditions_on_one_argument_are_ored_like_runc() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]}]}));
    assert_eq!(call(&f, "personality", &[1]), errno(1));
    assert_eq!(call(&f, "personality", &[3]), errno(1));
    assert_eq!(call(&f, "personality", &[2]), ALLOW);
}

#[test]
fn notify_is_rewritten_to_user_notif() {
    let f = filter(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
            // TRACE data that would collide with a naive placeholder choice
            {"names": ["rmdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 65535},
            {"names": ["chdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 65534},
            {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 0x7ff0_ffffu64, "op": "SCMP_CMP_EQ"}]}
        ]}),
    );
    assert!(f.notify());
    assert_eq!(f.flags, libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
    assert_eq!(call(&f, "mkdir", &[]), NOTIF);
    assert_eq!(call(&f, "rmdir", &[]), 0x7ff0_ffff);
    assert_eq!(call(&f, "chdir", &[]), 0x7ff0_fffe);
    assert_eq!(call(&f, "ioctl", &[0, 0x7ff0_ffff]), errno(1));
    assert_eq!(call(&f, "ioctl", &[0, 1]), ALLOW);
    assert_eq!(call(&f, "read", &[]), ALLOW);
    // The placeholders never leak into the program.
    assert!(f.program.iter().all(|i| {
        i.code != 0x06
            || [
                ALLOW,
                NOTIF,
                0x7ff0_ffff,
                0x7ff0_fffe,
                errno(1),
                KILL_PROCESS,
            ]
            .contains(&i.k)
    }));
}

#[test]
fn flags_translate_and_killable_recv_needs_a_listener() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}));
    assert_eq!(
        f.flags,
        libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    );
}

#[test]
fn foreign_abis_fail_closed() {
    let i386 = |f: &Filter| {
        run(
            &f.program,
            &Data {
                arch: 0x4000_0003,
                ..Data::call(39, &[])
            },
        )
    };
    let x32 = |f: &Filter| run(&f.program, &Data::call(0x4000_0000 | 39, &[]));
    let allow = json!({"defaultAction": "SCMP_ACT_ALLOW"});
    let f = filter(allow.clone());
    assert_eq!((i386(&f), x32(&f)), (KILL_PROCESS, KILL_PROCESS));
    let mut listed = allow;
    listed["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let f = filter(listed.clone());
    // i386 has its own section (the default allows); x32 has no table.
    assert_eq!((i386(&f), x32(&f)), (ALLOW, errno(libc::ENOSYS)));
    listed["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS");
    listed["architectures"] = json!(["SCMP_ARCH_X86"]);
    let f = filter(listed);
    assert_eq!((i386(&f), x32(&f)), (KILL_PROCESS, KILL_PROCESS));
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X32"]}));
    assert_eq!((i386(&f), x32(&f)), (KILL_PROCESS, errno(1)));
}

#[test]
fn i386_calls_are_decided_by_their_own_numbers() {
    let i386 = |f: &Filter, name: &str, args: &[u64]| {
        let nr = super::syscalls_i386::number(name).unwrap();
        run(
            &f.program,
            &Data {
                arch: 0x4000_0003,
                ..Data::call(nr, args)
            },
        )
    };
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["getpid", "socketcall"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mkdir"], "action": "SCMP_ACT_LOG"}
        ]
    }));
    // i386 getpid is 20 and mkdir 39; x86_64 getpid is 39.
    assert_eq!(i386(&f, "getpid", &[]), ALLOW);
    assert_eq!(i386(&f, "mkdir", &[]), LOG);
    assert_eq!(call(&f, "getpid", &[]), ALLOW);
    assert_eq!(call(&f, "mkdir", &[]), LOG);
    assert_eq!(i386(&f, "socketcall", &[]), ALLOW);
    assert_eq!(i386(&f, "personality", &[8]), ALLOW);
    assert_eq!(i386(&f, "personality", &[9]), errno(1));
    assert_eq!(i386(&f, "read", &[]), errno(1));
    // Every i386 number reaches its section's decision; numbers above the
    // newest one named (personality, 136) get ENOSYS.
    for &(name, nr) in super::syscalls_i386::SYSCALLS {
        let want = match name {
            "getpid" | "socketcall" => ALLOW,
            "mkdir" => LOG,
            _ if nr > 136 => errno(libc::ENOSYS),
            _ => errno(1),
        };
        assert_eq!(i386(&f, name, &[0]), want, "{name}");
    }
}

#[test]
fn bad_profiles_are_clear_errors() {
    let e = error(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}));
    assert!(matches!(e, SeccompError::NotifyDefault), "{e}");
    let e = error(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(matches!(e, SeccompError::NotifyWithoutListener), "{e}");
    let e = error(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
    );
    assert_eq!(
        e.to_string(),
        "seccomp argument index 6 is out of range (0 to 5)"
    );
    let e = error(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536}));
    assert_eq!(e.to_string(), "seccomp errnoRet 65536 is out of range");
    let many: Vec<Value> = (0..1000)
        .map(|v| json!({"index": 0, "value": v, "op": "SCMP_CMP_EQ"}))
        .collect();
    let e = error(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": many}]}));
    assert!(matches!(e, SeccompError::TooLarge(_)), "{e}");
}

#[test]
fn precheck_names_unknown_strings() {
    let cfg = |s: Value| json!({"linux": {"seccomp": s}});
    let e = precheck(&cfg(json!({"defaultAction": "SCMP_ACT_BOGUS"}))).unwrap_err();
    assert_eq!(e.to_string(), "unknown seccomp action \"SCMP_ACT_BOGUS\"");
    let e = precheck(&cfg(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]})))
    .unwrap_err();
    assert_eq!(e.to_string(), "unknown seccomp action \"SCMP_ACT_NOPE\"");
    let e = precheck(&cfg(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XOR"}]}]}),
    ))
    .unwrap_err();
    assert_eq!(e.to_string(), "unknown seccomp operator \"SCMP_CMP_XOR\"");
    let e = precheck(&cfg(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["FLAG_X"]}),
    ))
    .unwrap_err();
    assert_eq!(e.to_string(), "unknown seccomp flag \"FLAG_X\"");
    let e = precheck(&cfg(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}),
    ))
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown seccomp architecture \"SCMP_ARCH_Z80\""
    );
    precheck(&json!({})).unwrap();
    precheck(&cfg(json!({"defaultAction": "SCMP_ACT_KILL", "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG",
        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED_EQ"}]}]})))
    .unwrap();
}

/// Podman's default profile (containers-common), turned into an OCI profile
/// the way podman does for a container with `caps` in its bounding set.
pub fn podman_profile(caps: &[&str]) -> Option<Value> {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json").ok()?;
    let p: Value = serde_json::from_str(&text).ok()?;
    let has = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let mut syscalls = Vec::new();
    for s in p["syscalls"].as_array()? {
        let inc_caps = has(&s["includes"]["caps"]);
        let exc_caps = has(&s["excludes"]["caps"]);
        let inc_arch = has(&s["includes"]["arches"]);
        let exc_arch = has(&s["excludes"]["arches"]);
        if inc_caps.iter().any(|c| !caps.contains(&c.as_str()))
            || exc_caps.iter().any(|c| caps.contains(&c.as_str()))
            || (!inc_arch.is_empty() && !inc_arch.iter().any(|a| a == "amd64"))
            || exc_arch.iter().any(|a| a == "amd64")
        {
            continue;
        }
        let mut s = s.clone();
        let o = s.as_object_mut()?;
        for k in ["includes", "excludes", "comment"] {
            o.remove(k);
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
fn podman_default_profile_compiles_quickly() {
    let Some(profile) = podman_profile(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
    else {
        eprintln!("skipping: /usr/share/containers/seccomp.json not installed");
        return;
    };
    let spec: LinuxSeccomp = serde_json::from_value(profile).unwrap();
    let f = Filter::compile(&spec).unwrap();
    assert!(f.len() < compile::MAX_INSNS);
    assert_eq!(call(&f, "read", &[]), ALLOW);
    assert_eq!(call(&f, "personality", &[0xffff_ffff]), ALLOW);
    assert_eq!(call(&f, "personality", &[7]), errno(libc::ENOSYS));
    assert_eq!(call(&f, "kexec_load", &[]), errno(libc::EPERM));
    assert_eq!(call(&f, "chroot", &[]), errno(libc::EPERM));
    assert_eq!(call(&f, "socket", &[16, 3, 9]), ALLOW);
    let n = 50;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(Filter::compile(&spec).unwrap());
    }
    eprintln!(
        "podman profile: {} instructions, compile {:?} each",
        f.len(),
        t.elapsed() / n
    );
}

/// Load the podman profile in a forked child (with no_new_privs) and time
/// the `seccomp(2)` call.
#[test]
fn podman_default_profile_loads_in_the_kernel() {
    let Some(profile) = podman_profile(&["CAP_KILL"]) else {
        eprintln!("skipping: /usr/share/containers/seccomp.json not installed");
        return;
    };
    let f = Filter::compile(&serde_json::from_value(profile).unwrap()).unwrap();
    let (rd, wr) = nix::unistd::pipe().unwrap();
    // The child only makes async-signal-safe calls (prctl, seccomp,
    // clock_gettime, write, _exit) before it exits.
    match syscall::fork().unwrap() {
        syscall::Forked::Child => {
            let t = std::time::Instant::now();
            let ok = syscall::set_no_new_privs().is_ok() && f.load().is_ok();
            let us = if ok {
                t.elapsed().as_micros() as u64
            } else {
                u64::MAX
            };
            let _ = nix::unistd::write(&wr, &us.to_ne_bytes());
            syscall::exit_now(0);
        }
        syscall::Forked::Parent(child) => {
            drop(wr);
            let mut buf = [0u8; 8];
            let n = nix::unistd::read(&rd, &mut buf).unwrap();
            nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(n, 8);
            let us = u64::from_ne_bytes(buf);
            assert_ne!(us, u64::MAX, "the kernel refused the filter");
            eprintln!("podman profile: {} instructions, load {us} µs", f.len());
        }
    }
}

#[test]
fn dispatch_reaches_every_syscall_number() {
    // Every third syscall allowed, every third one with a condition on its
    // first argument: spread over all buckets, with gaps between.
    let names: Vec<&str> = syscalls::SYSCALLS.iter().map(|(n, _)| *n).collect();
    let plain: Vec<&str> = names.iter().copied().step_by(3).collect();
    let cond: Vec<&str> = names.iter().copied().skip(1).step_by(3).collect();
    let f = filter(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": plain, "action": "SCMP_ACT_ALLOW"},
        {"names": cond, "action": "SCMP_ACT_TRAP",
         "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]},
        {"names": cond, "action": "SCMP_ACT_LOG"}]}),
    );
    for nr in 0..600u32 {
        let name = syscalls::SYSCALLS
            .iter()
            .find(|(_, n)| *n == nr)
            .map(|(s, _)| *s);
        let run_with = |arg| run(&f.program, &Data::call(nr, &[arg]));
        match name {
            Some(n) if plain.contains(&n) => assert_eq!(run_with(7), ALLOW, "{n}"),
            Some(n) if cond.contains(&n) => {
                assert_eq!((run_with(7), run_with(8)), (TRAP, LOG), "{n}")
            }
            _ => assert_eq!(run_with(7), errno(libc::ENOSYS), "{nr}"),
        }
    }
}

/// An i386 call of number `nr`.
fn i386_nr(f: &Filter, nr: u32, args: &[u64]) -> u32 {
    run(
        &f.program,
        &Data {
            arch: 0x4000_0003,
            ..Data::call(nr, args)
        },
    )
}

/// An old-style profile: EPERM by default, nothing newer than `rseq` named
/// (x86_64 334, i386 386), `rseq` only in a rule with the default action.
fn old_style_profile(default: &str, archs: Value) -> Value {
    json!({"defaultAction": default, "architectures": archs, "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["statx"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}]},
        {"names": ["rseq"], "action": default}
    ]})
}

#[test]
fn calls_newer_than_the_profile_get_enosys_like_runc() {
    let both = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
    let f = filter(old_style_profile("SCMP_ACT_ERRNO", both.clone()));
    let eperm = errno(libc::EPERM);
    let enosys = errno(libc::ENOSYS);
    assert_eq!(call(&f, "read", &[]), ALLOW);
    assert_eq!(call(&f, "statx", &[5]), ALLOW);
    // Older calls the profile does not allow keep the default action...
    assert_eq!(call(&f, "mkdir", &[]), eperm);
    assert_eq!(call(&f, "rseq", &[]), eperm);
    // ... even when a condition left a big argument in the accumulator.
    assert_eq!(call(&f, "statx", &[1000]), eperm);
    // Newer ones, and numbers no kernel has, fail as if unknown.
    for nr in [335, 435, 436, 437, 439, 1000, 0x3fff_ffff] {
        assert_eq!(run(&f.program, &Data::call(nr, &[1000])), enosys, "{nr}");
    }
    // i386 by its own numbers: rseq is 386 there.
    assert_eq!(i386_nr(&f, 3, &[]), ALLOW);
    assert_eq!(i386_nr(&f, 39, &[]), eperm);
    assert_eq!(i386_nr(&f, 386, &[]), eperm);
    for nr in [387, 435, 1000] {
        assert_eq!(i386_nr(&f, nr, &[]), enosys, "i386 {nr}");
    }
    // x32 is not translated: its calls keep the ABI's fixed answer.
    assert_eq!(
        run(&f.program, &Data::call(0x4000_0000 | 1000, &[])),
        KILL_PROCESS
    );
    // Any denying default gets it; one that lets calls run or already says
    // ENOSYS has nothing to add.
    for (default, want) in [
        ("SCMP_ACT_KILL_PROCESS", enosys),
        ("SCMP_ACT_KILL", enosys),
        ("SCMP_ACT_TRAP", enosys),
        ("SCMP_ACT_ALLOW", ALLOW),
        ("SCMP_ACT_LOG", LOG),
        ("SCMP_ACT_TRACE", 0x7ff0_0001),
    ] {
        let f = filter(old_style_profile(default, both.clone()));
        assert_eq!(run(&f.program, &Data::call(1000, &[])), want, "{default}");
    }
    let mut p = old_style_profile("SCMP_ACT_ERRNO", both);
    p["defaultErrnoRet"] = json!(libc::ENOSYS);
    let plain = filter(p.clone());
    p["defaultErrnoRet"] = json!(libc::ENXIO);
    let stubbed = filter(p);
    assert_eq!(run(&plain.program, &Data::call(1000, &[])), enosys);
    assert_eq!(run(&stubbed.program, &Data::call(1000, &[])), enosys);
    // Three instructions per ABI, none for an ENOSYS default.
    assert_eq!(stubbed.len(), plain.len() + 6);
}

#[test]
fn the_enosys_rule_covers_the_listed_abis_like_runc() {
    let at_1000 = |archs: Value| {
        let f = filter(old_style_profile("SCMP_ACT_ERRNO", archs));
        let native = run(&f.program, &Data::call(1000, &[]));
        (native, i386_nr(&f, 1000, &[]))
    };
    let (eperm, enosys) = (errno(libc::EPERM), errno(libc::ENOSYS));
    assert_eq!(at_1000(json!(["SCMP_ARCH_X86"])), (eperm, enosys));
    assert_eq!(at_1000(json!(["SCMP_ARCH_X32"])).0, eperm);
    assert_eq!(at_1000(json!(["SCMP_ARCH_NATIVE"])).0, enosys);
    // Without architectures runc adds no stub; ferry does for the native
    // ABI, which it filters either way.
    assert_eq!(at_1000(json!([])).0, enosys);
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO"}));
    assert_eq!(run(&f.program, &Data::call(1000, &[])), eperm);
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}));
    assert_eq!(
        run(&f.program, &Data::call(1000, &[])),
        eperm,
        "only syscall 0 named: no stub, as runc"
    );
}
