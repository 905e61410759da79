//! OCI lifecycle hooks: each runs with the container's state JSON on stdin,
//! its own `args` and exactly its own `env` (nothing of ferry's
//! environment), and an optional timeout.
//!
//! Working directory, as runc: the bundle for the hooks that run in the
//! runtime's namespaces (`prestart`, `createRuntime`, `poststart`,
//! `poststop`), the rootfs for `createContainer` (see
//! [`run_in_container`]), and the process's own cwd for `startContainer`
//! (it runs in the container, after the init changed to that directory).
//!
//! The hooks that run in the container (`createContainer`, `startContainer`)
//! are children of the init, whose executable is ferry's binary on the host
//! until it execs the container's program. Started with a plain `execve`,
//! a hook whose path is `/proc/self/exe`, or a `#!/proc/self/exe` script,
//! would run ferry's binary again with the container's program loader
//! (CVE-2019-5736, see `process/trampoline.rs`). So they are started through
//! the exec trampoline too: while the kernel resolves the hook's program,
//! `/proc/self/exe` is the sealed memfd, never ferry's binary.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{AccessFlags, Pid, access, dup2_stdin, pipe2};
use oci_spec::runtime::Hook;

use crate::process::trampoline::Trampoline;
use crate::syscall::{self, Forked};

/// Errors of a hook.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("error running {kind} hook {path}: {msg}")]
    Failed {
        kind: &'static str,
        path: String,
        msg: String,
    },
}

/// Run `hooks` in order, in their default directory (see the module
/// doc); the first failure stops the rest.
pub fn run(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state: &serde_json::Value,
) -> Result<(), HookError> {
    let cwd = default_cwd(kind, state);
    let state = state.to_string();
    for hook in hooks.into_iter().flatten() {
        run_one(kind, hook, &state, cwd.as_deref(), None)?;
    }
    Ok(())
}

/// Run `hooks`, which run inside the container, in order, in directory
/// `cwd` (`None`: the caller's own), each started through `trampoline`;
/// the first failure stops the rest. The caller must be single-threaded
/// (the container's init).
pub fn run_in_container(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state: &serde_json::Value,
    cwd: Option<&Path>,
    trampoline: &Trampoline,
) -> Result<(), HookError> {
    let state = state.to_string();
    for hook in hooks.into_iter().flatten() {
        run_one(kind, hook, &state, cwd, Some(trampoline))?;
    }
    Ok(())
}

/// Run every hook of `hooks`, logging a failure as a warning and going on
/// with the next: the runtime spec's rule for `poststart` and `poststop`
/// ("the remaining hooks and lifecycle continue as if the hook had
/// succeeded"), which crun follows too (runc 1.1 instead fails `create`
/// on a poststart failure; docs/engines.md).
pub fn run_logged(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) {
    let cwd = default_cwd(kind, state);
    let text = state.to_string();
    for hook in hooks.into_iter().flatten() {
        if let Err(e) = run_one(kind, hook, &text, cwd.as_deref(), None) {
            log::warn!("{e}");
        }
    }
}

/// The directory a hook of `kind` runs in by default: the bundle, except
/// for `startContainer` (its own cwd inside the container). A bundle that
/// is gone (a poststop after the bundle was removed) leaves ferry's own.
fn default_cwd(kind: &str, state: &serde_json::Value) -> Option<PathBuf> {
    if kind == "startContainer" {
        return None;
    }
    let bundle = PathBuf::from(state.get("bundle")?.as_str()?);
    bundle.is_dir().then_some(bundle)
}

/// Run one hook with `state` on its stdin and wait for it (up to its
/// timeout). With a `trampoline`, it is started through it (a hook inside
/// the container); else with a plain spawn (a hook on the host).
fn run_one(
    kind: &'static str,
    hook: &Hook,
    state: &str,
    cwd: Option<&Path>,
    trampoline: Option<&Trampoline>,
) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    // Not from inside the container: its stderr may be the container's.
    if !matches!(kind, "createContainer" | "startContainer") {
        log::debug!("running {kind} hook {path}");
    }
    let fail = |msg: String| HookError::Failed {
        kind,
        path: path.clone(),
        msg,
    };
    let (pid, stdin) = match trampoline {
        Some(t) => spawn_through(t, kind, hook, cwd).map_err(fail)?,
        None => spawn_command(hook, cwd).map_err(fail)?,
    };
    // A hook that does not read its stdin is fine: ignore EPIPE.
    let _ = File::from(stdin).write_all(state.as_bytes());
    let timeout = hook.timeout().map(|t| Duration::from_secs(t.max(1) as u64));
    if let Some(limit) = timeout
        && !wait_with_timeout(pid.as_raw(), limit)
    {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = reap(pid);
        return Err(fail(format!("timed out after {}s", limit.as_secs())));
    }
    let status = reap(pid).map_err(|e| fail(std::io::Error::from(e).to_string()))?;
    if !status.success() {
        return Err(fail(format!(
            "error running hook: {}",
            how_it_ended(status)
        )));
    }
    Ok(())
}

