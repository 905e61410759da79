//! Checkpoint and restore by driving Debian's `criu` binary, with the
//! options runc passes to CRIU (libcontainer's Checkpoint/Restore):
//! `dump --tree PID --root ROOTFS --manage-cgroups`, `--ext-mount-map`
//! for the bundle's bind mounts, `--shell-job` for a terminal, and
//! `restore --restore-detached --pidfile` with `--inherit-fd` for the
//! stdio pipes the dump recorded (runc's `descriptors.json`).
//!
//! Scope: root, a plain rootfs directory, the cgroupfs driver. When CRIU
//! is missing or cannot run on this kernel (`criu check` fails, e.g. on
//! kernels whose vDSO it cannot parse), the error says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oci_spec::runtime::Spec;

/// Why checkpoint or restore cannot run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{0} is not supported on this host: criu is not installed")]
    CriuMissing(&'static str),
    #[error("{what} is not supported on this host: criu cannot run here ({reason})")]
    CriuBroken { what: &'static str, reason: String },
    #[error("{what} failed: {reason} (see {log})")]
    Failed {
        what: &'static str,
        reason: String,
        log: PathBuf,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("restore: criu did not report the restored pid in {0}")]
    NoPid(PathBuf),
}

/// The criu binary, or why `what` cannot run on this host.
pub fn criu_binary(what: &'static str) -> Result<PathBuf, CheckpointError> {
    let Some(criu) = find_in_path("criu") else {
        return Err(CheckpointError::CriuMissing(what));
    };
    criu_check(&criu).map_err(|reason| CheckpointError::CriuBroken { what, reason })?;
    Ok(criu)
}

/// The file in the images dir that records the init's stdio (fds 0–2),
/// as runc names it: `restore` hands pipes back with `--inherit-fd`.
const DESCRIPTORS: &str = "descriptors.json";

/// What `dump` needs: the container's init and bundle, and the options.
pub struct DumpRequest<'a> {
    pub pid: i32,
    pub rootfs: &'a Path,
    pub spec: &'a Spec,
    pub dirs: &'a ImageDirs,
    pub opts: &'a CriuFlags,
    pub leave_running: bool,
}

/// What `restore` needs.
pub struct RestoreRequest<'a> {
    /// A bind mount of the rootfs (CRIU's `--root` must be a mount point).
    pub root: &'a Path,
    pub bundle: &'a Path,
    pub spec: &'a Spec,
    pub dirs: &'a ImageDirs,
    pub opts: &'a CriuFlags,
    /// Where CRIU writes the restored init's pid.
    pub pidfile: &'a Path,
}

/// The images and work directories (`--image-path`, `--work-path`).
pub struct ImageDirs {
    pub images: PathBuf,
    pub work: PathBuf,
}

impl ImageDirs {
    /// runc's defaults: `./checkpoint` for the images, the work files
    /// (logs) next to them.
    pub fn new(images: Option<&Path>, work: Option<&Path>) -> Result<ImageDirs, CheckpointError> {
        let images = match images {
            Some(p) => p.to_path_buf(),
            None => std::env::current_dir()
                .map_err(|e| io_err("current directory", e))?
                .join("checkpoint"),
        };
        let work = work.map_or_else(|| images.clone(), Path::to_path_buf);
        Ok(ImageDirs { images, work })
    }

    /// Make both directories (0700) if missing.
    pub fn make(&self) -> Result<(), CheckpointError> {
        use std::os::unix::fs::DirBuilderExt;
        for d in [&self.images, &self.work] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(|e| io_err(format!("create {}", d.display()), e))?;
        }
        Ok(())
    }
}

/// The CRIU flags `checkpoint` and `restore` share.
#[derive(Default, Clone, Copy)]
pub struct CriuFlags {
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
}

impl CriuFlags {
    fn args(&self) -> Vec<String> {
        let flags = [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
        ];
        flags
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f.to_string())
            .collect()
    }
}

fn io_err(what: impl Into<String>, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        what: what.into(),
        source,
    }
}

/// Checkpoint the process tree of `req.pid` into the images dir.
pub fn dump(criu: &Path, req: &DumpRequest) -> Result<(), CheckpointError> {
    req.dirs.make()?;
    record_descriptors(req.pid, &req.dirs.images)?;
    let mut args: Vec<String> = vec![
        "dump".into(),
        "--tree".into(),
        req.pid.to_string(),
        "--root".into(),
        req.rootfs.display().to_string(),
        "--manage-cgroups".into(),
    ];
    args.extend(common_args(req.dirs, "dump.log"));
    if req.opts.shell_job {
        mark_shell_job(&req.dirs.images)?;
    }
    args.extend(req.opts.args());
    if req.leave_running {
        args.push("--leave-running".into());
    }
    for (dest, _) in bind_mounts(req.spec, Path::new("/")) {
        args.push("--ext-mount-map".into());
        args.push(format!("{dest}:{dest}"));
    }
    run_criu(criu, &args, "checkpoint", &req.dirs.work.join("dump.log"))
}

