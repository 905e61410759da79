//! OOM notifications: v1 `memory.oom_control` through an eventfd
//! registered in `cgroup.event_control`; v2 inotify on `memory.events`.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::fs::{self, read_keyed};
use super::{CgroupError, CgroupState};

/// Watches a container's memory cgroup for OOM events.
pub struct OomWatcher {
    dir: PathBuf,
    kind: Kind,
}

enum Kind {
    V1 {
        efd: OwnedFd,
        _control: File,
    },
    V2 {
        inotify: Inotify,
        /// Last seen `oom_kill` (or `oom`) count.
        seen: u64,
    },
}

impl OomWatcher {
    /// `None` when the cgroup has no memory controller.
    pub fn new(state: &CgroupState) -> Result<Option<OomWatcher>, CgroupError> {
        let Some(dir) = state.dir("memory").map(PathBuf::from) else {
            return Ok(None);
        };
        if state.v2 {
            if !dir.join("memory.events").exists() {
                return Ok(None);
            }
            let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                .map_err(|e| fs::io_err("watch", &dir, e.into()))?;
            inotify
                .add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)
                .map_err(|e| fs::io_err("watch", &dir, e.into()))?;
            let seen = oom_count(&dir);
            return Ok(Some(OomWatcher {
                dir,
                kind: Kind::V2 { inotify, seen },
            }));
        }
        let control_path = dir.join("memory.oom_control");
        let control =
            File::open(&control_path).map_err(|e| fs::io_err("open", &control_path, e))?;
        let efd = crate::syscall::eventfd_nonblocking()
            .map_err(|e| fs::io_err("create eventfd for", &dir, e.into()))?;
        let reg = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
        let ctl = dir.join("cgroup.event_control");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&ctl)
            .and_then(|mut f| f.write_all(reg.as_bytes()))
            .map_err(|e| fs::io_err("register with", &ctl, e))?;
        Ok(Some(OomWatcher {
            dir,
            kind: Kind::V1 {
                efd,
                _control: control,
            },
        }))
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { efd, .. } => efd.as_fd(),
            Kind::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// Consume pending notifications: how many OOM events happened.
    pub fn take(&mut self) -> u64 {
        match &mut self.kind {
            Kind::V1 { efd, .. } => {
                let mut buf = [0u8; 8];
                match nix::unistd::read(efd.as_fd(), &mut buf) {
                    // The eventfd also fires when the cgroup is removed.
                    Ok(8) if self.dir.exists() => u64::from_ne_bytes(buf),
                    _ => 0,
                }
            }
            Kind::V2 { inotify, seen } => {
                let _ = inotify.read_events();
                let now = oom_count(&self.dir);
                let new = now.saturating_sub(*seen);
                *seen = now;
                new
            }
        }
    }
}

fn oom_count(dir: &std::path::Path) -> u64 {
    let ev = read_keyed(dir, "memory.events");
    let get = |k: &str| ev.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    get("oom_kill").or(get("oom")).unwrap_or(0)
}