/// Start a hook on the host: its own `args` (the first as `argv[0]`) and
/// exactly its own `env`, in `cwd`. Returns its pid and its stdin.
fn spawn_command(hook: &Hook, cwd: Option<&Path>) -> Result<(Pid, OwnedFd), String> {
    let mut cmd = Command::new(hook.path());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(args) = hook.args().as_deref() {
        if let Some(arg0) = args.first() {
            std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
        }
        cmd.args(args.iter().skip(1));
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdin = child.stdin.take().map(OwnedFd::from);
    let pid = Pid::from_raw(child.id() as i32);
    // The child is waited for by pid (`reap`), not through `child`.
    drop(child);
    stdin
        .map(|fd| (pid, fd))
        .ok_or_else(|| "no stdin pipe".to_string())
}

/// A hook's `execve` arguments: the program, its argv (the hook's `args`,
/// or just the path) and its environment (exactly the hook's `env`).
struct Program {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
}

impl Program {
    /// Resolve and check `hook`'s program in the caller's root and cwd,
    /// with the words of a failed spawn on the host ("No such file or
    /// directory (os error 2)").
    fn of(hook: &Hook, cwd: Option<&Path>) -> Result<Program, String> {
        let env: Vec<String> = hook.env().clone().unwrap_or_default();
        let path = resolve(hook.path(), cwd, &env)?;
        let text = |s: &str| CString::new(s).map_err(|_| "argument or env contains a NUL byte");
        let args = hook
            .args()
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| vec![path.display().to_string()]);
        Ok(Program {
            path: CString::new(path.as_os_str().as_bytes())
                .map_err(|_| "path contains a NUL byte")?,
            argv: args.iter().map(|a| text(a)).collect::<Result<_, _>>()?,
            env: env.iter().map(|e| text(e)).collect::<Result<_, _>>()?,
        })
    }
}

/// The program `path` names: checked to exist and be executable (relative
/// to `cwd` if relative), or, without a slash, searched in the hook's
/// `PATH` (or the default one).
fn resolve(path: &Path, cwd: Option<&Path>, env: &[String]) -> Result<PathBuf, String> {
    if !path.as_os_str().as_bytes().contains(&b'/') {
        return crate::path_lookup::lookup(&path.to_string_lossy(), env);
    }
    let full = match cwd {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    };
    std::fs::metadata(&full).map_err(|e| e.to_string())?;
    access(&full, AccessFlags::X_OK).map_err(|e| std::io::Error::from(e).to_string())?;
    Ok(full)
}

/// Start a hook inside the container, in a child of the caller, through
/// the exec trampoline (see the module doc). Returns its pid and its stdin.
fn spawn_through(
    trampoline: &Trampoline,
    kind: &str,
    hook: &Hook,
    cwd: Option<&Path>,
) -> Result<(Pid, OwnedFd), String> {
    let program = Program::of(hook, cwd)?;
    let (stdin, feed) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    match syscall::fork_child().map_err(|e| format!("fork: {e}"))? {
        Forked::Parent(pid) => Ok((pid, feed)),
        Forked::Child => {
            drop(feed);
            let why = hook_child(trampoline, &program, stdin, cwd);
            let _ = writeln!(
                std::io::stderr(),
                "ferry: {kind} hook {}: {why}",
                hook.path().display()
            );
            syscall::exit_now(126)
        }
    }
}

/// In the hook's process: `stdin` as fd 0, `cwd`, every signal to its
/// default and none blocked, then the trampoline. Returns only on failure,
/// with a sentence saying why.
fn hook_child(
    trampoline: &Trampoline,
    program: &Program,
    stdin: OwnedFd,
    cwd: Option<&Path>,
) -> String {
    if let Err(e) = dup2_stdin(&stdin) {
        return format!("set up stdin: {e}");
    }
    drop(stdin);
    if let Some(dir) = cwd
        && let Err(e) = nix::unistd::chdir(dir)
    {
        return format!("chdir to {}: {e}", dir.display());
    }
    if let Err(e) = syscall::reset_signal_dispositions() {
        return format!("reset signal dispositions: {e}");
    }
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None) {
        return format!("reset signal mask: {e}");
    }
    trampoline.exec(&program.path, &program.argv, &program.env)
}

/// Wait for `pid` to end (retrying on EINTR) and say how it did.
fn reap(pid: Pid) -> nix::Result<ExitStatus> {
    loop {
        match waitpid(pid, None) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(WaitStatus::Exited(_, code)) => return Ok(ExitStatus::from_raw((code & 0xff) << 8)),
            Ok(WaitStatus::Signaled(_, sig, core)) => {
                let core = if core { 0x80 } else { 0 };
                return Ok(ExitStatus::from_raw(sig as i32 | core));
            }
            Ok(_) => continue,
        }
    }
}

/// How a failed hook ended, in runc's words: "exit status 3", "killed by
/// signal SIGSYS (bad system call)".
fn how_it_ended(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|_| format!("{sig}"));
            format!(
                "killed by signal {name} ({})",
                syscall::signal_description(sig)
            )
        }
        (None, None) => status.to_string(),
    }
}

/// Wait up to `limit` for `pid` to exit, without reaping it.
fn wait_with_timeout(pid: i32, limit: Duration) -> bool {
    let Ok(pidfd) = syscall::pidfd_open(Pid::from_raw(pid)) else {
        return true;
    };
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = left.as_millis().min(u128::from(u16::MAX)) as u16;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return true,
            _ => continue,
        }
    }
}

/// The state document hooks receive.
pub fn state_json(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &impl serde::Serialize,
) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.2.1",
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations,
    })
}
