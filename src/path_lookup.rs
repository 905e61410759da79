//! A leaf: finding the program to exec (as execvp does, in the current root
//! and cwd), with the error wording engines map to exit codes ("executable
//! file not found in $PATH" → 127, "permission denied" → 126), and the
//! NUL-terminated copies `execve` takes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, access};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolve `arg0` like execvp, in the current root and cwd.
pub fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf, String> {
    if arg0.is_empty() {
        return Err("process.args must not be empty".into());
    }
    if arg0.contains('/') {
        return check(Path::new(arg0)).map(|()| PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if candidate.is_file() && access(&candidate, AccessFlags::X_OK).is_ok() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    ))
}

fn check(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("exec: {:?}: no such file or directory", path))
        }
        Err(e) => Err(format!("exec: {:?}: {e}", path)),
        Ok(m) if m.is_dir() => Err(format!(
            "exec: {:?}: is a directory: permission denied",
            path
        )),
        Ok(_) => access(path, AccessFlags::X_OK)
            .map_err(|_| format!("exec: {:?}: permission denied", path)),
    }
}

/// NUL-terminated copies for execve.
pub fn cstrings<S: AsRef<[u8]>>(items: &[S]) -> Result<Vec<CString>, String> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_ref()).map_err(|_| "argument or env contains a NUL byte".to_string())
        })
        .collect()
}

/// A NUL-terminated copy of `p` for execve.
pub fn cpath(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| "path contains a NUL byte".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_path_and_reports_like_runc() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(lookup("sh", &env).unwrap().ends_with("sh"));
        let err = lookup("no-such-program-ferry", &env).unwrap_err();
        assert!(err.contains("executable file not found in $PATH"), "{err}");
        let err = lookup("/no/such/file", &env).unwrap_err();
        assert!(err.contains("no such file or directory"), "{err}");
        let plain = std::env::temp_dir().join(format!("ferry-noexec-{}", std::process::id()));
        std::fs::write(&plain, "").unwrap();
        let err = lookup(plain.to_str().unwrap(), &env).unwrap_err();
        std::fs::remove_file(&plain).unwrap();
        assert!(err.contains("permission denied"), "{err}");
    }
}