/// Restore the images into a new process tree, detached; returns its
/// init's pid (as seen from here).
pub fn restore(criu: &Path, req: &RestoreRequest) -> Result<i32, CheckpointError> {
    std::fs::create_dir_all(&req.dirs.work)
        .map_err(|e| io_err(format!("create {}", req.dirs.work.display()), e))?;
    let mut args: Vec<String> = vec![
        "restore".into(),
        "--restore-detached".into(),
        "--root".into(),
        req.root.display().to_string(),
        "--manage-cgroups".into(),
        "--pidfile".into(),
        req.pidfile.display().to_string(),
    ];
    args.extend(common_args(req.dirs, "restore.log"));
    let mut opts = *req.opts;
    opts.shell_job |= req.dirs.images.join(SHELL_JOB).exists();
    args.extend(opts.args());
    for (dest, source) in bind_mounts(req.spec, req.bundle) {
        args.push("--ext-mount-map".into());
        args.push(format!("{dest}:{source}"));
    }
    args.extend(inherit_stdio_args(&req.dirs.images));
    run_criu(criu, &args, "restore", &req.dirs.work.join("restore.log"))?;
    let text = std::fs::read_to_string(req.pidfile).unwrap_or_default();
    text.trim()
        .parse()
        .ok()
        .filter(|p: &i32| *p > 0)
        .ok_or_else(|| CheckpointError::NoPid(req.pidfile.to_path_buf()))
}

/// The marker file in the images dir of a dump made with `--shell-job`
/// (a restore needs it too).
const SHELL_JOB: &str = "ferry-shell-job";

fn mark_shell_job(images: &Path) -> Result<(), CheckpointError> {
    let path = images.join(SHELL_JOB);
    std::fs::write(&path, b"").map_err(|e| io_err(format!("write {}", path.display()), e))
}

/// The first `Error (file:line): ` complaint in a CRIU log, without
/// that prefix (the later ones only say that the dump failed).
fn first_error(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("Error ("))?;
    let rest = line.split_once("): ").map_or(line, |(_, r)| r);
    Some(rest.trim().trim_end_matches('.').to_string())
}

/// `--images-dir`, `--work-dir`, the log file and its level.
fn common_args(dirs: &ImageDirs, log: &str) -> Vec<String> {
    vec![
        "--images-dir".into(),
        dirs.images.display().to_string(),
        "--work-dir".into(),
        dirs.work.display().to_string(),
        "--log-file".into(),
        log.into(),
        "-v4".into(),
    ]
}

/// Run criu with `args`; on failure, its last complaint from `log`.
fn run_criu(
    criu: &Path,
    args: &[String],
    what: &'static str,
    log: &Path,
) -> Result<(), CheckpointError> {
    let out = Command::new(criu)
        .args(args)
        .stdin(Stdio::inherit())
        .output()
        .map_err(|e| io_err(format!("run {}", criu.display()), e))?;
    if out.status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let reason = first_error(&text)
        .or_else(|| first_error(&String::from_utf8_lossy(&out.stderr)))
        .unwrap_or_else(|| format!("criu: {}", out.status));
    Err(CheckpointError::Failed {
        what,
        reason,
        log: log.to_path_buf(),
    })
}

/// The bundle's bind mounts as (destination, absolute source), sources
/// relative to `base`.
fn bind_mounts(spec: &Spec, base: &Path) -> Vec<(String, String)> {
    let is_bind = |m: &oci_spec::runtime::Mount| {
        m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind")
    };
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| is_bind(m))
        .filter_map(|m| {
            let source = base.join(m.source().as_ref()?);
            Some((
                m.destination().display().to_string(),
                source.display().to_string(),
            ))
        })
        .collect()
}

/// Record what the init's fds 0–2 are (`pipe:[123]`, a path, …).
fn record_descriptors(pid: i32, images: &Path) -> Result<(), CheckpointError> {
    let links: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/dev/null".into())
        })
        .collect();
    let json = serde_json::to_vec(&links).unwrap_or_default();
    let path = images.join(DESCRIPTORS);
    std::fs::write(&path, json).map_err(|e| io_err(format!("write {}", path.display()), e))
}

/// `--inherit-fd fd[N]:pipe:[…]` for each stdio pipe the dump recorded:
/// the restored init gets this process's fd N in its place (runc does
/// the same for pipes).
fn inherit_stdio_args(images: &Path) -> Vec<String> {
    let links: Vec<String> = std::fs::read(images.join(DESCRIPTORS))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    links
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("pipe:"))
        .flat_map(|(fd, l)| ["--inherit-fd".to_string(), format!("fd[{fd}]:{l}")])
        .collect()
}

/// The first executable `name` in `$PATH` (or the usual sbin dirs).
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Run `criu check`: `Err` with CRIU's last complaint when it fails.
fn criu_check(criu: &Path) -> Result<(), String> {
    let out = Command::new(criu)
        .arg("check")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", criu.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    Err(last_complaint(&text).unwrap_or_else(|| format!("criu check: {}", out.status)))
}

/// The last non-empty line of CRIU's output, without its
/// `Error (criu/file.c:123): ` prefix.
fn last_complaint(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let line = match line.split_once("): ") {
        Some((prefix, rest)) if prefix.starts_with("Error (") => rest,
        _ => line,
    };
    Some(format!("criu check: {}", line.trim_end_matches('.')))
}

#[cfg(test)]
mod tests {
    use super::{first_error, last_complaint};

    #[test]
    fn criu_log_reason_is_its_first_error() {
        let log = "(00.01) pidns: ok\n\
                   (00.32) Error (criu/cr-dump.c:1618): A session leader of 416(1) is outside of its pid namespace\n\
                   (00.47) Error (criu/cr-dump.c:2053): Dumping FAILED.\n";
        assert_eq!(
            first_error(log).as_deref(),
            Some("A session leader of 416(1) is outside of its pid namespace")
        );
        assert_eq!(first_error("(00.01) all good\n"), None);
    }

    #[test]
    fn criu_complaint_is_its_last_line() {
        let text = "Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n\
                    Error (criu/crtools.c:260): Could not initialize kernel features detection.\n\n";
        assert_eq!(
            last_complaint(text).as_deref(),
            Some("criu check: Could not initialize kernel features detection")
        );
        assert_eq!(last_complaint("  \n").as_deref(), None);
    }
}
