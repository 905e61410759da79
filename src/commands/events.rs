//! `ferry events`: JSON lines like runc's: `{"type":"stats","id":…,"data":…}`
//! every `--interval` and `{"type":"oom","id":…}` as OOMs happen, until the
//! container stops; `--stats` prints one stats event and exits.

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::container::{Container, Event, StateStore};

pub fn events(store: &StateStore, id: &str, stats_once: bool, interval: &str) -> Result<()> {
    let interval = parse_duration(interval)?;
    Container::load(store, id)?.events(stats_once, interval, emit)
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
    use super::parse_duration;
    use std::time::Duration;

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
