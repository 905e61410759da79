//! OCI lifecycle hooks: each runs with the container's state JSON on stdin,
//! its own `args` and exactly its own `env` (nothing of ferry's
//! environment), and an optional timeout.
//!
//! Working directory, as runc: the bundle for the hooks that run in the
//! runtime's namespaces (`prestart`, `createRuntime`, `poststart`,
//! `poststop`), the rootfs for `createContainer` (see [`run_in`]), and the
//! process's own cwd for `startContainer` (it runs in the container, after
//! the init changed to that directory).

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

use crate::syscall;

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
    run_in(kind, hooks, state, cwd.as_deref())
}

/// Run `hooks` in order in directory `cwd` (`None`: ferry's own); the first
/// failure stops the rest.
pub fn run_in(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state: &serde_json::Value,
    cwd: Option<&Path>,
) -> Result<(), HookError> {
    let state = state.to_string();
    for hook in hooks.into_iter().flatten() {
        run_one(kind, hook, &state, cwd)?;
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
        if let Err(e) = run_one(kind, hook, &text, cwd.as_deref()) {
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

fn run_one(
    kind: &'static str,
    hook: &Hook,
    state: &str,
    cwd: Option<&Path>,
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
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state.as_bytes());
    }
    let timeout = hook.timeout().map(|t| Duration::from_secs(t.max(1) as u64));
    let status = match timeout {
        None => child.wait().map_err(|e| fail(e.to_string()))?,
        Some(limit) => {
            if !wait_with_timeout(child.id() as i32, limit) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("timed out after {}s", limit.as_secs())));
            }
            child.wait().map_err(|e| fail(e.to_string()))?
        }
    };
    if !status.success() {
        return Err(fail(format!(
            "error running hook: {}",
            how_it_ended(status)
        )));
    }
    Ok(())
}

/// How a failed hook ended, in runc's words: "exit status 3", "killed by
/// signal SIGSYS (bad system call)".
fn how_it_ended(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
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
