//! What `state.json` keeps about a container's cgroup, and the operations
//! on a cgroup found again that way (list, signal, freeze, remove).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::systemd::SystemdUnit;
use super::{CgroupError, fs};

/// A container's cgroup, as recorded in its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupState {
    /// The unified hierarchy (one directory under key `""`), else v1.
    #[serde(default)]
    pub v2: bool,
    /// v1: controller (or `name=X`) → directory; co-mounted controllers
    /// share one. v2: `""` → the directory.
    pub paths: BTreeMap<String, PathBuf>,
    /// Directories ferry made, parents before children: `delete` removes
    /// them (a parent only once it is empty).
    #[serde(default)]
    pub created: Vec<PathBuf>,
    /// The systemd driver's unit (`--systemd-cgroup`): `delete` stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<SystemdUnit>,
}

impl CgroupState {
    /// The directory of `controller` (any v1 controller name; ignored on v2).
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        if self.v2 {
            return self.paths.get("").map(PathBuf::as_path);
        }
        self.paths.get(controller).map(PathBuf::as_path)
    }

    /// The v2 directory, opened for `CLONE_INTO_CGROUP` (`None` on v1).
    pub fn v2_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        use nix::fcntl::{OFlag, open};
        let dir = self.paths.get("").filter(|_| self.v2)?;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        open(dir.as_path(), flags, nix::sys::stat::Mode::empty()).ok()
    }

    /// The cgroup2 directory (v2, or the unified one of a hybrid host),
    /// opened for `CLONE_INTO_CGROUP`.
    pub fn unified_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        use nix::fcntl::{OFlag, open};
        let dir = self.paths.get("")?;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        open(dir.as_path(), flags, nix::sys::stat::Mode::empty()).ok()
    }

    /// Every distinct directory the container's processes sit in.
    pub fn leaves(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for p in self.paths.values() {
            if !out.contains(&p.as_path()) {
                out.push(p);
            }
        }
        out
    }

    /// One directory that lists every process of the container.
    pub(super) fn any_dir(&self) -> Option<&Path> {
        ["pids", "freezer", "memory", "cpu", "devices"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.paths.values().next().map(PathBuf::as_path))
    }

    /// Host pids of every process in the cgroup and its sub-cgroups.
    pub fn pids(&self) -> Vec<i32> {
        self.any_dir().map(fs::procs_below).unwrap_or_default()
    }

    /// Put `pid` in every directory (for processes joined after create).
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.leaves() {
            fs::write(dir, "cgroup.procs", pid.to_string())?;
        }
        Ok(())
    }

    /// Send `sig` to every process in the cgroup, frozen while we list and
    /// signal them so that none can fork away unseen (as runc does).
    pub fn signal_all(&self, sig: i32) -> Result<(), CgroupError> {
        let froze = self.can_freeze() && !self.is_frozen() && self.freeze().is_ok();
        let sig = Signal::try_from(sig).ok();
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
        if froze {
            self.thaw()?;
        }
        Ok(())
    }

    /// Kill what is left and remove the cgroup (every hierarchy, with any
    /// sub-cgroups the container made, deepest first), waiting briefly
    /// while the last tasks exit. Only directories ferry made are emptied
    /// by force; others are removed only if they empty themselves.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        self.remove(true)
    }

    /// Undo a `create` that failed: like [`destroy`](Self::destroy), but a
    /// cgroup that existed before is left in place.
    pub fn discard(&self) -> Result<(), CgroupError> {
        self.remove(false)
    }

    fn remove(&self, existing_too: bool) -> Result<(), CgroupError> {
        let mut first_err = None;
        for dir in self.leaves() {
            let ours = self.created.iter().any(|c| c == dir);
            if !ours && !existing_too {
                continue;
            }
            let v2 = self.v2 || self.paths.get("").is_some_and(|p| p == dir);
            match remove_tree(dir, ours, v2) {
                Ok(()) => {}
                // Someone else's processes keep a cgroup ferry did not make.
                Err(e) if !ours => log::warn!("{e}"),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        // Once its processes are gone: a failed unit (an OOM kill) would
        // otherwise keep its name taken.
        if let Some(unit) = &self.systemd
            && let Err(e) = super::systemd::stop(unit)
        {
            log::warn!("{e}");
        }
        first_err.map_or(Ok(()), Err)
    }

    // ---- freezer ----

    pub fn can_freeze(&self) -> bool {
        if self.v2 {
            self.dir("")
                .is_some_and(|d| d.join("cgroup.freeze").exists())
        } else {
            self.dir("freezer").is_some()
        }
    }

    /// Whether any hierarchy holds the cgroup frozen, itself or through a
    /// frozen parent (a task joining it would stop at once).
    pub fn is_frozen_any(&self) -> bool {
        if let Some(dir) = self.paths.get("") {
            let events = fs::read(dir, "cgroup.events").unwrap_or_default();
            if events.lines().any(|l| l == "frozen 1") {
                return true;
            }
        }
        !self.v2
            && self
                .dir("freezer")
                .and_then(|d| fs::read(d, "freezer.state").ok())
                .is_some_and(|s| s.trim() != "THAWED")
    }

    /// Whether the cgroup is frozen (the container is paused).
    pub fn is_frozen(&self) -> bool {
        if self.v2 {
            let Some(dir) = self.dir("") else {
                return false;
            };
            return fs::read(dir, "cgroup.freeze").is_ok_and(|s| s.trim() == "1");
        }
        let Some(dir) = self.dir("freezer") else {
            return false;
        };
        fs::read(dir, "freezer.state").is_ok_and(|s| s.trim() == "FROZEN")
    }

    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let what = if frozen { "freeze" } else { "thaw" };
        if self.v2 {
            let dir = self.dir("").ok_or(CgroupError::NoCgroup)?;
            fs::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            return wait_for(what, || {
                fs::read(dir, "cgroup.events").is_ok_and(|s| s.lines().any(|l| l == want))
            });
        }
        let dir = self
            .dir("freezer")
            .ok_or_else(|| CgroupError::NoController("freezer".into()))?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        for _ in 0..20 {
            fs::write(dir, "freezer.state", want)?;
            let settled = wait_for(what, || {
                fs::read(dir, "freezer.state").is_ok_and(|s| s.trim() == want)
            });
            if settled.is_ok() {
                return Ok(());
            }
            // Stuck in FREEZING (a task in an uninterruptible sleep): thaw
            // and try again, as runc does.
            if frozen {
                let _ = fs::write(dir, "freezer.state", "THAWED");
            }
        }
        Err(CgroupError::Timeout(what))
    }
}

/// Remove `dir` and the sub-cgroups below it, deepest first; `kill`: SIGKILL
/// what is in them while they do not empty themselves, else one try each.
fn remove_tree(dir: &Path, kill: bool, v2: bool) -> Result<(), CgroupError> {
    for sub in fs::subdirs(dir) {
        remove_tree(&sub, kill, v2)?;
    }
    if !kill {
        return match std::fs::remove_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fs::io_err("remove", dir, e)),
            _ => Ok(()),
        };
    }
    fs::rmdir(dir, || kill_all(dir, v2))
}

/// SIGKILL everything in `dir` (`cgroup.kill` on v2 where the kernel has it).
fn kill_all(dir: &Path, v2: bool) {
    if v2 && fs::write(dir, "cgroup.kill", "1").is_ok() {
        return;
    }
    for pid in fs::procs(dir) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Poll `done` for up to 100 ms.
fn wait_for(what: &'static str, mut done: impl FnMut() -> bool) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_millis(100);
    let mut delay = Duration::from_micros(100);
    loop {
        if done() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::Timeout(what));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}
