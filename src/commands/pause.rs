//! `ferry pause` / `ferry resume`: freeze and thaw the container's cgroup
//! (v1 `freezer.state`, v2 `cgroup.freeze`).

use anyhow::Result;

use crate::container::{Container, StateStore};

pub fn pause(store: &StateStore, id: &str) -> Result<()> {
    Ok(Container::load(store, id)?.pause()?)
}

pub fn resume(store: &StateStore, id: &str) -> Result<()> {
    Ok(Container::load(store, id)?.resume()?)
}
