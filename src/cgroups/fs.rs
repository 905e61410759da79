//! Reading and writing cgroup files: one `write(2)` per value, no O_CREAT.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CgroupError;

/// Write `value` to `dir/file` in a single write.
pub fn write(dir: &Path, file: &str, value: impl AsRef<str>) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let value = value.as_ref();
    let res = OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| {
        if source.kind() == ErrorKind::NotFound {
            CgroupError::NoFile(file.to_string())
        } else {
            CgroupError::Write {
                path,
                value: value.to_string(),
                source,
            }
        }
    })
}

pub fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Io {
        what: "read",
        path,
        source,
    })
}

/// A number file; "max" reads as `u64::MAX`.
pub fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    parse_u64(read(dir, file)?.trim()).ok_or_else(|| {
        CgroupError::invalid("cgroup file", dir.join(file).display(), "not a number")
    })
}

pub fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, memory.events...).
pub fn read_keyed(dir: &Path, file: &str) -> Vec<(String, u64)> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), parse_u64(v.trim())?))
        })
        .collect()
}

/// The pids in `dir/cgroup.procs` (empty if the cgroup is gone).
pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The pids in `dir` and in every cgroup below it.
pub fn procs_below(dir: &Path) -> Vec<i32> {
    let mut out = procs(dir);
    for sub in subdirs(dir) {
        out.extend(procs_below(&sub));
    }
    out
}

/// The sub-cgroups of `dir` (empty if it is gone or unreadable).
pub fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// `mkdir -p`, returning the directories it made (parents first). A
/// concurrent removal of a parent (another container's delete) is retried.
pub fn mkdir_all(dir: &Path, made: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    for _ in 0..10 {
        match std::fs::create_dir(dir) {
            Ok(()) => {
                made.push(dir.to_path_buf());
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let parent = dir.parent().ok_or_else(|| io_err("create", dir, e))?;
                mkdir_all(parent, made)?;
            }
            Err(e) => return Err(io_err("create", dir, e)),
        }
    }
    Err(CgroupError::Timeout("create"))
}

/// Remove an empty cgroup, retrying while its last tasks exit (`kill`
/// runs between tries). A missing directory counts as removed.
pub fn rmdir(dir: &Path, mut kill: impl FnMut()) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                kill();
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(io_err("remove", dir, e)),
        }
    }
}

pub fn io_err(what: &'static str, path: &Path, source: std::io::Error) -> CgroupError {
    CgroupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}
