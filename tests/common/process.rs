//! Running and watching processes: one ferry invocation's [`Out`], waits
//! with deadlines, and what the host sees (processes by root, mounts,
//! namespaces, capabilities).

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Result of one ferry invocation.
#[derive(Debug)]
pub struct Out {
    pub cmd: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// File that received ferry's stdout; for `create` it keeps receiving
    /// the container's output after ferry exits.
    pub stdout_path: PathBuf,
}

impl Out {
    /// Re-read the stdout file (e.g. container output after `start`).
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Exit code, or 128+signal if the ferry process itself was killed.
    pub fn code(&self) -> i32 {
        match (self.status.code(), self.status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            _ => -1,
        }
    }
    pub fn success(&self) -> bool {
        self.status.success()
    }
    pub fn describe(&self) -> String {
        format!(
            "`{}` -> {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.status, self.stdout, self.stderr
        )
    }
    /// Assert a clean failure: non-zero exit, a non-empty error message on
    /// stderr, no panic/backtrace; `needle` (case-insensitive) must be in it.
    pub fn assert_clean_error(&self, needle: Option<&str>) {
        assert!(!self.success(), "expected failure:\n{}", self.describe());
        let err = self.stderr.trim();
        assert!(
            !err.is_empty(),
            "expected an error message on stderr:\n{}",
            self.describe()
        );
        assert!(
            !err.contains("panicked")
                && !err.contains("RUST_BACKTRACE")
                && self.status.signal().is_none(),
            "ferry crashed instead of reporting an error:\n{}",
            self.describe()
        );
        if let Some(n) = needle {
            assert!(
                err.to_lowercase().contains(&n.to_lowercase()),
                "error message should mention {n:?}:\n{}",
                self.describe()
            );
        }
    }
    /// Like `assert_clean_error` and the message is a single line.
    pub fn assert_one_line_error(&self, needle: Option<&str>) {
        self.assert_clean_error(needle);
        assert_eq!(
            self.stderr.trim().lines().count(),
            1,
            "error should be a single line:\n{}",
            self.describe()
        );
    }
}

/// Wait for `child` for at most `timeout`. Returns None on timeout.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

/// A live, non-zombie process.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the first field after the ")" closing comm
            let st = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            !matches!(st, Some(Some('Z')) | Some(Some('X')) | None)
        }
        Err(_) => false,
    }
}

/// (st_dev, st_ino) of a path (following symlinks, including /proc magic links).
pub fn dev_ino(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// True if both paths resolve to the same inode (e.g. `/proc/PID/exe` and a
/// binary in the rootfs). Paths printed by readlink on /proc links are not
/// usable for this: for a process in another mount namespace the kernel
/// prints them relative to that namespace.
pub fn same_file(a: &Path, b: &Path) -> bool {
    matches!((dev_ino(a), dev_ino(b)), (Some(x), Some(y)) if x == y)
}

/// Live processes whose root directory is the directory `root` (compared by
/// device and inode, so it works across mount namespaces).
pub fn procs_with_root(root: &Path) -> Vec<i32> {
    let mut v = Vec::new();
    let Some(want) = dev_ino(root) else { return v };
    let Ok(rd) = fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if dev_ino(Path::new(&format!("/proc/{pid}/root"))) == Some(want) && pid_alive(pid) {
            v.push(pid);
        }
    }
    v.sort();
    v
}

/// Mount points (host view, this process' mount ns) at or below `dir`, or
/// whose mount source/root mentions `dir`.
pub fn host_mounts_mentioning(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&d))
        .map(str::to_string)
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lazily unmount everything mounted at or below `dir` in our mount ns.
pub fn detach_mounts_under(dir: &Path) {
    for _ in 0..4 {
        let mut points: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
            .filter(|p| Path::new(p).starts_with(dir))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            if let Ok(c) = std::ffi::CString::new(p) {
                // SAFETY: `c` is NUL-terminated and outlives the call.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
}

/// Our own namespace link (e.g. "net:[4026531833]").
pub fn host_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Arrange for `cmd` to have `files` at exactly the given fd numbers (without
/// CLOEXEC) when it execs.
pub fn with_inherited_fds(cmd: &mut Command, files: Vec<(fs::File, i32)>) {
    use std::os::fd::AsRawFd;
    let raw: Vec<(i32, i32)> = files.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect();
    // keep the files open until the command is spawned: leak them into the closure
    let keep = files;
    // SAFETY: the closure runs in the forked child before exec and makes
    // only async-signal-safe calls (fcntl, dup2) on fds it was given.
    unsafe {
        cmd.pre_exec(move || {
            let _ = &keep;
            // first move every source out of the way of the targets
            let mut tmp = Vec::with_capacity(raw.len());
            for (i, (src, _)) in raw.iter().enumerate() {
                let t = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, 500 + i as i32);
                if t < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                tmp.push(t);
            }
            for (t, (_, target)) in tmp.iter().zip(raw.iter()) {
                if libc::dup2(*t, *target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Capability name -> number, as in linux/capability.h.
pub fn cap_number(name: &str) -> u32 {
    const CAPS: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    CAPS.iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("unknown capability {name}")) as u32
}

pub fn cap_mask<S: AsRef<str>>(names: &[S]) -> u64 {
    names
        .iter()
        .fold(0u64, |m, n| m | (1u64 << cap_number(n.as_ref())))
}

/// Parse "/proc/<pid>/status"-style text into key -> value.
pub fn parse_status(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Kill `child` and reap it, unless it has exited already (for `Drop` of
/// a test's spawned process).
pub fn kill_if_running(child: &mut std::process::Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
