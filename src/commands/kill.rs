//! `ferry kill`: signal a container's init, or every process in it.

use anyhow::Result;

use crate::container::{Container, StateStore};
use crate::signals;

/// `ferry kill [--all] ID [SIGNAL]`.
pub fn kill(store: &StateStore, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    Ok(Container::load(store, id)?.kill(sig, all)?)
}

/// A signal name or number as [`signals::parse`] takes it, or `0` (no
/// signal: only check that the process exists, as kill(1) does).
fn parse_signal(signal: &str) -> Result<i32> {
    if signal == "0" {
        return Ok(0);
    }
    Ok(signals::parse(signal)?)
}
