//! pasta: attach it to a container's network namespace, record it, stop
//! it (see the module doc of [`super`] for the lifetime rules).

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::files::DNS_ADDR;
use super::{NetworkError, PortMap, Proto, RECORD};
use crate::syscall;

/// The container's address, prefix length and gateway (slirp4netns'
/// layout; DNS is [`DNS_ADDR`]).
const ADDRESS: &str = "10.0.2.100";
const PREFIX: &str = "24";
const GATEWAY: &str = "10.0.2.2";
const PID_FILE: &str = "pasta.pid";

/// A container's network namespace (and its user namespace when it has
/// its own), opened right after the clone.
pub struct Namespaces {
    net: OwnedFd,
    user: Option<OwnedFd>,
}

impl Namespaces {
    /// Open the namespaces of process `pid`; `user` when it has its own
    /// user namespace (pasta must join it to configure the network one).
    pub fn open(pid: i32, user: bool) -> std::io::Result<Namespaces> {
        let open = |kind: &str| -> std::io::Result<OwnedFd> {
            Ok(fs::File::open(format!("/proc/{pid}/ns/{kind}"))?.into())
        };
        Ok(Namespaces {
            net: open("net")?,
            user: user.then(|| open("user")).transpose()?,
        })
    }
}

/// What `release` finds in the bundle: which pasta to stop.
#[derive(Serialize, Deserialize)]
struct Record {
    pid: i32,
    start_time: u64,
    /// Whether it publishes ports: then stopping it waits until it is
    /// gone, so that the ports are free when `delete` returns.
    #[serde(default)]
    ports: bool,
}

/// A running pasta, stopped on drop unless [`Guard::keep`] was called.
pub struct Guard {
    pidfd: Option<OwnedFd>,
    files: Vec<PathBuf>,
    /// Wait for pasta's exit when stopping it (it publishes ports).
    wait: bool,
}

impl Guard {
    /// Leave pasta running (a detached container): `delete` stops it
    /// through the record in the bundle.
    pub fn keep(mut self) {
        self.pidfd = None;
        self.files.clear();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            stop(&fd, self.wait);
        }
        for f in &self.files {
            let _ = fs::remove_file(f);
        }
    }
}

/// Start pasta for the namespaces `ns`, publishing `ports`; its pid file
/// and [`RECORD`] go to `dir` (the bundle). Returns once pasta has set
/// the namespace up and bound the ports (it daemonizes only then).
pub fn attach(ns: &Namespaces, ports: &[PortMap], dir: &Path) -> Result<Guard, NetworkError> {
    let program = check_installed()?;
    let pid_file = dir.join(PID_FILE);
    // pasta may outlive ferry: it must not keep what ferry inherited (a
    // caller's pipe would never see end-of-file). ferry execs nothing else
    // that needs them.
    syscall::cloexec_from(3).map_err(|e| NetworkError::io("mark fds close-on-exec")(e.into()))?;
    // Inheritable copies (dup clears close-on-exec), closed once pasta
    // has started; ferry is single-threaded here, so no other child
    // inherits them.
    let net = nix::unistd::dup(&ns.net).map_err(|e| NetworkError::io("dup")(e.into()))?;
    let user = ns
        .user
        .as_ref()
        .map(nix::unistd::dup)
        .transpose()
        .map_err(|e| NetworkError::io("dup")(e.into()))?;
    let mut cmd = Command::new(program);
    cmd.args(args(&net, user.as_ref(), ports, &pid_file))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = cmd.output().map_err(NetworkError::io("run pasta"))?;
    drop((net, user));
    if !out.status.success() {
        let _ = fs::remove_file(&pid_file);
        return Err(NetworkError::Pasta(message(&out.stderr, out.status)));
    }
    let pid = read_pid(&pid_file)?;
    let pidfd =
        syscall::pidfd_open(Pid::from_raw(pid)).map_err(|e| NetworkError::io("pidfd")(e.into()))?;
    let mut guard = Guard {
        pidfd: Some(pidfd),
        files: vec![pid_file],
        wait: !ports.is_empty(),
    };
    let record = Record {
        pid,
        start_time: start_time(pid).unwrap_or(0),
        ports: !ports.is_empty(),
    };
    let path = dir.join(RECORD);
    fs::write(
        &path,
        serde_json::to_vec(&record).expect("record serializes"),
    )
    .map_err(NetworkError::io(format!("write {}", path.display())))?;
    guard.files.push(path);
    Ok(guard)
}

