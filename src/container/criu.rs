//! Checkpoint and restore: present with runc's flags, and failing with
//! the reason they cannot work here, so that an engine (or a user) learns
//! why rather than reading "unknown command".
//!
//! ferry does not drive CRIU (yet). The error says what stands in the way
//! on this host first: CRIU not installed, or installed but unable to run
//! (`criu check` fails, e.g. on kernels whose vDSO it cannot parse).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why checkpoint or restore cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{0} is not supported on this host: criu is not installed")]
    CriuMissing(&'static str),
    #[error("{what} is not supported on this host: criu cannot run here ({reason})")]
    CriuBroken { what: &'static str, reason: String },
    #[error("{0} is not supported: ferry does not implement CRIU checkpoints")]
    NotImplemented(&'static str),
}

/// The error for `what`, from what this host's CRIU can do.
pub fn unsupported(what: &'static str) -> CheckpointError {
    let Some(criu) = find_in_path("criu") else {
        return CheckpointError::CriuMissing(what);
    };
    match criu_check(&criu) {
        Err(reason) => CheckpointError::CriuBroken { what, reason },
        Ok(()) => CheckpointError::NotImplemented(what),
    }
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
    use super::last_complaint;

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
