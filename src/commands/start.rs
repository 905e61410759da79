//! `ferry start`: release a created container's init (exactly once).

use anyhow::Result;

use crate::container::{Container, Store};

pub fn start(store: &Store, id: &str) -> Result<()> {
    Ok(Container::load(store, id)?.start()?)
}
