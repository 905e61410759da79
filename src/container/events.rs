//! What `events` reports: a container's cgroup statistics every interval
//! and its OOM kills as they happen, until its init exits.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;

use super::rules::Op;
use super::signal::open_init;
use super::{Container, ContainerError};
use crate::cgroups::{CgroupState, oom::OomWatcher, stats};

/// One line of `events`, with runc's keys in runc's order:
/// `{"type":…,"id":…,"data":…}` (`data` left out of an `oom` event).
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl<'a> Event<'a> {
    /// The cgroup's statistics now.
    pub fn stats(id: &'a str, cg: &CgroupState) -> Self {
        Event {
            kind: "stats",
            id,
            data: Some(stats::collect(cg)),
        }
    }

    /// One OOM kill.
    pub fn oom(id: &'a str) -> Self {
        Event {
            kind: "oom",
            id,
            data: None,
        }
    }
}

impl Container {
    /// Hand `emit` a stats event every `interval` and an oom event per OOM
    /// kill until the init exits (or `emit` fails). With `once`, one stats
    /// event. The lock is released first.
    pub fn events<E>(
        mut self,
        once: bool,
        interval: Duration,
        mut emit: impl FnMut(&Event) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<ContainerError>,
    {
        self.require(Op::Events)?;
        self.dir = None;
        let id = self.id();
        let cg = self.state.cgroup.as_ref().ok_or(ContainerError::NoCgroup {
            id: id.into(),
            consequence: "no events",
        })?;
        if once {
            return emit(&Event::stats(id, cg));
        }
        let mut oom = OomWatcher::new(cg).map_err(ContainerError::from)?;
        let Some(init) = open_init(&self.state) else {
            return Ok(());
        };
        let mut next = Instant::now() + interval;
        loop {
            let (exited, oom_ready) =
                wait(&init, oom.as_ref(), next).map_err(|e| ContainerError::Io {
                    id: id.into(),
                    what: "wait for events",
                    source: e.into(),
                })?;
            if oom_ready || exited {
                let n = oom.as_mut().map_or(0, OomWatcher::take);
                for _ in 0..n.min(100) {
                    emit(&Event::oom(id))?;
                }
            }
            if exited {
                return Ok(());
            }
            if Instant::now() >= next {
                emit(&Event::stats(id, cg))?;
                next = Instant::now() + interval;
            }
        }
    }
}

/// Wait until `next` for the init to exit or an OOM to be reported:
/// (exited, oom ready).
fn wait(
    init: &std::os::fd::OwnedFd,
    oom: Option<&OomWatcher>,
    next: Instant,
) -> Result<(bool, bool), nix::Error> {
    let mut fds = vec![PollFd::new(init.as_fd(), PollFlags::POLLIN)];
    if let Some(w) = oom {
        fds.push(PollFd::new(w.fd(), PollFlags::POLLIN));
    }
    let wait = next.saturating_duration_since(Instant::now());
    let ms = u16::try_from(wait.as_millis().min(60_000)).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) | Err(nix::Error::EINTR) => {}
        Err(e) => return Err(e),
    }
    let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
    Ok((ready(&fds[0]), fds.get(1).is_some_and(ready)))
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn events_have_runcs_key_order() {
        let oom = serde_json::to_string(&Event::oom("c1")).unwrap();
        assert_eq!(oom, r#"{"type":"oom","id":"c1"}"#);
        let stats = Event {
            kind: "stats",
            id: "c1",
            data: Some(serde_json::json!({"pids": {"current": 1}})),
        };
        assert_eq!(
            serde_json::to_string(&stats).unwrap(),
            r#"{"type":"stats","id":"c1","data":{"pids":{"current":1}}}"#
        );
    }
}
