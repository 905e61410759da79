//! The reliability tests' rig: [`Rig`], a bundle and state root used by
//! root or by the test user ([`Mode`]), ferry started in the background
//! as a [`Job`] timed with a pidfd, and what a container can leak (state,
//! mounts, processes, cgroups, zombies).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// How long leaks get to go away (processes finishing dying).
pub const SHORT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Root,
    Rootless,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Root => "root",
            Mode::Rootless => "rootless",
        }
    }
}

/// Wait for `child` for at most `timeout` (a pidfd, so no polling delay
/// inflates the timings). None on timeout.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    #[allow(clippy::disallowed_methods)] // test set-up, not the runtime
    // SAFETY: pidfd_open takes a pid and flags; the fd is closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id(), 0) } as i32;
    if pidfd < 0 {
        return wait_timeout(child, timeout);
    }
    let deadline = Instant::now() + timeout;
    let ready = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        if n > 0 {
            break true;
        }
        if n == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break false;
        }
    };
    // SAFETY: our own fd.
    unsafe { libc::close(pidfd) };
    if ready {
        Some(child.wait().expect("wait"))
    } else {
        None
    }
}

/// A ferry process started by a [`Rig`].
pub struct Job {
    pub child: Child,
    pub cmd: String,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Job {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn wait(mut self, timeout: Duration) -> Out {
        match wait_child(&mut self.child, timeout) {
            Some(status) => self.out(status),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "timeout after {timeout:?}: `{}`\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.cmd,
                    fs::read_to_string(&self.out).unwrap_or_default(),
                    fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
        }
    }

    pub fn out(&self, status: ExitStatus) -> Out {
        Out {
            cmd: self.cmd.clone(),
            status,
            stdout: fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: fs::read_to_string(&self.err).unwrap_or_default(),
            stdout_path: self.out.clone(),
        }
    }

    pub fn stdout_so_far(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        kill_if_running(&mut self.child);
    }
}

/// A bundle and a state root, used by root or by the test user.
pub struct Rig {
    pub b: Bundle,
    pub mode: Mode,
    pub user: Option<(u32, u32)>,
    seq: AtomicUsize,
}

impl Rig {
    /// None (with a note) when `mode` cannot run here.
    pub fn new(name: &str, mode: Mode) -> Option<Rig> {
        if !is_root() {
            skip(&format!("{name}: needs root"));
            return None;
        }
        let user = match mode {
            Mode::Root => None,
            Mode::Rootless => match test_user() {
                Some(u) => Some((u.uid, u.gid)),
                None => {
                    skip(&format!(
                        "rootless {name}: no test user {} with subordinate ids (scripts/deps.sh)",
                        test_user_name()
                    ));
                    return None;
                }
            },
        };
        let mut b = Bundle::new(&format!("{name}-{}", mode.name()));
        if let Some((uid, gid)) = user {
            // The config `ferry spec --rootless` writes for that user.
            let dir = b.path("rootless-spec");
            fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
            let st = Command::new(ferry_bin())
                .args(["spec", "--rootless", "--bundle"])
                .arg(&dir)
                .uid(uid)
                .gid(gid)
                .stdin(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "ferry spec --rootless as the test user");
            let text = fs::read_to_string(dir.join("config.json")).unwrap();
            b.config = serde_json::from_str(&text).unwrap();
            b.set("/process/terminal", json!(false));
            std::os::unix::fs::chown(&b.state_root, Some(uid), Some(gid)).unwrap();
        }
        b.save();
        Some(Rig {
            b,
            mode,
            user,
            seq: AtomicUsize::new(0),
        })
    }

    /// Arrange for `cmd` to run as this rig's user.
    pub fn as_user(&self, cmd: &mut Command) {
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid)
                .gid(gid)
                .env("XDG_RUNTIME_DIR", "")
                .env("HOME", "/tmp");
        }
    }

    pub fn spawn(&self, args: &[&str]) -> Job {
        self.spawn_in(&self.b.state_root, args)
    }

    /// `ferry --root ROOT ARGS` in the background, output to files.
    pub fn spawn_in(&self, root: &Path, args: &[&str]) -> Job {
        self.b.save();
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let out = self.b.base.join("out").join(format!("rig{n}.out"));
        let err = self.b.base.join("out").join(format!("rig{n}.err"));
        let mut cmd = Command::new(ferry_bin());
        cmd.arg("--root").arg(root).args(args);
        cmd.stdin(Stdio::null());
        cmd.stdout(fs::File::create(&out).unwrap());
        cmd.stderr(fs::File::create(&err).unwrap());
        self.as_user(&mut cmd);
        let desc = format!(
            "[{}] ferry --root {} {}",
            self.mode.name(),
            root.display(),
            args.join(" ")
        );
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{desc}: {e}"));
        Job {
            child,
            cmd: desc,
            out,
            err,
        }
    }

    pub fn ferry(&self, args: &[&str]) -> Out {
        self.spawn(args).wait(TIMEOUT)
    }

    pub fn ok(&self, args: &[&str]) -> Out {
        let o = self.ferry(args);
        assert!(o.success(), "expected success:\n{}", o.describe());
        o
    }

    pub fn create(&self, id: &str) -> Out {
        self.ok(&["create", "--bundle", self.b.dir_str(), id])
    }

    pub fn state(&self, id: &str) -> Value {
        let o = self.ok(&["state", id]);
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", o.describe()))
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").into()
    }

    pub fn state_json(&self, id: &str) -> PathBuf {
        self.b.state_root.join(id).join("state.json")
    }

    /// Everything of this rig's containers that is still around.
    pub fn leaks(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .b
            .state_entries()
            .into_iter()
            .map(|e| format!("state root entry {e}"))
            .collect();
        v.extend(
            host_mounts_mentioning(&self.b.base)
                .into_iter()
                .map(|l| format!("mount {l}")),
        );
        v.extend(
            procs_with_root(&self.b.rootfs())
                .into_iter()
                .map(|p| format!("process {p} ({})", comm(p))),
        );
        v.extend(
            cgroup_dirs(&self.b.id)
                .into_iter()
                .map(|d| format!("cgroup {}", d.display())),
        );
        v.extend(zombies());
        v
    }

    /// Assert that nothing leaked; processes get a moment to finish dying.
    pub fn assert_no_leaks(&self, what: &str) {
        let mut last = Vec::new();
        let ok = wait_until(SHORT, || {
            last = self.leaks();
            last.is_empty()
        });
        assert!(ok, "[{}] {what}: leaked {last:#?}", self.mode.name());
    }
}

pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Cgroup directories of container `id` or `id-*` under `ferry/` in any
/// hierarchy (the default `linux.cgroupsPath` is `/ferry/ID`).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut parents = vec![PathBuf::from("/sys/fs/cgroup/ferry")];
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        parents.extend(rd.flatten().map(|e| e.path().join("ferry")));
    }
    let prefix = format!("{id}-");
    let mut out = Vec::new();
    for p in parents {
        for e in fs::read_dir(&p).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == id || name.starts_with(&prefix) {
                out.push(e.path());
            }
        }
    }
    out
}

/// (state, ppid) of a process.
pub fn stat_of(pid: i32) -> Option<(char, i32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = s[s.rfind(')')? + 2..].split_ascii_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Zombies whose parent is this test or a ferry process (ferry must reap
/// what it forks; container inits are reparented to the system's reaper).
pub fn zombies() -> Vec<String> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some(('Z', ppid)) = stat_of(pid)
            && (ppid == me || comm(ppid) == "ferry")
        {
            v.push(format!("zombie {pid} ({}) of {ppid}", comm(pid)));
        }
    }
    v
}
