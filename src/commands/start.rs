//! `ferry start`: release a created container's init (exactly once).

use anyhow::Result;

use crate::container::{Container, StateStore};

pub fn start(store: &StateStore, id: &str) -> Result<()> {
    Ok(Container::load(store, id)?.start()?)
}
