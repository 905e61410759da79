//! `ferry events`: JSON lines like runc's: `{"type":"stats","id":…,"data":…}`
//! every `--interval` and `{"type":"oom","id":…}` as OOMs happen, until the
//! container stops; `--stats` prints one stats event and exits.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;

use crate::cgroups::{CgroupState, oom::OomWatcher, stats};
use crate::container::{State, Status, Store};

use super::kill::open_init;

pub fn events(store: &Store, id: &str, stats_once: bool, interval: &str) -> Result<()> {
    let interval = parse_duration(interval)?;
    let dir = store.open_container(id)?;
    let Some(state) = dir.load()? else {
        bail!("container {id} is still being created")
    };
    if state.status(dir.path()) == Status::Stopped {
        bail!("container {id} is not running");
    }
    drop(dir);
    let Some(cg) = &state.cgroup else {
        bail!("container {id} has no cgroup of its own: no events");
    };
    if stats_once {
        return emit(&Event::stats(id, cg));
    }
    watch(&state, cg, interval)
}

fn watch(state: &State, cg: &CgroupState, interval: Duration) -> Result<()> {
    let id = &state.id;
    let mut oom = OomWatcher::new(cg)?;
    let Some(init) = open_init(state) else {
        return Ok(());
    };
    let mut next = Instant::now() + interval;
    loop {
        let mut fds = vec![PollFd::new(init.as_fd(), PollFlags::POLLIN)];
        if let Some(w) = &oom {
            fds.push(PollFd::new(w.fd(), PollFlags::POLLIN));
        }
        let wait = next.saturating_duration_since(Instant::now());
        let ms = u16::try_from(wait.as_millis().min(60_000)).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => bail!("wait for events: {e}"),
        }
        let exited = fds[0].revents().is_some_and(|r| !r.is_empty());
        let oom_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
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

/// One line of `events`, with runc's keys in runc's order:
/// `{"type":…,"id":…,"data":…}` (`data` left out of an `oom` event).
#[derive(Debug, Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
}

impl<'a> Event<'a> {
    fn stats(id: &'a str, cg: &CgroupState) -> Self {
        Event {
            kind: "stats",
            id,
            data: Some(stats::collect(cg)),
        }
    }

    fn oom(id: &'a str) -> Self {
        Event {
            kind: "oom",
            id,
            data: None,
        }
    }
}

fn emit(event: &Event) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(event)?)?;
    out.flush()?;
    Ok(())
}

/// A Go-style duration: `5s`, `100ms`, `1m30s`, `1.5h`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || anyhow::anyhow!("invalid duration {s:?}: use e.g. 5s, 500ms or 1m");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = &rest[unit_end..];
    }
    if total <= 0.0 || !total.is_finite() {
        bail!("invalid duration {s:?}: must be positive");
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::{Event, parse_duration};
    use std::time::Duration;

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

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "5", "s", "5x", "0s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