/// pasta's command line.
fn args(net: &OwnedFd, user: Option<&OwnedFd>, ports: &[PortMap], pid_file: &Path) -> Vec<String> {
    let fd = |f: &OwnedFd| format!("/proc/self/fd/{}", f.as_raw_fd());
    let mut a: Vec<String> = [
        "--config-net",
        "--quiet",
        "--stderr",
        "--ns-ifname",
        "eth0",
        "--address",
        ADDRESS,
        "--netmask",
        PREFIX,
        "--gateway",
        GATEWAY,
        "--dns-forward",
        DNS_ADDR,
        "--no-map-gw",
        "-T",
        "none",
        "-U",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // As root, pasta would switch to nobody, which may not enter the
    // namespace: it keeps uid 0 with only the capabilities it needs.
    if nix::unistd::geteuid().is_root() {
        a.extend(["--runas".into(), "0".into()]);
    }
    for (flag, proto) in [("-t", Proto::Tcp), ("-u", Proto::Udp)] {
        let specs: Vec<String> = ports
            .iter()
            .filter(|p| p.proto == proto)
            .map(PortMap::pasta_spec)
            .collect();
        if specs.is_empty() {
            a.extend([flag.into(), "none".into()]);
        }
        for s in specs {
            a.extend([flag.into(), s]);
        }
    }
    if let Some(u) = user {
        a.extend(["--userns".into(), fd(u)]);
    }
    a.extend([
        "--pid".into(),
        pid_file.display().to_string(),
        "--netns".into(),
        fd(net),
    ]);
    a
}

/// pasta's error lines (without its complaints about a missing syslog).
fn message(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("Failed to send"))
        .collect();
    if lines.is_empty() {
        format!("it exited with {status}")
    } else {
        lines.join("; ")
    }
}

fn read_pid(path: &Path) -> Result<i32, NetworkError> {
    let text = fs::read_to_string(path).map_err(NetworkError::io(format!(
        "read pasta's pid file {}",
        path.display()
    )))?;
    text.trim()
        .parse()
        .map_err(|_| NetworkError::Pasta(format!("bad pid file {}", path.display())))
}

/// The start time (field 22 of /proc/PID/stat) and name of `pid`.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn is_pasta(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.starts_with("pasta") || c.starts_with("passt"))
}

/// SIGKILL (pasta ignores SIGTERM, and has nothing to save); with
/// `wait`, wait until it is gone: its sockets, the published ports, are
/// closed by then. (Its exit takes 50 to 70 ms here, mostly the kernel
/// tearing its tap device and memory down: not worth waiting for when no
/// port depends on it.)
fn stop(pidfd: &OwnedFd, wait: bool) {
    if syscall::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL).is_err() || !wait {
        return;
    }
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    if !poll(&mut fds, PollTimeout::from(2000u16)).is_ok_and(|n| n > 0) {
        log::warn!("pasta did not exit after SIGKILL");
    }
}

/// Stop the pasta recorded in `bundle` (by `attach`), if it still runs:
/// `delete` calls it for a container whose spec has [`super::ANNOTATION`].
pub fn release(bundle: &Path) {
    let path = bundle.join(RECORD);
    let Ok(text) = fs::read(&path) else { return };
    let Ok(rec) = serde_json::from_slice::<Record>(&text) else {
        log::warn!("{}: not a pasta record", path.display());
        return;
    };
    // Checked again after the pidfd is open: the pid cannot be reused
    // from then on.
    let same = || start_time(rec.pid) == Some(rec.start_time) && is_pasta(rec.pid);
    if rec.pid > 0
        && same()
        && let Ok(fd) = syscall::pidfd_open(Pid::from_raw(rec.pid))
        && same()
    {
        stop(&fd, rec.ports);
    }
    let _ = fs::remove_file(&path);
    let _ = fs::remove_file(bundle.join(PID_FILE));
}

/// The pasta program, from `PATH`.
pub(super) fn check_installed() -> Result<PathBuf, NetworkError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("pasta"))
        .find(|p| p.is_file())
        .ok_or(NetworkError::NoPasta)
}

/// Whether this user may open `/dev/net/tun`, which pasta needs inside
/// the namespace (the open creates nothing).
pub(super) fn check_tun() -> Result<(), NetworkError> {
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => Ok(()),
        Err(e) => {
            use std::os::unix::fs::MetadataExt;
            let why = match fs::metadata("/dev/net/tun") {
                Ok(m) => format!("{e}; its mode is {:04o}", m.mode() & 0o7777),
                Err(_) => e.to_string(),
            };
            Err(NetworkError::Tun(why))
        }
    }
}
