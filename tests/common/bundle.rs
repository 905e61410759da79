//! [`Bundle`]: a private bundle and `--root` per test, ferry run on it with
//! deadlines, and everything removed on drop; [`Proc`], a ferry process in
//! the background.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running background ferry process (e.g. foreground `ferry run`).
pub struct Proc {
    pub child: Child,
    pub cmd: String,
    out: PathBuf,
    err: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    /// Wait with a deadline; on timeout the ferry process is killed and the
    /// test panics.
    pub fn wait(mut self, timeout: Duration) -> Out {
        match wait_timeout(&mut self.child, timeout) {
            Some(status) => Out {
                cmd: self.cmd.clone(),
                status,
                stdout: fs::read_to_string(&self.out).unwrap_or_default(),
                stderr: fs::read_to_string(&self.err).unwrap_or_default(),
                stdout_path: self.out.clone(),
            },
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
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }
    pub fn stdout_so_far(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        kill_if_running(&mut self.child);
    }
}

pub struct Bundle {
    /// Container id (unique across the machine).
    pub id: String,
    /// Private temp dir holding everything below.
    pub base: PathBuf,
    /// The bundle dir (config.json + rootfs).
    pub dir: PathBuf,
    /// `--root` state dir for ferry.
    pub state_root: PathBuf,
    /// The config, written to `dir/config.json` by `save()` (and by every
    /// helper that creates a container).
    pub config: Value,
    seq: AtomicUsize,
}

impl Bundle {
    /// New bundle with a copy of the busybox rootfs and the config generated
    /// by `ferry spec`, adjusted for non-interactive tests (terminal false).
    pub fn new(name: &str) -> Bundle {
        let b = Bundle::new_raw(name);
        let out = b.ferry(&["spec", "--bundle", b.dir.to_str().unwrap()]);
        assert!(out.success(), "ferry spec failed:\n{}", out.describe());
        let text = fs::read_to_string(b.dir.join("config.json"))
            .unwrap_or_else(|e| panic!("ferry spec did not write config.json: {e}"));
        let mut b = b;
        b.config = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("ferry spec wrote invalid JSON: {e}\n{text}"));
        b.set("/process/terminal", json!(false));
        b.save();
        b
    }

    /// Bundle dir with rootfs but no config.json (config is `null`).
    pub fn new_raw(name: &str) -> Bundle {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let short: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(40)
            .collect();
        let id = format!("{short}-{pid}-{n}");
        let base = PathBuf::from(format!("/tmp/ferry-test-{pid}-{n}-{short}"));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let dir = base.join("bundle");
        let state_root = base.join("state");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(&state_root).unwrap();
        fs::create_dir_all(base.join("out")).unwrap();
        let st = Command::new("cp")
            .arg("-a")
            .arg(rootfs_template())
            .arg(dir.join("rootfs"))
            .status()
            .unwrap();
        assert!(st.success(), "copying the rootfs failed");
        Bundle {
            id,
            base,
            dir,
            state_root,
            config: Value::Null,
            seq: AtomicUsize::new(0),
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn dir_str(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Write the config to `dir/config.json` (atomically, and only if it
    /// changed: concurrent ferry processes may be reading it).
    pub fn save(&self) {
        if self.config.is_null() {
            return;
        }
        let path = self.dir.join("config.json");
        let data = serde_json::to_vec_pretty(&self.config).unwrap();
        if fs::read(&path).ok().as_deref() == Some(&data[..]) {
            return;
        }
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let tmp = self.base.join(format!("config.json.{n}.tmp"));
        fs::write(&tmp, &data).unwrap();
        fs::rename(&tmp, &path).unwrap();
    }

    // ---------------- config editing ----------------

    /// Set the value at a JSON pointer, creating intermediate objects.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let mut cur = &mut self.config;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for (i, p) in parts.iter().enumerate() {
            let p = p.replace("~1", "/").replace("~0", "~");
            if cur.is_null() {
                *cur = json!({});
            }
            let last = i + 1 == parts.len();
            match cur {
                Value::Object(m) => {
                    if last {
                        m.insert(p, value);
                        return self;
                    }
                    cur = m.entry(p).or_insert(Value::Null);
                }
                Value::Array(a) => {
                    let idx: usize = p.parse().expect("array index");
                    if last {
                        a[idx] = value;
                        return self;
                    }
                    cur = &mut a[idx];
                }
                _ => panic!("cannot descend into {pointer}"),
            }
        }
        unreachable!()
    }

    /// Remove the value at a JSON pointer (no-op if absent).
    pub fn unset(&mut self, pointer: &str) -> &mut Self {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = if parent.is_empty() { "" } else { parent };
        if let Some(Value::Object(m)) = self.config.pointer_mut(parent) {
            m.remove(key);
        }
        self
    }

    pub fn get(&self, pointer: &str) -> &Value {
        self.config.pointer(pointer).unwrap_or(&Value::Null)
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// args = ["sh", "-c", script]
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Set (or replace) one variable in process.env.
    pub fn env(&mut self, key: &str, val: &str) -> &mut Self {
        let entry = format!("{key}={val}");
        let prefix = format!("{key}=");
        let env = self.config.pointer_mut("/process/env");
        match env {
            Some(Value::Array(a)) => {
                a.retain(|v| !v.as_str().unwrap_or("").starts_with(&prefix));
                a.push(json!(entry));
            }
            _ => {
                self.set("/process/env", json!([entry]));
            }
        }
        self
    }

    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        match self.config.pointer_mut("/mounts") {
            Some(Value::Array(a)) => a.push(mount),
            _ => {
                self.set("/mounts", json!([mount]));
            }
        }
        self
    }

    /// Add a bind mount of host `source` at `dest`.
    pub fn bind(&mut self, source: &Path, dest: &str, options: &[&str]) -> &mut Self {
        let mut opts = vec!["rbind"];
        opts.extend_from_slice(options);
        self.add_mount(json!({
            "destination": dest,
            "type": "bind",
            "source": source.to_str().unwrap(),
            "options": opts,
        }))
    }

    pub fn namespaces(&self) -> Vec<Value> {
        self.get("/linux/namespaces")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Add (or replace) a namespace entry; `path` joins an existing one.
    pub fn set_ns(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        let mut ns: Vec<Value> = self
            .namespaces()
            .into_iter()
            .filter(|n| n["type"] != kind)
            .collect();
        ns.push(match path {
            Some(p) => json!({"type": kind, "path": p}),
            None => json!({"type": kind}),
        });
        self.set("/linux/namespaces", json!(ns))
    }

    pub fn remove_ns(&mut self, kind: &str) -> &mut Self {
        let ns: Vec<Value> = self
            .namespaces()
            .into_iter()
            .filter(|n| n["type"] != kind)
            .collect();
        self.set("/linux/namespaces", json!(ns))
    }

    pub fn readonly_root(&mut self, ro: bool) -> &mut Self {
        self.set("/root/readonly", json!(ro))
    }

    /// A fresh file path inside this test's private temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    // ---------------- running ferry ----------------

    /// `ferry --root <state_root> <args>` as a Command with stdio to files.
    fn command(&self, args: &[&str]) -> (Command, String, PathBuf, PathBuf) {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let out = self.base.join("out").join(format!("{n}.out"));
        let err = self.base.join("out").join(format!("{n}.err"));
        let mut cmd = Command::new(ferry_bin());
        cmd.arg("--root").arg(&self.state_root).args(args);
        cmd.stdin(Stdio::null());
        cmd.stdout(fs::File::create(&out).unwrap());
        cmd.stderr(fs::File::create(&err).unwrap());
        let desc = format!(
            "ferry --root {} {}",
            self.state_root.display(),
            args.join(" ")
        );
        (cmd, desc, out, err)
    }

    /// Spawn ferry in the background (customize the Command with `f`).
    pub fn spawn_with(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Proc {
        self.save();
        let (mut cmd, desc, out, err) = self.command(args);
        f(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {desc}: {e}"));
        Proc {
            child,
            cmd: desc,
            out,
            err,
        }
    }

    pub fn spawn(&self, args: &[&str]) -> Proc {
        self.spawn_with(args, |_| {})
    }

    /// Run ferry to completion (deadline `TIMEOUT`).
    pub fn ferry(&self, args: &[&str]) -> Out {
        self.spawn(args).wait(TIMEOUT)
    }

    pub fn ferry_with(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Out {
        self.spawn_with(args, f).wait(TIMEOUT)
    }

    pub fn run_ok(&self, args: &[&str]) -> Out {
        let o = self.ferry(args);
        assert!(o.success(), "expected success:\n{}", o.describe());
        o
    }

    pub fn run_fail(&self, args: &[&str]) -> Out {
        let o = self.ferry(args);
        assert!(!o.success(), "expected failure:\n{}", o.describe());
        o
    }

    /// `ferry create --bundle DIR <extra> ID`, asserting success.
    pub fn create(&self, extra: &[&str]) -> Out {
        let mut a = vec!["create", "--bundle", self.dir_str()];
        a.extend_from_slice(extra);
        a.push(&self.id);
        self.run_ok(&a)
    }

    pub fn start(&self) -> Out {
        self.run_ok(&["start", &self.id])
    }

    /// Foreground `ferry run --bundle DIR <extra> ID` (not asserted).
    pub fn run(&self, extra: &[&str]) -> Out {
        let mut a = vec!["run", "--bundle", self.dir_str()];
        a.extend_from_slice(extra);
        a.push(&self.id);
        self.ferry(&a)
    }

    /// Run the container in the foreground with `sh -c script`; assert it
    /// exits 0 and return its stdout.
    pub fn output(&mut self, script: &str) -> String {
        self.sh(script);
        let o = self.run(&[]);
        assert!(
            o.success(),
            "container `{script}` failed:\n{}",
            o.describe()
        );
        o.stdout
    }

    /// Parsed `ferry state ID`.
    pub fn state(&self) -> Value {
        let o = self.run_ok(&["state", &self.id]);
        serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}):\n{}", o.describe()))
    }

    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap_or("").to_string()
    }

    pub fn pid(&self) -> i32 {
        self.state()["pid"].as_i64().unwrap_or(0) as i32
    }

    /// Poll `state` until status == want; panics after `timeout`.
    pub fn wait_status(&self, want: &str, timeout: Duration) -> Value {
        let mut last = Value::Null;
        let ok = wait_until(timeout, || {
            let o = self.ferry(&["state", &self.id]);
            if let Ok(v) = serde_json::from_str::<Value>(&o.stdout) {
                last = v;
                last["status"] == want
            } else {
                false
            }
        });
        assert!(
            ok,
            "container {} did not reach status {want:?} in {timeout:?}; last state: {last}",
            self.id
        );
        last
    }

    /// Entries (container dirs, lock files…) under the --root dir.
    pub fn state_entries(&self) -> Vec<String> {
        match fs::read_dir(&self.state_root) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => vec![],
        }
    }

    /// Assert that nothing about `id` is left under --root.
    pub fn assert_no_state(&self, id: &str) {
        let left: Vec<String> = self
            .state_entries()
            .into_iter()
            .filter(|e| e.contains(id))
            .collect();
        assert!(
            left.is_empty(),
            "state left under {}: {left:?}",
            self.state_root.display()
        );
    }

    /// Assert nothing at all is left under --root.
    pub fn assert_state_root_empty(&self) {
        let left = self.state_entries();
        assert!(
            left.is_empty(),
            "state left under {}: {left:?}",
            self.state_root.display()
        );
    }

    /// Set of open fds listed in text produced by `ls /proc/self/fd`.
    pub fn fd_set(text: &str) -> BTreeSet<i32> {
        text.split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // force-delete whatever is still registered
        for entry in self.state_entries() {
            if entry.starts_with('.') {
                continue;
            }
            if let Ok(mut child) = Command::new(ferry_bin())
                .arg("--root")
                .arg(&self.state_root)
                .args(["delete", "--force", &entry])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                && wait_timeout(&mut child, Duration::from_secs(10)).is_none()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // safety net: kill leaked container processes of this test
        for pid in procs_with_root(&self.rootfs()) {
            // SAFETY: kill takes a pid and a signal; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        detach_mounts_under(&self.base);
        if std::env::var_os("FERRY_KEEP_TEST_DIRS").is_none() {
            let _ = fs::remove_dir_all(&self.base);
        }
    }
}

/// Create a host directory with a file in it, for bind mount tests.
pub fn make_host_dir(path: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(path).unwrap();
    for (name, content) in files {
        let mut f = fs::File::create(path.join(name)).unwrap();
        f.write_all(content.as_bytes()).unwrap();
    }
}

pub fn is_char_device(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.file_type().is_char_device())
        .unwrap_or(false)
}

/// Accept one connection on the console socket `listener` (with a
/// deadline) and receive the one fd sent over it (the pty master).
pub fn receive_console_fd(
    listener: std::os::unix::net::UnixListener,
    timeout: Duration,
) -> Result<std::os::fd::OwnedFd, String> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err("nobody connected to the console socket".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = nix::sys::socket::recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&stream),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: SCM_RIGHTS just installed this fd in our table; we own it.
            return Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(*fd) });
        }
    }
    Err("no fd received over the console socket".into())
}
